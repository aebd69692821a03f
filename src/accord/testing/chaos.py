"""A Jepsen-style check of a team's history after a chaos run: what the promises forbid,
counted, with examples.

``check(store, team)`` reads the team's event log, board, mailboxes and transcripts
through the store interface and hands them to ``check_history``, which is pure, so
a test can feed it a history made by hand. It counts:

- **lost tasks**: created and, when the run ended, neither completed, failed nor
  cancelled (nor taken off by its hooks); or completed on the board with no
  ``task_completed`` event;
- **double completions**: more than one ``task_completed`` event for one task;
- **stale completions**: a ``task_completed`` whose token is not the token of the
  task's latest claim before it, or whose lease had already ended
  (a ``lease_expired`` for that token came first), or that the board does not hold;
- **lost messages** (promise 4): a message in a ``message_sent`` event that is not
  in the store, or that was acknowledged without being saved into its recipient's
  transcript (the runtime acknowledges only after saving);
- **duplicated messages**: a message id saved more than once into one member's
  transcript (in two user turns).

A message still unacknowledged when the run ended is not lost (it waits in the
mailbox, as promised); it is counted apart as ``unread_messages``, with the lease
expiries and completions, to show what the run exercised.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from accord.events import EventKind
from accord.store import Store
from accord.types import (
    Event,
    Message,
    MessageKind,
    Task,
    TaskStatus,
    TranscriptEntry,
    TranscriptKind,
)

#: How a message appears in a member's transcript (``accord.agent.context``).
_MAIL_ID = re.compile(r'<(?:message|post) id="(\d+)"')
_ENDED = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
EXAMPLES = 5  # examples kept per kind of anomaly


@dataclass(frozen=True, slots=True)
class ChaosReport:
    """What a check found: each anomaly counted, a few examples of each, and what the
    run exercised (so a check of nothing is seen for what it is)."""

    lost_tasks: int
    double_completions: int
    stale_completions: int
    lost_messages: int
    duplicated_messages: int
    examples: Mapping[str, tuple[str, ...]]
    # what the run exercised: not anomalies
    tasks: int
    completions: int
    lease_expiries: int
    messages: int
    unread_messages: int

    @property
    def anomalies(self) -> dict[str, int]:
        return {
            "lost_tasks": self.lost_tasks,
            "double_completions": self.double_completions,
            "stale_completions": self.stale_completions,
            "lost_messages": self.lost_messages,
            "duplicated_messages": self.duplicated_messages,
        }

    @property
    def ok(self) -> bool:
        """Every anomaly count is zero."""
        return not any(self.anomalies.values())

    def __str__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.anomalies.items())
        seen = (
            f"{self.tasks} tasks, {self.completions} completions, {self.lease_expiries} "
            f"lease expiries, {self.messages} messages ({self.unread_messages} unread)"
        )
        lines = [f"{counts}; over {seen}"]
        for kind, found in self.examples.items():
            lines += [f"  {kind}: {example}" for example in found]
        return "\n".join(lines)


class _Found:
    """Anomalies as they are found: a count and the first few examples of each kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] += 1
        if len(self.examples[kind]) < EXAMPLES:
            self.examples[kind].append(example)


def check(store: Store, team: str, *, members: Collection[str] | None = None) -> ChaosReport:
    """Check ``team``'s history in ``store`` (see the module's docstring). ``members``:
    whose mail to check (default: every member's)."""
    events = store.read_events(team)
    tasks = store.list_tasks(team)
    messages = store.list_messages(team, limit=2**62)
    names = [m.name for m in store.list_members(team)]
    transcripts = {name: store.read_transcript(team, name) for name in names}
    return check_history(events, tasks, messages, transcripts, members=members)


def check_history(
    events: Sequence[Event],
    tasks: Iterable[Task],
    messages: Iterable[Message],
    transcripts: Mapping[str, Sequence[TranscriptEntry]],
    *,
    members: Collection[str] | None = None,
) -> ChaosReport:
    """Check a history: the log, the board and mailboxes as the run left them, and each
    member's transcript. ``members``: whose mail to check (None: everyone's). Only text
    mail is checked: the runtime's own kinds (shutdown, idle notices...) are answered
    or folded into a digest, not saved as turns."""
    found = _Found()
    board = {t.id: t for t in tasks}
    completions = _check_tasks(events, board, found)
    sent, unread = _check_mail(events, messages, transcripts, members, found)
    return ChaosReport(
        lost_tasks=found.counts["lost_tasks"],
        double_completions=found.counts["double_completions"],
        stale_completions=found.counts["stale_completions"],
        lost_messages=found.counts["lost_messages"],
        duplicated_messages=found.counts["duplicated_messages"],
        examples={k: tuple(v) for k, v in found.examples.items()},
        tasks=len(board),
        completions=completions,
        lease_expiries=sum(1 for e in events if e.kind == EventKind.LEASE_EXPIRED),
        messages=sent,
        unread_messages=unread,
    )


def _check_tasks(events: Sequence[Event], board: Mapping[int, Task], found: _Found) -> int:
    created: list[int] = []
    removed: set[int] = set()
    latest_claim: dict[int, int] = {}  # task id -> token of its latest claim so far
    expired: set[tuple[int, int]] = set()  # (task id, token) whose lease ended
    completed: Counter[int] = Counter()
    for e in events:
        p = e.payload
        if e.kind == EventKind.TASK_CREATED:
            created.append(int(p["id"]))
        elif e.kind == EventKind.TASK_REMOVED:
            removed.add(int(p["id"]))
        elif e.kind == EventKind.TASK_CLAIMED:
            latest_claim[int(p["id"])] = int(p["token"])
        elif e.kind == EventKind.LEASE_EXPIRED:
            expired.add((int(p["id"]), int(p["token"])))
        elif e.kind == EventKind.TASK_COMPLETED:
            task_id, token = int(p["id"]), int(p["token"])
            completed[task_id] += 1
            if completed[task_id] == 2:
                found.add("double_completions", f"task #{task_id} completed again (seq {e.seq})")
            if latest_claim.get(task_id) != token:
                found.add(
                    "stale_completions",
                    f"task #{task_id} completed with token {token} at seq {e.seq}, but its "
                    f"latest claim holds {latest_claim.get(task_id)}",
                )
            elif (task_id, token) in expired:
                found.add(
                    "stale_completions",
                    f"task #{task_id} completed with token {token} at seq {e.seq}, after that "
                    "lease had expired",
                )
    for task_id in created:
        if task_id in removed:
            continue
        task = board.get(task_id)
        if task is None:
            found.add("lost_tasks", f"task #{task_id} was created but is not on the board")
        elif task.status not in _ENDED:
            found.add("lost_tasks", f"task #{task_id} is still {task.status} when the run ended")
        elif task.status == TaskStatus.COMPLETED and not completed[task_id]:
            found.add("lost_tasks", f"task #{task_id} is completed with no task_completed event")
    for task_id, task in board.items():
        if task.status == TaskStatus.COMPLETED and completed[task_id] and task_id in latest_claim:
            if task.fencing_token != latest_claim[task_id]:
                found.add(
                    "stale_completions",
                    f"task #{task_id} is completed under token {task.fencing_token}, but its "
                    f"latest claim holds {latest_claim[task_id]}",
                )
    return sum(completed.values())


def _check_mail(
    events: Sequence[Event],
    messages: Iterable[Message],
    transcripts: Mapping[str, Sequence[TranscriptEntry]],
    members: Collection[str] | None,
    found: _Found,
) -> tuple[int, int]:
    stored = {m.id: m for m in messages}
    acked = {i for e in events if e.kind == EventKind.MESSAGES_ACKED for i in e.payload["ids"]}
    saved: dict[str, Counter[int]] = {
        name: _saved_mail(entries) for name, entries in transcripts.items()
    }
    for name, ids in saved.items():
        for message_id, times in sorted(ids.items()):
            if times > 1:
                found.add(
                    "duplicated_messages",
                    f"message #{message_id} is saved {times} times in {name}'s transcript",
                )
    sent = 0
    unread = 0
    for e in events:
        if e.kind != EventKind.MESSAGE_SENT or e.payload.get("channel"):
            continue
        if e.payload.get("kind", MessageKind.TEXT) != MessageKind.TEXT:
            continue
        to = str(e.payload["to"])
        for message_id in e.payload["ids"]:
            row = stored.get(message_id)
            if row is None:
                if members is None or to in members or to == "*":
                    sent += 1
                    found.add("lost_messages", f"message #{message_id} to {to} is not in the store")
                continue
            if row.kind != MessageKind.TEXT or (
                members is not None and row.recipient not in members
            ):
                continue
            sent += 1
            if row.acked_at is None and message_id not in acked:
                unread += 1
            elif not saved.get(row.recipient, Counter())[message_id]:
                found.add(
                    "lost_messages",
                    f"message #{message_id} to {row.recipient} was acknowledged but never "
                    "saved into its transcript",
                )
    return sent, unread


def _saved_mail(entries: Iterable[TranscriptEntry]) -> Counter[int]:
    """How many user turns of a transcript hold each message id."""
    held: Counter[int] = Counter()
    for entry in entries:
        if entry.kind != TranscriptKind.MESSAGE or entry.body.get("role") != "user":
            continue
        text = entry.body.get("text")
        if isinstance(text, str):
            held.update({int(i) for i in _MAIL_ID.findall(text)})
    return held
