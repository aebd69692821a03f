"""The team's state as people see it: once (`accord status`) or live (`accord run`, `watch`).

On a terminal the view is drawn by rich; to a pipe, where agents and hooks read it,
`accord status` prints the same lines as plain text, without loading rich.

Every view reads the store, so it can attach from any terminal while a run goes
on, and closing it stops nothing.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from accord.events import EventKind
from accord.store import open_store
from accord.types import Event, Member, MemberStatus, RunStatus, TaskStatus

if TYPE_CHECKING:
    from accord.config import Project
    from accord.team import Team
    from accord.team.log import Log


# Model calls and status flips say little about what a member is doing.
QUIET = frozenset({EventKind.MODEL_CALL, EventKind.MEMBER_UPDATED, EventKind.MESSAGES_DELIVERED})
# The events that decide why a member is not running (and ``member_added``, before which
# nothing is about this member).
WHY_KINDS = frozenset(
    {
        EventKind.MEMBER_FAILED,
        EventKind.MEMBER_CRASHED,
        EventKind.MEMBER_GIVEN_UP,
        EventKind.SPAWN_STARTED,
        EventKind.MEMBER_RESTARTED,
        EventKind.MEMBER_STOPPED,
    }
)
NOT_RUNNING = (MemberStatus.FAILED, MemberStatus.CRASHED, MemberStatus.STOPPED)
TAIL = 512  # a view reads this many of the newest events first, then twice as many
# How far back a view looks for a member's last action, and for why a member that never
# ran is not running: an action older than this many events shows as "-".
SPAN = 2000


class Actions:
    """Each member's last meaningful action, kept current by reading only new events,
    so a view refreshing twice a second does not reread the whole log."""

    def __init__(self) -> None:
        self.seq = 0
        self.last: dict[str, str] = {}
        self.why: dict[str, str] = {}  # why a member is not running: failed, gave up
        self.ended: dict[str, str] | None = None  # the latest run's outcome and reason

    def take(self, events: list[Event]) -> None:
        """Events newer than any taken before, in order."""
        for e in events:
            self.seq = e.seq
            if e.actor and e.kind not in QUIET:
                self.last[e.actor] = describe(e)
            name = e.payload.get("name")
            if e.kind == EventKind.MEMBER_ADDED and isinstance(name, str):
                self.last.pop(name, None)  # a name added again starts afresh
                self.why.pop(name, None)
            elif e.kind == EventKind.MEMBER_FAILED and isinstance(name, str):
                self.why[name] = f"cannot start: {e.payload.get('reason')}"
            elif e.kind == EventKind.MEMBER_CRASHED and isinstance(name, str):
                lines = [x for x in str(e.payload.get("why") or "").splitlines() if x.strip()]
                last = lines[-1] if lines else f"exit {e.payload.get('exit_code')}"
                if len(lines) > 1:  # a traceback: its last line, and where the rest is
                    last += f" (whole: `accord events --json --since {e.seq - 1} --limit 1`)"
                gave_up = "crashed too often, not restarted" if e.payload.get("gave_up") else ""
                self.why[name] = f"{gave_up or 'crashed'}: {last}"
            elif e.kind == EventKind.MEMBER_GIVEN_UP and isinstance(name, str):
                self.why[name] = (
                    f"stopped ({e.payload.get('reason')}), not restarted after "
                    f"{e.payload.get('restarts')} restart(s): {e.payload.get('detail')}"
                )
            elif e.kind in (EventKind.SPAWN_STARTED, EventKind.MEMBER_RESTARTED) and isinstance(
                name, str
            ):
                self.why.pop(name, None)
            elif e.kind == EventKind.MEMBER_STOPPED and isinstance(name, str):
                if e.payload.get("reason") in ("budget", "model_error", "max_turns"):
                    detail = e.payload.get("detail")
                    self.why[name] = f"stopped ({e.payload.get('reason')}): {detail}"
                else:
                    self.why.pop(name, None)
            elif e.kind == EventKind.RUN_STARTED:
                self.ended = None
            elif e.kind == EventKind.RUN_ENDED:
                self.ended = {
                    "outcome": str(e.payload.get("outcome")),
                    "reason": str(e.payload.get("reason") or ""),
                }

    def catch_up(self, log: Log, members: list[Member], ended: bool) -> None:
        """Take the events not yet taken. The first time, take only the newest: back as far
        as decides why each member that ran is not running, and how the run ended when
        ``ended`` (the run is over), exactly as the whole log would; and each member's
        last action (and why one that never ran is not running) within the newest SPAN
        events. So `accord status`, or a view attached to a long run, reads the log's end."""
        if self.seq:
            self.take(log.read_events(since=self.seq))
            return
        end = _log_end(log)
        events: list[Event] = []
        start, size = end, TAIL
        while start > 0:
            lower = max(0, start - size)
            older = log.read_events(since=lower, limit=start - lower)
            events[:0] = [e for e in older if e.seq <= start]
            start = lower
            must, may = _open(events, members, ended)
            if not must and (not may or end - start >= SPAN):
                break
            size = size * 2 if must else min(size * 2, SPAN - (end - start))
        self.take(events)
        self.seq = max(self.seq, end)


def _log_end(log: Log) -> int:
    """The newest event's seq, found by asking whether any event follows a seq (the
    store answers that from its (team, seq) key), so no long log is read whole."""

    def after(seq: int) -> bool:
        return bool(log.read_events(since=seq, limit=1))

    if not after(0):
        return 0
    lo, hi = 0, 1  # after(lo) holds, and the end is found once after(hi) does not
    while after(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if after(mid) else (lo, mid)
    return hi


def _open(events: list[Event], members: list[Member], ended: bool) -> tuple[bool, bool]:
    """What these newest events leave undecided: whether something that must be found
    (why a member that ran is not running; how the run ended), and whether something
    looked for only within SPAN (a last action; why a stopped member that never ran is
    stopped: no heartbeat, so it cannot have stopped itself for a budget or a model)."""
    acted = {m.name for m in members}
    never_ran = {
        m.name for m in members if m.status == MemberStatus.STOPPED and m.heartbeat_at is None
    }
    must = {m.name for m in members if m.status in NOT_RUNNING} - never_ran
    may = set(never_ran)
    run = ended
    for e in reversed(events):
        name = e.payload.get("name")
        if e.actor and e.kind not in QUIET:
            acted.discard(e.actor)
        if e.kind == EventKind.MEMBER_ADDED:
            acted.discard(name)
            must.discard(name)
            may.discard(name)
        elif e.kind in WHY_KINDS:
            must.discard(name)
            may.discard(name)
        elif e.kind in (EventKind.RUN_STARTED, EventKind.RUN_ENDED):
            run = False
        if not acted and not must and not may and not run:
            break
    return bool(must) or run, bool(acted) or bool(may)


def status_data(bound: Team, actions: Actions | None = None) -> dict[str, Any]:
    """One JSON-ready picture of the team: run, members, board, latest messages.

    A view that refreshes passes the same ``actions`` every time."""
    from accord.runtime.lifecycle import supervisor_gone

    team = bound.name
    run = bound.runs.get()
    members = bound.roster.list()
    tasks = bound.board.list()
    spend = {t.key: t for t in bound.runs.usage_totals(by="member")}
    actions = actions or Actions()
    over = run is not None and run.status in (RunStatus.STOPPED, RunStatus.FINISHED)
    actions.catch_up(bound.log, members, over)
    last_action = actions.last
    gone = supervisor_gone(run) if run is not None else None
    held = {t.owner: t for t in tasks if t.status == TaskStatus.IN_PROGRESS}
    counts = {s.value: sum(1 for t in tasks if t.status == s) for s in TaskStatus}
    counts["ready"] = sum(1 for t in tasks if t.ready)
    total = bound.runs.usage_totals()[0]
    now = time.time()
    hosts = bound.runs.hosts()
    return {
        "v": 1,
        "team": team,
        "run": None
        if run is None
        else {
            "goal": run.goal,
            "status": run.status.value,
            "summary": run.summary,
            "lead": run.lead,
            "wanted": list(run.wanted),
            "supervisor": {
                "pid": run.supervisor_pid,
                "host": run.supervisor_host,
                "alive": gone is None and run.status in (RunStatus.RUNNING, RunStatus.STOPPING),
                "gone": gone,
            },
            # How it ended, whole: finished, stopped, interrupted, budget, model_error,
            # crashed, config, stalled, store_lost (None while it runs).
            "outcome": actions.ended
            if run.status in (RunStatus.STOPPED, RunStatus.FINISHED)
            else None,
        },
        "members": [
            {
                "name": m.name,
                "role": m.role.value,
                "status": m.status.value,
                "host": m.host,
                "task": held[m.name].id if m.name in held else None,
                "task_title": held[m.name].title if m.name in held else None,
                "last_action": last_action.get(m.name),
                "reason": actions.why.get(m.name)
                if m.status in (MemberStatus.FAILED, MemberStatus.CRASHED, MemberStatus.STOPPED)
                else None,
                "heartbeat_at": m.heartbeat_at,
                "cost_usd": round(spend[m.name].cost_usd, 6) if m.name in spend else 0.0,
                "unpriced_calls": spend[m.name].unpriced_calls if m.name in spend else 0,
            }
            for m in members
        ],
        "hosts": [
            {
                "host": h.host,
                "machine": h.machine,
                "pid": h.pid,
                "slots": h.slots,
                "live": h.live(now),
                "status": h.status if h.status != "live" or h.live(now) else "silent",
                "members": sorted(m.name for m in members if m.host == h.host),
            }
            for h in hosts
        ],
        "board": counts,
        "in_progress": [
            {"id": t.id, "title": t.title, "owner": t.owner}
            for t in tasks
            if t.status == TaskStatus.IN_PROGRESS
        ],
        "messages": [
            {
                "id": m.id,
                "from": m.sender,
                "to": m.recipient,
                "kind": m.kind.value,
                "summary": m.summary or _clip(m.body, 70),
            }
            for m in bound.mailbox.history(limit=6)
        ],
        "cost_usd": round(total.cost_usd, 6),
        "unpriced_calls": total.unpriced_calls,
    }


# Where what the view cuts short is whole.
WHOLE = "`accord status --json`"
MAIL_WHOLE = "`accord msg list`"
MEMBER_HEADERS = ("member", "role", "status", "task", "last action", "cost")


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of the view: spans of text, each with the rich style a terminal shows."""

    spans: tuple[tuple[str, str], ...]

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.spans)


@dataclass(frozen=True, slots=True)
class _Grid:
    """One table of the view."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str | None = None


def _line(text: str, style: str = "") -> _Line:
    return _Line(((text, style),))


def _parts(data: dict[str, Any], lines: deque[str] | None = None) -> list[_Line | _Grid]:
    """What the view shows, in order: the same for a terminal (rich) and a pipe (plain).

    Whatever is cut short says where it is whole."""
    from accord.cli._plain import printable

    data = printable(data)  # what members wrote, without escape sequences
    run = data["run"]
    head: list[tuple[str, str]] = [(f"team {data['team']}", "bold")]
    if run:
        head.append((f"  {run['status']}", "green" if run["status"] == "running" else ""))
        head.append((f"  goal: {_clip(run['goal'], 80, f' (whole: {WHOLE})')}", ""))
    cost = f"  ${data['cost_usd']:.4f}"
    if data["unpriced_calls"]:
        cost += f" (+{data['unpriced_calls']} unpriced calls)"
    head.append((cost, ""))
    parts: list[_Line | _Grid] = [_Line(tuple(head))]
    if run and run["supervisor"]["gone"]:
        parts.append(
            _line(
                f"the team is not running: {run['supervisor']['gone']}; "
                f"`accord resume --team {data['team']}` brings it back",
                "bold red",
            )
        )
    if run and run.get("outcome"):
        o = run["outcome"]
        parts.append(_line(f"ended ({o['outcome']}): {o['reason']}", "bold"))
    rows: list[tuple[str, ...]] = []
    why: list[str] = []
    for m in data["members"]:
        task = f"#{m['task']} {_clip(m['task_title'] or '', 30)}" if m["task"] else "-"
        rows.append(
            (
                m["name"],
                m["role"],
                m["status"],
                task,
                _clip(m["last_action"] or "-", 48),
                f"${m['cost_usd']:.4f}",
            )
        )
        if m.get("reason"):
            why.append(f"{m['name']} {m['reason']}")
    members = _Grid(MEMBER_HEADERS, tuple(rows))
    parts.append(members)
    if _cut(members):
        parts.append(_line(f"cut short (…): whole in {WHOLE}", "dim"))
    for line in why:
        parts.append(_line(_clip(line, 300, f" (whole: {WHOLE})"), "red"))
    b = data["board"]
    parts.append(
        _line(
            f"board: {b['pending']} pending ({b['ready']} ready), {b['in_progress']} in "
            f"progress, {b['completed']} completed, {b['failed']} failed, "
            f"{b['cancelled']} cancelled"
        )
    )
    if len(data["hosts"]) > 1 or any(h["slots"] for h in data["hosts"]):
        parts.append(
            _line(
                "hosts: "
                + "; ".join(
                    f"{h['host']} {h['status']}"
                    + (f", slots {h['slots']}" if h["slots"] else "")
                    + (f": {', '.join(h['members'])}" if h["members"] else "")
                    for h in data["hosts"]
                )
            )
        )
    if data["messages"]:
        mail = _Grid(
            ("id", "from", "to", "kind", "summary"),
            tuple(
                (str(m["id"]), m["from"], m["to"], m["kind"], m["summary"])
                for m in data["messages"]
            ),
            "latest messages",
        )
        parts.append(mail)
        if _cut(mail):  # a message without a summary shows the start of its body
            parts.append(_line(f"cut short (…): whole in {MAIL_WHOLE}", "dim"))
    if lines:
        parts.append(_line("\n".join(lines), "dim"))
    return parts


def _cut(grid: _Grid) -> bool:
    return any(cell.endswith("…") for row in grid.rows for cell in row)


def view(data: dict[str, Any], lines: deque[str] | None = None) -> Any:
    """A rich renderable of ``status_data``, for a terminal."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    shown: list[Any] = []
    for part in _parts(data, lines):
        if isinstance(part, _Line):
            text = Text()
            for span, style in part.spans:
                text.append(span, style=style)
            shown.append(text)
            continue
        table = Table(
            *part.headers,
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            title=part.title,
            title_justify="left",
        )
        for row in part.rows:
            table.add_row(*row)
        shown.append(table)
    return Group(*shown)


class Fitted:
    """A live view cut to the terminal's height, its last line saying where the whole view
    is (rich's own cut is a bare "...")."""

    def __init__(self, shown: Any, team: str) -> None:
        self.shown = shown
        self.team = team

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment
        from rich.text import Text

        lines = console.render_lines(self.shown, options, pad=False)
        height = options.size.height
        if len(lines) > height:
            more = Text(
                f"… cut to fit the terminal: whole in `accord status --team {self.team}`",
                style="dim",
                no_wrap=True,
                overflow="crop",
                end="",
            )
            lines = [*lines[: height - 1], console.render_lines(more, options, pad=False)[0]]
        for i, line in enumerate(lines):
            if i:
                yield Segment.line()
            yield from line


def plain(data: dict[str, Any]) -> None:
    """``status_data`` for a pipe, as agents and hooks read it: the view's content without
    its styles, every line whole (rich would fold long ones at 80 columns), and tables
    by ``_render.table``, so a plain team loads no rich."""
    from accord.cli._render import say, table

    for part in _parts(data):
        if isinstance(part, _Line):
            say(part.text)
            continue
        if part.title:
            say(part.title)
        table(part.headers, part.rows)


def render_status(data: dict[str, Any]) -> None:
    if not sys.stdout.isatty():
        plain(data)
        return
    from rich.console import Console

    Console(markup=False, emoji=False).print(view(data))


def supervise_live(
    project: Project, team: Team, host: str | None = None, slots: int | None = None
) -> RunStatus:
    """Run the supervisor with a view that refreshes in place."""
    from rich.console import Console
    from rich.live import Live

    from accord.runtime.supervisor import Supervisor
    from accord.team import Team

    lines: deque[str] = deque(maxlen=6)
    reader = open_store(project.store_location)  # the view reads on its own connection
    seen = Team(reader, team.name)
    actions = Actions()
    try:
        with Live(
            get_renderable=lambda: Fitted(view(status_data(seen, actions), lines), team.name),
            console=Console(markup=False, emoji=False),
            refresh_per_second=2,
            transient=False,
        ):
            return Supervisor(project, team, say=lines.append, host=host, slots=slots).run()
    finally:
        reader.close()


def watch(team: Team, until: float | None = None) -> None:
    """Show the live view until Ctrl+C (or ``until``); it only reads."""
    from rich.console import Console
    from rich.live import Live

    actions = Actions()
    with Live(
        Fitted(view(status_data(team, actions)), team.name),
        console=Console(markup=False, emoji=False),
        refresh_per_second=2,
    ) as live:
        try:
            while until is None or time.monotonic() < until:
                time.sleep(0.5)
                live.update(Fitted(view(status_data(team, actions)), team.name))
        except KeyboardInterrupt:
            pass


def _ids(value: Any) -> str:
    return ", ".join(f"#{i}" for i in value) if isinstance(value, list) else str(value)


def _said(text: Any, n: int = 60) -> str:
    return _clip(str(text or ""), n)


# What an event says its actor did, in words: "took #3", not "task_claimed id=3".
_WORDS: dict[str, Any] = {
    EventKind.TASK_CLAIMED: lambda p: f"took task #{p.get('id')}",
    EventKind.TASK_COMPLETED: lambda p: (
        f"finished task #{p.get('id')}"
        + (f", which unblocked {_ids(p['unblocked'])}" if p.get("unblocked") else "")
    ),
    EventKind.TASK_FAILED: lambda p: f"gave up task #{p.get('id')}: {_said(p.get('reason'))}",
    EventKind.TASK_CREATED: lambda p: f"added task #{p.get('id')} {_said(p.get('title'), 40)}",
    EventKind.TASK_UPDATED: lambda p: f"changed task #{p.get('id')}",
    EventKind.TASK_CANCELLED: lambda p: f"cancelled task #{p.get('id')}",
    EventKind.LEASE_EXPIRED: lambda p: f"lost task #{p.get('id')}: its lease ran out",
    EventKind.FILES_CLAIMED: lambda p: f"claimed files {_said(', '.join(p.get('patterns') or []))}",
    EventKind.FILES_RELEASED: lambda p: "released files",
    EventKind.MESSAGES_ACKED: lambda p: f"read {len(p.get('ids') or [])} message(s)",
    EventKind.CHANNEL_CREATED: lambda p: f"created channel {p.get('channel')}",
    EventKind.CHANNEL_JOINED: lambda p: f"joined {p.get('channel')}",
    EventKind.CHANNEL_LEFT: lambda p: f"left {p.get('channel')}",
    EventKind.MESSAGE_ROUTED: lambda p: (
        f"routed message #{p.get('id')} to {p.get('owner')} ({_said(p.get('rule'), 40)})"
    ),
    EventKind.SPAWN_REQUESTED: lambda p: f"asked for a teammate, {p.get('name')}",
    EventKind.MEMORY_ADDED: lambda p: f"remembered a {p.get('type')}",
    EventKind.CONTINUITY_WRITTEN: lambda p: "wrote its continuity note",
    EventKind.HOOK_RUN: lambda p: (
        f"a {p.get('event')} hook refused: {_said(p.get('stderr'), 50)}"
        if p.get("blocked")
        else f"ran a {p.get('event')} hook (exit {p.get('exit_code')})"
    ),
    EventKind.TASK_MERGED: lambda p: f"merged task #{p.get('id')} into the team's branch",
    EventKind.MERGE_REFUSED: lambda p: f"merge of task #{p.get('id')} refused ({p.get('why')})",
    EventKind.MEMBER_SYNCED: lambda p: "synced with the team's branch",
    EventKind.PERMISSION_ASKED: lambda p: f"waits for permission to use {p.get('tool')}",
    EventKind.PERMISSION_DENIED: lambda p: f"was denied {p.get('tool')}",
    EventKind.PERMISSION_ANSWERED: lambda p: (
        f"{'allowed' if p.get('allowed') else 'denied'} {p.get('member')}'s {p.get('tool')}"
    ),
    EventKind.CONTEXT_COMPACTED: lambda p: "compacted its context",
    EventKind.BUDGET_EXCEEDED: lambda p: f"ran over budget: {_said(p.get('why'))}",
    EventKind.MEMBER_STOPPED: lambda p: f"stopped ({p.get('reason')})",
    EventKind.RUN_UPDATED: lambda p: (
        f"set the run {p['status']}" if p.get("status") else "changed the run"
    ),
}
_MESSAGE_WORDS = {
    "shutdown_request": "asked {to} to shut down",
    "shutdown_response": "answered {to}'s shutdown request",
    "plan_approval_request": "sent a plan to {to}",
    "plan_approval_response": "answered {to}'s plan",
    "permission_request": "asks {to} for permission",
    "permission_response": "answered {to}'s permission ask",
    "idle_notification": "went idle",
    "interrupt": "interrupted {to}",
}


def describe(e: Event) -> str:
    """What ``e`` says its actor did, in words, on one line."""
    p = e.payload
    if e.kind == EventKind.MESSAGE_SENT:
        to = "everyone" if p.get("to") == "*" else p.get("to")
        pattern = _MESSAGE_WORDS.get(str(p.get("kind")))
        if pattern is not None:
            return pattern.format(to=to)
        verb = "posted in" if p.get("channel") else "wrote to"
        return f"{verb} {to}" + (f": {_said(p['summary'], 50)}" if p.get("summary") else "")
    words = _WORDS.get(e.kind)
    if words is not None:
        try:
            return str(words(p))
        except (KeyError, TypeError):
            pass
    return f"{str(e.kind).replace('_', ' ')} {_brief(p)}".strip()


def _brief(payload: dict[str, Any]) -> str:
    for key in ("id", "name", "to", "model"):
        if key in payload and payload[key] is not None:
            return f"{key}={payload[key]}"
    return ""


def _clip(text: str, n: int, where: str = "") -> str:
    """``text`` on one line, cut to ``n`` characters with ``where`` it is whole."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…" + where
