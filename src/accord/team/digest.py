"""The lead's digest: a compact, bounded picture of the team and of what changed.

The lead never reads teammates' full output. Each time it wakes it reads this:
board counts, what is running and ready (a few of each), what changed since it
last looked (capped, newest first, idle notices folded into one line), and the
members with their spend. Its size depends on the caps, not on how many tasks
the team has done, so a run of any length keeps the lead's prompt bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from accord.events import EventKind
from accord.types import Event, TaskStatus

if TYPE_CHECKING:
    from accord.store.base import Store

SHOWN = 8  # running / ready tasks listed
CHANGES = 12  # changes listed since the last look
CLIP = 160  # characters of a result or reason

_INTERESTING = {
    EventKind.TASK_COMPLETED,
    EventKind.TASK_FAILED,
    EventKind.TASK_CANCELLED,
    EventKind.LEASE_EXPIRED,
    EventKind.MEMBER_CRASHED,
    EventKind.MEMBER_RESTARTED,
    EventKind.MEMBER_GIVEN_UP,
    EventKind.MEMBER_STOPPED,
    EventKind.SPAWN_STARTED,
    EventKind.SPAWN_REFUSED,
    EventKind.BUDGET_EXCEEDED,
    EventKind.HOST_LOST,
    EventKind.MEMBER_FAILED,
    EventKind.RUN_RESUMED,
    EventKind.MESSAGE_ANSWERED,
}


@dataclass(frozen=True, slots=True)
class Digest:
    text: str
    seq: int  # the last event it accounts for
    changes: int  # how many interesting changes since the previous look


def interesting_since(store: Store, team: str, since: int, lead: str) -> list[Event]:
    """Changes since ``since`` worth waking the lead for (never its own doings)."""
    return [e for e in store.read_events(team, since=since) if _matters(e, lead)]


def _matters(e: Event, lead: str) -> bool:
    if e.actor == lead or e.payload.get("name") == lead or e.payload.get("member") == lead:
        return False
    if e.kind == EventKind.MEMBER_UPDATED:
        return e.payload.get("status") in ("idle", "crashed")
    if e.kind == EventKind.MESSAGE_ROUTED:  # moved: a lease ran out, or its owner let go
        return "previous" in e.payload
    if e.kind == EventKind.SKILL_REVISED:  # a revision waits for a review
        return e.payload.get("status") == "pending"
    return e.kind in _INTERESTING


def build(store: Store, team: str, since: int, lead: str) -> Digest:
    events = store.read_events(team, since=since)
    last = events[-1].seq if events else since
    changes = [e for e in events if _matters(e, lead)]
    tasks = store.list_tasks(team)
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.status.value] = counts.get(t.status.value, 0) + 1
    ready = [t for t in tasks if t.ready]
    running = [t for t in tasks if t.status == TaskStatus.IN_PROGRESS]
    blocked_for_good = [t for t in tasks if t.status == "pending" and t.dead_blockers]
    lines = [
        "# Board",
        (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no tasks yet")
        + (f"; {len(ready)} ready" if ready else ""),
    ]
    if running:
        lines.append(
            "in progress: " + _list([f"#{t.id} {_clip(t.title, 60)} ({t.owner})" for t in running])
        )
    if ready:
        lines.append("ready: " + _list([f"#{t.id} {_clip(t.title, 60)}" for t in ready]))
    if blocked_for_good:
        lines.append(
            "blocked for good (a blocker failed or was cancelled): "
            + _list([f"#{t.id}" for t in blocked_for_good])
        )
    routes = store.list_routes(team, unanswered=True)
    if routes:
        lines += ["", "# Routed messages not answered yet (route_assign moves one)"]
        lines.append(
            _list([f"#{r.message_id} owned by {r.owner} ({_clip(r.rule, 60)})" for r in routes])
        )
    lines += ["", "# Since you last looked"]
    lines += _changes(store, team, changes) or ["nothing new"]
    members = store.list_members(team)
    spend = {t.key: t for t in store.usage_totals(team, by="member")}
    lines += ["", "# Team"]
    for m in members:
        s = spend.get(m.name)
        cost = f", ${s.cost_usd:.2f}" if s is not None and s.calls else ""
        lines.append(f"- {m.name} ({m.role.value}, {m.status.value}{cost})")
    return Digest("\n".join(lines), last, len(changes))


def _changes(store: Store, team: str, events: list[Event]) -> list[str]:
    idle = sorted(
        {
            str(e.payload.get("name"))
            for e in events
            if e.kind == EventKind.MEMBER_UPDATED and e.payload.get("status") == "idle"
        }
    )
    others = [
        e
        for e in events
        if not (e.kind == EventKind.MEMBER_UPDATED and e.payload.get("status") == "idle")
    ]
    shown = others[-CHANGES:]
    out: list[str] = []
    if len(others) > len(shown):
        out.append(f"({len(others) - len(shown)} earlier changes not shown; see the board)")
    for e in shown:
        p = e.payload
        if e.kind == EventKind.TASK_COMPLETED:
            result = ""
            try:
                result = store.get_task(team, int(p["id"])).result or ""
            except Exception:  # noqa: BLE001 - a deleted task just shows no result
                result = ""
            out.append(f"- #{p['id']} completed by {p.get('owner')}: {_clip(result, CLIP)}")
        elif e.kind == EventKind.TASK_FAILED:
            out.append(
                f"- #{p['id']} {p.get('status')} ({p.get('owner')}): "
                f"{_clip(str(p.get('reason')), CLIP)}"
            )
        elif e.kind == EventKind.TASK_CANCELLED:
            out.append(f"- #{p['id']} cancelled")
        elif e.kind == EventKind.LEASE_EXPIRED:
            out.append(f"- #{p['id']} lease of {p.get('owner')} expired; now {p.get('status')}")
        elif e.kind == EventKind.MEMBER_UPDATED:
            out.append(f"- {p.get('name')} crashed")
        elif e.kind == EventKind.MEMBER_RESTARTED:
            after = " after a model outage" if p.get("after") == "model_error" else ""
            out.append(f"- {p.get('name')} was restarted{after} (restart {p.get('restarts')})")
        elif e.kind == EventKind.MEMBER_GIVEN_UP:
            out.append(
                f"- {p.get('name')} stopped and will not be restarted: its model was still "
                f"unreachable after {p.get('restarts')} restart(s): "
                f"{_clip(str(p.get('detail')), CLIP)}"
            )
        elif e.kind == EventKind.MEMBER_CRASHED:
            fate = "gave up restarting it" if p.get("gave_up") else "restarting it"
            out.append(f"- {p.get('name')} crashed ({fate}): {_clip(str(p.get('why')), CLIP)}")
        elif e.kind == EventKind.MEMBER_STOPPED:
            out.append(f"- {p.get('name')} stopped: {p.get('reason')}")
        elif e.kind in (EventKind.SPAWN_STARTED, EventKind.SPAWN_REFUSED):
            why = f": {p.get('reason')}" if p.get("reason") else ""
            out.append(f"- spawn of {p.get('name')} {e.kind.removeprefix('spawn_')}{why}")
        elif e.kind == EventKind.MEMBER_FAILED:
            out.append(
                f"- {p.get('name')} cannot start and will not be restarted: "
                f"{_clip(str(p.get('reason')), CLIP * 2)} (fix it, then `accord resume`, or "
                "spawn it again with another model or definition)"
            )
        elif e.kind == EventKind.MESSAGE_ANSWERED:
            out.append(f"- {p.get('member')} answered routed message #{p.get('id')}")
        elif e.kind == EventKind.MESSAGE_ROUTED and "previous" in p:
            out.append(
                f"- routed message #{p.get('id')} moved from {p.get('previous')} to "
                f"{p.get('owner')}: {p.get('rule')}"
            )
        elif e.kind == EventKind.SKILL_REVISED:
            out.append(
                f"- {e.actor} revised skill {p.get('name')}: v{p.get('version')} waits for a "
                f"review (skill_review, if the team's settings leave it to you): "
                f"{_clip(str(p.get('reason')), CLIP)}"
            )
        elif e.kind == EventKind.RUN_RESUMED:
            out.append(f"- the person resumed the run: {p.get('why')}")
        elif e.kind == EventKind.BUDGET_EXCEEDED:
            out.append(f"- {p.get('member')} stopped over budget: {p.get('why')}")
        elif e.kind == EventKind.HOST_LOST:
            who = ", ".join(p.get("members") or []) or "no member"
            out.append(
                f"- host {p.get('host')} was lost (its supervisor stopped renewing); "
                f"{who} will be started elsewhere unless pinned there"
            )
    if idle:
        out.append("- idle now: " + ", ".join(idle))
    return out


def _list(items: list[str]) -> str:
    more = f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return "; ".join(items[:SHOWN]) + more


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
