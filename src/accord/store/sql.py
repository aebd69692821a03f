"""Every store operation, written once in SQL that SQLite and PostgreSQL both run.

``SQLStore`` holds the business logic of ``accord.store.base.Store``: what each
operation checks, which rows it writes, which event it appends. A backend
(``sqlite.py``, ``postgres.py``) supplies only the seam below:

- ``_read()`` and ``_write()``: one read transaction (one snapshot) and one write
  transaction, as a connection whose ``execute(sql, args)`` takes this module's
  SQL, written with ``?`` placeholders (PostgreSQL's connection translates them);
- ``_attempt(call)``: runs one whole operation, and runs it again when the backend
  says its transaction lost a race it can simply retry (``Conflict``);
- locks, spelled as SQL (empty on SQLite, whose writer holds the whole file):
  ``_TAKE_TURN`` for a write's turn among its team's writes, ``_LOCK_ROW`` for a
  row a write reads and then changes (or takes turns on), ``_FOR_UPDATE`` for a
  row it deletes, ``_KEY_SHARE`` for a row that must not be deleted under it, and
  ``_SKIP_LOCKED`` for the ready task a claim picks while other claims pick theirs;
- memory search (FTS5 on SQLite, a term table on PostgreSQL): ``_indexed`` writes
  an entry's terms to the index, ``_search`` ranks, and ``_among`` says "one of
  these ids" as the backend best takes a list. Both index the terms of
  ``accord.text`` and keep ``memory_vocab`` (entries per term) and
  ``memory_count`` (entries), which this module reads the same way on both.

Where writers run side by side (PostgreSQL), locks are taken in one order, which
keeps the busy paths free of deadlocks: a team's turn, then member rows, then
task rows, then the team's counters row. The turn lets a write that changes the
team's shape (members, task dependencies, runs, memory) run as on SQLite, after
every other such write of its team and seeing its commit. The busy paths take
narrower locks instead: a mailbox, transcript or continuity note its member's
row; a claim, completion or heartbeat its task's row (a claim picks its task with
SKIP LOCKED, so claims pick different tasks at once). The counters row (events,
task ids, fencing tokens) is locked from a write's first event to its commit, so
the log has no gaps, and a write never waits for another lock while it holds it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Concatenate, Literal, ParamSpec, Protocol, TypeVar

from accord.errors import (
    AlreadyExists,
    CycleError,
    InvalidName,
    InvalidState,
    NotClaimHolder,
    StaleToken,
    UnknownMember,
    UnknownMessage,
    UnknownTask,
    UnknownTeam,
    UserError,
)
from accord.store import _ranking
from accord.store.base import (
    MAX_BODY,
    MAX_CONTINUITY,
    MAX_DESCRIPTION,
    MAX_KEY,
    MAX_MEMORY,
    MAX_PAYLOAD,
    MAX_RESULT,
    MAX_SUMMARY,
    MAX_TITLE,
    UNSET,
    Store,
)
from accord.text import terms as text_terms
from accord.types import (
    BROADCAST,
    PERSON,
    Candidate,
    Claim,
    ContinuityNote,
    Event,
    HostSupervisor,
    Member,
    MemberRole,
    MemberStatus,
    MemoryEntry,
    MemoryStatus,
    MemoryType,
    Message,
    MessageKind,
    NewMemory,
    NewTask,
    OutgoingMessage,
    PlannedTask,
    Run,
    RunStatus,
    Spawn,
    Task,
    TaskChanges,
    TaskStatus,
    Team,
    TeamDump,
    TranscriptEntry,
    TranscriptKind,
    UsageRecord,
    UsageTotal,
    Wake,
    check_name,
)

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="SQLStore")


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


_TASK_COLUMNS = (
    "id, title, description, status, priority, assignee, owner, fencing_token, "
    "lease_expires_at, attempts, max_attempts, result, reason, created_by, created_at, "
    "updated_at, admitted, plan_key"
)
_MEMBER_COLUMNS = (
    "name, role, agent, model, status, heartbeat_at, pid, host, created_at, token_hash"
)
_MESSAGE_COLUMNS = (
    "id, sender, recipient, kind, body, summary, request_id, reply_to, idempotency_key, "
    "sent_at, delivered_at, acked_at, deliveries, broadcast"
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


class SQLStore(Store):
    """The store's logic over a SQL connection; see the module docstring for the seam."""

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

    def _peek(self) -> AbstractContextManager[Connection]:
        """A connection for one read-only statement (which needs no transaction of its
        own on a server; on SQLite it is a read transaction like any other)."""
        return self._read()

    def _attempt(self, call: Callable[[], R]) -> R:
        """Run one operation; a backend that raises ``Conflict`` runs it again here."""
        return call()

    def _serialize_memory(self, db: Connection) -> None:
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

    # plumbing shared by every operation -------------------------------------------

    def _team_id(self, db: Connection, team: str, *, lock: bool = False) -> int:
        """The team's id; ``lock`` (in a write) also takes the team's turn to write."""
        turn = f", {self._TAKE_TURN}" if lock and self._TAKE_TURN else ""
        row = db.execute(f"SELECT id{turn} FROM teams WHERE name = ?", (team,)).fetchone()
        if row is None:
            names = [r[0] for r in db.execute("SELECT name FROM teams ORDER BY name")]
            known = f"teams here: {', '.join(names)}" if names else "this store has no teams yet"
            raise UnknownTeam(
                f"no team named {team!r} ({known}); create it with `accord team create {team}`"
                if _is_name(team)
                else f"no team named {team!r} ({known})"
            )
        team_id: int = row[0]
        return team_id

    def _event(
        self,
        db: Connection,
        team_id: int,
        kind: str,
        payload: dict[str, Any],
        actor: str | None,
        *,
        wanted: bool = False,
    ) -> Event | None:
        """Append the event; it comes back (numbered) only when ``wanted``."""
        now = self.clock()
        text = json.dumps(payload, separators=(",", ":"))
        logged = self._log(db, team_id, now, actor, kind, text, wanted=wanted)
        return Event(logged[1], logged[0], now, actor, kind, payload) if logged else None

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

    # teams -----------------------------------------------------------------

    @atomic
    def create_team(self, name: str, description: str = "", actor: str | None = None) -> Team:
        check_name(name, "team name")
        _cap(description, MAX_DESCRIPTION, "the team description")
        with self._write() as db:
            if db.execute("SELECT 1 FROM teams WHERE name = ?", (name,)).fetchone():
                raise AlreadyExists(f"a team named {name!r} already exists; pick another name")
            now = self.clock()
            team_id = db.execute(
                "INSERT INTO teams (name, description, created_at) VALUES (?, ?, ?) RETURNING id",
                (name, description, now),
            ).fetchone()[0]
            self._event(db, team_id, "team_created", {"name": name}, actor)
        return Team(team_id, name, description, now)

    @atomic
    def get_team(self, name: str) -> Team:
        with self._read() as db:
            team_id = self._team_id(db, name)
            row = db.execute(
                "SELECT id, name, description, created_at FROM teams WHERE id = ?", (team_id,)
            ).fetchone()
        return Team(*row)

    @atomic
    def list_teams(self) -> list[Team]:
        with self._read() as db:
            rows = db.execute(
                "SELECT id, name, description, created_at FROM teams ORDER BY name"
            ).fetchall()
        return [Team(*r) for r in rows]

    @atomic
    def delete_team(self, name: str) -> None:
        with self._write() as db:
            team_id = self._team_id(db, name, lock=True)
            self._serialize_memory(db)  # project entries lose their links into this team's
            # Explicit deletes keep this independent of foreign-key enforcement.
            for table in (
                "task_deps",
                "tasks",
                "messages",
                "members",
                "events",
                "transcripts",
                "usage",
                "spawns",
                "runs",
                "continuity",
            ):
                db.execute(f"DELETE FROM {table} WHERE team_id = ?", (team_id,))
            # Project entries outlive the team; their links into its entries go. A project
            # decision whose successor was the team's stands again: nobody else saw it.
            doomed = "SELECT id FROM memories WHERE team_id = ?"
            db.execute(
                f"UPDATE memories SET supersedes = NULL WHERE team_id IS NULL "
                f"AND supersedes IN ({doomed})",
                (team_id,),
            )
            db.execute(
                "UPDATE memories SET superseded_by = NULL, status = CASE status "
                "WHEN 'superseded' THEN 'active' ELSE status END "
                f"WHERE team_id IS NULL AND superseded_by IN ({doomed})",
                (team_id,),
            )
            db.execute("DELETE FROM memories WHERE team_id = ?", (team_id,))
            db.execute("DELETE FROM teams WHERE id = ?", (team_id,))

    # members ---------------------------------------------------------------

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
                "it sends and reads mail, and never claims tasks or works as a teammate"
            )
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM members WHERE team_id = ? ORDER BY name", (team_id,)
            )
        ]
        known = f"members: {', '.join(names)}" if names else "it has no members yet"
        return UnknownMember(f"team {team!r} has no member named {name!r} ({known})")

    @atomic
    def add_member(
        self,
        team: str,
        name: str,
        *,
        token_hash: str,
        role: MemberRole = MemberRole.TEAMMATE,
        agent: str | None = None,
        model: str | None = None,
        actor: str | None = None,
    ) -> Member:
        check_name(name, "member name")
        if name == PERSON:
            raise InvalidName(
                f"{PERSON!r} is reserved for the person at the terminal; pick another name"
            )
        if agent is not None:
            check_name(agent, "agent definition name")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            if db.execute(
                "SELECT 1 FROM members WHERE team_id = ? AND name = ?", (team_id, name)
            ).fetchone():
                raise AlreadyExists(
                    f"team {team!r} already has a member named {name!r}; pick another name"
                )
            now = self.clock()
            db.execute(
                "INSERT INTO members (team_id, name, role, agent, model, status, token_hash, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (team_id, name, role.value, agent, model, "stopped", token_hash, now),
            )
            self._event(
                db,
                team_id,
                "member_added",
                {"name": name, "role": role.value, "agent": agent, "model": model},
                actor,
            )
            return self._member_row(db, team_id, team, name)

    @atomic
    def get_member(self, team: str, name: str) -> Member:
        with self._read() as db:
            return self._member_row(db, self._team_id(db, team), team, name)

    @atomic
    def list_members(self, team: str) -> list[Member]:
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                f"SELECT {_MEMBER_COLUMNS} FROM members WHERE team_id = ? ORDER BY name",
                (team_id,),
            ).fetchall()
        return [_member(team, r) for r in rows]

    @atomic
    def update_member(
        self,
        team: str,
        name: str,
        *,
        status: MemberStatus | None = None,
        pid: int | None = UNSET,
        host: str | None = UNSET,
        agent: str | None = UNSET,
        model: str | None = UNSET,
        token_hash: str | None = None,
        heartbeat: bool = False,
        actor: str | None = None,
    ) -> Member:
        if agent is not UNSET and agent is not None:
            check_name(agent, "agent definition name")
        sets: list[str] = []
        args: list[Any] = []
        logged: dict[str, Any] = {}
        for column, value in (("pid", pid), ("host", host), ("agent", agent), ("model", model)):
            if value is not UNSET:
                sets.append(f"{column} = ?")
                args.append(value)
                logged[column] = value
        if token_hash is not None:
            sets.append("token_hash = ?")
            args.append(token_hash)
            logged["token"] = "rotated"
        if heartbeat:
            sets.append("heartbeat_at = ?")
            args.append(self.clock())
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            before = self._member_row(db, team_id, team, name)
            if status is not None and status != before.status:
                sets.append("status = ?")
                args.append(status.value)
                logged["status"] = status.value
                logged["was"] = before.status.value
            if sets:
                db.execute(
                    f"UPDATE members SET {', '.join(sets)} WHERE team_id = ? AND name = ?",
                    (*args, team_id, name),
                )
            if logged:
                self._event(db, team_id, "member_updated", {"name": name, **logged}, actor)
            return self._member_row(db, team_id, team, name)

    @atomic
    def remove_member(self, team: str, name: str, actor: str | None = None) -> list[int]:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            # Locked first: a claim of this member's in flight finishes before the release.
            self._member_row(db, team_id, team, name, lock=self._FOR_UPDATE)
            now = self.clock()
            # Released like an ended lease: back to pending, or failed when out of attempts.
            db.execute(
                "UPDATE tasks SET status = 'failed', lease_expires_at = NULL, updated_at = ?, "
                "reason = 'its holder was removed on its last attempt' "
                "WHERE team_id = ? AND owner = ? AND status = 'in_progress' "
                "AND attempts >= max_attempts",
                (now, team_id, name),
            )
            released = [
                r[0]
                for r in db.execute(
                    "UPDATE tasks SET status = 'pending', owner = NULL, lease_expires_at = NULL, "
                    "updated_at = ? WHERE team_id = ? AND owner = ? AND status = 'in_progress' "
                    "RETURNING id",
                    (now, team_id, name),
                )
            ]
            db.execute(
                "UPDATE tasks SET assignee = NULL, updated_at = ? "
                "WHERE team_id = ? AND assignee = ? AND status IN ('pending', 'in_progress')",
                (now, team_id, name),
            )
            db.execute("DELETE FROM members WHERE team_id = ? AND name = ?", (team_id, name))
            self._event(
                db, team_id, "member_removed", {"name": name, "released": sorted(released)}, actor
            )
        return sorted(released)

    # tasks -----------------------------------------------------------------

    def _load_tasks(
        self,
        db: Connection,
        team_id: int,
        team: str,
        where: str,
        args: Sequence[Any],
        *,
        lock: str = "",
    ) -> list[Task]:
        rows = db.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE team_id = ? AND {where} ORDER BY id{lock}",
            (team_id, *args),
        ).fetchall()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        deps: dict[int, list[tuple[int, str]]] = {}
        # Blockers with their status, for every task loaded (chunked for SQLite's limit).
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for task_id, blocker, status in db.execute(
                f"SELECT d.task_id, d.blocker_id, b.status FROM task_deps d "
                f"JOIN tasks b ON b.team_id = d.team_id AND b.id = d.blocker_id "
                f"WHERE d.team_id = ? AND d.task_id IN ({marks}) ORDER BY d.blocker_id",
                (team_id, *chunk),
            ):
                deps.setdefault(task_id, []).append((blocker, status))
        return [_task(team, r, deps.get(r[0], [])) for r in rows]

    def _task_row(
        self, db: Connection, team_id: int, team: str, task_id: int, *, lock: bool = False
    ) -> Task:
        """The task; ``lock`` (in a write that changes it) locks its row first."""
        found = self._load_tasks(
            db, team_id, team, "id = ?", (task_id,), lock=self._LOCK_ROW if lock else ""
        )
        if not found:
            raise UnknownTask(
                f"team {team!r} has no task #{task_id}; see `accord task list --team {team}`"
            )
        return found[0]

    def _check_members(
        self, db: Connection, team_id: int, team: str, names: Sequence[str | None]
    ) -> None:
        for name in names:
            if name is not None:
                self._member_row(db, team_id, team, name)

    def _open_edges(self, db: Connection, team_id: int) -> list[tuple[int, int]]:
        return [
            (r[0], r[1])
            for r in db.execute(
                "SELECT d.blocker_id, d.task_id FROM task_deps d "
                "JOIN tasks t ON t.team_id = d.team_id AND t.id = d.task_id "
                "WHERE d.team_id = ? AND t.status IN ('pending', 'in_progress')",
                (team_id,),
            )
        ]

    def _check_blockers(
        self, db: Connection, team_id: int, team: str, task_id: int, blockers: Sequence[int]
    ) -> None:
        for b in blockers:
            if b == task_id:
                raise CycleError(f"task #{task_id} cannot block itself", (task_id, task_id))
            self._task_row(db, team_id, team, b)
        edges = [
            (r[0], r[1])
            for r in db.execute(
                "SELECT blocker_id, task_id FROM task_deps WHERE team_id = ?", (team_id,)
            )
        ]
        cycle = _ranking.find_cycle(task_id, blockers, edges)
        if cycle is not None:
            shown = " -> ".join(f"#{i}" for i in cycle)
            raise CycleError(
                f"task #{task_id} cannot wait on #{cycle[-2]}: that would make a cycle "
                f"({shown}, where each blocks the next); remove one of those blockers",
                cycle,
            )

    @atomic
    def add_task(
        self,
        team: str,
        new: NewTask,
        *,
        max_attempts: int,
        actor: str | None = None,
        admitted: bool = True,
    ) -> Task:
        title, max_attempts, blockers = _checked_task(new, max_attempts)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._check_members(db, team_id, team, [new.assignee])
            for b in blockers:
                self._task_row(db, team_id, team, b)
            task_id = self._insert_task(
                db, team_id, new, title, max_attempts, blockers, actor, admitted
            )
            return self._task_row(db, team_id, team, task_id)

    @atomic
    def add_tasks(
        self,
        team: str,
        items: Sequence[PlannedTask],
        *,
        max_attempts: int,
        actor: str | None = None,
        admitted: bool = True,
    ) -> list[tuple[Task, bool]]:
        # Everything that needs no store is checked before the transaction begins.
        checked = [_checked_task(item.task, max_attempts) for item in items]
        keys: list[str] = []
        for position, item in enumerate(items):
            if item.key is not None:
                if not item.key.strip():
                    raise UserError(f"task {position + 1} of the batch has an empty key")
                _cap(item.key, MAX_KEY, "a task key")
                if item.key in keys:
                    raise UserError(
                        f"the key {item.key!r} is given to more than one task of the batch"
                    )
                keys.append(item.key)
            for earlier in item.after:
                if not 0 <= earlier < position:
                    raise UserError(
                        f"task {position + 1} of the batch can wait only on earlier tasks of "
                        f"the batch, not on position {earlier + 1}"
                    )
        if not items:
            return []
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            taken: dict[str, int] = {}
            for start in range(0, len(keys), 500):
                some_keys = keys[start : start + 500]
                marks = ",".join("?" * len(some_keys))
                taken.update(
                    db.execute(
                        f"SELECT plan_key, id FROM tasks WHERE team_id = ? "
                        f"AND plan_key IN ({marks})",
                        (team_id, *some_keys),
                    ).fetchall()
                )
            assignees = {i.task.assignee for i in items if i.task.assignee is not None}
            self._check_members(db, team_id, team, sorted(assignees))
            for b in sorted({b for _, _, blockers in checked for b in blockers}):
                self._task_row(db, team_id, team, b)
            ids: list[int] = []
            created: list[bool] = []
            for item, (title, attempts, blockers) in zip(items, checked, strict=True):
                if item.key is not None and item.key in taken:
                    ids.append(taken[item.key])
                    created.append(False)
                    continue
                waits = sorted(set(blockers) | {ids[p] for p in item.after})
                ids.append(
                    self._insert_task(
                        db, team_id, item.task, title, attempts, waits, actor, admitted, item.key
                    )
                )
                created.append(True)
            loaded: dict[int, Task] = {}
            unique = sorted(set(ids))
            for start in range(0, len(unique), 500):
                some_ids = unique[start : start + 500]
                marks = ",".join("?" * len(some_ids))
                for task in self._load_tasks(db, team_id, team, f"id IN ({marks})", some_ids):
                    loaded[task.id] = task
        return [(loaded[i], c) for i, c in zip(ids, created, strict=True)]

    def _insert_task(
        self,
        db: Connection,
        team_id: int,
        new: NewTask,
        title: str,
        max_attempts: int,
        blockers: Sequence[int],
        actor: str | None,
        admitted: bool,
        key: str | None = None,
    ) -> int:
        """Insert one checked task with its blockers and its event; returns its id."""
        task_id: int = db.execute(
            "UPDATE teams SET last_task_id = last_task_id + 1 WHERE id = ? RETURNING last_task_id",
            (team_id,),
        ).fetchone()[0]
        now = self.clock()
        db.execute(
            "INSERT INTO tasks (team_id, id, title, description, status, priority, assignee, "
            "max_attempts, created_by, created_at, updated_at, admitted, plan_key) "
            "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                team_id,
                task_id,
                title,
                new.description,
                new.priority,
                new.assignee,
                max_attempts,
                actor,
                now,
                now,
                int(admitted),
                key,
            ),
        )
        db.executemany(
            "INSERT INTO task_deps (team_id, task_id, blocker_id) VALUES (?, ?, ?)",
            [(team_id, task_id, b) for b in blockers],
        )
        payload: dict[str, Any] = {
            "id": task_id,
            "title": title,
            "blocked_by": list(blockers),
            "assignee": new.assignee,
            "priority": new.priority,
            "admitted": admitted,
        }
        if key is not None:
            payload["plan_key"] = key
        self._event(db, team_id, "task_created", payload, actor)
        return task_id

    @atomic
    def admit_task(self, team: str, task_id: int, actor: str | None = None) -> Task:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            task = self._task_row(db, team_id, team, task_id, lock=True)
            if not task.admitted:
                db.execute(
                    "UPDATE tasks SET admitted = 1, updated_at = ? WHERE team_id = ? AND id = ?",
                    (self.clock(), team_id, task_id),
                )
                self._event(db, team_id, "task_admitted", {"id": task_id}, actor)
            return self._task_row(db, team_id, team, task_id)

    @atomic
    def remove_task(self, team: str, task_id: int, reason: str, actor: str | None = None) -> None:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            task = self._task_row(db, team_id, team, task_id, lock=True)
            if task.admitted:
                raise InvalidState(
                    f"task #{task_id} is on the board already; cancel it with "
                    f"`accord task cancel {task_id}` instead"
                )
            db.execute(
                "DELETE FROM task_deps WHERE team_id = ? AND (task_id = ? OR blocker_id = ?)",
                (team_id, task_id, task_id),
            )
            db.execute("DELETE FROM tasks WHERE team_id = ? AND id = ?", (team_id, task_id))
            self._event(db, team_id, "task_removed", {"id": task_id, "reason": reason}, actor)

    @atomic
    def get_task(self, team: str, task_id: int) -> Task:
        with self._read() as db:
            return self._task_row(db, self._team_id(db, team), team, task_id)

    @atomic
    def list_tasks(
        self, team: str, *, status: TaskStatus | None = None, ready: bool = False
    ) -> list[Task]:
        with self._read() as db:
            team_id = self._team_id(db, team)
            if ready:
                status = TaskStatus.PENDING
            where, args = ("status = ?", [status.value]) if status else ("1 = 1", [])
            tasks = self._load_tasks(db, team_id, team, where, args)
        return [t for t in tasks if t.ready] if ready else tasks

    @atomic
    def update_task(
        self, team: str, task_id: int, changes: TaskChanges, actor: str | None = None
    ) -> Task:
        if changes.title is not None:
            if not changes.title.strip():
                raise UserError("a task title cannot be empty")
            _cap(changes.title, MAX_TITLE, "the task title")
        _cap(changes.description, MAX_DESCRIPTION, "the task description")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            task = self._task_row(db, team_id, team, task_id, lock=True)
            if task.status.terminal:
                raise InvalidState(
                    f"task #{task_id} is {task.status.value}; a finished task cannot change"
                )
            if (changes.add_blockers or changes.remove_blockers) and (
                task.status != TaskStatus.PENDING
            ):
                raise InvalidState(
                    f"task #{task_id} is {task.status.value}; blockers change only while pending"
                )
            self._check_members(db, team_id, team, [changes.assignee])
            add = sorted(set(changes.add_blockers) - set(task.blocked_by))
            missing = sorted(set(changes.remove_blockers) - set(task.blocked_by))
            if missing:
                raise UserError(
                    f"task #{task_id} is not blocked by {', '.join(f'#{i}' for i in missing)}"
                )
            self._check_blockers(db, team_id, team, task_id, add)
            sets: list[str] = []
            args: list[Any] = []
            logged: dict[str, Any] = {"id": task_id}
            for column, value in (
                ("title", changes.title.strip() if changes.title is not None else None),
                ("description", changes.description),
                ("priority", changes.priority),
                ("assignee", changes.assignee),
            ):
                if value is not None:
                    sets.append(f"{column} = ?")
                    args.append(value)
                    logged[column] = value
            if changes.unassign:
                sets.append("assignee = NULL")
                logged["assignee"] = None
            if add:
                db.executemany(
                    "INSERT INTO task_deps (team_id, task_id, blocker_id) VALUES (?, ?, ?)",
                    [(team_id, task_id, b) for b in add],
                )
                logged["add_blockers"] = add
            if changes.remove_blockers:
                db.executemany(
                    "DELETE FROM task_deps WHERE team_id = ? AND task_id = ? AND blocker_id = ?",
                    [(team_id, task_id, b) for b in changes.remove_blockers],
                )
                logged["remove_blockers"] = sorted(set(changes.remove_blockers))
            if len(logged) == 1:
                return task
            sets.append("updated_at = ?")
            args.append(self.clock())
            db.execute(
                f"UPDATE tasks SET {', '.join(sets)} WHERE team_id = ? AND id = ?",
                (*args, team_id, task_id),
            )
            self._event(db, team_id, "task_updated", logged, actor)
            return self._task_row(db, team_id, team, task_id)

    def _lock_counters(self, db: Connection, team_id: int) -> None:
        """Wait for the team's counters: every earlier write that touched them is in."""
        if self._LOCK_ROW:
            db.execute("SELECT 1 FROM teams WHERE id = ?" + self._LOCK_ROW, (team_id,))

    def _expire(self, db: Connection, team_id: int) -> list[int]:
        now = self.clock()
        query = (
            "SELECT id, owner, attempts, max_attempts, fencing_token FROM tasks "
            "WHERE team_id = ? AND status = 'in_progress' AND lease_expires_at < ?"
        )
        expired = db.execute(query, (team_id, now)).fetchall()
        if expired and self._LOCK_ROW:
            # Lock them, and read them again as they are now (another write may have
            # finished one meanwhile).
            expired = db.execute(query + " ORDER BY id" + self._LOCK_ROW, (team_id, now)).fetchall()
        # Every row first, every event after: a write holds no counter while it waits.
        for task_id, owner, attempts, max_attempts, _ in expired:
            if attempts >= max_attempts:
                reason = (
                    f"lease expired on attempt {attempts} of {max_attempts} (held by {owner}); "
                    "no attempts left"
                )
                db.execute(
                    "UPDATE tasks SET status = 'failed', reason = ?, lease_expires_at = NULL, "
                    "updated_at = ? WHERE team_id = ? AND id = ?",
                    (reason, now, team_id, task_id),
                )
            else:
                db.execute(
                    "UPDATE tasks SET status = 'pending', owner = NULL, lease_expires_at = NULL, "
                    "updated_at = ? WHERE team_id = ? AND id = ?",
                    (now, team_id, task_id),
                )
        for task_id, owner, attempts, max_attempts, token in expired:
            self._event(
                db,
                team_id,
                "lease_expired",
                {
                    "id": task_id,
                    "owner": owner,
                    "token": token,
                    "attempts": attempts,
                    "status": "failed" if attempts >= max_attempts else "pending",
                },
                None,
            )
        return [r[0] for r in expired]

    @atomic
    def expire_leases(self, team: str) -> list[Task]:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            ids = self._expire(db, team_id)
            return [self._task_row(db, team_id, team, i) for i in ids]

    @atomic
    def claim_task(
        self,
        team: str,
        member: str,
        *,
        lease_seconds: float,
        task_id: int | None = None,
    ) -> Claim | None:
        if lease_seconds <= 0:
            raise UserError("a lease must be longer than 0 seconds")
        with self._write() as db:
            # No turn: a claim locks the task it takes (the named one, or the one it
            # picks) and queues only for the counters, so claims run side by side.
            team_id = self._team_id(db, team)
            self._member_row(db, team_id, team, member, lock=self._KEY_SHARE)
            if task_id is not None and self._LOCK_ROW:
                db.execute(
                    "SELECT 1 FROM tasks WHERE team_id = ? AND id = ?" + self._LOCK_ROW,
                    (team_id, task_id),
                )
            self._expire(db, team_id)
            if task_id is not None:
                task = self._claimable(db, team_id, team, task_id, member)
            else:
                picked = self._pick(db, team_id, team, member)
                if picked is None:
                    return None
                task = picked
            token = db.execute(
                "UPDATE teams SET last_fence = last_fence + 1 WHERE id = ? RETURNING last_fence",
                (team_id,),
            ).fetchone()[0]
            now = self.clock()
            expires = now + lease_seconds
            self._execute_late(
                db,
                "UPDATE tasks SET status = 'in_progress', owner = ?, fencing_token = ?, "
                "lease_expires_at = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE team_id = ? AND id = ?",
                (member, token, expires, now, team_id, task.id),
            )
            self._event(
                db,
                team_id,
                "task_claimed",
                {"id": task.id, "owner": member, "token": token, "lease_expires_at": expires},
                member,
            )
        claimed = dataclasses.replace(
            task,
            status=TaskStatus.IN_PROGRESS,
            owner=member,
            fencing_token=token,
            lease_expires_at=expires,
            attempts=task.attempts + 1,
            updated_at=now,
        )
        return Claim(claimed, token, expires)

    def _pick(self, db: Connection, team_id: int, team: str, member: str) -> Task | None:
        """The ready task a claim by ``member`` takes, locked for this claim."""
        best = self._best_ready(db, team_id, member)
        if best is None:
            return None
        task = self._task_row(db, team_id, team, best)
        if not task.ready or task.assignee not in (None, member):
            # Only where claims run side by side: a blocker was added to the task between
            # the pick's snapshot and its lock. Rare; the whole claim runs again.
            raise Conflict(f"task #{best} changed while it was being claimed")
        return task

    def _best_ready(self, db: Connection, team_id: int, member: str) -> int | None:
        """The task a claim by ``member`` takes: see ``_ranking.pick_best`` for the order.

        The best (assigned, priority) group is found by walking an index to the first
        ready task, so a claim costs the same on a board of ten tasks or ten thousand;
        dependency edges are read only when some task of that group has open work
        waiting on it, which is the only case where they change the answer. Where
        claims run side by side, the first ready task is the first one no other claim
        holds, and it stays locked for this one.
        """
        top = db.execute(
            f"SELECT t.id, t.priority FROM tasks t WHERE t.team_id = ? AND t.assignee = ? "
            f"AND t.status = 'pending' AND t.admitted = 1 AND {_READY} "
            f"ORDER BY t.priority DESC, t.id LIMIT 1{self._SKIP_LOCKED}",
            (team_id, member),
        ).fetchone()
        assigned = top is not None
        if top is None:
            top = db.execute(
                f"SELECT t.id, t.priority FROM tasks t WHERE t.team_id = ? "
                f"AND t.status = 'pending' AND t.assignee IS NULL AND t.admitted = 1 "
                f"AND {_READY} ORDER BY t.priority DESC, t.id LIMIT 1{self._SKIP_LOCKED}",
                (team_id,),
            ).fetchone()
        if top is None:
            return None
        best: int = top[0]
        whose = "t.assignee = ?" if assigned else "t.assignee IS NULL"
        # The blockers of open tasks come first, as a table of their own, so that no
        # backend starts from the tasks (a young PostgreSQL table has no statistics, and
        # its planner would otherwise pair every pending task with every open one).
        weighted = [
            r[0]
            for r in db.execute(
                f"SELECT t.id FROM (SELECT DISTINCT w.blocker_id AS id FROM task_deps w "
                f"CROSS JOIN tasks o ON o.team_id = w.team_id AND o.id = w.task_id "
                f"WHERE w.team_id = ? AND o.status IN ('pending', 'in_progress')) x "
                f"CROSS JOIN tasks t ON t.team_id = ? AND t.id = x.id "
                f"WHERE t.status = 'pending' AND t.admitted = 1 AND t.priority = ? "
                f"AND {whose} AND {_READY}",
                (team_id, team_id, top[1], member) if assigned else (team_id, team_id, top[1]),
            )
        ]
        if not weighted:
            return best
        group = [(i, top[1], assigned) for i in {best, *weighted}]
        chosen = _ranking.pick_best(group, self._open_edges(db, team_id))
        if chosen != best and self._SKIP_LOCKED:
            # Another claim may hold the better one; then this claim keeps the one it has.
            held = db.execute(
                "SELECT 1 FROM tasks t WHERE t.team_id = ? AND t.id = ? "
                "AND t.status = 'pending'" + self._SKIP_LOCKED,
                (team_id, chosen),
            ).fetchone()
            if held is None:
                return best
        return chosen

    def _claimable(
        self, db: Connection, team_id: int, team: str, task_id: int, member: str
    ) -> Task:
        task = self._task_row(db, team_id, team, task_id)
        if task.status != TaskStatus.PENDING:
            held = f", held by {task.owner}" if task.status == TaskStatus.IN_PROGRESS else ""
            raise InvalidState(
                f"task #{task_id} is {task.status.value}{held}; it cannot be claimed"
            )
        if not task.admitted:
            raise InvalidState(f"task #{task_id} is waiting for its TaskCreated hook")
        if task.assignee is not None and task.assignee != member:
            raise InvalidState(
                f"task #{task_id} is assigned to {task.assignee}; only they can claim it "
                f"(or reassign it with `accord task update {task_id} --assign {member}`)"
            )
        if task.dead_blockers:
            dead = ", ".join(f"#{i}" for i in task.dead_blockers)
            raise InvalidState(
                f"task #{task_id} can never become ready: blocker {dead} failed or was cancelled"
            )
        if task.waiting_on:
            raise InvalidState(
                f"task #{task_id} is not ready: it waits on "
                f"{', '.join(f'#{i}' for i in task.waiting_on)}"
            )
        return task

    def _held(
        self, db: Connection, team_id: int, team: str, task_id: int, member: str, token: int
    ) -> Task:
        """The task if ``member`` holds it under ``token``; else the precise reason why not."""
        task = self._task_row(db, team_id, team, task_id, lock=True)
        if task_id in self._expire(db, team_id):
            task = self._task_row(db, team_id, team, task_id)
        return self._check_held(task, member, token)

    @staticmethod
    def _check_held(task: Task, member: str, token: int) -> Task:
        task_id = task.id
        if task.status == TaskStatus.IN_PROGRESS and task.fencing_token == token:
            if task.owner != member:
                raise NotClaimHolder(
                    f"task #{task_id} is held by {task.owner}, not {member}; "
                    "only the holder may act on it"
                )
            return task
        if task.status == TaskStatus.IN_PROGRESS:
            if task.owner != member:
                raise NotClaimHolder(
                    f"task #{task_id} is held by {task.owner}, not {member}; "
                    "only the holder may act on it"
                )
            raise StaleToken(
                f"token {token} is not the current claim on task #{task_id} "
                f"(the current one is {task.fencing_token}); use the token `task claim` returned"
            )
        if task.fencing_token is None:
            raise NotClaimHolder(
                f"task #{task_id} is {task.status.value} and nobody has claimed it; "
                f"claim it first with `accord task claim --as {member} --id {task_id}`"
            )
        if task.fencing_token == token and task.owner in (member, None):
            if task.status == TaskStatus.PENDING:
                why = "its lease expired and it went back to pending; claim it again"
            elif task.status == TaskStatus.FAILED and task.reason and "lease" in task.reason:
                why = "its lease expired and it failed for good"
            else:
                why = f"it is now {task.status.value}"
            raise StaleToken(f"your claim on task #{task_id} (token {token}) was lost: {why}")
        raise StaleToken(
            f"token {token} does not hold task #{task_id} (it is {task.status.value}"
            + (f", last held by {task.owner}" if task.owner else "")
            + ")"
        )

    @atomic
    def heartbeat_task(
        self, team: str, task_id: int, member: str, token: int, *, lease_seconds: float
    ) -> Claim:
        if lease_seconds <= 0:
            raise UserError("a lease must be longer than 0 seconds")
        with self._write() as db:
            team_id = self._team_id(db, team)
            task = self._held(db, team_id, team, task_id, member, token)
            expires = self.clock() + lease_seconds
            db.execute(
                "UPDATE tasks SET lease_expires_at = ? WHERE team_id = ? AND id = ?",
                (expires, team_id, task_id),
            )
        return Claim(dataclasses.replace(task, lease_expires_at=expires), token, expires)

    @atomic
    def check_claim(self, team: str, task_id: int, member: str, token: int) -> Task:
        with self._write() as db:
            team_id = self._team_id(db, team)
            return self._held(db, team_id, team, task_id, member, token)

    @atomic
    def complete_task(
        self, team: str, task_id: int, member: str, token: int, result: str | None = None
    ) -> Task:
        _cap(result, MAX_RESULT, "the task result")
        with self._write() as db:
            team_id = self._team_id(db, team)
            current = self._task_row(db, team_id, team, task_id, lock=True)
            if (
                current.status == TaskStatus.COMPLETED
                and current.fencing_token == token
                and current.owner == member
            ):
                return current  # the same completion again: deduplicated, not redone
            if task_id in self._expire(db, team_id):
                current = self._task_row(db, team_id, team, task_id)
            self._check_held(current, member, token)
            now = self.clock()
            db.execute(
                "UPDATE tasks SET status = 'completed', result = ?, lease_expires_at = NULL, "
                "updated_at = ? WHERE team_id = ? AND id = ?",
                (result, now, team_id, task_id),
            )
            # What this completion unblocked is read once earlier completions are in.
            self._lock_counters(db, team_id)
            unblocked = [
                r[0]
                for r in db.execute(
                    "SELECT t.id FROM task_deps d CROSS JOIN tasks t "
                    "ON t.team_id = d.team_id AND t.id = d.task_id "
                    "WHERE d.team_id = ? AND d.blocker_id = ? AND t.status = 'pending' "
                    "AND NOT EXISTS (SELECT 1 FROM task_deps d2 CROSS JOIN tasks b "
                    "  ON b.team_id = d2.team_id AND b.id = d2.blocker_id "
                    "  WHERE d2.team_id = t.team_id AND d2.task_id = t.id "
                    "  AND b.status != 'completed') ORDER BY t.id",
                    (team_id, task_id),
                )
            ]
            self._event(
                db,
                team_id,
                "task_completed",
                {"id": task_id, "owner": member, "token": token, "unblocked": unblocked},
                member,
            )
            return dataclasses.replace(
                current,
                status=TaskStatus.COMPLETED,
                result=result,
                lease_expires_at=None,
                updated_at=now,
            )

    @atomic
    def fail_task(
        self,
        team: str,
        task_id: int,
        member: str,
        token: int,
        reason: str,
        *,
        retry: bool = False,
    ) -> Task:
        if not reason.strip():
            raise UserError("failing a task needs a reason; pass --reason TEXT")
        _cap(reason, MAX_RESULT, "the failure reason")
        with self._write() as db:
            team_id = self._team_id(db, team)
            task = self._held(db, team_id, team, task_id, member, token)
            again = retry and task.attempts < task.max_attempts
            now = self.clock()
            if again:
                db.execute(
                    "UPDATE tasks SET status = 'pending', owner = NULL, lease_expires_at = NULL, "
                    "reason = ?, updated_at = ? WHERE team_id = ? AND id = ?",
                    (reason, now, team_id, task_id),
                )
            else:
                db.execute(
                    "UPDATE tasks SET status = 'failed', lease_expires_at = NULL, reason = ?, "
                    "updated_at = ? WHERE team_id = ? AND id = ?",
                    (reason, now, team_id, task_id),
                )
            self._event(
                db,
                team_id,
                "task_failed",
                {
                    "id": task_id,
                    "owner": member,
                    "token": token,
                    "reason": reason,
                    "status": "pending" if again else "failed",
                },
                member,
            )
            return dataclasses.replace(
                task,
                status=TaskStatus.PENDING if again else TaskStatus.FAILED,
                owner=None if again else task.owner,
                lease_expires_at=None,
                reason=reason,
                updated_at=now,
            )

    @atomic
    def release_task(self, team: str, task_id: int, member: str, token: int, reason: str) -> Task:
        if not reason.strip():
            raise UserError("releasing a task needs a reason")
        _cap(reason, MAX_RESULT, "the release reason")
        with self._write() as db:
            team_id = self._team_id(db, team)
            task = self._held(db, team_id, team, task_id, member, token)
            now = self.clock()
            attempts = max(task.attempts - 1, 0)
            db.execute(
                "UPDATE tasks SET status = 'pending', owner = NULL, lease_expires_at = NULL, "
                "attempts = ?, reason = ?, updated_at = ? WHERE team_id = ? AND id = ?",
                (attempts, reason, now, team_id, task_id),
            )
            self._event(
                db,
                team_id,
                "task_failed",
                {
                    "id": task_id,
                    "owner": member,
                    "token": token,
                    "reason": reason,
                    "status": "pending",
                    "attempt_kept": True,
                },
                member,
            )
            return dataclasses.replace(
                task,
                status=TaskStatus.PENDING,
                owner=None,
                lease_expires_at=None,
                attempts=attempts,
                reason=reason,
                updated_at=now,
            )

    @atomic
    def cancel_task(self, team: str, task_id: int, reason: str, actor: str | None = None) -> Task:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            task = self._task_row(db, team_id, team, task_id, lock=True)
            if task.status.terminal:
                raise InvalidState(f"task #{task_id} is already {task.status.value}")
            now = self.clock()
            db.execute(
                "UPDATE tasks SET status = 'cancelled', lease_expires_at = NULL, reason = ?, "
                "updated_at = ? WHERE team_id = ? AND id = ?",
                (reason, now, team_id, task_id),
            )
            self._event(
                db,
                team_id,
                "task_cancelled",
                {"id": task_id, "reason": reason, "owner": task.owner},
                actor,
            )
            return dataclasses.replace(
                task,
                status=TaskStatus.CANCELLED,
                lease_expires_at=None,
                reason=reason,
                updated_at=now,
            )

    # mail ------------------------------------------------------------------

    @atomic
    def send_message(self, team: str, message: OutgoingMessage) -> list[Message]:
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
                "message_sent",
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
            if row[2] != m.sender:
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
            self._event(db, team_id, "messages_delivered", {"to": member, "ids": ids}, member)
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
        if not ids:
            return []
        with self._write() as db:
            team_id = self._team_id(db, team)
            self._mail_address(db, team_id, team, member, lock=self._LOCK_ROW)
            return self._ack(db, team_id, member, ids)

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
                f"no message {', '.join(map(str, unknown))} addressed to {member}; "
                f"see `accord msg inbox --as {member}`"
            )
        fresh = [i for i in wanted if found[i] is None]
        if fresh:
            now = self.clock()
            db.executemany(
                "UPDATE messages SET acked_at = ?, delivered_at = COALESCE(delivered_at, ?) "
                "WHERE id = ?",
                [(now, now, i) for i in fresh],
            )
            self._event(db, team_id, "messages_acked", {"by": member, "ids": fresh}, member)
        return fresh

    @atomic
    def get_message(self, team: str, message_id: int) -> Message:
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
        with self._read() as db:
            team_id = self._team_id(db, team)
            where = "team_id = ?"
            args: list[Any] = [team_id]
            if member is not None:
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

    # events ----------------------------------------------------------------

    @atomic
    def append_event(
        self, team: str, kind: str, payload: dict[str, Any], actor: str | None = None
    ) -> Event:
        if len(json.dumps(payload)) > MAX_PAYLOAD:
            raise UserError(f"an event payload is limited to {MAX_PAYLOAD} bytes")
        with self._write() as db:
            event = self._event(db, self._team_id(db, team), kind, payload, actor, wanted=True)
        assert event is not None
        return event

    @atomic
    def read_events(self, team: str, *, since: int = 0, limit: int | None = None) -> list[Event]:
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                "SELECT seq, at, actor, kind, payload FROM events WHERE team_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (team_id, since, self._NO_LIMIT if limit is None else limit),
            ).fetchall()
        return [Event(team, r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    # waking ----------------------------------------------------------------

    @atomic
    def pending_work(self, team: str, member: str) -> Wake:
        # One statement: every waiter asks this after every commit it hears of, so on a
        # server it is one round trip, outside any transaction (see _peek).
        now = self.clock()
        with self._peek() as db:
            found = db.execute(
                "SELECT (SELECT count(*) FROM members WHERE team_id = tm.id AND name = ?), "
                "(SELECT count(*) FROM messages WHERE team_id = tm.id AND recipient = ? "
                "  AND acked_at IS NULL AND visible_at <= ?), "
                "(SELECT count(*) FROM tasks t WHERE t.team_id = tm.id AND t.status = 'pending' "
                f"  AND t.admitted = 1 AND (t.assignee IS NULL OR t.assignee = ?) AND {_READY}), "
                "(SELECT count(*) FROM tasks WHERE team_id = tm.id AND status = 'in_progress' "
                "  AND lease_expires_at < ? AND (assignee IS NULL OR assignee = ?)) "
                "FROM teams tm WHERE tm.name = ?",
                (member, member, now, member, now, member, team),
            ).fetchone()
        if found is None or not found[0]:
            with self._read() as db:  # for the error that says what is missing
                self._member_row(db, self._team_id(db, team), team, member)
            if found is None:
                return Wake("none", 0, 0)  # the team was made meanwhile: nothing in it yet
        _, mail, ready, expiring = found
        reason = "mail" if mail else "task" if ready or expiring else "none"
        return Wake(reason, mail, ready + expiring)

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
            "model_call",
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
                "usage_suspect",
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

    # runs and spawn requests -----------------------------------------------

    _RUN_COLUMNS = (
        "goal, lead, status, summary, settings, wanted, supervisor_token, supervisor_pid, "
        "supervisor_host, supervisor_expires_at, started_at, updated_at"
    )

    def _run_row(self, db: Connection, team_id: int, team: str) -> Run | None:
        r = db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE team_id = ?", (team_id,)
        ).fetchone()
        if r is None:
            return None
        return Run(
            team,
            r[0],
            r[1],
            RunStatus(r[2]),
            r[3],
            json.loads(r[4]),
            tuple(json.loads(r[5])),
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            r[11],
        )

    def _must_run(self, db: Connection, team_id: int, team: str) -> Run:
        run = self._run_row(db, team_id, team)
        if run is None:
            raise InvalidState(f"team {team!r} has never been run; start it with `accord run`")
        return run

    @atomic
    def start_run(self, team: str, goal: str, lead: str, settings: dict[str, Any]) -> Run:
        check_name(lead, "member name")
        if not goal.strip():
            raise UserError("a run needs a goal; say what the team should do")
        _cap(goal, MAX_DESCRIPTION, "the goal")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._member_row(db, team_id, team, lead)
            now = self.clock()
            prior = self._run_row(db, team_id, team)
            wanted = sorted({lead, *(prior.wanted if prior else ())})
            db.execute(
                "INSERT INTO runs (team_id, goal, lead, status, settings, wanted, started_at, "
                "updated_at) VALUES (?, ?, ?, 'running', ?, ?, ?, ?) "
                "ON CONFLICT (team_id) DO UPDATE SET goal = excluded.goal, lead = excluded.lead, "
                "status = 'running', summary = NULL, settings = excluded.settings, "
                "wanted = excluded.wanted, updated_at = excluded.updated_at",
                (team_id, goal, lead, json.dumps(settings), json.dumps(wanted), now, now),
            )
            self._event(db, team_id, "run_started", {"goal": goal, "lead": lead}, None)
            run = self._run_row(db, team_id, team)
            assert run is not None
            return run

    @atomic
    def get_run(self, team: str) -> Run | None:
        with self._read() as db:
            return self._run_row(db, self._team_id(db, team), team)

    @atomic
    def update_run(
        self,
        team: str,
        *,
        status: RunStatus | None = None,
        summary: str | None = None,
        want: Sequence[str] = (),
        unwant: Sequence[str] = (),
        actor: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Run:
        _cap(summary, MAX_RESULT, "the run summary")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            wanted = sorted((set(run.wanted) | set(want)) - set(unwant))
            new_status = status or run.status
            merged = {**run.settings, **(settings or {})}
            db.execute(
                "UPDATE runs SET status = ?, summary = COALESCE(?, summary), wanted = ?, "
                "settings = ?, updated_at = ? WHERE team_id = ?",
                (
                    new_status.value,
                    summary,
                    json.dumps(wanted),
                    json.dumps(merged),
                    self.clock(),
                    team_id,
                ),
            )
            changed: dict[str, Any] = {}
            if merged != run.settings:
                changed["settings"] = {k: merged[k] for k in settings or {}}
            if new_status != run.status:
                changed["status"] = new_status.value
            if summary is not None:
                changed["summary"] = summary
            if wanted != list(run.wanted):
                changed["wanted"] = wanted
            if changed:
                self._event(db, team_id, "run_updated", changed, actor)
            updated = self._run_row(db, team_id, team)
            assert updated is not None
            return updated

    @atomic
    def claim_supervisor(
        self, team: str, pid: int, host: str, lease_seconds: float, *, take_over: bool = False
    ) -> Run:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            now = self.clock()
            expires = run.supervisor_expires_at
            if expires is not None and expires > now and not take_over:
                raise InvalidState(
                    f"team {team!r} already has a supervisor (pid {run.supervisor_pid} on "
                    f"{run.supervisor_host}); stop it with `accord stop --team {team}` or wait "
                    f"{expires - now:.0f}s for its lease to end"
                )
            token = run.supervisor_token + 1
            db.execute(
                "UPDATE runs SET supervisor_token = ?, supervisor_pid = ?, supervisor_host = ?, "
                "supervisor_expires_at = ?, updated_at = ? WHERE team_id = ?",
                (token, pid, host, now + lease_seconds, now, team_id),
            )
            self._event(
                db, team_id, "supervisor_started", {"pid": pid, "host": host, "token": token}, None
            )
            claimed = self._run_row(db, team_id, team)
            assert claimed is not None
            return claimed

    @atomic
    def renew_supervisor(self, team: str, token: int, lease_seconds: float) -> Run:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            if run.supervisor_token != token:
                raise StaleToken(
                    f"another supervisor (pid {run.supervisor_pid} on {run.supervisor_host}) "
                    f"took over team {team!r}"
                )
            db.execute(
                "UPDATE runs SET supervisor_expires_at = ? WHERE team_id = ?",
                (self.clock() + lease_seconds, team_id),
            )
            renewed = self._run_row(db, team_id, team)
            assert renewed is not None
            return renewed

    @atomic
    def release_supervisor(self, team: str, token: int) -> None:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._run_row(db, team_id, team)
            if run is None or run.supervisor_token != token:
                return
            db.execute(
                "UPDATE runs SET supervisor_expires_at = NULL, updated_at = ? WHERE team_id = ?",
                (self.clock(), team_id),
            )
            self._event(db, team_id, "supervisor_stopped", {"token": token}, None)

    def _spawn_row(self, team: str, r: Sequence[Any]) -> Spawn:
        return Spawn(r[0], team, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])

    _SPAWN_COLUMNS = (
        "id, name, agent, model, host, requested_by, status, reason, created_at, taken_by"
    )

    @atomic
    def request_spawn(
        self,
        team: str,
        name: str,
        *,
        token_hash: str,
        agent: str | None = None,
        model: str | None = None,
        host: str | None = None,
        requested_by: str | None = None,
    ) -> Spawn:
        check_name(name, "member name")
        if agent is not None:
            check_name(agent, "agent definition name")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            if db.execute(
                "SELECT 1 FROM spawns WHERE team_id = ? AND name = ? "
                "AND status IN ('pending', 'taken')",
                (team_id, name),
            ).fetchone():
                raise InvalidState(f"{name} is already waiting to be started")
            row = db.execute(
                "SELECT status FROM members WHERE team_id = ? AND name = ?", (team_id, name)
            ).fetchone()
            now = self.clock()
            if row is None:
                db.execute(
                    "INSERT INTO members (team_id, name, role, agent, model, status, token_hash, "
                    "created_at) VALUES (?, ?, 'teammate', ?, ?, 'starting', ?, ?)",
                    (team_id, name, agent, model, token_hash, now),
                )
                self._event(
                    db,
                    team_id,
                    "member_added",
                    {"name": name, "role": "teammate", "agent": agent, "model": model},
                    requested_by,
                )
            elif name in run.wanted and row[0] in ("starting", "working", "idle"):
                raise InvalidState(
                    f"{name} is already running ({row[0]}); message it instead of spawning it"
                )
            else:
                db.execute(
                    "UPDATE members SET status = 'starting', agent = COALESCE(?, agent), "
                    "model = COALESCE(?, model) WHERE team_id = ? AND name = ?",
                    (agent, model, team_id, name),
                )
            db.execute(
                "UPDATE members SET placement = ? WHERE team_id = ? AND name = ?",
                (host, team_id, name),
            )
            wanted = sorted({*run.wanted, name})
            db.execute(
                "UPDATE runs SET wanted = ?, updated_at = ? WHERE team_id = ?",
                (json.dumps(wanted), now, team_id),
            )
            spawn_id = db.execute(
                "INSERT INTO spawns (team_id, name, agent, model, host, requested_by, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) RETURNING id",
                (team_id, name, agent, model, host, requested_by, now),
            ).fetchone()[0]
            self._event(
                db,
                team_id,
                "spawn_requested",
                {"id": spawn_id, "name": name, "agent": agent, "model": model, "host": host},
                requested_by,
            )
            r = db.execute(
                f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE id = ?", (spawn_id,)
            ).fetchone()
            return self._spawn_row(team, r)

    @atomic
    def pending_spawns(self, team: str) -> list[Spawn]:
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE team_id = ? "
                "AND status IN ('pending', 'taken') ORDER BY id",
                (team_id,),
            ).fetchall()
        return [self._spawn_row(team, r) for r in rows]

    @atomic
    def finish_spawn(
        self, team: str, spawn_id: int, status: str, reason: str | None = None
    ) -> Spawn:
        if status not in ("started", "refused"):
            raise UserError(f"a spawn request ends started or refused, not {status!r}")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            r = db.execute(
                f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE team_id = ? AND id = ?",
                (team_id, spawn_id),
            ).fetchone()
            if r is None:
                raise InvalidState(f"team {team!r} has no spawn request {spawn_id}")
            spawn = self._spawn_row(team, r)
            db.execute(
                "UPDATE spawns SET status = ?, reason = ?, handled_at = ? WHERE id = ?",
                (status, reason, self.clock(), spawn_id),
            )
            if status == "refused":
                run = self._must_run(db, team_id, team)
                db.execute(
                    "UPDATE runs SET wanted = ? WHERE team_id = ?",
                    (json.dumps(sorted(set(run.wanted) - {spawn.name})), team_id),
                )
                db.execute(
                    "UPDATE members SET status = 'stopped' WHERE team_id = ? AND name = ? "
                    "AND status = 'starting'",
                    (team_id, spawn.name),
                )
            self._event(
                db,
                team_id,
                f"spawn_{status}",
                {"id": spawn_id, "name": spawn.name, "reason": reason},
                None,
            )
            return dataclasses.replace(spawn, status=status, reason=reason)

    # hosts -----------------------------------------------------------------

    _HOST_COLUMNS = "host, machine, pid, token, slots, status, started_at, expires_at"

    def _host_rows(
        self, db: Connection, team_id: int, team: str, host: str | None = None
    ) -> list[HostSupervisor]:
        where, args = ("AND host = ?", (host,)) if host is not None else ("", ())
        rows = db.execute(
            f"SELECT {self._HOST_COLUMNS} FROM supervisors WHERE team_id = ? {where} "
            "ORDER BY started_at, host",
            (team_id, *args),
        ).fetchall()
        return [HostSupervisor(team, *r) for r in rows]

    @atomic
    def register_host(
        self,
        team: str,
        host: str,
        *,
        machine: str,
        pid: int,
        slots: int | None,
        lease_seconds: float,
        take_over: bool = False,
    ) -> HostSupervisor:
        check_name(host, "host name")
        if slots is not None and slots < 1:
            raise UserError("a supervisor needs 1 slot or more (--slots N)")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            now = self.clock()
            prior = self._host_rows(db, team_id, team, host)
            if prior and prior[0].live(now) and not take_over:
                p = prior[0]
                raise InvalidState(
                    f"host {host!r} of team {team!r} is already served by a supervisor "
                    f"(pid {p.pid} on {p.machine}); give this one another --host name, or "
                    f"wait {p.expires_at - now if p.expires_at else 0:.0f}s for its lease to end"
                )
            token = (prior[0].token if prior else 0) + 1
            db.execute(
                "INSERT INTO supervisors (team_id, host, machine, pid, token, slots, status, "
                "started_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, 'live', ?, ?) "
                "ON CONFLICT (team_id, host) DO UPDATE SET machine = excluded.machine, "
                "pid = excluded.pid, token = excluded.token, slots = excluded.slots, "
                "status = 'live', started_at = excluded.started_at, "
                "expires_at = excluded.expires_at",
                (team_id, host, machine, pid, token, slots, now, now + lease_seconds),
            )
            # Whatever a previous supervisor of this host ran died with it: those
            # members are nowhere now, and what it had taken is to be placed again.
            db.execute(
                "UPDATE members SET host = NULL, pid = NULL WHERE team_id = ? AND host = ?",
                (team_id, host),
            )
            self._give_back_spawns(db, team_id, host)
            self._event(
                db,
                team_id,
                "host_joined",
                {"host": host, "machine": machine, "pid": pid, "slots": slots, "token": token},
                None,
            )
            return self._host_rows(db, team_id, team, host)[0]

    def _give_back_spawns(self, db: Connection, team_id: int, host: str) -> None:
        """Spawn requests ``host`` took and did not finish wait for a supervisor again."""
        db.execute(
            "UPDATE spawns SET status = 'pending', taken_by = NULL "
            "WHERE team_id = ? AND status = 'taken' AND taken_by = ?",
            (team_id, host),
        )

    def _live_host(
        self, db: Connection, team_id: int, team: str, host: str, token: int
    ) -> HostSupervisor:
        rows = self._host_rows(db, team_id, team, host)
        if not rows or rows[0].token != token or rows[0].status != "live":
            raise StaleToken(
                f"host {host!r} of team {team!r} is now served by another supervisor "
                "or was given up; this one must stop"
            )
        return rows[0]

    @atomic
    def renew_host(self, team: str, host: str, token: int, lease_seconds: float) -> HostSupervisor:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._live_host(db, team_id, team, host, token)
            db.execute(
                "UPDATE supervisors SET expires_at = ? WHERE team_id = ? AND host = ?",
                (self.clock() + lease_seconds, team_id, host),
            )
            return self._host_rows(db, team_id, team, host)[0]

    @atomic
    def release_host(self, team: str, host: str, token: int) -> None:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            rows = self._host_rows(db, team_id, team, host)
            if not rows or rows[0].token != token or rows[0].status != "live":
                return
            db.execute(
                "UPDATE supervisors SET status = 'stopped', expires_at = NULL "
                "WHERE team_id = ? AND host = ?",
                (team_id, host),
            )
            self._give_back_spawns(db, team_id, host)
            self._event(db, team_id, "host_left", {"host": host, "token": token}, None)

    def list_hosts(self, team: str) -> list[HostSupervisor]:
        with self._read() as db:
            return self._host_rows(db, self._team_id(db, team), team)

    @atomic
    def take_spawn(self, team: str, host: str, token: int) -> Spawn | None:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._live_host(db, team_id, team, host, token)
            r = db.execute(
                f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE team_id = ? "
                "AND status = 'pending' AND (host IS NULL OR host = ?) ORDER BY id LIMIT 1",
                (team_id, host),
            ).fetchone()
            if r is None:
                return None
            spawn = self._spawn_row(team, r)
            db.execute(
                "UPDATE spawns SET status = 'taken', taken_by = ? WHERE id = ?", (host, spawn.id)
            )
            self._event(
                db, team_id, "spawn_taken", {"id": spawn.id, "name": spawn.name, "host": host}, None
            )
            return dataclasses.replace(spawn, status="taken", taken_by=host)

    @atomic
    def place_wanted(self, team: str) -> list[Spawn]:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            run = self._must_run(db, team_id, team)
            now = self.clock()
            hosts = self._host_rows(db, team_id, team)
            live = {h.host for h in hosts if h.live(now)}
            for lost in (h for h in hosts if h.status == "live" and not h.live(now)):
                db.execute(
                    "UPDATE supervisors SET status = 'lost' WHERE team_id = ? AND host = ?",
                    (team_id, lost.host),
                )
                self._give_back_spawns(db, team_id, lost.host)
                members = [
                    r[0]
                    for r in db.execute(
                        "SELECT name FROM members WHERE team_id = ? AND host = ? ORDER BY name",
                        (team_id, lost.host),
                    )
                ]
                db.execute(
                    "UPDATE members SET host = NULL, pid = NULL, status = CASE WHEN status "
                    "IN ('starting', 'working', 'idle', 'stopping') THEN 'crashed' "
                    "ELSE status END WHERE team_id = ? AND host = ?",
                    (team_id, lost.host),
                )
                self._event(
                    db,
                    team_id,
                    "host_lost",
                    {"host": lost.host, "machine": lost.machine, "members": members},
                    None,
                )
            waiting = {
                r[0]
                for r in db.execute(
                    "SELECT name FROM spawns WHERE team_id = ? AND status IN ('pending', 'taken')",
                    (team_id,),
                )
            }
            placed: list[Spawn] = []
            for name, agent, model, host, placement in db.execute(
                "SELECT name, agent, model, host, placement FROM members "
                "WHERE team_id = ? ORDER BY name",
                (team_id,),
            ).fetchall():
                if name == run.lead or name not in run.wanted or name in waiting:
                    continue
                if host is not None and host in live:
                    continue
                spawn_id = db.execute(
                    "INSERT INTO spawns (team_id, name, agent, model, host, requested_by, "
                    "status, created_at) VALUES (?, ?, ?, ?, ?, NULL, 'pending', ?) RETURNING id",
                    (team_id, name, agent, model, placement, now),
                ).fetchone()[0]
                self._event(
                    db,
                    team_id,
                    "member_placed",
                    {"id": spawn_id, "name": name, "host": placement},
                    None,
                )
                r = db.execute(
                    f"SELECT {self._SPAWN_COLUMNS} FROM spawns WHERE id = ?", (spawn_id,)
                ).fetchone()
                placed.append(self._spawn_row(team, r))
            return placed

    # moving a team between stores ------------------------------------------------

    # Tables holding a team's rows, in an order that satisfies their references.
    _TEAM_TABLES = (
        "members",
        "tasks",
        "task_deps",
        "messages",
        "transcripts",
        "usage",
        "runs",
        "spawns",
        "memories",
        "continuity",
        "supervisors",
        "events",  # last: its payloads name ids the rows above may have been given anew
    )
    _ORDER = {
        "members": "name",
        "tasks": "id",
        "task_deps": "task_id, blocker_id",
        "messages": "id",
        "transcripts": "member, seq",
        "usage": "id",
        "runs": "team_id",
        "spawns": "id",
        "memories": "id",
        "continuity": "member, version",
        "supervisors": "host",
        "events": "seq",
    }
    # Tables numbered store-wide, and the columns of theirs that point at their own ids.
    _NUMBERED = {
        "messages": ("reply_to",),
        "usage": (),
        "spawns": (),
        "memories": ("supersedes", "superseded_by"),
    }
    # Event payload keys that carry those ids, by the word the event kind contains.
    _EVENT_IDS = {
        "message": ("messages", ("id", "ids", "reply_to")),
        "memor": ("memories", ("id", "ids", "supersedes", "superseded_by")),
        "spawn": ("spawns", ("id",)),
        "placed": ("spawns", ("id",)),
    }

    def _rows(self, db: Connection, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = db.execute(sql, args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def dump_team(self, team: str) -> TeamDump:
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows: dict[str, list[dict[str, Any]]] = {}
            team_row = self._rows(
                db,
                "SELECT description, created_at, last_seq, last_task_id, last_fence "
                "FROM teams WHERE id = ?",
                (team_id,),
            )
            rows["teams"] = team_row
            for table in self._TEAM_TABLES:
                found = self._rows(
                    db,
                    f"SELECT * FROM {table} WHERE team_id = ? ORDER BY {self._ORDER[table]}",
                    (team_id,),
                )
                for r in found:
                    del r["team_id"]
                rows[table] = found
            project = self._rows(db, "SELECT * FROM memories WHERE team_id IS NULL ORDER BY id", ())
            for r in project:
                del r["team_id"]
        return TeamDump(team, rows, project)

    @atomic
    def load_team(self, dump: TeamDump) -> dict[str, int]:
        check_name(dump.team, "team name")
        with self._write() as db:
            if db.execute("SELECT 1 FROM teams WHERE name = ?", (dump.team,)).fetchone():
                raise AlreadyExists(
                    f"the target store already has a team named {dump.team!r}; delete it "
                    "there first, or copy into another store"
                )
            (head,) = dump.rows["teams"]
            team_id = db.execute(
                "INSERT INTO teams (name, description, created_at, last_seq, last_task_id, "
                "last_fence) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    dump.team,
                    head["description"],
                    head["created_at"],
                    head["last_seq"],
                    head["last_task_id"],
                    head["last_fence"],
                ),
            ).fetchone()[0]
            self._serialize_memory(db)  # its entries join the shared index and its counts
            maps: dict[str, dict[int, int]] = {}
            written: dict[str, int] = {}
            for table in self._TEAM_TABLES[:-1]:
                written[table] = self._load_rows(db, table, team_id, dump.rows[table], maps)
            fresh = []
            for r in dump.project_memories:
                same = db.execute(
                    "SELECT id FROM memories WHERE team_id IS NULL AND scope = ? AND type = ? "
                    "AND text = ? AND created_at = ?",
                    (r["scope"], r["type"], r["text"], r["created_at"]),
                ).fetchone()
                if same is None:
                    fresh.append(r)
                else:  # already there (copied with another team): events point to it
                    maps.setdefault("memories", {})[r["id"]] = same[0]
            written["project memories"] = self._load_rows(db, "memories", None, fresh, maps)
            events = [self._renumber_event(r, maps) for r in dump.rows["events"]]
            written["events"] = self._load_rows(db, "events", team_id, events, maps)
            return written

    def _load_rows(
        self,
        db: Connection,
        table: str,
        team_id: int | None,
        rows: list[dict[str, Any]],
        maps: dict[str, dict[int, int]],
    ) -> int:
        if not rows:
            return 0
        links = self._NUMBERED.get(table)
        mapping = maps.setdefault(table, {}) if links is not None else {}
        if links is not None:
            ids = [r["id"] for r in rows]
            taken = any(
                db.execute(
                    f"SELECT 1 FROM {table} WHERE id IN ({','.join('?' * len(chunk))}) LIMIT 1",
                    chunk,
                ).fetchone()
                for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500))
            )
        for r in rows:
            values = dict(r, team_id=team_id)
            if links is not None:
                for column in links:
                    values[column] = None  # pointed again below, once every row has its id
                if taken:
                    del values["id"]
            columns = list(values)
            insert = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})"
            )
            if links is None:
                db.execute(insert, [values[c] for c in columns])
                continue
            new_id = db.execute(insert + " RETURNING id", [values[c] for c in columns]).fetchone()
            mapping[r["id"]] = new_id[0]
            if table == "memories":
                self._index(db, new_id[0], r["text"], json.loads(r["tags"]))
        if links is not None and not taken:
            self._ids_given(db, table)
        for r in rows:
            for column in links or ():
                if r[column] is not None:
                    db.execute(
                        f"UPDATE {table} SET {column} = ? WHERE id = ?",
                        (mapping.get(r[column], r[column]), mapping[r["id"]]),
                    )
        return len(rows)

    def _ids_given(self, db: Connection, table: str) -> None:
        """Rows were added to ``table`` with ids of their own: the next id the store
        hands out must come after them (SQLite's AUTOINCREMENT sees to that itself)."""

    def _renumber_event(
        self, row: dict[str, Any], maps: dict[str, dict[int, int]]
    ) -> dict[str, Any]:
        for word, (table, keys) in self._EVENT_IDS.items():
            mapping = maps.get(table)
            if word not in row["kind"] or not mapping or all(k == v for k, v in mapping.items()):
                continue
            payload = json.loads(row["payload"])
            for key in keys:
                value = payload.get(key)
                if isinstance(value, int):
                    payload[key] = mapping.get(value, value)
                elif isinstance(value, list):
                    payload[key] = [mapping.get(v, v) if isinstance(v, int) else v for v in value]
            return dict(row, payload=json.dumps(payload, separators=(",", ":")))
        return row

    # memory ----------------------------------------------------------------

    _MEMORY_COLUMNS = (
        "m.id, m.team_id, m.scope, m.type, m.text, m.tags, m.status, m.author, m.task_id, "
        "m.session, m.created_at, m.seen_at, m.count, m.supersedes, m.superseded_by"
    )

    def _memory(self, team: str, r: Sequence[Any]) -> MemoryEntry:
        return MemoryEntry(
            id=r[0],
            team=team if r[1] is not None else None,
            scope=r[2],
            type=MemoryType(r[3]),
            text=r[4],
            tags=tuple(json.loads(r[5])),
            status=MemoryStatus(r[6]),
            author=r[7],
            task_id=r[8],
            session=r[9],
            created_at=r[10],
            seen_at=r[11],
            count=r[12],
            supersedes=r[13],
            superseded_by=r[14],
        )

    def _scope_owner(self, db: Connection, team_id: int, team: str, scope: str) -> int | None:
        """The team_id a scope's entries carry (None for project); checks the scope."""
        if scope == "project":
            return None
        if scope == "team":
            return team_id
        if scope.startswith("member:"):
            self._member_row(db, team_id, team, scope.removeprefix("member:"))
            return team_id
        raise UserError(f"unknown memory scope {scope!r}; use team, project or member:NAME")

    @staticmethod
    def _visible(team_id: int, scopes: Sequence[str] | None) -> tuple[str, list[Any]]:
        if scopes is None:
            return "(m.team_id = ? OR m.team_id IS NULL)", [team_id]
        parts: list[str] = []
        args: list[Any] = []
        for scope in scopes:
            if scope == "project":
                parts.append("m.team_id IS NULL")
            else:
                parts.append("(m.team_id = ? AND m.scope = ?)")
                args += [team_id, scope]
        return "(" + (" OR ".join(parts) or "1 = 0") + ")", args

    def _memory_row(self, db: Connection, team_id: int, team: str, memory_id: int) -> MemoryEntry:
        r = db.execute(
            f"SELECT {self._MEMORY_COLUMNS} FROM memories m WHERE m.id = ? "
            "AND (m.team_id = ? OR m.team_id IS NULL)",
            (memory_id, team_id),
        ).fetchone()
        if r is None:
            raise UserError(
                f"no memory {memory_id} in team {team!r} or the project; see "
                "`accord memory search` or `accord memory list`"
            )
        return self._memory(team, r)

    def _standing(self, db: Connection, team_id: int, team: str, entry: MemoryEntry) -> MemoryEntry:
        seen = {entry.id}
        while entry.superseded_by is not None and entry.superseded_by not in seen:
            seen.add(entry.superseded_by)
            entry = self._memory_row(db, team_id, team, entry.superseded_by)
        return entry

    def _insert_memory(
        self,
        db: Connection,
        owner: int | None,
        scope: str,
        kind: str,
        text: str,
        tags: list[str],
        status: str,
        author: str | None,
        task_id: int | None,
        session: int | None,
        created_at: float,
        seen_at: float,
        count: int,
        supersedes: int | None,
    ) -> int:
        """Insert one memory row (and index it for search); returns its id."""
        tags_json = json.dumps(tags)
        memory_id: int = db.execute(
            "INSERT INTO memories (team_id, scope, type, text, tags, status, author, task_id, "
            "session, created_at, seen_at, count, supersedes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                owner,
                scope,
                kind,
                text,
                tags_json,
                status,
                author,
                task_id,
                session,
                created_at,
                seen_at,
                count,
                supersedes,
            ),
        ).fetchone()[0]
        self._index(db, memory_id, text, tags)
        return memory_id

    def _index(self, db: Connection, memory_id: int, text: str, tags: Sequence[str]) -> None:
        self._indexed(db, memory_id, text_terms(text), text_terms(" ".join(tags)))

    @atomic
    def add_memory(
        self,
        team: str,
        new: NewMemory,
        *,
        same: Callable[[str, str], bool] | None = None,
        candidates: Sequence[str] = (),
    ) -> tuple[MemoryEntry, bool]:
        text = new.text.strip()
        if not text:
            raise UserError("a memory needs text; say what should be remembered")
        _cap(text, MAX_MEMORY, "a memory")
        for tag in new.tags:
            check_name(tag, "tag")
        kind = MemoryType(new.type)
        if new.supersedes is not None and kind != MemoryType.DECISION:
            raise UserError("only a decision can supersede; make it --type decision")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._serialize_memory(db)
            owner = self._scope_owner(db, team_id, team, new.scope)
            now = self.clock()
            old: MemoryEntry | None = None
            if new.supersedes is not None:
                old = self._memory_row(db, team_id, team, new.supersedes)
                if old.type != MemoryType.DECISION:
                    article = "an" if old.type.value[0] in "aeiou" else "a"
                    raise UserError(
                        f"memory {old.id} is {article} {old.type.value}, not a decision; only a "
                        "decision can be superseded"
                    )
                if old.superseded_by is not None:
                    stands = self._standing(db, team_id, team, old)
                    if stands.status == MemoryStatus.ACTIVE:
                        raise UserError(
                            f"memory {old.id} is already superseded; the decision that stands "
                            f"is {stands.id} ({stands.text[:60]!r}): supersede that one"
                        )
                    # The chain ends in a retired decision: nothing stands, and the way on
                    # is to supersede that last one (a retired decision may be).
                    raise UserError(
                        f"memory {old.id} is already superseded, and nothing in its chain "
                        f"stands: the last, {stands.id} ({stands.text[:60]!r}), was retired; "
                        f"supersede {stands.id} to carry the chain on"
                    )
                if _width(new.scope) < _width(old.scope):
                    raise UserError(
                        f"memory {old.id} is a {old.scope} decision; a {new.scope} decision "
                        "cannot replace it for everyone who sees it: use --scope "
                        f"{old.scope} or wider"
                    )
            if same is not None and old is None:
                found = self._same(db, owner, new.scope, kind, text, same, candidates)
                if found is not None:
                    db.execute(
                        "UPDATE memories SET count = count + 1, seen_at = ? WHERE id = ?",
                        (now, found),
                    )
                    self._event(db, team_id, "memory_reinforced", {"id": found}, new.author)
                    return self._memory_row(db, team_id, team, found), True
            memory_id = self._insert_memory(
                db,
                owner,
                new.scope,
                kind.value,
                text,
                sorted(set(new.tags)),
                "active",
                new.author,
                new.task_id,
                new.session,
                now,
                now,
                1,
                new.supersedes,
            )
            if old is not None:
                # A retired decision stays retired: it was let go before it was replaced.
                db.execute(
                    "UPDATE memories SET superseded_by = ?, status = CASE status "
                    "WHEN 'active' THEN 'superseded' ELSE status END WHERE id = ?",
                    (memory_id, old.id),
                )
            self._event(
                db,
                team_id,
                "memory_added",
                {
                    "id": memory_id,
                    "type": kind.value,
                    "scope": new.scope,
                    "supersedes": new.supersedes,
                },
                new.author,
            )
            return self._memory_row(db, team_id, team, memory_id), False

    def _same(
        self,
        db: Connection,
        owner: int | None,
        scope: str,
        kind: MemoryType,
        text: str,
        same: Callable[[str, str], bool],
        candidates: Sequence[str],
    ) -> int | None:
        where = "m.status = 'active' AND m.type = ? AND m.scope = ? AND " + (
            "m.team_id IS NULL" if owner is None else "m.team_id = ?"
        )
        args = (kind.value, scope) if owner is None else (kind.value, scope, owner)
        exact = db.execute(
            f"SELECT m.id FROM memories m WHERE {where} AND m.text = ? LIMIT 1", (*args, text)
        ).fetchone()
        if exact is not None:
            found: int = exact[0]
            return found
        terms = _terms(candidates)
        if not terms:
            return None
        for row in self._search(db, MemorySearch(terms, (), where, args, 10)):
            if same(row[4], text):
                return int(row[0])
        return None

    @atomic
    def get_memory(self, team: str, memory_id: int) -> MemoryEntry:
        with self._read() as db:
            return self._memory_row(db, self._team_id(db, team), team, memory_id)

    @atomic
    def list_memories(
        self,
        team: str,
        *,
        type: MemoryType | None = None,
        status: MemoryStatus | None = None,
        scopes: Sequence[str] | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[MemoryEntry]:
        with self._read() as db:
            team_id = self._team_id(db, team)
            where, args = self._visible(team_id, scopes)
            if ids is not None:
                among, arg = self._among("m.id", ids)
                where += f" AND {among}"
                args.append(arg)
            if type is not None:
                where += " AND m.type = ?"
                args.append(type.value)
            if status is not None:
                where += " AND m.status = ?"
                args.append(status.value)
            rows = db.execute(
                f"SELECT {self._MEMORY_COLUMNS} FROM memories m WHERE {where} "
                "ORDER BY m.id DESC LIMIT ?",
                (*args, self._NO_LIMIT if limit is None else limit),
            ).fetchall()
        return [self._memory(team, r) for r in rows]

    @atomic
    def search_memories(
        self,
        team: str,
        words: Sequence[str],
        *,
        must: Sequence[str] = (),
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool = False,
        limit: int = 50,
    ) -> list[Candidate]:
        required = _terms(must)
        scored = _terms([*words, *must])
        if not scored or not types or limit < 1:
            return []
        with self._read() as db:
            team_id = self._team_id(db, team)
            where, args = self._visible(team_id, scopes)
            states = "('active', 'superseded')" if include_superseded else "('active')"
            marks = ",".join("?" * len(types))
            rows = self._search(
                db,
                MemorySearch(
                    scored,
                    required,
                    f"{where} AND m.status IN {states} AND m.type IN ({marks})",
                    (*args, *[t.value for t in types]),
                    limit,
                ),
            )
        return [Candidate(self._memory(team, r[:15]), float(r[15])) for r in rows]

    @atomic
    def memory_matches(self, words: Sequence[str]) -> tuple[int, list[int]]:
        with self._read() as db:
            counted = db.execute("SELECT entries FROM memory_count").fetchone()
            total: int = counted[0] if counted else 0
            docs: dict[str, int] = {}
            for term in _terms(words):
                row = db.execute("SELECT doc FROM memory_vocab WHERE term = ?", (term,)).fetchone()
                docs[term] = row[0] if row else 0
        # A word the tokenizer splits ("foo-bar") is in at most as many entries as its
        # rarest part.
        return total, [min((docs[t] for t in _terms([w])), default=0) for w in words]

    @atomic
    def set_memory_vectors(
        self, team: str, model: str, vectors: Sequence[tuple[int, bytes]]
    ) -> None:
        with self._write() as db:
            team_id = self._team_id(db, team)
            for memory_id, vector in vectors:
                self._memory_row(db, team_id, team, memory_id)
                db.execute(
                    "INSERT INTO memory_vectors (model, memory_id, vector) VALUES (?, ?, ?) "
                    "ON CONFLICT (model, memory_id) DO UPDATE SET vector = excluded.vector",
                    (model, memory_id, bytes(vector)),
                )

    def _vectors_where(
        self,
        team_id: int,
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool,
    ) -> tuple[str, list[Any]]:
        """The entries (m) whose vectors (v) ``search_memories`` would consider."""
        where, args = self._visible(team_id, scopes)
        states = "('active', 'superseded')" if include_superseded else "('active')"
        marks = ",".join("?" * len(types))
        return (
            f"{where} AND m.status IN {states} AND m.type IN ({marks})",
            [*args, *[t.value for t in types]],
        )

    @atomic
    def memory_vectors(
        self,
        team: str,
        model: str,
        *,
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool = False,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, bytes]]:
        if not types:
            return []
        with self._read() as db:
            team_id = self._team_id(db, team)
            where, args = self._vectors_where(team_id, scopes, types, include_superseded)
            if ids is not None:
                # on the vectors' key, so asking for a few never scans a model's every one
                among, arg = self._among("v.memory_id", ids)
                where += f" AND {among}"
                args.append(arg)
            rows = db.execute(
                "SELECT v.memory_id, v.vector FROM memory_vectors v "
                "JOIN memories m ON m.id = v.memory_id "
                f"WHERE v.model = ? AND {where} ORDER BY v.memory_id LIMIT ?",
                (model, *args, self._NO_LIMIT if limit is None else limit),
            ).fetchall()
        return [(int(i), bytes(v)) for i, v in rows]

    @atomic
    def count_memory_vectors(
        self,
        team: str,
        model: str,
        *,
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool = False,
        up_to: int,
    ) -> int:
        if not types:
            return 0
        with self._read() as db:
            team_id = self._team_id(db, team)
            where, args = self._vectors_where(team_id, scopes, types, include_superseded)
            count: int = db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM memory_vectors v "
                "JOIN memories m ON m.id = v.memory_id "
                f"WHERE v.model = ? AND {where} LIMIT ?) AS found",
                (model, *args, up_to),
            ).fetchone()[0]
        return count

    @atomic
    def memories_without_vector(
        self, team: str, model: str, *, after: int = 0, limit: int
    ) -> list[MemoryEntry]:
        with self._read() as db:
            team_id = self._team_id(db, team)
            # +m.team_id: walk the entries in id order from `after` rather than through
            # the scope index, so each batch of a long reindex starts where the last ended
            rows = db.execute(
                f"SELECT {self._MEMORY_COLUMNS} FROM memories m "
                "WHERE m.id > ? AND (+m.team_id = ? OR +m.team_id IS NULL) "
                "AND m.type != 'story' AND m.status != 'retired' AND NOT EXISTS "
                "(SELECT 1 FROM memory_vectors v WHERE v.model = ? AND v.memory_id = m.id) "
                "ORDER BY m.id LIMIT ?",
                (after, team_id, model, limit),
            ).fetchall()
        return [self._memory(team, r) for r in rows]

    @atomic
    def retire_memory(self, team: str, memory_id: int, actor: str | None = None) -> MemoryEntry:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._serialize_memory(db)
            entry = self._memory_row(db, team_id, team, memory_id)
            if entry.status != MemoryStatus.RETIRED:
                db.execute("UPDATE memories SET status = 'retired' WHERE id = ?", (memory_id,))
                self._event(db, team_id, "memory_retired", {"id": memory_id}, actor)
            return dataclasses.replace(entry, status=MemoryStatus.RETIRED)

    @atomic
    def import_memories(
        self, team: str, entries: Sequence[MemoryEntry], actor: str | None = None
    ) -> list[MemoryEntry]:
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._serialize_memory(db)
            new_ids: dict[int, int] = {}
            for e in entries:
                owner = self._scope_owner(db, team_id, team, e.scope)
                _cap(e.text, MAX_MEMORY, "a memory")
                new_ids[e.id] = self._insert_memory(
                    db,
                    owner,
                    e.scope,
                    e.type.value,
                    e.text,
                    sorted(set(e.tags)),
                    e.status.value,
                    e.author,
                    e.task_id,
                    e.session,
                    e.created_at,
                    e.seen_at,
                    e.count,
                    None,
                )
            for e in entries:
                links = (
                    new_ids.get(e.supersedes) if e.supersedes else None,
                    new_ids.get(e.superseded_by) if e.superseded_by else None,
                )
                if any(links):
                    db.execute(
                        "UPDATE memories SET supersedes = ?, superseded_by = ? WHERE id = ?",
                        (*links, new_ids[e.id]),
                    )
            self._event(db, team_id, "memories_imported", {"count": len(entries)}, actor)
            return [self._memory_row(db, team_id, team, i) for i in new_ids.values()]

    @atomic
    def set_continuity(self, team: str, member: str, text: str) -> ContinuityNote:
        text = text.strip()
        if not text:
            raise UserError("a continuity note cannot be empty")
        _cap(text, MAX_CONTINUITY, "a continuity note")
        with self._write() as db:
            team_id = self._team_id(db, team)
            self._member_row(db, team_id, team, member, lock=self._LOCK_ROW)
            version = db.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM continuity WHERE team_id = ? "
                "AND member = ?",
                (team_id, member),
            ).fetchone()[0]
            now = self.clock()
            db.execute(
                "INSERT INTO continuity (team_id, member, version, text, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (team_id, member, version, text, now),
            )
            self._event(
                db, team_id, "continuity_written", {"member": member, "version": version}, member
            )
            return ContinuityNote(member, version, text, now)

    @atomic
    def continuity(self, team: str, member: str, *, history: bool = False) -> list[ContinuityNote]:
        with self._read() as db:
            team_id = self._team_id(db, team)
            self._member_row(db, team_id, team, member)
            rows = db.execute(
                "SELECT version, text, at FROM continuity WHERE team_id = ? AND member = ? "
                f"ORDER BY version {'ASC' if history else 'DESC LIMIT 1'}",
                (team_id, member),
            ).fetchall()
        return [ContinuityNote(member, v, t, a) for v, t, a in rows]


def _terms(words: Sequence[str]) -> list[str]:
    """The distinct index terms of ``words``, split and stemmed by the one tokenizer."""
    return list(dict.fromkeys(t for w in words for t in text_terms(w)))


def _width(scope: str) -> int:
    """How many see a scope: a member, its team, or every team of the project."""
    return {"project": 2, "team": 1}.get(scope, 0)


def _is_name(name: str) -> bool:
    try:
        check_name(name)
    except UserError:
        return False
    return True


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


def _checked_task(new: NewTask, max_attempts: int) -> tuple[str, int, list[int]]:
    """A new task's title, attempt cap and blockers, once its fields are checked."""
    title = new.title.strip()
    if not title:
        raise UserError("a task needs a title; give one as the first argument")
    _cap(title, MAX_TITLE, "the task title")
    _cap(new.description, MAX_DESCRIPTION, "the task description")
    if new.max_attempts is not None:
        max_attempts = new.max_attempts
    if max_attempts < 1:
        raise UserError("max_attempts must be at least 1")
    return title, max_attempts, sorted(set(new.blocked_by))


def _task(team: str, r: Sequence[Any], deps: list[tuple[int, str]]) -> Task:
    return Task(
        team=team,
        id=r[0],
        title=r[1],
        description=r[2],
        status=TaskStatus(r[3]),
        priority=r[4],
        assignee=r[5],
        owner=r[6],
        fencing_token=r[7],
        lease_expires_at=r[8],
        attempts=r[9],
        max_attempts=r[10],
        result=r[11],
        reason=r[12],
        created_by=r[13],
        created_at=r[14],
        updated_at=r[15],
        admitted=bool(r[16]),
        plan_key=r[17],
        blocked_by=tuple(b for b, _ in deps),
        waiting_on=tuple(b for b, s in deps if s != "completed"),
        dead_blockers=tuple(b for b, s in deps if s in ("failed", "cancelled")),
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
    )
