"""Skills above the store: `accord skill ...`, the files read unchanged (the project's and
the user's ``.claude/skills``), precedence, review, revision loops, caps, what a member's
context lists and what ``use_skill`` loads and records, and outcomes per version.

The store's promises about skills are in the conformance suite
(``accord.testing.conformance_skills``), on both backends."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from accord.agent.definition import parse_definition
from accord.agent.tools.base import ToolContext
from accord.agent.tools.skills import SkillReviewArgs, skill_review
from accord.config import Config, LearningConfig
from accord.errors import ConfigError
from accord.llm.scripted import ScriptedModel, call, reply
from accord.store import open_store
from accord.team import Team
from accord.testing.cli import js, ok, one_error
from accord.types import NewTask, SkillOrigin, SkillStatus
from conftest import Cli, configure, db, make_agent, refusals


def skill_file(root: Path, name: str, text: str) -> Path:
    folder = root / ".claude" / "skills" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "SKILL.md"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's home, with no skills in it yet."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("HOME", str(root))
    return root


@pytest.fixture
def skills(cli: Cli, project: Path, home: Path) -> dict[str, str]:
    """Team main with alice; its own skill run-tests (v1)."""
    ok(cli("init", "--team", "main"))
    tokens = {n: js(cli("member", "add", n, "--json"))["token"] for n in ("alice",)}
    ok(
        cli(
            "skill",
            "write",
            "run-tests",
            "--description",
            "How to run the tests",
            "--body",
            "1. pytest",
        )
    )
    return tokens


def test_write_show_revise_history_revert_and_export(
    cli: Cli, project: Path, skills: dict[str, str]
) -> None:
    [listed] = js(cli("skill", "list", "--json"))
    assert (listed["name"], listed["origin"], listed["version"]) == ("run-tests", "store", 1)
    assert "1. pytest" in ok(cli("skill", "show", "run-tests")).out
    said = ok(
        cli(
            "skill",
            "revise",
            "run-tests",
            "--body",
            "1. make test",
            "--reason",
            "task #4: pytest missed the lint",
        )
    ).out
    assert "v2 (current)" in said
    body = project / "b.md"
    body.write_text("1. make check")
    ok(cli("skill", "revise", "run-tests", "--file", str(body), "--reason", "task #5 failed"))
    history = js(cli("skill", "history", "run-tests", "--json"))
    assert [(v["version"], v["supersedes"], v["reason"]) for v in history] == [
        (1, None, None),
        (2, 1, "task #4: pytest missed the lint"),
        (3, 2, "task #5 failed"),
    ]
    table = ok(cli("skill", "history", "run-tests")).out
    assert "current" in table and "superseded" in table
    # Back to v1's body is a loop: refused, pointing at revert; revert does it.
    err = one_error(cli("skill", "revise", "run-tests", "--body", "1. pytest", "--reason", "r"))
    assert "v1" in err and "accord skill revert" in err
    assert "v4 has v1's text" in ok(cli("skill", "revert", "run-tests", "--to", "1")).out
    v4 = js(cli("skill", "show", "run-tests", "--version", "4", "--json"))
    assert (v4["body"], v4["reason"]) == ("1. pytest", "revert to v1")
    assert js(cli("skill", "show", "run-tests", "--json"))["version"] == 4
    # Export writes SKILL.md as Claude Code reads it, and nothing outside the folder.
    out = project / "out"
    ok(cli("skill", "export", "--dir", str(out)))
    text = (out / "run-tests" / "SKILL.md").read_text()
    assert text.startswith("---\nname: run-tests\ndescription: How to run the tests\n---\n")
    assert text.rstrip().endswith("1. pytest")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "run-tests",
        "run-tests/SKILL.md",
    ]
    ok(cli("skill", "export", "run-tests"))  # the project's own .claude/skills by default
    assert (project / ".claude" / "skills" / "run-tests" / "SKILL.md").read_text() == text


def test_refusals_say_what_and_change_nothing(
    cli: Cli, project: Path, skills: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = "x" * (LearningConfig().skill_chars + 1)
    refusals(
        cli,
        project,
        [
            (["skill", "show", "nope"], "no skill named 'nope'"),
            (["skill", "show", "nope"], "see `accord skill list`"),
            (["skill", "history", "nope"], "no skill named 'nope'"),
            (["skill", "stats", "nope"], "no skill named 'nope'"),
            (["skill", "show", "Bad_Name"], "not a valid skill name"),
            (
                ["skill", "write", "x-", "--description", "d", "--body", "b"],
                "not a valid skill name",
            ),
            (["skill", "write", "a" * 65, "--description", "d", "--body", "b"], "1-64 characters"),
            (
                ["skill", "write", "run-tests", "--description", "d", "--body", "b"],
                "already has a skill",
            ),
            (["skill", "write", "big", "--description", "d", "--body", huge], "skill_chars"),
            (
                ["skill", "write", "nodesc", "--description", " ", "--body", "b"],
                "needs a description",
            ),
            (["skill", "write", "f", "--description", "d", "--file", "missing.md"], "cannot read"),
            (["skill", "revise", "run-tests", "--body", "b2", "--reason", "  "], "needs a reason"),
            (
                ["skill", "revise", "run-tests", "--body", "1. pytest", "--reason", "r"],
                "the same as",
            ),
            (["skill", "revise", "nope", "--body", "b", "--reason", "r"], "no skill named 'nope'"),
            (["skill", "approve", "run-tests", "1"], "not pending"),
            (["skill", "approve", "run-tests", "9"], "no version 9"),
            (["skill", "revert", "run-tests", "--to", "1"], "current version already"),
            (["skill", "export", "nope"], "no skill named 'nope'"),
        ],
    )
    # A member acts only as itself, with its token.
    monkeypatch.setenv("ACCORD_MEMBER", "alice")
    monkeypatch.setenv("ACCORD_TOKEN", "wrong")
    refusals(
        cli, project, [(["skill", "revise", "run-tests", "--body", "b", "--reason", "r"], "token")]
    )


def test_precedence_store_over_project_over_user(cli: Cli, project: Path, home: Path) -> None:
    ok(cli("init", "--team", "main"))
    skill_file(home, "deploy", "---\nname: deploy\ndescription: the user's\n---\nuser body\n")
    skill_file(
        project,
        "deploy",
        """\
        ---
        name: deploy
        description: the project's
        allowed-tools: Bash(make:*)
        ---
        project body
        """,
    )
    (project / ".claude" / "skills" / "deploy" / "notes.md").write_text("see also")
    skill_file(home, "mine", "---\ndescription: only mine\n---\nmine body\n")
    listed = {s["name"]: s for s in js(cli("skill", "list", "--json"))}
    assert (listed["deploy"]["origin"], listed["deploy"]["shadows"]) == ("project", ["user"])
    assert listed["deploy"]["files"] == ["notes.md"]
    assert (listed["mine"]["origin"], listed["mine"]["shadows"]) == ("user", [])
    shown = ok(cli("skill", "list")).out
    assert "project" in shown and "user" in shown
    # A new skill may not take a file's name; revising the file's makes the store's v2,
    # with the file's text as v1 (its other keys and its files kept).
    one_error(cli("skill", "write", "deploy", "--description", "d", "--body", "b"), "revise it")
    ok(cli("skill", "revise", "deploy", "--body", "team body", "--reason", "task #1 failed"))
    v1, v2 = js(cli("skill", "history", "deploy", "--json"))
    assert (v1["origin"], v1["body"], v1["meta"]) == (
        "project",
        "project body",
        {"allowed-tools": "Bash(make:*)"},
    )
    assert v1["files"] == {"notes.md": "see also"}
    assert (v2["origin"], v2["body"], v2["supersedes"]) == ("store", "team body", 1)
    deploy = next(s for s in js(cli("skill", "list", "--json")) if s["name"] == "deploy")
    assert (deploy["origin"], deploy["shadows"]) == ("store", ["project", "user"])
    # The file is read unchanged, never written.
    assert "project body" in (project / ".claude" / "skills" / "deploy" / "SKILL.md").read_text()
    ok(cli("skill", "export", "deploy", "--dir", str(project / "out")))
    assert (project / "out" / "deploy" / "notes.md").read_text() == "see also"
    assert "allowed-tools: Bash(make:*)" in (project / "out" / "deploy" / "SKILL.md").read_text()


def test_a_broken_skill_file_is_skipped_with_a_warning(cli: Cli, project: Path, home: Path) -> None:
    ok(cli("init", "--team", "main"))
    bad = skill_file(project, "broken", "---\nname: [unclosed\ndescription: x\n---\nbody\n")
    nameless = skill_file(project, "Bad", "---\ndescription: x\n---\nbody\n")
    skill_file(project, "fine", "---\ndescription: works\n---\nbody\n")
    r = cli("skill", "list", "--json")
    assert r.code == 0 and [s["name"] for s in json.loads(r.out)] == ["fine"]
    warnings = [line for line in r.err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert any(str(bad) in w and "not valid YAML" in w for w in warnings)
    assert any(str(nameless) in w and "not a valid skill name" in w for w in warnings)


def test_review_by_the_lead_or_the_person(cli: Cli, project: Path, home: Path) -> None:
    ok(cli("init", "--team", "main"))
    configure(project, '[team]\ndefault = "main"\n\n[learning]\nskill_review = "lead"\n')
    ok(cli("member", "add", "alice"))
    ok(cli("member", "add", "boss", "--role", "lead"))
    ok(cli("skill", "write", "run-tests", "--description", "d", "--body", "v1 body"))
    store = open_store(db(project))
    team = Team.open(store, "main", Config(learning=LearningConfig(skill_review="lead")), project)
    pending = team.skills.revise("run-tests", "v2 body", "task #2 failed", "alice")
    assert pending.status == SkillStatus.PENDING
    assert team.skills.get("run-tests").body == "v1 body"  # nothing changes until approved
    assert "pending review: run-tests v2" in ok(cli("skill", "list")).out
    with pytest.raises(Exception, match="not the lead"):
        team.skills.review("run-tests", 2, approve=True, reviewer="alice", reason="")
    assert "alice revised skill run-tests: v2 waits for a review" in team.digest(0, "boss").text
    lead = ToolContext(workspace=project, member="boss", team=team)
    said = skill_review(lead, SkillReviewArgs(name="run-tests", version=2, approve=True))
    assert "v2 approved" in said and team.skills.get("run-tests").body == "v2 body"
    team.skills.revise("run-tests", "v3 body", "task #3", "alice")
    one_error(cli("skill", "reject", "run-tests", "3"), "--reason")
    assert "rejected" in ok(cli("skill", "reject", "run-tests", "3", "--reason", "no evidence")).out
    assert js(cli("skill", "show", "run-tests", "--json"))["version"] == 2
    store.close()


def test_a_huge_file_skill_is_cut_when_loaded(team: Team, repo: Path, home: Path) -> None:
    limit = LearningConfig().skill_chars
    skill_file(repo, "big", "---\ndescription: big\n---\n" + "y" * (limit + 50) + "\n")
    loaded = team.skills.load("big", "alice", None)
    assert loaded.body.startswith("y" * limit) and "accord cut this skill here" in loaded.body
    assert loaded.use.origin == SkillOrigin.PROJECT


def test_a_definitions_skills_are_an_allowlist() -> None:
    d = parse_definition("---\nname: tester\nskills: [run-tests, deploy]\n---\nhi", "t.md")
    assert d.skills == ("run-tests", "deploy") and d.unsupported() is None
    assert parse_definition("---\nname: any\n---\nhi", "a.md").skills is None
    with pytest.raises(ConfigError, match="not a valid skill name"):
        parse_definition("---\nname: x\nskills: [Bad Name]\n---\n", "x.md")


def test_a_member_sees_the_list_loads_a_skill_and_the_use_is_recorded(
    team: Team, repo: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team.skills.write("run-tests", "How to run the tests", "1. run `make test`", "lead")
    skill_file(repo, "deploy", "---\ndescription: How to deploy\n---\nnever on Fridays\n")
    skill_file(repo, "broken", "---\n: : :\n---\n")
    task = team.board.add(NewTask("fix the bug"))
    model = ScriptedModel(
        [
            reply("", call("use_skill", {"name": "run-tests"})),
            reply("", call("use_skill", {"name": "nope"})),
            reply("", call("task_complete", {"task_id": task.id, "result": "fixed"})),
            reply("done"),
        ]
    )
    make_agent(team, model, repo).run(once=True)
    system = model.requests[0].system
    assert "# Skills you can load" in system
    assert "- run-tests: How to run the tests" in system and "- deploy: How to deploy" in system
    assert "make test" not in system  # the body comes only with use_skill
    loaded = str(model.requests[1].messages[-1])
    assert "# Skill run-tests (v1, store)" in loaded and "1. run `make test`" in loaded
    refused = str(model.requests[2].messages[-1])
    assert "no skill named 'nope'" in refused
    [use] = team.store.skill_uses("main")
    assert (use.skill, use.version, use.member, use.task_id, use.attempt, use.outcome) == (
        "run-tests",
        1,
        "alice",
        task.id,
        1,
        "succeeded",
    )
    assert "warning: " in capsys.readouterr().err  # the broken file, in the member's log
    model.assert_complete()


def test_a_member_may_load_only_the_skills_its_definition_allows(
    team: Team, repo: Path, home: Path
) -> None:
    team.skills.write("run-tests", "How to run the tests", "body", "lead")
    team.skills.write("deploy", "How to deploy", "body", "lead")
    definition = parse_definition("---\nname: tester\nskills: [run-tests]\n---\nTest.", "t.md")
    model = ScriptedModel([reply("", call("use_skill", {"name": "deploy"})), reply("ok")])
    team.mailbox.send("lead", "alice", "go")
    agent = make_agent(team, model, repo, definition=definition)
    agent.ctx.skills = definition.skills
    agent.run(once=True)
    assert "- run-tests" in model.requests[0].system and "deploy" not in model.requests[0].system
    said = str(model.requests[1].messages[-1])
    assert "not one your agent definition allows" in said
    assert team.store.skill_uses("main") == []


def test_stats_show_each_versions_outcomes(cli: Cli, project: Path, skills: dict[str, str]) -> None:
    ok(cli("member", "add", "bob"))
    task = js(cli("task", "add", "flaky thing", "--json"))
    store = open_store(db(project))
    team = Team.open(store, "main", Config(), project)
    first = team.board.claim("alice")
    assert first is not None
    assert team.skills.load("run-tests", "alice", task["id"]).skill.version == 1
    team.board.fail(task["id"], "alice", first.fencing_token, "tests still fail", retry=True)
    team.skills.revise("run-tests", "1. make test", f"task #{task['id']} failed with v1", "alice")
    second = team.board.claim("bob")
    assert second is not None
    assert team.skills.load("run-tests", "bob", task["id"]).skill.version == 2
    team.board.complete(task["id"], "bob", second.fencing_token, "done")
    store.close()
    stats = js(cli("skill", "stats", "run-tests", "--json"))
    assert [
        (s["version"], s["uses"], s["succeeded"], s["failed"], s["success_rate"]) for s in stats
    ] == [
        (1, 1, 0, 1, 0.0),
        (2, 1, 1, 0, 1.0),
    ]
    table = ok(cli("skill", "stats")).out
    assert "0%" in table and "100%" in table


def test_the_list_in_a_members_context_is_capped(team: Team, home: Path) -> None:
    for i in range(200):
        team.skills.write(f"skill-{i:03}", "a procedure " + "word " * 20, "body", "lead")
    listed = team.skills.listing()
    assert len(listed) < 4200 and listed.startswith("- skill-000: a procedure")
    assert listed.splitlines()[-1].startswith("- ... and ") and "more" in listed.splitlines()[-1]


def test_a_revision_takes_effect_for_the_next_task(team: Team, repo: Path, home: Path) -> None:
    skill_file(repo, "deploy", "---\ndescription: How to deploy\n---\nfrom the file\n")
    task = team.board.add(NewTask("ship it"))
    claim = team.board.claim("alice")
    assert claim is not None and claim.task.id == task.id
    assert team.skills.load("deploy", "alice", task.id).body == "from the file"
    team.skills.revise("deploy", "from the team", "task #9 shipped on a Friday", "lead")
    again = team.skills.load("deploy", "alice", task.id)  # the same attempt: the same text
    assert (again.body, again.pinned, again.use.origin) == (
        "from the file",
        True,
        SkillOrigin.PROJECT,
    )
    assert team.skills.load("deploy", "lead", None).body == "from the team"


def test_the_tools_write_and_revise_as_the_member(team: Team, repo: Path, home: Path) -> None:
    from accord.agent.tools import Toolbox, all_tools
    from accord.llm.base import ToolCall

    tools = Toolbox(all_tools())
    ctx = ToolContext(workspace=repo, member="alice", team=team)

    def run(tool: str, **args: object) -> tuple[bool, str]:
        done = tools.execute(ctx, ToolCall("c1", tool, dict(args), "{}"))
        return done.is_error, done.content

    assert run("write_skill", name="run-tests", description="How", body="1. pytest") == (
        False,
        "wrote skill run-tests (v1); teammates see it from their next task",
    )
    failed, said = run("revise_skill", name="run-tests", body="1. make test", reason="")
    assert failed and "reason" in said
    failed, said = run("revise_skill", name="run-tests", body="1. make test", reason="task #2")
    assert not failed and "v2 takes effect from the next task" in said
    failed, said = run("revise_skill", name="run-tests", body="1. pytest", reason="task #3")
    assert failed and "v1" in said and "revert" in said
    failed, said = run("write_skill", name="Bad", description="d", body="b")
    assert failed and "not a valid skill name" in said
    assert [v.author for v in team.store.skill_versions("main", "run-tests")] == ["alice", "alice"]
