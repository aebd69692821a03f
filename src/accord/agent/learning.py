"""The failure loop in the agent runtime: who writes a lesson, and when.

- A member still alive writes it itself. A refused completion (a TaskCompleted hook,
  or the merge gate) or a failed task is a *setback* (``Setback``, noted by the tool
  in ``ToolContext.setbacks``); the loop asks, with that tool's result, for the
  lesson (``LESSON_PROMPT``), and the text of the member's next reply is the lesson.
  A reply without text leaves the plain lesson instead.
- Otherwise (its member crashed, went silent past its lease, or ended its turn
  holding the task), the member that claims the task next settles it first
  (``Learning.settle``): a short reflection call, with ``[learning] reflection_model``
  or its own model, reads that attempt's transcript tail and its evidence. A
  reflection that fails, or ``reflection_model = "none"``, falls back to the plain
  lesson built from the evidence (``plain_lesson``): a lesson never blocks the retry.
- A budget stop leaves the plain lesson at once: no model call may be made then.
"""

from __future__ import annotations

import json

from accord.agent.tools.base import Setback
from accord.config import Config
from accord.errors import AccordError
from accord.llm.base import ChatMessage, Model, ModelError, ModelRequest, ModelResponse
from accord.llm.prices import Price, usage_record
from accord.llm.registry import open_model
from accord.memory.lessons import ENDED, clip, plain_lesson, written_lesson
from accord.team import Team
from accord.types import (
    LessonCause,
    NewLesson,
    Task,
    TaskAttempt,
    TranscriptKind,
)

TAIL_CHARS = 6000  # of the failed attempt's transcript a reflection reads
REFLECTION_TOKENS = 400

REFLECTION_SYSTEM = (
    "You review one attempt at a task that did not succeed, from its transcript's end "
    "and the evidence, and write the lesson for whoever tries next: in at most five "
    "sentences, what was tried, what happened, and what to do differently. Plain text "
    "only; be concrete (commands, files, the error)."
)


class Learning:
    """Lessons written from inside one member's loop (see the module docstring)."""

    def __init__(
        self,
        services: Team,
        member: str,
        model: Model,
        config: Config,
        prices: dict[str, Price] | None = None,
    ) -> None:
        self.services = services
        self.prices = prices
        self.member = member
        self.model = model
        self.config = config

    @property
    def enabled(self) -> bool:
        return self.config.learning.enabled

    def written(self, setback: Setback, reply: str | None) -> None:
        """Record the member's own lesson from its reply (else the plain one)."""
        text = written_lesson(reply or "")
        self._record(setback, text, self.member if text else "accord")

    def skill_prompt(self, setbacks: list[Setback]) -> str:
        """When the attempt followed a skill, the lesson may be that the procedure
        itself was wrong: say so, and how to propose its revision (which takes effect
        for the next task, after review when ``[learning] skill_review`` asks for it)."""
        used: list[tuple[str, int]] = []
        for setback in setbacks:
            try:
                found = self.services.skills.used_in(setback.task_id, setback.attempt, self.member)
            except AccordError:
                continue
            used += [u for u in found if u not in used]
        if not used:
            return ""
        named = ", ".join(f"{name} (version {version})" for name, version in used)
        return (
            f" This attempt followed the skill {named}. If the procedure itself was wrong, "
            "also call revise_skill with the corrected body and a reason that names this "
            "evidence; the revision takes effect for the next task."
        )

    def plain(self, setback: Setback) -> None:
        self._record(setback, None, "accord")

    def settle(self, task: Task) -> None:
        """Before this member's attempt at ``task``: a lesson for each earlier attempt
        that ended without success and has none (reflection, else plain)."""
        if not self.enabled or task.attempts < 2:
            return
        try:
            attempts = self.services.board.attempts(task.id)
            missing = self.services.lessons.missing(
                [a for a in attempts if a.attempt < task.attempts]
            )
        except AccordError:
            return
        for attempt in missing:
            cause = ENDED[attempt.outcome or "failed"]
            evidence = self._evidence(task, attempt)
            text = self._reflect(task, attempt, evidence)
            setback = Setback(task.id, attempt.attempt, cause, evidence)
            self._record(setback, text, f"reflection by {self.member}" if text else "accord")

    # --------------------------------------------------------------------------

    def _record(self, setback: Setback, text: str | None, author: str) -> None:
        lessons = self.services.lessons
        try:
            task = self.services.board.get(setback.task_id)
            slot = setback.cause.value
            if setback.cause in (LessonCause.REFUSED, LessonCause.MERGE_REFUSED):
                slot = lessons.next_refusal_slot(task.id, setback.attempt, setback.cause)
            body = text or plain_lesson(task, setback.attempt, setback.cause, setback.evidence)
            lessons.record(
                NewLesson(
                    task.id,
                    setback.attempt,
                    slot,
                    setback.cause,
                    clip(body, 4000),
                    author,
                    clip(setback.evidence, 8000),
                )
            )
        except AccordError:
            pass  # a lesson is a help, never a reason for the work to stop

    def _evidence(self, task: Task, attempt: TaskAttempt) -> str:
        said = f"attempt {attempt.attempt} by {attempt.member} ended: {attempt.outcome}"
        if task.reason and attempt.attempt == task.attempts - 1:
            said += f"; reason given: {task.reason}"
        return said

    def _tail(self, attempt: TaskAttempt) -> str:
        """The end of what the attempt's member said and saw on this task."""
        log = self.services.log
        try:
            last = log.last_session(attempt.member)
            entries = log.read_transcript(attempt.member, session=last) if last else []
        except AccordError:
            return ""
        lines: list[str] = []
        for entry in entries:
            if entry.task_id != attempt.task_id or entry.kind != TranscriptKind.MESSAGE:
                continue
            message = ChatMessage.from_dict(entry.body)
            if message.text.strip():
                lines.append(f"{message.role}: {message.text.strip()}")
            for call in message.tool_calls:
                lines.append(f"call {call.name} {json.dumps(call.arguments)[:300]}")
            for result in message.tool_results:
                lines.append(f"result of {result.name}: {result.content[:600]}")
        text = "\n".join(lines)
        return text[-TAIL_CHARS:]

    def _reflect(self, task: Task, attempt: TaskAttempt, evidence: str) -> str | None:
        chosen = self.config.learning.reflection_model
        if chosen == "none":
            return None
        try:
            model = self.model
            if chosen is not None and chosen != str(self.model.name):
                model = open_model(
                    chosen,
                    timeout=self.config.agent.model_timeout,
                    max_retries=1,
                    base_urls=self.config.agent.base_urls,
                )
            tail = self._tail(attempt)
            request = ModelRequest(
                system=REFLECTION_SYSTEM,
                messages=(
                    ChatMessage(
                        "user",
                        f"Task #{task.id}: {task.title}\n{task.description}\n\n"
                        f"Evidence: {evidence}\n\nThe attempt's transcript, its end:\n"
                        f"{tail or '(nothing was kept)'}",
                    ),
                ),
                max_tokens=REFLECTION_TOKENS,
            )
            response = model.complete(request)
            self._usage(model, response, request, task.id)
            return written_lesson(response.message.text)
        except (ModelError, AccordError, OSError, ValueError):
            return None

    def _usage(
        self, model: Model, response: ModelResponse, request: ModelRequest, task_id: int
    ) -> None:
        try:
            self.services.runs.record_usage(
                usage_record(self.member, model, response, request, task_id, self.prices)
            )
        except AccordError:
            pass
