"""Channels: named, durable topics of a team (``#design``), with subscribers.

A post reaches every other subscriber's inbox as mail, with mail's promises
(acknowledged, never lost, first-in first-out), and stays in the channel's history,
which any member reads whole, however late it joined. Posting needs a subscription;
the person (``person``) may subscribe like a member.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accord.types import Channel, ChannelNews, Message

if TYPE_CHECKING:
    from accord.store.base import ChannelStore


class Channels:
    """The channels of one team."""

    def __init__(self, store: ChannelStore, team: str) -> None:
        self.store = store
        self.team = team

    def create(self, name: str, creator: str) -> Channel:
        """Create ``name`` (``#design`` or ``design``); its creator subscribes."""
        return self.store.create_channel(self.team, name, creator)

    def join(self, name: str, member: str) -> bool:
        """Subscribe ``member``; False if it was already subscribed."""
        return self.store.join_channel(self.team, name, member)

    def leave(self, name: str, member: str) -> bool:
        """Unsubscribe ``member``; False if it was not subscribed."""
        return self.store.leave_channel(self.team, name, member)

    def post(
        self,
        name: str,
        sender: str,
        body: str,
        *,
        summary: str | None = None,
        key: str | None = None,
        reply_to: int | None = None,
    ) -> Message:
        """Post to a channel ``sender`` subscribes to; returns the post (its history row).
        ``key``: an idempotency key (the same key again returns the first post, and
        posts nothing); ``reply_to``: the message it answers (answering a routed one is
        its owner's right, and marks it answered)."""
        return self.store.post(
            self.team, name, sender, body, summary=summary, key=key, reply_to=reply_to
        )[0]

    def read(
        self, name: str, *, since: int = 0, limit: int = 100, newest: bool = False
    ) -> list[Message]:
        """The channel's posts after id ``since``, oldest first: the first ``limit`` of
        them, or with ``newest`` the last ``limit``."""
        return self.store.channel_history(self.team, name, since=since, limit=limit, newest=newest)

    def news(self, reader: str) -> dict[str, ChannelNews]:
        """Per channel: its posts unread in ``reader``'s inbox, and its newest post."""
        return self.store.channel_news(self.team, reader)

    def mark_read(self, name: str, reader: str) -> list[int]:
        """``reader`` has read the channel: its inbox copies of the channel's posts are
        acknowledged (the ids newly acknowledged)."""
        return self.store.ack_channel(self.team, name, reader)

    def list(self) -> list[Channel]:
        """Every channel of the team, by name, with its subscribers."""
        return self.store.list_channels(self.team)
