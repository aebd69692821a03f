"""Start-up time of a member with two stdio MCP servers, against the same member without.

Start-up is from ``build_agent`` (which starts the servers, each in the member's
sandbox when bubblewrap runs here) to the first model request being ready: the
tools it offers, MCP tools included, which waits for both servers to answer
``initialize`` and ``tools/list``. Servers: the published ``mcp-server-time`` and
a small server written with the SDK (``MCPServer``), both Python. The baseline is
the same member, same project, no ``.mcp.json``, in the same run. Then the member
is closed: the time to stop both servers is shown too.

    python bench/mcp_servers.py            # 5 rounds each
    python bench/mcp_servers.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from accord import sandbox
from accord.agent.launch import build_agent
from accord.config import Config
from accord.llm.scripted import ScriptedModel
from accord.store import open_store
from accord.team import Team
from accord.types import MemberRole

SERVER = """\
from mcp.server.mcpserver import MCPServer

app = MCPServer("echo")


@app.tool()
def echo(text: str) -> str:
    return text


app.run()
"""


def one(root: Path, with_servers: bool) -> tuple[float, float, int]:
    """Seconds to the first request, seconds to close, tools offered."""
    mcp = root / ".mcp.json"
    if with_servers:
        mcp.write_text(
            json.dumps(
                {
                    "mcpServers": {
                        "time": {"command": str(Path(sys.executable).parent / "mcp-server-time")},
                        "echo": {"command": sys.executable, "args": [str(root / "echo.py")]},
                    }
                }
            )
        )
    elif mcp.exists():
        mcp.unlink()
    store = open_store(str(root / ".accord" / "accord.db"), create=True)
    name = f"t{time.monotonic_ns()}"
    store.create_team(name)
    store.add_member(name, "alice", token_hash="x", role=MemberRole.TEAMMATE)
    team = Team.open(store, name, Config(), root)
    started = time.perf_counter()
    agent = build_agent(team, "alice", Config(), root, model=ScriptedModel([]))
    tools = len(agent.toolbox.specs())
    ready = time.perf_counter() - started
    closing = time.perf_counter()
    if agent.mcp is not None:
        agent.mcp.close()
    closed = time.perf_counter() - closing
    store.close()
    return ready, closed, tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / "echo.py").write_text(SERVER)
        one(root, False)  # warm-up: imports
        rows: dict[bool, list[tuple[float, float, int]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for with_servers in (False, True):
                rows[with_servers].append(one(root, with_servers))
    print(f"sandbox: {'bubblewrap' if sandbox.available().ok else 'none'}; {args.rounds} rounds")
    print(f"{'member':<28}{'tools':>6}{'start-up ms':>14}{'stop ms':>10}")
    for with_servers, label in (
        (False, "no MCP servers (baseline)"),
        (True, "two stdio MCP servers"),
    ):
        got = rows[with_servers]
        ready = statistics.median(r[0] for r in got) * 1000
        closed = statistics.median(r[1] for r in got) * 1000
        print(f"{label:<28}{got[0][2]:>6}{ready:>14.0f}{closed:>10.0f}")


if __name__ == "__main__":
    main()
