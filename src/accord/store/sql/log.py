"""The team's log: events, transcripts and model usage."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, Literal

from accord.errors import UserError
from accord.events import EventKind
from accord.store.limits import MAX_LIVE, MAX_PAYLOAD
from accord.store.sql.seam import Connection, Seam, _cap, atomic
from accord.types import (
    Event,
    LiveOutput,
    TranscriptEntry,
    TranscriptKind,
    UsageRecord,
    UsageTotal,
)


class LogPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    The team's log: events, transcripts and model usage; and, beside it, what each
    member's model is writing right now (``live_output``, scratch that is no history).
    """

    # events ----------------------------------------------------------------

    @atomic
    def append_event(
        self, team: str, kind: EventKind | str, payload: dict[str, Any], actor: str | None = None
    ) -> Event:
        """Log something that is not a state change of its own (a hook run, a note).

        accord names an ``EventKind`` (the ``Log`` service takes nothing else); the store
        logs whatever kind it is given, as a log may hold kinds of other versions."""
        if len(json.dumps(payload)) > MAX_PAYLOAD:
            raise UserError(f"an event payload is limited to {MAX_PAYLOAD} bytes")
        with self._write() as db:
            event = self._event(db, self._team_id(db, team), kind, payload, actor, wanted=True)
        assert event is not None
        return event

    @atomic
    def read_events(self, team: str, *, since: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > since``, in order."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                "SELECT seq, at, actor, kind, payload FROM events WHERE team_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (team_id, since, self._NO_LIMIT if limit is None else limit),
            ).fetchall()
        return [Event(team, r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    # transcripts and usage -------------------------------------------------

    @atomic
    def append_transcript(
        self,
        team: str,
        entries: Sequence[TranscriptEntry],
        *,
        ack: Sequence[int] = (),
        usage: UsageRecord | None = None,
    ) -> list[TranscriptEntry]:
        """Append entries to their members' transcripts, in order, and acknowledge the
        messages ``ack`` (addressed to the entries' member) in the same transaction,
        so a message is in the transcript exactly when it is acknowledged. ``usage``,
        when given, is recorded in that transaction too (one commit per model turn)."""
        members = {e.member for e in entries}
        if len(members) > 1:
            raise UserError("one append_transcript call writes one member's transcript")
        with self._write() as db:
            team_id = self._team_id(db, team)
            member = next(iter(members)) if members else None
            if member is None and ack:
                raise UserError("acknowledging messages needs the transcript entries holding them")
            if member is None:
                return []
            # The member's turn at its transcript (and mailbox): its entries are numbered
            # one after another.
            self._member_row(db, team_id, team, member, lock=self._LOCK_ROW)
            last = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM transcripts WHERE team_id = ? AND member = ?",
                (team_id, member),
            ).fetchone()[0]
            now = self.clock()
            saved: list[TranscriptEntry] = []
            for e in entries:
                last += 1
                db.execute(
                    "INSERT INTO transcripts (team_id, member, seq, session, kind, task_id, at, "
                    "body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        team_id,
                        member,
                        last,
                        e.session,
                        e.kind.value,
                        e.task_id,
                        now,
                        json.dumps({"v": 1, **e.body}, separators=(",", ":")),
                    ),
                )
                saved.append(
                    TranscriptEntry(member, e.session, e.kind, e.body, e.task_id, last, now)
                )
            if ack:
                self._ack(db, team_id, member, ack)
            if usage is not None:
                self._usage(db, team_id, usage)
        return saved

    @atomic
    def read_transcript(
        self,
        team: str,
        member: str,
        *,
        session: int | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> list[TranscriptEntry]:
        """A member's saved history (one session, or all), oldest first."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            where = "team_id = ? AND member = ? AND seq > ?"
            args: list[Any] = [team_id, member, since]
            if session is not None:
                where += " AND session = ?"
                args.append(session)
            rows = db.execute(
                f"SELECT seq, session, kind, task_id, at, body FROM transcripts WHERE {where} "
                "ORDER BY seq LIMIT ?",
                (*args, self._NO_LIMIT if limit is None else limit),
            ).fetchall()
        out = []
        for seq, sess, kind, task_id, at, body in rows:
            data = json.loads(body)
            data.pop("v", None)
            out.append(TranscriptEntry(member, sess, TranscriptKind(kind), data, task_id, seq, at))
        return out

    @atomic
    def last_session(self, team: str, member: str) -> int:
        """The member's newest session number, 0 when it has none."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            value: int = db.execute(
                "SELECT COALESCE(MAX(session), 0) FROM transcripts "
                "WHERE team_id = ? AND member = ?",
                (team_id, member),
            ).fetchone()[0]
        return value

    @atomic
    def record_usage(self, team: str, record: UsageRecord) -> UsageRecord:
        """Store one model call's usage (and its event); returns it with id and time."""
        with self._write() as db:
            return self._usage(db, self._team_id(db, team), record)

    def _usage(self, db: Connection, team_id: int, r: UsageRecord) -> UsageRecord:
        now = self.clock()
        usage_id = db.execute(
            "INSERT INTO usage (team_id, member, task_id, model, input_tokens, output_tokens, "
            "cache_read_tokens, cache_write_tokens, cost_usd, latency_seconds, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                team_id,
                r.member,
                r.task_id,
                r.model,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.cost_usd,
                r.latency_seconds,
                now,
            ),
        ).fetchone()[0]
        self._event(
            db,
            team_id,
            EventKind.MODEL_CALL,
            {
                "member": r.member,
                "task_id": r.task_id,
                "model": r.model,
                "tokens": r.tokens,
                "cost_usd": r.cost_usd,
            },
            r.member,
        )
        if r.suspect is not None:
            self._event(
                db,
                team_id,
                EventKind.USAGE_SUSPECT,
                {
                    "member": r.member,
                    "model": r.model,
                    "why": r.suspect,
                    "recorded": {
                        "input_tokens": r.input_tokens,
                        "output_tokens": r.output_tokens,
                        "cache_read_tokens": r.cache_read_tokens,
                        "cache_write_tokens": r.cache_write_tokens,
                    },
                },
                r.member,
            )
        return dataclasses.replace(r, at=now, id=usage_id)

    @atomic
    def usage_totals(
        self,
        team: str,
        *,
        by: Literal["member", "task", "model"] | None = None,
        member: str | None = None,
    ) -> list[UsageTotal]:
        """Spend grouped ``by`` (or one total with key None), optionally for one member."""
        column = {"member": "member", "task": "task_id", "model": "model", None: "NULL"}[by]
        with self._read() as db:
            team_id = self._team_id(db, team)
            where = "team_id = ?"
            args: list[Any] = [team_id]
            if member is not None:
                where += " AND member = ?"
                args.append(member)
            rows = db.execute(
                f"SELECT {column}, count(*), COALESCE(SUM(input_tokens), 0), "
                "COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cache_read_tokens), 0), "
                "COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM(cost_usd), 0), "
                "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END) "
                f"FROM usage WHERE {where} GROUP BY 1 ORDER BY 1",
                args,
            ).fetchall()
        # int() and float(): PostgreSQL sums integers as numeric.
        totals = [
            UsageTotal(
                None if k is None else str(k),
                n,
                int(i),
                int(o),
                int(cr),
                int(cw),
                float(c),
                int(u or 0),
            )
            for k, n, i, o, cr, cw, c, u in rows
        ]
        if by is None and not totals:
            totals = [UsageTotal(None, 0, 0, 0, 0, 0, 0.0, 0)]
        return totals

    # live output: scratch beside the log ---------------------------------------

    @atomic
    def set_live(
        self, team: str, member: str, session: int, text: str, tools: Sequence[str] = ()
    ) -> None:
        """Replace what ``member``'s model is writing right now: the text so far of the call
        in progress and the names of the tool calls it has begun (see ``LiveOutput``).

        Scratch, not history: no event is logged (promise 5 is about changes of state, and
        this changes none), and the write moves no change marker and wakes no waiting
        member (``_live`` keeps it apart), so a member streaming several times a second
        costs its waiting teammates nothing. Text over ``MAX_LIVE`` bytes is refused."""
        _cap(text, MAX_LIVE, "a member's live output")
        names = [str(t) for t in tools]
        with self._peek() as db:
            self._member_row(db, self._team_id(db, team), team, member)
        with self._live() as db:
            db.execute(
                "INSERT INTO live_output (team, member, session, text, tools, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (team, member) DO UPDATE SET "
                "session = excluded.session, text = excluded.text, tools = excluded.tools, "
                "updated_at = excluded.updated_at",
                (team, member, session, text, json.dumps(names), self.clock()),
            )

    @atomic
    def clear_live(self, team: str, member: str) -> None:
        """Forget ``member``'s live output (its reply was saved, or its call failed);
        harmless when there is none. Like ``set_live``, it logs and wakes nothing."""
        with self._live() as db:
            db.execute("DELETE FROM live_output WHERE team = ? AND member = ?", (team, member))

    @atomic
    def read_live(self, team: str, member: str | None = None) -> list[LiveOutput]:
        """The live output of the team's members (or of ``member``) whose model call is
        in progress, by member name; a member with none has no row."""
        with self._peek() as db:
            self._team_id(db, team)
        where, args = "team = ?", [team]
        if member is not None:
            where += " AND member = ?"
            args.append(member)
        with self._live(read=True) as db:
            rows = db.execute(
                "SELECT member, session, text, tools, updated_at FROM live_output "
                f"WHERE {where} ORDER BY member",
                args,
            ).fetchall()
        return [LiveOutput(m, s, t, tuple(json.loads(names)), at) for m, s, t, names, at in rows]
