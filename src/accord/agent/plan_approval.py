"""Plan approval: a member whose definition sets ``plan_required`` works each task
read-only until the lead approves the plan it sends with ``send_plan``.

::

    NEEDED --send_plan--> SENT --the lead answers "approved..."--> APPROVED
      ^                    |
      +---any other answer-+

A session without a task needs no plan: it starts APPROVED. Every move is saved in
the member's transcript as a ``plan_state`` entry (body ``{"state": "sent"}``) in the
same order as the conversation, so a restarted member takes up the state its session
left. Transcripts written before that entry existed kept each move as a note
(``"plan sent"``); ``state_of`` still reads those, for old entries only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from accord.agent.tools import all_tools
from accord.agent.tools.base import Toolbox
from accord.agent.tools.plan import PLAN_TOOLS, PLANNING_ALLOWED
from accord.types import Message, MessageKind, PlanState, TranscriptEntry, TranscriptKind

_OLD_NOTE = "plan "  # how a move was noted before PLAN_STATE entries: "plan sent"


def body(state: PlanState) -> dict[str, Any]:
    """The body of the ``plan_state`` transcript entry that records a move to ``state``."""
    return {"state": state.value}


def state_of(entry: TranscriptEntry) -> PlanState | None:
    """The state a transcript entry records, if it records one."""
    if entry.kind == TranscriptKind.PLAN_STATE:
        return PlanState(entry.body["state"])
    if entry.kind == TranscriptKind.NOTE:
        text = str(entry.body.get("text", ""))
        if text.startswith(_OLD_NOTE):
            try:
                return PlanState(text.removeprefix(_OLD_NOTE))
            except ValueError:
                return None
    return None


def approves(answer: Message) -> bool:
    """Whether the lead's ``plan_approval_response`` approves the plan (its body starts
    with ``approved``; the ``approve_plan`` tool writes ``approved`` or ``rejected``,
    each maybe followed by ``: feedback``)."""
    return answer.body.startswith("approved")


class PlanApproval:
    """One member's plan state, and the tools it allows.

    The moves return the state to record (None: nothing moved); the caller saves it
    with ``body`` in the member's transcript. ``required`` is the member definition's
    ``plan_required``, asked at each session's start (a definition may be swapped
    before a run).
    """

    def __init__(self, required: bool) -> None:
        self.state = PlanState.NEEDED if required else PlanState.APPROVED
        self._planning: Toolbox | None = None

    @property
    def waiting(self) -> bool:
        """A plan was sent and the lead has not answered yet."""
        return self.state == PlanState.SENT

    @property
    def needed(self) -> bool:
        """The member has to send a plan before it may change anything."""
        return self.state == PlanState.NEEDED

    def start(self, task_id: int | None, *, required: bool) -> None:
        """A new session: a task needs a plan first, a session without one does not."""
        if required:
            self.state = PlanState.NEEDED if task_id is not None else PlanState.APPROVED

    def restore(
        self, entries: Iterable[TranscriptEntry], task_id: int | None, *, required: bool
    ) -> None:
        """A restarted member's state: the last move its session's ``entries`` record."""
        if not required or task_id is None:
            return
        self.state = PlanState.NEEDED
        for entry in entries:
            found = state_of(entry)
            if found is not None:
                self.state = found

    def sent(self) -> PlanState:
        """``send_plan`` succeeded: wait for the lead's answer."""
        self.state = PlanState.SENT
        return self.state

    def answered(self, message: Message) -> PlanState | None:
        """Take the lead's answer, if ``message`` is one and a plan waits for it."""
        if message.kind != MessageKind.PLAN_APPROVAL_RESPONSE or not self.waiting:
            return None
        self.state = PlanState.APPROVED if approves(message) else PlanState.NEEDED
        return self.state

    def tools(self, full: Toolbox) -> Toolbox:
        """The tools for this turn: all of ``full`` once approved, else read-only ones
        and ``send_plan``."""
        if self.state == PlanState.APPROVED:
            return full
        if self._planning is None:
            self._planning = Toolbox(all_tools() + PLAN_TOOLS, PLANNING_ALLOWED)
        return self._planning
