"""Channels: named topics of a team, their subscribers, and posts to them.

A post is a message whose recipient is the channel itself (the channel's history,
complete and in order for anyone who reads it, however late they joined) and one copy
per other subscriber, addressed to that subscriber: a copy is mail like any other
(delivered, acknowledged, never lost, first-in first-out), marked with its channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from accord.errors import (
    AlreadyExists,
    InvalidState,
    Reason,
    UnknownChannel,
    UnknownMessage,
    UserError,
)
from accord.events import EventKind
from accord.store.limits import MAX_BODY, MAX_KEY, MAX_SUMMARY
from accord.store.sql.mail import _MESSAGE_COLUMNS, _message
from accord.store.sql.seam import Connection, Seam, _cap, atomic
from accord.types import (
    PERSON,
    Channel,
    ChannelNews,
    Message,
    MessageKind,
    RouteChoice,
    check_channel,
)


class ChannelsPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    Channels: named topics of a team, their subscribers, and posts to them.
    """

    def _channel_row(
        self, db: Connection, team_id: int, team: str, name: str, *, lock: str = ""
    ) -> Sequence[Any]:
        row = db.execute(
            f"SELECT name, creator, created_at FROM channels WHERE team_id = ? AND name = ?{lock}",
            (team_id, name),
        ).fetchone()
        if row is None:
            names = [
                r[0]
                for r in db.execute(
                    "SELECT name FROM channels WHERE team_id = ? ORDER BY name", (team_id,)
                )
            ]
            known = f"channels: {', '.join(names)}" if names else "it has no channels yet"
            raise UnknownChannel(
                f"team {team!r} has no channel {name} ({known})", channel=name, team=team
            )
        return row  # type: ignore[no-any-return]

    def _subscribers(self, db: Connection, team_id: int, channel: str) -> list[str]:
        # A removed member's subscription stays behind, unread: it is no address any more.
        return [
            r[0]
            for r in db.execute(
                "SELECT s.member FROM channel_subscribers s WHERE s.team_id = ? "
                "AND s.channel = ? AND (s.member = ? OR EXISTS (SELECT 1 FROM members m "
                "WHERE m.team_id = s.team_id AND m.name = s.member)) ORDER BY s.member",
                (team_id, channel, PERSON),
            )
        ]

    @atomic
    def create_channel(self, team: str, name: str, creator: str) -> Channel:
        """Create ``name`` (``#design``), with ``creator`` (a member or the person) as its
        first subscriber; AlreadyExists if the team has it."""
        name = check_channel(name)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._mail_address(db, team_id, team, creator, lock=self._KEY_SHARE)
            if db.execute(
                "SELECT 1 FROM channels WHERE team_id = ? AND name = ?", (team_id, name)
            ).fetchone():
                raise AlreadyExists(f"team {team!r} already has a channel {name}", team=team)
            now = self.clock()
            db.execute(
                "INSERT INTO channels (team_id, name, creator, created_at) VALUES (?, ?, ?, ?)",
                (team_id, name, creator, now),
            )
            db.execute(
                "INSERT INTO channel_subscribers (team_id, channel, member, joined_at) "
                "VALUES (?, ?, ?, ?)",
                (team_id, name, creator, now),
            )
            self._event(
                db,
                team_id,
                EventKind.CHANNEL_CREATED,
                {"channel": name, "creator": creator},
                creator,
            )
        return Channel(team, name, creator, now, (creator,))

    @atomic
    def join_channel(self, team: str, name: str, member: str) -> bool:
        """Subscribe ``member`` (or the person); False, and nothing written, if it was."""
        name = check_channel(name)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._mail_address(db, team_id, team, member, lock=self._KEY_SHARE)
            self._channel_row(db, team_id, team, name)
            if db.execute(
                "SELECT 1 FROM channel_subscribers WHERE team_id = ? AND channel = ? "
                "AND member = ?",
                (team_id, name, member),
            ).fetchone():
                return False
            db.execute(
                "INSERT INTO channel_subscribers (team_id, channel, member, joined_at) "
                "VALUES (?, ?, ?, ?)",
                (team_id, name, member, self.clock()),
            )
            self._event(
                db, team_id, EventKind.CHANNEL_JOINED, {"channel": name, "member": member}, member
            )
        return True

    @atomic
    def leave_channel(self, team: str, name: str, member: str) -> bool:
        """Unsubscribe ``member``; False, and nothing written, if it was not subscribed.
        Copies already in its inbox stay there until acknowledged."""
        name = check_channel(name)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._mail_address(db, team_id, team, member, lock=self._KEY_SHARE)
            self._channel_row(db, team_id, team, name)
            gone = db.execute(
                "DELETE FROM channel_subscribers WHERE team_id = ? AND channel = ? "
                "AND member = ? RETURNING member",
                (team_id, name, member),
            ).fetchone()
            if gone is None:
                return False
            self._event(
                db, team_id, EventKind.CHANNEL_LEFT, {"channel": name, "member": member}, member
            )
        return True

    @atomic
    def post(
        self,
        team: str,
        channel: str,
        sender: str,
        body: str,
        *,
        summary: str | None = None,
        route: RouteChoice | None = None,
        key: str | None = None,
        reply_to: int | None = None,
    ) -> list[Message]:
        """Post to ``channel``: the post (its history row, first) and one copy for each
        other subscriber; with ``route``, the post has that one owner from the start.
        UnknownChannel if there is none; InvalidState (NOT_SUBSCRIBED)
        unless ``sender`` subscribes. ``reply_to``: the message (or post) it answers.

        With an idempotency ``key`` the same sender already posted under to this
        channel, returns that post and its copies and posts nothing; a key the sender
        used for something else is refused."""
        channel = check_channel(channel)
        _cap(body, MAX_BODY, "the post")
        _cap(summary, MAX_SUMMARY, "the post's summary")
        _cap(key, MAX_KEY, "the idempotency key")
        if not body.strip():
            raise UserError("a post needs a body; give the text as the argument")
        with self._write() as db:
            team_id = self._team_id(db, team)
            self._mail_address(db, team_id, team, sender, lock=self._KEY_SHARE)
            self._channel_row(db, team_id, team, channel, lock=self._KEY_SHARE)
            subscribers = self._subscribers(db, team_id, channel)
            if sender not in subscribers:
                raise InvalidState(
                    f"{sender} has not joined {channel}; only its subscribers post to it",
                    team=team,
                    member=sender,
                    reason=Reason.NOT_SUBSCRIBED,
                )
            if key is not None:
                prior = [
                    _message(team, r)
                    for r in db.execute(
                        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE team_id = ? "
                        "AND sender = ? AND idempotency_key = ? ORDER BY id",
                        (team_id, sender, key),
                    ).fetchall()
                ]
                if prior and prior[0].channel == channel and prior[0].recipient == channel:
                    return prior
                if prior:
                    raise UserError(
                        f"{sender} already used the idempotency key {key!r} for message "
                        f"#{prior[0].id}, not a post to {channel}; give this post a new key"
                    )
            if (
                reply_to is not None
                and not db.execute(
                    "SELECT 1 FROM messages WHERE team_id = ? AND id = ?", (team_id, reply_to)
                ).fetchone()
            ):
                raise UnknownMessage(
                    f"--reply-to {reply_to}: no such message in this team",
                    message_ids=(reply_to,),
                    team=team,
                )
            now = self.clock()
            recipients = [channel, *(s for s in subscribers if s != sender)]
            ids = self._write_post(
                db,
                team_id,
                sender,
                recipients,
                body,
                summary,
                channel,
                now,
                reply_to=reply_to,
                key=key,
            )
            if route is not None:
                self._route_new(db, team_id, team, ids, route, sender)
            self._answered(db, team_id, team, sender, reply_to, ids[0])
        return [
            Message(
                id=i,
                team=team,
                sender=sender,
                recipient=to,
                kind=MessageKind.TEXT,
                body=body,
                summary=summary,
                request_id=None,
                reply_to=reply_to,
                idempotency_key=key,
                sent_at=now,
                delivered_at=None,
                acked_at=now if to == channel else None,
                deliveries=0,
                channel=channel,
                route_id=ids[0] if route is not None else None,
            )
            for i, to in zip(ids, recipients, strict=True)
        ]

    @atomic
    def channel_history(
        self, team: str, channel: str, *, since: int = 0, limit: int = 100, newest: bool = False
    ) -> list[Message]:
        """The channel's posts after message id ``since``, oldest first, at most ``limit``:
        the oldest of them, or with ``newest`` the newest (a view opening a long channel
        shows its end)."""
        channel = check_channel(channel)
        order = "DESC" if newest else ""
        with self._read() as db:
            team_id = self._team_id(db, team)
            self._channel_row(db, team_id, team, channel)
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE team_id = ? AND channel = ? "
                f"AND recipient = ? AND id > ? ORDER BY id {order} LIMIT ?",
                (team_id, channel, channel, since, limit),
            ).fetchall()
        found = [_message(team, r) for r in rows]
        return found[::-1] if newest else found

    @atomic
    def channel_news(self, team: str, member: str) -> dict[str, ChannelNews]:
        """For each channel of the team: how many of its posts wait unacknowledged in
        ``member``'s inbox, and its newest post (None while it has none)."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            self._mail_address(db, team_id, team, member)
            unread = dict(
                db.execute(
                    "SELECT channel, COUNT(*) FROM messages WHERE team_id = ? AND recipient = ? "
                    "AND acked_at IS NULL AND channel IS NOT NULL GROUP BY channel",
                    (team_id, member),
                ).fetchall()
            )
            names = [
                r[0]
                for r in db.execute(
                    "SELECT name FROM channels WHERE team_id = ? ORDER BY name", (team_id,)
                ).fetchall()
            ]
            news: dict[str, ChannelNews] = {}
            for name in names:
                # Backwards along (team, channel, id): the newest post is found after
                # its own copies at most.
                row = db.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE team_id = ? "
                    "AND channel = ? AND recipient = ? ORDER BY id DESC LIMIT 1",
                    (team_id, name, name),
                ).fetchone()
                newest = _message(team, row) if row is not None else None
                news[name] = ChannelNews(name, int(unread.get(name, 0)), newest)
        return news

    @atomic
    def ack_channel(self, team: str, channel: str, member: str) -> list[int]:
        """Acknowledge every copy of ``channel``'s posts waiting in ``member``'s inbox (it
        has read the channel); the ids newly acknowledged, with one ``messages_acked``
        event. UnknownChannel if there is none."""
        channel = check_channel(channel)
        with self._write() as db:
            team_id = self._team_id(db, team)
            self._mail_address(db, team_id, team, member, lock=self._LOCK_ROW)
            self._channel_row(db, team_id, team, channel)
            # One statement for them all (10,000 unread copies: one update, not 10,000),
            # and exactly the rows it changed come back for the event.
            now = self.clock()
            ids = sorted(
                r[0]
                for r in db.execute(
                    "UPDATE messages SET acked_at = ?, delivered_at = COALESCE(delivered_at, ?) "
                    "WHERE team_id = ? AND recipient = ? AND channel = ? AND acked_at IS NULL "
                    "RETURNING id",
                    (now, now, team_id, member, channel),
                ).fetchall()
            )
            if ids:
                payload = {"by": member, "ids": ids}
                self._event(db, team_id, EventKind.MESSAGES_ACKED, payload, member)
            return ids

    @atomic
    def list_channels(self, team: str) -> list[Channel]:
        """The team's channels by name, each with its subscribers."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                "SELECT name, creator, created_at FROM channels WHERE team_id = ? ORDER BY name",
                (team_id,),
            ).fetchall()
            return [
                Channel(team, r[0], r[1], r[2], tuple(self._subscribers(db, team_id, r[0])))
                for r in rows
            ]
