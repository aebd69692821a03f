"""Mail: sending, receiving and acknowledging messages, and what wakes a waiting member."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from accord.errors import InvalidState, UnknownMessage, UserError
from accord.events import EventKind
from accord.store.bells import Bell
from accord.store.limits import MAX_BODY, MAX_KEY, MAX_SUMMARY
from accord.store.sql.seam import _READY, Connection, Seam, _cap, atomic
from accord.types import (
    BROADCAST,
    PERSON,
    Message,
    MessageKind,
    OutgoingMessage,
    RouteChoice,
    Wake,
    WakeReason,
)

_MESSAGE_COLUMNS = (
    "id, sender, recipient, kind, body, summary, request_id, reply_to, idempotency_key, "
    "sent_at, delivered_at, acked_at, deliveries, broadcast, channel, route_id"
)


def _message(team: str, r: Sequence[Any]) -> Message:
    return Message(
        id=r[0],
        team=team,
        sender=r[1],
        recipient=r[2],
        kind=MessageKind(r[3]),
        body=r[4],
        summary=r[5],
        request_id=r[6],
        reply_to=r[7],
        idempotency_key=r[8],
        sent_at=r[9],
        delivered_at=r[10],
        acked_at=r[11],
        deliveries=r[12],
        broadcast=bool(r[13]),
        channel=r[14],
        route_id=r[15],
    )


class MailPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    Mail: sending, receiving and acknowledging messages, and what wakes a waiting member.
    """

    # mail ------------------------------------------------------------------

    @atomic
    def send_message(
        self, team: str, message: OutgoingMessage, *, route: RouteChoice | None = None
    ) -> list[Message]:
        """Send to a member, or to ``*`` for everyone but the sender (one row each);
        with ``route``, the message has that one owner from the moment it exists.

        With an idempotency key already used by the same sender, returns the
        original messages and sends nothing.
        """
        m = message
        kind = MessageKind(m.kind)
        _cap(m.body, MAX_BODY, "the message body")
        _cap(m.summary, MAX_SUMMARY, "the message summary")
        _cap(m.idempotency_key, MAX_KEY, "the idempotency key")
        if not m.body.strip():
            raise UserError("a message needs a body; give the text as the argument")
        with self._write() as db:
            team_id = self._team_id(db, team)
            # No turn: the members involved only must stay (sends to others run at once).
            self._mail_address(db, team_id, team, m.sender, lock=self._KEY_SHARE)
            if m.idempotency_key is not None:
                prior = self._messages(
                    db,
                    team,
                    "team_id = ? AND sender = ? AND idempotency_key = ?",
                    (team_id, m.sender, m.idempotency_key),
                )
                if prior:
                    return prior
            if m.recipient == BROADCAST:
                recipients = [
                    r[0]
                    for r in db.execute(
                        "SELECT name FROM members WHERE team_id = ? AND name != ? ORDER BY name"
                        + self._KEY_SHARE,
                        (team_id, m.sender),
                    )
                ]
                if not recipients:
                    raise InvalidState(
                        f"{m.sender} is alone in team {team!r}; there is nobody to broadcast to"
                    )
            else:
                self._mail_address(db, team_id, team, m.recipient, lock=self._KEY_SHARE)
                recipients = [m.recipient]
            request_id = self._request_id(db, team_id, m, kind)
            now = self.clock()
            ids = []
            for to in recipients:
                ids.append(
                    db.execute(
                        "INSERT INTO messages (team_id, sender, recipient, kind, body, summary, "
                        "request_id, reply_to, idempotency_key, broadcast, sent_at, visible_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                        (
                            team_id,
                            m.sender,
                            to,
                            kind.value,
                            m.body,
                            m.summary,
                            request_id,
                            m.reply_to,
                            m.idempotency_key,
                            int(m.recipient == BROADCAST),
                            now,
                            now,
                        ),
                    ).fetchone()[0]
                )
            self._event(
                db,
                team_id,
                EventKind.MESSAGE_SENT,
                {
                    "ids": ids,
                    "from": m.sender,
                    "to": m.recipient,
                    "kind": kind.value,
                    "summary": m.summary,
                    "request_id": request_id,
                },
                m.sender,
            )
            if route is not None:
                self._route_new(db, team_id, team, ids, route, m.sender)
            self._answered(db, team_id, team, m.sender, m.reply_to, ids[0])
        return [
            Message(
                id=i,
                team=team,
                sender=m.sender,
                recipient=to,
                kind=kind,
                body=m.body,
                summary=m.summary,
                request_id=request_id,
                reply_to=m.reply_to,
                idempotency_key=m.idempotency_key,
                sent_at=now,
                delivered_at=None,
                acked_at=None,
                deliveries=0,
                broadcast=m.recipient == BROADCAST,
                route_id=ids[0] if route is not None else None,
            )
            for i, to in zip(ids, recipients, strict=True)
        ]

    def _request_id(
        self, db: Connection, team_id: int, m: OutgoingMessage, kind: MessageKind
    ) -> str | None:
        if kind.is_request:
            # A request starts its own exchange, but what it replies to must still exist.
            if (
                m.reply_to is not None
                and not db.execute(
                    "SELECT 1 FROM messages WHERE team_id = ? AND id = ?", (team_id, m.reply_to)
                ).fetchone()
            ):
                raise UnknownMessage(f"--reply-to {m.reply_to}: no such message in this team")
            import uuid  # here: uuid loads platform, which a read never needs

            return uuid.uuid4().hex[:16]
        if m.reply_to is None:
            if kind.answers is not None:
                raise UserError(
                    f"a {kind.value} answers a {kind.answers.value}; pass --reply-to with the "
                    "id of the request"
                )
            return None
        row = db.execute(
            "SELECT kind, request_id, recipient, sender FROM messages WHERE team_id = ? AND id = ?",
            (team_id, m.reply_to),
        ).fetchone()
        if row is None:
            raise UnknownMessage(f"--reply-to {m.reply_to}: no such message in this team")
        if kind.answers is not None:
            if row[0] != kind.answers.value:
                raise UserError(
                    f"message {m.reply_to} is a {row[0]}, not a {kind.answers.value}; "
                    f"a {kind.value} must reply to one"
                )
            # The person may also answer the lead's plan approvals: they outrank the lead.
            person_decides = m.sender == PERSON and kind == MessageKind.PLAN_APPROVAL_RESPONSE
            if row[2] != m.sender and not person_decides:
                raise UserError(
                    f"message {m.reply_to} was sent to {row[2]}, not {m.sender}; only its "
                    "recipient can answer it"
                )
        request: str | None = row[1]
        return request

    def _messages(
        self,
        db: Connection,
        team: str,
        where: str,
        args: Sequence[Any],
        *,
        limit: int | None = None,
    ) -> list[Message]:
        rows = db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY id LIMIT ?",
            (*args, self._NO_LIMIT if limit is None else limit),
        ).fetchall()
        return [_message(team, r) for r in rows]

    @atomic
    def receive_messages(
        self, team: str, member: str, *, visibility_timeout: float, limit: int | None = None
    ) -> list[Message]:
        """Deliver unacknowledged, visible messages in order; each becomes invisible
        for ``visibility_timeout`` seconds and is delivered again if not acknowledged."""
        if visibility_timeout <= 0:
            raise UserError("the visibility timeout must be longer than 0 seconds")
        # Most polls find nothing: answer those from one read statement, without a write.
        with self._peek() as db:
            found = db.execute(
                "SELECT (SELECT count(*) FROM members WHERE team_id = tm.id AND name = ?), "
                "EXISTS (SELECT 1 FROM messages WHERE team_id = tm.id AND recipient = ? "
                "  AND acked_at IS NULL AND visible_at <= ?) "
                "FROM teams tm WHERE tm.name = ?",
                (member, member, self.clock(), team),
            ).fetchone()
        if found is None or (not found[0] and member != PERSON):
            with self._read() as db:  # for the error that says what is missing
                self._mail_address(db, self._team_id(db, team), team, member)
        if found is None or not found[1]:
            return []
        with self._write() as db:
            team_id = self._team_id(db, team)
            # The member's turn at its mailbox: its receives and acks follow one another.
            self._mail_address(db, team_id, team, member, lock=self._LOCK_ROW)
            now = self.clock()
            delivered = self._messages(
                db,
                team,
                "team_id = ? AND recipient = ? AND acked_at IS NULL AND visible_at <= ?",
                (team_id, member, now),
                limit=limit,
            )
            if not delivered:
                return []
            ids = [m.id for m in delivered]
            marks = ",".join("?" * len(ids))
            db.execute(
                f"UPDATE messages SET delivered_at = COALESCE(delivered_at, ?), "
                f"visible_at = ?, deliveries = deliveries + 1 WHERE id IN ({marks})",
                (now, now + visibility_timeout, *ids),
            )
            self._event(
                db, team_id, EventKind.MESSAGES_DELIVERED, {"to": member, "ids": ids}, member
            )
        return [
            dataclasses.replace(
                m,
                delivered_at=now if m.delivered_at is None else m.delivered_at,
                deliveries=m.deliveries + 1,
            )
            for m in delivered
        ]

    @atomic
    def ack_messages(self, team: str, member: str, ids: Sequence[int]) -> list[int]:
        """Acknowledge messages addressed to ``member``; returns the ids newly acknowledged.

        UnknownMessage (and nothing changes) if any id is not addressed to ``member``.
        """
        if not ids:
            return []
        with self._write() as db:
            team_id = self._team_id(db, team)
            self._mail_address(db, team_id, team, member, lock=self._LOCK_ROW)
            return self._ack(db, team_id, member, ids)

    @atomic
    def get_message(self, team: str, message_id: int) -> Message:
        """UnknownMessage if absent."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            found = self._messages(db, team, "team_id = ? AND id = ?", (team_id, message_id))
        if not found:
            raise UnknownMessage(f"team {team!r} has no message {message_id}")
        return found[0]

    @atomic
    def list_messages(
        self,
        team: str,
        *,
        member: str | None = None,
        unacked: bool = False,
        limit: int = 100,
    ) -> list[Message]:
        """The newest ``limit`` messages (to or from ``member``), oldest first."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            where = "team_id = ?"
            args: list[Any] = [team_id]
            if member is not None:
                if member != PERSON:  # the person has a mailbox and is no member
                    self._member_row(db, team_id, team, member)
                where += " AND (recipient = ? OR sender = ?)"
                args += [member, member]
            if unacked:
                where += " AND acked_at IS NULL"
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [_message(team, r) for r in reversed(rows)]

    # waking ----------------------------------------------------------------

    @atomic
    def pending_work(self, team: str, member: str) -> Wake:
        # One statement: every waiter asks this after every ring, so on a server it is
        # one round trip, outside any transaction (see _peek).
        """How much visible mail and how many claimable ready tasks ``member`` has, and
        when time alone changes that (``Wake.next_at``: a message of its becoming
        visible, a lease it could take over running out)."""
        now = self.clock()
        with self._peek() as db:
            found = db.execute(
                "SELECT (SELECT count(*) FROM members WHERE team_id = tm.id AND name = ?), "
                "(SELECT count(*) FROM messages WHERE team_id = tm.id AND recipient = ? "
                "  AND acked_at IS NULL AND visible_at <= ?), "
                "(SELECT count(*) FROM tasks t WHERE t.team_id = tm.id AND t.status = 'pending' "
                f"  AND t.admitted = 1 AND (t.assignee IS NULL OR t.assignee = ?) AND {_READY}), "
                "(SELECT count(*) FROM tasks WHERE team_id = tm.id AND status = 'in_progress' "
                "  AND lease_expires_at < ? AND (assignee IS NULL OR assignee = ?)), "
                "(SELECT min(visible_at) FROM messages WHERE team_id = tm.id AND recipient = ? "
                "  AND acked_at IS NULL AND visible_at > ?), "
                "(SELECT min(lease_expires_at) FROM tasks WHERE team_id = tm.id "
                "  AND status = 'in_progress' AND lease_expires_at >= ? "
                "  AND (assignee IS NULL OR assignee = ?)) "
                "FROM teams tm WHERE tm.name = ?",
                (member, member, now, member, now, member, member, now, now, member, team),
            ).fetchone()
        if found is None or not found[0]:
            with self._read() as db:  # for the error that says what is missing
                self._member_row(db, self._team_id(db, team), team, member)
            if found is None:
                return Wake(WakeReason.NONE, 0, 0)  # the team was made meanwhile: nothing in it yet
        _, mail, ready, expiring, visible, lapse = found
        reason = (
            WakeReason.MAIL if mail else WakeReason.TASK if ready or expiring else WakeReason.NONE
        )
        times = [t for t in (visible, lapse) if t is not None]
        return Wake(reason, mail, ready + expiring, min(times) if times else None)

    @atomic
    def bell(self, team: str, member: str, *, watch: bool = False) -> Bell:
        """A bell (``accord.store.bells``) that rings once a commit concerns ``member``
        of ``team``: mail for it, a task it could claim becoming ready; with ``watch``,
        any commit to the team. It listens from the moment it is returned; ``close`` it
        when done."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            if member != PERSON:
                self._member_row(db, team_id, team, member)
        return self._listen(team_id, member, watch=watch)
