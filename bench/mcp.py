"""What `accord mcp` costs a claim and a send: over stdio MCP against the Python API.

A project is made in a temporary folder (an empty accord.toml, a SQLite store in
``.accord/``, team main with alice and bob, ``--n`` ready tasks). One ``accord mcp
--team main --as alice`` runs as a real subprocess, reached with the mcp SDK's own
stdio client. Each operation then runs ``--n`` times through MCP and ``--n`` times
through the Python API in this process (the baseline), alternating so that a change
in the machine's load hits both alike:

- claim: ``TaskUpdate {taskId, status: "in_progress"}`` against ``Board.claim``;
- send: ``SendMessage {to: "bob", message}`` against ``Mailbox.send``.

Each time is one round trip, from the call to its answer: for MCP, the JSON-RPC
request over the pipe, the server's validation, accord's tool and the reply.

    python bench/mcp.py [--n 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

# Run as `python bench/mcp.py`, this file's folder comes first on the path, and this
# file would shadow the mcp SDK it measures: take the folder off before importing it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import anyio  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from accord.store import open_store  # noqa: E402
from accord.team import Team  # noqa: E402
from accord.types import NewTask  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the SDK is in: no shadow now
from claims import cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parents[1]


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def make_project(root: Path, tasks: int) -> tuple[Team, str, list[int]]:
    (root / ".accord").mkdir(parents=True)
    (root / "accord.toml").write_text("")
    store = open_store(str(root / ".accord" / "accord.db"), create=True)
    team = Team.create(store, "main")
    token = team.roster.add("alice").token
    team.roster.add("bob")
    ids = [team.board.add(NewTask(title=f"t{i}")).id for i in range(tasks)]
    return team, token, ids


async def timed(act: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await act()
    return (time.perf_counter() - started) * 1000


async def measure(root: Path, n: int) -> dict[tuple[str, str], list[float]]:
    team, token, ids = make_project(root, 2 * n + 20)
    mcp_ids, api_ids = ids[: n + 10], ids[n + 10 :]
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "accord", "mcp", "--team", "main", "--as", "alice"],
        env={"ACCORD_TOKEN": token, "PYTHONPATH": str(HERE / "src")},
        cwd=root,
    )
    times: dict[tuple[str, str], list[float]] = {}
    async with stdio_client(params) as (r, w), ClientSession(r, w) as session:
        await session.initialize()

        async def mcp_claim(task_id: int) -> None:
            result = await session.call_tool(
                "TaskUpdate", {"taskId": task_id, "status": "in_progress"}
            )
            assert not result.is_error, result.content

        async def api_claim(task_id: int) -> None:
            assert team.board.claim("alice", task_id) is not None

        async def mcp_send() -> None:
            result = await session.call_tool("SendMessage", {"to": "bob", "message": "hello"})
            assert not result.is_error, result.content

        async def api_send() -> None:
            team.mailbox.send("alice", "bob", "hello")

        for i in range(10):  # warm both: imports, the schema cache, the page cache
            await mcp_claim(mcp_ids[i])
            await api_claim(api_ids[i])
            await mcp_send()
            await api_send()
        for i in range(10, n + 10):
            for op, path, act in (
                ("claim", "mcp stdio", lambda i=i: mcp_claim(mcp_ids[i])),
                ("claim", "python api", lambda i=i: api_claim(api_ids[i])),
                ("send", "mcp stdio", mcp_send),
                ("send", "python api", api_send),
            ):
                times.setdefault((op, path), []).append(await timed(act))
    team.store.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="calls per operation and path")
    args = parser.parse_args(argv)
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.platform()}, "
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        times = anyio.run(measure, Path(tmp).resolve() / "proj", args.n)
    print(f"{args.n} round trips each, SQLite (synchronous=full), same run\n")
    print(
        f"{'operation':<10} {'path':<12} {'median ms':>10} {'p95 ms':>8} {'overhead (median)':>18}"
    )
    for op in ("claim", "send"):
        base = statistics.median(times[(op, "python api")])
        for path in ("python api", "mcp stdio"):
            values = times[(op, path)]
            median = statistics.median(values)
            extra = f"{median - base:+.2f} ms" if path != "python api" else "(baseline)"
            print(f"{op:<10} {path:<12} {median:>10.2f} {pct(values, 95):>8.2f} {extra:>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
