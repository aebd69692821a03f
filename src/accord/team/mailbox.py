"""Mailboxes: messages kept until their recipient acknowledges them.

Every member has one, and so has ``person``, the person at the terminal, who is
no member: members write to it and it writes to them.

``inbox`` delivers what is waiting and makes it invisible for the visibility
timeout; a message delivered but never acknowledged (its reader crashed before
saving it) is delivered again when that runs out. The agent runtime
acknowledges only after the message is saved into its transcript, so a message
is never lost between the mailbox and the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from accord.types import PERSON, Message, MessageKind, OutgoingMessage

if TYPE_CHECKING:
    from accord.store.base import MailStore


class MailboxSettings(Protocol):
    """What a mailbox needs of its settings: ``config.MailboxConfig``, or a quick read of
    accord.toml that a command reading its inbox makes without loading the validator."""

    @property
    def visibility_timeout(self) -> float: ...

    @property
    def recheck(self) -> float: ...


def sender_attrs(message: Message) -> str:
    """Who a message is from, as a member's context shows it. Mail from the person is
    marked apart from mail between members (as Claude Code shows what the user says
    apart from what agents send), so a member knows whose word it has."""
    if message.sender == PERSON:
        return f'from="{PERSON}" role="user"'
    return f'from="{message.sender}"'


class Mailbox:
    """The mailboxes of one team."""

    def __init__(
        self, store: MailStore, team: str, settings: MailboxSettings | None = None
    ) -> None:
        self.store = store
        self.team = team
        self._settings = settings

    @property
    def settings(self) -> MailboxSettings:
        """The visibility timeout: the project's, or the default (whose validator, and
        pydantic, load only when a read needs it, never for the history)."""
        if self._settings is None:
            from accord.config import MailboxConfig

            self._settings = MailboxConfig()
        return self._settings

    def send(
        self,
        sender: str,
        recipient: str,
        body: str,
        *,
        kind: MessageKind = MessageKind.TEXT,
        summary: str | None = None,
        reply_to: int | None = None,
        key: str | None = None,
    ) -> list[Message]:
        """Send to one member or to ``*``; the same ``key`` from the same sender sends once."""
        return self.store.send_message(
            self.team,
            OutgoingMessage(
                sender=sender,
                recipient=recipient,
                body=body,
                kind=kind,
                summary=summary,
                reply_to=reply_to,
                idempotency_key=key,
            ),
        )

    def inbox(self, member: str, limit: int | None = None) -> list[Message]:
        return self.store.receive_messages(
            self.team, member, visibility_timeout=self.settings.visibility_timeout, limit=limit
        )

    def ack(self, member: str, ids: Sequence[int]) -> list[int]:
        return self.store.ack_messages(self.team, member, ids)

    def get(self, message_id: int) -> Message:
        """One message by its id."""
        return self.store.get_message(self.team, message_id)

    def history(
        self, member: str | None = None, unacked: bool = False, limit: int = 100
    ) -> list[Message]:
        return self.store.list_messages(self.team, member=member, unacked=unacked, limit=limit)
