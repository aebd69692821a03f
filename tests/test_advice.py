"""Errors say what was wrong and carry fields; each front door words its own advice:
the command line names a command (as it always printed), the tools name a tool."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.agent.tools._advice import worded as for_the_model
from accord.cli._advice import worded as for_the_cli
from accord.errors import AccordError, InvalidState, Reason
from accord.store import Store, open_store
from accord.types import NewTask, RunSettings, RunStatus


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = open_store(str(tmp_path / "accord.db"), create=True)
    store.create_team("main")
    for name in ("alice", "bob"):
        store.add_member("main", name, token_hash="h")
    return store


def refusal(call: object) -> AccordError:
    assert callable(call)
    with pytest.raises(AccordError) as refused:
        call()
    assert "`accord" not in str(refused.value), "the store words no command-line advice"
    return refused.value


def test_each_front_door_words_the_advice(store: Store) -> None:
    e = refusal(lambda: store.get_task("main", 7))
    assert (e.team, e.task_id) == ("main", 7)
    assert for_the_cli(e) == "team 'main' has no task #7; see `accord task list --team main`"
    assert for_the_model(e) == "team 'main' has no task #7; see task_list"

    e = refusal(lambda: store.get_team("nope"))
    assert for_the_cli(e).endswith("; create it with `accord team create nope`")
    assert for_the_model(e) == str(e)

    task = store.add_task("main", NewTask("one", assignee="bob"), max_attempts=3)
    e = refusal(lambda: store.claim_task("main", "alice", lease_seconds=60, task_id=task.id))
    assert e.reason == Reason.ASSIGNED
    advice = f" (or reassign it with `accord task update {task.id} --assign alice`)"
    assert for_the_cli(e).endswith("only they can claim it" + advice)
    assert "task_update" in for_the_model(e)

    e = refusal(lambda: store.complete_task("main", task.id, "bob", 1))
    assert e.reason == Reason.UNCLAIMED
    assert for_the_cli(e).endswith(
        f"; claim it first with `accord task claim --as bob --id {task.id}`"
    )
    assert for_the_model(e).endswith("; claim it first with task_claim")

    e = refusal(lambda: store.ack_messages("main", "alice", [41, 42]))
    assert (
        for_the_cli(e) == "no message 41, 42 addressed to alice; see `accord msg inbox --as alice`"
    )

    e = refusal(lambda: store.get_memory("main", 9))
    assert for_the_cli(e).endswith("; see `accord memory search` or `accord memory list`")
    assert for_the_model(e).endswith("; see recall")

    e = refusal(lambda: store.claim_supervisor("main", pid=1, host="h", lease_seconds=30))
    assert for_the_cli(e) == "team 'main' has never been run; start it with `accord run`"


def test_the_services_and_the_runtime_word_no_command_either(store: Store, tmp_path: Path) -> None:
    from accord.config import locate
    from accord.runtime.team_run import prepare_resume
    from accord.team import Team, pick_team

    e = refusal(lambda: prepare_resume(Team(store, "main"), locate(tmp_path, store.location)))
    assert (e.team, e.reason) == ("main", Reason.NEVER_RUN)
    assert for_the_cli(e) == "team 'main' has never been run; start it with `accord run GOAL`"

    Team.create(store, "other")
    e = refusal(lambda: pick_team(store, None, None, None))
    assert e.reason == Reason.MANY_TEAMS
    assert for_the_cli(e) == (
        "this store has 2 teams (main, other); pass --team NAME, set ACCORD_TEAM, "
        "or set [team] default in accord.toml"
    )

    store.start_run("main", "g", "alice", RunSettings())
    store.update_run("main", status=RunStatus.FINISHED, summary="done")
    e = refusal(lambda: prepare_resume(Team(store, "main"), locate(tmp_path, store.location)))
    assert for_the_cli(e) == (
        "team 'main' finished (done); start a new goal with `accord run GOAL --team main`"
    )


@pytest.mark.parametrize(
    ("error", "printed"),
    [
        (
            InvalidState("team 't' is running already", team="t", reason=Reason.SUPERVISED),
            "team 't' is running already; watch it with `accord watch --team t` "
            "or stop it with `accord stop`",
        ),
        (
            InvalidState("lead leads the running team", member="lead", reason=Reason.LEADS),
            "lead leads the running team; stop the team first with `accord stop`",
        ),
        (
            InvalidState("ann is running (working)", member="ann", reason=Reason.RUNNING),
            "ann is running (working); stop it first with `accord stop ann`, then remove it",
        ),
    ],
)
def test_the_runtime_refusals_are_advised_as_before(error: AccordError, printed: str) -> None:
    assert for_the_cli(error) == printed


def test_removing_a_live_member_is_advised_by_the_command_line(store: Store) -> None:
    from accord.team import Team
    from accord.types import MemberStatus

    store.update_member("main", "alice", status=MemberStatus.WORKING)
    e = refusal(lambda: Team(store, "main").roster.remove("alice"))
    assert (e.member, e.reason) == ("alice", Reason.LIVE)
    assert for_the_cli(e) == (
        "alice is working; stop it first or pass --force (its tasks go back to pending)"
    )


def test_a_missing_store_is_advised_by_the_command_line(tmp_path: Path) -> None:
    e = refusal(lambda: open_store(str(tmp_path / "none.db")))
    assert e.reason == Reason.NO_STORE
    assert for_the_cli(e) == (
        f"no store at {tmp_path / 'none.db'}; run `accord init` in the project folder, "
        "or pass --store with the right path"
    )
