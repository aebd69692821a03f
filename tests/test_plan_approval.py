"""Plan approval as its own state machine: its moves, how they are saved in the
transcript as typed entries, and how a restarted member (from a transcript of today
or of a version that kept the state in note text) takes up the state it left."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from accord.agent import plan_approval
from accord.agent.definition import AgentDefinition
from accord.agent.launch import build_agent, toolbox_for
from accord.agent.plan_approval import PlanApproval
from accord.config import Config
from accord.llm.base import ChatMessage, ToolResult
from accord.llm.scripted import ScriptedModel, call, reply
from accord.store import Store
from accord.team import Team
from accord.team.roster import hash_token
from accord.types import (
    MemberRole,
    Message,
    MessageKind,
    NewTask,
    PlanState,
    RunSettings,
    TranscriptEntry,
    TranscriptKind,
)

PLANNER = AgentDefinition(name="careful", prompt="careful", plan_required=True)


def answer(body: str, kind: MessageKind = MessageKind.PLAN_APPROVAL_RESPONSE) -> Message:
    return Message(
        1, "main", "lead", "alice", kind, body, None, None, None, None, 0.0, None, None, 0
    )


def entry(kind: TranscriptKind, body: dict[str, object]) -> TranscriptEntry:
    return TranscriptEntry("alice", 1, kind, dict(body), 1)


def test_the_moves() -> None:
    plan = PlanApproval(required=True)
    assert plan.needed and not plan.waiting
    assert plan.answered(answer("approved")) is None  # nothing was sent: no move
    assert plan.sent() == PlanState.SENT and plan.waiting
    assert plan.answered(answer("approved", MessageKind.TEXT)) is None  # not an answer
    assert plan.answered(answer("rejected: add a test")) == PlanState.NEEDED and plan.needed
    plan.sent()
    assert plan.answered(answer("approved: go")) == PlanState.APPROVED
    assert plan.answered(answer("approved")) is None  # answered already
    plan.start(2, required=True)
    assert plan.needed  # each task needs its own plan
    plan.start(None, required=True)
    assert plan.state == PlanState.APPROVED  # a session without a task needs none
    assert PlanApproval(required=False).state == PlanState.APPROVED


def test_the_tools_are_read_only_until_approved() -> None:
    full = toolbox_for(PLANNER)
    plan = PlanApproval(required=True)
    planning = set(plan.tools(full).names())
    assert "send_plan" in planning and "read_file" in planning
    assert not planning & {"write_file", "edit_file", "bash"}
    plan.sent()
    plan.answered(answer("approved"))
    assert plan.tools(full) is full


def test_a_move_is_a_typed_entry_and_old_notes_still_read() -> None:
    typed = entry(TranscriptKind.PLAN_STATE, plan_approval.body(PlanState.SENT))
    assert typed.body == {"state": "sent"}
    assert plan_approval.state_of(typed) == PlanState.SENT
    assert plan_approval.state_of(entry(TranscriptKind.NOTE, {"text": "plan approved"})) == (
        PlanState.APPROVED
    )
    for other in ("plan of bob approved", "task #1 claimed again", "plan"):
        assert plan_approval.state_of(entry(TranscriptKind.NOTE, {"text": other})) is None
    said = entry(TranscriptKind.MESSAGE, {"role": "user", "text": "plan sent"})
    assert plan_approval.state_of(said) is None  # only the runtime's own entries count


@pytest.mark.parametrize("old", [False, True], ids=["typed", "note"])
def test_restore_takes_the_last_move(old: bool) -> None:
    def move(state: PlanState) -> TranscriptEntry:
        if old:
            return entry(TranscriptKind.NOTE, {"text": f"plan {state.value}"})
        return entry(TranscriptKind.PLAN_STATE, plan_approval.body(state))

    moves = [move(PlanState.SENT), move(PlanState.NEEDED), move(PlanState.SENT)]
    plan = PlanApproval(required=True)
    plan.restore(moves, 1, required=True)
    assert plan.waiting
    plan.restore(moves[:2], 1, required=True)
    assert plan.needed
    plan.restore([], 1, required=True)
    assert plan.needed  # a task's session with no move yet
    free = PlanApproval(required=False)
    free.restore(moves, 1, required=False)
    assert free.state == PlanState.APPROVED


@pytest.fixture
def services(make_store: Callable[..., Store], tmp_path: Path) -> Team:
    store = make_store(synchronous="normal")
    store.create_team("main")
    store.add_member("main", "lead", token_hash=hash_token("x"), role=MemberRole.LEAD)
    store.add_member("main", "alice", token_hash=hash_token("z"))
    store.start_run("main", "Change the parser.", "lead", RunSettings())
    services = Team.open(store, "main", Config(), tmp_path)
    services.board.add(NewTask("change the parser", assignee="alice"))
    return services


def alice(services: Team, tmp_path: Path, model: ScriptedModel) -> str:
    agent = build_agent(services, "alice", Config(), tmp_path, model=model, idle_wait=0.01)
    agent.definition = PLANNER
    agent.toolbox = toolbox_for(PLANNER)
    return agent.run(once=True).detail


def test_a_member_saves_its_moves_as_typed_entries(services: Team, tmp_path: Path) -> None:
    model = ScriptedModel([reply("", call("send_plan", {"plan": "edit p.py"})), reply("Waiting.")])
    assert alice(services, tmp_path, model) == "waiting for the lead to answer the plan"
    entries = services.store.read_transcript("main", "alice")
    moves = [e.body for e in entries if e.kind == TranscriptKind.PLAN_STATE]
    assert moves == [{"state": "sent"}]
    notes = [str(e.body.get("text")) for e in entries if e.kind == TranscriptKind.NOTE]
    assert not [n for n in notes if n.startswith("plan ")]  # no longer said in note text
    # Restarted, it still waits for the answer: no model call until the lead answers.
    assert alice(services, tmp_path, ScriptedModel([])) == "waiting for the lead to answer the plan"


@pytest.mark.parametrize("state", ["sent", "approved"])
def test_a_transcript_written_before_typed_entries_resumes_right(
    services: Team, tmp_path: Path, state: str
) -> None:
    """A store written by an older accord kept the plan state only as a note."""
    store = services.store
    claim = services.board.claim("alice", task_id=1)
    assert claim is not None
    sent = call("send_plan", {"plan": "edit p.py"})

    def message(m: ChatMessage) -> TranscriptEntry:
        return TranscriptEntry("alice", 1, TranscriptKind.MESSAGE, m.to_dict(), 1)

    store.append_transcript(
        "main",
        [
            TranscriptEntry("alice", 1, TranscriptKind.SESSION, {"event": "start"}, 1),
            message(ChatMessage("user", "Task #1: change the parser. Send a plan first.")),
            message(ChatMessage("assistant", "", (sent,))),
            message(ChatMessage("user", tool_results=(ToolResult(sent.id, "send_plan", "sent"),))),
            TranscriptEntry("alice", 1, TranscriptKind.NOTE, {"text": "plan sent"}, 1),
            message(ChatMessage("assistant", "Waiting.")),
        ],
    )
    if state == "sent":
        assert alice(services, tmp_path, ScriptedModel([])) == (
            "waiting for the lead to answer the plan"
        )
        return
    store.append_transcript(
        "main", [TranscriptEntry("alice", 1, TranscriptKind.NOTE, {"text": "plan approved"}, 1)]
    )
    model = ScriptedModel(
        [
            reply("", call("write_file", {"path": "p.py", "content": "x"})),
            reply("", call("task_complete", {"task_id": 1, "result": "done"})),
            reply("Done."),
        ]
    )
    alice(services, tmp_path, model)
    model.assert_complete()
    assert (tmp_path / "p.py").read_text() == "x"  # approved before the restart: may write
    assert services.board.get(1).status == "completed"
