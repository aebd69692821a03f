"""Claim-and-complete throughput of the board on SQLite and PostgreSQL, each beside the
physical limit of its database here.

Each cycle is what a real member does: ``Board.claim`` in one transaction, then
``Board.complete`` in another. The baseline ("raw") is the cheapest claim each
database can do on this machine: SQLite, one ``UPDATE ... WHERE id = (SELECT ...
LIMIT 1)`` committed per cycle through the standard ``sqlite3`` module, in WAL mode;
PostgreSQL, the same UPDATE with ``FOR UPDATE SKIP LOCKED`` in the subquery,
autocommitted through psycopg. Each with the same ``synchronous`` setting
(PostgreSQL: ``synchronous_commit``) and the same number of processes. Every
worker is its own OS process with its own connection.

    python bench/claims.py                 # 2,000 tasks, 1/8/16 processes, FULL and NORMAL
    python bench/claims.py --quick         # fewer tasks and one round: a smoke run
    python bench/claims.py --procs 16,64 --backends sqlite,postgres
    python bench/claims.py --postgres postgresql://me@db.example/scratch
    python bench/claims.py --count         # statements per cycle, and which

The second baseline ("files") is the layout Claude Code's agent teams use, written
for this bench: one JSON file per task in a folder; a claim creates the task's lock
file with O_CREAT|O_EXCL, reads and rewrites the task's JSON and removes the lock, and
a completion does the same (FULL fsyncs each rewrite, NORMAL does not). It has no
database, so it is measured once per sync mode and process count.

PostgreSQL runs on ``--postgres``: a server URL whose user may create databases,
``private`` (a cluster of its own, started in a temporary folder, with fsync on
and room for 400 connections), or, by default, a private cluster when this
machine can run one, else the test server (see ``accord.testing.pg``). Each
measurement gets a new database, dropped after it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import multiprocessing as mp
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

TEAM = "bench"
LEASE = 600.0  # long enough that no lease runs out during a run
# Flat-out contention can starve one process of the write lock for seconds (SQLite's
# busy handler is not fair); this bench measures throughput, so it waits that out.
BUSY_TIMEOUT = 120.0
CTX = mp.get_context("spawn")
START_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Run:
    """What one worker did: its cycles, when it started and finished (time.time()),
    and its longest single call (a claim, a complete, or one raw UPDATE)."""

    cycles: int
    started: float
    finished: float
    worst: float


# workers (each in its own process) ----------------------------------------------


def pg_raw_worker(url: str, sync: str, member: str, barrier: Barrier, results: Any) -> None:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"SET synchronous_commit = {'off' if sync == 'normal' else 'on'}")
    claim = (
        "UPDATE t SET status = 'done', owner = %s WHERE id = (SELECT id FROM t "
        "WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    )

    def once() -> bool | None:
        if conn.execute(claim, (member,)).rowcount:
            return True
        # Rows that other workers hold are skipped: empty only when all are done.
        left = conn.execute("SELECT 1 FROM t WHERE status = 'pending' LIMIT 1").fetchone()
        return None if left else False

    raw_loop(once, barrier, results)
    conn.close()


def raw_loop(once: Any, barrier: Barrier, results: Any) -> None:
    """Time ``once()`` (one autocommitted claim: True, nothing left: False, nothing
    free this time: None) until the table is done; report it."""
    barrier.wait(START_TIMEOUT)
    started = time.time()
    cycles = 0
    worst = 0.0
    while True:
        t0 = time.perf_counter()
        claimed = once()
        worst = max(worst, time.perf_counter() - t0)
        if claimed is False:
            break
        cycles += bool(claimed)
    results.put(Run(cycles, started, time.time(), worst))


def ours_worker(path: str, sync: str, member: str, barrier: Barrier, results: Any) -> None:
    from accord.store import open_store
    from accord.team.board import Board

    store = open_store(path, synchronous=sync, busy_timeout=BUSY_TIMEOUT)  # type: ignore[arg-type]
    board = Board(store, TEAM)
    barrier.wait(START_TIMEOUT)
    started = time.time()
    cycles = 0
    worst = 0.0
    while True:
        t0 = time.perf_counter()
        claim = board.claim(member, lease_seconds=LEASE)
        t1 = time.perf_counter()
        if claim is None:
            break
        board.complete(claim.task.id, member, claim.fencing_token, result="ok")
        worst = max(worst, t1 - t0, time.perf_counter() - t1)
        cycles += 1
    results.put(Run(cycles, started, time.time(), worst))
    store.close()


def raw_worker(path: str, sync: str, member: str, barrier: Barrier, results: Any) -> None:
    db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
    db.execute(f"PRAGMA synchronous = {sync.upper()}")
    claim = (
        "UPDATE t SET status = 'done', owner = ? "
        "WHERE id = (SELECT id FROM t WHERE status = 'pending' LIMIT 1)"
    )
    # One autocommitted statement per cycle: a single write transaction each.
    raw_loop(lambda: db.execute(claim, (member,)).rowcount > 0, barrier, results)
    db.close()


def files_worker(path: str, sync: str, member: str, barrier: Barrier, results: Any) -> None:
    """Claude Code's agent-team layout: one JSON file per task in a folder; a claim or
    a completion takes the task's lock file (O_CREAT|O_EXCL), reads and rewrites the
    task's JSON, and removes the lock. FULL fsyncs each rewrite; NORMAL does not."""
    folder = Path(path)
    names = sorted(folder.glob("*.json"), key=lambda p: int(p.stem))

    def locked(task: Path, change: Any) -> bool:
        lock = task.with_suffix(".lock")
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        try:
            record = json.loads(task.read_text())
            if not change(record):
                return False
            with open(task, "w") as f:
                f.write(json.dumps(record))
                if sync == "full":
                    f.flush()
                    os.fsync(f.fileno())
            return True
        finally:
            os.close(fd)
            os.unlink(lock)

    def claim(record: dict[str, Any]) -> bool:
        if record["status"] != "pending":
            return False
        record.update(status="in_progress", owner=member)
        return True

    def complete(record: dict[str, Any]) -> bool:
        record["status"] = "completed"
        return True

    def once() -> bool | None:
        busy = False
        for task in names:  # every claim reads the task files in turn, as the layout does
            try:
                if json.loads(task.read_text())["status"] != "pending":
                    continue
            except ValueError:  # caught mid-rewrite by another worker
                busy = True
                continue
            if task.with_suffix(".lock").exists():
                busy = True
                continue
            if locked(task, claim):
                while not locked(task, complete):
                    pass  # another worker's read holds the lock for a moment
                return True
            busy = True
        return None if busy else False

    raw_loop(once, barrier, results)


# setup ------------------------------------------------------------------------


def setup_ours(path: str, tasks: int, members: list[str]) -> None:
    from accord.store import open_store
    from accord.types import NewTask

    with open_store(path, create=True, synchronous="normal") as store:
        store.create_team(TEAM)
        for name in members:
            store.add_member(TEAM, name, token_hash="bench")
        for i in range(tasks):
            store.add_task(TEAM, NewTask(title=f"task {i}"), max_attempts=3)


def setup_raw(path: str, tasks: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, status TEXT NOT NULL, owner TEXT)")
    db.execute("CREATE INDEX t_status ON t (status, id)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO t (status) VALUES ('pending')", [()] * tasks)
    db.execute("COMMIT")
    db.close()


def setup_files(path: str, tasks: int) -> None:
    folder = Path(path)
    folder.mkdir()
    for i in range(tasks):
        (folder / f"{i}.json").write_text(json.dumps({"id": i, "status": "pending", "owner": None}))


def check_files(path: str, tasks: int) -> None:
    done = sum(
        json.loads(p.read_text())["status"] == "completed" for p in Path(path).glob("*.json")
    )
    if done != tasks:
        raise SystemExit(f"error: only {done} of {tasks} task files completed")


def setup_pg_raw(url: str, tasks: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id BIGSERIAL PRIMARY KEY, status TEXT NOT NULL, owner TEXT)")
        conn.execute("CREATE INDEX t_status ON t (status, id)")
        conn.execute(
            "INSERT INTO t (status) SELECT 'pending' FROM generate_series(1, %s)", (tasks,)
        )
        conn.execute("ANALYZE t")


def check_pg_raw(url: str, tasks: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM t WHERE status = 'done'").fetchone()
    if row is None or row[0] != tasks:
        raise SystemExit(f"error: only {row and row[0]} of {tasks} raw rows claimed")


def check_ours(path: str, tasks: int) -> None:
    from accord.store import open_store
    from accord.types import TaskStatus

    with open_store(path) as store:
        done = store.list_tasks(TEAM, status=TaskStatus.COMPLETED)
    if len(done) != tasks:
        raise SystemExit(f"error: only {len(done)} of {tasks} tasks completed")


def check_raw(path: str, tasks: int) -> None:
    db = sqlite3.connect(path)
    (done,) = db.execute("SELECT count(*) FROM t WHERE status = 'done'").fetchone()
    db.close()
    if done != tasks:
        raise SystemExit(f"error: only {done} of {tasks} raw rows claimed")


# statements per cycle ---------------------------------------------------------


def count_statements(cycles: int = 20) -> tuple[float, list[str]]:
    """Statements SQLite runs per claim-and-complete cycle (``BEGIN`` and ``COMMIT``
    included), averaged over ``cycles`` cycles after a warm-up one; and the statements
    of the last cycle, first words only."""
    from accord.store import open_store
    from accord.store.sqlite import SQLiteStore
    from accord.team.board import Board

    with tempfile.TemporaryDirectory(prefix="accord-count-") as folder:
        path = str(Path(folder) / "count.db")
        setup_ours(path, cycles + 1, ["w0"])
        with open_store(path) as store:
            assert isinstance(store, SQLiteStore)
            board = Board(store, TEAM)
            seen: list[str] = []

            def cycle() -> None:
                claim = board.claim("w0", lease_seconds=LEASE)
                assert claim is not None
                board.complete(claim.task.id, "w0", claim.fencing_token, result="ok")

            cycle()  # warm-up: first-use reads (a team id, say) are not per cycle
            store._db.set_trace_callback(seen.append)
            last = 0
            for _ in range(cycles):
                last = len(seen)
                cycle()
            store._db.set_trace_callback(None)
    shown = [" ".join(s.split()[:6]) for s in seen[last:]]
    return len(seen) / cycles, shown


# one measurement --------------------------------------------------------------


@dataclass
class Target:
    """Where a measurement's store goes: a folder for SQLite files, a server for
    PostgreSQL databases (each measurement makes one and drops it)."""

    backend: str
    folder: Path
    server: str | None = None

    def place(self, kind: str, sync: str, procs: int) -> tuple[str, Any]:
        """A new empty store location, and what clears it away."""
        if self.backend == "postgres":
            from accord.testing.pg import Throwaway

            assert self.server is not None
            database = Throwaway(self.server, prefix="accord_bench")
            return database.url, database.close
        path = str(self.folder / f"{kind}-{sync}-{procs}-{time.monotonic_ns()}.db")

        def remove() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)

        return path, remove


def measure(kind: str, sync: str, procs: int, tasks: int, target: Target) -> tuple[float, float]:
    """Cycles per second for ``procs`` workers draining ``tasks`` tasks, and the
    longest single call any of them made, in seconds."""
    path, clear = target.place(kind, sync, procs)
    members = [f"w{i}" for i in range(procs)]
    pg = target.backend == "postgres"
    if kind == "ours":
        setup_ours(path, tasks, members)
        worker: Any = ours_worker
        check: Any = check_ours
    elif kind == "files":
        path = str(target.folder / f"files-{sync}-{procs}-{time.monotonic_ns()}")
        clear = functools.partial(shutil.rmtree, path, ignore_errors=True)
        setup_files(path, tasks)
        worker, check = files_worker, check_files
    else:
        (setup_pg_raw if pg else setup_raw)(path, tasks)
        worker = pg_raw_worker if pg else raw_worker
        check = check_pg_raw if pg else check_raw
    barrier = CTX.Barrier(procs)
    results = CTX.Queue()
    workers = [
        CTX.Process(target=worker, args=(path, sync, m, barrier, results), daemon=True)
        for m in members
    ]
    try:
        for w in workers:
            w.start()
        runs: list[Run] = [results.get(timeout=START_TIMEOUT + 600) for _ in workers]
        for w in workers:
            w.join(30)
            if w.exitcode != 0:
                raise SystemExit(f"error: a {kind} worker exited with {w.exitcode}")
        check(path, tasks)
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()
                w.join()
        clear()
    total = sum(r.cycles for r in runs)
    span = max(r.finished for r in runs) - min(r.started for r in runs)
    return total / span, max(r.worst for r in runs)


# machine info -----------------------------------------------------------------


def filesystem(folder: Path) -> str:
    """The mount and file system type holding ``folder``, from /proc/mounts."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    real = str(folder.resolve())
    best = ("", "unknown", "unknown")
    for line in mounts:
        device, point, fstype = line.split()[:3]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best[0]):
            best = (point, fstype, device)
    return f"{best[1]} ({best[2]} on {best[0]})"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(folder: Path) -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return [
        f"cores:   {os.cpu_count()} ({usable} usable), {cpu_model()}",
        f"sqlite:  {sqlite3.sqlite_version}, python {platform.python_version()}",
        f"os:      {platform.platform()}",
        f"folder:  {folder}, {filesystem(folder)}",
        f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min averages)",
    ]


# main -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per run (default 2000)")
    parser.add_argument("--quick", action="store_true", help="500 tasks, one round")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds per cell; the median is shown"
    )
    parser.add_argument("--procs", default="1,8,16", help="process counts (default 1,8,16)")
    parser.add_argument("--sync", default="full,normal", help="synchronous modes to run")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="stores to run (default sqlite,postgres)"
    )
    parser.add_argument(
        "--postgres", default=None, help="a server URL, or 'private' (default: see above)"
    )
    parser.add_argument("--dir", default=None, help="folder for the databases (default: tmp)")
    parser.add_argument(
        "--baselines", default="raw,files", help="raw, and files: the lock-file layout"
    )
    parser.add_argument(
        "--count", action="store_true", help="only count SQLite statements per cycle"
    )
    args = parser.parse_args(argv)
    if args.count:
        per_cycle, shown = count_statements()
        print(f"statements per claim-and-complete cycle (SQLite): {per_cycle:g}")
        for line in shown:
            print(f"  {line}")
        return 0
    baselines = set(args.baselines.split(","))
    tasks = 500 if args.quick else args.tasks
    repeat = 1 if args.quick else max(1, args.repeat)
    counts = [int(p) for p in args.procs.split(",")]
    modes = [m.strip().lower() for m in args.sync.split(",")]
    backends = [b.strip().lower() for b in args.backends.split(",")]

    with contextlib.ExitStack() as stack:
        folder, server = places(stack, args.dir, backends, args.postgres)
        print(f"run:     {tasks} tasks per cell, {repeat} round(s), median shown")
        print()
        header = (
            f"{'store':<10}{'sync':<7}{'procs':>6}{'ours cycles/s':>15}{'raw cycles/s':>14}"
            f"{'ours/raw':>10}{'ours ms/cycle':>15}{'ours worst ms':>15}{'raw worst ms':>14}"
            f"{'files cycles/s':>16}"
        )
        print(header)
        print("-" * len(header))
        lowest: dict[str, float] = {}
        files_rate: dict[tuple[str, int], float] = {}
        for sync in modes:
            for procs in counts:
                for backend in backends:
                    target = Target(backend, folder, server)
                    ours_runs = [measure("ours", sync, procs, tasks, target) for _ in range(repeat)]
                    raw_runs = [measure("raw", sync, procs, tasks, target) for _ in range(repeat)]
                    ours = statistics.median(r[0] for r in ours_runs)
                    raw = statistics.median(r[0] for r in raw_runs)
                    ours_worst = max(r[1] for r in ours_runs) * 1000
                    raw_worst = max(r[1] for r in raw_runs) * 1000
                    lowest[backend] = min(lowest.get(backend, float("inf")), ours / raw)
                    # The lock-file layout has no backend: measured once per row pair.
                    files = files_rate.get((sync, procs))
                    if files is None and "files" in baselines:
                        runs = [measure("files", sync, procs, tasks, target) for _ in range(repeat)]
                        files = files_rate[(sync, procs)] = statistics.median(r[0] for r in runs)
                    print(
                        f"{backend:<10}{sync.upper():<7}{procs:>6}{ours:>15,.0f}{raw:>14,.0f}"
                        f"{ours / raw:>10.2f}{1000 / ours:>15.3f}{ours_worst:>15,.0f}"
                        f"{raw_worst:>14,.0f}"
                        + (f"{files:>16,.0f}" if files is not None else f"{'-':>16}"),
                        flush=True,
                    )
        print()
        for backend, ratio in lowest.items():
            verdict = "meets" if ratio >= 1 / 3 else "misses"
            print(f"lowest ours/raw, {backend}: {ratio:.2f} ({verdict} the aim of >= 0.33)")
        print("worst ms: the longest single claim/complete call (raw: UPDATE) in the cell")
    return 0


def places(
    stack: contextlib.ExitStack, folder: str | None, backends: list[str], postgres: str | None
) -> tuple[Path, str | None]:
    """A temporary folder for SQLite files and, when PostgreSQL runs, a server (see
    ``accord.testing.pg.bench_server``), both gone when ``stack`` closes; prints the
    machine they are on first."""
    tmp = tempfile.TemporaryDirectory(prefix="accord-bench-", dir=folder)
    where = Path(stack.enter_context(tmp))
    for line in machine(where):
        print(line)
    if "postgres" not in backends:
        return where, None
    from accord.testing.pg import bench_server

    server, shown = stack.enter_context(bench_server(postgres))
    print(f"postgres: {postgres_version(server)}, on {shown}")
    return where, server


def postgres_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}, psycopg {psycopg.__version__}"


if __name__ == "__main__":
    sys.exit(main())
