"""The Team: one way in above the store. Each service reaches what the agent, the runtime
and the command line read and write, bound to the team's name, and each is made once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from accord.config import Config
from accord.errors import UnknownTeam
from accord.store import Store
from accord.team import Team, teams
from accord.types import (
    MemberRole,
    MemberStatus,
    MemoryType,
    NewMemory,
    NewTask,
    RunSettings,
    RunStatus,
    TaskStatus,
    TranscriptEntry,
    TranscriptKind,
    UsageRecord,
)


@pytest.fixture
def main(make_store: Callable[..., Store], tmp_path: Path) -> Team:
    team = Team.create(make_store(), "main", Config(), tmp_path)
    team.roster.add("lead", role=MemberRole.LEAD)
    team.roster.add("alice")
    return team


def test_the_team_and_the_store_catalogue(main: Team) -> None:
    assert main.name == "main" and main.record().name == "main"
    assert [t.name for t in teams(main.store)] == ["main"]
    other = Team.create(main.store, "other")
    other.delete()
    with pytest.raises(UnknownTeam):
        other.record()


def test_roster_board_and_mailbox(main: Team) -> None:
    assert [m.name for m in main.roster.list()] == ["alice", "lead"]
    main.roster.update("alice", status=MemberStatus.WORKING, heartbeat=True)
    assert main.roster.get("alice").status == MemberStatus.WORKING
    main.board.add(NewTask("one"))
    claim = main.board.claim("alice")
    assert claim is not None
    back = main.board.release(claim.task.id, "alice", claim.fencing_token, "outage")
    assert back.status == TaskStatus.PENDING and back.attempts == 0
    (sent,) = main.mailbox.send("lead", "alice", "hello")
    assert main.mailbox.get(sent.id).body == "hello"
    assert main.pending_work("alice").mail == 1


def test_log_events_and_transcripts(main: Team) -> None:
    event = main.log.append_event("note", {"text": "x"}, "alice")
    assert main.log.read_events(since=event.seq - 1)[0].kind == "note"
    assert isinstance(main.log.change_marker(), int)
    entry = TranscriptEntry("alice", 1, TranscriptKind.NOTE, {"text": "hi"})
    main.log.append_transcript([entry])
    assert main.log.last_session("alice") == 1
    assert [e.body["text"] for e in main.log.read_transcript("alice", session=1)] == ["hi"]


def test_runs_spawns_hosts_and_usage(main: Team) -> None:
    runs = main.runs
    assert runs.get() is None
    runs.start("a goal", "lead", RunSettings(budget_usd=2.5))
    assert runs.run_budget_usd() == 2.5
    assert runs.update(status=RunStatus.STOPPING).status == RunStatus.STOPPING
    host = runs.register_host("h1", machine="m", pid=1, slots=None, lease_seconds=30)
    assert [h.host for h in runs.hosts()] == ["h1"]
    spawn = runs.request_spawn("bob", token_hash="x", requested_by="lead")
    assert [s.id for s in runs.pending_spawns()] == [spawn.id]
    taken = runs.take_spawn("h1", host.token)
    assert taken is not None and runs.finish_spawn(taken.id, "started").status == "started"
    runs.record_usage(UsageRecord("alice", "scripted:m", 10, 5, cost_usd=0.25))
    (total,) = runs.usage_totals(by="member")
    assert total.key == "alice" and total.cost_usd == 0.25
    runs.release_host("h1", host.token)


def test_memory_is_made_once_and_lists_entries(main: Team) -> None:
    assert main.memory is main.memory and main.board is main.board
    main.memory.remember(NewMemory(MemoryType.DECISION, "use sqlite"))
    assert [e.text for e in main.memory.entries(type=MemoryType.DECISION)] == ["use sqlite"]
    assert main.memory.entries(type=MemoryType.STORY) == []


def test_a_team_bound_without_settings_runs_no_hooks(main: Team) -> None:
    bare = Team(main.store, "main")
    assert bare.board.hooks is None and bare.roster.hooks is None
    assert bare.runs.over_budget("alice") is None  # default budgets: none
    assert main.board.hooks is main.hooks
