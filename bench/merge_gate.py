"""What worktree isolation costs: making a member's worktree, and a completion through the
merge gate, on a repository of 2,000 files, beside their baselines.

- **worktree creation**: ``Team.worktrees.workspace(member)`` for a new member (the
  integration branch exists; a ``git worktree add -b`` and an event), beside a bare
  ``git worktree add -b`` of the same commit.
- **completion**: a member changes one file of its own and completes its task
  (``Team.complete``): commit on its branch, the team's merge lock, ``git merge-tree``,
  the merge commit and ``update-ref``, the store's completion, the member's
  fast-forward. Once with no TaskCompleted hook ("merge only"), once with a trivial
  one (``true``), which adds the scratch worktree's ``checkout -f`` and ``clean -fdx``
  of the merged tree and the hook's start. The baseline is a plain store completion
  (``Board.complete``, shared mode, no hook).

    python bench/merge_gate.py              # 2,000 files, 20 completions per cell
    python bench/merge_gate.py --files 500 --rounds 5
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

from claims import cpu_model  # bench/claims.py: the same machine line

from accord.config import Config
from accord.git import git
from accord.store import open_store
from accord.team import Team
from accord.types import MemberRole, NewTask


def machine(folder: Path) -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    return [
        f"cores:   {os.cpu_count()} ({usable} usable), {cpu_model()}",
        f"git:     {version.strip()}, python {platform.python_version()}",
        f"os:      {platform.platform()}",
        f"folder:  {folder}",
        f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min averages)",
    ]


def repository(root: Path, files: int) -> None:
    """A project of ``files`` small files in 20 folders, one commit, an ignored .accord/."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for i in range(files):
        folder = root / f"pkg{i % 20}"
        folder.mkdir(exist_ok=True)
        (folder / f"mod{i}.py").write_text(f'"""module {i}"""\n\nVALUE = {i}\n' + "x = 1\n" * 20)
    (root / ".accord").mkdir()
    (root / ".accord" / ".gitignore").write_text("*\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")


def team_in(root: Path, toml: str, members: list[str]) -> Team:
    import tomllib

    (root / "accord.toml").write_text(toml)
    store = open_store(str(root / ".accord" / "accord.db"), create=True)
    team = Team.create(store, "bench", Config.model_validate(tomllib.loads(toml)), root)
    team.roster.add("lead", role=MemberRole.LEAD)
    for m in members:
        team.roster.add(m)
    return team


def creation(root: Path, rounds: int) -> tuple[list[float], list[float]]:
    team = team_in(root, "", [f"m{i}" for i in range(rounds)])
    team.worktrees.start()
    ours, bare = [], []
    for i in range(rounds):
        began = time.perf_counter()
        team.worktrees.workspace(f"m{i}")
        ours.append(time.perf_counter() - began)
        began = time.perf_counter()
        path = root.parent / f"bare{i}"
        git(root, "worktree", "add", "-q", "-b", f"bare{i}", str(path), "accord/bench")
        bare.append(time.perf_counter() - began)
    team.store.close()
    return ours, bare


def completions(root: Path, rounds: int, toml: str, shared: bool) -> list[float]:
    team = team_in(root, toml, ["alice"])
    workspace = team.worktrees.workspace("alice") if not shared else root
    times = []
    for i in range(rounds):
        task = team.board.add(NewTask(title=f"change {i}", assignee="alice"))
        claim = team.board.claim("alice", task.id)
        assert claim is not None
        (workspace / f"pkg{i % 20}" / f"mod{i}.py").write_text(f"VALUE = {i + 1}\n")
        began = time.perf_counter()
        if shared:
            team.board.complete(task.id, "alice", claim.fencing_token, "done")
        else:
            team.complete(task.id, "alice", claim.fencing_token, "done")
        times.append(time.perf_counter() - began)
    team.store.close()
    return times


def row(label: str, times: list[float], base: float | None) -> str:
    median = statistics.median(times)
    ratio = f"{median / base:>9.1f}x" if base else f"{'':>10}"
    return f"{label:<34} {median * 1000:>10.1f} {max(times) * 1000:>9.1f} {ratio}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="files in the repository")
    parser.add_argument("--rounds", type=int, default=20, help="measurements per cell")
    parser.add_argument("--dir", help="where to make the repositories (default: a temp folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        print("\n".join(machine(folder)))
        print(f"repository: {args.files} files; {args.rounds} rounds per cell\n")
        made = {}
        for cell in ("create", "plain", "merge", "hook"):
            made[cell] = folder / cell / "proj"
            repository(made[cell], args.files)
        ours, bare = creation(made["create"], args.rounds)
        plain = completions(made["plain"], args.rounds, '[team]\nisolation = "shared"\n', True)
        merge = completions(made["merge"], args.rounds, "", False)
        hook = completions(made["hook"], args.rounds, '[hooks]\nTaskCompleted = ["true"]\n', False)
        print(f"{'':<34} {'median ms':>10} {'max ms':>9} {'vs base':>10}")
        base = statistics.median(bare)
        print(row("worktree: bare git worktree add", bare, None))
        print(row("worktree: Team.worktrees.workspace", ours, base))
        base = statistics.median(plain)
        print(row("complete: plain store (baseline)", plain, None))
        print(row("complete: merge gate, no hook", merge, base))
        print(row("complete: merge gate + hook `true`", hook, base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
