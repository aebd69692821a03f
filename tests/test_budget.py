"""The one budget check, ``Team.runs.over_budget``: which limits hold, what "would pass"
means, and a run's ``--budget`` stopping a member before the model call that would pass it
(the scripted model shows that call never arrived)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from accord.agent.launch import build_agent
from accord.config import Config, parse_config
from accord.llm.base import Usage
from accord.llm.scripted import ScriptedModel, call, estimate_tokens, reply
from accord.store import Store
from accord.team import Team
from accord.types import MemberRole, MemberStatus, NewTask, RunSettings, TaskStatus, UsageRecord

MODEL = "scripted:model"


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    store = make_store()
    store.create_team("main")
    store.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
    store.add_member("main", "alice", token_hash="x")
    store.add_member("main", "bob", token_hash="x")
    return store


def spend(store: Store, member: str, usd: float | None, tokens: int = 10) -> None:
    store.record_usage(
        "main",
        UsageRecord(member=member, model=MODEL, input_tokens=tokens, output_tokens=0, cost_usd=usd),
    )


def team(store: Store, toml: str = "") -> Team:
    return Team(store, "main", parse_config(toml))


# the rule -------------------------------------------------------------------------------


def test_no_budget_never_stops(store: Store) -> None:
    spend(store, "alice", 1000.0, tokens=10**9)
    assert team(store).runs.over_budget("alice", next_usd=1e6, next_tokens=10**9) is None


def test_spent_reaching_a_limit_stops_and_below_it_does_not(store: Store) -> None:
    runs = team(store, "[budgets]\nmember = { usd = 1.0 }\n").runs
    spend(store, "alice", 0.99)
    assert runs.over_budget("alice") is None
    spend(store, "alice", 0.01)  # exactly the limit: reached
    assert runs.over_budget("alice") == "the member budget of $1.00 is spent ($1.0000)"
    assert runs.over_budget("bob") is None  # a member's limit counts its own spend


def test_the_next_calls_input_counts_before_it_is_made(store: Store) -> None:
    runs = team(store, "[budgets]\nmember = { usd = 1.0, tokens = 1000 }\n").runs
    spend(store, "alice", 0.5, tokens=400)
    assert runs.over_budget("alice", next_usd=0.49, next_tokens=599) is None
    why = runs.over_budget("alice", next_usd=0.5, next_tokens=10)
    assert why is not None and "would be passed by the next call" in why and "$1.00" in why
    why = runs.over_budget("alice", next_usd=0.0, next_tokens=600)
    assert why is not None and "1000 tokens" in why


def test_a_members_own_table_replaces_the_default(store: Store) -> None:
    runs = team(store, "[budgets]\nmember = { usd = 1.0 }\nmembers.alice = { usd = 5.0 }\n").runs
    spend(store, "alice", 2.0)
    spend(store, "bob", 2.0)
    assert runs.over_budget("alice") is None
    assert runs.over_budget("bob") is not None


def test_the_team_limit_counts_everyone_and_the_runs_budget_replaces_the_files(
    store: Store,
) -> None:
    runs = team(store, "[budgets]\nteam = { usd = 2.0, tokens = 100 }\n").runs
    spend(store, "alice", 1.0, tokens=10)
    spend(store, "bob", 1.0, tokens=10)
    assert runs.over_budget("alice") == "the team budget of $2.00 is spent ($2.0000)"
    assert runs.over_budget(None) == runs.over_budget("bob")  # the supervisor's question
    # `accord run --budget 3` (or `resume --budget 3`): the run's USD limit replaces the
    # file's, so a resume can raise it; the token limit still holds.
    store.start_run("main", "g", "lead", RunSettings(budget_usd=3.0))
    assert runs.over_budget(None) is None
    assert runs.over_budget(None, next_usd=1.0) is not None
    assert runs.over_budget(None, next_tokens=80) == (
        "the team budget of 100 tokens would be passed by the next call "
        "(20 spent, about 80 to send)"
    )


# the agent ------------------------------------------------------------------------------


def test_run_budget_stops_a_member_before_the_call_that_would_pass_it(
    store: Store, tmp_path: Path
) -> None:
    """`accord run --budget` writes the run's budget_usd; the member stops before the call
    whose input would take the spend to it, though what it had spent was below it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    # One dollar per million input tokens, output free: a call costs its input tokens.
    config = parse_config(f'[prices."{MODEL}"]\ninput = 1.0\noutput = 0.0\n')
    services = Team.open(store, "main", config, repo)
    store.start_run("main", "g", "lead", RunSettings(budget_usd=1.0005))
    services.board.add(NewTask("costly"))
    model = ScriptedModel(
        [
            # The first call reports a million input tokens: $1.00 spent, under $1.0005.
            reply("", call("list_files", {}), usage=Usage(input_tokens=1_000_000)),
            reply("never sent"),
        ],
        name=MODEL,
    )
    agent = build_agent(services, "alice", config, repo, model=model, idle_wait=0.05)
    outcome = agent.run(once=True)

    assert outcome.reason == "budget", outcome
    assert "would be passed by the next call" in outcome.detail
    # The second call never arrived: one request, its step still unplayed.
    assert len(model.requests) == 1 and model.remaining == 1
    # What was spent alone was under the budget: the old rule would have made the call.
    (spent,) = services.runs.usage_totals(member="alice")
    assert spent.calls == 1 and spent.cost_usd == pytest.approx(1.0)
    assert spent.cost_usd < 1.0005
    # ... and the call it refused would have passed it, by its input alone.
    assert estimate_tokens(model.requests[0]) * 1e-6 > 1.0005 - 1.0
    # Stopped as a budget stop is: told the lead, logged, task kept in progress.
    told = [m for m in services.mailbox.history(member="lead") if m.sender == "alice"]
    assert told and "budget" in told[0].body
    kinds = [
        (e.kind, e.payload.get("member") or e.payload.get("name"))
        for e in services.log.read_events()
    ]
    assert ("budget_exceeded", "alice") in kinds and ("member_stopped", "alice") in kinds
    assert services.board.get(1).status == TaskStatus.IN_PROGRESS
    assert services.roster.get("alice").status == MemberStatus.STOPPED


def test_a_member_under_budget_makes_its_calls(store: Store, tmp_path: Path) -> None:
    config = parse_config(f'[prices."{MODEL}"]\ninput = 1.0\noutput = 0.0\n')
    services = Team.open(store, "main", config, tmp_path)
    store.start_run("main", "g", "lead", RunSettings(budget_usd=5.0))
    services.mailbox.send("lead", "alice", "hello")
    model = ScriptedModel([reply("hi")], name=MODEL)
    outcome = build_agent(services, "alice", config, tmp_path, model=model, idle_wait=0.05).run(
        once=True
    )
    assert outcome.reason == "idle" and len(model.requests) == 1
    model.assert_complete()


def test_the_team_is_built_once_with_one_memory(store: Store, tmp_path: Path) -> None:
    services = Team.open(store, "main", Config(), tmp_path)
    assert services.memory is services.memory and services.runs is services.runs
    agent = build_agent(services, "alice", Config(), tmp_path, model=ScriptedModel([]))
    assert agent.memory is services.memory and agent.ctx.team is services
