"""The PostgreSQL store: one database shared by members on many machines.

Each operation of ``accord.store.sql`` runs in one transaction on a connection from a small
``psycopg_pool`` pool. Writes run at READ COMMITTED with explicit locks, in the
order the docstring of ``accord.store.sql`` gives: a write that changes a team's shape first takes
the team's turn (an advisory lock), so those writes follow one another as on
SQLite and each sees the last one's commit; mailboxes and transcripts take their
member's row, claims and completions their task's row (a claim picks its task
with ``FOR NO KEY UPDATE SKIP LOCKED``, so claims choose different tasks side by
side); teams never wait for each other. The team's row holds the event counter,
bumped in the writing transaction and held to its commit, so ``seq`` is gap-free
in commit order: a reader never sees event n+1 before event n. A write's events
(and a claim's task update) are sent with its COMMIT, as one batch the server
runs back to back, so that row is locked for no round trip of the client's.
Reads run in REPEATABLE READ READ ONLY transactions, one snapshot each; a read of
one statement (a waiter's check, an empty mailbox) runs outside any.

What can go wrong between a client and a server is retried here, so callers see
what they see with SQLite: a deadlock or a unique key taken by a concurrent
writer runs the operation again; a lost connection (the server restarted) runs
it again on a new one until ``reconnect_timeout``. A commit whose answer was lost
with the connection is not guessed at: the transaction's id, taken when it
began, tells whether it committed, so an operation is never done twice.

Waking: every write sends ``NOTIFY`` in its transaction, and ``change_marker``
reads what arrived on a listening connection of its own without a round trip.
Because notifications are lost while that connection is down, the marker also
polls the teams' event counters every ``POLL_SECONDS``. Members' live output
(``set_live``) is the one write that sends no ``NOTIFY`` and touches no counter:
it changes no state a waiter looks for, and comes several times a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import random
import re
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import psycopg
import psycopg.errors
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout

from accord.errors import (
    Reason,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreNotFound,
    StoreUnavailable,
    UserError,
)
from accord.location import redact
from accord.store.bells import EVERYONE, Bell, EventBell
from accord.store.limits import Clock
from accord.store.migrations import ACCORD_MIGRATIONS, Schema, pending, render
from accord.store.sql import Conflict, Connection, MemorySearch, SQLStore

R = TypeVar("R")
PgConnection = psycopg.Connection[TupleRow]

# The pool reports each connection it drops or fails to open; the store retries those
# itself and says so in its own errors, so they are not printed (an application that
# configures logging still receives them).
logging.getLogger("psycopg").addHandler(logging.NullHandler())

POOL_SIZE = 3  # per store; PostgreSQL allows 100 connections by default
CONNECT_SECONDS = 10  # to open a connection
POOL_WAIT_SECONDS = 2.0  # for a pooled connection, before opening one of its own
RECONNECT_SECONDS = 30.0  # how long operations retry while the server is unreachable
POLL_SECONDS = 0.1  # the change marker's fallback poll
LISTEN_RETRY_SECONDS = 1.0
LISTEN_CONNECT_SECONDS = 2  # a waiter blocks on this while the server is away
MAX_CONFLICTS = 50
IDLE_IN_TRANSACTION_MS = 60_000  # a client that vanished mid-transaction frees its locks
_MIGRATION_LOCK = 0x61636364  # "accd": the advisory lock class of migrations
_COUNTERS = "SELECT count(*), COALESCE(sum(last_seq), 0), COALESCE(max(id), 0) FROM teams"
_LOST = ("57P01", "57P02", "57P03")  # the server shut down, crashed, or is starting
_RACES = ("40001", "40P01", "23505")  # serialization, deadlock, a unique key taken first


class _Unreachable(Exception):
    """The connection was lost before the transaction committed; try again."""


@functools.lru_cache(maxsize=2048)
def _spelled(statement: str) -> str:
    """``accord.store.sql``'s SQL as psycopg takes it: ``%s`` placeholders, and a plain JOIN for
    SQLite's CROSS JOIN ... ON (a join-order hint there; these sessions keep every
    join in its written order, see ``_settings``)."""
    return statement.replace("%", "%%").replace("?", "%s").replace("CROSS JOIN", "JOIN")


class _Translating:
    """A psycopg connection that runs ``accord.store.sql``'s statements, and what its transaction
    added to the memory index (counted once, at its end: see ``_Tally``)."""

    __slots__ = ("_conn", "late", "rings", "tally")

    def __init__(self, conn: PgConnection) -> None:
        self._conn = conn
        self.tally = _Tally()
        self.late: list[sql.Composable] = []  # sent with the commit
        self.rings: dict[int, set[str]] = {}  # whom the commit rings, by team id

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self._conn.execute(_spelled(statement), tuple(parameters))

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> object:
        with self._conn.cursor() as cur:
            cur.executemany(_spelled(statement), parameters)
        return None

    def later(self, statement: str, parameters: Sequence[Any] = ()) -> None:
        """Queue a statement whose result nobody reads, values quoted by psycopg, to be
        sent with the commit."""
        with psycopg.ClientCursor(self._conn) as cur:
            self.late.append(sql.SQL(cur.mogrify(_spelled(statement), tuple(parameters))))


class PostgresStore(SQLStore):
    """A store in a PostgreSQL database (or one schema of it, named by ``search_path``)."""

    _NO_LIMIT = None
    # A team's turn is an advisory lock: the teams row itself holds the counters, which
    # claims take without a turn (see ``accord.store.sql``), and a lock keyed by schema and team
    # keeps two stores in one database apart.
    _TAKE_TURN = "pg_advisory_xact_lock(hashtext(current_schema()), id::integer)"
    _LOCK_ROW = " FOR NO KEY UPDATE"
    _FOR_UPDATE = " FOR UPDATE"
    _KEY_SHARE = " FOR KEY SHARE"
    _SKIP_LOCKED = " FOR NO KEY UPDATE OF t SKIP LOCKED"

    def __init__(
        self,
        url: str,
        *,
        create: bool = False,
        synchronous: Literal["full", "normal"] = "full",
        busy_timeout: float = 5.0,
        clock: Clock = time.time,
        pool_size: int = POOL_SIZE,
        reconnect_timeout: float = RECONNECT_SECONDS,
    ) -> None:
        self.location = url
        self.shown = redact(url)
        self.clock = clock
        self.busy_timeout = busy_timeout
        self.reconnect_timeout = reconnect_timeout
        self._closed = False
        self._own_commits = 0
        self._local = threading.local()
        self._settings = [
            # "normal" is SQLite's promise too: a crash of the server may lose the last
            # commits, never corrupts, and a killed client loses nothing.
            f"SET synchronous_commit = {'off' if synchronous == 'normal' else 'on'}",
            f"SET lock_timeout = {int(busy_timeout * 1000)}",
            f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}",
            # Joins run in the order they are written, as SQLite runs CROSS JOIN: accord.store.sql
            # writes each in its best order, and a young table without statistics must
            # not turn a walk from the few dependency rows into a cross product of tasks.
            "SET join_collapse_limit = 1",
        ]
        check_url(url)
        with _connect(url, self.shown) as conn, self._errors():
            schema = conn.execute("SELECT current_schema()").fetchone()
            if schema is None or schema[0] is None:
                raise StoreError(
                    f"{self.shown} names no schema that exists (see its search_path); "
                    "create the schema, or drop the search_path option"
                )
            self.schema: str = schema[0]
            self._migrate(conn, create)
        channel = sql.Identifier(f"accord {self.schema}")
        self._listen_all = sql.SQL("LISTEN {}").format(channel)
        self._commit: sql.Composable = sql.SQL("NOTIFY {}; COMMIT").format(channel)
        self._pool: ConnectionPool[PgConnection] = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_SECONDS,
                "application_name": "accord",
            },
            configure=self._configure,
            reconnect_timeout=max(reconnect_timeout, 60.0),
            name="accord",
            open=False,
        )
        self._pool.open(wait=False)
        self._changes = _Changes(self)
        self._bells = _Bells(self)

    def _configure(self, conn: PgConnection) -> None:
        for setting in self._settings:
            conn.execute(setting)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._changes.close()
        self._bells.close()
        self._pool.close(timeout=5)

    # schema ------------------------------------------------------------------------

    def _migrate(self, conn: PgConnection, create: bool) -> None:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
        if not tables and not create:
            raise StoreNotFound(
                f"no accord store in {self.shown} (the database is empty)",
                location=self.shown,
                reason=Reason.NO_STORE,
            )
        if tables and "accord_migrations" not in tables:
            raise StoreCorrupt(
                f"{self.shown} holds tables that are not an accord store; give accord a "
                "database of its own (createdb accord), or a schema of its own "
                "(?options=-csearch_path%3Daccord)"
            )
        if tables and not pending(self._applied(conn), self.shown):
            return
        # Two processes opening a fresh database at once take turns here; the second
        # finds the work done.
        with conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))",
                (_MIGRATION_LOCK,),
            )
            conn.execute(render(ACCORD_MIGRATIONS, "postgres"))
            schema = Schema("postgres", _Translating(conn))
            for name, fn in pending(self._applied(conn), self.shown):
                fn(schema)
                conn.execute(
                    "INSERT INTO accord_migrations (name, applied_at) VALUES (%s, %s)",
                    (name, self.clock()),
                )

    @staticmethod
    def _applied(conn: PgConnection) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM accord_migrations")}

    # transactions ----------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[PgConnection]:
        if self._closed:
            raise StoreError(f"the store {self.shown} is closed")
        try:
            conn = self._pool.getconn(timeout=POOL_WAIT_SECONDS)
        except PoolTimeout:
            # Every pooled connection is busy, or the pool is waiting out its backoff
            # after the server went away (it doubles each time, up to minutes): a
            # connection of this operation's own goes as soon as the server is back.
            with self._own_connection() as own:
                yield own
            return
        try:
            yield conn
        finally:
            self._pool.putconn(conn)  # a broken connection is dropped, not reused

    @contextmanager
    def _own_connection(self) -> Iterator[PgConnection]:
        try:
            conn = psycopg.connect(
                self.location,
                autocommit=True,
                connect_timeout=CONNECT_SECONDS,
                application_name="accord",
            )
        except psycopg.Error as e:
            raise _Unreachable(_first_line(str(e))) from e
        try:
            try:
                self._configure(conn)
            except psycopg.Error as e:
                raise _Unreachable(_first_line(str(e))) from e
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._connection() as conn:
            try:
                with self._errors():
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    yield _Translating(conn)
                    conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def _peek(self) -> Iterator[Connection]:
        with self._connection() as conn, self._errors():
            yield _Translating(conn)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._connection() as conn:
            xid: int | None = None
            try:
                with self._errors():
                    # Its id tells later whether it committed, should the answer be lost;
                    # one round trip for both (several statements, no parameters).
                    began = conn.execute("BEGIN; SELECT txid_current()")
                    began.nextset()
                    row = began.fetchone()
                    xid = row[0] if row else None
                    db = _Translating(conn)
                    yield db
                    db.tally.write(db)
            except BaseException:
                _rollback(conn)
                raise
            try:
                with self._errors():
                    # The events, NOTIFY and COMMIT travel together: the server runs them
                    # back to back, so the team's counters are locked for no round trip.
                    rings = [self._bells.notify(t, m) for t, m in db.rings.items()]
                    conn.execute(sql.SQL("; ").join([*db.late, *rings, self._commit]))
            except _Unreachable:
                # The answer was lost, not necessarily the commit: ask the server.
                if xid is None or not self._committed(xid):
                    raise
            except BaseException:
                _rollback(conn)
                raise
            self._own_commits += 1

    @contextmanager
    def _live(self, *, read: bool = False) -> Iterator[Connection]:
        # One statement each, in autocommit: no NOTIFY, no counter, not an own commit.
        with self._connection() as conn, self._errors():
            yield _Translating(conn)

    def _committed(self, xid: int) -> bool:
        """Whether transaction ``xid``, whose COMMIT lost its answer, did commit."""
        deadline = time.monotonic() + self.reconnect_timeout
        while True:
            try:
                with psycopg.connect(
                    self.location, autocommit=True, connect_timeout=CONNECT_SECONDS
                ) as conn:
                    row = conn.execute("SELECT txid_status(%s)", (xid,)).fetchone()
                status: str | None = row[0] if row else None
                if status in ("committed", "aborted"):
                    return status == "committed"
                if status is None:
                    raise StoreError(
                        f"lost the answer to a commit on {self.shown} and cannot learn "
                        "whether it happened; check the last change before repeating it"
                    )
            except psycopg.OperationalError:
                pass  # still unreachable, or the old session is still ending
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"lost the connection to {self.shown} while committing and could not "
                    f"reconnect within {self.reconnect_timeout:g}s; is the server up?"
                )
            time.sleep(0.2)

    def _attempt(self, call: Callable[[], R]) -> R:
        if getattr(self._local, "attempting", False):
            return call()  # inside another operation: that one retries
        self._local.attempting = True
        try:
            races = 0
            lost: float | None = None
            while True:
                try:
                    return call()
                except Conflict:
                    races += 1
                    if races > MAX_CONFLICTS:
                        raise StoreLocked(
                            f"the store {self.shown} kept losing races to other writers "
                            f"({races} tries); retry later"
                        ) from None
                    time.sleep(random.uniform(0, 0.002 * min(races, 10)))
                except _Unreachable as e:
                    now = time.monotonic()
                    lost = now if lost is None else lost
                    if now - lost > self.reconnect_timeout:
                        raise StoreUnavailable(
                            f"lost the connection to {self.shown} and could not reconnect "
                            f"within {self.reconnect_timeout:g}s ({_first_line(str(e))}); "
                            "is the server up?"
                        ) from e
                    time.sleep(random.uniform(0.05, 0.25))
        finally:
            self._local.attempting = False

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as e:
            raise self._error(e) from e

    def _error(self, e: psycopg.Error) -> Exception:
        state = e.sqlstate or ""
        text = _first_line(str(e))
        if state in _RACES:
            return Conflict(text)
        if (
            state in _LOST
            or state.startswith("08")
            or isinstance(e, psycopg.InterfaceError)
            or (isinstance(e, psycopg.OperationalError) and not state)
        ):
            return _Unreachable(text)
        if state == "55P03":
            return StoreLocked(
                f"the store {self.shown} stayed locked by another writer for more than "
                f"{self.busy_timeout:g}s; retry, or find the session holding it "
                "(pg_stat_activity)"
            )
        if state == "53100":
            return StoreFull(
                f"the disk of the server of {self.shown} is full; nothing was written. "
                "Free some space and retry"
            )
        if isinstance(e, psycopg.DataError) and "NUL" in text:
            return UserError("text with a NUL character cannot be stored; remove it")
        if state == "42P01":
            return StoreCorrupt(
                f"{self.shown} is missing accord's tables ({text}); was the store dropped?",
                location=self.shown,
                reason=Reason.TABLES_MISSING,
            )
        if state.startswith("53"):
            return StoreUnavailable(f"the server of {self.shown} is out of resources ({text})")
        return StoreError(f"the store {self.shown} failed: {text}")

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
        if not wanted:
            # Sent with the commit (see _write). Without the team's row the seq is NULL,
            # which the log refuses: an event is never dropped quietly.
            assert isinstance(db, _Translating)
            db.later(
                "WITH counter AS (UPDATE teams SET last_seq = last_seq + 1 WHERE id = ? "
                "RETURNING last_seq) INSERT INTO events (team_id, seq, at, actor, kind, payload) "
                "VALUES (?, (SELECT last_seq FROM counter), ?, ?, ?, ?)",
                (team_id, team_id, at, actor, kind, payload),
            )
            return None
        # One statement, one round trip: the counter and the row it numbers.
        seq, team = db.execute(
            "WITH counter AS (UPDATE teams SET last_seq = last_seq + 1 WHERE id = ? "
            "RETURNING id, last_seq, name) "
            "INSERT INTO events (team_id, seq, at, actor, kind, payload) "
            "SELECT id, last_seq, ?, ?, ?, ? FROM counter "
            "RETURNING seq, (SELECT name FROM teams WHERE id = events.team_id)",
            (team_id, at, actor, kind, payload),
        ).fetchone()
        return seq, team

    def _execute_late(self, db: Connection, statement: str, args: Sequence[Any]) -> None:
        assert isinstance(db, _Translating)
        db.later(statement, args)

    def _ring_later(self, db: Connection, team_id: int, members: frozenset[str]) -> None:
        assert isinstance(db, _Translating)
        db.rings.setdefault(team_id, set()).update(members)

    def _listen(self, team_id: int, member: str, *, watch: bool) -> Bell:
        return self._bells.listen(team_id, member, watch=watch)

    # waking -------------------------------------------------------------------------

    def change_marker(self) -> int:
        return self._changes.marker() + self._own_commits

    def _ids_given(self, db: Connection, table: str) -> None:
        db.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)"
        )

    # memory search --------------------------------------------------------------------

    def _serialize_memory(self, db: Connection) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?, 0)", (_MIGRATION_LOCK + 1,))

    def _indexed(
        self, db: Connection, memory_id: int, text: Sequence[str], tags: Sequence[str]
    ) -> None:
        assert isinstance(db, _Translating)
        counts = sorted(
            Counter(
                (field, term) for field, terms in enumerate((text, tags)) for term in terms
            ).items()
        )
        db.execute(
            "WITH terms AS (INSERT INTO memory_terms (memory_id, field, term, tf) "
            "SELECT ?, * FROM unnest(?::bigint[], ?::text[], ?::bigint[])) "
            "INSERT INTO memory_lengths (memory_id, text_len, tags_len) VALUES (?, ?, ?)",
            (
                memory_id,
                [field for (field, _), _ in counts],
                [term for (_, term), _ in counts],
                [n for _, n in counts],
                memory_id,
                len(text),
                len(tags),
            ),
        )
        db.tally.add(text, tags)

    def _among(self, column: str, ids: Sequence[int]) -> tuple[str, Any]:
        return f"{column} = ANY(?::bigint[])", [int(i) for i in ids]

    def _search(self, db: Connection, search: MemorySearch) -> list[tuple[Any, ...]]:
        scored = list(search.scored)
        # Each scored memory's row is looked up by id (the OFFSET 0 keeps the lookup
        # inside the loop): on a store without statistics yet the planner would
        # otherwise scan every visible memory once per scored one.
        rows: list[tuple[Any, ...]] = db.execute(
            f"{_BM25} SELECT {self._MEMORY_COLUMNS}, s.relevance FROM scored s "
            ", LATERAL (SELECT * FROM memories WHERE id = s.memory_id OFFSET 0) m "
            f"WHERE s.required AND {search.where} ORDER BY s.relevance DESC, m.id LIMIT ?",
            (scored, scored, list(search.required) or scored, *search.args, search.limit),
        ).fetchall()
        return rows


# BM25 as FTS5 computes it (k1 = 1.2, b = 0.75, idf floored at 1e-6): each term's
# frequency in a memory weighs 1.0 in the text and 0.5 in the tags; the length is the
# memory's, over the average of all memories. The store's size, its total length and
# each term's entry count are kept beside the index (see m007), so only the scored
# terms' rows are read. Parameters: the scored terms (twice), then the terms a memory
# must hold one of.
_BM25 = """
    WITH corpus AS MATERIALIZED (
        SELECT entries::float8 AS docs, length::float8 / GREATEST(entries, 1) AS avgdl
        FROM memory_count
    ), df AS MATERIALIZED (
        SELECT term, doc::float8 AS n FROM memory_vocab WHERE term = ANY(?)
    ), hit AS (
        SELECT memory_id, term, sum(CASE WHEN field = 0 THEN tf ELSE tf * 0.5 END)::float8 AS f
        FROM memory_terms WHERE term = ANY(?) GROUP BY memory_id, term
    ), scored AS MATERIALIZED (
        SELECT h.memory_id, bool_or(h.term = ANY(?)) AS required,
            sum(GREATEST(ln((c.docs - df.n + 0.5) / (df.n + 0.5)), 1e-6) * h.f * 2.2
                / (h.f + 1.2 * (0.25 + 0.75 * (l.text_len + l.tags_len) / c.avgdl))) AS relevance
        FROM hit h JOIN df ON df.term = h.term
            JOIN memory_lengths l ON l.memory_id = h.memory_id, corpus c
        GROUP BY h.memory_id
    )"""


class _Tally:
    """The entries a write transaction added to the memory index, and how many hold
    each term, for ``memory_count`` and ``memory_vocab``: written once before the
    commit rather than per entry, because each update of a row leaves a version that
    the next update in the same transaction steps over, and an import of thousands
    of entries would step over thousands. (Deletes are counted by m007's triggers.)
    These rows are locked last, after the team's counters row, yet never waited for:
    every write that indexes or deletes entries holds the memory lock first
    (``_serialize_memory``) until it commits."""

    __slots__ = ("docs", "entries", "length")

    def __init__(self) -> None:
        self.entries = 0
        self.length = 0
        self.docs: Counter[str] = Counter()

    def add(self, text: Sequence[str], tags: Sequence[str]) -> None:
        self.entries += 1
        self.length += len(text) + len(tags)
        self.docs.update(set(text) | set(tags))

    def write(self, db: _Translating) -> None:
        if not self.entries:
            return
        terms = sorted(self.docs)  # rows locked in one order by every writer
        db.execute(
            "WITH counted AS (UPDATE memory_count SET entries = entries + ?, "
            "length = length + ? RETURNING 1) INSERT INTO memory_count (entries, length) "
            "SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM counted)",
            (self.entries, self.length, self.entries, self.length),
        )
        if terms:
            db.execute(
                "INSERT INTO memory_vocab AS v (term, doc) "
                "SELECT * FROM unnest(?::text[], ?::bigint[]) "
                "ON CONFLICT (term) DO UPDATE SET doc = v.doc + excluded.doc",
                (terms, [self.docs[t] for t in terms]),
            )
        self.entries = self.length = 0
        self.docs.clear()


class _Changes:
    """The change marker's count: notifications read off a listening connection as they
    arrive, plus a poll of the teams' counters for what a lost connection missed."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._conn: PgConnection | None = None
        self._listen_at = 0.0
        self._polled_at = float("-inf")
        self._counters: tuple[Any, ...] | None = None
        self.seen = 0

    def marker(self) -> int:
        with self._lock:
            if self._store._closed:
                return self.seen
            now = time.monotonic()
            if self._conn is None and now >= self._listen_at:
                self._start(now)
            if self._conn is not None:
                self._drain()
            if now - self._polled_at >= POLL_SECONDS:
                self._poll(now)
            return self.seen

    def close(self) -> None:
        with self._lock:
            self._drop(time.monotonic())

    def _start(self, now: float) -> None:
        try:
            conn = psycopg.connect(
                self._store.location,
                autocommit=True,
                connect_timeout=LISTEN_CONNECT_SECONDS,
                application_name="accord-listen",
            )
        except psycopg.Error:
            self._listen_at = now + LISTEN_RETRY_SECONDS
            return
        try:
            conn.execute(self._store._listen_all)
        except psycopg.Error:
            conn.close()
            self._listen_at = now + LISTEN_RETRY_SECONDS
            return
        conn.add_notify_handler(self._notified)
        self._conn = conn
        self.seen += 1  # whatever happened while nobody listened: look again

    def _notified(self, _: psycopg.Notify) -> None:
        self.seen += 1

    def _drain(self) -> None:
        """Count the notifications that reached the socket (a read that never blocks)."""
        assert self._conn is not None
        pgconn = self._conn.pgconn
        try:
            pgconn.consume_input()
            while pgconn.notifies() is not None:
                self.seen += 1
        except psycopg.Error:
            self._drop(time.monotonic())
            return
        if pgconn.status == pq.ConnStatus.BAD:
            self._drop(time.monotonic())

    def _poll(self, now: float) -> None:
        self._polled_at = now
        try:
            if self._conn is not None:
                row = self._conn.execute(_COUNTERS).fetchone()
            else:
                with self._store._pool.connection(timeout=POLL_SECONDS) as conn:
                    row = conn.execute(_COUNTERS).fetchone()
        except (psycopg.Error, PoolTimeout):
            if self._conn is not None:
                self._drop(now)
            return
        counters = tuple(row) if row else None
        if self._counters is not None and counters != self._counters:
            self.seen += 1
        self._counters = counters

    def _drop(self, now: float) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
            self.seen += 1  # a notification may have been lost with it
        self._listen_at = now + LISTEN_RETRY_SECONDS


class _Bells:
    """The bells of this store in this process, rung by ``NOTIFY`` on their teams'
    channels (``accord <schema hash> <team id>``, the payload naming the members rung:
    ``*`` everyone, empty the watchers only). One connection listens for all of them,
    read by a thread that blocks in ``select`` until the server sends something. When
    that connection drops, every bell goes deaf (its waiter polls, and says so) and
    rings once; a thread reconnects every ``LISTEN_RETRY_SECONDS``, listens again, and
    rings every bell once more for what it missed meanwhile."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._lock = threading.RLock()
        self._prefix = f"accord {hashlib.sha1(store.schema.encode()).hexdigest()[:12]} "
        self._bells: dict[int, set[_PgBell]] = {}
        self._listening: set[int] = set()  # team ids LISTENed on the current connection
        self._conn: PgConnection | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._closed = False
        self.deaf: str | None = None

    def notify(self, team_id: int, members: set[str]) -> sql.Composable:
        """The NOTIFY that rings ``members`` of the team (see ``Doorbells.ring``)."""
        payload = "*" if EVERYONE in members else "\n".join(sorted(members))
        if len(payload.encode()) > 7000:  # NOTIFY's payload holds 8000 bytes
            payload = "*"
        return sql.SQL("NOTIFY {}, {}").format(
            sql.Identifier(f"{self._prefix}{team_id}"), sql.Literal(payload)
        )

    def listen(self, team_id: int, member: str, *, watch: bool) -> Bell:
        bell = _PgBell(self, team_id, member, watch)
        with self._lock:
            if self._closed:
                return bell
            self._bells.setdefault(team_id, set()).add(bell)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="accord-bells", daemon=True)
                self._connect()
                self._thread.start()
            elif self._conn is not None and team_id not in self._listening:
                try:
                    self._listen(team_id)
                except psycopg.Error:
                    self._drop("the listening connection failed")
            self._poke()
        return bell

    def forget(self, bell: _PgBell) -> None:
        with self._lock:
            bells = self._bells.get(bell.team_id)
            if bells is not None:
                bells.discard(bell)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._poke()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
                self._conn = None
        self._wake_r.close()
        self._wake_w.close()

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"!")

    def _listen(self, team_id: int) -> None:
        assert self._conn is not None
        self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(f"{self._prefix}{team_id}")))
        self._listening.add(team_id)

    def _connect(self) -> None:
        """Open the listening connection and LISTEN for every team with a bell (under
        the lock); on failure, the bells are deaf until the next try."""
        try:
            conn = psycopg.connect(
                self._store.location,
                autocommit=True,
                connect_timeout=LISTEN_CONNECT_SECONDS,
                application_name="accord-bells",
            )
        except psycopg.Error as e:
            self._deafen(f"cannot listen on {self._store.shown}: {_first_line(str(e))}")
            return
        conn.add_notify_handler(self._notified)
        self._conn, self._listening = conn, set()
        try:
            for team_id in list(self._bells):
                self._listen(team_id)
        except psycopg.Error:
            self._drop("the listening connection failed")
            return
        if self.deaf is not None:
            self.deaf = None
            self._ring_all()  # what happened while nobody listened: look again

    def _deafen(self, why: str) -> None:
        self.deaf = f"{why}; retrying every {LISTEN_RETRY_SECONDS:g}s"
        self._ring_all()

    def _drop(self, why: str) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
        self._listening = set()
        self._deafen(f"{why} ({self._store.shown})")

    def _ring_all(self) -> None:
        for bells in self._bells.values():
            for bell in bells:
                bell.ring()

    def _notified(self, n: psycopg.Notify) -> None:
        if not n.channel.startswith(self._prefix):
            return
        try:
            team_id = int(n.channel[len(self._prefix) :])
        except ValueError:
            return
        names = None if n.payload == "*" else set(n.payload.split("\n")) if n.payload else set()
        with self._lock:
            for bell in self._bells.get(team_id, ()):
                if bell.watch or names is None or bell.member in names:
                    bell.ring()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                if self._conn is None:
                    self._connect()
                fds: list[Any] = [self._wake_r]
                if self._conn is not None:
                    try:
                        fds.append(self._conn.pgconn.socket)
                    except psycopg.Error:  # closed under us (the server went away)
                        self._drop("the listening connection dropped")
                        continue
            try:
                ready, _, _ = select.select(
                    fds, [], [], None if len(fds) > 1 else LISTEN_RETRY_SECONDS
                )
            except (OSError, ValueError):
                ready = []
            with contextlib.suppress(OSError):
                while self._wake_r.recv(64):
                    pass
            with self._lock:
                if self._closed:
                    return
                if self._conn is not None and len(ready) > (self._wake_r in ready):
                    self._read()

    def _read(self) -> None:
        """Take what the server sent (under the lock): notifications, or a lost connection."""
        assert self._conn is not None
        pgconn = self._conn.pgconn
        try:
            pgconn.consume_input()
            while (n := pgconn.notifies()) is not None:
                self._notified(psycopg.Notify(n.relname.decode(), n.extra.decode(), n.be_pid))
        except psycopg.Error:
            self._drop("the listening connection dropped")
            return
        if pgconn.status == pq.ConnStatus.BAD:
            self._drop("the listening connection dropped")


class _PgBell(EventBell):
    """A bell rung by ``_Bells``; deaf while its connection is down."""

    def __init__(self, bells: _Bells, team_id: int, member: str, watch: bool) -> None:
        super().__init__()
        self._bells = bells
        self.team_id, self.member, self.watch = team_id, member, watch

    @property
    def deaf(self) -> str | None:
        return self._bells.deaf

    def close(self) -> None:
        self._bells.forget(self)


def _rollback(conn: PgConnection) -> None:
    if conn.broken or conn.info.transaction_status == pq.TransactionStatus.IDLE:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        pass  # the pool drops a connection left in a transaction


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"


# opening ----------------------------------------------------------------------------

_URL_FORM = "write it as postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"


def check_url(url: str) -> dict[str, Any]:
    """The URL's parts; StoreError, naming what is wrong, if it is not a valid URL."""
    shown = redact(url)
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error as e:
        # libpq quotes the URL, password and all, after "in URI": keep what comes before.
        why = _first_line(str(e)).split(" in URI")[0].split(': "')[0]
        raise StoreError(f"{shown} is not a valid PostgreSQL URL ({why}); {_URL_FORM}") from e
    port = str(parts.get("port", "5432"))
    if not all(p.isdigit() and 0 < int(p) < 65536 for p in port.split(",")):
        raise StoreError(
            f"{shown} is not a valid PostgreSQL URL (port {port!r} is not a number "
            f"from 1 to 65535); {_URL_FORM}"
        )
    return parts


def _connect(url: str, shown: str) -> PgConnection:
    """A new connection, or the reason there is none, said so it can be fixed."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_SECONDS)
    except psycopg.Error as e:
        raise _connect_error(str(e), url, shown) from None


def _connect_error(text: str, url: str, shown: str) -> StoreError:
    """A clear error for psycopg's connection failure ``text`` (which never holds the
    password, but may quote the URL: it is not repeated)."""
    parts = conninfo_to_dict(url)
    host = parts.get("host") or "localhost"
    where = f"{host}:{parts.get('port') or 5432}"
    lower = text.lower()
    database = re.search(r'database "([^"]*)" does not exist', text)
    if database:
        return StoreNotFound(
            f"the server of {shown} has no database {database.group(1)!r}; create it "
            f"(createdb -h {host} -p {parts.get('port') or 5432} {database.group(1)}), "
            "or fix the name in the URL"
        )
    if (
        "password authentication failed" in lower
        or "no password supplied" in lower
        or "authentication failed" in lower
        or re.search(r'role "[^"]*" does not exist', text)
        or "pg_hba.conf" in lower
    ):
        why = "wrong user or password"
        if "no password supplied" in lower:
            why = "the server wants a password and the URL has none"
        elif "does not exist" in lower:
            why = f"no user {parts.get('user', '')!r} on that server"
        elif "pg_hba.conf" in lower:
            why = "pg_hba.conf allows no such login"
        return StoreUnavailable(
            f"PostgreSQL refused the login to {shown} ({why}); check the user and password "
            "in the URL (a password with @, : or / must be %-encoded)"
        )
    if "connection refused" in lower:
        return StoreUnavailable(
            f"nothing answers at {where} for {shown} (connection refused); start "
            "PostgreSQL there, or fix the host and port in the URL"
        )
    if "resolve host" in lower or "translate host name" in lower:
        return StoreUnavailable(
            f"the host {host!r} of {shown} is unknown; fix the host name in the URL"
        )
    if "timeout expired" in lower or "timed out" in lower:
        return StoreUnavailable(
            f"{where} did not answer within {CONNECT_SECONDS}s for {shown}; check the host, "
            "the port and any firewall between"
        )
    if "too many" in lower or "connection slots" in lower:
        return StoreUnavailable(
            f"the server of {shown} has no connection slots left; close other clients, or "
            "raise max_connections"
        )
    if "starting up" in lower or "shutting down" in lower or "recovery" in lower:
        return StoreUnavailable(f"the server of {shown} is starting or stopping; retry in a moment")
    if "invalid" in lower and ("connection option" in lower or "value" in lower):
        return StoreError(
            f"{shown} is not a valid PostgreSQL URL ({_first_line(text)}); {_URL_FORM}"
        )
    detail = _first_line(text).replace(url, shown)
    return StoreUnavailable(f"cannot connect to {shown} ({detail}); check the URL and the server")
