"""Deliberations: a question put to several members in phases the store enforces.

1. ``positions``: each participant submits its own position (round 0); reading the
   others' is refused until it has. 2. ``exchange``: positions are revealed in the
   deliberation's channel (``#ask-ID``) and each may reply, once per round, for up to
   ``rounds`` rounds, or agree early. 3. ``synthesis``: one member, under a lease (the
   named synthesizer first; anyone asked, or the asker, once the lease ran out), writes
   the answer with agreement and dissent, and the deliberation is ``done``.

A phase ends, in the same transaction as the write that completes it, when every
participant still owing a submission has made it; or, once its deadline passed, at the
next step anyone takes (``settle_deliberation``), the missing ones marked absent. A
position is unique per participant and round, so a retried submission (after a crash)
is the same row, never a second count. Each step writes its event, and each phase's
news is a post in the channel, so it reaches the participants' inboxes as mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from accord.errors import InvalidState, Reason, UnknownDeliberation, UserError
from accord.events import EventKind
from accord.store.limits import MAX_BODY
from accord.store.sql.seam import Connection, Seam, _cap, atomic
from accord.types import (
    Deliberation,
    DeliberationPhase,
    Participant,
    Position,
    check_name,
)

MAX_ROUNDS = 10

_COLUMNS = (
    "id, question, asker, channel, phase, round, rounds, synthesizer, phase_seconds, "
    "deadline, lease_holder, lease_until, lease_token, supersedes, answer, agreement, "
    "dissent, memory_id, created_at, finished_at"
)


class DeliberationsPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    Deliberations: positions, an exchange, and one synthesized answer.
    """

    # reading ----------------------------------------------------------------------

    def _deliberation(
        self, db: Connection, team_id: int, team: str, ident: int, *, lock: str = ""
    ) -> Deliberation:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM deliberations WHERE team_id = ? AND id = ?{lock}",
            (team_id, ident),
        ).fetchone()
        if row is None:
            raise UnknownDeliberation(f"team {team!r} has no deliberation {ident}", team=team)
        people = db.execute(
            "SELECT member, absent, agreed FROM deliberation_participants "
            "WHERE team_id = ? AND deliberation_id = ? ORDER BY member",
            (team_id, ident),
        ).fetchall()
        return _deliberation_of(team, row, people)

    def _positions(self, db: Connection, team_id: int, ident: int) -> list[Position]:
        return [
            Position(r[0], r[1], r[2], r[3])
            for r in db.execute(
                "SELECT member, round, body, submitted_at FROM deliberation_positions "
                "WHERE team_id = ? AND deliberation_id = ? ORDER BY round, member",
                (team_id, ident),
            )
        ]

    @atomic
    def deliberation(self, team: str, ident: int) -> Deliberation:
        """The deliberation ``ident`` as it stands (UnknownDeliberation if none)."""
        with self._read() as db:
            return self._deliberation(db, self._team_id(db, team), team, ident)

    @atomic
    def list_deliberations(self, team: str) -> list[Deliberation]:
        """The team's deliberations, oldest first."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM deliberations WHERE team_id = ? ORDER BY id", (team_id,)
                )
            ]
            return [self._deliberation(db, team_id, team, i) for i in ids]

    @atomic
    def open_deliberations(self, team: str) -> list[tuple[int, float]]:
        """The team's unfinished deliberations, oldest first, each with when it is next
        due to move on by itself (its phase's deadline; in synthesis, its lease's end):
        one small query, for a supervisor that looks often."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            return [
                (int(r[0]), float(r[1]))
                for r in db.execute(
                    "SELECT id, CASE WHEN phase = ? THEN COALESCE(lease_until, deadline) "
                    "ELSE deadline END FROM deliberations WHERE team_id = ? AND phase != ? "
                    "ORDER BY id",
                    (DeliberationPhase.SYNTHESIS.value, team_id, DeliberationPhase.DONE.value),
                )
            ]

    @atomic
    def deliberation_positions(self, team: str, ident: int) -> list[Position]:
        """Every position and reply, by round then member, unguarded: the record (for
        ``accord ask show`` and provenance), not a participant's read."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            self._deliberation(db, team_id, team, ident)
            return self._positions(db, team_id, ident)

    @atomic
    def read_positions(self, team: str, ident: int, reader: str) -> list[Position]:
        """The positions and replies so far, for ``reader``. While positions are being
        written, only a participant that has submitted its own may read them: anyone
        else is refused (InvalidState, POSITION_FIRST), and nothing is written."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            d = self._deliberation(db, team_id, team, ident)
            if d.phase == DeliberationPhase.POSITIONS:
                own = db.execute(
                    "SELECT 1 FROM deliberation_positions WHERE team_id = ? AND "
                    "deliberation_id = ? AND member = ? AND round = 0",
                    (team_id, ident, reader),
                ).fetchone()
                if own is None:
                    raise InvalidState(
                        f"{reader} may not read the positions of deliberation {ident} before "
                        "submitting its own: submit a position first",
                        team=team,
                        member=reader,
                        reason=Reason.POSITION_FIRST,
                    )
            return self._positions(db, team_id, ident)

    # writing ----------------------------------------------------------------------

    @atomic
    def open_deliberation(
        self,
        team: str,
        question: str,
        asker: str,
        members: Sequence[str],
        *,
        rounds: int = 1,
        synthesizer: str | None = None,
        phase_seconds: float = 600.0,
        supersedes: int | None = None,
        tags: Sequence[str] = (),
    ) -> Deliberation:
        """Put ``question`` to ``members`` (members, and the person if named) for ``asker``
        (a member, or the person): its
        channel ``#ask-ID`` is created with the asker and the participants subscribed,
        and they are told there. ``phase_seconds`` is each phase's deadline; ``tags``
        name its topics (the team's working patterns count its synthesis by them)."""
        question = question.strip() if isinstance(question, str) else question
        if not question:
            raise UserError("a deliberation needs a question; give it as the argument")
        _cap(question, MAX_BODY, "the question")
        people = list(dict.fromkeys(members))
        if not people:
            raise UserError("a deliberation needs participants: give --members or --role")
        for m in people:
            check_name(m, "member name")
        if not 0 <= rounds <= MAX_ROUNDS:
            raise UserError(f"rounds must be between 0 and {MAX_ROUNDS}; got {rounds}")
        if not phase_seconds > 0:
            raise UserError(f"a phase's deadline must be positive seconds; got {phase_seconds}")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._mail_address(db, team_id, team, asker, lock=self._KEY_SHARE)
            for m in people:  # a member, or the person (at the terminal: `accord ask position`)
                self._mail_address(db, team_id, team, m, lock=self._KEY_SHARE)
            if synthesizer is not None:
                self._mail_address(db, team_id, team, synthesizer, lock=self._KEY_SHARE)
            ident = db.execute(
                "SELECT COALESCE(MAX(id), 0) + 1 FROM deliberations WHERE team_id = ?",
                (team_id,),
            ).fetchone()[0]
            channel = f"#ask-{ident}"
            if db.execute(
                "SELECT 1 FROM channels WHERE team_id = ? AND name = ?", (team_id, channel)
            ).fetchone():
                raise UserError(f"channel {channel} is taken; rename it, then ask again")
            now = self.clock()
            deadline = now + phase_seconds
            db.execute(
                f"INSERT INTO deliberations (team_id, {_COLUMNS}) VALUES (?, "
                "?, ?, ?, ?, ?, 0, ?, ?, ?, ?, NULL, NULL, 0, ?, NULL, NULL, NULL, NULL, ?, NULL)",
                (
                    team_id,
                    ident,
                    question,
                    asker,
                    channel,
                    DeliberationPhase.POSITIONS.value,
                    rounds,
                    synthesizer,
                    phase_seconds,
                    deadline,
                    supersedes,
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO deliberation_participants (team_id, deliberation_id, member, "
                "absent, agreed) VALUES (?, ?, ?, 0, 0)",
                [(team_id, ident, m) for m in people],
            )
            self._write_topics(db, team_id, "deliberation", ident, tags)
            db.execute(
                "INSERT INTO channels (team_id, name, creator, created_at) VALUES (?, ?, ?, ?)",
                (team_id, channel, asker, now),
            )
            subscribers = list(dict.fromkeys([asker, *people, *filter(None, [synthesizer])]))
            db.executemany(
                "INSERT INTO channel_subscribers (team_id, channel, member, joined_at) "
                "VALUES (?, ?, ?, ?)",
                [(team_id, channel, s, now) for s in subscribers],
            )
            self._event(
                db,
                team_id,
                EventKind.DELIBERATION_OPENED,
                {
                    "id": ident,
                    "question": question,
                    "asker": asker,
                    "members": people,
                    "rounds": rounds,
                    "synthesizer": synthesizer,
                    "channel": channel,
                    "deadline": deadline,
                    "phase_seconds": phase_seconds,
                    "tags": list(dict.fromkeys(tags)),
                },
                asker,
            )
            self._announce(
                db,
                team_id,
                channel,
                asker,
                f"deliberation {ident}: {question}\nParticipants: {', '.join(people)}. "
                f"Write your own position with evidence (position_submit {ident}) before "
                f"reading anyone else's; deadline in {phase_seconds:g} s.",
                f"asked: deliberation {ident}",
            )
            return self._deliberation(db, team_id, team, ident)

    @atomic
    def submit_position(
        self,
        team: str,
        ident: int,
        member: str,
        body: str,
        *,
        phase: DeliberationPhase | None = None,
    ) -> Deliberation:
        """``member``'s position (phase positions) or its reply for the exchange's current
        round; ``phase`` (positions or exchange), when given, is the one it is meant for,
        refused in another. A submission sent again is a no-op whatever the phase now (a
        retry after a crash, which may come after its first sending ended the round; see
        ``_resent``); other text for a round already submitted is refused. Ends the phase
        when it was the last one owed."""
        body = body.strip() if isinstance(body, str) else body
        if not body:
            raise UserError("a position needs text: say what you think and on what evidence")
        _cap(body, MAX_BODY, "the position")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            d = self._settle(db, team_id, team, ident, member)
            who = self._participant(d, member)
            round_ = d.round if d.phase == DeliberationPhase.EXCHANGE else 0
            if self._resent(db, team_id, d, member, body, phase):
                return d
            if d.phase not in (DeliberationPhase.POSITIONS, DeliberationPhase.EXCHANGE):
                raise self._wrong_phase(d, member, "submit a position")
            if phase is not None and d.phase != phase:
                verb = "reply" if d.phase == DeliberationPhase.EXCHANGE else "submit a position"
                raise InvalidState(
                    f"deliberation {ident} is in its {d.phase.value} phase, not "
                    f"{phase.value}; {member} may {verb} now",
                    team=team,
                    member=member,
                    reason=Reason.WRONG_PHASE,
                )
            if db.execute(
                "SELECT 1 FROM deliberation_positions WHERE team_id = ? AND "
                "deliberation_id = ? AND member = ? AND round = ?",
                (team_id, ident, member, round_),
            ).fetchone():
                raise InvalidState(
                    f"{member} already submitted for round {round_} of deliberation {ident}; "
                    "a round takes one submission",
                    team=team,
                    member=member,
                    reason=Reason.WRONG_PHASE,
                )
            if who.absent or who.agreed:
                state = "was marked absent" if who.absent else "agreed already"
                raise InvalidState(
                    f"{member} {state} in deliberation {ident}; it submits no more",
                    team=team,
                    member=member,
                    reason=Reason.WRONG_PHASE,
                )
            db.execute(
                "INSERT INTO deliberation_positions (team_id, deliberation_id, member, round, "
                "body, submitted_at) VALUES (?, ?, ?, ?, ?, ?)",
                (team_id, ident, member, round_, body, self.clock()),
            )
            self._event(
                db,
                team_id,
                EventKind.POSITION_SUBMITTED,
                {"id": ident, "member": member, "round": round_},
                member,
            )
            if round_ > 0:
                self._announce(
                    db, team_id, d.channel, member, body, f"reply, round {round_}", sender=member
                )
            return self._settle(db, team_id, team, ident, member)

    @atomic
    def agree(self, team: str, ident: int, member: str) -> Deliberation:
        """During the exchange, ``member`` agrees and owes no more replies; when every
        participant still present agreed, synthesis starts. Agreeing twice is no change."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            d = self._settle(db, team_id, team, ident, member)
            who = self._participant(d, member)
            if who.agreed:
                return d
            if d.phase != DeliberationPhase.EXCHANGE or who.absent:
                raise self._wrong_phase(d, member, "agree")
            db.execute(
                "UPDATE deliberation_participants SET agreed = 1 WHERE team_id = ? AND "
                "deliberation_id = ? AND member = ?",
                (team_id, ident, member),
            )
            self._event(
                db,
                team_id,
                EventKind.DELIBERATION_AGREED,
                {"id": ident, "member": member, "round": d.round},
                member,
            )
            return self._settle(db, team_id, team, ident, member)

    @atomic
    def settle_deliberation(self, team: str, ident: int, actor: str | None = None) -> Deliberation:
        """Move the deliberation on if its phase is complete or past its deadline (the
        missing marked absent); else no change. Any step does this first."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            return self._settle(db, team_id, team, ident, actor)

    @atomic
    def claim_synthesis(
        self, team: str, ident: int, member: str, *, lease_seconds: float | None = None
    ) -> Deliberation:
        """Take (or renew) the synthesis lease: ``member`` must be a participant, the
        named synthesizer or the asker, and the lease free, its own, or run out (then the
        old holder's synthesis is recorded as lapsed). A new holder gets a new
        ``lease_token``, which ``finish_deliberation`` needs."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            d = self._settle(db, team_id, team, ident, member, taker=member)
            if d.phase != DeliberationPhase.SYNTHESIS:
                raise self._wrong_phase(d, member, "claim the synthesis")
            if not _may_write(d, member):
                raise InvalidState(
                    f"{member} is not in deliberation {ident}; its participants, synthesizer "
                    "or asker write the answer",
                    team=team,
                    member=member,
                    reason=Reason.NOT_PARTICIPANT,
                )
            now = self.clock()
            if (
                d.lease_holder not in (None, member)
                and d.lease_until is not None
                and d.lease_until > now
            ):
                raise InvalidState(
                    f"{d.lease_holder} holds the synthesis of deliberation {ident} for "
                    f"{d.lease_until - now:.0f} s more",
                    team=team,
                    member=member,
                    reason=Reason.WRONG_PHASE,
                    seconds=d.lease_until - now,
                )
            if d.lease_holder not in (None, member):  # its lease ran out: it lapsed
                self._lapse(db, team_id, d, member)
            token = d.lease_token if d.lease_holder == member else d.lease_token + 1
            until = now + (lease_seconds if lease_seconds is not None else d.phase_seconds)
            self._lease(db, team_id, ident, member, token, until)
            return self._deliberation(db, team_id, team, ident)

    @atomic
    def finish_deliberation(
        self,
        team: str,
        ident: int,
        member: str,
        token: int,
        answer: str,
        *,
        agreement: str = "",
        dissent: str = "",
    ) -> Deliberation:
        """The synthesis: ``member``, holding the lease under ``token``, writes the one
        answer with the agreement and dissent it found. Posted in the channel (so the
        asker and every participant get it as mail); the deliberation is done. A retry
        by the same holder after it finished returns it unchanged."""
        answer = answer.strip() if isinstance(answer, str) else answer
        if not answer:
            raise UserError("a synthesis needs an answer; write the one answer")
        for text, what in ((answer, "the answer"), (agreement, "agreement"), (dissent, "dissent")):
            _cap(text, MAX_BODY, what)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            d = self._settle(db, team_id, team, ident, member, taker=member)
            if d.phase == DeliberationPhase.DONE and d.lease_holder == member:
                return d
            if d.phase != DeliberationPhase.SYNTHESIS:
                raise self._wrong_phase(d, member, "write the synthesis")
            if d.lease_holder != member or d.lease_token != token:
                raise InvalidState(
                    f"{member} does not hold the synthesis of deliberation {ident} under "
                    f"token {token} (holder: {d.lease_holder or 'nobody'}); claim it first",
                    team=team,
                    member=member,
                    reason=Reason.WRONG_PHASE,
                )
            now = self.clock()
            db.execute(
                "UPDATE deliberations SET phase = ?, answer = ?, agreement = ?, dissent = ?, "
                "finished_at = ? WHERE team_id = ? AND id = ?",
                (DeliberationPhase.DONE.value, answer, agreement, dissent, now, team_id, ident),
            )
            self._event(
                db,
                team_id,
                EventKind.DELIBERATION_FINISHED,
                {"id": ident, "member": member, "token": token},
                member,
            )
            text = f"answer to deliberation {ident} ({d.question}):\n{answer}"
            text += f"\nAgreement: {agreement}" if agreement else ""
            text += f"\nDissent: {dissent}" if dissent else ""
            self._announce(db, team_id, d.channel, member, text, "answer", sender=member)
            if d.asker != member and not self._subscribed(db, team_id, d.channel, d.asker):
                self._announce(db, team_id, None, member, text, "answer", to=d.asker)
            return self._deliberation(db, team_id, team, ident)

    @atomic
    def set_deliberation_memory(self, team: str, ident: int, memory_id: int) -> Deliberation:
        """Record that the answer of a finished deliberation is memory ``memory_id``; a
        second call keeps the first."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            d = self._deliberation(db, team_id, team, ident)
            if d.phase != DeliberationPhase.DONE:
                raise self._wrong_phase(d, d.asker, "record the answer")
            if d.memory_id is not None:
                return d
            db.execute(
                "UPDATE deliberations SET memory_id = ? WHERE team_id = ? AND id = ?",
                (memory_id, team_id, ident),
            )
            self._event(
                db,
                team_id,
                EventKind.DELIBERATION_RECORDED,
                {"id": ident, "memory_id": memory_id},
                d.lease_holder,
            )
            return self._deliberation(db, team_id, team, ident)

    # the phases -------------------------------------------------------------------

    def _settle(
        self,
        db: Connection,
        team_id: int,
        team: str,
        ident: int,
        actor: str | None,
        *,
        taker: str | None = None,
    ) -> Deliberation:
        """Advance ``ident`` as far as it goes now (in the caller's write). A synthesis
        whose lease ran out unanswered lapses and passes to the next in turn (see
        ``_next_writer``), unless ``taker``, who may write it, is about to take it, or
        each in turn has had it once: then it waits, lapsed, for anyone to claim it."""
        while True:
            d = self._deliberation(db, team_id, team, ident, lock=self._LOCK_ROW)
            if d.phase == DeliberationPhase.SYNTHESIS:
                if (
                    d.lease_until is None
                    or d.lease_until > self.clock()
                    or (taker is not None and _may_write(d, taker))
                    or d.lease_token > len(_turn(d))  # each had its turn: it waits for a claim
                ):
                    return d
                writer = self._next_writer(db, team_id, d)
                self._lapse(db, team_id, d, writer)
                self._lease(
                    db, team_id, ident, writer, d.lease_token + 1, self.clock() + d.phase_seconds
                )
                return self._deliberation(db, team_id, team, ident)
            if d.phase not in (DeliberationPhase.POSITIONS, DeliberationPhase.EXCHANGE):
                return d
            owing = [p.member for p in d.participants if not p.absent and not p.agreed]
            done = {
                r[0]
                for r in db.execute(
                    "SELECT member FROM deliberation_positions WHERE team_id = ? AND "
                    "deliberation_id = ? AND round = ?",
                    (team_id, ident, d.round),
                )
            }
            missing = [m for m in owing if m not in done]
            now = self.clock()
            if missing and now < d.deadline:
                return d
            if missing:
                db.execute(
                    "UPDATE deliberation_participants SET absent = 1 WHERE team_id = ? AND "
                    f"deliberation_id = ? AND member IN ({', '.join('?' * len(missing))})",
                    (team_id, ident, *missing),
                )
                self._event(
                    db,
                    team_id,
                    EventKind.DELIBERATION_ABSENT,
                    {"id": ident, "members": missing, "phase": d.phase.value, "round": d.round},
                    actor,
                )
            present = [m for m in owing if m not in missing]
            if d.round < d.rounds and len(present) >= 2:
                self._next_phase(db, team_id, d, DeliberationPhase.EXCHANGE, d.round + 1, actor)
            else:
                self._next_phase(db, team_id, d, DeliberationPhase.SYNTHESIS, d.round, actor)

    def _next_phase(
        self,
        db: Connection,
        team_id: int,
        d: Deliberation,
        phase: DeliberationPhase,
        round_: int,
        actor: str | None,
    ) -> None:
        now = self.clock()
        deadline = now + d.phase_seconds
        db.execute(
            "UPDATE deliberations SET phase = ?, round = ?, deadline = ? "
            "WHERE team_id = ? AND id = ?",
            (phase.value, round_, deadline, team_id, d.id),
        )
        payload: dict[str, Any] = {
            "id": d.id,
            "phase": phase.value,
            "round": round_,
            "deadline": deadline,
        }
        if phase == DeliberationPhase.EXCHANGE:
            if round_ == 1:
                shown = "\n\n".join(
                    f"{p.member}: {p.body}" for p in self._positions(db, team_id, d.id)
                )
                text = f"positions of deliberation {d.id}, revealed:\n\n{shown}\n\n"
            else:
                text = ""
            text += (
                f"exchange round {round_} of {d.rounds}: reply (exchange_reply {d.id}) or "
                f"agree (agree {d.id}); deadline in {d.phase_seconds:g} s."
            )
        else:
            present = [
                r[0]
                for r in db.execute(
                    "SELECT member FROM deliberation_participants WHERE team_id = ? AND "
                    "deliberation_id = ? AND absent = 0 ORDER BY member",
                    (team_id, d.id),
                )
            ]
            writer = d.synthesizer or (present[0] if present else d.asker)
            payload["synthesizer"] = writer
            text = (
                f"synthesis of deliberation {d.id}: {writer} writes the one answer, with "
                f"agreement and dissent (synthesis_submit {d.id})."
            )
        self._event(db, team_id, EventKind.DELIBERATION_PHASE, payload, actor)
        if phase == DeliberationPhase.SYNTHESIS:
            self._lease(db, team_id, d.id, payload["synthesizer"], d.lease_token + 1, deadline)
        self._announce(db, team_id, d.channel, d.asker, text, f"deliberation {d.id}: {phase}")

    def _resent(
        self,
        db: Connection,
        team_id: int,
        d: Deliberation,
        member: str,
        body: str,
        phase: DeliberationPhase | None,
    ) -> bool:
        """Is ``body`` a submission ``member`` made already, sent again (a retry after a
        crash, perhaps after its first sending ended the round)? The same text as its
        submission for the current round; as its position, unless it says it replies;
        as its submission for the round before, if that one ended the round (else it is
        a reply of the same words in a new round) or if no round is left."""
        rows = db.execute(
            "SELECT round, body, submitted_at FROM deliberation_positions WHERE team_id = ? "
            "AND deliberation_id = ? AND member = ?",
            (team_id, d.id, member),
        ).fetchall()
        mine = {int(r[0]): (r[1], float(r[2])) for r in rows}
        open_ = d.phase in (DeliberationPhase.POSITIONS, DeliberationPhase.EXCHANGE)
        now = (d.round if d.phase == DeliberationPhase.EXCHANGE else 0) if open_ else None
        if now is not None and mine.get(now, ("",))[0] == body:
            return True
        if phase != DeliberationPhase.EXCHANGE and mine.get(0, ("",))[0] == body:
            return True
        before = now - 1 if now is not None else d.round
        if before < 0 or mine.get(before, ("",))[0] != body:
            return False
        if not open_:
            return True
        last = db.execute(
            "SELECT MAX(submitted_at) FROM deliberation_positions WHERE team_id = ? AND "
            "deliberation_id = ? AND round = ?",
            (team_id, d.id, before),
        ).fetchone()[0]
        return bool(mine[before][1] >= float(last))

    def _next_writer(self, db: Connection, team_id: int, d: Deliberation) -> str:
        """Who writes a lapsed synthesis: the participant still present after the
        holder, in name order, then the asker, round again."""
        turn = _turn(d)
        if d.lease_holder in turn:
            return turn[(turn.index(d.lease_holder) + 1) % len(turn)]
        return turn[0]

    def _lapse(self, db: Connection, team_id: int, d: Deliberation, writer: str) -> None:
        """Record that ``d``'s synthesis lease ran out unanswered and ``writer`` takes it
        over, and say so in its channel (and to the writer, should it be the asker)."""
        old = d.lease_holder or "nobody"
        self._event(
            db,
            team_id,
            EventKind.SYNTHESIS_LAPSED,
            {"id": d.id, "member": d.lease_holder, "token": d.lease_token, "next": writer},
            writer,
        )
        text = (
            f"the synthesis of deliberation {d.id} lapsed: {old} wrote no answer within its "
            f"lease. {writer} writes the one answer now, with agreement and dissent "
            f"(synthesis_submit {d.id}; the person: accord ask answer {d.id} TEXT); "
            f"deadline in {d.phase_seconds:g} s."
        )
        if d.lease_token + 1 > len(_turn(d)):
            text += (
                f" Each in turn has had it now: should {writer} not answer either, it waits "
                "for any participant or the asker to take it."
            )
        # From the old holder, so that everyone else hears it, the new writer included.
        sender = old if old not in ("nobody", writer) else d.asker
        self._announce(db, team_id, d.channel, sender, text, f"deliberation {d.id}: lapsed")
        if sender == writer:
            self._announce(db, team_id, None, sender, text, "synthesis lapsed", to=writer)

    def _lease(
        self, db: Connection, team_id: int, ident: int, member: str, token: int, until: float
    ) -> None:
        db.execute(
            "UPDATE deliberations SET lease_holder = ?, lease_token = ?, lease_until = ? "
            "WHERE team_id = ? AND id = ?",
            (member, token, until, team_id, ident),
        )
        self._event(
            db,
            team_id,
            EventKind.SYNTHESIS_CLAIMED,
            {"id": ident, "member": member, "token": token, "lease_until": until},
            member,
        )

    # helpers ----------------------------------------------------------------------

    def _participant(self, d: Deliberation, member: str) -> Participant:
        for p in d.participants:
            if p.member == member:
                return p
        raise InvalidState(
            f"{member} is not a participant of deliberation {d.id} "
            f"(participants: {', '.join(_names(d))})",
            team=d.team,
            member=member,
            reason=Reason.NOT_PARTICIPANT,
        )

    def _wrong_phase(self, d: Deliberation, member: str, what: str) -> InvalidState:
        return InvalidState(
            f"deliberation {d.id} is in its {d.phase.value} phase; {member} cannot {what} now",
            team=d.team,
            member=member,
            reason=Reason.WRONG_PHASE,
        )

    def _subscribed(self, db: Connection, team_id: int, channel: str, member: str) -> bool:
        return bool(
            db.execute(
                "SELECT 1 FROM channel_subscribers WHERE team_id = ? AND channel = ? "
                "AND member = ?",
                (team_id, channel, member),
            ).fetchone()
        )

    def _announce(
        self,
        db: Connection,
        team_id: int,
        channel: str | None,
        actor: str,
        body: str,
        summary: str,
        *,
        sender: str | None = None,
        to: str | None = None,
    ) -> None:
        """Post ``body`` in ``channel`` (its history row and one copy per other
        subscriber), or, with ``to``, mail it to that one address: in this transaction,
        so a phase's news is never lost to a crash after it."""
        sender = sender or actor
        if channel is None:
            recipients = [to] if to else []
        else:
            recipients = [
                channel,
                *(
                    r[0]
                    for r in db.execute(
                        "SELECT member FROM channel_subscribers WHERE team_id = ? AND "
                        "channel = ? AND member != ? ORDER BY member",
                        (team_id, channel, sender),
                    )
                ),
            ]
        self._write_post(
            db, team_id, sender, recipients, body[:MAX_BODY], summary, channel, self.clock()
        )


def _names(d: Deliberation) -> list[str]:
    return [p.member for p in d.participants]


def _turn(d: Deliberation) -> list[str]:
    """Who writes a lapsed synthesis, in turn: the participants still present, then the
    asker."""
    turn = [p.member for p in d.participants if not p.absent]
    return turn + ([d.asker] if d.asker not in turn else [])


def _may_write(d: Deliberation, member: str) -> bool:
    """May ``member`` write ``d``'s synthesis (its participants, synthesizer, asker)?"""
    return member in (d.asker, d.synthesizer) or member in _names(d)


def _deliberation_of(team: str, r: Sequence[Any], people: Sequence[Sequence[Any]]) -> Deliberation:
    return Deliberation(
        team=team,
        id=r[0],
        question=r[1],
        asker=r[2],
        channel=r[3],
        phase=DeliberationPhase(r[4]),
        round=r[5],
        rounds=r[6],
        synthesizer=r[7],
        phase_seconds=r[8],
        deadline=r[9],
        lease_holder=r[10],
        lease_until=r[11],
        lease_token=r[12],
        supersedes=r[13],
        answer=r[14],
        agreement=r[15],
        dissent=r[16],
        memory_id=r[17],
        created_at=r[18],
        finished_at=r[19],
        participants=tuple(Participant(p[0], bool(p[1]), bool(p[2])) for p in people),
    )
