"""One team, several supervisors: `accord run` on one host, `accord supervise --host` on others.

The hosts are processes on this machine with their own --host names, sharing one
store, which is what several machines sharing a PostgreSQL store look like to accord.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from accord.store import Store, open_store
from accord.team import digest
from accord.testing import FakeClock
from accord.testing.cli import accord, calls, rules, start
from accord.testing.wait import alive, until
from accord.types import MemberStatus, RunSettings, RunStatus, TaskStatus
from conftest import db, run_project, sleepers

MARK = "4243.7"  # a sleep length no other test's process uses


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return run_project(
        tmp_path,
        "[run]\nmax_restarts = 2\nrestart_backoff = 0.2\ngrace = 5\nsupervisor_lease = 2\n",
    )


def supervise(root: Path, host: str, *args: str) -> subprocess.Popen[str]:
    return start(root, "supervise", "--team", "main", "--host", host, *args)


def host_of(where: str, name: str) -> str | None:
    with open_store(where) as s:
        try:
            member = s.get_member("main", name)
        except Exception:
            return None
        busy = member.status in (MemberStatus.STARTING, MemberStatus.WORKING, MemberStatus.IDLE)
        return member.host if busy else None


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_a_member_pinned_to_a_host_runs_there(root: Path) -> None:
    accord(root, "init", "--team", "main")
    b = supervise(root, "b", "--once")
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    (
                        "spawn_teammate",
                        {"name": "alice", "instructions": "Do task 1.", "host": "b"},
                    ),
                    ("task_create", {"title": "write a.txt", "assignee": "alice"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "a.txt made"}))},
        ],
        "Waiting.",
    )
    mate = rules(
        root / "mate.json",
        [
            {"if": "Your task #1", "then": calls(("bash", {"command": "echo here > a.txt"}))},
            {
                "if": "[exit code 0]",
                "then": calls(("task_complete", {"task_id": 1, "result": "a"})),
            },
        ],
    )
    try:
        done = accord(
            root, "run", "make a", "--model", lead, "--teammate-model", mate, "--display", "plain"
        )
        out_b = b.communicate(timeout=60)[0]
    finally:
        stop(b)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "finished: a.txt made" in done.stdout
    assert "started alice" in out_b and "started alice" not in done.stdout, out_b
    assert b.returncode == 0
    with open_store(db(root)) as s:
        assert s.get_member("main", "alice").host == "b"
        taken = [e for e in s.read_events("main") if e.kind == "spawn_taken"]
        assert [(e.payload["name"], e.payload["host"]) for e in taken] == [("alice", "b")]
        hosts = {h.host: h.status for h in s.list_hosts("main")}
        assert hosts["b"] == "stopped"


def test_a_killed_host_has_its_members_started_elsewhere(root: Path, location: str) -> None:
    # On SQLite the hosts share a file; on PostgreSQL, what machines would share.
    assert accord(root, "init", "--team", "main", "--store", location).returncode == 0
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "first note"}),
                    ("task_create", {"title": "slow work", "assignee": "alice"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "slow work done"}))},
        ],
        "Waiting.",
    )
    mate = rules(
        root / "mate.json",
        [
            {
                "if": "Your task #1",
                "then": calls(("bash", {"command": f"touch started; exec sleep {MARK}"})),
            },
            {
                "if": "interrupted",
                "then": calls(("task_complete", {"task_id": 1, "result": "done"})),
            },
        ],
    )
    helpers = {name: supervise(root, name, "--once", "--store", location) for name in ("b", "c")}
    # The run's own host has one slot, which its lead takes: alice goes to b or c.
    sup = start(
        root,
        "run",
        "slow",
        "--model",
        lead,
        "--teammate-model",
        mate,
        "--display",
        "plain",
        "--slots",
        "1",
        "--store",
        location,
    )
    try:
        until(lambda: (root / "started").exists())
        first = host_of(location, "alice")
        assert first in helpers, first
        with open_store(location) as s:
            old_pid = s.get_member("main", "alice").pid
            task = s.get_task("main", 1)
            assert task.status == TaskStatus.IN_PROGRESS and task.owner == "alice"
        helpers[first].kill()  # the host goes away while alice holds task 1
        helpers[first].wait()
        until(lambda: not alive(old_pid), timeout=10)
        out, _ = sup.communicate(timeout=90)
    finally:
        outs = {name: stop(p) for name, p in helpers.items()}
        if sup.poll() is None:
            sup.kill()
    other = "c" if first == "b" else "b"
    assert "finished: slow work done" in out, out
    assert "restarted alice" in outs[other] or "started alice" in outs[other], outs
    with open_store(location) as s:
        assert s.get_member("main", "alice").host == other
        task = s.get_task("main", 1)
        assert task.status == TaskStatus.COMPLETED
        events = s.read_events("main")
        lost = [e.payload for e in events if e.kind == "host_lost"]
        assert [(p["host"], p["members"]) for p in lost] == [(first, ["alice"])]
        completed = [e for e in events if e.kind == "task_completed"]
        assert len(completed) == 1  # done once, by the alice that moved
        hosts = {h.host: h.status for h in s.list_hosts("main")}
        assert hosts[first] == "lost"
        run = s.get_run("main")
        assert run is not None and run.status == RunStatus.FINISHED
    assert not sleepers(MARK)


def test_supervise_refuses_a_host_already_served(root: Path) -> None:
    accord(root, "init", "--team", "main")
    b = supervise(root, "b")
    try:
        until(lambda: "waiting for team" in _peek(root))
        second = accord(root, "supervise", "--team", "main", "--host", "b")
        assert second.returncode == 2
        assert second.stderr.startswith("error: host 'b' of team 'main' is already served")
        bad = accord(root, "supervise", "--team", "main", "--host", "B.example")
        assert bad.returncode == 2 and "not a host name" in bad.stderr
        zero = accord(root, "supervise", "--team", "main", "--slots", "0")
        assert zero.returncode == 2 and "must be 1 or more" in zero.stderr
        nope = accord(root, "supervise", "--team", "nope", "--host", "c")
        assert nope.returncode == 2 and "no team named 'nope'" in nope.stderr
    finally:
        out = stop(b)
    assert "waiting for team main to run" in out
    with open_store(db(root)) as s:
        assert [(h.host, h.status) for h in s.list_hosts("main")] == [("b", "stopped")]


def _peek(root: Path) -> str:
    with open_store(db(root)) as s:
        hosts = s.list_hosts("main")
    return "waiting for team" if hosts and hosts[0].status == "live" else ""


def test_status_shows_hosts(root: Path) -> None:
    accord(root, "init", "--team", "main")
    b = supervise(root, "b", "--slots", "3")
    try:
        until(lambda: bool(_peek(root)))
        data = json.loads(accord(root, "status", "--json").stdout)
        assert [(h["host"], h["slots"], h["live"]) for h in data["hosts"]] == [("b", 3, True)]
        text = accord(root, "status").stdout
        assert "b" in text and "slots 3" in text
    finally:
        stop(b)


def test_the_lead_hears_of_a_lost_host(store: Store, clock: FakeClock) -> None:
    store.start_run("main", "goal", "alice", RunSettings())
    store.update_run("main", want=["bob"])
    store.register_host("main", "b", machine="m", pid=1, slots=None, lease_seconds=5)
    store.update_member("main", "bob", status=MemberStatus.WORKING, pid=3, host="b")
    clock.advance(6)
    store.place_wanted("main")
    text = digest.build(store, "main", 0, "alice").text
    assert "host b was lost" in text and "bob will be started elsewhere" in text
