"""Lessons: what an attempt at a task that did not succeed teaches the next one.

A lesson is an ``insight`` memory (tagged ``lesson``) linked to the task, the attempt
and the evidence (``accord.types.Lesson``). ``Lessons`` records them (a lesson like an
active one reinforces it, as observations do), builds the part of a task's opening
that shows them to the next attempt (the task's own lessons first, then those of
similar tasks, within ``[learning] lesson_chars``), and says which attempts ended
without one, for the agent runtime to write (``accord.agent.learning``).

A lesson fades unless it is confirmed: an unconfirmed one's strength halves every
``lesson_half_life_days`` from when it was last noted, and one below ``SHOWN_FLOOR`` is
no longer shown. An attempt that succeeds after being shown lessons confirms them
(``Team.complete``), and a confirmed lesson keeps its full strength.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from accord.config import LearningConfig
from accord.memory import Memory, similar
from accord.store.base import Store
from accord.text import distinct, words
from accord.types import Lesson, LessonCause, MemoryType, NewLesson, Task, TaskAttempt

DAY = 86_400.0
SHOWN_FLOOR = 0.25  # an unconfirmed lesson two half-lives old is no longer shown
EVIDENCE_CHARS = 1200  # of the evidence kept with a plain lesson's text

# How an attempt ended, when it did not succeed, as a lesson's cause.
ENDED: dict[str, LessonCause] = {
    "failed": LessonCause.FAILED,
    "retried": LessonCause.FAILED,
    "lease_lost": LessonCause.LEASE_LOST,
}

_WHAT = {
    LessonCause.REFUSED: "its completion was refused by the TaskCompleted hook",
    LessonCause.MERGE_REFUSED: "its completion was refused by the merge gate",
    LessonCause.FAILED: "it failed",
    LessonCause.LEASE_LOST: "its member stopped (crashed or went silent) and lost the lease",
    LessonCause.BUDGET: "a budget stopped its member",
}

LESSON_PROMPT = (
    "Before you go on, write the lesson of this for whoever works on a task like this "
    "next (it may be you, or another member): in a few sentences starting with "
    "`Lesson:`, say what you tried, what happened (the evidence), and what to do "
    "differently. Then carry on."
)


def clip(text: str, n: int) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def plain_lesson(task: Task, attempt: int, cause: LessonCause, evidence: str) -> str:
    """A lesson built from the evidence alone, when nobody could write one."""
    said = clip(" ".join(evidence.split()), EVIDENCE_CHARS) or "no output was kept"
    return (
        f"Attempt {attempt} at task #{task.id} ({task.title}) did not succeed: "
        f"{_WHAT[cause]}. Evidence: {said}. Check for this before completing."
    )


def written_lesson(reply: str) -> str | None:
    """The lesson in a member's reply: what follows ``Lesson:``, else the whole text."""
    text = reply.strip()
    at = text.lower().find("lesson:")
    if at >= 0:
        text = text[at + len("lesson:") :].strip()
    return text or None


class Lessons:
    """The team's lessons, above the store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        team: str,
        memory: Memory,
        config: LearningConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.team = team
        self.memory = memory
        self.config = config
        self.clock = clock

    # writing -------------------------------------------------------------------

    def record(self, new: NewLesson) -> tuple[Lesson, bool]:
        """Record a lesson (its slot once); True when it reinforced one like it."""
        threshold = self.memory.config.similarity
        return self.store.record_lesson(
            self.team,
            new,
            same=lambda a, b: similar(a, b, threshold),
            candidates=distinct(words(new.text)),
        )

    def next_refusal_slot(self, task_id: int, attempt: int, cause: LessonCause) -> str:
        """``refused#n`` (or ``merge_refused#n``) for the attempt's n-th refusal."""
        had = [
            lesson
            for lesson in self.store.lessons(self.team, task_id=task_id)
            if lesson.attempt == attempt and lesson.cause == cause
        ]
        return f"{cause.value}#{len(had) + 1}"

    def missing(self, attempts: Sequence[TaskAttempt]) -> list[TaskAttempt]:
        """The attempts that ended without success and have no lesson yet."""
        if not attempts:
            return []
        had = {
            lesson.attempt for lesson in self.store.lessons(self.team, task_id=attempts[0].task_id)
        }
        return [a for a in attempts if a.outcome in ENDED and a.attempt not in had]

    # reading -------------------------------------------------------------------

    def strength(self, lesson: Lesson, now: float | None = None) -> float:
        """1 for a confirmed lesson; else halving every half-life since last noted."""
        if lesson.confirmed_at is not None:
            return 1.0
        age = max(0.0, ((now or self.clock()) - lesson.memory.seen_at) / DAY)
        return float(0.5 ** (age / self.config.lesson_half_life_days))

    def listed(self, task_id: int | None = None) -> list[Lesson]:
        return self.store.lessons(self.team, task_id=task_id)

    def briefing(self, task: Task, attempt: int) -> str:
        """The lessons for this attempt at ``task``, as a section of its opening
        (empty when there are none or learning is off), noting which were shown."""
        if not self.config.enabled or self.config.lesson_chars == 0:
            return ""
        now = self.clock()
        own = [
            lesson
            for lesson in self.store.lessons(self.team, task_id=task.id)
            if lesson.attempt < attempt and lesson.memory.status.value == "active"
        ]
        found = self.memory.recall(
            f"{task.title}\n{task.description}", k=8, types=[MemoryType.INSIGHT]
        )
        ids = [r.entry.id for r in found if "lesson" in r.entry.tags]
        near = [
            lesson
            for lesson in self.store.lessons(self.team, memory_ids=ids)
            if lesson.task_id != task.id
        ]
        near.sort(key=lambda lesson: ids.index(lesson.memory.id))
        lines: list[str] = []
        shown: list[int] = []
        budget = self.config.lesson_chars
        for lesson in [*reversed(own), *near]:
            if lesson.memory.id in shown or self.strength(lesson, now) < SHOWN_FLOOR:
                continue
            mark = "confirmed" if lesson.confirmed_at is not None else "not confirmed yet"
            seen = f", noted {lesson.memory.count} times" if lesson.memory.count > 1 else ""
            where = (
                f"attempt {lesson.attempt} at this task"
                if lesson.task_id == task.id
                else f"task #{lesson.task_id}"
            )
            line = f"- [{lesson.memory.id}] from {where} ({mark}{seen}): {lesson.memory.text}"
            if len(line) > budget:
                break
            lines.append(line)
            shown.append(lesson.memory.id)
            budget -= len(line)
        if not lines:
            return ""
        self.store.lessons_shown(self.team, task.id, attempt, shown)
        return (
            "## Lessons from attempts that did not succeed\n"
            "Earlier attempts at this task or at tasks like it went wrong; avoid what they "
            "did:\n" + "\n".join(lines)
        )
