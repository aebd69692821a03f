"""Advisory file claims: a member claims paths for a task it holds, and accord's file
tools refuse other members' writes to them until the task claim ends.

The store's side (tokens, overlaps, endings, both backends) is in the conformance
suite (``accord.testing.conformance_files``); here are the patterns themselves, the
service, and the tools end to end: two members sharing one folder and one store.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accord.agent.definition import AgentDefinition
from accord.agent.tools import Toolbox, ToolContext, all_tools
from accord.agent.tools.files import glob_regex
from accord.cli._render import story_line
from accord.config import Config
from accord.errors import StaleToken, UserError
from accord.events import EventKind
from accord.llm.base import ModelRequest, ToolCall, ToolResult
from accord.llm.scripted import Reply, ScriptedModel, call, reply
from accord.store import Store, open_store
from accord.store._globs import file_pattern, matches, overlap
from accord.team import Team
from accord.testing import FakeClock
from accord.types import NewTask, TaskStatus
from conftest import Cli, dump, make_agent, store_path

Call = Callable[..., ToolResult]


# patterns --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "meet"),
    [
        ("src/api/**", "src/api/x.py", True),
        ("src/api/**", "src/x.py", False),
        ("src/**/test_*.py", "src/api/**", True),  # src/api/test_x.py
        ("*.py", "src/**", False),  # '*' never crosses a folder
        ("src/*.py", "src/api/**", False),
        ("a/**/b", "a/b", True),  # '**/' may be no folder at all
        ("a/**/b", "a/xb", False),
        ("src/[a-c]*.py", "src/d.py", False),
        ("src/[!a-c]*.py", "src/d.py", True),
        ("x?", "x/", False),
        ("**", "anything/at/all", True),
    ],
)
def test_overlap_is_decided_exactly(first: str, second: str, meet: bool) -> None:
    assert overlap(first, second) is meet
    assert overlap(second, first) is meet


def test_matching_agrees_with_the_file_tools_globs_and_overlap_with_matching() -> None:
    """``matches`` is the glob tool's syntax; two patterns that both match some path
    overlap (the claim check can never let two members share a path)."""
    pick = random.Random(12)
    atoms = ["a", "b", "/", "*", "**", "**/", "?", "[ab]", "[!a]", ".py"]
    paths = ["".join(pick.choice("ab/.") for _ in range(pick.randint(1, 7))) for _ in range(300)]
    paths = [p.strip("/") for p in paths if p.strip("/")]
    patterns = ["".join(pick.choice(atoms) for _ in range(pick.randint(1, 4))) for _ in range(60)]
    for pattern in patterns:
        regex = glob_regex(pattern)
        hits = {p for p in paths if matches(pattern, p)}
        assert hits == {p for p in paths if regex.match(p)}, pattern
        for other in patterns:
            if any(matches(other, p) for p in hits):
                assert overlap(pattern, other), (pattern, other)


@pytest.mark.parametrize(
    ("given", "kept"),
    [("src/api.py", "src/api.py"), ("./src//api/", "src/api/**"), (" docs/*.md ", "docs/*.md")],
)
def test_patterns_are_kept_in_one_spelling(given: str, kept: str) -> None:
    assert file_pattern(given) == kept


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("", "is empty"),
        ("/etc/passwd", "is absolute"),
        ("C:\\x", "is absolute"),
        ("../up.py", "uses '..'"),
        ("src/../../x", "uses '..'"),
        (".", "names the project root"),
        ("a\nb", "control character"),
        ("*a" * 21, "wildcards"),
    ],
)
def test_bad_patterns_say_what_to_do(given: str, said: str) -> None:
    with pytest.raises(UserError, match=said) as info:
        file_pattern(given)
    assert "relative to the project root" in str(info.value) or said in str(info.value)


# the service -------------------------------------------------------------------------


def test_board_claims_and_answers_who_holds_a_path(store: Store, tmp_path: Path) -> None:
    board = Team.open(store, "main", Config(), tmp_path).board
    task = board.add(NewTask("api"))
    claim = board.claim("alice", task.id)
    assert claim is not None
    claims = board.claim_files(task.id, "alice", claim.fencing_token, ["src/api/"])
    assert [c.pattern for c in claims] == ["src/api/**"]
    assert board.file_claims() == claims == board.file_claims(task.id)
    holder = board.file_holder("src/api/x.py", "bob")
    assert holder is not None and (holder.member, holder.task_id) == ("alice", task.id)
    assert board.file_holder("src/api/x.py", "alice") is None
    with pytest.raises(StaleToken):
        board.claim_files(task.id, "alice", claim.fencing_token + 1, ["b.py"])
    board.complete(task.id, "alice", claim.fencing_token, "done")
    assert board.file_holder("src/api/x.py", "bob") is None and board.file_claims() == []


def test_deleting_the_team_deletes_its_claim_rows(
    make_store: Callable[..., Store], clock: FakeClock, tmp_path: Path
) -> None:
    store = make_store(clock=clock)
    team = Team.create(store, "gone")
    team.roster.add("alice")
    task = team.board.add(NewTask("t"))
    claim = team.board.claim("alice", task.id)
    assert claim is not None
    team.board.claim_files(task.id, "alice", claim.fencing_token, ["a/**"])
    assert len(dump(tmp_path / "accord.db")["file_claims"]) == 1
    team.delete()
    assert dump(tmp_path / "accord.db")["file_claims"] == []


# the tools, two members sharing one folder -------------------------------------------


@pytest.fixture
def shared(store: Store, tmp_path: Path) -> tuple[Team, Path]:
    ws = tmp_path / "ws"
    (ws / "src" / "api").mkdir(parents=True)
    (ws / "src" / "api" / "routes.py").write_text("routes = []\n")
    return Team.open(store, "main", Config(), ws), ws


def _member(team: Team, ws: Path, name: str) -> tuple[ToolContext, Call]:
    ctx = ToolContext(workspace=ws, member=name, team=team)
    box = Toolbox(all_tools())

    def call(tool: str, **arguments: Any) -> ToolResult:
        return box.execute(ctx, ToolCall("c1", tool, arguments))

    return ctx, call


def ok(result: ToolResult) -> str:
    assert not result.is_error, result.content
    return result.content


def refused(result: ToolResult, *fragments: str) -> str:
    assert result.is_error, result.content
    for fragment in fragments:
        assert fragment in result.content, result.content
    return result.content


def test_a_claimed_path_refuses_other_members_writes_until_the_task_ends(
    shared: tuple[Team, Path],
) -> None:
    team, ws = shared
    actx, alice = _member(team, ws, "alice")
    _, bob = _member(team, ws, "bob")
    ok(alice("task_create", title="api"))
    ok(alice("task_claim", task_id=1))
    out = ok(alice("claim_files", patterns=["src/api/**"]))
    assert "src/api/**" in out and "bash is not checked" in out
    assert "token" not in out and str(actx.claims[1].token) not in out.split("#1")[-1]

    said = refused(
        bob("write_file", path="src/api/x.py", content="x = 1\n"),
        "src/api/x.py is claimed by alice for task #1",
        "send_message",
    )
    assert "`accord" not in said
    refused(
        bob("edit_file", path="src/api/routes.py", old_text="[]", new_text="[1]"),
        "claimed by alice for task #1",
    )
    os.symlink(ws / "src" / "api" / "routes.py", ws / "shortcut.py")
    refused(bob("write_file", path="shortcut.py", content="x"), "claimed by alice")
    assert not (ws / "src" / "api" / "x.py").exists()
    assert (ws / "src" / "api" / "routes.py").read_text() == "routes = []\n"
    ok(bob("write_file", path="src/other.py", content="y = 2\n"))  # elsewhere is free
    ok(alice("write_file", path="src/api/x.py", content="x = 1\n"))  # hers to write
    ok(alice("edit_file", path="src/api/routes.py", old_text="[]", new_text="[1]"))

    # Given up early, a path is free at once; the rest stays hers until the task ends.
    ok(alice("claim_files", patterns=["docs/**"]))
    refused(bob("write_file", path="docs/a.md", content="b"), "claimed by alice")
    out = ok(alice("release_files", patterns=["docs/**"]))
    assert out == "released; task #1 now claims: src/api/**"
    ok(bob("write_file", path="docs/a.md", content="b"))
    refused(alice("release_files", patterns=["docs/**"]), "holds no file claim docs/**")

    ok(alice("task_complete", task_id=1, result="done"))
    ok(bob("write_file", path="src/api/x.py", content="x = 2\n"))
    assert (ws / "src" / "api" / "x.py").read_text() == "x = 2\n"
    claimed = [e for e in team.log.read_events() if e.kind == EventKind.FILES_CLAIMED]
    assert [(e.actor, e.payload["patterns"]) for e in claimed] == [
        ("alice", ["src/api/**"]),
        ("alice", ["docs/**"]),
    ]


def test_a_dead_lease_frees_the_paths(shared: tuple[Team, Path], clock: FakeClock) -> None:
    team, ws = shared
    _, alice = _member(team, ws, "alice")
    _, bob = _member(team, ws, "bob")
    ok(alice("task_create", title="api"))
    ok(alice("task_claim"))
    ok(alice("claim_files", patterns=["src/api"]))  # a folder: everything in it
    refused(bob("write_file", path="src/api/deep/x.py", content="x"), "claimed by alice")
    clock.advance(team.board.settings.lease_seconds + 1)  # alice stopped heartbeating
    ok(bob("write_file", path="src/api/deep/x.py", content="x"))


def test_claims_are_refused_for_stale_tokens_others_paths_and_bad_patterns(
    shared: tuple[Team, Path],
) -> None:
    team, ws = shared
    actx, alice = _member(team, ws, "alice")
    bctx, bob = _member(team, ws, "bob")
    refused(alice("claim_files", patterns=["a.py"]), "you hold no task", "task_claim")
    ok(alice("task_create", title="one"))
    ok(alice("task_create", title="two"))
    ok(alice("task_claim", task_id=1))
    ok(bob("task_claim", task_id=2))
    refused(alice("claim_files", patterns=["a.py"], task_id=2), "held by bob", "task_claim")
    ok(alice("claim_files", patterns=["src/api/**"]))
    taken = refused(bob("claim_files", patterns=["src/**"]), "claimed by alice for task #1")
    assert "src/api/**" in taken
    for bad, said in (
        ("/etc/passwd", "absolute"),
        ("../../x", "'..'"),
        ("", "empty"),
    ):
        refused(bob("claim_files", patterns=[bad]), said)
    refused(bob("claim_files", patterns=[]), "patterns")
    assert team.board.file_claims() == team.board.file_claims(1)
    # A token that is no longer the claim's: refused, and the tool forgets the claim.
    bctx.claims[2].token += 1
    refused(bob("claim_files", patterns=["docs/**"]), "is not the current claim")
    assert 2 not in bctx.claims
    assert [c.pattern for c in team.board.file_claims()] == ["src/api/**"]
    ok(alice("task_create", title="three"))
    ok(alice("task_claim", task_id=3))
    refused(alice("claim_files", patterns=["b.py"]), "several tasks (#1, #3)", "task_id")
    ok(alice("claim_files", patterns=["src/api/v2/**"], task_id=3))  # her own never blocks her
    assert actx.claims.keys() == {1, 3}


def test_task_show_and_the_story_name_a_tasks_file_claims(cli: Cli, project: Path) -> None:
    assert cli("init", "--team", "main").code == 0
    assert cli("member", "add", "alice").code == 0
    assert cli("task", "add", "api").code == 0
    with open_store(str(store_path(project))) as store:
        team = Team.open(store, "main", Config(), project)
        claim = team.board.claim("alice", 1)
        assert claim is not None
        team.board.claim_files(1, "alice", claim.fencing_token, ["src/api/**", "README.md"])
        claimed = team.log.read_events()[-1]
        team.board.release_files(1, "alice", claim.fencing_token, ["README.md"])
        released = team.log.read_events()[-1]
    shown = cli("task", "show", "1")
    assert shown.code == 0 and "files claimed  src/api/**" in shown.out, shown.out
    # The run's story (``--display plain``) says it in a line.
    assert story_line(claimed) == "alice claims src/api/**, README.md for #1"
    assert story_line(released) == "alice gives up README.md (#1)"


def test_two_agents_sharing_a_folder_one_claims_and_the_other_is_told(
    team: Team, repo: Path
) -> None:
    """Whole agent loops (scripted models): bob, whose definition allows only reading and
    writing files, still has claim_files; alice, working meanwhile in the same folder, is
    refused bob's path with his name and task, and writes elsewhere."""
    team.roster.add("bob")
    team.board.add(NewTask("api", assignee="bob"))
    team.board.add(NewTask("docs", assignee="alice"))
    alice_model = ScriptedModel(
        [
            reply("", call("write_file", {"path": "src/api/x.py", "content": "mine\n"})),
            reply("", call("write_file", {"path": "docs/api.md", "content": "# api\n"})),
            reply("", call("task_complete", {"task_id": 2, "result": "documented"})),
            reply("done"),
        ]
    )

    def alice_works_meanwhile(request: ModelRequest) -> Reply:
        make_agent(team, alice_model, repo, member="alice").run(once=True)
        return reply("", call("write_file", {"path": "src/api/x.py", "content": "x = 1\n"}))

    bob_model = ScriptedModel(
        [
            reply("", call("claim_files", {"patterns": ["src/api/**"]})),
            alice_works_meanwhile,
            reply("", call("task_complete", {"task_id": 1, "result": "api written"})),
            reply("done"),
        ]
    )
    writer = AgentDefinition(name="writer", prompt="write code", tools=("read_file", "write_file"))
    make_agent(team, bob_model, repo, definition=writer, member="bob").run(once=True)
    bob_model.assert_complete()
    alice_model.assert_complete()
    refusal = alice_model.requests[1].messages[-1].tool_results[0]
    assert refusal.is_error and "src/api/x.py is claimed by bob for task #1" in refusal.content
    assert (repo / "src" / "api" / "x.py").read_text() == "x = 1\n"
    assert (repo / "docs" / "api.md").read_text() == "# api\n"
    claimed = bob_model.requests[1].messages[-1].tool_results[0]
    assert not claimed.is_error and "src/api/**" in claimed.content
    token = team.board.get(1).fencing_token
    assert all(f"token {token}" not in m.text for r in bob_model.requests for m in r.messages)
    assert [t.status for t in team.board.list()] == [TaskStatus.COMPLETED] * 2
    assert team.board.file_claims() == []
