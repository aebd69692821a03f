"""What the person's seat costs to keep current, against the number of members and tasks.

For each team size a SQLite store is filled in a temporary folder: ``M`` members,
``100 × M`` tasks (at most ``--tasks``), and ``--events`` events in the log (one in five
a model call with its usage row; the rest task, message and note events), as a long
run leaves them. Then, in the same run:

- **attach**: the view's first read (``Feed.refresh`` on a new feed): the whole board
  and the newest events, never the whole log;
- **quiet**: a refresh when nothing changed (one look at the store's change marker);
- **one change**: a refresh after a member claimed and completed a task and made a
  model call (the events since the last refresh, the tasks they name, the roster);
  **+ costs**: the same when the costs are due again (summed at most once a second);
- **baseline**: what the refreshing table (``--display table``) reads on each refresh,
  ``status_data``: roster, whole board, usage totals and the latest messages;
- **key**: a key answered by the app (``Seat`` under Textual's pilot, on this store):
  Down to select the next member, and Ctrl+T to show or hide the board with every
  task, from the key posted to the screen refreshed after it.

    python bench/watch.py [--members 3 20 50] [--events 100000] [--n 30]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from claims import cpu_model  # noqa: E402

from accord.cli._live import Actions, status_data  # noqa: E402
from accord.events import EventKind  # noqa: E402
from accord.store import open_store  # noqa: E402
from accord.team import Team  # noqa: E402
from accord.tui.feed import Feed  # noqa: E402
from accord.types import MemberRole, NewTask, UsageRecord  # noqa: E402


def seed(location: str, members: int, tasks: int, events: int) -> Team:
    store = open_store(location, create=True, synchronous="off")
    store.create_team("main")
    team = Team(store, "main")
    names = ["lead"] + [f"m{i:02d}" for i in range(members - 1)]
    team.roster.add("lead", role=MemberRole.LEAD)
    for name in names[1:]:
        team.roster.add(name)
    for i in range(tasks):
        team.board.add(NewTask(title=f"task {i}: do part {i} of the work"))
    made = len(team.log.read_events(since=0, limit=10**9))
    for i in range(max(0, events - made)):
        who = names[i % len(names)]
        if i % 5 == 0:
            team.runs.record_usage(
                UsageRecord(who, "anthropic:claude-sonnet-4-5", 1200, 300, cost_usd=0.0081)
            )
        else:
            team.log.append_event(EventKind.CONTINUITY_WRITTEN, {"member": who, "version": i}, who)
    return team


def attach_once(reader: Team) -> None:
    Feed(reader).refresh()


def timed(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - started) * 1000)
    return out


def keys(location: str, n: int) -> tuple[list[float], list[float]]:
    """Milliseconds from a key posted to the app to the screen refreshed after it (the
    pilot's own round trip adds its waits for animations and idleness, so it is not
    used), for Down and for Ctrl+T."""
    from textual.events import Key

    from accord.tui.app import Seat

    down: list[float] = []
    board: list[float] = []

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(160, 50)) as pilot:
            while not app.refreshes:
                await pilot.pause(0.05)
            await pilot.pause(0.5)
            for i in range(2 * n):
                key, into = ("down", down) if i % 2 else ("ctrl+t", board)
                done = asyncio.Event()
                started = time.perf_counter()
                app.post_message(Key(key, None))
                app.call_after_refresh(done.set)
                await done.wait()
                into.append((time.perf_counter() - started) * 1000)
                await pilot.pause(0.1)

    asyncio.run(drive())
    return down, board


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[3, 20, 50])
    parser.add_argument("--tasks", type=int, default=5000, help="most tasks on a board")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--n", type=int, default=30, help="measurements per cell")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.platform()}, "
        f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    print(f"{args.events:,} events per store; medians of {args.n} (ms)\n")
    head = (
        f"{'members':>7} {'tasks':>6} {'attach':>8} {'quiet':>8} {'one change':>11} {'+ costs':>8} "
        f"{'baseline':>9} {'key Down':>9} {'key Ctrl+T':>11}"
    )
    print(head)
    for members in args.members:
        tasks = min(100 * members, args.tasks)
        with tempfile.TemporaryDirectory() as tmp:
            location = str(Path(tmp) / "accord.db")
            team = seed(location, members, tasks, args.events)
            reader = Team(open_store(location), "main")
            attach = timed(functools.partial(attach_once, reader), max(3, args.n // 10))
            feed = Feed(reader)
            feed.refresh()
            feed.refresh(force=True)
            quiet = timed(feed.refresh, args.n)
            changes: list[float] = []
            costly: list[float] = []
            for i in range(2 * args.n):
                who = "m00" if members > 1 else "lead"
                claim = team.board.claim(who)
                team.runs.record_usage(UsageRecord(who, "anthropic:claude-sonnet-4-5", 900, 90))
                if claim is not None:
                    team.board.complete(claim.task.id, who, claim.fencing_token, f"done {i}")
                # Every other change comes when costs are due again (at most once a second).
                feed.costs_at = 0.0 if i % 2 else time.monotonic()
                started = time.perf_counter()
                feed.refresh()
                (costly if i % 2 else changes).append((time.perf_counter() - started) * 1000)
            actions = Actions()
            status_data(reader, actions)
            baseline = timed(functools.partial(status_data, reader, actions), args.n)
            down, board = keys(location, max(5, args.n // 3))
            reader.store.close()
            team.store.close()
        med = statistics.median
        print(
            f"{members:>7} {tasks:>6} {med(attach):>8.1f} {med(quiet):>8.3f} "
            f"{med(changes):>11.1f} {med(costly):>8.1f} {med(baseline):>9.1f} "
            f"{med(down):>9.1f} {med(board):>11.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
