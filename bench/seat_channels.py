"""What the seat's channels pane costs: opening a long channel, and one post's round trip.

For each size (``--posts``, default 1,000 and 10,000) a SQLite store is filled in a
temporary folder: team ``main`` with alice and bob, and ``#design`` (alice, bob and the
person subscribed) holding that many posts, every one unread in the person's inbox.
Then, in the same run:

- **service: newest 200** and **service: whole history**: the service call of
  ``accord channel read`` (``Channels.read``), for the newest posts the seat shows and
  for every post (``--limit N``): the baseline;
- **seat: first open**: Enter on the channel in the app (``Seat`` under Textual's pilot),
  from the key posted to the screen refreshed with its posts: its newest 200 posts read,
  their routes, and every unread copy in the person's inbox acknowledged (N of them);
- **seat: open again**: the same once nothing is unread (median of ``--n``);
- **service: post + read** and **seat: post round trip**: one post and reading it back,
  through the service (``Channels.post``, ``Channels.read(since=)``), and typed in the
  app, from Enter to the post shown in the channel (median of ``--n``).

    python bench/seat_channels.py [--posts 1000 10000] [--n 20]
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from claims import cpu_model  # noqa: E402

from accord.store import open_store  # noqa: E402
from accord.team import Team  # noqa: E402
from accord.tui.feed import CHANNEL_SHOWN  # noqa: E402
from accord.types import PERSON  # noqa: E402

CHANNEL = "#design"


def seed(location: str, posts: int) -> Team:
    store = open_store(location, create=True, synchronous="off")
    store.create_team("main")
    team = Team(store, "main")
    for name in ("alice", "bob"):
        team.roster.add(name)
    team.channels.create(CHANNEL, "alice")
    for who in ("bob", PERSON):
        team.channels.join(CHANNEL, who)
    for i in range(posts):
        who = "alice" if i % 2 else "bob"
        team.channels.post(CHANNEL, who, f"post {i}: a line of the discussion about the api")
    return team


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def service_round_trip(team: Team) -> None:
    last = team.channels.read(CHANNEL, limit=1, newest=True)[-1].id
    team.channels.post(CHANNEL, PERSON, "from the service")
    team.channels.read(CHANNEL, since=last)


def seat(location: str, posts: int, n: int) -> tuple[float, list[float], list[float]]:
    """Milliseconds of the first open, of each later open, and of each post's round
    trip, in the app under the pilot: from the key posted to the screen refreshed."""
    from textual.events import Key
    from textual.widgets import Input

    from accord.tui.app import Seat

    shown = min(posts, CHANNEL_SHOWN)
    opens: list[float] = []
    trips: list[float] = []

    async def until(app: Seat, ok: Callable[[], bool]) -> None:
        while not ok():
            await asyncio.sleep(0.001)
        done = asyncio.Event()
        app.call_after_refresh(done.set)
        await done.wait()

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(160, 50)) as pilot:
            while not app.refreshes:
                await pilot.pause(0.05)
            await pilot.press("ctrl+g")
            while not app.channel_rows:
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            for _ in range(n + 1):
                pages = app.channel_pages
                started = time.perf_counter()
                app.post_message(Key("enter", None))
                await until(
                    app,
                    lambda pages=pages: (
                        app.channel_pages > pages and len(app.channel_posts) >= shown
                    ),
                )
                opens.append((time.perf_counter() - started) * 1000)
                await pilot.pause(0.2)  # the acknowledgement's event comes back
                await pilot.press("escape")
                await pilot.pause(0.1)
            await pilot.press("enter")
            await until(app, lambda: len(app.channel_posts) >= shown)
            await pilot.pause(0.3)
            for i in range(n):
                app.query_one("#say", Input).value = f"round trip {i}"
                started = time.perf_counter()
                app.post_message(Key("enter", None))
                said = f"round trip {i}"
                await until(app, lambda said=said: app.channel_posts[-1].body == said)
                trips.append((time.perf_counter() - started) * 1000)
                await pilot.pause(0.1)

    asyncio.run(drive())
    return opens[0], opens[1:], trips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--n", type=int, default=20, help="measurements per cell")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.platform()}, "
        f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    print(f"SQLite; medians of {args.n} (ms); the seat shows a channel's newest {CHANNEL_SHOWN}\n")
    rows: list[tuple[str, list[str]]] = []
    for posts in args.posts:
        with tempfile.TemporaryDirectory() as tmp:
            location = str(Path(tmp) / "accord.db")
            team = seed(location, posts)
            reader = Team(open_store(location), "main")
            newest = functools.partial(
                reader.channels.read, CHANNEL, limit=CHANNEL_SHOWN, newest=True
            )
            whole = functools.partial(reader.channels.read, CHANNEL, limit=posts * 2)
            med = statistics.median
            cells = [
                f"{med(timed(newest, args.n)):.1f}",
                f"{med(timed(whole, max(3, args.n // 4))):.1f}",
            ]
            first, again, trips = seat(location, posts, args.n)
            service = timed(functools.partial(service_round_trip, reader), args.n)
            cells += [
                f"{first:.1f}",
                f"{med(again):.1f}",
                f"{med(service):.1f}",
                f"{med(trips):.1f}",
            ]
            rows.append((f"{posts:,}", cells))
            reader.store.close()
            team.store.close()
    heads = [
        f"service: newest {CHANNEL_SHOWN}",
        "service: whole history",
        "seat: first open",
        "seat: open again",
        "service: post + read",
        "seat: post round trip",
    ]
    width = max(len(h) for h in heads)
    print(f"{'':<{width}} " + " ".join(f"{p + ' posts':>13}" for p, _ in rows))
    for i, head in enumerate(heads):
        print(f"{head:<{width}} " + " ".join(f"{cells[i]:>13}" for _, cells in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
