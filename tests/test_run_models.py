"""Models reach every member: resolved in one order, checked before a run starts,
and a member that cannot start for its configuration is failed, not restarted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accord import credentials
from accord.agent.definition import AgentDefinition
from accord.agent.model_choice import model_name_for
from accord.config import Config
from accord.errors import UserError
from accord.store import open_store
from accord.team.roster import hash_token, new_token
from accord.testing.cli import accord, calls, rules
from accord.types import MemberRole, MemberStatus, RunSettings, RunStatus, TaskStatus
from conftest import LEAD_FINISH, LEAD_PLAN, MATE, db


def test_a_teammates_model_is_taken_in_order() -> None:
    plain = AgentDefinition(name="x")
    defined = AgentDefinition(name="y", model="openai:from-definition")
    config = Config.model_validate({"agent": {"model": "openai:from-toml"}})
    lead = "openai:the-lead"
    assert model_name_for(plain, None, None, Config(), lead_model=lead) == lead
    assert model_name_for(plain, None, None, config, lead_model=lead) == "openai:from-toml"
    assert (
        model_name_for(plain, None, None, config, teammate_default="haiku", lead_model=lead)
        == "anthropic:claude-haiku-4-5"
    )
    assert (
        model_name_for(defined, None, None, config, teammate_default="openai:t", lead_model=lead)
        == "openai:from-definition"
    )
    assert model_name_for(defined, "sonnet", None, config) == "anthropic:claude-sonnet-4-5"


def test_a_run_with_only_model_reaches_finish_with_two_teammates(root: Path) -> None:
    # One script plays every member: the lead's rules and the teammates' together.
    both = rules(root / "all.json", [LEAD_PLAN, LEAD_FINISH, *MATE], "Waiting.")
    done = accord(root, "run", "make c.txt", "--model", both, "--display", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / "c.txt").read_text() == "a\nb\n"
    with open_store(db(root)) as s:
        assert [t.status for t in s.list_tasks("main")] == [TaskStatus.COMPLETED] * 3
        members = {m.name: m for m in s.list_members("main")}
        assert members["alice"].model is None and members["bob"].model is None
        assert not [e for e in s.read_events("main") if e.kind == "member_crashed"]
    # The plain display tells the run as a story.
    assert "lead asks for teammate alice" in done.stdout
    assert "alice completed #1: a" in done.stdout
    assert done.stdout.rstrip().endswith("finished: c.txt made")


def test_run_refuses_a_model_it_can_already_name_that_cannot_be_used(root: Path) -> None:
    lead = rules(root / "lead.json", [], "Waiting.")
    agents = root / ".accord" / "agents"
    agents.mkdir()
    (agents / "writer.md").write_text("---\nmodel: openai:gpt-5-mini\n---\nYou write.\n")
    env_without_key = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "accord", "run", "go", "--model", lead, "--display", "plain"],
        cwd=root,
        capture_output=True,
        text=True,
        env={k: v for k, v in env_without_key.items() if not k.startswith("ACCORD_")},
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the model of agent definition writer")
    assert not (root / ".accord" / "accord.db").exists() or _no_team(root)
    teammate = accord(root, "run", "go", "--model", lead, "--teammate-model", "nope")
    assert teammate.returncode == 2 and teammate.stderr.startswith("error: --teammate-model")


def _no_team(root: Path) -> bool:
    with open_store(db(root)) as s:
        return not s.list_teams()


def test_aliases_work_on_the_command_line(root: Path) -> None:
    lead = rules(root / "lead.json", [], "Waiting.")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCORD_", "ANTHROPIC"))}
    done = subprocess.run(
        [sys.executable, "-m", "accord", "run", "go", "--model", lead, "--teammate-model", "haiku"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    # The alias is understood: what is missing is Anthropic's key, not a PROVIDER:MODEL.
    assert done.returncode == 2
    assert "--teammate-model" in done.stderr and "ANTHROPIC_API_KEY" in done.stderr


def test_run_keeps_the_model_a_declared_member_was_given(root: Path) -> None:
    mate = rules(root / "mate.json", [], "Nothing to do.")
    (root / "accord.toml").write_text(
        (root / "accord.toml").read_text() + '\n[[team.members]]\nname = "alice"\n'
    )
    with open_store(db(root), create=True) as s:
        s.create_team("main")
    added = accord(root, "member", "add", "alice", "--model", mate)
    assert added.returncode == 0, added.stderr
    stop_soon = rules(
        root / "lead.json",
        [{"if": "# First wake", "then": calls(("finish", {"summary": "nothing to do"}))}],
    )
    done = accord(root, "run", "go", "--model", stop_soon, "--display", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    with open_store(db(root)) as s:
        assert s.get_member("main", "alice").model == mate


def _start_run_by_hand(root: Path, lead_model: str, carol_model: str) -> None:
    with open_store(db(root), create=True) as s:
        s.create_team("main")
        s.add_member(
            "main",
            "lead",
            token_hash=hash_token(new_token()),
            role=MemberRole.LEAD,
            model=lead_model,
        )
        s.add_member("main", "carol", token_hash=hash_token(new_token()), model=carol_model)
        s.start_run("main", "try carol", "lead", RunSettings())
        s.update_run("main", want=["carol"], status=RunStatus.STOPPED)


def test_a_member_that_cannot_start_is_failed_with_its_reason_not_restarted(
    root: Path,
) -> None:
    # carol's model script vanished since the last run: a configuration error.
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "cannot start and will not be restarted",
                "once": True,
                "then": calls(("finish", {"summary": "carol could not start"})),
            }
        ],
        "Waiting.",
    )
    _start_run_by_hand(root, lead, "scripted:/nonexistent/carol.json")
    done = accord(root, "resume", "--display", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "carol cannot start (not restarted): " in done.stdout
    with open_store(db(root)) as s:
        kinds = [e.kind for e in s.read_events("main")]
        assert "member_restarted" not in kinds and "member_crashed" not in kinds
        (failed,) = [e for e in s.read_events("main") if e.kind == "member_failed"]
        assert "cannot read the model script" in failed.payload["reason"]
        assert s.get_member("main", "carol").status == MemberStatus.FAILED
    status = json.loads(accord(root, "status", "--json").stdout)
    carol = next(m for m in status["members"] if m["name"] == "carol")
    assert carol["status"] == "failed" and "cannot read the model script" in carol["reason"]
    assert status["run"]["outcome"]["outcome"] == "finished"
    text = accord(root, "status").stdout
    assert "carol cannot start" in text


def test_the_agent_exits_with_the_configuration_code(root: Path) -> None:
    _start_run_by_hand(root, "scripted:/nonexistent/lead.json", "scripted:/x.json")
    with open_store(db(root)) as s:
        token = new_token()
        s.update_member("main", "carol", token_hash=hash_token(token), model=None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env.update(ACCORD_MEMBER="carol", ACCORD_TEAM="main")

    def agent(handed: bool) -> subprocess.CompletedProcess[str]:
        # Handed its token through a pipe, as a supervisor starts it; else as a person does.
        fds: tuple[int, ...] = ()
        if handed:
            fds = (credentials.hand_over({"ACCORD_TOKEN": token}),)
            env[credentials.FD_VARIABLE] = str(fds[0])
        else:
            env.pop(credentials.FD_VARIABLE, None)
            env["ACCORD_TOKEN"] = token
        try:
            return subprocess.run(
                [sys.executable, "-m", "accord", "agent", "--member", "carol"],
                cwd=root,
                capture_output=True,
                text=True,
                env=env,
                pass_fds=fds,
                timeout=60,
            )
        finally:
            for fd in fds:
                os.close(fd)

    done = agent(handed=True)
    assert done.returncode == 78, done.stdout + done.stderr
    assert done.stderr.startswith("error: ")
    # Run by a person (or a script of theirs), the same failure is bad input: exit 2.
    by_hand = agent(handed=False)
    assert by_hand.returncode == 2 and by_hand.stderr.startswith("error: "), by_hand.stderr


def test_a_spawn_without_a_model_anywhere_uses_the_leads(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accord.agent.tools.base import ToolContext
    from accord.agent.tools.lead import SpawnArgs, spawn_teammate
    from accord.team import Team

    monkeypatch.setenv("OPENAI_API_KEY", "test-key-never-sent")
    with open_store(db(root), create=True) as s:
        s.create_team("main")
        s.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD, model="openai:lead-m")
        s.start_run("main", "g", "lead", RunSettings())
        services = Team.open(s, "main", Config(), root)
        ctx = ToolContext(workspace=root, member="lead", team=services)
        spawn_teammate(ctx, SpawnArgs(name="ann", instructions="go"))
        assert s.get_member("main", "ann").model is None  # resolved when it starts
        monkeypatch.delenv("OPENAI_API_KEY")
        with pytest.raises(UserError, match="bob could not use model openai:lead-m"):
            spawn_teammate(ctx, SpawnArgs(name="bob", instructions="go"))
