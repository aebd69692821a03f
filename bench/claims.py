"""Claim-and-complete throughput of the board, beside the physical limit of SQLite here.

Each cycle is what a real member does: ``Board.claim`` in one transaction, then
``Board.complete`` in another. The baseline ("raw") is the cheapest claim SQLite
can do on this machine: one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1)``
committed per cycle through the standard ``sqlite3`` module, in WAL mode, with
the same ``synchronous`` setting and the same number of processes. Every worker
is its own OS process with its own connection.

    python bench/claims.py                 # 2,000 tasks, 1/4/8 processes, FULL and NORMAL
    python bench/claims.py --quick         # fewer tasks and one round: a smoke run
    python bench/claims.py --tasks 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
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
    barrier.wait(START_TIMEOUT)
    started = time.time()
    cycles = 0
    worst = 0.0
    while True:
        # One autocommitted statement per cycle: a single write transaction each.
        t0 = time.perf_counter()
        claimed = db.execute(claim, (member,)).rowcount
        worst = max(worst, time.perf_counter() - t0)
        if not claimed:
            break
        cycles += 1
    results.put(Run(cycles, started, time.time(), worst))
    db.close()


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


# one measurement --------------------------------------------------------------


def measure(kind: str, sync: str, procs: int, tasks: int, folder: Path) -> tuple[float, float]:
    """Cycles per second for ``procs`` workers draining ``tasks`` tasks, and the
    longest single call any of them made, in seconds."""
    path = str(folder / f"{kind}-{sync}-{procs}-{time.monotonic_ns()}.db")
    members = [f"w{i}" for i in range(procs)]
    if kind == "ours":
        setup_ours(path, tasks, members)
        target: Any = ours_worker
    else:
        setup_raw(path, tasks)
        target = raw_worker
    barrier = CTX.Barrier(procs)
    results = CTX.Queue()
    workers = [
        CTX.Process(target=target, args=(path, sync, m, barrier, results), daemon=True)
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
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()
                w.join()
    (check_ours if kind == "ours" else check_raw)(path, tasks)
    total = sum(r.cycles for r in runs)
    span = max(r.finished for r in runs) - min(r.started for r in runs)
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
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
    parser.add_argument("--procs", default="1,4,8", help="process counts (default 1,4,8)")
    parser.add_argument("--sync", default="full,normal", help="synchronous modes to run")
    parser.add_argument("--dir", default=None, help="folder for the databases (default: tmp)")
    args = parser.parse_args(argv)
    tasks = 500 if args.quick else args.tasks
    repeat = 1 if args.quick else max(1, args.repeat)
    counts = [int(p) for p in args.procs.split(",")]
    modes = [m.strip().lower() for m in args.sync.split(",")]

    with tempfile.TemporaryDirectory(prefix="accord-bench-", dir=args.dir) as tmp:
        folder = Path(tmp)
        for line in machine(folder):
            print(line)
        print(f"run:     {tasks} tasks per cell, {repeat} round(s), median shown")
        print()
        header = (
            f"{'sync':<7}{'procs':>6}{'ours cycles/s':>15}{'raw cycles/s':>14}"
            f"{'ours/raw':>10}{'ours ms/cycle':>15}{'ours worst ms':>15}{'raw worst ms':>14}"
        )
        print(header)
        print("-" * len(header))
        worst_ratio = float("inf")
        for sync in modes:
            for procs in counts:
                ours_runs = [measure("ours", sync, procs, tasks, folder) for _ in range(repeat)]
                raw_runs = [measure("raw", sync, procs, tasks, folder) for _ in range(repeat)]
                ours = statistics.median(r[0] for r in ours_runs)
                raw = statistics.median(r[0] for r in raw_runs)
                ours_worst = max(r[1] for r in ours_runs) * 1000
                raw_worst = max(r[1] for r in raw_runs) * 1000
                worst_ratio = min(worst_ratio, ours / raw)
                print(
                    f"{sync.upper():<7}{procs:>6}{ours:>15,.0f}{raw:>14,.0f}"
                    f"{ours / raw:>10.2f}{1000 / ours:>15.3f}{ours_worst:>15,.0f}"
                    f"{raw_worst:>14,.0f}",
                    flush=True,
                )
        print()
        verdict = "meets" if worst_ratio >= 1 / 3 else "misses"
        print(f"lowest ours/raw: {worst_ratio:.2f} ({verdict} the aim of >= 0.33)")
        print("worst ms: the longest single claim/complete call (raw: UPDATE) in the cell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
