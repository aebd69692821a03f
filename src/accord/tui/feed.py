"""What the person's seat shows, read from the store a little at a time.

A ``Feed`` keeps a picture of one team and brings it up to date with ``refresh``,
which reads only what changed since the last one: nothing at all when the store's
change marker has not moved; otherwise the events after the last one seen, the tasks
those events name, the roster (a few dozen rows), and the run. Costs, open asks and
the person's conversation are read again only when an event says they changed. So a
view attached to a team with 100,000 events and 2,000 tasks costs one cheap read per
refresh while the team is quiet, and a few small ones while it works.

Everything a refresh found new comes back as a ``Change``; the view applies it. The
feed does no rendering, and it never writes. ``ChannelFeed`` does the same for the
channels pane: it reads the listing again only when an event names a channel, and an
open channel's posts after the last one shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from accord.cli._live import Actions
from accord.errors import AccordError
from accord.events import EventKind
from accord.team.asks import Asks, OpenAsk
from accord.types import (
    PERSON,
    Event,
    LiveOutput,
    Member,
    MemberRole,
    MemberStatus,
    Message,
    Route,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    TranscriptEntry,
    UsageTotal,
)

if TYPE_CHECKING:
    from accord.team import Team

#: Events read per refresh at most: a view far behind catches up over a few refreshes.
CHUNK = 5000
#: More tasks than this named by one refresh's events: read the whole board instead.
WHOLE_BOARD = 64
#: Costs are summed again at most this often while model calls come in.
COST_EVERY = 1.0
#: Without any change, look again this often anyway (a supervisor's lease running out,
#: an ask's deadline, a member's heartbeat going quiet are changes of time alone).
IDLE_EVERY = 2.0
#: Events the events pane keeps.
EVENTS_KEPT = 5000
_CHANNEL_KINDS = frozenset(
    {EventKind.CHANNEL_CREATED, EventKind.CHANNEL_JOINED, EventKind.CHANNEL_LEFT}
)
_ROUTE_KINDS = frozenset(
    {EventKind.MESSAGE_ROUTED, EventKind.MESSAGE_ANSWERED, EventKind.ANSWER_JUDGED}
)
#: Posts a channel shows when it opens: its newest (the whole is `accord channel read`).
#: Textual wraps and lays out each line shown: 200 take about 40 ms, 500 about 100.
CHANNEL_SHOWN = 200
_ASK_KINDS = frozenset(
    {"plan_approval_request", "plan_approval_response", "permission_request", "permission_response"}
)


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One member as the members panel shows it."""

    name: str
    role: str
    status: MemberStatus
    task: Task | None  # the task it holds
    action: str  # its last meaningful action, in words
    context: int | None  # tokens of its last model call: how full its context is
    cost_usd: float
    unpriced: int
    reason: str | None  # why it is not running (failed, crashed, stopped for a budget)


@dataclass(frozen=True, slots=True)
class Costs:
    """What the team spent: by member, task and model, the total, and the budget."""

    by_member: tuple[UsageTotal, ...]
    by_task: tuple[UsageTotal, ...]
    by_model: tuple[UsageTotal, ...]
    total: UsageTotal
    budget_usd: float | None


@dataclass(slots=True)
class Change:
    """What one refresh found: ``None`` fields did not change."""

    run: Run | None = None
    gone: str | None = None  # why the supervisor is gone, when it is
    outcome: dict[str, str] | None = None  # how the run ended
    members: list[MemberRow] | None = None
    tasks: list[Task] = field(default_factory=list)  # tasks new or changed
    whole_board: bool = False  # ``tasks`` is the whole board
    events: list[Event] = field(default_factory=list)  # new events, oldest first
    costs: Costs | None = None
    asks: list[OpenAsk] | None = None
    said: list[Message] = field(default_factory=list)  # new mail to or from the person
    behind: bool = False  # more events wait: refresh again at once
    channels: bool = False  # a channel, its subscribers or its posts changed
    routed: set[int] = field(default_factory=set)  # messages whose route changed


class Feed:
    """One team's picture, kept current from the store (see the module docstring)."""

    def __init__(self, team: Team) -> None:
        self.team = team
        self.marker: int | None = None
        self.looked = 0.0
        self.actions = Actions()
        self.tasks: dict[int, Task] = {}
        self.context: dict[str, int] = {}  # tokens of each member's last model call
        self._spent: dict[str, UsageTotal] = {}  # each member's cost, as last summed
        self.said_seen = 0  # newest id of the person's mail shown
        self.costs_at = 0.0
        self.costs_due = True
        self.asks_due = True
        self.started = False

    # the refresh -------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> Change | None:
        """What changed since the last refresh, or None when nothing did. Raises the
        store's errors (``StoreUnavailable`` while a server restarts): the caller says
        so and tries again."""
        marker = self.team.log.change_marker()
        now = time.monotonic()
        quiet = marker == self.marker and now - self.looked < IDLE_EVERY
        if quiet and not force and not (self.costs_due and now - self.costs_at >= COST_EVERY):
            return None
        self.marker, self.looked = marker, now
        change = Change()
        run = self.team.runs.get()
        members = self.team.roster.list()
        if not self.started:
            self._start(change, members, run)
        else:
            events = self.team.log.read_events(since=self.actions.seq, limit=CHUNK)
            change.behind = len(events) == CHUNK
            self.actions.take(events)
            self._take(change, events)
        self._rows(change, members, run)
        if self.costs_due and now - self.costs_at >= COST_EVERY:
            change.costs = self._costs()
            self.costs_at, self.costs_due = now, False
        if self.asks_due:
            # An ask's deadline passes with no event: while any is open, asks are read
            # again on each look.
            change.asks = Asks(self.team).pending()
            self.asks_due = bool(change.asks)
        return change

    def _start(self, change: Change, members: list[Member], run: Run | None) -> None:
        """The first refresh: the whole board, and only the newest events."""
        over = run is not None and run.status in (RunStatus.STOPPED, RunStatus.FINISHED)
        self.actions.catch_up(self.team.log, members, over)
        end = self.actions.seq
        recent = self.team.log.read_events(since=max(0, end - EVENTS_KEPT))
        change.events = recent
        for e in recent:
            self._model_call(e)
        change.tasks = self.team.board.list()
        change.whole_board = True
        self.tasks = {t.id: t for t in change.tasks}
        change.said = self._said()
        self.started = True

    def _take(self, change: Change, events: list[Event]) -> None:
        change.events = events
        named: set[int] = set()
        said = False
        for e in events:
            self._model_call(e)
            kind = e.kind
            if kind.startswith("task_") or kind == EventKind.LEASE_EXPIRED:
                for key in ("id", "unblocked"):
                    value = e.payload.get(key)
                    if isinstance(value, int):
                        named.add(value)
                    elif isinstance(value, list):
                        named.update(v for v in value if isinstance(v, int))
            elif kind == EventKind.MESSAGE_SENT:
                if PERSON in (e.payload.get("from"), e.payload.get("to")):
                    said = True
                if e.payload.get("kind") in _ASK_KINDS:
                    self.asks_due = True
            elif kind.startswith("permission_"):
                self.asks_due = True
            if kind in _CHANNEL_KINDS or (
                kind == EventKind.MESSAGE_SENT and e.payload.get("channel")
            ):
                change.channels = True
            elif kind == EventKind.MESSAGES_ACKED and e.payload.get("by") == PERSON:
                change.channels = True  # the person's unread counts moved
            if kind in _ROUTE_KINDS and isinstance(e.payload.get("id"), int):
                change.routed.add(e.payload["id"])
        if len(named) > WHOLE_BOARD:
            change.tasks = self.team.board.list()
            change.whole_board = True
            self.tasks = {t.id: t for t in change.tasks}
        else:
            for task_id in sorted(named):
                try:
                    task = self.team.board.get(task_id)
                except AccordError:  # removed since (a task its hooks refused)
                    self.tasks.pop(task_id, None)
                    continue
                self.tasks[task_id] = task
                change.tasks.append(task)
        if said:
            change.said = self._said()

    def _model_call(self, e: Event) -> None:
        if e.kind == EventKind.MODEL_CALL:
            self.costs_due = True
            member, tokens = e.payload.get("member"), e.payload.get("tokens")
            if isinstance(member, str) and isinstance(tokens, int):
                self.context[member] = tokens

    def _rows(self, change: Change, members: list[Member], run: Run | None) -> None:
        from accord.runtime.lifecycle import supervisor_gone

        change.run = run
        change.gone = supervisor_gone(run) if run is not None else None
        over = run is not None and run.status in (RunStatus.STOPPED, RunStatus.FINISHED)
        change.outcome = self.actions.ended if over else None
        held = {t.owner: t for t in self.tasks.values() if t.status == TaskStatus.IN_PROGRESS}
        spent = self._spent
        change.members = [
            MemberRow(
                name=m.name,
                role=m.role.value,
                status=m.status,
                task=held.get(m.name),
                action=self.actions.last.get(m.name, ""),
                context=self.context.get(m.name),
                cost_usd=spent[m.name].cost_usd if m.name in spent else 0.0,
                unpriced=spent[m.name].unpriced_calls if m.name in spent else 0,
                reason=self.actions.why.get(m.name)
                if m.status in (MemberStatus.FAILED, MemberStatus.CRASHED, MemberStatus.STOPPED)
                else None,
            )
            for m in sorted(members, key=lambda m: m.role != MemberRole.LEAD)  # lead first
        ]

    def _costs(self) -> Costs:
        runs = self.team.runs
        by_member = tuple(runs.usage_totals(by="member"))
        self._spent = {t.key: t for t in by_member if t.key is not None}
        return Costs(
            by_member=by_member,
            by_task=tuple(runs.usage_totals(by="task")),
            by_model=tuple(runs.usage_totals(by="model")),
            total=runs.usage_totals()[0],
            budget_usd=runs.run_budget_usd(),
        )

    def _said(self) -> list[Message]:
        """Mail to or from the person not shown yet (the newest 200 at first)."""
        mail = [m for m in self.team.mailbox.history(PERSON, limit=200) if m.id > self.said_seen]
        if mail:
            self.said_seen = mail[-1].id
        return mail

    # reads the view asks for itself ---------------------------------------------------

    def transcript(self, member: str, since: int = 0, limit: int = 2000) -> list[TranscriptEntry]:
        """A member's saved entries after ``since``; at first, only its newest ``limit``."""
        if since == 0:
            newest = self.team.log.last_session(member)
            if not newest:
                return []
            return self.team.log.read_transcript(member, session=newest)[-limit:]
        return self.team.log.read_transcript(member, since=since)

    def live(self, member: str) -> LiveOutput | None:
        """What the member's model is writing right now (None between model calls)."""
        return self.team.log.live(member)

    def task_story(self, task_id: int) -> tuple[Task, list[Event], list[TranscriptEntry]]:
        """A task, the events about it (hook runs among them), and its owner's work on it
        (the transcript entries of the sessions that held it)."""
        task = self.team.board.get(task_id)
        events = [
            e
            for e in self.team.log.read_events(since=max(0, self.actions.seq - EVENTS_KEPT))
            if e.payload.get("id") == task_id or e.payload.get("task_id") == task_id
        ]
        owners = {str(e.payload.get("owner")) for e in events if e.payload.get("owner")}
        work: list[TranscriptEntry] = []
        for owner in sorted(owners):
            work += [e for e in self.team.log.read_transcript(owner) if e.task_id == task_id]
        return task, events, work


# the channels pane ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """One channel as the channels pane lists it, for the person."""

    name: str
    subscribers: tuple[str, ...]
    joined: bool  # the person subscribes
    unread: int  # its posts waiting in the person's inbox
    newest: Message | None


@dataclass(slots=True)
class ChannelPage:
    """What an open channel's read found: its posts, oldest first, and routes."""

    channel: str
    fresh: bool  # the channel was just opened: show only these
    posts: list[Message]
    routes: dict[int, Route]  # post id: its route, for posts new or whose route moved


class ChannelFeed:
    """The channels pane's reads, a little at a time like ``Feed``'s: the listing when
    a channel changed, and an open channel's posts after the last one shown (never its
    whole history again) with the routes of its routed posts. It never writes."""

    def __init__(self, team: Team) -> None:
        self.team = team
        self.open: str | None = None
        self.last = 0  # id of the newest post shown
        self.shown: set[int] = set()  # routed posts shown, whose routes may move
        self.unread: dict[str, int] = {}  # per channel, as the last listing found

    def rows(self) -> list[ChannelRow]:
        news = self.team.channels.news(PERSON)
        self.unread = {name: n.unread for name, n in news.items()}
        rows = []
        for c in self.team.channels.list():
            found = news.get(c.name)
            rows.append(
                ChannelRow(
                    name=c.name,
                    subscribers=c.subscribers,
                    joined=PERSON in c.subscribers,
                    unread=found.unread if found else 0,
                    newest=found.newest if found else None,
                )
            )
        return rows

    def page(self, channel: str, routed: set[int]) -> ChannelPage | None:
        """``channel``'s posts: its newest ``CHANNEL_SHOWN`` when it was not the one open,
        else those after the last shown; and the routes of posts among them or named in
        ``routed`` (routes that moved). None when nothing is new."""
        if channel != self.open:
            self.open, self.last, self.shown = channel, 0, set()
            posts = self.team.channels.read(channel, limit=CHANNEL_SHOWN, newest=True)
            routes = self._routes(posts, set())
            page = ChannelPage(channel, True, posts, routes)
        else:
            posts = self.team.channels.read(channel, since=self.last, limit=CHUNK)
            if not posts and not (routed & self.shown):
                return None
            page = ChannelPage(channel, False, posts, self._routes(posts, routed))
        if posts:
            self.last = posts[-1].id
        return page

    def unread_in(self, page: ChannelPage) -> bool:
        """Whether the person may have copies of ``page``'s posts to acknowledge: on
        opening, when the listing (read first, in the same look) counted some; later,
        when someone else posted. Acknowledging nothing would still cost a commit."""
        if page.fresh:
            return self.unread.get(page.channel, 0) > 0
        return any(m.sender != PERSON for m in page.posts)

    def _routes(self, posts: list[Message], routed: set[int]) -> dict[int, Route]:
        wanted = {m.id for m in posts if m.route_id is not None}
        self.shown |= wanted
        wanted |= routed & self.shown
        if not wanted:
            return {}
        routing = self.team.routing()
        if len(wanted) > WHOLE_BOARD:  # one read of the team's routes, not one each
            return {r.message_id: r for r in routing.routes() if r.message_id in wanted}
        found = {}
        for message_id in sorted(wanted):
            route = routing.owner(message_id)
            if route is not None:
                found[message_id] = route
        return found
