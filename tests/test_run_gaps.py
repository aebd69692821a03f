"""Gaps a person meets in a real run: a model that is down for a while, ``model:
inherit`` in a definition, and what ``accord work`` starts outliving it.

A member stopped by a transient model error is restarted under the crash rules
(backoff, ``max_restarts``) and given up like a crash; ``inherit`` is the lead's
model; ``accord work`` commands are tethered, so ``kill -9`` of the pool leaves
nothing running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from accord import process
from accord.agent.definition import AgentDefinition, parse_definition
from accord.agent.model_choice import model_name_for
from accord.config import Config, locate
from accord.runtime.supervisor import Process, Settings, Supervisor
from accord.store import open_store
from accord.team import Team
from accord.testing import FakeOpenAI
from accord.testing.cli import accord as _accord
from accord.testing.cli import calls, rules
from accord.testing.cli import clean_env as _env
from accord.testing.wait import until
from accord.types import Event, MemberRole, RunSettings, TaskStatus, TranscriptKind
from conftest import db, run_project, status

_until = partial(until, timeout=30.0)

OUTAGE_TOML = (
    # One 503 is an outage here (the member retries nothing itself), and the
    # supervisor restarts twice, quickly.
    "[run]\nmax_restarts = 2\nrestart_backoff = 0.2\ngrace = 5\n\n[agent]\nmax_retries = 0\n"
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return run_project(tmp_path, OUTAGE_TOML)


def events(root: Path, kind: str) -> list[Event]:
    with open_store(db(root)) as s:
        return [e for e in s.read_events("main") if e.kind == kind]


def lead_read(root: Path, needle: str) -> bool:
    """Whether the lead was shown ``needle`` (its digest is saved in its transcript)."""
    with open_store(db(root)) as s:
        entries = s.read_transcript("main", "lead")
    return any(needle in json.dumps(e.body) for e in entries if e.kind == TranscriptKind.MESSAGE)


# a model that is down for a while ----------------------------------------------------


def test_a_teammate_stopped_by_an_outage_is_restarted_and_finishes_its_task(
    root: Path, fake: FakeOpenAI
) -> None:
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "Do your task."}),
                    ("task_create", {"title": "write a.txt", "assignee": "alice"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "a.txt made"}))},
        ],
        "Waiting.",
    )
    fake.fail(503)  # down: alice stops, her task goes back without spending an attempt
    fake.call_tools(("write_file", {"path": "a.txt", "content": "a\n"}))
    fake.call_tools(("task_complete", {"task_id": 1, "result": "a"}))
    for _ in range(3):
        fake.say("Done.")
    mate = f"openai:qwen@{fake.base_url}"
    done = _accord(
        root, "run", "a", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / "a.txt").read_text() == "a\n"
    (stopped, *_) = [e for e in events(root, "member_stopped") if e.payload["name"] == "alice"]
    assert stopped.payload["reason"] == "model_error" and stopped.payload["transient"] is True
    (restarted,) = events(root, "member_restarted")
    assert restarted.payload["name"] == "alice" and restarted.payload["after"] == "model_error"
    assert "alice's model is unreachable for now; restarting it in 0.2s" in done.stdout
    assert not events(root, "member_given_up") and not events(root, "member_crashed")
    with open_store(db(root)) as s:
        task = s.get_task("main", 1)
    assert task.status == TaskStatus.COMPLETED and task.attempts == 1
    # The lead's digest told it why alice came back.
    assert lead_read(root, "alice was restarted after a model outage (restart 1)")


def test_a_teammate_whose_model_stays_down_is_given_up_with_its_reason(
    root: Path, fake: FakeOpenAI
) -> None:
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "Do your task."}),
                    ("task_create", {"title": "write a.txt", "assignee": "alice"}),
                ),
            },
            {
                "if": "alice stopped and will not be restarted",
                "then": calls(("finish", {"summary": "alice's model is down"})),
            },
        ],
        "Waiting.",
    )
    for _ in range(3):  # the first start and both restarts
        fake.fail(503, "the upstream is down")
    mate = f"openai:qwen@{fake.base_url}"
    done = _accord(
        root, "run", "a", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    fake.assert_complete()  # three starts, and not a fourth
    restarts = [e.payload for e in events(root, "member_restarted")]
    assert [(p["name"], p["after"], p["restarts"]) for p in restarts] == [
        ("alice", "model_error", 1),
        ("alice", "model_error", 2),
    ]
    (gave_up,) = events(root, "member_given_up")
    assert gave_up.payload["name"] == "alice" and gave_up.payload["restarts"] == 2
    assert "HTTP 503" in gave_up.payload["detail"]
    assert "alice's model is still unreachable after 2 restart(s); not restarting it" in (
        done.stdout
    )
    alice = next(m for m in status(root)["members"] if m["name"] == "alice")
    assert alice["status"] == "stopped"
    assert "model_error" in alice["reason"] and "HTTP 503" in alice["reason"]
    assert "not restarted after 2 restart(s)" in alice["reason"]
    # The story tells both restarts and the end of them.
    assert "alice restarted after a model outage (restart 1)" in done.stdout
    assert "alice stopped (model_error), not restarted after 2 restart(s)" in done.stdout
    with open_store(db(root)) as s:
        assert "alice" not in s.get_run("main").wanted  # type: ignore[union-attr]


def test_a_lead_whose_model_is_down_for_a_while_is_restarted_and_finishes(
    root: Path, fake: FakeOpenAI
) -> None:
    fake.fail(503)
    fake.call_tools(("finish", {"summary": "done after the outage"}))
    fake.say("Finished.")  # the finish call's result, if the lead gets to read it
    done = _accord(
        root, "run", "go", "--model", f"openai:qwen@{fake.base_url}", "--display", "plain"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not fake.unexpected
    (restarted,) = events(root, "member_restarted")
    assert restarted.payload["name"] == "lead" and restarted.payload["after"] == "model_error"
    assert status(root)["run"]["outcome"] == {
        "outcome": "finished",
        "reason": "done after the outage",
    }


def test_a_lead_whose_model_stays_down_ends_the_run_with_that_reason(
    root: Path, fake: FakeOpenAI
) -> None:
    for _ in range(3):
        fake.fail(503, "the upstream is down")
    done = _accord(
        root, "run", "go", "--model", f"openai:qwen@{fake.base_url}", "--display", "plain"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    fake.assert_complete()
    assert len(events(root, "member_restarted")) == 2
    outcome = status(root)["run"]["outcome"]
    assert outcome["outcome"] == "model_error"
    assert "still unreachable after 2 restart(s)" in outcome["reason"]
    assert "HTTP 503" in outcome["reason"]


# inherit --------------------------------------------------------------------------


def test_inherit_in_a_definition_is_the_leads_model_before_any_default() -> None:
    inherit = parse_definition("---\nname: m\nmodel: inherit\n---\n", "m.md")
    assert inherit.model is None and inherit.inherits_model
    plain = AgentDefinition(name="x")
    config = Config.model_validate({"agent": {"model": "openai:from-toml"}})
    lead = "openai:the-lead"
    default = "openai:teammate-default"
    # No model in the definition: --teammate-model, then accord.toml, then the lead's.
    assert model_name_for(plain, None, None, config, teammate_default=default, lead_model=lead) == (
        default
    )
    assert model_name_for(plain, None, None, config, lead_model=lead) == "openai:from-toml"
    # inherit: straight to the lead's, past --teammate-model and accord.toml.
    assert model_name_for(
        inherit, None, None, config, teammate_default=default, lead_model=lead
    ) == (lead)
    # The spawn call (or the member's own model) still comes first.
    assert model_name_for(
        inherit, "openai:spawned", None, config, teammate_default=default, lead_model=lead
    ) == ("openai:spawned")
    # With no lead (accord work, or a member run by hand) inherit falls to the defaults.
    assert model_name_for(inherit, None, None, config, teammate_default=default) == default
    assert model_name_for(inherit, None, None, config) == "openai:from-toml"


def test_a_teammate_whose_definition_inherits_starts_on_the_leads_model(tmp_path: Path) -> None:
    from accord.agent.launch import build_agent

    lead = rules(tmp_path / "lead.json", [])
    mate = rules(tmp_path / "mate.json", [])
    agents = tmp_path / ".accord" / "agents"
    agents.mkdir(parents=True)
    (agents / "helper.md").write_text("---\nmodel: inherit\n---\nYou help.\n")
    with open_store(str(tmp_path / "s.db"), create=True) as s:
        s.create_team("main")
        s.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD, model=lead)
        s.add_member("main", "ann", token_hash="y", agent="helper")
        s.add_member("main", "bob", token_hash="z")
        s.start_run("main", "g", "lead", RunSettings(teammate_model=mate))
        services = Team.open(s, "main", Config(), tmp_path)
        ann = build_agent(services, "ann", Config(), tmp_path)
        bob = build_agent(services, "bob", Config(), tmp_path)
        assert str(ann.model.name) == lead  # inherit: the lead's
        assert str(bob.model.name) == mate  # no model: --teammate-model


# accord work is tethered ----------------------------------------------------------

MARK = f"4245.{os.getpid()}"  # a sleep length no other process uses


def _marked(mark: str, program: bytes = b"") -> list[int]:
    """Live processes whose command line holds ``mark`` (zombies are dead already), and
    starts with ``program`` when given."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if mark.encode() in cmd and cmd.startswith(program) and state != "Z":
            found.append(int(entry.name))
    return found


def test_kill_9_of_accord_work_leaves_none_of_its_commands_running(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    assert _accord(root, "init", "--team", "main").returncode == 0
    assert _accord(root, "task", "add", "wait in the background").returncode == 0
    # The sleep is a background job of the command's shell, which waits for it.
    command = f"sleep {MARK} & touch started; wait"
    pool = subprocess.Popen(
        [sys.executable, "-m", "accord", "work", "--workers", "1", "--command", command],
        cwd=root,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _until(lambda: (root / "started").exists() and bool(_sleeps()))
        pool.kill()
        pool.wait()
        _until(lambda: not _sleeps(), timeout=10)
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait()
        for pid in _marked(MARK):
            os.kill(pid, signal.SIGKILL)


def _sleeps() -> list[int]:
    return _marked(MARK, b"sleep\0")


@pytest.mark.parametrize("transient", [True, False])
def test_only_a_model_error_that_waiting_may_cure_is_restarted(
    tmp_path: Path, transient: bool
) -> None:
    (tmp_path / ".accord").mkdir()
    with open_store(str(tmp_path / ".accord" / "accord.db"), create=True) as s:
        s.create_team("main")
        s.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
        s.add_member("main", "alice", token_hash="y")
        s.start_run("main", "g", "lead", RunSettings())
        s.update_run("main", want=["alice"])
        said: list[str] = []
        sup = Supervisor(
            locate(tmp_path), Team(s, "main"), say=said.append, settings=Settings(max_restarts=1)
        )
        since = s.read_events("main")[-1].seq
        why = "HTTP 503: overloaded" if transient else "HTTP 401: invalid key"
        s.append_event(
            "main",
            "member_stopped",
            {"name": "alice", "reason": "model_error", "detail": why, "transient": transient},
        )
        exited = process.start(["true"])
        exited.wait()
        sup.procs["alice"] = Process("alice", exited, time.monotonic(), since, tmp_path / "x.log")
        sup._watch()
        run = s.get_run("main")
        assert run is not None
        if transient:
            assert "alice" in sup.due and "alice" in run.wanted
            assert sup.restarts["alice"] == 1
        else:  # a bad key stays bad: stopped for good, as before
            assert "alice" not in sup.due and "alice" not in run.wanted
        assert not [e for e in s.read_events("main") if e.kind == "member_given_up"]
        if transient:
            # Its one restart is used: the next outage gives it up, with the reason.
            since = s.read_events("main")[-1].seq
            s.append_event(
                "main",
                "member_stopped",
                {"name": "alice", "reason": "model_error", "detail": why, "transient": True},
            )
            again = process.start(["true"])
            again.wait()
            sup.due.clear()
            sup.procs["alice"] = Process("alice", again, time.monotonic(), since, tmp_path / "x")
            sup._watch()
            (gave_up,) = [e for e in s.read_events("main") if e.kind == "member_given_up"]
            assert gave_up.payload == {
                "name": "alice",
                "reason": "model_error",
                "detail": why,
                "restarts": 1,
            }
            run = s.get_run("main")
            assert run is not None and "alice" not in run.wanted and "alice" not in sup.due


def test_kill_9_while_accord_work_waits_out_its_grace_leaves_nothing(tmp_path: Path) -> None:
    # Stopped gracefully, the pool sends SIGTERM to the command's group and waits; a
    # command that ignores it keeps running. If the pool is killed meanwhile, the
    # tether must still be there to end the group.
    root = tmp_path / "proj"
    root.mkdir()
    assert _accord(root, "init", "--team", "main").returncode == 0
    assert _accord(root, "task", "add", "ignore SIGTERM").returncode == 0
    # The sleep ignores SIGTERM; the shell notes it got one, and waits on.
    command = (
        f"(trap '' TERM; exec sleep {MARK}) & trap 'touch termed' TERM; touch started; wait; wait"
    )
    pool = subprocess.Popen(
        [sys.executable, "-m", "accord", "work", "--workers", "1", "--command", command],
        cwd=root,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _until(lambda: (root / "started").exists() and bool(_sleeps()))
        pool.send_signal(signal.SIGTERM)
        _until(lambda: (root / "termed").exists())  # the group has had its SIGTERM
        pool.kill()
        pool.wait()
        _until(lambda: not _sleeps(), timeout=10)
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait()
        for pid in _marked(MARK):
            os.kill(pid, signal.SIGKILL)


def test_a_spawn_while_a_restart_waits_starts_the_member_once(tmp_path: Path) -> None:
    (tmp_path / ".accord" / "logs").mkdir(parents=True)
    with open_store(str(tmp_path / ".accord" / "accord.db"), create=True) as s:
        s.create_team("main")
        s.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
        s.start_run("main", "g", "lead", RunSettings())
        sup = Supervisor(locate(tmp_path), Team(s, "main"), say=lambda _: None, settings=Settings())
        sup.settings.python = "true"  # the member's process exits at once
        sup._join()
        s.request_spawn("main", "alice", token_hash="y")
        # alice stopped for an outage; her restart waits out its backoff, and meanwhile
        # the lead spawns her again: that start is the restart, not a second one.
        sup.due["alice"] = time.monotonic()
        sup.due_after["alice"] = "model_error"
        sup._spawns()
        assert "alice" in sup.procs and "alice" not in sup.due
        sup.procs["alice"].child.wait()
