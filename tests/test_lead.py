"""The lead in-process: bounded prompt over a long run, and its tools' refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from accord.agent.launch import build_agent
from accord.agent.tools.base import ToolContext
from accord.config import Config
from accord.llm.base import ToolCall
from accord.llm.scripted import ScriptedModel, call, estimate_tokens, reply
from accord.store import Store
from accord.team import TeamServices
from accord.team.roster import hash_token
from accord.types import MemberRole, NewTask, RunStatus


@pytest.fixture
def services(make_store: Callable[..., Store], tmp_path: Path) -> TeamServices:
    store = make_store(synchronous="normal")
    store.create_team("main")
    store.add_member("main", "lead", token_hash=hash_token("x"), role=MemberRole.LEAD)
    store.add_member("main", "worker", token_hash=hash_token("y"))
    store.start_run("main", "Build the thing, task by task.", "lead", {"max_teammates": 2})
    return TeamServices.open(store, "main", Config(), tmp_path)


def complete_tasks(store: Store, count: int) -> None:
    for _ in range(count):
        task = store.add_task("main", NewTask("a step", "details " * 20), max_attempts=3)
        claim = store.claim_task("main", "worker", lease_seconds=60, task_id=task.id)
        assert claim is not None
        store.complete_task("main", task.id, "worker", claim.fencing_token, "words " * 40)


def test_the_leads_prompt_does_not_grow_with_the_run(
    services: TeamServices, tmp_path: Path
) -> None:
    model = ScriptedModel([reply("Planned.")])
    lead = build_agent(services, "lead", Config(), tmp_path, model=model, idle_wait=0.01)
    lead.run(once=True)
    sizes = []
    for batch in (10, 190):
        complete_tasks(services.store, batch)
        model.add(reply("Noted; waiting."))
        lead.run(once=True)
        sizes.append(estimate_tokens(model.requests[-1]))
        assert len(model.requests[-1].messages) == 1  # a fresh context on every wake
    assert sizes[1] <= 1.2 * sizes[0], sizes
    # What the lead saw is a digest, with its notes from last time.
    text = model.requests[-1].messages[0].text
    assert "200 completed" in text and "Noted; waiting." in text


def test_the_lead_sleeps_until_something_changes(services: TeamServices, tmp_path: Path) -> None:
    model = ScriptedModel([reply("Planned.")])
    lead = build_agent(services, "lead", Config(), tmp_path, model=model, idle_wait=0.01)
    lead.run(once=True)
    lead.run(once=True)  # nothing new: no model call
    assert len(model.requests) == 1
    services.board.add(NewTask("ready but not for the lead"))
    lead.run(once=True)  # a ready task is not the lead's to claim
    assert len(model.requests) == 1
    model.assert_complete()


def run_tool(services: TeamServices, tmp_path: Path, name: str, args: dict[str, object]) -> str:
    model = ScriptedModel([])
    lead = build_agent(services, "lead", Config(), tmp_path, model=model)
    ctx = ToolContext(workspace=tmp_path, member="lead", team=services)
    result = lead.toolbox.execute(ctx, ToolCall("c1", name, dict(args)))
    return ("ERROR " if result.is_error else "") + result.content


def test_spawn_refusals_reach_the_lead(services: TeamServices, tmp_path: Path) -> None:
    bad = run_tool(services, tmp_path, "spawn_teammate", {"name": "Bad Name", "instructions": "x"})
    assert bad.startswith("ERROR") and "not a valid teammate name" in bad
    unknown = run_tool(
        services, tmp_path, "spawn_teammate", {"name": "ann", "instructions": "x", "agent": "nope"}
    )
    assert unknown.startswith("ERROR") and "no agent definition named 'nope'" in unknown
    ok = run_tool(services, tmp_path, "spawn_teammate", {"name": "ann", "instructions": "go"})
    assert not ok.startswith("ERROR")
    twice = run_tool(services, tmp_path, "spawn_teammate", {"name": "ann", "instructions": "go"})
    assert twice.startswith("ERROR") and "already waiting to be started" in twice
    run_tool(services, tmp_path, "spawn_teammate", {"name": "ben", "instructions": "go"})
    third = run_tool(services, tmp_path, "spawn_teammate", {"name": "cy", "instructions": "go"})
    assert third.startswith("ERROR") and "the most this run allows" in third
    assert [s.name for s in services.store.pending_spawns("main")] == ["ann", "ben"]
    # The first instructions wait in the new member's mailbox.
    assert services.mailbox.history(member="ann")[0].body == "go"


def test_finish_ends_the_run(services: TeamServices, tmp_path: Path) -> None:
    model = ScriptedModel([reply("", call("finish", {"summary": "all done"})), reply("bye")])
    lead = build_agent(services, "lead", Config(), tmp_path, model=model, idle_wait=0.01)
    outcome = lead.run()
    assert outcome.reason == "finished"
    run = services.store.get_run("main")
    assert run is not None and run.status == RunStatus.FINISHED and run.summary == "all done"


def test_delegate_lead_has_no_file_or_shell_tools(services: TeamServices, tmp_path: Path) -> None:
    services.store.start_run("main", "goal", "lead", {"delegate": True})
    lead = build_agent(services, "lead", Config(), tmp_path, model=ScriptedModel([]))
    names = set(lead.toolbox.names())
    assert {"spawn_teammate", "task_create", "send_message", "finish"} <= names
    assert not names & {"bash", "write_file", "edit_file", "read_file"}
