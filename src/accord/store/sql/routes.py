"""Routed messages: exactly one owner per message, under a lease, chosen atomically.

A routed message (a direct send, a broadcast, or a channel post) is kept under its
first row's id; every copy names that id in ``messages.route_id``. Its row in
``message_routes`` names one owner, a fencing token raised at each change of owner, a
lease, the rule (or who) that chose the owner, and the candidates ownership moves on to,
in order, when the lease runs out or the owner lets go. Every change of owner writes a
``message_routed`` event in the same transaction, so the log explains each decision.

The promise is the claim's: a routed message never has two owners. A route is set only
where there is none or its lease has ended, and every write that changes an owner takes
the team's turn, so two deciders never both win.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from accord.errors import InvalidState, Reason, UnknownMessage, UserError
from accord.events import EventKind
from accord.store.sql.seam import Connection, Seam, atomic
from accord.types import MemberRole, Route, RouteChoice, WorkPattern

_ROUTE_COLUMNS = (
    "message_id, owner, token, lease_expires_at, rule, candidates, decided_at, lease_seconds, "
    "answer_id, answered_at, accepted"
)


def _route(team: str, r: Sequence[Any], topics: Sequence[str] = ()) -> Route:
    return Route(
        team=team,
        message_id=r[0],
        owner=r[1],
        token=r[2],
        lease_expires_at=r[3],
        rule=r[4],
        candidates=tuple(json.loads(r[5])),
        decided_at=r[6],
        answer_id=r[8],
        answered_at=r[9],
        accepted=None if r[10] is None else bool(r[10]),
        topics=tuple(topics),
    )


def _check_lease(lease_seconds: float) -> None:
    if not lease_seconds > 0:
        raise UserError("a lease must be longer than 0 seconds")


class RoutesPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    Routed messages: one owner each, under a lease, with the rule that chose it.
    """

    def _root(self, db: Connection, team_id: int, team: str, message_id: int) -> int:
        """The routed message ``message_id`` belongs to (its first row), or itself."""
        row = db.execute(
            "SELECT id, route_id FROM messages WHERE team_id = ? AND id = ?",
            (team_id, message_id),
        ).fetchone()
        if row is None:
            raise UnknownMessage(
                f"team {team!r} has no message #{message_id}",
                message_ids=(message_id,),
                team=team,
            )
        return int(row[1] if row[1] is not None else row[0])

    def _route_row(self, db: Connection, team_id: int, root: int) -> Sequence[Any] | None:
        row: Sequence[Any] | None = db.execute(
            f"SELECT {_ROUTE_COLUMNS} FROM message_routes WHERE team_id = ? AND message_id = ?",
            (team_id, root),
        ).fetchone()
        return row

    def _set_owner(
        self,
        db: Connection,
        team_id: int,
        root: int,
        owner: str,
        *,
        rule: str,
        lease_seconds: float,
        candidates: Sequence[str],
        previous: Sequence[Any] | None,
        actor: str | None,
        topics: Sequence[str] = (),
    ) -> tuple[int, float, float]:
        """Write ``owner`` as the route's owner (a new row, or over ``previous``) and its
        event; returns the new token, lease end and decision time."""
        now = self.clock()
        expires = now + lease_seconds
        token = 1 if previous is None else int(previous[2]) + 1
        names = json.dumps(list(candidates))
        if previous is None:
            db.execute(
                "INSERT INTO message_routes (team_id, message_id, owner, token, "
                "lease_expires_at, lease_seconds, rule, candidates, decided_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (team_id, root, owner, token, expires, lease_seconds, rule, names, now),
            )
        else:
            db.execute(
                "UPDATE message_routes SET owner = ?, token = ?, lease_expires_at = ?, "
                "lease_seconds = ?, rule = ?, candidates = ?, decided_at = ? "
                "WHERE team_id = ? AND message_id = ?",
                (owner, token, expires, lease_seconds, rule, names, now, team_id, root),
            )
        payload: dict[str, Any] = {
            "id": root,
            "owner": owner,
            "token": token,
            "rule": rule,
            "lease_expires_at": expires,
        }
        if previous is not None:
            payload["previous"] = previous[1]
        if topics:
            payload["topics"] = list(topics)
        self._event(db, team_id, EventKind.MESSAGE_ROUTED, payload, actor)
        return token, expires, now

    def _route_new(
        self,
        db: Connection,
        team_id: int,
        team: str,
        ids: Sequence[int],
        choice: RouteChoice,
        actor: str | None,
    ) -> None:
        """Route the message just written as rows ``ids`` (first row first)."""
        _check_lease(choice.lease_seconds)
        self._member_row(db, team_id, team, choice.owner, lock=self._KEY_SHARE)
        # One primary-key update per copy: a list parameter (id = ANY) was planned, once
        # prepared, as a walk over the team's messages, which grew with the mailbox.
        db.executemany(
            "UPDATE messages SET route_id = ? WHERE team_id = ? AND id = ?",
            [(ids[0], team_id, i) for i in ids],
        )
        self._write_topics(db, team_id, "route", ids[0], choice.topics)
        self._set_owner(
            db,
            team_id,
            ids[0],
            choice.owner,
            rule=choice.rule,
            lease_seconds=choice.lease_seconds,
            candidates=choice.candidates,
            previous=None,
            actor=actor,
            topics=choice.topics,
        )

    @atomic
    def route_message(
        self,
        team: str,
        message_id: int,
        owner: str,
        *,
        rule: str,
        lease_seconds: float,
        candidates: Sequence[str] = (),
        actor: str | None = None,
    ) -> Route | None:
        """Make ``owner`` the one owner of the message (any of its copies), if it has
        none or its owner's lease has run out (and it was not answered); None, and
        nothing written, otherwise."""
        _check_lease(lease_seconds)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._member_row(db, team_id, team, owner, lock=self._KEY_SHARE)
            root = self._root(db, team_id, team, message_id)
            previous = self._route_row(db, team_id, root)
            if previous is not None and (previous[3] >= self.clock() or previous[8] is not None):
                return None  # owned under a running lease, or answered already
            if previous is None:
                # Its copies: the rows written with it (same sender, time and body).
                db.execute(
                    "UPDATE messages SET route_id = ? WHERE team_id = ? AND id >= ? "
                    "AND route_id IS NULL AND (id = ? OR EXISTS (SELECT 1 FROM messages f "
                    "WHERE f.team_id = messages.team_id AND f.id = ? AND f.sender = "
                    "messages.sender AND f.sent_at = messages.sent_at AND f.body = messages.body))",
                    (root, team_id, root, root, root),
                )
            self._set_owner(
                db,
                team_id,
                root,
                owner,
                rule=rule,
                lease_seconds=lease_seconds,
                candidates=candidates,
                previous=previous,
                actor=actor,
            )
            return _route(team, self._route_row(db, team_id, root) or ())

    @atomic
    def take_ownership(
        self, team: str, message_id: int, owner: str, *, by: str, lease_seconds: float
    ) -> Route:
        """The lead (``by``, the team's lead or the person) makes ``owner`` the owner of a
        routed message, whoever holds it and however long its lease still runs."""
        _check_lease(lease_seconds)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            if by != "person":
                if self._member_row(db, team_id, team, by).role is not MemberRole.LEAD:
                    raise InvalidState(
                        f"{by} is not the lead of team {team!r}; only the lead (or the "
                        "person) takes or assigns a routed message",
                        team=team,
                        member=by,
                        reason=Reason.NOT_THE_LEAD,
                    )
            self._member_row(db, team_id, team, owner, lock=self._KEY_SHARE)
            root = self._root(db, team_id, team, message_id)
            previous = self._route_row(db, team_id, root)
            if previous is None:
                raise InvalidState(
                    f"message #{message_id} is not routed; send it with --route to give it "
                    "an owner",
                    team=team,
                    reason=Reason.NOT_ROUTED,
                )
            if previous[8] is not None:
                raise InvalidState(
                    f"message #{message_id} was answered already by {previous[1]} "
                    f"(message #{previous[8]}); ask again in a new message",
                    team=team,
                    reason=Reason.NOT_ROUTED,
                )
            rule = f"taken by {by}" if owner == by else f"assigned by {by}"
            self._set_owner(
                db,
                team_id,
                root,
                owner,
                rule=rule,
                lease_seconds=lease_seconds,
                candidates=json.loads(previous[5]),
                previous=previous,
                actor=by,
            )
            return _route(team, self._route_row(db, team_id, root) or ())

    def _owned(
        self, db: Connection, team_id: int, team: str, message_id: int, member: str, token: int
    ) -> tuple[int, Sequence[Any]]:
        root = self._root(db, team_id, team, message_id)
        row = self._route_row(db, team_id, root)
        if row is None:
            raise InvalidState(
                f"message #{message_id} is not routed", team=team, reason=Reason.NOT_ROUTED
            )
        if row[8] is not None:
            raise InvalidState(
                f"message #{message_id} was answered by {row[1]} (message #{row[8]}); "
                "its ownership has ended",
                team=team,
                member=member,
                reason=Reason.NOT_THE_OWNER,
            )
        if row[1] != member or row[2] != token or row[3] < self.clock():
            raise InvalidState(
                f"{member} does not own message #{message_id} under token {token} "
                f"(it is owned by {row[1]}, token {row[2]}); read it again before acting",
                team=team,
                member=member,
                reason=Reason.NOT_THE_OWNER,
            )
        return root, row

    @atomic
    def renew_route(
        self, team: str, message_id: int, member: str, token: int, *, lease_seconds: float
    ) -> Route:
        """Extend the owner's lease; InvalidState (NOT_THE_OWNER) unless ``member`` holds
        the route under ``token`` and its lease has not run out."""
        _check_lease(lease_seconds)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            root, _ = self._owned(db, team_id, team, message_id, member, token)
            db.execute(
                "UPDATE message_routes SET lease_expires_at = ?, lease_seconds = ? "
                "WHERE team_id = ? AND message_id = ?",
                (self.clock() + lease_seconds, lease_seconds, team_id, root),
            )
            return _route(team, self._route_row(db, team_id, root) or ())

    def _next(self, db: Connection, team_id: int, row: Sequence[Any]) -> str:
        """The candidate after the owner (in order, round), skipping removed members;
        the owner itself when there is no other."""
        names = [r[0] for r in db.execute("SELECT name FROM members WHERE team_id = ?", (team_id,))]
        candidates: list[str] = [c for c in json.loads(row[5]) if c in names]
        owner = str(row[1])
        if owner in candidates:
            i = candidates.index(owner)
            candidates = candidates[i + 1 :] + candidates[:i]
        return candidates[0] if candidates else owner

    @atomic
    def release_route(self, team: str, message_id: int, member: str, token: int) -> Route:
        """The owner lets go: ownership moves at once to the next candidate."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            root, row = self._owned(db, team_id, team, message_id, member, token)
            nxt = self._next(db, team_id, row)
            if nxt == member:
                raise InvalidState(
                    f"{member} is the only candidate for message #{message_id}; "
                    "there is nobody to hand it to",
                    team=team,
                    member=member,
                    reason=Reason.NOT_ROUTED,
                )
            self._set_owner(
                db,
                team_id,
                root,
                nxt,
                rule=f"released by {member}",
                lease_seconds=row[7],
                candidates=json.loads(row[5]),
                previous=row,
                actor=member,
            )
            return _route(team, self._route_row(db, team_id, root) or ())

    def _beat_routes(self, db: Connection, team_id: int, member: str) -> None:
        now = self.clock()
        db.execute(
            "UPDATE message_routes SET lease_expires_at = ? + lease_seconds "
            "WHERE team_id = ? AND owner = ? AND lease_expires_at >= ? AND answer_id IS NULL",
            (now, team_id, member, now),
        )
        self._expire_routes(db, team_id)

    def _expire_routes(self, db: Connection, team_id: int) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = db.execute(
            f"SELECT {_ROUTE_COLUMNS} FROM message_routes WHERE team_id = ? "
            "AND lease_expires_at < ? AND answer_id IS NULL ORDER BY message_id",
            (team_id, self.clock()),
        ).fetchall()
        for row in rows:
            self._set_owner(
                db,
                team_id,
                row[0],
                self._next(db, team_id, row),
                rule=f"lease of {row[1]} ran out",
                lease_seconds=row[7],
                candidates=json.loads(row[5]),
                previous=row,
                actor=None,
            )
        return rows

    @atomic
    def expire_routes(self, team: str) -> list[Route]:
        """Move each route whose lease has run out to its next candidate (or give its
        owner a new lease and token when there is no other); the routes that moved.
        Every member's heartbeat does this too, and renews its own routes' leases."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            rows = self._expire_routes(db, team_id)
            return [_route(team, self._route_row(db, team_id, r[0]) or ()) for r in rows]

    @atomic
    def get_route(self, team: str, message_id: int) -> Route | None:
        """The route of the message ``message_id`` (or of the one it is a copy of)."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            root = self._root(db, team_id, team, message_id)
            row = self._route_row(db, team_id, root)
            if row is None:
                return None
            return _route(team, row, self._topics(db, team_id, "route", root).get(root, ()))

    @atomic
    def list_routes(
        self, team: str, *, owner: str | None = None, unanswered: bool = False
    ) -> list[Route]:
        """The team's routes (only ``owner``'s, if given; only those not yet answered,
        with ``unanswered``), by message id."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            where, args = ("AND owner = ?", (owner,)) if owner is not None else ("", ())
            where += " AND answer_id IS NULL" if unanswered else ""
            rows = db.execute(
                f"SELECT {_ROUTE_COLUMNS} FROM message_routes WHERE team_id = ? {where} "
                "ORDER BY message_id",
                (team_id, *args),
            ).fetchall()
            topics = self._topics(db, team_id, "route")
            return [_route(team, r, topics.get(r[0], ())) for r in rows]

    @atomic
    def member_load(self, team: str) -> dict[str, int]:
        """How busy each member is: tasks it holds in progress plus routed messages it
        owns and has not answered (members with neither left out), in one snapshot."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                "SELECT owner, COUNT(*) FROM message_routes WHERE team_id = ? "
                "AND answer_id IS NULL GROUP BY owner "
                "UNION ALL SELECT owner, COUNT(*) FROM tasks WHERE team_id = ? "
                "AND status = 'in_progress' AND owner IS NOT NULL GROUP BY owner",
                (team_id, team_id),
            ).fetchall()
        load: dict[str, int] = {}
        for owner, count in rows:
            load[owner] = load.get(owner, 0) + int(count)
        return load

    # answers, and the team's working patterns ------------------------------------------

    def _write_topics(
        self, db: Connection, team_id: int, subject: str, subject_id: int, topics: Sequence[str]
    ) -> None:
        for topic in dict.fromkeys(topics):
            db.execute(
                "INSERT INTO work_topics (team_id, subject, subject_id, topic) VALUES (?, ?, ?, ?)",
                (team_id, subject, subject_id, topic),
            )

    def _topics(
        self, db: Connection, team_id: int, subject: str, subject_id: int | None = None
    ) -> dict[int, tuple[str, ...]]:
        """Topics by subject id: of one subject (through the primary key) or of all."""
        found: dict[int, list[str]] = {}
        where, args = (" AND subject_id = ?", (subject_id,)) if subject_id is not None else ("", ())
        for ident, topic in db.execute(
            "SELECT subject_id, topic FROM work_topics WHERE team_id = ? AND subject = ?"
            f"{where} ORDER BY subject_id, topic",
            (team_id, subject, *args),
        ):
            found.setdefault(int(ident), []).append(topic)
        return {k: tuple(v) for k, v in found.items()}

    def _answered(
        self,
        db: Connection,
        team_id: int,
        team: str,
        sender: str,
        reply_to: int | None,
        answer: int,
    ) -> None:
        if reply_to is None:
            return
        row = db.execute(
            "SELECT r.message_id, r.owner, r.answer_id, m.sender FROM messages m "
            "JOIN message_routes r ON r.team_id = m.team_id "
            "AND r.message_id = COALESCE(m.route_id, m.id) WHERE m.team_id = ? AND m.id = ?",
            (team_id, reply_to),
        ).fetchone()
        if row is None:
            return  # not routed: anyone may answer
        root, owner, answered, asked_by = int(row[0]), row[1], row[2], row[3]
        if sender == owner:
            if answered is None:
                now = self.clock()
                db.execute(
                    "UPDATE message_routes SET answer_id = ?, answered_at = ? "
                    "WHERE team_id = ? AND message_id = ?",
                    (answer, now, team_id, root),
                )
                self._event(
                    db,
                    team_id,
                    EventKind.MESSAGE_ANSWERED,
                    {"id": root, "member": sender, "answer": answer},
                    sender,
                )
            return
        if sender == asked_by or answered is not None:
            return  # its sender adds to it; after the answer, the thread is open
        raise InvalidState(
            f"message #{reply_to} is owned by {owner}; leave the answer to {owner} "
            "(the lead can give it to you with route_assign)",
            team=team,
            member=sender,
            reason=Reason.OWNED_BY_ANOTHER,
        )

    @atomic
    def judge_answer(self, team: str, message_id: int, by: str, *, accepted: bool) -> Route:
        """The routed message's sender (or the person) accepts its owner's answer, or
        turns it down; judged again, the last judgement stands. InvalidState unless it
        was answered, or when ``by`` did not send it."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            root = self._root(db, team_id, team, message_id)
            row = self._route_row(db, team_id, root)
            if row is None:
                raise InvalidState(
                    f"message #{message_id} is not routed, so it has no answer to judge",
                    team=team,
                    reason=Reason.NOT_ROUTED,
                )
            if row[8] is None:
                raise InvalidState(
                    f"message #{message_id} is not answered yet ({row[1]} owns it); judge "
                    "its answer once it comes",
                    team=team,
                    reason=Reason.NOT_ANSWERED,
                )
            (sent_by,) = db.execute(
                "SELECT sender FROM messages WHERE team_id = ? AND id = ?", (team_id, root)
            ).fetchone()
            if by not in (sent_by, "person"):
                raise InvalidState(
                    f"only {sent_by}, who sent message #{message_id}, judges its answer",
                    team=team,
                    member=by,
                    reason=Reason.NOT_THE_OWNER,
                )
            db.execute(
                "UPDATE message_routes SET accepted = ? WHERE team_id = ? AND message_id = ?",
                (int(accepted), team_id, root),
            )
            self._event(
                db,
                team_id,
                EventKind.ANSWER_JUDGED,
                {"id": root, "by": by, "owner": row[1], "accepted": accepted},
                by,
            )
            row = self._route_row(db, team_id, root) or ()
            return _route(team, row, self._topics(db, team_id, "route", root).get(root, ()))

    @atomic
    def work_patterns(self, team: str, topics: Sequence[str] | None = None) -> list[WorkPattern]:
        """What each member did, per topic and in all (topic ``*``): the routed messages
        it owns, has answered, and had accepted or turned down, and the deliberations
        whose answer it wrote. By member, then topic (``*`` first). ``topics``: only
        these (``*`` among them for the totals), read through their index."""
        answered = "SUM(CASE WHEN r.answer_id IS NOT NULL THEN 1 ELSE 0 END)"
        accepted = "SUM(CASE WHEN r.accepted = 1 THEN 1 ELSE 0 END)"
        rejected = "SUM(CASE WHEN r.accepted = 0 THEN 1 ELSE 0 END)"
        routed = f"COUNT(*), {answered}, {accepted}, {rejected}"
        topic_join = (
            "JOIN work_topics t ON t.team_id = {a}.team_id AND t.subject = '{s}' "
            "AND t.subject_id = {a}.{c}"
        )
        named = [t for t in topics if t != "*"] if topics is not None else None
        totals = topics is None or "*" in topics
        where = ""
        args: tuple[str, ...] = ()
        if named is not None:  # a message's topics are few: a placeholder each
            marks = ", ".join("?" * len(named))
            where, args = (
                (f" AND t.topic IN ({marks})", tuple(named)) if named else (" AND 1 = 0", ())
            )
        done = "d.phase = 'done' AND d.lease_holder IS NOT NULL"
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                f"SELECT r.owner, t.topic, {routed} FROM message_routes r "
                + topic_join.format(a="r", s="route", c="message_id")
                + f" WHERE r.team_id = ?{where} GROUP BY r.owner, t.topic",
                (team_id, *args),
            ).fetchall()
            made = db.execute(
                "SELECT d.lease_holder, t.topic, COUNT(*) FROM deliberations d "
                + topic_join.format(a="d", s="deliberation", c="id")
                + f" WHERE d.team_id = ? AND {done}{where} GROUP BY d.lease_holder, t.topic",
                (team_id, *args),
            ).fetchall()
            if totals:
                rows += db.execute(
                    f"SELECT r.owner, '*', {routed} FROM message_routes r "
                    "WHERE r.team_id = ? GROUP BY r.owner",
                    (team_id,),
                ).fetchall()
                made += db.execute(
                    "SELECT d.lease_holder, '*', COUNT(*) FROM deliberations d "
                    f"WHERE d.team_id = ? AND {done} GROUP BY d.lease_holder",
                    (team_id,),
                ).fetchall()
        found: dict[tuple[str, str], WorkPattern] = {}
        for member, topic, owned, answers, yes, no in rows:
            found[(member, topic)] = WorkPattern(
                member, topic, int(owned), int(answers), int(yes), int(no)
            )
        for member, topic, count in made:
            was = found.get((member, topic), WorkPattern(member, topic))
            found[(member, topic)] = WorkPattern(
                member, topic, was.owned, was.answered, was.accepted, was.rejected, int(count)
            )
        return [found[k] for k in sorted(found, key=lambda k: (k[0], k[1] != "*", k[1]))]
