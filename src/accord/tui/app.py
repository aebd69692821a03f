"""The seat's app (Textual): members, a member's live transcript, the lead's chat, the
board, costs and events, and the person's asks to answer.

Keys, as in Claude Code's agent teams where they have a meaning there:

- Up/Down and Shift+Up/Down select a member; Enter opens it: a teammate's live
  transcript (each entry folded to a line, Enter or a click unfolds it), or, for the
  lead, the conversation between the lead and the person.
- Typing in the line at the bottom writes to the member in focus (the lead when none
  is): it reads the message before its next model call.
- Esc interrupts the member in focus: it stops after its current tool call and waits
  for the person's next message. ``x`` (Ctrl+X while typing) asks the selected member
  to shut down, or, for the lead, stops the whole team, after a confirmation.
- Ctrl+T the board (Enter on a task: its story), Ctrl+O costs, Ctrl+E events (with a
  filter), Ctrl+L back to the lead's conversation; Ctrl+F (or ``i``) shows idle members
  folded away; Ctrl+Y and Ctrl+N answer the oldest open plan or permission ask.
- Ctrl+G the team's channels, each with its posts unread by the person and its newest
  post: Enter opens one (its newest posts, routed ones marked with their owner; the
  line at the bottom posts to it as the person; opening it acknowledges the person's
  copies of its posts), Esc goes back to the list; ``j`` joins, ``l`` leaves, ``n``
  creates a channel.
- ``q`` (Ctrl+Q while typing) closes the view. The team goes on.

Every read happens in a worker thread through a ``Feed``; the screen only applies
what changed, so a key is answered at once however large the team's log is.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import (
    DataTable,
    Footer,
    Input,
    Label,
    RichLog,
    Static,
    Tree,
)

from accord.errors import AccordError, StoreError
from accord.store import open_store
from accord.team import Team
from accord.tui.feed import (
    CHANNEL_SHOWN,
    EVENTS_KEPT,
    Change,
    ChannelFeed,
    ChannelPage,
    ChannelRow,
    Costs,
    Feed,
    MemberRow,
)
from accord.types import (
    PERSON,
    Event,
    MemberRole,
    MemberStatus,
    Message,
    MessageKind,
    Route,
    RunStatus,
    Task,
    TranscriptEntry,
)

if TYPE_CHECKING:
    from textual.events import Resize
    from textual.widgets.tree import TreeNode

    from accord.team.asks import OpenAsk

#: The smallest terminal the layout fits.
MIN_WIDTH, MIN_HEIGHT = 60, 16
#: A folded entry unfolds to at most this many lines, of at most LINE_CHARS each.
FOLD_LINES = 200
LINE_CHARS = 400
LABEL_CHARS = 100  # characters of an entry's first line on its folded line
#: Characters of one text looked at for folding: a 10 MB tool result is never split whole.
FOLD_CHARS = 40_000
#: Characters of a member's streaming reply shown under its transcript.
LIVE_CHARS = 600
#: How often the worker looks at the store, and at the focused member's live text.
LOOK_EVERY = 0.25
LIVE_EVERY = 0.2
RECONNECT_EVERY = 1.0
SLOW_STORE = 2.0  # seconds a read may take before the view says the store is not answering

STATUS_STYLE = {
    MemberStatus.WORKING: "green",
    MemberStatus.IDLE: "dim",
    MemberStatus.STARTING: "yellow",
    MemberStatus.STOPPING: "yellow",
    MemberStatus.STOPPED: "dim",
    MemberStatus.CRASHED: "bold red",
    MemberStatus.FAILED: "bold red",
}
TASK_STYLE = {
    "pending": "",
    "in_progress": "green",
    "completed": "dim",
    "failed": "red",
    "cancelled": "dim",
}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(text: object) -> str:
    """``text`` with its control characters written out (``\\x1b``), so what a model or a
    person wrote shows as it is and cannot move the cursor or change colours."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def line(text: object, n: int = LINE_CHARS) -> str:
    """``text`` on one line, escaped, cut to ``n`` characters."""
    flat = " ".join(shown(str(text)[: n * 4]).split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def fold(text: str) -> tuple[str, list[str], str]:
    """A long text as a tree node shows it: its first line, the lines it unfolds to, and
    what was left out (empty when nothing was)."""
    head = text[:FOLD_CHARS]
    lines = [shown(x)[:LINE_CHARS] for x in head.splitlines()] or [""]
    left = ""
    if len(text) > FOLD_CHARS or len(lines) > FOLD_LINES:
        rest = len(text) - sum(len(x) + 1 for x in head.splitlines()[:FOLD_LINES])
        left = f"… {max(rest, 0):,} more characters"
    return lines[0], lines[:FOLD_LINES], left


def _money(usd: float) -> str:
    return f"${usd:.4f}"


def _tokens(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


# modal screens ------------------------------------------------------------------------


class Confirm(ModalScreen[bool]):
    """A yes-or-no question: y or Enter says yes, n or Esc says no."""

    BINDINGS: ClassVar[list[Any]] = [
        Binding("y,enter", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.question))
            yield Label(Text("y: yes   n or Esc: no", style="dim"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Reason(ModalScreen[str | None]):
    """An answer's reason, typed: Enter sends it (it may be empty), Esc cancels."""

    BINDINGS: ClassVar[list[Any]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.question))
            yield Input(placeholder="reason (optional); Enter sends, Esc cancels", id="reason")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class NewChannel(ModalScreen[str | None]):
    """A new channel's name, typed: Enter creates it, Esc cancels. Shown again with the
    store's refusal when the name was refused."""

    BINDINGS: ClassVar[list[Any]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, value: str = "", error: str = "") -> None:
        super().__init__()
        self.value = value
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text("a new channel (you join it)", style="bold"))
            if self.error:
                yield Label(Text(self.error, style="red"), id="new-channel-error")
            yield Input(
                value=self.value,
                placeholder="its name, like design; Enter creates, Esc cancels",
                id="new-channel",
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChannelList(DataTable[Text]):
    """The team's channels; its own keys act on the selected one."""

    BINDINGS: ClassVar[list[Any]] = [
        Binding("j", "app.channel_join", "join"),
        Binding("l", "app.channel_leave", "leave"),
        Binding("n", "app.channel_new", "new channel"),
    ]


class Story(ModalScreen[None]):
    """One task whole: description, result, the events about it and its owner's work."""

    BINDINGS: ClassVar[list[Any]] = [Binding("escape,q,enter", "close", "close")]

    def __init__(self, body: Text) -> None:
        super().__init__()
        self.body = body

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide"):
            yield Static(self.body)
            yield Label(Text("Esc closes", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)


class Deck(Container):
    """Panes laid over each other, one shown: like Textual's ``ContentSwitcher``, but a
    pane put away is hidden (inline, so no stylesheet is applied again down its tree)
    rather than taken out of the layout, so it keeps its size and what it drew. Showing
    the board of 2,000 tasks again then costs a repaint (15 ms, measured), not a new
    layout and every visible cell rendered afresh (90 ms)."""

    DEFAULT_CSS = """
    Deck { layers: p0 p1 p2 p3 p4 p5; }
    """

    def __init__(self, *, id: str, initial: str) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._current = initial

    def on_mount(self) -> None:
        for i, pane in enumerate(self.children):
            pane.styles.layer = f"p{i}"
        self.current = self._current

    @property
    def current(self) -> str:
        return self._current

    @current.setter
    def current(self, pane: str) -> None:
        self._current = pane
        for child in self.children:
            # Inline, not a class: a class would restyle every cell of the board.
            child.styles.visibility = "visible" if child.id == pane else "hidden"


# the app ----------------------------------------------------------------------------


class Seat(App[None]):
    """The person's seat at one team (see the module docstring)."""

    TITLE = "accord"
    CSS = """
    #top { height: 1; background: $boost; }
    #notice { height: auto; display: none; color: $error; }
    #notice.-on { display: block; }
    #notice.-ok { color: $success; }
    #asks { height: auto; display: none; background: $warning 30%; }
    #asks.-on { display: block; }
    #main { height: 1fr; }
    #left { width: 48%; min-width: 40; }
    #members { height: 1fr; }
    #folded { height: auto; color: $text-muted; }
    #right { width: 1fr; border-left: solid $primary-background; }
    #focus-title { height: 1; background: $boost; }
    #transcript { height: 1fr; }
    #live { height: auto; max-height: 8; color: $text-muted; }
    #chat, #events-pane, #focus, #costs-pane { height: 1fr; }
    #chat-log, #event-log { height: 1fr; }
    #board, #board-pane { height: 1fr; }
    #say { dock: bottom; }
    #small { display: none; height: 1fr; content-align: center middle; }
    Screen.-small #small { display: block; }
    Screen.-small #top, Screen.-small #main, Screen.-small #notice,
    Screen.-small #asks, Screen.-small #say, Screen.-small Footer { display: none; }
    .dialog { width: 70%; height: auto; max-height: 80%; border: thick $primary;
              background: $surface; padding: 1 2; }
    .wide { width: 90%; }
    Confirm, Reason, Story, NewChannel { align: center middle; }
    #channels-pane { height: 1fr; }
    #channels-title { height: 1; background: $boost; }
    #channel-list { height: 1fr; }
    #channel-log { height: 1fr; display: none; }
    #channels-pane.-open #channel-list { display: none; }
    #channels-pane.-open #channel-log { display: block; }
    #channel-said { height: auto; color: $error; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("up", "step(-1)", "member", show=False),
        Binding("down", "step(1)", "member", show=False),
        Binding("shift+up", "step(-1)", "member", show=False, priority=True),
        Binding("shift+down", "step(1)", "member", show=False, priority=True),
        Binding("pageup", "step(-20)", "page", show=False),
        Binding("pagedown", "step(20)", "page", show=False),
        Binding("escape", "interrupt", "interrupt"),
        Binding("x", "stop_member", "stop"),
        Binding("ctrl+x", "stop_member", "stop", show=False, priority=True),
        Binding("ctrl+t", "pane('board')", "board", priority=True),
        Binding("ctrl+o", "pane('costs-pane')", "costs", priority=True),
        Binding("ctrl+e", "pane('events-pane')", "events", priority=True),
        Binding("ctrl+l", "pane('chat')", "lead", priority=True),
        Binding("ctrl+g", "pane('channels-pane')", "channels", priority=True),
        Binding("ctrl+y", "answer(True)", "approve", priority=True),
        Binding("ctrl+n", "answer(False)", "deny", priority=True),
        Binding("i", "toggle_idle", "idle", show=False),
        Binding("ctrl+f", "toggle_idle", "idle", priority=True),
        Binding("q", "quit", "close view"),
        Binding("ctrl+q", "quit", "close view", show=False, priority=True),
    ]

    def __init__(self, location: str, team: str, *, until_run_ends: bool = False) -> None:
        super().__init__()
        self.location = location
        self.team_name = team
        self.until_run_ends = until_run_ends
        self.reader: Team | None = None  # the worker's, on its own connection
        self.writer: Team | None = None  # the person's mail, on another
        self.feed: Feed | None = None
        self.rows: list[MemberRow] = []
        self.shown_rows: list[str] = []
        self.show_idle = False
        self.following: str | None = None  # the member whose transcript is open
        self.lead: str | None = None
        self.asks: list[OpenAsk] = []
        self.tasks: dict[int, Task] = {}
        self.events: deque[tuple[str, Text]] = deque(maxlen=EVENTS_KEPT)
        self.run_seen_running = False
        self.closing = False
        self.stopped = threading.Event()
        # Set to make the reading worker look now rather than at its next tick: a
        # channel opened or posted to is read at once.
        self.nudged = threading.Event()
        self.transcript_seq = 0
        self.entries_shown = 0
        self.unreachable: str | None = None
        self.notice_text = ""
        self.refreshes = 0  # how many changes were applied (tests wait on it)
        self.current_run: Any = None
        self._budget: float | None = None
        self._reading_for: str | None = None  # whose transcript the worker reads
        self.reading_since: float | None = None  # when the worker's read began
        self.channel_feed: ChannelFeed | None = None  # the worker's
        self.channels_due = False  # the worker reads the listing again
        self.channel_open: str | None = None  # the channel whose posts are shown
        self.channel_rows: list[ChannelRow] = []
        self.channel_posts: deque[Message] = deque(maxlen=CHANNEL_SHOWN * 4)
        self.channel_routes: dict[int, Route] = {}
        self.channel_cut = False  # the open channel has more posts than it shows
        self._ack_due: str | None = None  # the channel whose copies the worker acks next
        self.channel_pages = 0  # pages applied (tests wait on it)
        # Each opening of a channel counts one; the worker reads a channel afresh when
        # the count moved, even when it is the channel it read last (opened again).
        self.channel_opened = 0
        self._channel_served = 0
        self.deck: Deck | None = None  # the right-hand panes, once mounted

    # layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text(f"team {self.team_name}"), id="top")
        yield Static("", id="notice")
        yield Static("", id="asks")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield DataTable(id="members", cursor_type="row", zebra_stripes=False)
                yield Static("", id="folded")
            with Deck(id="right", initial="chat"):
                with Vertical(id="chat"):
                    yield Static(Text("the lead and you", style="bold"), id="chat-title")
                    yield RichLog(id="chat-log", wrap=True, markup=False, max_lines=2000)
                with Vertical(id="focus"):
                    yield Static("", id="focus-title")
                    yield Tree[None]("transcript", id="transcript")
                    yield Static("", id="live")
                with Vertical(id="board-pane"):
                    yield DataTable(id="board", cursor_type="row")
                with VerticalScroll(id="costs-pane"):
                    yield Static("", id="costs")
                with Vertical(id="events-pane"):
                    yield Input(placeholder="filter events (words in the line)", id="filter")
                    yield RichLog(id="event-log", wrap=False, markup=False, max_lines=EVENTS_KEPT)
                with Vertical(id="channels-pane"):
                    yield Static("", id="channels-title")
                    yield ChannelList(id="channel-list", cursor_type="row")
                    yield RichLog(
                        id="channel-log", wrap=True, markup=False, max_lines=CHANNEL_SHOWN * 4
                    )
                    yield Static("", id="channel-said")
        yield Input(placeholder="write to the lead; Enter sends", id="say")
        yield Static("", id="small")
        yield Footer()

    def on_mount(self) -> None:
        members = self.query_one("#members", DataTable)
        for key, label in (
            ("name", "member"),
            ("status", "status"),
            ("task", "task"),
            ("doing", "doing"),
            ("ctx", "context"),
            ("cost", "cost"),
        ):
            members.add_column(label, key=key)
        board = self.query_one("#board", DataTable)
        for key, label in (
            ("id", "#"),
            ("status", "status"),
            ("owner", "owner"),
            ("title", "title"),
            ("blockers", "blocked by"),
            ("attempts", "attempts"),
        ):
            board.add_column(label, key=key)
        channels = self.query_one("#channel-list", DataTable)
        for key, label in (
            ("name", "channel"),
            ("unread", "unread"),
            ("joined", "you"),
            ("subscribers", "subscribers"),
            ("newest", "newest post"),
        ):
            channels.add_column(label, key=key)
        self.query_one("#transcript", Tree).show_root = False
        self.deck = self.query_one("#right", Deck)
        self.query_one("#say", Input).focus()  # typing goes to the lead at once
        if self.until_run_ends:  # opened by `accord run`, which says when to close
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.exit)
        self._fit(self.size.width, self.size.height)
        self.set_interval(0.5, self._watchdog)
        self.watch_store()

    def on_resize(self, event: Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.screen.set_class(small, "-small")
        if small:
            self.query_one("#small", Static).update(
                Text(
                    f"The terminal is {width}×{height}; this view needs at least "
                    f"{MIN_WIDTH}×{MIN_HEIGHT}. Make it larger, or use "
                    f"`accord watch --display table`. (q closes)",
                    justify="center",
                )
            )

    def on_unmount(self) -> None:
        self.stopped.set()
        self.nudged.set()

    # reading: one worker thread -----------------------------------------------------

    @work(thread=True, exclusive=True, group="feed")
    def watch_store(self) -> None:
        """Bring the picture up to date whenever the store changes; keep the focused
        member's transcript and live text current; say when the store is unreachable."""
        live_at = 0.0
        while not self.stopped.is_set():
            try:
                if self.feed is None or self.reader is None:
                    self.reader = Team(open_store(self.location), self.team_name)
                    self.feed = Feed(self.reader)
                self.reading_since = time.monotonic()
                change = self.feed.refresh()
                focus = self._focus_reads(change is not None)
                chan = self._channel_reads(change)
                self.reading_since = None
                now = time.monotonic()
                live = None
                if self.following is not None and now - live_at >= LIVE_EVERY:
                    live_at = now
                    live = self.feed.live(self.following)
                if self.unreachable is not None:
                    self._ui(self._reachable)
                if change is not None or focus is not None or live is not None or chan:
                    self._ui(self._apply, change, focus, live, chan)
                if self._ack_due is not None:
                    # After the posts are on the screen: 10,000 copies take a while.
                    self.reader.channels.mark_read(self._ack_due, PERSON)
                    self._ack_due = None
                busy = change is not None and change.behind
            except (StoreError, OSError) as e:
                self.reading_since = None
                self._ui(self._unreachable, str(e))
                self._drop_reader()
                self.stopped.wait(RECONNECT_EVERY)
                continue
            except AccordError as e:  # the team was deleted, say: said, and looked at again
                self._ui(self._notice, f"error: {e}")
                self.stopped.wait(RECONNECT_EVERY)
                continue
            except Exception as e:  # noqa: BLE001 - a driver's own error while a server restarts
                self._ui(self._unreachable, f"{type(e).__name__}: {e}")
                self._drop_reader()
                self.stopped.wait(RECONNECT_EVERY)
                continue
            if not busy:
                self.nudged.wait(LOOK_EVERY if self.following is None else LIVE_EVERY)
                self.nudged.clear()
        self._drop_reader()

    def _ui(self, apply: Any, *args: Any) -> None:
        """Run ``apply`` on the app's thread; once the app is closing (its screen gone),
        stop reading instead of failing."""
        try:
            self.call_from_thread(apply, *args)
        except NoMatches:
            self.stopped.set()
        except RuntimeError:  # the app's loop is gone
            self.stopped.set()

    def _watchdog(self) -> None:
        """A read that hangs (a server restarting: the store retries for a while) is said
        at once, not when it finally fails."""
        began = self.reading_since
        if began is not None and time.monotonic() - began > SLOW_STORE:
            self._unreachable(f"no answer for {time.monotonic() - began:.0f}s")

    def _drop_reader(self) -> None:
        if self.reader is not None:
            try:
                self.reader.store.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection
                pass
        self.reader, self.feed, self.channel_feed = None, None, None
        self.channels_due = True

    def _focus_reads(self, moved: bool) -> tuple[str, bool, list[TranscriptEntry]] | None:
        """New transcript entries of the member in focus: all of its newest session when
        the focus moved to it (``True``: start afresh), else those saved since."""
        member = self.following
        feed = self.feed
        if member is None or feed is None:
            return None
        if self._reading_for != member:
            self._reading_for = member
            entries = feed.transcript(member)
            self.transcript_seq = entries[-1].seq if entries else 0
            return member, True, entries
        if not moved:
            return None
        entries = feed.transcript(member, since=self.transcript_seq)
        if not entries:
            return None
        self.transcript_seq = entries[-1].seq
        return member, False, entries

    def _channel_reads(
        self, change: Change | None
    ) -> tuple[list[ChannelRow] | None, ChannelPage | None] | None:
        """While the channels pane is shown: the listing when a channel changed, and the
        open channel's new posts and moved routes. Posts shown are then acknowledged in
        the person's inbox (``_ack_due``: through the channels service, on the reader's
        connection, once they are on the screen)."""
        # The pane shown, as the app last set it (a plain attribute: no DOM query off
        # the app's thread).
        if self.reader is None or self.deck is None or self.deck.current != "channels-pane":
            return None
        if self.channel_feed is None:
            self.channel_feed = ChannelFeed(self.reader)
            self.channels_due = True
        feed = self.channel_feed
        moved = change is not None and (change.channels or bool(change.routed))
        rows = None
        if self.channels_due or (change is not None and change.channels):
            self.channels_due = False
            rows = feed.rows()
        page = None
        wanted = self.channel_open
        opened = self.channel_opened
        if wanted is None or opened != self._channel_served:
            feed.open = None
            self._channel_served = opened
        if wanted is not None and (wanted != feed.open or moved):
            page = feed.page(wanted, change.routed if change is not None else set())
            if page is not None and feed.unread_in(page):
                self._ack_due = wanted
        if rows is None and page is None:
            return None
        return rows, page

    # applying what changed ------------------------------------------------------------

    def _apply(
        self,
        change: Change | None,
        focus: tuple[str, bool, list[TranscriptEntry]] | None,
        live: Any,
        chan: tuple[list[ChannelRow] | None, ChannelPage | None] | None = None,
    ) -> None:
        if change is not None:
            self._apply_change(change)
        if chan is not None:
            rows, page = chan
            if rows is not None:
                self._show_channels(rows)
            if page is not None and page.channel == self.channel_open:
                self._show_posts(page)
        if focus is not None and focus[0] == self.following:
            self._show_entries(focus[2], fresh=focus[1])
        if live is not None or self.following is not None:
            self._show_live(live)
        self.refreshes += 1

    def _apply_change(self, c: Change) -> None:
        if c.run is not None:
            self.current_run = c.run
            if self.lead != c.run.lead:
                self.lead = c.run.lead
                self._placeholder()
            if c.run.status in (RunStatus.RUNNING, RunStatus.STOPPING):
                self.run_seen_running = True
        if c.members is not None:
            self.rows = c.members
            if self.lead is None:
                self.lead = next((m.name for m in c.members if m.role == MemberRole.LEAD), None)
            self._show_members()
        self._show_top()
        self._show_notice(c)
        if c.tasks:
            self._show_tasks(c.tasks, whole=c.whole_board)
        if c.events:
            self._show_events(c.events)
        if c.costs is not None:
            self._show_costs(c.costs)
        if c.asks is not None:
            self.asks = c.asks
            self._show_asks()
        if c.said:
            self._show_said(c.said)
        over = c.run is not None and c.run.status in (RunStatus.STOPPED, RunStatus.FINISHED)
        if self.until_run_ends and over and self.run_seen_running and not self.closing:
            from accord.tui import CLOSE_AFTER_END

            self.closing = True
            self.notify(f"the run ended; this view closes in {CLOSE_AFTER_END:g}s")
            self.set_timer(CLOSE_AFTER_END, self.exit)

    def _show_top(self) -> None:
        run = self.current_run
        top = Text(f"team {self.team_name}", style="bold")
        if run is not None:
            style = "green" if run.status == RunStatus.RUNNING else "yellow"
            top.append("  ")
            top.append(run.status.value, style=style)
            top.append(f"  goal: {line(run.goal, 70)}")
        spent = sum(r.cost_usd for r in self.rows)
        top.append(f"  {_money(spent)}")
        if self._budget is not None:
            top.append(f" of {_money(self._budget)}")
        self.query_one("#top", Static).update(top)

    def _show_notice(self, c: Change) -> None:
        if self.unreachable is not None:
            return
        text = ""
        if c.gone is not None:
            text = (
                f"the team is not running: {c.gone}. `accord resume --team {self.team_name}` "
                "brings it back"
            )
        elif c.outcome is not None:
            text = f"the run ended ({c.outcome['outcome']}): {line(c.outcome['reason'], 200)}"
            if c.outcome["outcome"] != "finished":
                text += f". `accord resume --team {self.team_name}` brings it back"
        self._notice(text, ok=c.outcome is not None and c.outcome["outcome"] == "finished")

    def _notice(self, text: str, *, ok: bool = False) -> None:
        self.notice_text = text
        notice = self.query_one("#notice", Static)
        notice.update(Text(text))
        notice.set_class(bool(text), "-on")
        notice.set_class(ok, "-ok")

    def _unreachable(self, why: str) -> None:
        first = self.unreachable is None
        self.unreachable = why
        self._notice(f"the store is unreachable ({line(why, 160)}); trying again every 1s")
        if first:
            self.notify("the store is unreachable; the view will reconnect", severity="warning")

    def _reachable(self) -> None:
        self.unreachable = None
        self._notice("")
        self.notify("reconnected to the store")

    def _show_members(self) -> None:
        table = self.query_one("#members", DataTable)
        idle = [r for r in self.rows if r.status == MemberStatus.IDLE]
        fold_idle = not self.show_idle and len(idle) > 0
        visible = [
            r
            for r in self.rows
            if not fold_idle or r.status != MemberStatus.IDLE or r.name == self.following
        ]
        names = [r.name for r in visible]
        selected = self.selected()
        if names != self.shown_rows:
            table.clear()
            for r in visible:
                table.add_row(*self._cells(r), key=r.name)
            self.shown_rows = names
            if selected in names:
                table.move_cursor(row=names.index(selected))
        else:
            for r in visible:
                for key, cell in zip(
                    ("name", "status", "task", "doing", "ctx", "cost"),
                    self._cells(r),
                    strict=True,
                ):
                    table.update_cell(r.name, key, cell)
        folded = [r.name for r in idle if r.name not in names]
        self.query_one("#folded", Static).update(
            Text(f"+ {len(folded)} idle: {', '.join(folded)}  (Ctrl+F shows them)", style="dim")
            if folded
            else ""
        )

    def _cells(self, r: MemberRow) -> tuple[Text, ...]:
        task = f"#{r.task.id} {line(r.task.title, 24)}" if r.task else "-"
        if r.reason:
            doing = Text(line(r.reason, 80), style="red")
        else:
            doing = Text(line(r.action or "-", 60))
        cost = _money(r.cost_usd) + (f" +{r.unpriced}?" if r.unpriced else "")
        name = r.name + (" (lead)" if r.role == MemberRole.LEAD else "")
        return (
            Text(name, style="bold" if r.name == self.following else ""),
            Text(r.status.value, style=STATUS_STYLE.get(r.status, "")),
            Text(task),
            doing,
            Text(_tokens(r.context)),
            Text(cost),
        )

    def _show_tasks(self, tasks: list[Task], *, whole: bool) -> None:
        board = self.query_one("#board", DataTable)
        if whole:
            self.tasks = {t.id: t for t in tasks}
            board.clear()
            for t in sorted(tasks, key=lambda t: t.id):
                board.add_row(*self._task_cells(t), key=str(t.id))
            return
        for t in tasks:
            if t.id in self.tasks:
                for key, cell in zip(
                    ("id", "status", "owner", "title", "blockers", "attempts"),
                    self._task_cells(t),
                    strict=True,
                ):
                    board.update_cell(str(t.id), key, cell)
            else:
                board.add_row(*self._task_cells(t), key=str(t.id))
            self.tasks[t.id] = t

    def _task_cells(self, t: Task) -> tuple[Text, ...]:
        status = t.status.value + (" (ready)" if t.status.value == "pending" and t.ready else "")
        blockers = ", ".join(f"#{b}" for b in t.waiting_on) or "-"
        return (
            Text(str(t.id)),
            Text(status, style=TASK_STYLE.get(t.status.value, "")),
            Text(t.owner or t.assignee or "-"),
            Text(line(t.title, 60)),
            Text(blockers),
            Text(f"{t.attempts}/{t.max_attempts}"),
        )

    def _show_events(self, events: list[Event]) -> None:
        from accord.cli._live import describe

        log = self.query_one("#event-log", RichLog)
        wanted = self.query_one("#filter", Input).value.strip().lower()
        for e in events:
            stamp = time.strftime("%H:%M:%S", time.localtime(e.at))
            said = f"{e.seq:>6} {stamp} {e.actor or '-':<10} {e.kind:<20} {line(describe(e), 120)}"
            text = Text(said)
            self.events.append((said.lower(), text))
            if not wanted or wanted in said.lower():
                log.write(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "filter":
            return
        wanted = event.value.strip().lower()
        log = self.query_one("#event-log", RichLog)
        log.clear()
        for low, text in self.events:
            if not wanted or wanted in low:
                log.write(text)

    def _show_costs(self, costs: Costs) -> None:
        self._budget = costs.budget_usd
        head = Text("spent ", style="bold")
        head.append(_money(costs.total.cost_usd))
        if costs.total.unpriced_calls:
            head.append(f" (+{costs.total.unpriced_calls} unpriced calls)")
        if costs.budget_usd is not None:
            left = costs.budget_usd - costs.total.cost_usd
            head.append(f"; budget {_money(costs.budget_usd)}, left {_money(max(left, 0))}")
        parts: list[Any] = [head]
        for title, rows, label in (
            ("per member", costs.by_member, "member"),
            ("per task", costs.by_task, "task"),
            ("per model", costs.by_model, "model"),
        ):
            table = Table(label, "calls", "tokens in", "tokens out", "cost", title=title)
            for r in rows:
                key = r.key if label != "task" or r.key is None else f"#{r.key}"
                table.add_row(
                    shown(key or "(none)"),
                    str(r.calls),
                    _tokens(r.input_tokens + r.cache_read_tokens + r.cache_write_tokens),
                    _tokens(r.output_tokens),
                    _money(r.cost_usd) + (f" +{r.unpriced_calls}?" if r.unpriced_calls else ""),
                )
            parts.append(table)
        from rich.console import Group

        self.query_one("#costs", Static).update(Group(*parts))
        self._show_top()

    def _show_asks(self) -> None:
        banner = self.query_one("#asks", Static)
        if not self.asks:
            banner.update("")
            banner.set_class(False, "-on")
            return
        first = self.asks[0]
        what = "a plan" if first.kind == "plan" else "permission"
        text = Text(f"{len(self.asks)} waiting: ", style="bold")
        text.append(f"{first.member} asks {first.to} for {what}: {line(first.what, 120)}")
        text.append("   Ctrl+Y approve · Ctrl+N deny", style="bold")
        banner.update(text)
        banner.set_class(True, "-on")

    def _show_said(self, mail: list[Message]) -> None:
        log = self.query_one("#chat-log", RichLog)
        for m in mail:
            stamp = time.strftime("%H:%M", time.localtime(m.sent_at))
            text = Text(f"{stamp} ", style="dim")
            who = "you" if m.sender == PERSON else m.sender
            to = "you" if m.recipient == PERSON else m.recipient
            style = "bold cyan" if m.sender == PERSON else "bold"
            text.append(f"{who} → {to}", style=style)
            if m.channel:
                text.append(f" in {m.channel}", style="bold magenta")
            if m.kind != MessageKind.TEXT:
                text.append(f" ({m.kind.value})", style="dim")
            body = shown(m.body[:FOLD_CHARS])
            text.append(f": {body}")
            log.write(text)

    # channels -------------------------------------------------------------------------

    def _show_channels(self, rows: list[ChannelRow]) -> None:
        self.channel_rows = rows
        table = self.query_one("#channel-list", DataTable)
        selected = self.selected_channel()
        table.clear()
        for r in rows:
            newest = "-"
            if r.newest is not None:
                newest = f"{r.newest.sender}: {line(r.newest.body, 60)}"
            table.add_row(
                Text(r.name, style="bold" if r.unread else ""),
                Text(str(r.unread) if r.unread else "-", style="bold" if r.unread else "dim"),
                Text("joined" if r.joined else "-"),
                Text(line(", ".join(r.subscribers) or "-", 40)),
                Text(newest),
                key=r.name,
            )
        names = [r.name for r in rows]
        if selected in names:
            table.move_cursor(row=names.index(selected))
        self._channels_title()

    def _channels_title(self) -> None:
        title = self.query_one("#channels-title", Static)
        if self.channel_open is None:
            unread = sum(r.unread for r in self.channel_rows)
            title.update(
                Text(
                    f"channels ({len(self.channel_rows)}, {unread} unread) · Enter opens · "
                    "j join · l leave · n new",
                    style="bold",
                )
            )
        else:
            joined = any(r.joined for r in self.channel_rows if r.name == self.channel_open)
            how = "you post as the person below" if joined else "Esc, then j joins it to post"
            title.update(Text(f"{self.channel_open}: {how} · Esc back", style="bold"))

    def selected_channel(self) -> str | None:
        table = self.query_one("#channel-list", DataTable)
        if not table.row_count or table.cursor_row < 0:
            return None
        row = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return str(row.value)

    def _show_posts(self, page: ChannelPage) -> None:
        log = self.query_one("#channel-log", RichLog)
        self.channel_routes.update(page.routes)
        if page.fresh:
            self.channel_posts.clear()
            log.clear()
        before = {m.id for m in self.channel_posts}
        # A shown post's route moved (answered, released): its line is written again,
        # with the others (a log's lines are not edited in place).
        moved = any(i in before for i in page.routes)
        self.channel_posts.extend(page.posts)
        if moved:
            log.clear()
        shown = self.channel_posts if moved else page.posts
        lines = [self._post_text(m) for m in shown]
        if page.fresh:
            self.channel_cut = len(page.posts) >= CHANNEL_SHOWN
        if (page.fresh or moved) and self.channel_cut:
            lines.insert(
                0,
                Text(
                    f"(its newest {CHANNEL_SHOWN} posts; all of them: `accord channel read "
                    f"{page.channel.lstrip('#')} --limit N`)",
                    style="dim",
                ),
            )
        if lines:
            # One write of all the lines: a write each costs a layout each (500 posts:
            # 430 ms against 60, measured).
            log.write(Text("\n").join(lines))
        self.channel_pages += 1

    def _post_text(self, m: Message) -> Text:
        stamp = time.strftime("%H:%M", time.localtime(m.sent_at))
        text = Text(f"[{m.id}] {stamp} ", style="dim")
        text.append("you" if m.sender == PERSON else m.sender, style="bold")
        if m.reply_to is not None:
            text.append(f" ↩ {m.reply_to}", style="dim")
        text.append(f": {shown(m.body[:FOLD_CHARS])}")
        route = self.channel_routes.get(m.id)
        if route is not None:
            if route.answer_id is not None:
                text.append(f"  answered by {route.owner}", style="green")
            else:
                text.append(f"  owned by {route.owner}", style="yellow")
        return text

    def open_channel(self, name: str) -> None:
        """Enter on a channel: its newest posts, and the line below posts to it."""
        self.channel_open = name
        self.channel_opened += 1
        self.channel_routes = {}
        self.channel_posts.clear()
        self.query_one("#channel-log", RichLog).clear()
        self.query_one("#channel-said", Static).update("")
        self.query_one("#channels-pane").set_class(True, "-open")
        self.nudged.set()
        self._channels_title()
        self._placeholder()
        self.query_one("#say", Input).focus()

    def close_channel(self) -> None:
        self.channel_open = None
        self.query_one("#channels-pane").set_class(False, "-open")
        self.channels_due = True
        self._channels_title()
        self._placeholder()
        self.query_one("#channel-list", DataTable).focus()

    def _channel_said(self, text: str, *, error: bool = True) -> None:
        said = self.query_one("#channel-said", Static)
        said.update(Text(text, style="red" if error else "green"))
        self.notify(text, severity="error" if error else "information")

    def _target_channel(self) -> str | None:
        return self.channel_open or self.selected_channel()

    def action_channel_join(self) -> None:
        name = self._target_channel()
        if name is not None:
            self._channel_write("join", name)

    def action_channel_leave(self) -> None:
        name = self._target_channel()
        if name is not None:
            self._channel_write("leave", name)

    def action_channel_new(self, value: str = "", error: str = "") -> None:
        def create(name: str | None) -> None:
            if name is not None:
                self._channel_write("create", name)

        self.push_screen(NewChannel(value, error), create)

    @work(thread=True, group="write")
    def _channel_write(self, verb: str, name: str, text: str = "") -> None:
        """Join, leave, create or post to a channel as the person; the store's refusal
        is shown in the pane (a refused name opens the dialog again with it)."""
        channels = self._writer().channels
        try:
            if verb == "join":
                done = f"you {'joined' if channels.join(name, PERSON) else 'had joined'} {name}"
            elif verb == "leave":
                done = f"you {'left' if channels.leave(name, PERSON) else 'had not joined'} {name}"
            elif verb == "create":
                done = f"created {channels.create(name, PERSON).name}; you joined it"
            else:
                post = channels.post(name, PERSON, text)
                done = f"posted {post.id} to {post.channel}"
        except AccordError as e:
            if verb == "create":
                self.call_from_thread(self.action_channel_new, name, f"error: {e}")
            self.call_from_thread(self._channel_said, f"error: {e}")
            return
        self.channels_due = True
        self.nudged.set()
        self.call_from_thread(self._channel_said, done, error=False)

    # a member's transcript --------------------------------------------------------------

    def _show_entries(self, entries: list[TranscriptEntry], *, fresh: bool) -> None:
        tree: Tree[None] = self.query_one("#transcript", Tree)
        if fresh:
            tree.clear()
            self.entries_shown = 0
        for e in entries:
            self._add_entry(tree.root, e)
            self.entries_shown += 1
        tree.root.expand()
        tree.scroll_end(animate=False)

    def _add_entry(self, root: TreeNode[None], e: TranscriptEntry) -> None:
        body = e.body
        stamp = time.strftime("%H:%M:%S", time.localtime(e.at))
        if e.kind == "session":
            task = f" task #{e.task_id}" if e.task_id else ""
            root.add_leaf(Text(f"{stamp} ── session{task} {line(body.get('why', ''), 80)}"))
            return
        if e.kind in ("note", "plan_state", "compaction"):
            said = body.get("text") or body.get("state") or body.get("summary") or ""
            self._folded(root, Text(f"{stamp} note: ", style="dim"), str(said))
            return
        role = body.get("role", "?")
        if body.get("text"):
            mark = (
                Text(f"{stamp} ◆ ", style="bold green")
                if role == "assistant"
                else Text(f"{stamp} ✉ ", style="bold cyan")
            )
            self._folded(root, mark, str(body["text"]))
        for call in body.get("tool_calls", ()):
            args = call.get("arguments")
            raw = json.dumps(args, indent=2) if args is not None else str(call.get("raw"))
            head = Text(f"{stamp} ⚙ {line(call.get('name'), 40)}", style="bold yellow")
            self._folded(root, head, raw, inline=line(raw, 120))
        for result in body.get("tool_results", ()):
            failed = " ERROR" if result.get("error") else ""
            style = "red" if result.get("error") else "dim"
            head = Text(f"{stamp} ← {line(result.get('name'), 40)}{failed}: ", style=style)
            self._folded(root, head, str(result.get("content", "")))

    def _folded(
        self, root: TreeNode[None], head: Text, text: str, inline: str | None = None
    ) -> None:
        first, lines, left = fold(text)
        label = head.copy()
        many = len(lines) > 1 or left or len(first) > LABEL_CHARS
        if many:
            label.append(f"[{len(text):,} chars] ", style="dim")
        label.append(line(inline if inline is not None else first, LABEL_CHARS))
        if not many:
            root.add_leaf(label)
            return
        node = root.add(label, expand=False)
        for x in lines:
            node.add_leaf(Text(x))
        if left:
            whole = f"`accord member transcript {self.following} --json`"
            node.add_leaf(Text(f"{left} (whole: {whole})", style="dim"))

    def _show_live(self, live: Any) -> None:
        box = self.query_one("#live", Static)
        if live is None or not (live.text or live.tools):
            box.update("")
            return
        text = Text("writing… ", style="bold green")
        tail = shown(live.text[-LIVE_CHARS:])
        text.append(tail)
        if live.tools:
            text.append(
                f"\n  calling: {', '.join(line(t, 30) for t in live.tools)}", style="yellow"
            )
        box.update(text)

    # selection and focus ---------------------------------------------------------------

    def selected(self) -> str | None:
        table = self.query_one("#members", DataTable)
        if not self.shown_rows or table.cursor_row < 0:
            return None
        return self.shown_rows[min(table.cursor_row, len(self.shown_rows) - 1)]

    def action_step(self, by: int) -> None:
        """Up/Down: the board's cursor while the board is shown, else the member's. The
        focus stays where you type: moving it would make the board of 2,000 tasks draw
        every visible cell again (45 ms, measured), a cursor move draws two rows."""
        if self.query_one("#right", Deck).current == "board-pane":
            board = self.query_one("#board", DataTable)
            board.move_cursor(row=max(0, board.cursor_row + by))
            return
        table = self.query_one("#members", DataTable)
        if self.shown_rows:
            row = max(0, min(len(self.shown_rows) - 1, table.cursor_row + by))
            table.move_cursor(row=row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "channel-list":
            self.open_channel(str(event.row_key.value))
        elif event.data_table.id == "members":
            self.open_member(str(event.row_key.value))
        elif event.data_table.id == "board":
            self.show_task(int(str(event.row_key.value)))

    def open_member(self, name: str) -> None:
        """Enter: the lead opens the conversation; a teammate its live transcript."""
        if name == self.lead:
            self.following = None
            self.query_one("#right", Deck).current = "chat"
        else:
            self.following = name
            self.query_one("#focus-title", Static).update(
                Text(
                    f"{name}: live transcript (Enter unfolds · Esc interrupts · "
                    f"Ctrl+L back to the lead)",
                    style="bold",
                )
            )
            self.query_one("#transcript", Tree).clear()
            self.query_one("#live", Static).update("")
            self._reading_for = None  # the worker reads it afresh
            self.query_one("#right", Deck).current = "focus"
        self._placeholder()
        self._show_members()
        self.query_one("#say", Input).focus()

    def _placeholder(self) -> None:
        if self.channel_open is not None and self._on_channels():
            self.query_one(
                "#say", Input
            ).placeholder = (
                f"post to {self.channel_open} as you; Enter sends · Esc back to the channels"
            )
            return
        to = self.following or self.lead or "the lead"
        self.query_one("#say", Input).placeholder = f"write to {to}; Enter sends" + (
            " · Esc interrupts it · Ctrl+X stops it" if self.following else ""
        )

    def _on_channels(self) -> bool:
        return self.query_one("#right", Deck).current == "channels-pane"

    def action_pane(self, pane: str) -> None:
        switcher = self.query_one("#right", Deck)
        pane = "board-pane" if pane == "board" else pane
        if pane in ("board-pane", "channels-pane") and switcher.current == pane:
            pane = "focus" if self.following else "chat"  # Ctrl+T and Ctrl+G toggle
        if pane == "chat":
            self.following = None
        switcher.current = pane
        self._placeholder()
        if pane == "events-pane":
            self.query_one("#filter", Input).focus()
        elif pane == "channels-pane":
            self.channels_due = True
            self.nudged.set()
            if self.channel_open is None:
                self.query_one("#channel-list", DataTable).focus()
            else:
                self.query_one("#say", Input).focus()
        elif self.focused is not None and self.focused.id == "channel-list":
            self.query_one("#say", Input).focus()

    def action_toggle_idle(self) -> None:
        self.show_idle = not self.show_idle
        self._show_members()

    # the person's words and decisions --------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "say":
            return
        text = event.value.strip()
        if not text and self._on_channels():
            if self.channel_open is None and (name := self.selected_channel()) is not None:
                self.open_channel(name)
            return
        if not text:  # Enter on an empty line opens the selected member, as in Claude Code
            if self.query_one("#right", Deck).current == "board-pane":
                board = self.query_one("#board", DataTable)
                if board.row_count:
                    row = board.coordinate_to_cell_key(Coordinate(board.cursor_row, 0)).row_key
                    self.show_task(int(str(row.value)))
                return
            name = self.selected()
            if name is not None:
                self.open_member(name)
            return
        if self.channel_open is not None and self._on_channels():
            event.input.value = ""
            self._channel_write("post", self.channel_open, text)
            return
        to = self.following or self.lead
        if to is None:
            self.notify("no lead to write to: the team has no run", severity="error")
            return
        event.input.value = ""
        self.send(to, text)

    @work(thread=True, group="write")
    def send(self, to: str, text: str, kind: MessageKind = MessageKind.TEXT) -> None:
        try:
            self._writer().mailbox.send(PERSON, to, text, kind=kind)
        except AccordError as e:
            self.call_from_thread(self.notify, f"not sent: {e}", severity="error")
            return
        if kind == MessageKind.INTERRUPT:
            done = f"asked {to} to stop after its current tool call; write what it should do"
        else:
            done = f"sent to {to}"
        self.call_from_thread(self.notify, done)

    def _writer(self) -> Team:
        if self.writer is None:
            self.writer = Team(open_store(self.location), self.team_name)
        return self.writer

    def action_interrupt(self) -> None:
        switcher = self.query_one("#right", Deck)
        if switcher.current == "channels-pane" and self.channel_open is not None:
            self.close_channel()  # Esc: from a channel back to the list
            return
        if self.following is None:
            if switcher.current != "chat":
                self.action_pane("chat")
            return
        if switcher.current != "focus":
            switcher.current = "focus"
            return
        self.send(self.following, "The person pressed Esc.", MessageKind.INTERRUPT)

    def action_stop_member(self) -> None:
        name = self.following or self.selected()
        if name is None:
            return
        whole = name == self.lead
        question = (
            f"Stop the whole team {self.team_name}? (It can be resumed.)"
            if whole
            else f"Ask {name} to shut down?"
        )

        def stop(yes: bool | None) -> None:
            if yes:
                self._stop(None if whole else name)

        self.push_screen(Confirm(question), stop)

    @work(thread=True, group="write")
    def _stop(self, member: str | None) -> None:
        from accord.runtime.team_run import stop

        try:
            said = stop(self._writer(), member)
        except AccordError as e:
            self.call_from_thread(self.notify, str(e), severity="error")
            return
        self.call_from_thread(self.notify, said)

    def action_answer(self, yes: bool) -> None:
        if not self.asks:
            self.notify("nothing waits for an answer")
            return
        ask = self.asks[0]
        verb = (
            ("approve" if yes else "reject") if ask.kind == "plan" else ("allow" if yes else "deny")
        )
        question = f"{verb} {ask.member}'s {'plan' if ask.kind == 'plan' else ask.what}?"

        def answer(reason: str | None) -> None:
            if reason is not None:
                self._answer(ask, yes, reason)

        self.push_screen(Reason(question), answer)

    @work(thread=True, group="write")
    def _answer(self, ask: OpenAsk, yes: bool, reason: str) -> None:
        from accord.team.asks import Asks

        try:
            Asks(self._writer()).answer(ask, yes=yes, reason=reason)
        except AccordError as e:
            self.call_from_thread(self.notify, str(e), severity="error")
            return
        self.asks = [a for a in self.asks if a.id != ask.id]
        self.call_from_thread(self._show_asks)
        self.call_from_thread(self.notify, f"answered {ask.member}")

    # a task's story ---------------------------------------------------------------------

    @work(thread=True, group="write")
    def show_task(self, task_id: int) -> None:
        from accord.cli._live import describe
        from accord.tui.feed import Feed

        try:
            task, events, work = Feed(self._writer()).task_story(task_id)
        except AccordError as error:
            self.call_from_thread(self.notify, str(error), severity="error")
            return
        text = Text(f"#{task.id} {line(task.title, 200)}\n", style="bold")
        text.append(f"{task.status.value}, owner {task.owner or '-'}, ")
        text.append(f"attempts {task.attempts}/{task.max_attempts}\n\n")
        text.append(shown(task.description[:FOLD_CHARS]) or "(no description)")
        if task.result:
            text.append("\n\nresult: ", style="bold")
            text.append(shown(task.result[:FOLD_CHARS]))
        if task.reason:
            text.append("\n\nreason: ", style="bold")
            text.append(shown(task.reason[:FOLD_CHARS]))
        text.append("\n\nwhat happened:\n", style="bold")
        for e in events:
            stamp = time.strftime("%H:%M:%S", time.localtime(e.at))
            text.append(f"{stamp} {e.actor or '-'}: {line(describe(e), 150)}\n")
        if work:
            text.append(
                f"\n{len(work)} transcript entries of its work (newest 30):\n", style="bold"
            )
            for entry in work[-30:]:
                said = entry.body.get("text") or ", ".join(
                    str(c.get("name")) for c in entry.body.get("tool_calls", ())
                )
                text.append(f"  {entry.member}: {line(said or entry.kind, 150)}\n")
        self.call_from_thread(self.push_screen, Story(text))
