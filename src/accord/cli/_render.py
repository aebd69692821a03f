"""Output: short aligned tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from accord.errors import AccordError
from accord.events import EventKind

if TYPE_CHECKING:
    # Only for annotations: `accord --help` loads this module, and must not pay for the types.
    from accord.team import Team
    from accord.types import Event, Member, Message, Task, TranscriptEntry


def emit_json(value: Any) -> None:
    from accord.types import to_json

    sys.stdout.write(json.dumps(to_json(value), indent=2, ensure_ascii=False) + "\n")


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    age = time.time() - ts
    stamp = time.strftime("%H:%M:%S", time.localtime(ts))
    if age < 0:
        return f"{stamp} (in {_span(-age)})"
    if age < 86400:
        return f"{stamp} ({_span(age)} ago)"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    cells = [["-" if c is None or c == "" else str(c) for c in row] for row in rows]
    if title is None and not sys.stdout.isatty():
        from accord.cli._plain import simple_table

        plain = simple_table(headers, cells)  # the same bytes, without importing rich
        if plain is not None:
            sys.stdout.write(plain)
            return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(*headers, box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    for row in cells:
        t.add_row(*row)
    # Piped output is read by programs and people alike: never wrap a row. Cells are what
    # members wrote, never markup: "[/x]" in a title must print, not raise MarkupError.
    Console(
        soft_wrap=False, width=None if sys.stdout.isatty() else 400, markup=False, emoji=False
    ).print(t)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")


def say_now(text: str) -> None:
    """``say``, flushed at once: a line of long work (a run, the workers) shows as it comes."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def task_state(task: Task) -> str:
    if not task.admitted:
        return "pending (awaiting TaskCreated hook)"
    if task.status == "pending" and task.dead_blockers:
        dead = ",".join(f"#{i}" for i in task.dead_blockers)
        return f"blocked for good ({dead} failed/cancelled)"
    if task.status == "pending" and task.waiting_on:
        return "waiting on " + ",".join(f"#{i}" for i in task.waiting_on)
    if task.ready:
        return "ready"
    return task.status.value


def tasks(items: Sequence[Task]) -> None:
    if not items:
        say("no tasks")
        return
    table(
        ["id", "title", "state", "pri", "assignee", "held by", "tries"],
        [
            (
                f"#{t.id}",
                _short(t.title, 48),
                task_state(t),
                t.priority,
                t.assignee,
                t.owner if t.status == "in_progress" else None,
                f"{t.attempts}/{t.max_attempts}",
            )
            for t in items
        ],
    )
    if any(len(t.title.replace("\n", " ")) > 48 for t in items):
        say("cut short (…): whole in `accord task show ID`")


def task_detail(t: Task, claimed: Sequence[str] = ()) -> None:
    say(f"#{t.id} {t.title}")
    rows = [
        ("status", task_state(t)),
        ("priority", t.priority),
        ("assignee", t.assignee or "-"),
        ("blocked by", ", ".join(f"#{i}" for i in t.blocked_by) or "-"),
        ("attempts", f"{t.attempts} of {t.max_attempts}"),
        ("created", f"{when(t.created_at)} by {t.created_by or 'a person'}"),
        ("updated", when(t.updated_at)),
    ]
    if t.status == "in_progress":
        rows += [
            ("held by", t.owner),
            ("fencing token", t.fencing_token),
            ("lease ends", when(t.lease_expires_at)),
        ]
        if claimed:
            rows.append(("files claimed", ", ".join(claimed)))
    elif t.status == "completed":
        rows.append(("completed by", t.owner))
    if t.dead_blockers:
        dead = ", ".join(f"#{i}" for i in t.dead_blockers)
        rows.append(
            (
                "warning",
                f"blocker {dead} failed or was cancelled: this task can never "
                "become ready until its blockers change",
            )
        )
    if t.reason:
        rows.append(("reason", t.reason))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        say(f"  {k:<{width}}  {v}")
    if t.description:
        say("\n" + t.description)
    if t.result:
        say("\nresult:\n" + t.result)


def members(items: Sequence[Member]) -> None:
    if not items:
        say("no members")
        return
    table(
        ["name", "role", "status", "agent", "model", "heartbeat", "pid", "host"],
        [
            (
                m.name,
                m.role.value,
                m.status.value,
                m.agent,
                m.model,
                when(m.heartbeat_at),
                m.pid,
                m.host,
            )
            for m in items
        ],
    )


def messages(items: Sequence[Message], show_body: bool = True) -> None:
    if not items:
        say("no messages")
        return
    for m in items:
        state = "acked" if m.acked_at else "delivered" if m.delivered_at else "waiting"
        head = f"[{m.id}] {when(m.sent_at)} {who(m.sender)} -> {who(m.recipient)}"
        if m.broadcast:
            head += " (broadcast)"
        if m.channel and m.recipient != m.channel:
            head += f" (in {m.channel})"
        if m.kind != "text":
            head += f" <{m.kind.value}" + (f" {m.request_id}" if m.request_id else "") + ">"
        head += f" {state}"
        say(head)
        if m.summary:
            say(f"    summary: {m.summary}")
        if show_body:
            for line in m.body.splitlines() or [""]:
                say(f"    {line}")


def who(name: str) -> str:
    """A name as the person reads it: their own is "you"."""
    from accord.types import PERSON

    return "you" if name == PERSON else name


def event_line(e: Event) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(e.at))
    values = {k: json.dumps(v) for k, v in e.payload.items()}
    fields = " ".join(f"{k}={_short(v, 60)}" for k, v in values.items())
    line = f"{e.seq:>6} {stamp} {e.actor or 'person':<12} {e.kind:<18} {fields}"
    if any(len(v) > 60 for v in values.values()):
        line += f" [cut: whole in `accord events --json --since {e.seq - 1} --limit 1`]"
    return line


def _short(text: str, n: int, where: str = "") -> str:
    """``text`` on one line, cut to ``n`` characters; cut, it says ``where`` it is whole."""
    text = text.replace("\n", " ")
    if len(text) <= n:
        return text
    return text[: n - 1] + "…" + (f" (whole: {where})" if where else "")


# ANSI colours of a transcript on a terminal (``--follow``): who spoke is what the eye looks for.
_PAINT = {"head": "2", "assistant": "36", "user": "32", "tool": "33", "error": "31", "note": "35"}


def _paint(text: str, what: str, colour: bool) -> str:
    return f"\x1b[{_PAINT[what]}m{text}\x1b[0m" if colour else text


def transcript_entry(e: TranscriptEntry, *, colour: bool = False) -> None:
    """One transcript entry for people, a line each (a long text folded after 40),
    coloured by who spoke when ``colour``."""
    from accord.text import strip_control as clean  # what members wrote may hold escapes

    stamp = time.strftime("%H:%M:%S", time.localtime(e.at))
    head = _paint(f"{e.seq:>5} {stamp} s{e.session}", "head", colour)
    body = e.body
    if e.kind == "session":
        task = f" task #{e.task_id}" if e.task_id else ""
        why = clean(str(body.get("why", "")))
        say(f"{head} ── session {body.get('event')}{task} {why}".rstrip())
        return
    if e.kind == "note":
        say(f"{head} note: {clean(str(body.get('text', '')))}")
        return
    if e.kind == "plan_state":  # as the note "plan STATE" read before it had a kind
        say(f"{head} note: plan {body.get('state')}")
        return
    if e.kind == "compaction":
        say(f"{head} compaction: earlier turns folded (kept from #{body.get('kept_from_seq')})")
        return
    role = body.get("role", "?")
    who = _paint(role, "assistant" if role == "assistant" else "user", colour)
    whole = f"`accord member transcript {e.member} --session {e.session} --json`"
    if body.get("text"):
        first, *rest = clean(str(body["text"])).splitlines() or [""]
        say(f"{head} {who}: {first}")
        for line in rest[:40]:
            say(f"{'':>17}{line}")
        if len(rest) > 40:
            say(f"{'':>17}[{len(rest) - 40} more lines] (whole: {whole})")
    for c in body.get("tool_calls", ()):
        args = json.dumps(c.get("arguments")) if c.get("arguments") is not None else c.get("raw")
        called = clean(str(c.get("name")))
        say(f"{head} {who} calls {called}({_short(clean(str(args)), 100, whole)})")
    for r in body.get("tool_results", ()):
        mark = _paint("ERROR ", "error", colour) if r.get("error") else ""
        name = _paint(clean(str(r.get("name"))), "tool", colour)
        content = clean(str(r.get("content")))
        say(f"{head} {name} -> {mark}{_short(content, 100, whole)}")


STORY_CLIP = 200  # characters of a reason or result on a story line


class Story:
    """A team run told for people, one line per meaningful step (``--display plain``),
    or every raw event (``raw``, ``--display events``). A reason cut short says where
    it is whole."""

    def __init__(self, team: Team, say: Callable[[str], None], raw: bool = False) -> None:
        self.team = team
        self.say = say
        self.raw = raw

    def __call__(self, e: Event) -> None:
        if self.raw:
            self.say(event_line(e))
            return
        line = story_line(e)
        if line is not None and e.kind == EventKind.TASK_COMPLETED:
            line += self._result(int(e.payload.get("id", 0)))
        if line is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(e.at))
            self.say(f"{stamp} {line}")

    def _result(self, task_id: int) -> str:
        try:
            result = self.team.board.get(task_id).result or ""
        except AccordError:  # a task deleted since: no result to show
            return ""
        text = " ".join(result.split())
        if not text:
            return ""
        if len(text) > STORY_CLIP:
            text = text[: STORY_CLIP - 1] + f"… (whole: `accord task show {task_id}`)"
        return f": {text}"


def story_line(e: Event) -> str | None:
    """One event as a step of the story, or None for bookkeeping nobody needs to read."""
    p = e.payload
    who = e.actor or "accord"

    def whole(text: object) -> str:
        return _whole(str(text or ""), e.seq)

    kind = e.kind
    if kind == EventKind.RUN_STARTED:
        return f"run started: {whole(p.get('goal'))}"
    if kind == EventKind.SPAWN_REQUESTED:
        model = f" (model {p['model']})" if p.get("model") else ""
        return f"{who} asks for teammate {p.get('name')}{model}"
    if kind == EventKind.SPAWN_REFUSED:
        return f"could not start {p.get('name')}: {whole(p.get('reason'))}"
    if kind == EventKind.TASK_CREATED:
        notes = []
        if p.get("assignee"):
            notes.append(f"for {p['assignee']}")
        if p.get("blocked_by"):
            notes.append("after " + ", ".join(f"#{b}" for b in p["blocked_by"]))
        more = f" ({', '.join(notes)})" if notes else ""
        return f"{who} put #{p.get('id')} on the board: {whole(p.get('title'))}{more}"
    if kind == EventKind.TASK_CLAIMED:
        return f"{who} took #{p.get('id')}"
    if kind == EventKind.TASK_COMPLETED:
        return f"{who} completed #{p.get('id')}"
    if kind == EventKind.TASK_FAILED:
        fate = "failed for good" if p.get("status") == "failed" else "failed, back to pending"
        return f"{who}: #{p.get('id')} {fate}: {whole(p.get('reason'))}"
    if kind == EventKind.TASK_CANCELLED:
        return f"#{p.get('id')} cancelled"
    if kind == EventKind.LEASE_EXPIRED:
        return f"#{p.get('id')}: the lease of {p.get('owner')} ran out; now {p.get('status')}"
    if kind == EventKind.FILES_CLAIMED:
        claimed = ", ".join(str(x) for x in p.get("patterns") or [])
        return f"{who} claims {whole(claimed)} for #{p.get('task_id')}"
    if kind == EventKind.FILES_RELEASED:
        released = ", ".join(str(x) for x in p.get("patterns") or [])
        return f"{who} gives up {whole(released)} (#{p.get('task_id')})"
    if kind == EventKind.MESSAGE_SENT and p.get("kind") in ("text", "shutdown_request"):
        what = "asks to shut down" if p.get("kind") == "shutdown_request" else "writes"
        about = f": {whole(p.get('summary'))}" if p.get("summary") else ""
        return f"{p.get('from')} {what} to {p.get('to')}{about}"
    if kind == EventKind.MEMBER_CRASHED:
        lines = [x for x in str(p.get("why") or "").splitlines() if x.strip()]
        last = lines[-1] if lines else f"exit {p.get('exit_code')}"
        fate = "not restarting it" if p.get("gave_up") else "restarting it"
        return f"{p.get('name')} crashed ({fate}): {whole(last)}"
    if kind == EventKind.MEMBER_RESTARTED:
        after = " after a model outage" if p.get("after") == "model_error" else ""
        return f"{p.get('name')} restarted{after} (restart {p.get('restarts')})"
    if kind == EventKind.MEMBER_GIVEN_UP:
        return (
            f"{p.get('name')} stopped ({p.get('reason')}), not restarted after "
            f"{p.get('restarts')} restart(s): {whole(p.get('detail'))}"
        )
    if kind == EventKind.MEMBER_FAILED:
        return f"{p.get('name')} cannot start (not restarted): {whole(p.get('reason'))}"
    if kind == EventKind.MEMBER_STOPPED:
        detail = f": {whole(p.get('detail'))}" if p.get("detail") else ""
        return f"{p.get('name')} stopped ({p.get('reason')}{detail})"
    if kind == EventKind.HOOK_RUN and p.get("blocked"):
        return f"the {p.get('event')} hook refused: {whole(p.get('stderr'))}"
    if kind == EventKind.HOOK_BROKEN:
        fate = "it blocked" if p.get("blocked") else "it was skipped"
        what = f"the {p.get('event')} hook `{p.get('command')}`"
        return f"{what} could not run ({whole(p.get('error'))}); {fate}"
    if kind == EventKind.BUDGET_EXCEEDED:
        return f"over budget: {whole(p.get('why'))}"
    if kind == EventKind.HOST_LOST:
        return f"host {p.get('host')} was lost"
    if kind == EventKind.RUN_UPDATED and p.get("status") == "finished":
        return f"{who} finished the run: {whole(p.get('summary'))}"
    if kind == EventKind.RUN_RESUMED:
        return f"resumed: {whole(p.get('why'))}"
    if kind == EventKind.RUN_ENDED:
        return f"run ended ({p.get('outcome')}): {whole(p.get('reason'))}"
    return None


def _whole(text: str, seq: int) -> str:
    """``text`` on one line; cut, it says where to read it whole."""
    text = " ".join(text.split())
    if len(text) <= STORY_CLIP:
        return text
    return text[: STORY_CLIP - 1] + f"… (whole: `accord events --json --since {seq - 1} --limit 1`)"
