"""The SQLite store: one WAL-mode file shared safely by many processes on one machine.

Every write runs in ``BEGIN IMMEDIATE`` so it takes the single write lock up
front (a deferred transaction that upgrades later fails without honouring the
busy timeout). Claims are decided and marked in that one transaction, which is
what makes "a ready task is claimed by exactly one member" true across
processes. Every change appends its event in the same transaction, with the
team's sequence counter bumped in place, so the log has no gaps.

What every backend shares (each operation's logic) is in ``accord.store.sql``; this file
is the connection: pragmas, the write lock and its fair retry, SQLite's errors,
the change marker, and FTS5 for memory search (``memory_index``, with its
vocabulary ``memory_vocab`` and the ``memory_count`` its triggers keep).

Writers of one machine queue for their turn in the kernel (``flock`` on the sibling file
``accord.db-writers``) before SQLite's write lock, so a writer waiting among hundreds
sleeps instead of trying again and again (``_WriterQueue``). After each commit the bells
of the members it concerns ring (``accord.store.bells``).

Members' live output (``set_live``) is kept in a sibling file, ``accord-live.db`` beside
``accord.db``, on a connection of its own opened on first use: any commit to the store's
file moves every other connection's ``data_version``, which would wake every waiting
member several times a second while one streams. The sibling is scratch: WAL,
``synchronous=OFF``, never migrated, and safe to delete while no member is working.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from accord.errors import (
    Reason,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreNotFound,
)
from accord.store.bells import Bell, Doorbells
from accord.store.limits import Clock
from accord.store.migrations import ACCORD_MIGRATIONS, LIVE_OUTPUT, Schema, pending
from accord.store.sql import Connection, MemorySearch, SQLStore

_SHORT_BUSY_MS = 10


class SQLiteStore(SQLStore):
    """A store in one SQLite file (WAL, ``synchronous=FULL`` unless asked otherwise)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        synchronous: Literal["full", "normal"] = "full",
        busy_timeout: float = 5.0,
        clock: Clock = time.time,
    ) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._own_commits = 0  # data_version does not move for this connection's commits
        self._doorbells = Doorbells(self.path)
        self._writers = _WriterQueue(self.path.with_name(f"{self.path.name}-writers"))
        self._rings: dict[int, set[str]] = {}  # whom the open write transaction rings
        self.live_path = self.path.with_name(f"{self.path.stem}-live{self.path.suffix}")
        self._live_db: sqlite3.Connection | None = None  # opened by the first _live
        if not self.path.exists():
            if not create:
                raise StoreNotFound(
                    f"no store at {self.path}", location=str(self.path), reason=Reason.NO_STORE
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif self.path.is_dir():
            raise StoreCorrupt(f"{self.path} is a folder, not a store; pass the path of accord.db")
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        try:
            with self._errors():
                self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                # Someone else's SQLite file must be refused untouched: not switched to WAL,
                # not migrated into.
                tables = {
                    r[0]
                    for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                }
                if tables and "accord_migrations" not in tables:
                    raise StoreCorrupt(
                        f"{self.path} is a SQLite database but not an accord store",
                        location=str(self.path),
                        reason=Reason.NOT_ACCORD,
                    )
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    raise StoreError(
                        f"{self.path} cannot use WAL mode (it stays {mode!r}); "
                        "put the store on a local disk, not a network share"
                    )
                self._db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
                self._db.execute("PRAGMA foreign_keys = ON")
                self._migrate()
                # From now on writers and readers retry themselves (see _retry).
                self._db.execute(f"PRAGMA busy_timeout = {_SHORT_BUSY_MS}")
        except BaseException:
            self._db.close()
            raise

    # plumbing --------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._writers.close()
            self._db.close()
            if self._live_db is not None:
                self._live_db.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:
            text = str(e)
            if "locked" in text or "busy" in text:
                raise StoreLocked(
                    f"the store {self.path} stayed locked by another writer for more than "
                    f"{self.busy_timeout:g}s; retry, or stop the process holding it "
                    f"(fuser {self.path})"
                ) from e
            if "disk is full" in text or "database or disk is full" in text:
                raise StoreFull(
                    f"the disk holding {self.path} is full; nothing was written. "
                    "Free some space and retry"
                ) from e
            if "unable to open" in text or "readonly" in text:
                raise StoreError(
                    f"cannot write the store {self.path} ({text}); check the folder's "
                    "permissions and free space"
                ) from e
            raise StoreError(f"the store {self.path} failed: {text}") from e
        except sqlite3.DatabaseError as e:
            text = str(e)
            if "not a database" in text:
                raise StoreCorrupt(
                    f"{self.path} is not an accord store (file is not a database)",
                    location=str(self.path),
                    reason=Reason.NOT_A_DATABASE,
                ) from e
            raise StoreCorrupt(
                f"the store {self.path} is damaged ({text}); restore a backup, or try "
                f"`sqlite3 {self.path} .recover` into a new file"
            ) from e

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; rolled back whole on any error. Once it committed,
        the bells of the members its events concern ring (``accord.store.bells``)."""
        with self._lock, self._errors():
            if not self._writers.take(self.busy_timeout):
                raise sqlite3.OperationalError("database is locked")  # said as StoreLocked
            try:
                self._begin_write()
                self._rings.clear()
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                self._writers.give()
            self._own_commits += 1
            rings = list(self._rings.items())
        for team_id, members in rings:
            self._doorbells.ring(team_id, members)

    def _ring_later(self, db: Connection, team_id: int, members: frozenset[str]) -> None:
        self._rings.setdefault(team_id, set()).update(members)

    def _listen(self, team_id: int, member: str, *, watch: bool) -> Bell:
        return self._doorbells.listen(team_id, member, watch=watch)

    def _begin_write(self) -> None:
        # SQLite's own busy handler backs off to 100 ms sleeps, so under contention a
        # waiting writer can lose the lock to newcomers again and again until it times
        # out. The connection's busy timeout is kept short (_SHORT_BUSY_MS) and writers
        # retry here with short jittered sleeps up to the full deadline instead.
        self._retry("BEGIN IMMEDIATE")

    def _retry(self, *statements: str) -> None:
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                for statement in statements:
                    self._db.execute(statement)
                return
            except sqlite3.OperationalError as e:
                text = str(e)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if ("locked" not in text and "busy" not in text) or (time.monotonic() > deadline):
                    raise
            time.sleep(random.uniform(0.0002, 0.002))

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so multi-statement reads see one snapshot."""
        with self._lock, self._errors():
            # The snapshot is taken by the first read; in WAL mode that almost never
            # waits, and when it must (recovery after a crash) it is retried here.
            self._retry("BEGIN", "SELECT 1 FROM accord_migrations LIMIT 1")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    @contextmanager
    def _live(self, *, read: bool = False) -> Iterator[sqlite3.Connection]:
        """A transaction on the sibling file of live output (see the module docstring);
        a read before any member wrote there sees an empty table and creates nothing."""
        with self._lock, self._errors():
            if self._live_db is None:
                if read and not self.live_path.exists():
                    empty = sqlite3.connect(":memory:", isolation_level=None)
                    try:
                        empty.execute(LIVE_OUTPUT)
                        yield empty
                    finally:
                        empty.close()
                    return
                self._live_db = self._open_live()
            db = self._live_db
            deadline = time.monotonic() + self.busy_timeout
            while True:
                try:
                    db.execute("BEGIN" if read else "BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as e:
                    if ("locked" not in str(e) and "busy" not in str(e)) or (
                        time.monotonic() > deadline
                    ):
                        raise
                time.sleep(random.uniform(0.0002, 0.002))
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _open_live(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.live_path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
        )
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            # Scratch: a power cut may lose the last few updates of a reply still streaming.
            db.execute("PRAGMA synchronous = OFF")
            db.execute(LIVE_OUTPUT)
            db.execute(f"PRAGMA busy_timeout = {_SHORT_BUSY_MS}")
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self) -> None:
        db = self._db
        db.execute(ACCORD_MIGRATIONS)
        applied = {r[0] for r in db.execute("SELECT name FROM accord_migrations")}
        if not pending(applied, str(self.path)):
            return
        with self._write() as db:
            applied = {r[0] for r in db.execute("SELECT name FROM accord_migrations")}
            schema = Schema("sqlite", db)
            for name, fn in pending(applied, str(self.path)):
                fn(schema)
                db.execute(
                    "INSERT INTO accord_migrations (name, applied_at) VALUES (?, ?)",
                    (name, self.clock()),
                )

    # waking ----------------------------------------------------------------

    def change_marker(self) -> int:
        with self._lock, self._errors():
            version: int = self._db.execute("PRAGMA data_version").fetchone()[0]
        return (version << 32) + self._own_commits

    # memory search: FTS5 ----------------------------------------------------

    def _indexed(
        self, db: Connection, memory_id: int, text: Sequence[str], tags: Sequence[str]
    ) -> None:
        # The terms, one space apart: the ascii tokenizer splits on nothing else.
        db.execute(
            "INSERT INTO memory_index (rowid, text, tags) VALUES (?, ?, ?)",
            (memory_id, " ".join(text), " ".join(tags)),
        )

    def _among(self, column: str, ids: Sequence[int]) -> tuple[str, Any]:
        # One parameter however many ids: SQLite caps a statement's parameters.
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps([int(i) for i in ids])

    def _search(self, db: Connection, search: MemorySearch) -> list[tuple[Any, ...]]:
        scored, required, limit = search.scored, search.required, search.limit
        rest = [t for t in scored if t not in required]
        if not required or not rest:
            matches = [_any(scored)]
        else:
            # BM25 only scores the phrases in the match expression, so each term must be
            # in it exactly once: entries with a required term and another term, then
            # those with a required term only. Both are scored over every term (a term
            # an entry lacks adds nothing), so their relevances compare.
            matches = [
                f"({_any(required)}) AND ({_any(rest)})",
                f"({_any(required)}) NOT ({_any(rest)})",
            ]
        rows: list[tuple[Any, ...]] = []
        for match in matches:
            # ORDER BY rank lets FTS5 sort its matches itself, so the join and the
            # filters stop at the limit instead of running over every match.
            rows += db.execute(
                f"SELECT {self._MEMORY_COLUMNS}, -memory_index.rank "
                f"FROM memory_index JOIN memories m ON m.id = memory_index.rowid "
                f"WHERE memory_index MATCH ? AND memory_index.rank MATCH {_BM25} "
                f"AND {search.where} ORDER BY memory_index.rank LIMIT ?",
                (match, *search.args, limit),
            ).fetchall()
        rows.sort(key=lambda r: (-r[15], r[0]))
        return rows[:limit]


class _WriterQueue:
    """Writers of one store on this machine take turns in the kernel's queue for a lock
    file beside it (``accord.db-writers``), before SQLite's write lock.

    SQLite has no queue for its write lock: a writer that finds it taken can only try
    again later. With a few writers that costs nothing; with 200 members writing at
    once, each write cost dozens of tries and most of the machine's CPU went on them.
    ``flock`` instead puts a waiter to sleep in the kernel and wakes it when the lock
    is free, in turn. The wait still ends at the busy timeout (a helper thread sleeps
    in ``flock`` while the writer waits with a deadline), so a holder that hangs is
    reported as before. The lock dies with its process, however it dies. A writer that
    does not take it (another program, an older accord) still meets SQLite's own lock,
    which every writer takes after this one (``_begin_write``).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None  # opened (and made) by the first write
        self._waiter: threading.Thread | None = None  # started by the first wait
        self._asks: queue.SimpleQueue[_Ask | None] = queue.SimpleQueue()

    def take(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for our turn; False if it did not come."""
        if self._fd is None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self._fd = -1  # a folder we may not write: SQLite's lock alone
        if self._fd < 0:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError:
            return True
        # Wait in the kernel, from this store's waiting thread (started once), for as long
        # as the caller may: a flock cannot be given a deadline, a thread's wait can.
        ask = _Ask()
        if self._waiter is None:
            self._waiter = threading.Thread(
                target=self._wait_in_kernel,
                args=(os.dup(self._fd),),
                daemon=True,
                name="accord-writer-turn",
            )
            self._waiter.start()
        self._asks.put(ask)
        if ask.won.wait(timeout):
            return True
        with ask.state:
            if ask.won.is_set():
                return True
            ask.abandoned = True
        return False

    def _wait_in_kernel(self, fd: int) -> None:
        try:
            while (ask := self._asks.get()) is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError:
                    ask.won.set()  # no lock to be had: SQLite's lock alone
                    continue
                with ask.state:
                    if ask.abandoned:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    else:
                        ask.won.set()
        finally:
            os.close(fd)

    def give(self) -> None:
        if self._fd is not None and self._fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._waiter is not None:
            self._asks.put(None)  # it ends after the wait it is in, if any
        if self._fd is not None and self._fd >= 0:
            os.close(self._fd)
        self._fd = -1


class _Ask:
    """One writer's wait for its turn, as the waiting thread sees it."""

    def __init__(self) -> None:
        self.won = threading.Event()
        self.state = threading.Lock()
        self.abandoned = False


_BM25 = "'bm25(1.0, 0.5)'"  # a term in the text weighs 1.0, in the tags 0.5


def _any(terms: Sequence[str]) -> str:
    """An FTS5 expression matching any of ``terms``; each is quoted, so none is syntax
    (the tokenizer leaves no quote in a term)."""
    return " OR ".join(f'"{t}"' for t in terms)
