"""Routing decision latency: a routed send beside a plain send, in the same run, on
SQLite and PostgreSQL.

One process, one team of 8 members (two with the agent definition ``fixer``), 6
routing rules in accord.toml's shape, of which the message matches the 4th (a regular
expression naming a role), so every decision tries rules, reads the roster and the
load (tasks in progress, routed messages owned) and writes the route with the message
in one transaction. Four calls are timed, interleaved so the store grows alike under
each: ``plain``, a broadcast through ``Mailbox.send``; ``routed``, the same broadcast
through ``Routing.send`` (decision and write); ``decide``, the decision alone;
``history``, the decision under ``prefer = "history"`` for a message tagged ``api``,
which reads the members' working patterns on that topic as well. Before timing, the
team is given a past: 2,000 routed messages on 10 topics, answered by their owners,
and half of them judged, so the history has rows to count.

    python bench/route.py                    # 500 of each, SQLite (NORMAL, FULL) and PostgreSQL
    python bench/route.py --quick            # 100 of each, NORMAL only
    python bench/route.py --backends sqlite

PostgreSQL runs where ``claims.py`` runs it (``--postgres``, see there).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable

from claims import Target, places

TEAM = "bench"
RULES = """
[routing]
fallback = "least_busy"
[[routing.rules]]
keyword = "deploy"
to = "m0"
[[routing.rules]]
channel = "#ops"
to = "m1"
[[routing.rules]]
match_role = "tester"
to = "m2"
[[routing.rules]]
pattern = "(?i)bug #\\\\d+"
role = "fixer"
[[routing.rules]]
tags = ["db"]
to = "m3"
[[routing.rules]]
keyword = "release"
to = "m4"
"""


def measure(path: str, sync: str, count: int) -> dict[str, list[float]]:
    from accord.config import parse_config
    from accord.store import open_store
    from accord.team import Team

    store = open_store(path, create=True, synchronous=sync)  # type: ignore[arg-type]
    try:
        store.create_team(TEAM)
        for i in range(8):
            store.add_member(TEAM, f"m{i}", token_hash="x", agent="fixer" if i in (5, 6) else None)
        team = Team.open(store, TEAM, parse_config(RULES), None)  # type: ignore[arg-type]
        routing = team.routing()
        keen = Team.open(
            store,
            TEAM,
            parse_config(RULES.replace("[routing]\n", '[routing]\nprefer = "history"\n')),
            None,  # type: ignore[arg-type]
        ).routing()
        everyone = [f"m{i}" for i in range(1, 8)]
        for i in range(2000):  # the team's past: answered, half of it judged
            (asked, *_) = routing.send("m0", "*", "question", tags=[f"topic{i % 10}", "api"])
            owner = routing.owner(asked.id).owner  # type: ignore[union-attr]
            team.mailbox.send(owner, "m0", "answer", reply_to=asked.id)
            if i % 2:
                routing.judge(asked.id, "m0", accepted=i % 4 == 1)
        calls: dict[str, Callable[[], object]] = {
            "plain": lambda: team.mailbox.send("m0", "*", "see bug #12"),
            "routed": lambda: routing.send("m0", "*", "see bug #12"),
            "decide": lambda: routing.decide("m0", everyone, "see bug #12"),
            "history": lambda: keen.decide("m0", everyone, "see bug #12", tags=["api"]),
        }
        times: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(count):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        return times
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="calls of each kind")
    parser.add_argument("--quick", action="store_true", help="100 of each, NORMAL only")
    parser.add_argument("--sync", default="normal,full", help="synchronous modes to run")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="stores to run (default sqlite,postgres)"
    )
    parser.add_argument("--postgres", default=None, help="a server URL, or 'private'")
    parser.add_argument("--dir", default=None, help="folder for SQLite files (default: tmp)")
    args = parser.parse_args(argv)
    count = 100 if args.quick else args.count
    modes = ["normal"] if args.quick else [m.strip().lower() for m in args.sync.split(",")]
    backends = [b.strip().lower() for b in args.backends.split(",")]
    with contextlib.ExitStack() as stack:
        folder, server = places(stack, args.dir, backends, args.postgres)
        print(f"run:     {count} of each call, interleaved; a broadcast to 7 members")
        print()
        header = f"{'store':<10}{'sync':<7}{'call':<9}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}"
        print(header)
        print("-" * len(header))
        for sync in modes:
            for backend in backends:
                path, clear = Target(backend, folder, server).place("route", sync, 1)
                try:
                    times = measure(path, sync, count)
                finally:
                    clear()
                for name, got in times.items():
                    got.sort()
                    p99 = got[min(len(got) - 1, int(len(got) * 0.99))]
                    print(
                        f"{backend:<10}{sync.upper():<7}{name:<9}"
                        f"{statistics.median(got) * 1000:>9.2f}{p99 * 1000:>9.2f}"
                        f"{statistics.fmean(got) * 1000:>9.2f}",
                        flush=True,
                    )
        print()
        print("plain: Mailbox.send of a broadcast; routed: Routing.send of the same")
        print("(decision and write, one transaction); decide: the decision alone (reads only);")
        print('history: the decision with prefer = "history" on a past of 2,000 answered routes')
    return 0


if __name__ == "__main__":
    sys.exit(main())
