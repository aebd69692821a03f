"""What waits on a decision: plans sent for approval and permission asks, in one list.

A member whose definition sets ``plan_required`` sends its plan to the lead
(``plan_approval_request``); a tool call an ask rule paused sends a
``permission_request`` to the person (or to the lead). A view shows both as one
list of open asks, oldest first, and the person answers either from it: a plan the
lead has not answered yet may be approved or rejected by the person, who outranks
the lead (the member takes the first answer); a permission ask is answered through
``Permits``, by the one it asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from accord.errors import InvalidState, Reason
from accord.team.permits import Permits
from accord.types import PERSON, MessageKind

if TYPE_CHECKING:
    from accord.team import Team

#: How many of the newest messages are looked through for open plans.
WINDOW = 1000


@dataclass(frozen=True, slots=True)
class OpenAsk:
    """One request waiting for an answer."""

    id: int  # the request message's id
    kind: Literal["plan", "permission"]
    member: str  # who asks
    to: str  # who it was sent to
    what: str  # the plan's text, or "bash: rm -rf build" for a permission ask
    sent_at: float


class Asks:
    """The open asks of one team, and the person's answers to them."""

    def __init__(self, team: Team) -> None:
        self.team = team
        self.permits = Permits(team)

    def pending(self) -> list[OpenAsk]:
        """Open plans (among the newest ``WINDOW`` messages) and open permission asks,
        oldest first."""
        messages = self.team.mailbox.history(limit=WINDOW)
        answered = {m.reply_to for m in messages if m.kind == MessageKind.PLAN_APPROVAL_RESPONSE}
        out = [
            OpenAsk(m.id, "plan", m.sender, m.recipient, m.body, m.sent_at)
            for m in messages
            if m.kind == MessageKind.PLAN_APPROVAL_REQUEST and m.id not in answered
        ]
        for ask in self.permits.pending():
            target = f": {ask.target}" if ask.target else ""
            out.append(
                OpenAsk(ask.id, "permission", ask.member, ask.to, ask.tool + target, ask.sent_at)
            )
        return sorted(out, key=lambda a: (a.sent_at, a.id))

    def answer(self, ask: OpenAsk, *, yes: bool, reason: str = "", by: str = PERSON) -> None:
        """Approve or reject a plan, allow or deny a permission ask, as ``by``.
        InvalidState when it was answered already."""
        reason = " ".join(reason.split())
        if ask.kind == "permission":
            self.permits.answer(ask.id, by, allowed=yes, reason=reason)
            return
        if ask.id not in {a.id for a in self.pending() if a.kind == "plan"}:
            raise InvalidState(
                f"the plan in message {ask.id} was answered already",
                reason=Reason.NOT_AN_OPEN_ASK,
            )
        word = "approved" if yes else "rejected"
        self.team.mailbox.send(
            by,
            ask.member,
            word + (f": {reason}" if reason else ""),
            kind=MessageKind.PLAN_APPROVAL_RESPONSE,
            summary=f"plan {word} by {by}",
            reply_to=ask.id,
        )
