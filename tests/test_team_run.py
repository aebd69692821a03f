"""Team runs for real: `accord run` with a supervisor, a lead and teammates as processes.

The models are rule scripts (scripted:FILE), so runs are offline and their outcome
deterministic even though processes wake in any order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from accord.store import open_store
from accord.testing.cli import accord, calls, rules, start
from accord.testing.wait import alive, until
from accord.types import MemberStatus, RunStatus, TaskStatus, TranscriptKind
from conftest import LEAD_FINISH, LEAD_PLAN, MARK, MATE, db, member_pids, sleepers


def test_a_team_run_finishes_and_leaves_no_process(root: Path) -> None:
    lead = rules(root / "lead.json", [LEAD_PLAN, LEAD_FINISH], "Waiting for the team.")
    mate = rules(root / "mate.json", MATE)
    done = accord(
        root, "run", "make c.txt", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "finished: c.txt made" in done.stdout
    assert (root / "c.txt").read_text() == "a\nb\n"
    with open_store(db(root)) as s:
        assert [t.status for t in s.list_tasks("main")] == [TaskStatus.COMPLETED] * 3
        run = s.get_run("main")
        assert run is not None and run.status == RunStatus.FINISHED
        assert {m.status for m in s.list_members("main")} == {MemberStatus.STOPPED}
        # Each teammate was started exactly once.
        starts = [e for e in s.read_events("main") if e.kind == "spawn_started"]
        assert sorted(e.payload["name"] for e in starts) == ["alice", "bob"]
    assert not any(alive(p) for p in member_pids(root))
    status = json.loads(accord(root, "status", "--json").stdout)
    assert status["run"]["status"] == "finished" and status["board"]["completed"] == 3


def test_supervisor_killed_then_resumed_loses_nothing(root: Path) -> None:
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
                "then": calls(("write_file", {"path": "half.txt", "content": "1"})),
            },
            {
                "if": "created half.txt",
                "then": calls(("bash", {"command": f"touch started; exec sleep {MARK}"})),
            },
        ],
    )
    sup = start(
        root, "run", "slow", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    try:
        until(lambda: (root / "started").exists())
        pids = member_pids(root)
        sup.kill()
        sup.wait()
    finally:
        if sup.poll() is None:
            sup.kill()
    # Everything the supervisor started dies with it: members and their tool processes.
    until(lambda: not any(alive(p) for p in pids) and not sleepers(), timeout=10)
    with open_store(db(root)) as s:
        task = s.get_task("main", 1)
        assert task.status == TaskStatus.IN_PROGRESS and task.owner == "alice"
        s.send_message  # noqa: B018 - the store is shared with the resumed run below
    accord(root, "msg", "send", "--from", "lead", "--to", "alice", "note while down")
    # The resumed alice is told its bash call was interrupted, and completes.
    rules(
        root / "mate.json",
        [{"if": "interrupted", "then": calls(("task_complete", {"task_id": 1, "result": "done"}))}],
    )
    resumed = accord(root, "resume", "--display", "plain")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "finished: slow work done" in resumed.stdout
    with open_store(db(root)) as s:
        assert s.get_task("main", 1).status == TaskStatus.COMPLETED
        assert s.get_task("main", 1).attempts == 1  # not redone: the same claim finished
        texts = [
            json.dumps(e.body)
            for e in s.read_transcript("main", "alice")
            if e.kind == TranscriptKind.MESSAGE
        ]
        assert sum("first note" in t for t in texts) == 1
        assert sum("note while down" in t for t in texts) == 1
        assert not s.list_messages("main", member="alice", unacked=True)
    assert (root / "half.txt").read_text() == "1"


def test_a_spawn_with_a_model_that_cannot_be_used_is_the_leads_tool_error(root: Path) -> None:
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    (
                        "spawn_teammate",
                        {
                            "name": "carol",
                            "instructions": "hi",
                            "model": "scripted:/nonexistent/script.json",
                        },
                    ),
                ),
            },
            {
                "if": "could not use model",
                "once": True,
                "then": calls(("finish", {"summary": "carol could not start"})),
            },
        ],
        "Waiting.",
    )
    done = accord(root, "run", "try carol", "--model", lead, "--display", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    with open_store(db(root)) as s:
        kinds = [e.kind for e in s.read_events("main")]
        assert "spawn_requested" not in kinds and "member_crashed" not in kinds
        results = [
            r
            for e in s.read_transcript("main", "lead")
            for r in e.body.get("tool_results", ())
            if r.get("name") == "spawn_teammate"
        ]
    assert results and results[0]["error"] and "cannot read the model script" in str(results[0])


def test_a_second_supervisor_refuses(root: Path) -> None:
    lead = rules(root / "lead.json", [], "Waiting.")
    sup = start(root, "run", "idle team", "--model", lead, "--display", "plain")
    try:

        def supervised() -> bool:
            if not Path(db(root)).exists():
                return False
            with open_store(db(root)) as s:
                run = s.get_run("main") if s.list_teams() else None
                return run is not None and run.supervisor_pid == sup.pid

        until(supervised)
        second = accord(root, "resume", "--display", "plain")
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "supervisor" in lines[0]
        stopped = accord(root, "stop")
        assert stopped.returncode == 0, stopped.stderr
        sup.wait(timeout=30)
    finally:
        if sup.poll() is None:
            sup.kill()
    with open_store(db(root)) as s:
        run = s.get_run("main")
        assert run is not None and run.status == RunStatus.STOPPED
    assert not any(alive(p) for p in member_pids(root))


def test_ctrl_c_during_a_tool_call_stops_cleanly_and_resumes(root: Path) -> None:
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "go"}),
                    ("task_create", {"title": "long", "assignee": "alice"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "long done"}))},
        ],
        "Waiting.",
    )
    mate = rules(
        root / "mate.json",
        [
            {
                "if": "Your task #1",
                "once": True,
                "then": calls(("bash", {"command": f"touch started; exec sleep {MARK}"})),
            },
        ],
    )
    sup = start(
        root, "run", "long", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    try:
        until(lambda: (root / "started").exists())
        pids = member_pids(root)
        sup.send_signal(signal.SIGINT)
        out, _ = sup.communicate(timeout=60)
    finally:
        if sup.poll() is None:
            sup.kill()
    assert sup.returncode == 130, out  # interrupted by Ctrl+C: not finished, not a failure
    assert "accord resume" in out
    assert not any(alive(p) for p in pids) and not sleepers()
    with open_store(db(root)) as s:
        run = s.get_run("main")
        assert run is not None and run.status == RunStatus.STOPPED
        assert "alice" in run.wanted  # resumable: alice comes back
        # The stop cut her command short: she stopped herself, not the grace's kill.
        stops = [
            e.payload["reason"]
            for e in s.read_events("main")
            if e.kind == "member_stopped" and e.payload["name"] == "alice"
        ]
        assert stops == ["signal"], stops
    rules(
        root / "mate.json",
        [
            {"if": "interrupted", "then": calls(("task_complete", {"task_id": 1, "result": "ok"}))},
            {
                "if": "Your task #1",
                "then": calls(("task_complete", {"task_id": 1, "result": "ok"})),
            },
        ],
    )
    resumed = accord(root, "resume", "--display", "plain")
    assert resumed.returncode == 0 and "finished: long done" in resumed.stdout, resumed.stdout


def test_run_refuses_before_anything_starts(root: Path) -> None:
    no_model = accord(root, "run", "anything", "--display", "plain")
    assert no_model.returncode == 2
    assert no_model.stderr.startswith("error: no model configured")
    no_key = subprocess.run(
        [sys.executable, "-m", "accord", "run", "x", "--model", "anthropic:claude-haiku-4-5"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ACCORD_") and k != "ANTHROPIC_API_KEY"
        },
    )
    assert no_key.returncode == 2 and "ANTHROPIC_API_KEY" in no_key.stderr
    assert len(no_key.stderr.strip().splitlines()) == 1
    with open_store(db(root)) as s:
        assert s.list_teams() == []  # nothing was written


def test_not_a_git_repository_works(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    lead = rules(
        folder / "lead.json",
        [
            {"if": "# First wake", "then": calls(("finish", {"summary": "nothing needed"}))},
        ],
    )
    done = accord(folder, "run", "check", "--model", lead, "--display", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "finished: nothing needed" in done.stdout


def test_a_team_declared_in_accord_toml_starts_with_the_lead(root: Path) -> None:
    (root / ".accord" / "agents").mkdir()
    (root / ".accord" / "agents" / "writer.md").write_text(
        "---\nname: writer\ndescription: writes files\ntools: Write\n---\nYou write files.\n"
    )
    mate = rules(
        root / "mate.json",
        [
            {
                "if": "Your task #1",
                "then": calls(("write_file", {"path": "w.txt", "content": "w"})),
            },
            {
                "if": "created w.txt",
                "then": calls(("task_complete", {"task_id": 1, "result": "w"})),
            },
        ],
    )
    (root / "accord.toml").write_text(
        "[run]\nmax_restarts = 1\nrestart_backoff = 0.2\ngrace = 5\n"
        f'[[team.members]]\nname = "wren"\nagent = "writer"\nmodel = "{mate}"\n'
    )
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(("task_create", {"title": "write w.txt", "assignee": "wren"})),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "w.txt written"}))},
        ],
        "Waiting.",
    )
    done = accord(root, "run", "write w", "--model", lead, "--display", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / "w.txt").read_text() == "w"
    with open_store(db(root)) as s:
        wren = s.get_member("main", "wren")
        assert wren.agent == "writer" and wren.model == mate
        assert not [e for e in s.read_events("main") if e.kind == "spawn_requested"]


def test_a_bad_declared_member_is_refused_before_anything_starts(root: Path) -> None:
    (root / "accord.toml").write_text('[[team.members]]\nname = "x"\nagent = "missing"\n')
    lead = rules(root / "lead.json", [], "Waiting.")
    done = accord(root, "run", "goal", "--model", lead, "--display", "plain")
    assert done.returncode == 2 and "no agent definition named 'missing'" in done.stderr
    with open_store(db(root)) as s:
        assert s.list_teams() == []


def test_a_member_killed_mid_run_is_restarted_and_continues(root: Path) -> None:
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "first note"}),
                    ("task_create", {"title": "long", "assignee": "alice"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "long done"}))},
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
        ],
    )
    sup = start(
        root, "run", "long", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    try:
        until(lambda: (root / "started").exists())
        (pid,) = [p for p in member_pids(root) if p != lead_pid(root)]
        # From now on alice completes when told her call was interrupted.
        rules(
            root / "mate.json",
            [
                {
                    "if": "interrupted",
                    "then": calls(("task_complete", {"task_id": 1, "result": "done"})),
                },
            ],
        )
        os.kill(pid, signal.SIGKILL)
        out, _ = sup.communicate(timeout=90)
    finally:
        if sup.poll() is None:
            sup.kill()
    assert "alice crashed" in out and "restarted alice" in out and "finished" in out, out
    with open_store(db(root)) as s:
        task = s.get_task("main", 1)
        assert task.status == TaskStatus.COMPLETED and task.attempts == 1
        texts = [
            json.dumps(e.body)
            for e in s.read_transcript("main", "alice")
            if e.kind == TranscriptKind.MESSAGE
        ]
        assert sum("first note" in t for t in texts) == 1
    assert not sleepers()


def test_a_forced_stop_leaves_no_process(root: Path) -> None:
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "go"}),
                    ("task_create", {"title": "long", "assignee": "alice"}),
                ),
            },
        ],
        "Waiting.",
    )
    mate = rules(
        root / "mate.json",
        [
            {
                "if": "Your task #1",
                "then": calls(("bash", {"command": f"touch started; sleep {MARK}; true"})),
            },
        ],
    )
    (root / "accord.toml").write_text("[run]\ngrace = 60\n")
    sup = start(
        root, "run", "long", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    try:
        until(lambda: (root / "started").exists())
        pids = member_pids(root)
        sup.send_signal(signal.SIGINT)  # graceful: alice is in a 70-minute tool call
        time.sleep(0.5)
        sup.send_signal(signal.SIGINT)  # forced
        sup.wait(timeout=30)
    finally:
        if sup.poll() is None:
            sup.kill()
    until(lambda: not any(alive(p) for p in pids) and not sleepers(), timeout=10)


def lead_pid(root: Path) -> int | None:
    with open_store(db(root)) as s:
        return s.get_member("main", "lead").pid
