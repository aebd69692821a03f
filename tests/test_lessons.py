"""Lessons from failure in the agent loop: a refused or failed attempt teaches the next.

The scripted model plays the members; the TaskCompleted hook is a real shell script
(a failing check), the store is real SQLite, and the clock of the lessons' fading is a
fake one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from accord.agent.definition import AgentDefinition
from accord.config import parse_config
from accord.llm.base import ModelError, Usage
from accord.llm.scripted import ScriptedModel, call, reply
from accord.memory.lessons import Lessons
from accord.store import Store, open_store
from accord.team import Team
from accord.testing import FakeClock
from accord.testing.cli import js, ok
from accord.types import LessonCause, NewLesson, NewTask, TaskStatus
from conftest import Cli, make_agent, refusals, store_path

GATE = (
    "#!/bin/sh\n[ -f empty_ok.txt ] && exit 0\n"
    "echo 'FAILED test_parse_empty: the parser crashes on empty input' >&2\nexit 2\n"
)


def _team(make_store: Callable[..., Store], repo: Path, toml: str = "") -> tuple[Team, str]:
    (repo / "gate.sh").write_text(GATE)
    (repo / "gate.sh").chmod(0o755)
    text = '[hooks]\nTaskCompleted = "./gate.sh"\n' + toml
    store = make_store()
    store.create_team("main")
    for name in ("alice", "bob"):
        store.add_member("main", name, token_hash="x")
    return Team.open(store, "main", parse_config(text), repo), text


def _first_request_text(model: ScriptedModel) -> str:
    return model.requests[0].messages[0].text


def test_a_refused_attempt_teaches_the_next_member(
    make_store: Callable[..., Store], repo: Path
) -> None:
    services, toml = _team(make_store, repo)
    config = parse_config(toml)
    services.board.add(NewTask("parse dates", max_attempts=3))
    # alice: completes without the fix, is refused, writes the lesson, runs out of turns
    alice = ScriptedModel(
        [
            reply("", call("task_complete", {"task_id": 1, "result": "parser written"})),
            reply(
                "Lesson: I wrote the parser without handling empty input; the gate's "
                "test_parse_empty failed. Handle empty input and create empty_ok.txt."
            ),
        ]
    )
    short = AgentDefinition(name="short", prompt="You work briefly.", max_turns=2)
    assert (
        make_agent(services, alice, repo, config=config, definition=short).run(once=True).reason
        == "max_turns"
    )
    asked = alice.requests[1].messages[-1].text
    assert "Lesson:" in asked and "what to do" in asked
    lessons = services.lessons.listed(task_id=1)
    assert [(x.attempt, x.slot, x.cause, x.author) for x in lessons] == [
        (1, "refused#1", LessonCause.REFUSED, "alice"),
    ]
    assert "test_parse_empty" in lessons[0].evidence  # the hook's output
    assert lessons[0].memory.type.value == "insight" and lessons[0].memory.task_id == 1
    assert services.board.get(1).status == TaskStatus.PENDING
    # bob: the second attempt starts with the lessons, and passes
    bob = ScriptedModel(
        [
            reply("", call("write_file", {"path": "empty_ok.txt", "content": "ok"})),
            reply("", call("task_complete", {"task_id": 1, "result": "handles empty input"})),
            reply("done"),
        ]
    )
    make_agent(services, bob, repo, config=config, member="bob").run(once=True)
    first = _first_request_text(bob)
    assert "Lessons from attempts that did not succeed" in first
    assert "Handle empty input and create empty_ok.txt" in first
    assert services.board.get(1).status == TaskStatus.COMPLETED
    # the attempt that was shown them succeeded: they are confirmed
    assert all(x.confirmed_at is not None for x in services.lessons.listed(task_id=1))
    attempts = [(a.member, a.outcome) for a in services.board.attempts(1)]
    assert attempts == [("alice", "retried"), ("bob", "completed")]


def test_lessons_of_similar_tasks_are_recalled_and_repeats_reinforce(
    make_store: Callable[..., Store], repo: Path
) -> None:
    services, toml = _team(make_store, repo)
    config = parse_config(toml)
    said = "Lesson: the log parser crashes on empty input; handle empty lines first."
    for title in ("parse dates from the log", "parse times from the log"):
        task = services.board.add(NewTask(title, max_attempts=1))
        model = ScriptedModel(
            [reply("", call("task_fail", {"task_id": task.id, "reason": "crash"})), reply(said)]
        )
        make_agent(services, model, repo, config=config).run(once=True)
    chart = services.board.add(NewTask("draw a chart"))
    lessons = services.lessons.listed()
    assert len(lessons) == 2 and lessons[0].memory.id == lessons[1].memory.id
    assert lessons[1].memory.count == 2  # seen again: reinforced, not duplicated
    opening = services.lessons.briefing(services.board.add(NewTask("parse the log")), 1)
    assert "crashes on empty input" in opening and "noted 2 times" in opening
    assert services.lessons.briefing(chart, 1) == ""  # nothing alike


def test_a_dead_members_attempt_is_settled_by_reflection_or_plainly(
    make_store: Callable[..., Store], repo: Path
) -> None:
    services, toml = _team(make_store, repo)
    config = parse_config(toml)
    services.board.add(NewTask("migrate the schema", max_attempts=4))
    claim = services.board.claim("alice")
    assert claim is not None
    services.board.fail(1, "alice", claim.fencing_token, "killed", retry=True)  # no lesson
    # bob's own model reflects on alice's attempt before bob starts
    bob = ScriptedModel(
        [
            reply("Lesson: alice was killed mid-migration; run it in a transaction."),
            reply("", call("write_file", {"path": "empty_ok.txt", "content": "ok"})),
            reply("", call("task_complete", {"task_id": 1, "result": "migrated"})),
            reply("done"),
        ]
    )
    make_agent(services, bob, repo, config=config, member="bob").run(once=True)
    [reflected] = services.lessons.listed(task_id=1)
    assert reflected.attempt == 1 and reflected.author == "reflection by bob"
    assert "transaction" in reflected.memory.text
    assert "killed" in bob.requests[0].messages[0].text  # the evidence reached it
    assert "run it in a transaction" in bob.requests[1].messages[0].text
    assert reflected.memory.id in [
        x.memory.id for x in services.lessons.listed() if x.confirmed_at is not None
    ]
    usage = services.store.usage_totals("main", by="member")
    assert usage  # the reflection call has its usage row like any other
    # a reflection that fails falls back to the plain lesson and never blocks the retry
    (repo / "empty_ok.txt").unlink()
    services.board.add(NewTask("seed the tables", max_attempts=4))
    claim = services.board.claim("alice")
    assert claim is not None
    services.board.fail(2, "alice", claim.fencing_token, "segfault in seed.py", retry=True)
    failing = ScriptedModel(
        [
            ModelError("the reflection model is down"),
            reply("", call("write_file", {"path": "empty_ok.txt", "content": "ok"})),
            reply("", call("task_complete", {"task_id": 2, "result": "seeded"})),
            reply("done"),
        ]
    )
    make_agent(services, failing, repo, config=config, member="bob").run(once=True)
    [plain] = services.lessons.listed(task_id=2)
    assert plain.author == "accord" and "segfault in seed.py" in plain.memory.text
    assert services.board.get(2).status == TaskStatus.COMPLETED


def test_with_reflection_off_the_lesson_is_plain(
    make_store: Callable[..., Store], repo: Path
) -> None:
    services, toml = _team(make_store, repo, '[learning]\nreflection_model = "none"\n')
    config = parse_config(toml)
    services.board.add(NewTask("t", max_attempts=3))
    claim = services.board.claim("alice")
    assert claim is not None
    services.board.fail(1, "alice", claim.fencing_token, "the build broke", retry=True)
    bob = ScriptedModel([reply("", call("task_fail", {"task_id": 1, "reason": "x"})), reply("")])
    make_agent(services, bob, repo, config=config, member="bob").run(once=True)
    first, second = services.lessons.listed(task_id=1)
    assert first.author == "accord" and "the build broke" in first.memory.text
    assert second.author == "accord"  # its reply had no text: the plain lesson
    assert len(bob.requests) == 2  # no reflection call was made


def test_learning_off_records_and_shows_nothing(
    make_store: Callable[..., Store], repo: Path
) -> None:
    services, toml = _team(make_store, repo, "[learning]\nenabled = false\n")
    config = parse_config(toml)
    services.board.add(NewTask("t", max_attempts=3))
    model = ScriptedModel(
        [reply("", call("task_fail", {"task_id": 1, "reason": "no"})), reply("bye")]
    )
    make_agent(services, model, repo, config=config).run(once=True)
    assert services.lessons.listed() == []
    assert "Lesson:" not in model.requests[1].messages[-1].text


def test_unconfirmed_lessons_fade_and_confirmed_ones_stay(
    make_store: Callable[..., Store], repo: Path
) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    store.create_team("main")
    store.add_member("main", "alice", token_hash="x")
    services = Team.open(store, "main", parse_config(""), repo)
    lessons = Lessons(store, "main", services.memory, services.config.learning, clock=clock)
    for title, text in (
        ("write csv cells", "csv cells need quoting of commas"),
        ("write json dates", "json dates need iso strings"),
    ):
        task = services.board.add(NewTask(title))
        lessons.record(NewLesson(task.id, 1, "failed", LessonCause.FAILED, text, "alice", "e"))
    both = lessons.briefing(services.board.add(NewTask("write csv cells and json dates")), 1)
    assert "quoting of commas" in both and "iso strings" in both
    # the csv lesson helped the next csv task: its success confirms it
    csv = services.board.add(NewTask("csv cells for the export"))
    assert "iso strings" not in lessons.briefing(csv, 1)
    claim = services.board.claim("alice", task_id=csv.id)
    assert claim is not None and claim.task.attempts == 1
    services.complete(csv.id, "alice", claim.fencing_token, "ok")
    clock.advance(30 * 86_400)  # a month later: over two half-lives
    later = lessons.briefing(services.board.add(NewTask("csv cells and json dates")), 1)
    assert "quoting of commas" in later  # confirmed: it does not fade
    assert "iso strings" not in later  # unconfirmed: faded below the floor
    strengths = {x.memory.text: round(lessons.strength(x), 2) for x in lessons.listed()}
    assert strengths == {
        "csv cells need quoting of commas": 1.0,
        "json dates need iso strings": 0.23,
    }


def test_cli_lists_lessons_and_refuses_an_unknown_task(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    ok(cli("member", "add", "alice"))
    ok(cli("task", "add", "parse dates", "--max-attempts", "3"))
    assert "no lessons yet" in ok(cli("memory", "lessons")).out
    store = open_store(str(store_path(project)))
    try:
        services = Team.open(store, "main", parse_config(""), project)
        claim = services.board.claim("alice")
        assert claim is not None
        services.lessons.record(
            NewLesson(1, 1, "refused#1", LessonCause.REFUSED, "handle empty input", "alice", "e")
        )
    finally:
        store.close()
    table = ok(cli("memory", "lessons", "--task", "1")).out
    assert "#1" in table and "refused" in table and "handle empty input" in table
    [row] = js(cli("memory", "lessons", "--json"))
    assert (row["attempt"], row["cause"], row["author"], row["confirmed_at"]) == (
        1,
        "refused",
        "alice",
        None,
    )
    assert row["strength"] == 1.0
    refusals(cli, project, [(["memory", "lessons", "--task", "9"], "no task #9")])


def test_a_budget_stop_leaves_the_plain_lesson(
    make_store: Callable[..., Store], repo: Path
) -> None:
    services, toml = _team(make_store, repo, "[budgets]\nmember = { tokens = 100000 }\n")
    config = parse_config(toml)
    services.board.add(NewTask("costly"))
    model = ScriptedModel(
        [reply("", call("list_files", {}), usage=Usage(input_tokens=99_990, output_tokens=20))]
    )
    assert make_agent(services, model, repo, config=config).run(once=True).reason == "budget"
    [lesson] = services.lessons.listed(task_id=1)
    assert (lesson.cause, lesson.author) == (LessonCause.BUDGET, "accord")
    assert "a budget stopped its member" in lesson.memory.text and "tokens" in lesson.evidence
    assert len(model.requests) == 1  # no call was made to write it


def test_a_skill_revised_after_a_failure_is_used_by_the_next_task(
    make_store: Callable[..., Store], repo: Path
) -> None:
    services, toml = _team(make_store, repo)
    config = parse_config(toml)
    folder = repo / ".claude" / "skills" / "parse-logs"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(
        "---\nname: parse-logs\ndescription: How we parse a log file\n---\n"
        "Write the parser, then complete the task.\n"
    )
    services.board.add(NewTask("parse dates", max_attempts=1))
    fixed = "Handle empty input: write empty_ok.txt first, then complete the task."
    alice = ScriptedModel(
        [
            reply("", call("use_skill", {"name": "parse-logs"})),
            reply("", call("task_complete", {"task_id": 1, "result": "parsed"})),
            reply(
                "Lesson: the skill skips empty input, which the check tests.",
                call(
                    "revise_skill",
                    {
                        "name": "parse-logs",
                        "body": fixed,
                        "reason": "task #1 refused: test_parse_empty failed on empty input",
                    },
                ),
            ),
        ]
    )
    short = AgentDefinition(name="short", prompt="You work briefly.", max_turns=3)
    make_agent(services, alice, repo, config=config, definition=short).run(once=True)
    asked = alice.requests[2].messages[-1].text
    assert "followed the skill parse-logs (version 1)" in asked and "revise_skill" in asked
    history = services.skills.history("parse-logs")
    assert [(v.version, v.origin.value, v.reason) for v in history] == [
        (1, "project", "the project file's text"),
        (2, "store", "task #1 refused: test_parse_empty failed on empty input"),
    ]
    services.board.add(NewTask("parse times", max_attempts=1))
    bob = ScriptedModel(
        [
            reply("", call("use_skill", {"name": "parse-logs"})),
            reply("", call("write_file", {"path": "empty_ok.txt", "content": "ok"})),
            reply("", call("task_complete", {"task_id": 2, "result": "parsed, empty handled"})),
            reply("done"),
        ]
    )
    make_agent(services, bob, repo, config=config, member="bob").run(once=True)
    loaded = bob.requests[1].messages[-1].tool_results[0].content
    assert "v2" in loaded and fixed in loaded
    assert services.board.get(2).status == TaskStatus.COMPLETED
    stats = {(s.version, s.succeeded, s.failed) for s in services.skills.stats("parse-logs")}
    assert stats == {(1, 0, 1), (2, 1, 0)}
