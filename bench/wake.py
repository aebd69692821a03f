"""Send-to-wake latency of ``accord.team.wake.wait`` across processes, and its idle cost.

A receiver process blocks in ``wait()``; a sender process sends messages to it,
spaced apart, and notes when each send committed. The latency of a message is
the time from that commit to the receiver returning from ``wait()``. Both
processes read ``CLOCK_MONOTONIC``, which on Linux is one clock for the whole
machine, so the two readings can be subtracted.

The baseline ("raw") is the floor on this machine: the same sender, and a
receiver that polls ``PRAGMA data_version`` in a tight loop with no sleep at
all (burning a core to do so).

    python bench/wake.py                 # 200 messages, 20 ms apart
    python bench/wake.py --quick         # 50 messages, 1 s of idle measurement
    python bench/wake.py --messages 500 --gap 0.01
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sqlite3
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

TEAM = "bench"
CTX = mp.get_context("spawn")
TIMEOUT = 60.0


def now() -> float:
    """A reading of CLOCK_MONOTONIC: comparable between processes on Linux."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# processes --------------------------------------------------------------------


def sender(path: str, sync: str, count: int, gap: float, conn: Connection) -> None:
    """Send ``count`` messages ``gap`` seconds apart; report (id, commit time) pairs."""
    from accord.store import open_store
    from accord.types import OutgoingMessage

    store = open_store(path, synchronous=sync)  # type: ignore[arg-type]
    conn.recv()  # go
    sent: list[tuple[int, float]] = []
    for i in range(count):
        (message,) = store.send_message(
            TEAM, OutgoingMessage(sender="sender", recipient="receiver", body=f"ping {i}")
        )
        sent.append((message.id, now()))  # send_message returns after COMMIT
        time.sleep(gap)  # pacing the load, not synchronising anything
    conn.send(sent)
    store.close()


def ours_receiver(path: str, sync: str, count: int, conn: Connection) -> None:
    """Wait with ``wait()``; on each wake take the mail, ack it, and note the wake time."""
    from accord.store import open_store
    from accord.team.wake import wait

    store = open_store(path, synchronous=sync)  # type: ignore[arg-type]
    woke: dict[int, float] = {}
    conn.send("ready")
    while len(woke) < count:
        wake = wait(store, TEAM, "receiver", timeout=TIMEOUT)
        at = now()
        if wake.reason == "timeout":
            break
        messages = store.receive_messages(TEAM, "receiver", visibility_timeout=60)
        for m in messages:
            woke.setdefault(m.id, at)
        store.ack_messages(TEAM, "receiver", [m.id for m in messages])
    conn.send(woke)
    store.close()


def raw_receiver(path: str, sync: str, count: int, conn: Connection) -> None:
    """Poll PRAGMA data_version with no sleep; a change means the sender committed."""
    db = sqlite3.connect(path, isolation_level=None)
    woke: dict[int, float] = {}
    seen = db.execute("PRAGMA data_version").fetchone()[0]
    last = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
    conn.send("ready")
    deadline = now() + TIMEOUT
    while len(woke) < count and now() < deadline:
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version == seen:
            continue
        at = now()
        seen = version
        for (mid,) in db.execute("SELECT id FROM messages WHERE id > ? ORDER BY id", (last,)):
            woke.setdefault(mid, at)
            last = mid
    conn.send(woke)
    db.close()


def idle_waiter(path: str, seconds: float, conn: Connection) -> None:
    """Wait with nothing to do for ``seconds``; report CPU seconds used and wall seconds."""
    from accord.store import open_store
    from accord.team.wake import wait

    store = open_store(path)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = now()
    wake = wait(store, TEAM, "receiver", timeout=seconds)
    wall = now() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    conn.send((wake.reason, cpu, wall))
    store.close()


def idle_raw(path: str, seconds: float, conn: Connection) -> None:
    """The tight data_version loop with nothing arriving, for comparison."""
    db = sqlite3.connect(path, isolation_level=None)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = now()
    while now() - start < seconds:
        db.execute("PRAGMA data_version").fetchone()
    wall = now() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    conn.send(("timeout", cpu, wall))
    db.close()


# running ----------------------------------------------------------------------


def setup(path: str) -> None:
    from accord.store import open_store

    with open_store(path, create=True) as store:
        store.create_team(TEAM)
        for name in ("sender", "receiver"):
            store.add_member(TEAM, name, token_hash="bench")


def latencies(kind: str, path: str, sync: str, count: int, gap: float) -> list[float]:
    """Milliseconds from each send's commit to the receiver's wake."""
    target = ours_receiver if kind == "ours" else raw_receiver
    recv_parent, recv_child = CTX.Pipe()
    send_parent, send_child = CTX.Pipe()
    receiver = CTX.Process(target=target, args=(path, sync, count, recv_child), daemon=True)
    sending = CTX.Process(target=sender, args=(path, sync, count, gap, send_child), daemon=True)
    try:
        receiver.start()
        sending.start()
        if not recv_parent.poll(TIMEOUT) or recv_parent.recv() != "ready":
            raise SystemExit("error: the receiver did not start")
        send_parent.send("go")
        if not send_parent.poll(TIMEOUT + count * gap):
            raise SystemExit("error: the sender did not finish")
        sent: list[tuple[int, float]] = send_parent.recv()
        if not recv_parent.poll(TIMEOUT):
            raise SystemExit("error: the receiver did not finish")
        woke: dict[int, float] = recv_parent.recv()
    finally:
        for p in (receiver, sending):
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    missing = [mid for mid, _ in sent if mid not in woke]
    if missing:
        raise SystemExit(f"error: {kind}: {len(missing)} messages never woke the receiver")
    return [(woke[mid] - at) * 1000 for mid, at in sent]


def idle_cpu(target: object, path: str, seconds: float) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a process waiting with nothing to do."""
    parent, child = CTX.Pipe()
    p = CTX.Process(target=target, args=(path, seconds, child), daemon=True)  # type: ignore[arg-type]
    try:
        p.start()
        if not parent.poll(TIMEOUT + seconds):
            raise SystemExit("error: the idle waiter did not report")
        reason, cpu, wall = parent.recv()
        if reason != "timeout":
            raise SystemExit(f"error: the idle waiter woke for {reason!r}")
    finally:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()
    return cpu, wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per run (200)")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between sends (0.02)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle waiting (3)")
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    parser.add_argument("--quick", action="store_true", help="50 messages, 1 s idle")
    parser.add_argument("--dir", default=None, help="folder for the database (default: tmp)")
    args = parser.parse_args(argv)
    count = 50 if args.quick else args.messages
    idle_seconds = 1.0 if args.quick else args.idle

    from claims import machine  # the same machine description as bench/claims.py

    with tempfile.TemporaryDirectory(prefix="accord-bench-", dir=args.dir) as tmp:
        folder = Path(tmp)
        for line in machine(folder):
            print(line)
        print(
            f"run:     {count} messages, {args.gap * 1000:g} ms apart, "
            f"synchronous={args.sync.upper()}, clock CLOCK_MONOTONIC"
        )
        print()
        header = f"{'receiver':<34}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'idle CPU':>10}"
        print(header)
        print("-" * len(header))
        rows = (("ours", "wait()", idle_waiter), ("raw", "tight data_version poll", idle_raw))
        results: dict[str, tuple[float, float]] = {}
        for kind, label, idle_target in rows:
            path = str(folder / f"{kind}.db")
            setup(path)
            lat = latencies(kind, path, args.sync, count, args.gap)
            cpu, wall = idle_cpu(idle_target, path, idle_seconds)
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            results[kind] = (p50, p99)
            print(
                f"{kind + ': ' + label:<34}{p50:>8.2f}{p99:>8.2f}{max(lat):>8.2f}"
                f"{cpu / wall * 100:>9.1f}%",
                flush=True,
            )
        print()
        p50, p99 = results["ours"]
        verdict = "meets" if p50 < 10 and p99 < 50 else "misses"
        print(f"ours: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({verdict} the aim of p50 < 10, p99 < 50)")
        print("idle CPU: share of one core used while waiting with nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())
