"""Mail throughput: send, receive and acknowledge with N member processes, on SQLite and
PostgreSQL side by side.

Each worker is its own OS process and a member of one team, with its own store
connection. The members stand in a ring: each sends ``--messages`` messages to
the next one and receives and acknowledges what the one before it sends, one send
then one receive (up to 10 messages) and its acknowledgement per turn, until it
has sent and acknowledged all of them. A member with nothing left to send and
nothing visible waits for mail with ``accord.team.wake.wait``, as members do. A
message counts once it is acknowledged.

    python bench/mail.py                      # 1, 4 and 16 members, 200 messages each
    python bench/mail.py --quick              # 50 messages each, NORMAL only
    python bench/mail.py --procs 16,64 --backends sqlite,postgres

PostgreSQL runs where ``claims.py`` runs it (``--postgres``, see there): by default
a private cluster, because 64 members with a pool and a listening connection each
would not fit the default 100 connections of a shared server.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

from claims import CTX, START_TIMEOUT, Target, places

TEAM = "bench"
VISIBILITY = 600.0  # nothing is delivered twice during a run


@dataclass(frozen=True, slots=True)
class Report:
    """What one member did: messages acknowledged, when it started and finished,
    the durations of its sends, and its longest single call of any kind."""

    acked: int
    started: float
    finished: float
    sends: list[float]
    worst: float


def member_worker(
    path: str, sync: str, me: str, to: str, count: int, barrier: Barrier, results: Any
) -> None:
    from accord.store import open_store
    from accord.team.wake import wait
    from accord.types import OutgoingMessage

    store = open_store(path, synchronous=sync, busy_timeout=120)  # type: ignore[arg-type]
    barrier.wait(START_TIMEOUT)
    started = time.time()
    sends: list[float] = []
    worst = 0.0
    sent = acked = 0
    while sent < count or acked < count:
        if sent < count:
            t0 = time.perf_counter()
            store.send_message(TEAM, OutgoingMessage(me, to, f"{me} says {sent}"))
            sends.append(time.perf_counter() - t0)
            worst = max(worst, sends[-1])
            sent += 1
        t0 = time.perf_counter()
        got = store.receive_messages(TEAM, me, visibility_timeout=VISIBILITY, limit=10)
        worst = max(worst, time.perf_counter() - t0)
        if got:
            t0 = time.perf_counter()
            store.ack_messages(TEAM, me, [m.id for m in got])
            worst = max(worst, time.perf_counter() - t0)
            acked += len(got)
        elif sent >= count and acked < count:
            wait(store, TEAM, me, timeout=1.0, tasks=False)
    results.put(Report(acked, started, time.time(), sends, worst))
    store.close()


def measure(sync: str, procs: int, count: int, target: Target) -> tuple[float, list[float], float]:
    """Messages acknowledged per second, every send's duration, the longest call."""
    path, clear = target.place("mail", sync, procs)
    members = [f"m{i}" for i in range(procs)]
    try:
        from accord.store import open_store

        with open_store(path, create=True, synchronous="normal") as store:
            store.create_team(TEAM)
            for name in members:
                store.add_member(TEAM, name, token_hash="bench")
        barrier = CTX.Barrier(procs)
        results = CTX.Queue()
        workers = [
            CTX.Process(
                target=member_worker,
                args=(path, sync, me, members[(n + 1) % procs], count, barrier, results),
                daemon=True,
            )
            for n, me in enumerate(members)
        ]
        try:
            for w in workers:
                w.start()
            reports: list[Report] = [results.get(timeout=START_TIMEOUT + 600) for _ in workers]
            for w in workers:
                w.join(30)
                if w.exitcode != 0:
                    raise SystemExit(f"error: a member exited with {w.exitcode}")
        finally:
            for w in workers:
                if w.is_alive():
                    w.kill()
                    w.join()
        with open_store(path) as store:
            left = store.list_messages(TEAM, unacked=True, limit=1)
        if left or sum(r.acked for r in reports) != procs * count:
            raise SystemExit("error: a message was lost or acknowledged twice")
    finally:
        clear()
    total = sum(r.acked for r in reports)
    span = max(r.finished for r in reports) - min(r.started for r in reports)
    return total / span, [s for r in reports for s in r.sends], max(r.worst for r in reports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="sent by each member")
    parser.add_argument("--quick", action="store_true", help="50 messages each, NORMAL only")
    parser.add_argument("--procs", default="1,4,16", help="member processes (default 1,4,16)")
    parser.add_argument("--sync", default="full,normal", help="synchronous modes to run")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="stores to run (default sqlite,postgres)"
    )
    parser.add_argument("--postgres", default=None, help="a server URL, or 'private'")
    parser.add_argument("--dir", default=None, help="folder for SQLite files (default: tmp)")
    args = parser.parse_args(argv)
    count = 50 if args.quick else args.messages
    counts = [int(p) for p in args.procs.split(",")]
    modes = ["normal"] if args.quick else [m.strip().lower() for m in args.sync.split(",")]
    backends = [b.strip().lower() for b in args.backends.split(",")]

    with contextlib.ExitStack() as stack:
        folder, server = places(stack, args.dir, backends, args.postgres)
        print(f"run:     each member sends {count} messages to the next in a ring")
        print()
        header = (
            f"{'store':<10}{'sync':<7}{'procs':>6}{'msgs/s':>10}{'ms/msg':>9}"
            f"{'send p50 ms':>13}{'send p99 ms':>13}{'worst ms':>10}"
        )
        print(header)
        print("-" * len(header))
        for sync in modes:
            for procs in counts:
                for backend in backends:
                    target = Target(backend, folder, server)
                    rate, sends, worst = measure(sync, procs, count, target)
                    sends.sort()
                    p50 = statistics.median(sends) * 1000
                    p99 = sends[min(len(sends) - 1, int(len(sends) * 0.99))] * 1000
                    print(
                        f"{backend:<10}{sync.upper():<7}{procs:>6}{rate:>10,.0f}"
                        f"{procs * 1000 / rate:>9.2f}{p50:>13.2f}{p99:>13.2f}"
                        f"{worst * 1000:>10,.0f}",
                        flush=True,
                    )
        print()
        print("msgs/s: messages acknowledged per second, all members together")
        print("ms/msg: wall time per message for one member (procs / msgs/s)")
        print("worst ms: the longest single send, receive or acknowledge in the cell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
