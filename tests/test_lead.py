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
from accord.team import Team
from accord.team.roster import hash_token
from accord.types import MemberRole, NewTask, RunSettings, RunStatus


@pytest.fixture
def services(make_store: Callable[..., Store], tmp_path: Path) -> Team:
    store = make_store(synchronous="normal")
    store.create_team("main")
    script = tmp_path / "lead-model.json"
    script.write_text('{"rules": [], "otherwise": {"text": "ok"}}')
    store.add_member(
        "main", "lead", token_hash=hash_token("x"), role=MemberRole.LEAD, model=f"scripted:{script}"
    )
    store.add_member("main", "worker", token_hash=hash_token("y"))
    store.start_run("main", "Build the thing, task by task.", "lead", RunSettings(max_teammates=2))
    return Team.open(store, "main", Config(), tmp_path)


def complete_tasks(store: Store, count: int) -> None:
    for _ in range(count):
        task = store.add_task("main", NewTask("a step", "details " * 20), max_attempts=3)
        claim = store.claim_task("main", "worker", lease_seconds=60, task_id=task.id)
        assert claim is not None
        store.complete_task("main", task.id, "worker", claim.fencing_token, "words " * 40)


def test_the_leads_prompt_does_not_grow_with_the_run(services: Team, tmp_path: Path) -> None:
    services.board.add(NewTask("the plan"))  # an empty board would earn a nudge
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


def test_the_lead_sleeps_until_something_changes(services: Team, tmp_path: Path) -> None:
    services.board.add(NewTask("the plan"))
    model = ScriptedModel([reply("Planned.")])
    lead = build_agent(services, "lead", Config(), tmp_path, model=model, idle_wait=0.01)
    lead.run(once=True)
    lead.run(once=True)  # nothing new: no model call
    assert len(model.requests) == 1
    services.board.add(NewTask("ready but not for the lead"))
    lead.run(once=True)  # a ready task is not the lead's to claim
    assert len(model.requests) == 1


def test_a_lead_that_ends_its_wake_with_an_empty_board_is_nudged_once(
    services: Team, tmp_path: Path
) -> None:
    model = ScriptedModel([reply("I will think about it."), reply("Still thinking.")])
    lead = build_agent(services, "lead", Config(), tmp_path, model=model, idle_wait=0.01)
    lead.run(once=True)
    assert len(model.requests) == 2  # the text, then once more after the nudge
    assert "The board is empty" in model.requests[1].messages[-1].text
    model.assert_complete()
    model.assert_complete()


def run_tool(services: Team, tmp_path: Path, name: str, args: dict[str, object]) -> str:
    model = ScriptedModel([])
    lead = build_agent(services, "lead", Config(), tmp_path, model=model)
    ctx = ToolContext(workspace=tmp_path, member="lead", team=services)
    result = lead.toolbox.execute(ctx, ToolCall("c1", name, dict(args)))
    return ("ERROR " if result.is_error else "") + result.content


def test_spawn_refusals_reach_the_lead(services: Team, tmp_path: Path) -> None:
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


def test_finish_ends_the_run(services: Team, tmp_path: Path) -> None:
    model = ScriptedModel([reply("", call("finish", {"summary": "all done"})), reply("bye")])
    lead = build_agent(services, "lead", Config(), tmp_path, model=model, idle_wait=0.01)
    outcome = lead.run()
    assert outcome.reason == "finished"
    run = services.store.get_run("main")
    assert run is not None and run.status == RunStatus.FINISHED and run.summary == "all done"


def test_delegate_lead_has_no_file_or_shell_tools(services: Team, tmp_path: Path) -> None:
    services.store.start_run("main", "goal", "lead", RunSettings(delegate=True))
    lead = build_agent(services, "lead", Config(), tmp_path, model=ScriptedModel([]))
    names = set(lead.toolbox.names())
    assert {"spawn_teammate", "task_create", "send_message", "finish"} <= names
    assert not names & {"bash", "write_file", "edit_file", "read_file"}


def test_plan_required_member_reads_until_the_lead_approves(services: Team, tmp_path: Path) -> None:
    from accord.agent.definition import AgentDefinition
    from accord.agent.launch import toolbox_for
    from accord.types import MessageKind

    store = services.store
    store.add_member("main", "alice", token_hash=hash_token("z"))
    services.board.add(NewTask("change the parser", assignee="alice"))
    planner = AgentDefinition(name="careful", prompt="careful", plan_required=True)
    model = ScriptedModel(
        [
            reply("", call("write_file", {"path": "p.py", "content": "x"})),
            reply("", call("send_plan", {"plan": "edit p.py"})),
            reply("Waiting for the lead."),
            reply("", call("send_plan", {"plan": "edit p.py, then test it"})),
            reply("Waiting again."),
            reply("", call("write_file", {"path": "p.py", "content": "x"})),
            reply("", call("task_complete", {"task_id": 1, "result": "done with a test"})),
            reply("Done."),
        ]
    )

    def alice_runs() -> str:
        agent = build_agent(services, "alice", Config(), tmp_path, model=model, idle_wait=0.01)
        agent.definition = planner
        agent.toolbox = toolbox_for(planner)
        return agent.run(once=True).reason

    def answer(body: str) -> None:
        request = [
            m
            for m in services.mailbox.history(member="lead", limit=1000)
            if m.kind == MessageKind.PLAN_APPROVAL_REQUEST
        ][-1]
        run_tool(
            services,
            tmp_path,
            "approve_plan",
            {
                "message_id": request.id,
                "approve": body == "approved",
                "feedback": "" if body == "approved" else body,
            },
        )

    assert alice_runs() == "idle"  # sent a plan; waits for the answer
    first = model.requests[1].messages[-1].tool_results[0]
    assert first.is_error and "not available" in first.content  # no writing before approval
    answer("add a test")
    assert alice_runs() == "idle"  # revised and sent again
    rejected = "\n".join(m.text for m in model.requests[3].messages)
    assert "rejected: add a test" in rejected
    answer("approved")
    assert alice_runs() == "idle"
    model.assert_complete()
    assert (tmp_path / "p.py").read_text() == "x"
    assert services.board.get(1).status == "completed"
