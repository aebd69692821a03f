"""`accord demo`, run as a person runs it: a whole team, offline, in a few seconds.

The demo's promises: scripted replies said up front, a real team (supervisor,
processes, hooks, store) that finishes, the tests hook refusing exactly one
completion, a repository whose tests pass, a team `accord status` and `accord
cost` can show afterwards, no process left behind, and nobody else's store touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from accord.store import open_store
from accord.testing.cli import accord
from accord.testing.wait import alive
from accord.types import TaskStatus


def working_in(folder: Path) -> list[int]:
    """Live processes whose working directory is ``folder`` or inside it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if (cwd == folder or folder in cwd.parents) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_runs_a_whole_team_offline(tmp_path: Path) -> None:
    # Run it from inside another accord project, whose store it must not touch,
    # even with ACCORD_STORE pointing there.
    home = tmp_path / "home"
    home.mkdir()
    assert accord(home, "init", "--team", "main").returncode == 0
    own_store = home / ".accord" / "accord.db"
    before = digest(own_store)
    where = tmp_path / "demo"

    started = time.monotonic()
    done = accord(
        home,
        "demo",
        "--dir",
        str(where),
        "--display",
        "plain",
        env={"ACCORD_STORE": str(own_store), "ACCORD_TEAM": "main"},
    )
    seconds = time.monotonic() - started

    assert done.returncode == 0, done.stdout + done.stderr
    assert seconds < 60
    first = done.stdout.splitlines()[0]
    assert "scripted" in first and "no API key" in first
    assert f"cd {where} && accord status" in done.stdout
    assert f"cd {where} && accord cost" in done.stdout
    assert "REFUSED #3" in done.stdout  # the story shows the hook's refusal

    # The code the team wrote passes its own tests.
    tests = subprocess.run(
        [sys.executable, "-m", "unittest", "-q"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tests.returncode == 0, tests.stderr
    assert "Ran 4 tests" in tests.stderr
    assert (where / ".git").is_dir()

    with open_store(str(where / ".accord" / "accord.db")) as store:
        tasks = store.list_tasks("demo")
        assert [t.status for t in tasks] == [TaskStatus.COMPLETED] * 3
        assert tasks[2].blocked_by == (1, 2)
        hooks = [e.payload for e in store.read_events("demo") if e.kind == "hook_run"]
        assert [h["exit_code"] for h in hooks].count(2) == 1
        assert [h["exit_code"] for h in hooks].count(0) >= 1
        refused = next(h for h in hooks if h["exit_code"] == 2)
        assert refused["task_id"] in (3, "3")
        pids = [m.pid for m in store.list_members("demo")]
    assert len(pids) == 3 and all(pids)

    # Nothing is left running: not the members, nor anything they started.
    assert [p for p in pids if p is not None and alive(p)] == []
    assert working_in(where) == []

    status = accord(where, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["run"]["status"] == "finished"
    cost = accord(where, "cost", "--json")
    assert cost.returncode == 0, cost.stderr
    assert json.loads(cost.stdout)["total"]["calls"] > 0

    assert digest(own_store) == before


def test_demo_refuses_a_folder_in_use(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine\n")

    refused = accord(tmp_path, "demo", "--dir", str(busy), "--display", "plain")

    assert refused.returncode == 2
    lines = refused.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "not empty" in lines[0]
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    assert (busy / "notes.txt").read_text() == "mine\n"
