"""``[run] fork_members``: members forked from a server that imported them once.

Real team runs: each forked member is still a process of its own, a child of the
supervisor (which adopted it), in a group of its own; killed, it is restarted like any
member; and ``kill -9`` of the supervisor ends every one of them, what they started,
and the fork server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from accord.errors import UnknownTeam
from accord.store import open_store
from accord.testing.cli import calls, rules, start
from accord.testing.wait import alive, until
from conftest import run_project, sleepers

MARK = "4251.93"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a child subreaper is Linux's")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return run_project(
        tmp_path, "[run]\nfork_members = true\nmax_restarts = 2\nrestart_backoff = 0.2\ngrace = 5\n"
    )


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _command(pid: int, missing: str | None = None) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        if missing is None:
            raise
        return missing


def _pid(root: Path, name: str) -> int | None:
    if not (root / ".accord" / "accord.db").exists():
        return None
    with open_store(str(root / ".accord" / "accord.db")) as store:
        try:
            members = store.list_members("main")
        except UnknownTeam:
            return None  # the run has not made it yet
        for m in members:
            if m.name == name and m.status in ("working", "idle") and alive(m.pid):
                return m.pid
    return None


def _forked() -> list[int]:
    """Live processes started as the fork server: the server and the members it forked."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and alive(int(entry.name))
        and "accord.runtime.forks" in _command(int(entry.name), missing="")
    ]


def _run(root: Path, mate_rules: list[dict[str, object]]) -> subprocess.Popen[str]:
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "Do your task."}),
                    ("task_create", {"title": "the task", "assignee": "alice"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "all done"}))},
        ],
        "Waiting.",
    )
    mate = rules(root / "mate.json", mate_rules)
    return start(
        "run", "one task", "--model", lead, "--teammate-model", mate, "--display", "plain", cwd=root
    )


def test_forked_members_run_a_team_to_the_end_as_the_supervisors_children(root: Path) -> None:
    sup = _run(
        root,
        [
            {
                "if": "Your task #1",
                "then": calls(("bash", {"command": "sleep 1; echo worked"})),
            },
            {"if": "worked", "then": calls(("task_complete", {"task_id": 1, "result": "ok"}))},
        ],
    )
    try:
        until(lambda: _pid(root, "alice") is not None)
        alice, lead = _pid(root, "alice"), _pid(root, "lead")
        assert alice is not None and lead is not None
        for pid in (alice, lead):
            assert _parent(pid) == sup.pid  # adopted: the supervisor waits for it
            assert "accord.runtime.forks" in _command(pid)  # forked, not started afresh
            assert os.getpgid(pid) == pid  # leads a group of its own
        assert Path(f"/proc/{alice}/comm").read_text().strip() == "accord alice"
        out, _ = sup.communicate(timeout=120)
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
    assert sup.returncode == 0, out
    with open_store(str(root / ".accord" / "accord.db")) as store:
        assert [t.status for t in store.list_tasks("main")] == ["completed"]


def test_a_killed_forked_member_is_restarted_and_kill_9_of_the_supervisor_ends_all(
    root: Path,
) -> None:
    sup = _run(
        root,
        [{"if": "Your task #1", "then": calls(("bash", {"command": f"sleep {MARK}; echo"}))}],
    )
    try:
        until(lambda: bool(sleepers(MARK)))
        first = _pid(root, "alice")
        assert first is not None
        os.kill(first, 9)
        until(lambda: (p := _pid(root, "alice")) is not None and p != first, timeout=60)
        until(lambda: bool(sleepers(MARK)))
        server = [p for p in _forked() if _parent(p) == sup.pid]
        members = [_pid(root, "alice"), _pid(root, "lead")]
        sup.kill()
        sup.wait()
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
    # Each member's own sentinel ends its group; the server's ends the server.
    until(lambda: not sleepers(MARK), timeout=10)
    until(lambda: not any(alive(p) for p in [*server, *members] if p is not None), timeout=10)
