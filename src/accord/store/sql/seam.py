"""The seam every part of ``SQLStore`` stands on.

What a backend supplies (transactions, retries, lock spellings, memory search), and the
plumbing every part shares: team ids, the log, member rows, caps on input, ``atomic``.
See the package docstring for how the parts compose.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Concatenate, ParamSpec, Protocol, Self, TypeVar

from accord.errors import UnknownMember, UnknownMessage, UnknownTeam, UserError
from accord.events import EventKind
from accord.store.bells import Bell, targets
from accord.store.limits import Clock
from accord.text import terms as text_terms
from accord.types import (
    PERSON,
    Event,
    Member,
    MemberRole,
    MemberStatus,
    MessageKind,
    RouteChoice,
)

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Seam")


class Cursor(Protocol):
    """The rows a statement returned (``sqlite3.Cursor``, ``psycopg.Cursor``)."""

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection inside one transaction, running this module's SQL."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> object: ...


@dataclass(frozen=True, slots=True)
class MemorySearch:
    """A ranked memory search, as a backend runs it.

    The best ``limit`` memories ``m`` matching ``where`` (with ``args``) that hold any
    of ``required`` (any of ``scored`` when it is empty), each with its BM25 relevance
    over every ``scored`` term: higher is better, a term in the text weighs 1.0 and
    in the tags 0.5. Terms are split by ``accord.text`` (see ``_terms``).
    """

    scored: Sequence[str]
    required: Sequence[str]
    where: str
    args: Sequence[Any]
    limit: int


class StaleTeamId(Exception):
    """A cached team id turned out to name no team, or another one (the team was deleted,
    and perhaps created again): the operation rolls back and runs again with the id read
    afresh. Never seen above the store."""


class Conflict(Exception):
    """A backend's transaction lost a race that running it again resolves (a deadlock,
    a unique key another writer took first). Never seen above the store."""


def atomic(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Mark a store operation as one unit the backend may run again whole (``_attempt``)."""

    @functools.wraps(method)
    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        for value in (*args, *kwargs.values()):
            _check_number(value)
        return self._attempt(lambda: method(self, *args, **kwargs))

    return run


_INT64 = range(-(2**63), 2**63)


def _check_number(value: object, depth: int = 0) -> None:
    """Refuse, as bad input, a number no column can hold: an integer past 64 bits (SQLite
    cannot bind it, PostgreSQL's bigint cannot store it) or an infinite or NaN float (a
    lease that never ends, an event payload that is not JSON). Looks into lists, tuples
    and the values a caller passes as dataclasses (a new task, a message), whatever the
    front door."""
    if isinstance(value, bool) or isinstance(value, str):
        return
    if isinstance(value, int):
        if value not in _INT64:
            shown = str(value) if abs(value) < 10**30 else f"a number of {len(str(value))} digits"
            raise UserError(f"{shown} is out of range: ids and numbers fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UserError(f"{value} is not a finite number; give a finite one")
    elif depth < 4 and isinstance(value, list | tuple):
        for item in value:
            _check_number(item, depth + 1)
    elif depth < 4 and dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _check_number(getattr(value, f.name), depth + 1)


_MEMBER_COLUMNS = (
    "name, role, agent, model, status, heartbeat_at, pid, host, created_at, token_hash"
)
# A task (aliased t) whose blockers have all completed. CROSS JOIN fixes SQLite's join
# order; PostgreSQL's connection reads it as a plain JOIN.
_READY = (
    "NOT EXISTS (SELECT 1 FROM task_deps d CROSS JOIN tasks b "
    "ON b.team_id = d.team_id AND b.id = d.blocker_id "
    "WHERE d.team_id = t.team_id AND d.task_id = t.id AND b.status != 'completed')"
)


def _cap(value: str | None, limit: int, what: str) -> None:
    if value is not None and len(value.encode("utf-8", "surrogatepass")) > limit:
        raise UserError(f"{what} is longer than {limit} bytes; shorten it or put it in a file")


class Seam(ABC):
    """What a backend supplies, and what every part of ``SQLStore`` calls."""

    #: Where the store is, as a person would name it (a path, or a URL without password).
    location: str
    clock: Clock

    # the lifecycle ----------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store object is not used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def change_marker(self) -> int:
        """A cheap number that changes whenever anyone commits to the store: at once on
        SQLite, within a notification's delay (a poll's, at worst) on a server."""

    # the seam -------------------------------------------------------------------

    #: The LIMIT that means "no limit".
    _NO_LIMIT: ClassVar[int | None] = -1
    #: Selected with a team's id, to take that team's turn to write.
    _TAKE_TURN: ClassVar[str] = ""
    #: Appended to a SELECT of rows this write transaction goes on to change.
    _LOCK_ROW: ClassVar[str] = ""
    #: Appended to a SELECT of a row this write transaction goes on to delete.
    _FOR_UPDATE: ClassVar[str] = ""
    #: Appended to a SELECT of a row that must not be deleted before this commits.
    _KEY_SHARE: ClassVar[str] = ""
    #: Appended to the SELECT (of ``tasks t``) with which a claim picks its task.
    _SKIP_LOCKED: ClassVar[str] = ""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Connection]:
        """A read-only transaction: every statement sees the same snapshot."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Connection]:
        """A write transaction, committed when the block ends, rolled back on any error."""

    def _execute_late(self, db: Connection, statement: str, args: Sequence[Any]) -> None:
        """Run a statement nothing in this transaction reads the effect of; a backend may
        send it with the commit."""
        db.execute(statement, args)

    def _ring_later(self, db: Connection, team_id: int, members: frozenset[str]) -> None:  # noqa: B027
        """Ring the bells of ``members`` of the team (``EVERYONE``: all of them; none: its
        watchers only) once this transaction commits; nothing if it rolls back. See
        ``accord.store.bells``."""

    @abstractmethod
    def _listen(self, team_id: int, member: str, *, watch: bool) -> Bell:
        """A bell that rings when a commit concerns ``member`` (with ``watch``: any commit
        to the team), from the moment it is returned."""

    @abstractmethod
    def _live(self, *, read: bool = False) -> AbstractContextManager[Connection]:
        """A transaction on the ``live_output`` table (a read one with ``read``) that
        moves no change marker: its commit notifies nobody and wakes no waiting member.
        It runs apart from any other transaction of the operation."""

    def _peek(self) -> AbstractContextManager[Connection]:
        """A connection for one read-only statement (which needs no transaction of its
        own on a server; on SQLite it is a read transaction like any other)."""
        return self._read()

    def _attempt(self, call: Callable[[], R]) -> R:
        """Run one operation; a backend that raises ``Conflict`` runs it again here."""
        return call()

    def _serialize_memory(self, db: Connection) -> None:  # noqa: B027 (a default: no turns)
        """Make memory writes of every team take turns (project entries are shared)."""

    @abstractmethod
    def _search(self, db: Connection, search: MemorySearch) -> list[tuple[Any, ...]]:
        """Rows of ``_MEMORY_COLUMNS`` plus their relevance, best first (see MemorySearch)."""

    @abstractmethod
    def _indexed(
        self, db: Connection, memory_id: int, text: Sequence[str], tags: Sequence[str]
    ) -> None:
        """Index a memory just inserted: the terms of its text and of its tags, in order,
        and count it in ``memory_count`` and ``memory_vocab``."""

    @abstractmethod
    def _among(self, column: str, ids: Sequence[int]) -> tuple[str, Any]:
        """A condition that ``column`` is one of ``ids``, and its one parameter."""

    def _route_new(
        self,
        db: Connection,
        team_id: int,
        team: str,
        ids: Sequence[int],
        choice: RouteChoice,
        actor: str | None,
    ) -> None:
        """Give the message just written as rows ``ids`` its owner (``RoutesPart``)."""
        raise NotImplementedError

    def _beat_routes(self, db: Connection, team_id: int, member: str) -> None:
        """A member's heartbeat: renew its routes' leases, move on the expired (``RoutesPart``)."""
        raise NotImplementedError

    def _answered(
        self,
        db: Connection,
        team_id: int,
        team: str,
        sender: str,
        reply_to: int | None,
        answer: int,
    ) -> None:
        """``sender`` just wrote message ``answer`` in reply to ``reply_to``: if that is a
        routed message, only its owner (or its own sender) may answer, and the owner's
        reply marks it answered (``RoutesPart``)."""
        raise NotImplementedError

    def _write_topics(
        self, db: Connection, team_id: int, subject: str, subject_id: int, topics: Sequence[str]
    ) -> None:
        """Record what a routed message or a deliberation is about (``RoutesPart``)."""
        raise NotImplementedError

    # plumbing shared by every operation -------------------------------------------

    def _team_id(self, db: Connection, team: str, *, lock: bool = False) -> int:
        """The team's id; ``lock`` (in a write) also takes the team's turn to write."""
        turn = f", {self._TAKE_TURN}" if lock and self._TAKE_TURN else ""
        row = db.execute(f"SELECT id{turn} FROM teams WHERE name = ?", (team,)).fetchone()
        if row is None:
            names = [r[0] for r in db.execute("SELECT name FROM teams ORDER BY name")]
            known = f"teams here: {', '.join(names)}" if names else "this store has no teams yet"
            raise UnknownTeam(f"no team named {team!r} ({known})", team=team)
        team_id: int = row[0]
        return team_id

    def _known_team_id(self, db: Connection, team: str) -> int:
        """The team's id, from this store's cache when it has one. A team's id never
        changes while it exists, but a team deleted and created again gets another (and
        SQLite may hand the old one to another team), so an operation that uses this
        must confirm it in a statement it runs anyway, or with ``_team_gone``, and run
        again on ``StaleTeamId``."""
        cache: dict[str, int] = self.__dict__.setdefault("_team_ids", {})
        known = cache.get(team)
        if known is None:
            known = cache[team] = self._team_id(db, team)
        return known

    def _team_gone(self, db: Connection, team: str, team_id: int) -> bool:
        """Whether a cached ``team_id`` no longer names ``team``; forgets it if so."""
        row = db.execute("SELECT 1 FROM teams WHERE id = ? AND name = ?", (team_id, team))
        if row.fetchone() is not None:
            return False
        self._forget_team(team)
        return True

    def _forget_team(self, team: str) -> None:
        self.__dict__.get("_team_ids", {}).pop(team, None)

    def _event(
        self,
        db: Connection,
        team_id: int,
        kind: EventKind | str,
        payload: dict[str, Any],
        actor: str | None,
        *,
        wanted: bool = False,
    ) -> Event | None:
        """Append the event; it comes back (numbered) only when ``wanted``. The store's
        own writes name an ``EventKind``; only ``append_event`` passes on its caller's."""
        now = self.clock()
        text = json.dumps(payload, separators=(",", ":"))
        logged = self._log(db, team_id, now, actor, kind, text, wanted=wanted)
        self._ring_later(db, team_id, targets(kind, payload))
        return Event(logged[1], logged[0], now, actor, kind, payload) if logged else None

    def _write_post(
        self,
        db: Connection,
        team_id: int,
        sender: str,
        recipients: Sequence[str],
        body: str,
        summary: str | None,
        channel: str | None,
        now: float,
        *,
        reply_to: int | None = None,
        key: str | None = None,
    ) -> list[int]:
        """Write one text message to each of ``recipients``, sent at ``now`` (in a
        channel, its history row first: addressed to the channel, and acknowledged at
        once, since it is nobody's mail) and its ``message_sent`` event; returns the
        rows' ids."""
        ids = [
            db.execute(
                "INSERT INTO messages (team_id, sender, recipient, kind, body, summary, "
                "reply_to, idempotency_key, channel, sent_at, visible_at, acked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    team_id,
                    sender,
                    to,
                    MessageKind.TEXT.value,
                    body,
                    summary,
                    reply_to,
                    key,
                    channel,
                    now,
                    now,
                    now if to == channel else None,
                ),
            ).fetchone()[0]
            for to in recipients
        ]
        payload: dict[str, Any] = {
            "ids": ids,
            "from": sender,
            "to": channel or (recipients[0] if recipients else None),
            "kind": MessageKind.TEXT.value,
            "summary": summary,
            "request_id": None,
        }
        if channel is not None:
            payload["channel"] = channel
        if reply_to is not None:
            payload["reply_to"] = reply_to
        self._event(db, team_id, EventKind.MESSAGE_SENT, payload, sender)
        return ids

    def _log(
        self,
        db: Connection,
        team_id: int,
        at: float,
        actor: str | None,
        kind: str,
        payload: str,
        *,
        wanted: bool,
    ) -> tuple[int, str] | None:
        """Append one row to the team's log under its next ``seq``; returns the seq and
        the team's name. A backend may do it in one statement, or, unless ``wanted``,
        with the commit (taking the counter as late as it can)."""
        seq, team = db.execute(
            "UPDATE teams SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq, name",
            (team_id,),
        ).fetchone()
        db.execute(
            "INSERT INTO events (team_id, seq, at, actor, kind, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (team_id, seq, at, actor, kind, payload),
        )
        return seq, team

    # members: every part that names one checks it -------------------------------

    def _member_row(
        self, db: Connection, team_id: int, team: str, name: str, *, lock: str = ""
    ) -> Member:
        row = db.execute(
            f"SELECT {_MEMBER_COLUMNS} FROM members WHERE team_id = ? AND name = ?{lock}",
            (team_id, name),
        ).fetchone()
        if row is None:
            raise self._unknown_member(db, team_id, team, name)
        return _member(team, row)

    def _mail_address(
        self, db: Connection, team_id: int, team: str, name: str, *, lock: str = ""
    ) -> None:
        """A member, or the person: the one address that has a mailbox and no member row."""
        if name != PERSON:
            self._member_row(db, team_id, team, name, lock=lock)

    def _unknown_member(self, db: Connection, team_id: int, team: str, name: str) -> UnknownMember:
        if name == PERSON:
            return UnknownMember(
                f"{PERSON!r} is the person at the terminal, not a member of team {team!r}: "
                "it sends and reads mail, and never claims tasks or works as a teammate",
                team=team,
                member=name,
            )
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM members WHERE team_id = ? ORDER BY name", (team_id,)
            )
        ]
        known = f"members: {', '.join(names)}" if names else "it has no members yet"
        return UnknownMember(
            f"team {team!r} has no member named {name!r} ({known})", team=team, member=name
        )

    # acknowledging mail: the mailbox does, and so does a transcript append -------

    def _ack(self, db: Connection, team_id: int, member: str, ids: Sequence[int]) -> list[int]:
        wanted = sorted(set(ids))
        found: dict[int, float | None] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for mid, acked in db.execute(
                f"SELECT id, acked_at FROM messages WHERE team_id = ? AND recipient = ? "
                f"AND id IN ({marks})",
                (team_id, member, *chunk),
            ):
                found[mid] = acked
        unknown = [i for i in wanted if i not in found]
        if unknown:
            raise UnknownMessage(
                f"no message {', '.join(map(str, unknown))} addressed to {member}",
                message_ids=tuple(unknown),
                member=member,
            )
        fresh = [i for i in wanted if found[i] is None]
        if fresh:
            now = self.clock()
            db.executemany(
                "UPDATE messages SET acked_at = ?, delivered_at = COALESCE(delivered_at, ?) "
                "WHERE id = ?",
                [(now, now, i) for i in fresh],
            )
            self._event(db, team_id, EventKind.MESSAGES_ACKED, {"by": member, "ids": fresh}, member)
        return fresh

    # memory's index: memory writes it, a load writes it again ----------------------

    def _index(self, db: Connection, memory_id: int, text: str, tags: Sequence[str]) -> None:
        self._indexed(db, memory_id, text_terms(text), text_terms(" ".join(tags)))


def _member(team: str, r: Sequence[Any]) -> Member:
    return Member(
        team=team,
        name=r[0],
        role=MemberRole(r[1]),
        agent=r[2],
        model=r[3],
        status=MemberStatus(r[4]),
        heartbeat_at=r[5],
        pid=r[6],
        host=r[7],
        created_at=r[8],
        token_hash=r[9],
    )
