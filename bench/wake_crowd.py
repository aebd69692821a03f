"""Send-to-wake latency in a crowd: 200 idle members in other processes, 10 other teams busy.

A receiver process blocks in ``accord.team.wake.wait()``; a sender process sends it
messages, spaced apart, and notes when each send committed. Meanwhile:

- 200 other members of the receiver's team wait for work in 20 processes (10 threads
  each), with nothing to do: the crowd;
- 10 other teams are busy, each in a process of its own adding, claiming and
  completing a task and sending a message, ``--busy-rate`` times a second.

The latency of a message is the time from its commit to the receiver's wake. Every
process reads ``CLOCK_MONOTONIC``, one clock for the whole machine on Linux.

Two waiters run the same scene, one after the other, in this one run:

- ``bells``: ``accord.team.wake.wait`` as it is, sleeping until its bell rings;
- ``poll``: the waiter accord had before bells (the baseline): read the store-wide
  change marker every 4 ms (10 ms after two quiet seconds), look at the store when it
  moved or every 0.25 s. It is copied here so the two compare on the same machine.

The CPU columns are what the crowd of idle members used together over the run, and
what the receiver used, each as a share of one core; the busy teams' own work is in
neither.

    python bench/wake_crowd.py                 # 200 idle members, 10 busy teams
    python bench/wake_crowd.py --quick         # 50 idle members, 3 busy teams, 50 messages
    python bench/wake_crowd.py --idle 400 --busy 20 --busy-rate 20
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from wake import percentile, sender  # wake.py's sender, and its percentiles

TEAM = "bench"
CTX = mp.get_context("spawn")
TIMEOUT = 120.0
PER_PROCESS = 10  # idle members (threads) per crowd process


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


# the waiter accord had before bells (the baseline) ------------------------------------


def poll_wait(store: Any, team: str, member: str, timeout: float, stop: Any = None) -> Any:
    """accord.team.wake.wait before bells: a 4-10 ms poll of the change marker."""
    from accord.types import Wake, WakeReason

    deadline = time.monotonic() + timeout
    marker = store.change_marker()
    work = store.pending_work(team, member)
    checked = changed = time.monotonic()
    while work.reason == WakeReason.NONE:
        t = time.monotonic()
        if t >= deadline or (stop is not None and stop()):
            return Wake(WakeReason.TIMEOUT)
        slice_ = 0.004 if t - changed < 2.0 else 0.010
        time.sleep(min(slice_, deadline - t))
        seen = store.change_marker()
        if seen != marker or time.monotonic() - checked >= 0.25:
            if seen != marker:
                changed = time.monotonic()
            marker = seen
            work = store.pending_work(team, member)
            checked = time.monotonic()
    return work


def _waiter(kind: str) -> Any:
    if kind == "poll":
        return poll_wait
    from accord.team.wake import wait

    def bells(store: Any, team: str, member: str, timeout: float, stop: Any = None) -> Any:
        return wait(store, team, member, timeout, stop=stop, recheck=5.0)

    return bells


# processes ------------------------------------------------------------------------


def crowd(path: str, kind: str, names: list[str], conn: Connection) -> None:
    """Members with nothing to do, each waiting in a thread; reports its CPU seconds."""
    from accord.store import open_store

    store = open_store(path, synchronous="normal")
    wait = _waiter(kind)
    stop = threading.Event()
    threads = [
        threading.Thread(target=lambda n=n: wait(store, TEAM, n, TIMEOUT, stop.is_set))
        for n in names
    ]
    for t in threads:
        t.start()
    conn.send("ready")
    conn.recv()  # the window begins
    began = cpu()
    conn.recv()  # the window ends
    conn.send(cpu() - began)
    stop.set()
    from accord.team.wake import nudge

    for n in names:
        nudge(TEAM, n)
    for t in threads:
        t.join(5)
    store.close()


def busy(path: str, team: str, rate: float, conn: Connection) -> None:
    """Another team at work: add, claim and complete a task and send a message, ``rate``
    times a second, until told to stop."""
    from accord.store import open_store
    from accord.types import NewTask, OutgoingMessage

    store = open_store(path, synchronous="normal")
    conn.send("ready")
    n = 0
    began = now()
    while not conn.poll(0):
        store.add_task(team, NewTask(f"t{n}"), max_attempts=3)
        claim = store.claim_task(team, "w", lease_seconds=60)
        if claim is not None:
            store.complete_task(team, claim.task.id, "w", claim.fencing_token, "ok")
        store.send_message(team, OutgoingMessage("w", "v", f"note {n}"))
        n += 1
        time.sleep(1 / rate)
    conn.send((n * 4, now() - began))  # commits: add, claim, complete, send
    store.close()


def receiver(path: str, kind: str, count: int, conn: Connection) -> None:
    from accord.store import open_store

    store = open_store(path, synchronous="normal")
    wait = _waiter(kind)
    woke: dict[int, float] = {}
    conn.send("ready")
    conn.recv()
    began = cpu()
    while len(woke) < count:
        wake = wait(store, TEAM, "receiver", TIMEOUT)
        at = now()
        if wake.reason == "timeout":
            break
        messages = store.receive_messages(TEAM, "receiver", visibility_timeout=60)
        for m in messages:
            woke.setdefault(m.id, at)
        store.ack_messages(TEAM, "receiver", [m.id for m in messages])
    conn.send((woke, cpu() - began))
    store.close()


# running --------------------------------------------------------------------------


def setup(path: str, idle: int, teams: int) -> None:
    from accord.store import open_store

    with open_store(path, create=True, synchronous="normal") as store:
        store.create_team(TEAM)
        for name in ("sender", "receiver", *(f"idle-{i:03d}" for i in range(idle))):
            store.add_member(TEAM, name, token_hash="bench")
        for t in range(teams):
            store.create_team(f"busy-{t}")
            for name in ("w", "v"):
                store.add_member(f"busy-{t}", name, token_hash="bench")


def scene(
    path: str, kind: str, idle: int, teams: int, rate: float, count: int, gap: float
) -> tuple[list[float], float, float, float, float]:
    """(latencies in ms, the crowd's CPU seconds, the receiver's, the window in seconds,
    the busy teams' commits per second)."""
    names = [f"idle-{i:03d}" for i in range(idle)]
    groups = [names[i : i + PER_PROCESS] for i in range(0, len(names), PER_PROCESS)]
    procs: list[Any] = []
    pipes: list[Connection] = []

    def start(target: Any, *args: Any) -> Connection:
        parent, child = CTX.Pipe()
        p = CTX.Process(target=target, args=(*args, child), daemon=True)
        p.start()
        procs.append(p)
        pipes.append(parent)
        return parent

    try:
        crowds = [start(crowd, path, kind, g) for g in groups]
        busies = [start(busy, path, f"busy-{t}", rate) for t in range(teams)]
        recv = start(receiver, path, kind, count)
        send = start(sender, path, "normal", count, gap)
        for c in (*crowds, *busies, recv):
            if not c.poll(TIMEOUT) or c.recv() != "ready":
                raise SystemExit("error: a bench process did not start")
        time.sleep(2.5)  # past the poll's two quiet seconds: the crowd is settled
        for c in crowds:
            c.send("go")
        began = now()
        recv.send("go")
        send.send("go")
        if not send.poll(TIMEOUT + count * gap):
            raise SystemExit("error: the sender did not finish")
        sent: list[tuple[int, float]] = send.recv()
        if not recv.poll(TIMEOUT):
            raise SystemExit("error: the receiver did not finish")
        woke, receiver_cpu = recv.recv()
        window = now() - began
        for c in crowds:
            c.send("stop")
        used = sum(c.recv() for c in crowds if c.poll(TIMEOUT))
        for c in busies:
            c.send("stop")
        rate = 0.0
        for c in busies:
            if c.poll(TIMEOUT):
                commits, seconds = c.recv()
                rate += commits / seconds
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
    missing = [mid for mid, _ in sent if mid not in woke]
    if missing:
        raise SystemExit(f"error: {kind}: {len(missing)} messages never woke the receiver")
    return [(woke[mid] - at) * 1000 for mid, at in sent], used, receiver_cpu, window, rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=200, help="idle members (200)")
    parser.add_argument("--busy", type=int, default=10, help="busy teams (10)")
    parser.add_argument("--busy-rate", type=float, default=10.0, help="operations/s per team")
    parser.add_argument("--messages", type=int, default=200, help="messages sent (200)")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between sends")
    parser.add_argument("--quick", action="store_true", help="50 idle, 3 busy, 50 messages")
    parser.add_argument("--dir", default=None, help="folder for the database (default: tmp)")
    args = parser.parse_args(argv)
    if args.quick:
        args.idle, args.busy, args.messages = 50, 3, 50

    from claims import machine  # the same machine description as bench/claims.py

    with tempfile.TemporaryDirectory(prefix="accord-bench-", dir=args.dir) as tmp:
        folder = Path(tmp)
        for line in machine(folder):
            print(line)
        print(
            f"run:     {args.idle} idle members in {-(-args.idle // PER_PROCESS)} processes, "
            f"{args.busy} busy teams at {args.busy_rate:g} operations/s each, "
            f"{args.messages} messages {args.gap * 1000:g} ms apart, synchronous=NORMAL"
        )
        print()
        header = (
            f"{'waiter':<34}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
            f"{'crowd CPU':>11}{'receiver CPU':>14}{'busy commits/s':>16}"
        )
        print(header)
        print("-" * len(header))
        results = {}
        labels = {"bells": "bells (accord now)", "poll": "poll 4-10 ms (before, baseline)"}
        for kind in ("bells", "poll"):
            path = str(folder / f"{kind}.db")
            setup(path, args.idle, args.busy)
            lat, used, receiving, window, rate = scene(
                path, kind, args.idle, args.busy, args.busy_rate, args.messages, args.gap
            )
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            results[kind] = (p50, p99)
            print(
                f"{labels[kind]:<34}{p50:>8.2f}{p99:>8.2f}{max(lat):>8.2f}"
                f"{used / window * 100:>10.1f}%{receiving / window * 100:>13.1f}%"
                f"{rate:>16.0f}",
                flush=True,
            )
        print()
        p50, p99 = results["bells"]
        verdict = "meets" if p50 <= 5 and p99 <= 20 else "misses"
        print(f"bells: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({verdict} the aim p50 <= 5, p99 <= 20)")
        print(
            "crowd CPU: what the idle members used together, as a share of one core; "
            "receiver CPU: the receiver's, waking and reading its mail"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
