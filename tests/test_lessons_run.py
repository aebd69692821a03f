"""The failure loop in a real run: members are processes, models are a local fake
OpenAI-compatible server reached through the real SDK, the check is a real
TaskCompleted hook.

Attempt 1 (alice) is refused by the hook; alice writes the lesson and runs out of
turns; the lead starts bob; attempt 2 (bob) receives the lesson in its very first
request to the server, and passes.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from accord.store import open_store
from accord.testing import FakeOpenAI
from accord.testing.cli import accord as _accord
from accord.testing.cli import clean_env
from accord.types import LessonCause, TaskStatus
from conftest import db, run_project

accord = partial(_accord, timeout=180)

GATE = (
    "#!/bin/sh\n[ -f empty_ok.txt ] && exit 0\n"
    "echo 'FAILED test_parse_empty: the parser crashes on empty input' >&2\nexit 2\n"
)
LESSON = (
    "Lesson: I completed without handling empty input and test_parse_empty failed. "
    "Handle empty input first: write empty_ok.txt before completing."
)


def test_attempt_two_by_another_member_starts_with_attempt_ones_lesson(tmp_path: Path) -> None:
    root = run_project(
        tmp_path,
        '[run]\nmax_restarts = 0\ngrace = 5\n[hooks]\nTaskCompleted = "./gate.sh"\n',
    )
    (root / "gate.sh").write_text(GATE)
    (root / "gate.sh").chmod(0o755)
    agents = root / ".accord" / "agents"
    agents.mkdir()
    (agents / "brief.md").write_text("---\nname: brief\nmax_turns: 2\n---\nYou work briefly.\n")
    with FakeOpenAI() as server:
        lead = server.on(system="You are lead,")
        lead.on(last="# First wake", once=True).call_tools(
            ("task_create", {"title": "parse dates"}),
            (
                "spawn_teammate",
                {"name": "alice", "instructions": "Take the task.", "agent": "brief"},
            ),
        )
        lead.on(last="alice stopped", once=True).call_tools(
            ("spawn_teammate", {"name": "bob", "instructions": "Take the task."})
        )
        lead.on(last="# Board\n1 completed").call_tools(("finish", {"summary": "parsed"}))
        alice = server.on(system="You are alice,")
        alice.on(last="# Your task #1", once=True).call_tools(
            ("task_complete", {"task_id": 1, "result": "parser written"})
        )
        alice.on(last="`Lesson:`", once=True).say(LESSON)
        bob = server.on(system="You are bob,")
        bob.on(last="Lessons from attempts that did not succeed", once=True).call_tools(
            ("write_file", {"path": "empty_ok.txt", "content": "ok\n"})
        )
        bob.on(last="created empty_ok.txt", once=True).call_tools(
            ("task_complete", {"task_id": 1, "result": "handles empty input"})
        )
        server.otherwise().say("Waiting.")
        model = f"openai:qwen3@{server.base_url}"
        done = accord(
            root, "run", "parse dates", "--model", model, "--display", "plain", env=clean_env()
        )
        server.assert_complete()
        bobs = [r.body for r in server.requests if "You are bob," in server.system_text(r.body)]
    assert done.returncode == 0, done.stdout + done.stderr
    # bob's very first request to the server carries alice's lesson
    first = str(bobs[0]["messages"])
    assert "Lessons from attempts that did not succeed" in first
    assert "write empty_ok.txt before completing" in first
    with open_store(db(root)) as store:
        [task] = store.list_tasks("main")
        assert task.status == TaskStatus.COMPLETED and task.owner == "bob"
        attempts = [(a.attempt, a.member, a.outcome) for a in store.task_attempts("main", 1)]
        assert attempts == [(1, "alice", "retried"), (2, "bob", "completed")]
        [lesson] = store.lessons("main", task_id=1)
        assert (lesson.attempt, lesson.cause, lesson.author) == (1, LessonCause.REFUSED, "alice")
        assert "test_parse_empty" in lesson.evidence  # the hook's own output
        assert lesson.confirmed_at is not None  # bob's success confirmed it
