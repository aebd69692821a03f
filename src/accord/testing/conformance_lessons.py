"""Conformance for attempts and lessons: how each attempt at a task ended, and what
an attempt that did not succeed taught.

A mixin of ``StoreConformance`` (its ``store`` and ``clock`` fixtures: team ``main``
with alice, bob and carol). The promises: every claim starts an attempt and whatever
ends it says how (an outage's release is taken over by the next claim, not counted
twice); a lesson is recorded once per attempt and slot, so a retry after a crash does
not add another; a lesson like an active lesson reinforces it instead of adding a
memory; and an attempt's success confirms the lessons it was shown, once.
"""

from __future__ import annotations

import pytest

from accord.errors import UnknownTask, UserError
from accord.store.base import Store
from accord.testing import FakeClock
from accord.types import LessonCause, NewLesson, NewTask

TEAM = "main"


def _same(a: str, b: str) -> bool:
    return a.split()[:4] == b.split()[:4]


def _lesson(task_id: int, attempt: int, text: str, slot: str = "failed") -> NewLesson:
    return NewLesson(task_id, attempt, slot, LessonCause.FAILED, text, "alice", "exit 1")


class LessonConformance:
    """Attempts and lessons, on every backend."""

    def test_every_attempt_says_how_it_ended(self, store: Store, clock: FakeClock) -> None:
        task = store.add_task(TEAM, NewTask("parse"), max_attempts=4)
        c1 = store.claim_task(TEAM, "alice", lease_seconds=10)
        assert c1 is not None and c1.task.attempts == 1
        store.fail_task(TEAM, task.id, "alice", c1.fencing_token, "tests fail", retry=True)
        c2 = store.claim_task(TEAM, "bob", lease_seconds=10)
        assert c2 is not None
        clock.advance(11)  # bob goes silent past his lease
        store.expire_leases(TEAM)
        c3 = store.claim_task(TEAM, "carol", lease_seconds=10)
        assert c3 is not None
        store.release_task(TEAM, task.id, "carol", c3.fencing_token, "model unreachable")
        c4 = store.claim_task(TEAM, "alice", lease_seconds=10)
        assert c4 is not None and c4.task.attempts == 3  # the release spent no attempt
        store.complete_task(TEAM, task.id, "alice", c4.fencing_token, "done")
        seen = [(a.attempt, a.member, a.outcome) for a in store.task_attempts(TEAM, task.id)]
        assert seen == [
            (1, "alice", "retried"),
            (2, "bob", "lease_lost"),
            (3, "alice", "completed"),
        ]
        with pytest.raises(UnknownTask):
            store.task_attempts(TEAM, 999)

    def test_a_lesson_is_recorded_once_per_slot_and_like_ones_reinforce(self, store: Store) -> None:
        t1 = store.add_task(TEAM, NewTask("parse dates"), max_attempts=3)
        t2 = store.add_task(TEAM, NewTask("parse times"), max_attempts=3)
        first, reinforced = store.record_lesson(
            TEAM, _lesson(t1.id, 1, "empty input breaks the parser: test it first"), same=_same
        )
        assert not reinforced and first.memory.tags == ("lesson",)
        assert first.memory.type.value == "insight" and first.memory.task_id == t1.id
        again, reinforced = store.record_lesson(
            TEAM, _lesson(t1.id, 1, "something else entirely"), same=_same
        )
        assert again == first and not reinforced  # the same slot: a retry, no change
        said = "empty input breaks the parser: handle it"
        like, reinforced = store.record_lesson(
            TEAM, _lesson(t2.id, 1, said), same=_same, candidates=said.split()
        )
        assert reinforced and like.memory.id == first.memory.id and like.memory.count == 2
        # a different lesson is a new memory
        said = "the parser needs a locale"
        other, reinforced = store.record_lesson(
            TEAM, _lesson(t2.id, 2, said), same=_same, candidates=said.split()
        )
        assert not reinforced and other.memory.id != first.memory.id
        listed = store.lessons(TEAM, task_id=t2.id)
        assert [(x.attempt, x.memory.id) for x in listed] == [
            (1, first.memory.id),
            (2, other.memory.id),
        ]
        assert [x.task_id for x in store.lessons(TEAM, memory_ids=[first.memory.id])] == [
            t1.id,
            t2.id,
        ]
        assert store.lessons(TEAM, memory_ids=[]) == []
        kinds = [e.kind for e in store.read_events(TEAM) if "lesson" in e.kind]
        assert kinds == ["lesson_recorded"] * 3

    def test_only_lessons_are_reinforced_by_lessons(self, store: Store) -> None:
        from accord.types import MemoryType, NewMemory

        task = store.add_task(TEAM, NewTask("t"), max_attempts=3)
        said = "always run the migrations before the tests"
        plain, _ = store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, said))
        lesson, reinforced = store.record_lesson(
            TEAM, _lesson(task.id, 1, said), same=_same, candidates=said.split()
        )
        assert not reinforced and lesson.memory.id != plain.id

    def test_bad_lessons_are_refused_and_change_nothing(self, store: Store) -> None:
        task = store.add_task(TEAM, NewTask("t"), max_attempts=3)
        before = store.read_events(TEAM)
        with pytest.raises(UserError, match="needs text"):
            store.record_lesson(TEAM, _lesson(task.id, 1, "   "), same=_same)
        with pytest.raises(UnknownTask):
            store.record_lesson(TEAM, _lesson(999, 1, "x"), same=_same)
        assert store.read_events(TEAM) == before and store.lessons(TEAM) == []

    def test_success_confirms_the_lessons_the_attempt_was_shown(
        self, store: Store, clock: FakeClock
    ) -> None:
        task = store.add_task(TEAM, NewTask("t"), max_attempts=3)
        kept, _ = store.record_lesson(TEAM, _lesson(task.id, 1, "run the linter"), same=_same)
        unseen, _ = store.record_lesson(
            TEAM, _lesson(task.id, 1, "pin the version", slot="refused#1"), same=_same
        )
        c = store.claim_task(TEAM, "bob", lease_seconds=10)
        assert c is not None
        store.lessons_shown(TEAM, task.id, c.task.attempts, [kept.memory.id])
        store.lessons_shown(TEAM, task.id, c.task.attempts, [kept.memory.id])  # again: fine
        clock.advance(5)
        store.complete_task(TEAM, task.id, "bob", c.fencing_token, "ok")
        assert store.confirm_lessons(TEAM, task.id, c.task.attempts) == [kept.memory.id]
        assert store.confirm_lessons(TEAM, task.id, c.task.attempts) == []  # once
        by_memory = {x.memory.id: x for x in store.lessons(TEAM)}
        assert by_memory[kept.memory.id].confirmed_at == clock()
        assert by_memory[kept.memory.id].memory.seen_at == clock()
        assert by_memory[unseen.memory.id].confirmed_at is None
