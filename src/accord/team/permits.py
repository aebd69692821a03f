"""Permission asks: a tool call an ask rule paused, the request it sends, and its answer.

The request is a ``permission_request`` message from the member to whoever answers
(``person``, or the lead when ``[permissions] ask_to = "lead"``); its message id is
the ask's id (``accord permit ID``, ``accord deny ID``). The answer is a
``permission_response`` replying to it, sent by the addressee only (the store
refuses anyone else), once: its idempotency key is the request's id, so two
answers racing leave one. A request carries its deadline; after it the ask is
denied and can no longer be answered. The member waits on its mailbox (the Team's
wait), reads the answer, and acknowledges it, so the model sees it only as the tool
call's result. Every step is an event: asked, answered (by whom), timed out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from accord.errors import InvalidState, Reason, UserError
from accord.events import EventKind
from accord.types import PERSON, Message, MessageKind, WakeReason

if TYPE_CHECKING:
    from accord.team import Team

_DEADLINE = re.compile(r"^unanswered by (\S+), it is denied\.$", re.M)
_TOOL = re.compile(r"^(\S+) asks to use (\S+)", re.M)
_RULE = re.compile(r"^rule: (.*)$", re.M)
_TARGET = re.compile(r"^target: (.*)$", re.M)
TARGET_LIMIT = 2000  # characters of a command or path a request shows
RECHECK_SECONDS = 0.25  # while other mail waits: look again at least this often


@dataclass(frozen=True, slots=True)
class Ask:
    """One permission request, as its message carries it."""

    id: int  # the request message's id: what `accord permit` takes
    member: str
    to: str
    tool: str
    rule: str
    target: str | None
    deadline: float  # unix time: unanswered by then, it is denied
    sent_at: float

    @classmethod
    def of(cls, message: Message) -> Ask:
        """The ask a ``permission_request`` message carries; UserError for another kind."""
        if message.kind != MessageKind.PERMISSION_REQUEST:
            raise UserError(
                f"message {message.id} is a {message.kind.value}, not a permission request",
                reason=Reason.NOT_AN_OPEN_ASK,
            )
        body = message.body
        deadline = _DEADLINE.search(body)
        tool = _TOOL.search(body)
        rule = _RULE.search(body)
        target = _TARGET.search(body)
        return cls(
            id=message.id,
            member=message.sender,
            to=message.recipient,
            tool=tool.group(2).rstrip(":") if tool else "?",
            rule=rule.group(1) if rule else "?",
            target=target.group(1) if target else None,
            deadline=(
                datetime.fromisoformat(deadline.group(1)).timestamp()
                if deadline
                else message.sent_at
            ),
            sent_at=message.sent_at,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to an ask: allowed or not, by whom, and why."""

    request: int
    allowed: bool
    by: str
    reason: str

    @classmethod
    def of(cls, message: Message) -> Answer:
        allowed = message.body.startswith("allowed")
        reason = message.body.partition(": ")[2] if ": " in message.body else ""
        return cls(message.reply_to or 0, allowed, message.sender, reason)


def request_body(member: str, tool: str, target: str | None, rule: str, deadline: float) -> str:
    """The text of a permission request (``Ask.of`` reads it back)."""
    when = datetime.fromtimestamp(deadline, UTC).isoformat(timespec="milliseconds")
    lines = [f"{member} asks to use {tool}: an ask rule paused the call."]
    if target is not None:
        shown = " ".join(target.split("\n"))[:TARGET_LIMIT]
        lines.append(f"target: {shown}")
    lines.append(f"rule: {rule}")
    lines.append(f"unanswered by {when}, it is denied.")
    lines.append(
        "Answer by this message's id: `accord permit ID` or `accord deny ID --reason TEXT` "
        "(a lead: the answer_permission tool)."
    )
    return "\n".join(lines)


def answer_body(allowed: bool, reason: str) -> str:
    word = "allowed" if allowed else "denied"
    return f"{word}: {reason}" if reason else word


class Permits:
    """The permission asks of one team."""

    def __init__(self, team: Team) -> None:
        self.team = team

    def ask(
        self,
        member: str,
        to: str,
        *,
        tool: str,
        target: str | None,
        rule: str,
        source: str,
        timeout: float,
    ) -> Ask:
        """Send ``to`` a permission request for ``member``'s call, and log the ask."""
        deadline = time.time() + timeout
        body = request_body(member, tool, target, rule, deadline)
        (sent,) = self.team.mailbox.send(
            member,
            to,
            body,
            kind=MessageKind.PERMISSION_REQUEST,
            summary=f"permission to use {tool}",
        )
        payload: dict[str, object] = {
            "member": member,
            "tool": tool,
            "rule": rule,
            "source": source,
            "request": sent.id,
            "to": to,
            "timeout": timeout,
        }
        if target is not None:
            payload["target"] = target[:TARGET_LIMIT]
        self.team.log.append_event(EventKind.PERMISSION_ASKED, payload, member)
        return Ask.of(sent)

    def wait(self, ask: Ask, *, stop: Callable[[], bool] | None = None) -> Answer | None:
        """Block until ``ask`` is answered (the answer, acknowledged) or its deadline
        passes, or ``stop`` says so (None both times; a timeout is logged)."""
        member = ask.member
        while True:
            found = self._answer_to(ask)
            if found is not None:
                self.team.mailbox.ack(member, [found.id])
                return Answer.of(found)
            remaining = ask.deadline - time.time()
            if remaining <= 0:
                break
            if stop is not None and stop():
                return None
            wake = self.team.wait(
                member,
                remaining,
                stop=stop,
                tasks=False,
                also=lambda: self._answer_to(ask) is not None,
            )
            if wake.reason == WakeReason.MAIL and self._answer_to(ask) is None:
                # Other mail waits for the member's loop, so the mailbox would wake us at
                # once again: wait for the store to change instead.
                self.team.changed(member, min(remaining, RECHECK_SECONDS), stop=stop)
        found = self._answer_to(ask)  # one last look: an answer made just in time counts
        if found is not None:
            self.team.mailbox.ack(member, [found.id])
            return Answer.of(found)
        self.team.log.append_event(
            EventKind.PERMISSION_TIMED_OUT,
            {
                "member": member,
                "tool": ask.tool,
                "request": ask.id,
                "to": ask.to,
                "waited": round(time.time() - ask.sent_at, 3),
            },
            member,
        )
        return None

    def _answer_to(self, ask: Ask) -> Message | None:
        for m in self.team.mailbox.history(ask.member, unacked=True, limit=100):
            if (
                m.kind == MessageKind.PERMISSION_RESPONSE
                and m.reply_to == ask.id
                and m.recipient == ask.member
            ):
                return m
        return None

    def _answered(self, ask: Ask) -> Message | None:
        for m in self.team.mailbox.history(ask.member, limit=500):
            if m.kind == MessageKind.PERMISSION_RESPONSE and m.reply_to == ask.id:
                return m
        return None

    def get(self, request_id: int) -> Ask:
        """The ask with this id: UnknownMessage, or UserError for another kind."""
        return Ask.of(self.team.mailbox.get(request_id))

    def answer(self, request_id: int, by: str, *, allowed: bool, reason: str = "") -> Answer:
        """Answer an open ask, as ``by`` (its addressee only); InvalidState when it was
        answered already or its deadline passed. Nothing changes on a refusal."""
        ask = self.get(request_id)
        if by != ask.to:
            who = "the person" if ask.to == PERSON else f"the lead, {ask.to}"
            raise UserError(
                f"permission request {request_id} asks {who}; only {ask.to} may answer it"
            )
        prior = self._answered(ask)
        if prior is not None:
            raise InvalidState(
                f"permission request {request_id} was answered already by {prior.sender} "
                f"({prior.body})",
                reason=Reason.NOT_AN_OPEN_ASK,
            )
        if time.time() > ask.deadline:
            raise InvalidState(
                f"permission request {request_id} timed out unanswered, so it was denied",
                reason=Reason.NOT_AN_OPEN_ASK,
            )
        body = answer_body(allowed, " ".join(reason.split()))
        (sent,) = self.team.mailbox.send(
            by,
            ask.member,
            body,
            kind=MessageKind.PERMISSION_RESPONSE,
            summary="permission " + ("allowed" if allowed else "denied"),
            reply_to=request_id,
            key=f"permission:{request_id}",
        )
        # The key let one answer in: another answer that raced this one came first.
        if sent.body != body:
            raise InvalidState(
                f"permission request {request_id} was answered already by {sent.sender} "
                f"({sent.body})",
                reason=Reason.NOT_AN_OPEN_ASK,
            )
        answer = Answer.of(sent)
        self.team.log.append_event(
            EventKind.PERMISSION_ANSWERED,
            {
                "member": ask.member,
                "tool": ask.tool,
                "request": request_id,
                "by": by,
                "allowed": allowed,
                "reason": answer.reason,
            },
            by if by != PERSON else None,
        )
        return answer

    def pending(self, to: str | None = None) -> list[Ask]:
        """Open asks (unanswered, before their deadline), oldest first; ``to`` filters by
        who answers them."""
        now = time.time()
        messages = self.team.mailbox.history(limit=1000)
        answered = {m.reply_to for m in messages if m.kind == MessageKind.PERMISSION_RESPONSE}
        out = []
        for m in messages:
            if m.kind != MessageKind.PERMISSION_REQUEST or m.id in answered:
                continue
            ask = Ask.of(m)
            if ask.deadline >= now and (to is None or ask.to == to):
                out.append(ask)
        return out
