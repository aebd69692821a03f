"""A run's lifecycle as a person meets it: every stop explained, exit codes that say
how it ended, a dead supervisor noticed, stalls, budgets, resumes that bring back
what stopped, and the store pulled from under a running team."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accord import process
from accord.config import Config, locate
from accord.errors import UserError
from accord.runtime.supervisor import Process, Settings, Supervisor
from accord.runtime.team_run import prepare_resume, prepare_run
from accord.store import open_store
from accord.team import Team
from accord.team.roster import hash_token, new_token
from accord.testing.cli import accord, calls, rules, start
from accord.testing.wait import alive, until
from accord.types import (
    MemberRole,
    MemberStatus,
    MessageKind,
    NewTask,
    OutgoingMessage,
    RunSettings,
    RunStatus,
)
from conftest import LEAD_FINISH, LEAD_PLAN, MARK, MATE, db, member_pids, sleepers, status

WAIT_FOREVER = {"if": "# First wake", "once": True, "then": {"text": "Nothing yet."}}


def supervised_by(root: Path, pid: int) -> bool:
    if not Path(db(root)).exists():
        return False
    with open_store(db(root)) as s:
        if not s.list_teams():
            return False
        run = s.get_run("main")
        lead = {m.name: m for m in s.list_members("main")}.get("lead")
        return (
            run is not None
            and run.supervisor_pid == pid
            and lead is not None
            and lead.status == MemberStatus.WORKING
        )


def with_toml(root: Path, extra: str) -> None:
    (root / "accord.toml").write_text((root / "accord.toml").read_text() + extra)


# exit codes -------------------------------------------------------------------------


def test_run_exits_0_finished_1_stopped_2_bad_input_130_interrupted(root: Path) -> None:
    bad = accord(root, "run", "go", "--model", "nope", "--display", "plain")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    assert not Path(db(root)).exists() or not open_store(db(root)).list_teams()

    lead = rules(root / "lead.json", [WAIT_FOREVER], "Waiting.")
    sup = start(root, "run", "idle", "--model", lead, "--display", "plain")
    try:
        until(lambda: supervised_by(root, sup.pid))
        assert accord(root, "stop").returncode == 0
        out, _ = sup.communicate(timeout=60)
    finally:
        if sup.poll() is None:
            sup.kill()
    assert sup.returncode == 1, out
    assert "stopped without finishing (stopped: stopped by a person" in out
    assert status(root)["run"]["outcome"]["outcome"] == "stopped"

    sup = start(root, "resume", "--display", "plain")
    try:
        until(lambda: supervised_by(root, sup.pid))
        sup.send_signal(signal.SIGINT)
        out, _ = sup.communicate(timeout=60)
    finally:
        if sup.poll() is None:
            sup.kill()
    assert sup.returncode == 130, out
    assert status(root)["run"]["outcome"] == {
        "outcome": "interrupted",
        "reason": "stopped by Ctrl+C",
    }

    rules(root / "lead.json", [{"if": "Goal", "then": calls(("finish", {"summary": "ok"}))}])
    finished = accord(root, "resume", "--display", "plain")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert status(root)["run"]["outcome"] == {"outcome": "finished", "reason": "ok"}


# a dead supervisor ------------------------------------------------------------------


def test_status_says_within_seconds_that_a_killed_supervisor_is_gone(root: Path) -> None:
    lead = rules(root / "lead.json", [WAIT_FOREVER], "Waiting.")
    sup = start(root, "run", "idle", "--model", lead, "--display", "plain")
    try:
        until(lambda: supervised_by(root, sup.pid))
        pids = member_pids(root)
        sup.kill()
        sup.wait()
    finally:
        if sup.poll() is None:
            sup.kill()
    killed = time.monotonic()
    until(lambda: not any(alive(p) for p in pids), timeout=10)
    # A member the dead supervisor had just started is left `starting`: swept too.
    with open_store(db(root)) as s:
        s.add_member("main", "late", token_hash=hash_token(new_token()))
        s.update_member("main", "late", status=MemberStatus.STARTING, pid=pids[0], host=None)
    data = status(root)
    assert time.monotonic() - killed < 5
    assert data["run"]["status"] == "stopped"
    assert data["run"]["outcome"]["outcome"] == "crashed"
    assert "accord resume" in data["run"]["outcome"]["reason"]
    assert {m["name"]: m["status"] for m in data["members"]} == {
        "lead": "stopped",
        "late": "stopped",
    }
    assert "accord resume" in accord(root, "status").stdout
    # And `accord team delete` is not held back by members that are not there.
    assert accord(root, "team", "delete", "main").returncode == 0


# stop ----------------------------------------------------------------------------


def test_stop_refuses_a_member_not_running_and_a_finished_run_stays_finished(
    root: Path,
) -> None:
    lead = rules(root / "lead.json", [LEAD_PLAN, LEAD_FINISH], "Waiting.")
    mate = rules(root / "mate.json", MATE)
    done = accord(root, "run", "c", "--model", lead, "--teammate-model", mate, "--display", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    member = accord(root, "stop", "alice")
    assert member.returncode == 2 and member.stderr.startswith("error: alice is not running")
    team = accord(root, "stop")
    assert team.returncode == 3 and "finished already" in team.stderr
    with open_store(db(root)) as s:
        run = s.get_run("main")
        assert run is not None and run.status == RunStatus.FINISHED
        assert not s.list_messages("main", member="alice", unacked=True)


def test_a_shutdown_request_left_from_an_earlier_run_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "accord.toml").write_text('[[team.members]]\nname = "alice"\n')
    (tmp_path / "m.json").write_text('{"rules": [], "otherwise": {"text": "ok"}}')
    with open_store(str(tmp_path / "s.db"), create=True) as s:
        s.create_team("main")
        s.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
        s.add_member("main", "alice", token_hash="y")
        (left,) = s.send_message(
            "main",
            OutgoingMessage("lead", "alice", "stop", kind=MessageKind.SHUTDOWN_REQUEST),
        )
        project = locate(tmp_path, str(tmp_path / "s.db"))
        prepare_run(Team(s, "main"), project, "again", model=f"scripted:{tmp_path / 'm.json'}")
        assert not s.list_messages("main", member="alice", unacked=True)


# stalls, resumes, budgets -------------------------------------------------------------


def test_a_stalled_run_ends_and_resume_brings_back_a_fixed_member(root: Path) -> None:
    (root / "accord.toml").write_text(
        # The stall window is also how long a member may go without a heartbeat, and
        # a member process can take seconds to start on a loaded machine.
        (root / "accord.toml").read_text().replace("[run]\n", "[run]\nsilent_after = 8\n")
        + "\n[agent]\nheartbeat_seconds = 0.5\n"
    )
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(("task_create", {"title": "write c.txt", "assignee": "carol"})),
            },
            # Carol may finish before the lead wakes to the resume: one digest has both.
            {"if": "1 completed", "then": calls(("finish", {"summary": "c done"}))},
            {"if": "the person resumed the run", "once": True, "then": {"text": "Carol is back."}},
        ],
        "Waiting.",
    )
    script = root / "carol.json"  # not there yet: carol cannot start
    with open_store(db(root), create=True) as s:
        s.create_team("main")
        s.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD, model=lead)
        s.add_member("main", "carol", token_hash="y", model=f"scripted:{script}")
        s.start_run("main", "c", "lead", RunSettings())
        s.update_run("main", want=["carol"], status=RunStatus.STOPPED)
    stalled = accord(root, "resume", "--display", "plain")
    assert stalled.returncode == 1, stalled.stdout + stalled.stderr
    assert "carol cannot start (not restarted)" in stalled.stdout
    outcome = status(root)["run"]["outcome"]
    assert outcome["outcome"] == "stalled" and "1 task(s) pending" in outcome["reason"]
    # Not fixed yet: resume says so before anything starts.
    early = accord(root, "resume", "--display", "plain")
    assert early.returncode == 2 and early.stderr.startswith("error: carol cannot start yet")
    # Fixed: carol's script is there. Resume brings her back and wakes the lead.
    rules(
        script,
        [
            {
                "if": "Your task #1",
                "then": calls(("write_file", {"path": "c.txt", "content": "c"})),
            },
            {
                "if": "created c.txt",
                "then": calls(("task_complete", {"task_id": 1, "result": "c"})),
            },
        ],
    )
    resumed = accord(root, "resume", "--display", "plain")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "brought back: carol" in resumed.stdout
    assert (root / "c.txt").read_text() == "c"


def test_resume_brings_back_who_gave_up_or_failed_but_not_who_was_shut_down(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.json").write_text('{"rules": [], "otherwise": {"text": "ok"}}')
    model = f"scripted:{tmp_path / 'm.json'}"
    with open_store(str(tmp_path / "s.db"), create=True) as s:
        s.create_team("main")
        s.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD, model=model)
        for name in ("ann", "ben", "cy", "dee"):
            s.add_member("main", name, token_hash=name)
        s.start_run("main", "g", "lead", RunSettings())
        s.append_event("main", "member_crashed", {"name": "ann", "gave_up": True})
        s.append_event("main", "member_failed", {"name": "ben", "reason": "no key"})
        s.append_event("main", "member_stopped", {"name": "cy", "reason": "shutdown"})
        s.append_event("main", "member_crashed", {"name": "dee", "gave_up": False})
        s.update_run("main", status=RunStatus.STOPPED)
        project = locate(tmp_path, str(tmp_path / "s.db"))
        run, why = prepare_resume(Team(s, "main"), project)
        assert run.wanted == ("ann", "ben", "lead")
        assert "brought back: ann, ben" in why
        woke = [e for e in s.read_events("main") if e.kind == "run_resumed"]
        assert woke and woke[-1].payload["members"] == ["ann", "ben"]


def test_resume_budget_raises_the_budget_after_a_budget_stop(root: Path) -> None:
    lead_script = root / "lead.json"
    with_toml(root, f'\n[prices."scripted:{lead_script}"]\ninput = 1000000.0\noutput = 0.0\n')
    lead = rules(
        lead_script,
        [{"if": "# First wake", "once": True, "then": {"text": "Thinking."}}],
        "Waiting.",
    )
    done = accord(root, "run", "go", "--model", lead, "--budget", "0.5", "--display", "plain")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "warning:" not in done.stderr  # priced: the budget can see the spend
    assert status(root)["run"]["outcome"]["outcome"] == "budget"
    refused = accord(root, "resume", "--budget", "0")
    assert refused.returncode == 2 and refused.stderr.startswith("error: argument --budget")
    rules(lead_script, [{"if": "Goal", "then": calls(("finish", {"summary": "fine"}))}])
    resumed = accord(root, "resume", "--budget", "100000", "--display", "plain")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with open_store(db(root)) as s:
        run = s.get_run("main")
        assert run is not None and run.settings.budget_usd == 100000
        assert run.status == RunStatus.FINISHED


def test_a_budget_on_an_unpriced_model_warns_at_start(root: Path) -> None:
    lead = rules(root / "lead.json", [{"if": "Goal", "then": calls(("finish", {"summary": "x"}))}])
    done = accord(root, "run", "go", "--model", lead, "--budget", "5", "--display", "events")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " model_call " in done.stdout and " run_updated " in done.stdout  # raw events
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "[prices" in warnings[0] and "token budget" in warnings[0]


# members under a running team ----------------------------------------------------------


def test_removing_a_running_member_is_refused_and_the_team_carries_on(root: Path) -> None:
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
                "then": calls(
                    (
                        "bash",
                        {"command": f"touch started; until [ -f {root}/go ]; do sleep 0.1; done"},
                    )
                ),
            },
            {
                "if": "[exit code 0]",
                "then": calls(("task_complete", {"task_id": 1, "result": "k"})),
            },
        ],
    )
    sup = start(
        root, "run", "long", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    try:
        until(lambda: (root / "started").exists())
        for args in (("alice",), ("alice", "--force")):
            removed = accord(root, "member", "remove", *args)
            assert removed.returncode == 2, removed.stdout + removed.stderr
            assert "stop it first with `accord stop alice`" in removed.stderr
        (root / "go").touch()  # alice's tool call ends; she completes, the lead finishes
        out, _ = sup.communicate(timeout=90)
    finally:
        if sup.poll() is None:
            sup.kill()
    assert sup.returncode == 0, out


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_store_deleted_under_a_running_team_stops_it_with_an_error(root: Path, how: str) -> None:
    lead = rules(root / "lead.json", [WAIT_FOREVER], "Waiting.")
    sup = start(root, "run", "idle", "--model", lead, "--display", "plain")
    try:
        until(lambda: supervised_by(root, sup.pid))
        pids = member_pids(root)
        if how == "deleted":
            for suffix in ("", "-wal", "-shm"):
                Path(db(root) + suffix).unlink(missing_ok=True)
        else:
            other = root / "other.db"
            open_store(str(other), create=True).close()
            for suffix in ("-wal", "-shm"):  # the old file's journal goes with it
                Path(db(root) + suffix).unlink(missing_ok=True)
            os.replace(other, db(root))  # a new file (inode) where the store was
        out, _ = sup.communicate(timeout=60)
    finally:
        if sup.poll() is None:
            sup.kill()
    assert sup.returncode == 2, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    said = "was deleted" if how == "deleted" else "was replaced by another file"
    assert len(errors) == 1 and said in errors[0]
    if how == "replaced":
        with open_store(db(root)) as s:
            assert s.list_teams() == []  # nothing was reported into the file now there
    assert "finished" not in out
    assert not any(alive(p) for p in pids)


def test_a_respawn_waits_for_the_old_process_instead_of_refusing(root: Path) -> None:
    with open_store(db(root), create=True) as s:
        s.create_team("main")
        s.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
        s.start_run("main", "g", "lead", RunSettings())
        project = locate(root)
        sup = Supervisor(
            project, Team(s, "main"), say=lambda _: None, settings=Settings(python="true")
        )
        sup._join()
        # alice stopped on her own, but her process has not exited (or been reaped) yet,
        # and the lead has spawned her again (her status says `starting`).
        old = process.start([sys.executable, "-c", "import time; time.sleep(0.5)"])
        spawn = s.request_spawn("main", "alice", token_hash="y")
        since = s.read_events("main")[-1].seq
        s.append_event("main", "member_stopped", {"name": "alice", "reason": "shutdown"})
        sup.procs["alice"] = Process("alice", old, time.monotonic(), since, root / "x.log")
        (root / ".accord" / "logs").mkdir(parents=True, exist_ok=True)
        sup._spawns()
        done = {sp.id: sp for sp in s.pending_spawns("main")}
        assert spawn.id not in done
        kinds = [e.kind for e in s.read_events("main") if e.payload.get("id") == spawn.id]
        assert "spawn_started" in kinds and "spawn_refused" not in kinds
        assert old.poll() is not None
        sup.procs["alice"].child.wait()


# the lead's tools, the agent's exit ---------------------------------------------------


def test_a_second_finish_is_a_tool_error(tmp_path: Path) -> None:
    from accord.agent.tools.base import ToolContext
    from accord.agent.tools.lead import FinishArgs, finish

    with open_store(str(tmp_path / "s.db"), create=True) as s:
        s.create_team("main")
        s.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
        s.start_run("main", "g", "lead", RunSettings())
        ctx = ToolContext(
            workspace=tmp_path,
            member="lead",
            team=Team.open(s, "main", Config(), tmp_path),
        )
        finish(ctx, FinishArgs(summary="first"))
        with pytest.raises(UserError, match="finished already"):
            finish(ctx, FinishArgs(summary="second"))
        assert s.get_run("main").summary == "first"  # type: ignore[union-attr]


def test_agent_once_exits_non_zero_when_its_task_failed(root: Path) -> None:
    script = rules(
        root / "w.json",
        [{"if": "Your task #1", "then": calls(("task_fail", {"task_id": 1, "reason": "no"}))}],
    )
    token = new_token()
    with open_store(db(root), create=True) as s:
        s.create_team("main")
        s.add_member("main", "w", token_hash=hash_token(token), model=script)
        s.add_task("main", NewTask("t"), max_attempts=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env.update(ACCORD_MEMBER="w", ACCORD_TOKEN=token, ACCORD_TEAM="main")
    done = subprocess.run(
        [sys.executable, "-m", "accord", "agent", "--member", "w", "--once"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "w failed task #1" in done.stderr


def test_a_lead_stopped_by_a_model_error_ends_the_run_with_that_reason(root: Path) -> None:
    lead = root / "lead.json"
    lead.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "if": "# First wake",
                        "once": True,
                        "then": calls(
                            ("spawn_teammate", {"name": "alice", "instructions": "go"}),
                            ("task_create", {"title": "long", "assignee": "alice"}),
                        ),
                    }
                ],
                "otherwise": {"error": "the provider refused: quota exhausted"},
            }
        )
    )
    mate = rules(
        root / "mate.json",
        [{"if": "Your task #1", "then": calls(("bash", {"command": f"exec sleep {MARK}"}))}],
    )
    done = accord(
        root,
        "run",
        "go",
        "--model",
        f"scripted:{lead}",
        "--teammate-model",
        mate,
        "--display",
        "plain",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    outcome = status(root)["run"]["outcome"]
    assert outcome["outcome"] == "model_error"
    assert "quota exhausted" in outcome["reason"]
    assert not sleepers()


def test_a_long_reason_cut_on_a_line_says_where_it_is_whole() -> None:
    from accord.cli._render import event_line, story_line
    from accord.types import Event

    why = "the model said: " + "very long " * 40
    e = Event("main", 42, time.time(), None, "member_failed", {"name": "carol", "reason": why})
    story = story_line(e)
    assert story is not None and "…" in story
    assert story.endswith("(whole: `accord events --json --since 41 --limit 1`)")
    raw = event_line(e)
    assert raw.endswith("[cut: whole in `accord events --json --since 41 --limit 1`]")
    short = Event("main", 7, time.time(), None, "member_failed", {"name": "c", "reason": "x"})
    assert story_line(short) == "c cannot start (not restarted): x"


def test_a_teammate_shut_down_and_spawned_again_works_on(root: Path) -> None:
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "hello"}),
                    ("request_shutdown", {"member": "alice", "reason": "not yet"}),
                ),
            },
            {
                "if": "alice stopped: shutdown",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "now"}),
                    ("task_create", {"title": "write a.txt", "assignee": "alice"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "a made"}))},
        ],
        "Waiting.",
    )
    mate = rules(root / "mate.json", MATE)
    done = accord(root, "run", "a", "--model", lead, "--teammate-model", mate, "--display", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    with open_store(db(root)) as s:
        started = [e for e in s.read_events("main") if e.kind == "spawn_started"]
        refused = [e for e in s.read_events("main") if e.kind == "spawn_refused"]
    assert len(started) == 2 and not refused
    assert (root / "a.txt").read_text() == "a\n"
