"""The chaos run and its checker (issue 17).

The checker (``accord.testing.chaos``) is tested first, on histories made by hand: a
clean one written through the real store counts zero, and each anomaly put into it
is found and counted, so the check cannot pass by accident. Then the run itself
(``accord.testing.chaos_run``): a real scripted team whose members and supervisor
are killed, paused past their leases and restarted, checked to zero. The short
form is in the default suite; ``--slow --minutes N`` runs 1,000 tasks and 16
members for N minutes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from accord.agent.context import inbox_text
from accord.errors import ClaimError
from accord.events import EventKind
from accord.llm.base import ChatMessage
from accord.store import Store, open_store
from accord.testing import FakeClock
from accord.testing.chaos import ChaosReport, check, check_history
from accord.testing.chaos_run import ChaosSettings, run_chaos
from accord.types import (
    Event,
    Message,
    NewTask,
    OutgoingMessage,
    Task,
    TaskStatus,
    TranscriptEntry,
    TranscriptKind,
)

TEAM = "main"


@dataclasses.dataclass
class History:
    """What ``check_history`` reads, as lists a test may spoil."""

    events: list[Event]
    tasks: list[Task]
    messages: list[Message]
    transcripts: dict[str, list[TranscriptEntry]]

    def check(self, members: Sequence[str] | None = None) -> ChaosReport:
        return check_history(
            self.events, self.tasks, self.messages, self.transcripts, members=members
        )

    def event(self, kind: str, task_id: int | None = None) -> Event:
        """The first event of ``kind`` (for ``task_id``)."""
        return next(
            e
            for e in self.events
            if e.kind == kind and (task_id is None or e.payload.get("id") == task_id)
        )

    def insert(self, before: Event, kind: str, payload: dict[str, Any]) -> None:
        at = self.events.index(before)
        self.events.insert(at, Event(TEAM, before.seq, before.at, None, kind, payload))


def save_mail(store: Store, member: str) -> None:
    """Receive ``member``'s mail and save each message into its transcript as its own
    user turn, acknowledged in the same call: what the agent runtime does."""
    for m in store.receive_messages(TEAM, member, visibility_timeout=60):
        turn = ChatMessage("user", inbox_text([m], "(interrupted)", member))
        entry = TranscriptEntry(member, 1, TranscriptKind.MESSAGE, turn.to_dict())
        store.append_transcript(TEAM, [entry], ack=[m.id])


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A clean history written through the real store: tasks claimed and completed (one
    after its first holder's lease ended), one cancelled; mail read and saved, and one
    message still unread."""
    clock = FakeClock()
    s = open_store(str(tmp_path / "accord.db"), create=True, clock=clock)
    s.create_team(TEAM)
    for name in ("alice", "bob", "carol"):
        s.add_member(TEAM, name, token_hash="unused")
    for i in range(1, 5):
        s.add_task(TEAM, NewTask(f"task {i}"), max_attempts=3)
    # 1 and 2: claimed and completed.
    for task_id in (1, 2):
        claim = s.claim_task(TEAM, "alice", lease_seconds=10, task_id=task_id)
        assert claim is not None
        s.complete_task(TEAM, task_id, "alice", claim.fencing_token, "done")
    # 3: alice's lease ends, bob takes it and completes; alice's late completion is refused.
    late = s.claim_task(TEAM, "alice", lease_seconds=10, task_id=3)
    assert late is not None
    clock.advance(20)
    again = s.claim_task(TEAM, "bob", lease_seconds=10, task_id=3)
    assert again is not None
    s.complete_task(TEAM, 3, "bob", again.fencing_token, "done")
    with pytest.raises(ClaimError):
        s.complete_task(TEAM, 3, "alice", late.fencing_token, "late")
    # 4: cancelled.
    s.cancel_task(TEAM, 4, "not needed")
    # Mail: alice -> bob twice, bob -> alice once, all read; bob -> carol unread.
    s.send_message(TEAM, OutgoingMessage("alice", "bob", "one"))
    s.send_message(TEAM, OutgoingMessage("alice", "bob", "two"))
    s.send_message(TEAM, OutgoingMessage("bob", "alice", "three"))
    save_mail(s, "bob")
    save_mail(s, "alice")
    s.send_message(TEAM, OutgoingMessage("bob", "carol", "unread"))
    return s


@pytest.fixture
def history(store: Store) -> History:
    return History(
        store.read_events(TEAM),
        store.list_tasks(TEAM),
        store.list_messages(TEAM, limit=1000),
        {m: store.read_transcript(TEAM, m) for m in ("alice", "bob", "carol")},
    )


def only(report: ChaosReport, **counts: int) -> None:
    """``report`` counts exactly ``counts`` and zero of every other anomaly."""
    wanted = dict.fromkeys(report.anomalies, 0) | counts
    assert report.anomalies == wanted, str(report)
    for kind in counts:
        assert report.examples[kind], f"no example of {kind}"


# the checker -----------------------------------------------------------------------


def test_a_clean_history_counts_zero_and_says_what_it_exercised(
    store: Store, history: History
) -> None:
    report = history.check()
    assert report.ok, str(report)
    assert (report.tasks, report.completions, report.lease_expiries) == (4, 3, 1)
    assert (report.messages, report.unread_messages) == (4, 1)
    assert not report.examples
    # Read through the store interface, the same history gives the same report.
    assert check(store, TEAM) == report


def test_a_task_left_unfinished_is_lost(store: Store) -> None:
    store.add_task(TEAM, NewTask("never done"), max_attempts=3)
    report = check(store, TEAM)
    only(report, lost_tasks=1)
    assert "#5 is still pending" in report.examples["lost_tasks"][0]


def test_a_task_held_when_the_run_ended_is_lost(store: Store) -> None:
    store.add_task(TEAM, NewTask("held"), max_attempts=3)
    assert store.claim_task(TEAM, "carol", lease_seconds=60) is not None
    only(check(store, TEAM), lost_tasks=1)


def test_a_completed_task_with_no_completion_event_or_gone_from_the_board_is_lost(
    history: History,
) -> None:
    history.events.remove(history.event(EventKind.TASK_COMPLETED, 2))
    history.tasks = [t for t in history.tasks if t.id != 1]
    report = history.check()
    only(report, lost_tasks=2)
    assert any("not on the board" in e for e in report.examples["lost_tasks"])
    assert any("no task_completed event" in e for e in report.examples["lost_tasks"])


def test_a_task_completed_twice_is_counted(history: History) -> None:
    done = history.event(EventKind.TASK_COMPLETED, 1)
    history.events.append(dataclasses.replace(done, seq=done.seq + 100))
    report = history.check()
    only(report, double_completions=1)
    assert report.completions == 4


def test_a_completion_under_a_token_not_the_latest_claims_is_stale(history: History) -> None:
    done = history.event(EventKind.TASK_COMPLETED, 2)
    history.insert(done, EventKind.TASK_CLAIMED, {**done.payload, "token": 99})
    only(history.check(), stale_completions=2)  # the completion, and the board's token


def test_a_completion_after_its_lease_expired_is_stale(history: History) -> None:
    done = history.event(EventKind.TASK_COMPLETED, 1)
    token = done.payload["token"]
    history.insert(done, EventKind.LEASE_EXPIRED, {"id": 1, "owner": "alice", "token": token})
    report = history.check()
    only(report, stale_completions=1)
    assert "after that lease had expired" in report.examples["stale_completions"][0]


def test_the_refused_late_completion_of_an_expired_lease_is_not_in_the_log(
    history: History,
) -> None:
    # Task 3's first holder completed after its lease ended: refused, so no event.
    tokens = [e.payload["token"] for e in history.events if e.kind == EventKind.TASK_COMPLETED]
    expired = history.event(EventKind.LEASE_EXPIRED, 3).payload["token"]
    assert expired not in tokens


def test_a_message_missing_from_the_store_is_lost(history: History) -> None:
    gone = history.messages.pop(0)
    report = history.check()
    only(report, lost_messages=1)
    assert f"#{gone.id} to bob is not in the store" in report.examples["lost_messages"][0]


def test_a_message_acknowledged_but_not_in_the_transcript_is_lost(history: History) -> None:
    history.transcripts["bob"] = history.transcripts["bob"][1:]
    report = history.check()
    only(report, lost_messages=1)
    assert "never saved into its transcript" in report.examples["lost_messages"][0]


def test_a_message_saved_twice_into_a_transcript_is_duplicated(history: History) -> None:
    history.transcripts["alice"].append(history.transcripts["alice"][0])
    history.transcripts["bob"].append(history.transcripts["bob"][1])
    history.transcripts["bob"].append(history.transcripts["bob"][1])
    report = history.check()
    only(report, duplicated_messages=2)
    assert "saved 3 times in bob's" in " ".join(report.examples["duplicated_messages"])


def test_an_unread_message_is_not_lost_and_only_the_members_asked_for_are_checked(
    history: History,
) -> None:
    history.transcripts["bob"] = []  # bob's mail would be lost...
    assert history.check().lost_messages == 2
    report = history.check(members=["alice", "carol"])  # ...but only theirs is checked
    assert report.ok, str(report)
    assert (report.messages, report.unread_messages) == (2, 1)


def test_every_anomaly_at_once(history: History) -> None:
    history.tasks = [dataclasses.replace(t, status=TaskStatus.PENDING) for t in history.tasks]
    done = history.event(EventKind.TASK_COMPLETED, 1)
    history.events.append(dataclasses.replace(done, seq=done.seq + 100))
    history.messages.pop(0)
    history.transcripts["alice"].append(history.transcripts["alice"][0])
    report = history.check()
    assert not report.ok
    assert report.lost_tasks == 4
    assert report.double_completions == 1
    assert report.lost_messages == 1
    assert report.duplicated_messages == 1


# the run ---------------------------------------------------------------------------


def _assert_chaotic_and_clean(outcome: Any) -> None:
    print(outcome)
    did = outcome.actions
    assert did["member_kills"] > 0 and did["member_pauses"] > 0, str(outcome)
    assert did["supervisor_kills"] > 0 and did["messages_sent"] > 0, str(outcome)
    assert outcome.report.lease_expiries > 0, "no pause outlasted a lease: " + str(outcome)
    assert outcome.report.unread_messages == 0, str(outcome)
    assert outcome.report.ok, str(outcome)


def test_chaos_short_form(tmp_path: Path) -> None:
    """A small team under the same chaos, in the default suite (under 2 minutes)."""
    settings = ChaosSettings(
        tasks=80,
        workers=5,
        work_seconds=(0.02, 0.15),
        every=(0.4, 0.9),
        supervisor_kill_after=6.0,
    )
    _assert_chaotic_and_clean(run_chaos(tmp_path / "proj", settings))


@pytest.mark.slow
def test_chaos_long_form(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """1,000 tasks a batch and 16 members, batch after batch for ``--minutes`` minutes."""
    minutes = float(request.config.getoption("--minutes"))
    # Each task's work is long enough that a batch takes about a third of the time, so
    # members are mostly holding a claim when they are killed or paused.
    mean = 0.35 * minutes * 60 * 16 / 1000
    settings = ChaosSettings(
        tasks=1000, workers=16, minutes=minutes, work_seconds=(0.5 * mean, 1.5 * mean)
    )
    _assert_chaotic_and_clean(run_chaos(tmp_path / "proj", settings, print))
