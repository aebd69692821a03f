"""What the sandbox costs a bash tool call: sandboxed against unsandboxed, in the same run.

A project is made in a temporary folder: a git repository of ``--files`` files, a
SQLite store in ``.accord/``, and a member's worktree under
``.accord/worktrees/main/alice``. The real bash tool (``accord.agent.tools.shell.bash``)
then runs each command ``--n`` times in that worktree with the member's sandbox
(bubblewrap: a tmpfs root, read-only binds, the store hidden, new PID, IPC, UTS and
network namespaces) and ``--n`` times without it (the baseline), alternating so that
a change in the machine's load hits both alike. Each call's wall time is measured from
the tool call to its result, so it includes building bwrap's options, bwrap's own
start and the command.

    python bench/sandbox.py [--n 50] [--files 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from accord import sandbox
from accord.agent.tools.base import ToolContext
from accord.agent.tools.shell import BashArgs, bash
from accord.sandbox import Sandbox
from accord.store import open_store

COMMANDS = ("true", "git status --porcelain")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def make_project(root: Path, files: int) -> tuple[Path, str]:
    """A git project with ``files`` files, a store and alice's worktree."""
    (root / ".accord").mkdir(parents=True)
    (root / ".gitignore").write_text(".accord/\n")
    (root / "accord.toml").write_text("")
    for i in range(files):
        folder = root / "src" / f"d{i % 40}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.py").write_text(f"X = {i}\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "start")
    work = root / ".accord" / "worktrees" / "main" / "alice"
    git(root, "worktree", "add", "-q", "-b", "accord/main/alice", str(work))
    location = str(root / ".accord" / "accord.db")
    with open_store(location, create=True) as store:
        store.create_team("main")
    return work, location


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def call_ms(ctx: ToolContext, command: str) -> float:
    started = time.perf_counter()
    result = bash(ctx, BashArgs(command=command))
    elapsed = (time.perf_counter() - started) * 1000
    if not result.startswith("[exit code 0]"):
        raise SystemExit(f"`{command}` failed: {result[:500]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="calls per command and mode")
    parser.add_argument("--files", type=int, default=2000, help="files in the repository")
    args = parser.parse_args()
    state = sandbox.available()
    if not state.ok:
        print(f"cannot measure: {state.why}", file=sys.stderr)
        return 1
    bwrap = subprocess.run(
        [sandbox.bwrap_path() or "bwrap", "--version"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.platform()}, "
        f"python {platform.python_version()}, {bwrap}, load {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve() / "proj"
        work, location = make_project(root, args.files)
        walled = Sandbox.for_project(root, work, location)
        ctx = {
            "sandboxed": ToolContext(work, "alice", sandbox=walled),
            "unsandboxed": ToolContext(work, "alice"),
        }
        times: dict[tuple[str, str], list[float]] = {}
        for command in COMMANDS:
            for _ in range(5):  # warm the page cache and git's index for both
                for c in ctx.values():
                    call_ms(c, command)
            for _ in range(args.n):
                for mode, c in ctx.items():
                    times.setdefault((command, mode), []).append(call_ms(c, command))
    print(f"{args.n} calls each, in a worktree of a {args.files}-file repository\n")
    print(
        f"{'command':<24} {'mode':<12} {'median ms':>10} {'p95 ms':>8} {'overhead ms (median)':>21}"
    )
    for command in COMMANDS:
        base = statistics.median(times[(command, "unsandboxed")])
        for mode in ("unsandboxed", "sandboxed"):
            values = times[(command, mode)]
            median = statistics.median(values)
            extra = f"{median - base:+.1f}" if mode == "sandboxed" else "(baseline)"
            print(f"{command:<24} {mode:<12} {median:>10.1f} {pct(values, 95):>8.1f} {extra:>21}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
