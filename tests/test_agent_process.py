"""Agent processes for real: `accord agent` killed mid tool call and restarted, and agents
talking to the fake Anthropic and OpenAI servers through the real SDKs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from accord.store import open_store
from accord.testing import FakeAnthropic, FakeOpenAI
from accord.testing.cli import accord_out as accord
from accord.testing.wait import until as _until
from accord.types import TaskStatus, TranscriptKind
from conftest import sleepers as sleepers_marked

until = partial(_until, timeout=30.0)

MARK = "4242.5"  # a sleep length no other process on the machine uses
sleepers = partial(sleepers_marked, MARK)


@pytest.fixture
def team_dir(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path / "proj"
    root.mkdir()
    accord(root, "init", "--team", "main")
    accord(root, "member", "add", "lead", "--role", "lead")
    added = json.loads(accord(root, "member", "add", "alice", "--json"))
    env = {"ACCORD_MEMBER": "alice", "ACCORD_TOKEN": added["token"], "ACCORD_TEAM": "main"}
    yield root, env
    for pid in sleepers():
        os.kill(pid, signal.SIGKILL)


def script(path: Path, steps: list[dict[str, object]]) -> str:
    path.write_text(json.dumps(steps))
    return f"scripted:{path}"


def test_killed_mid_tool_call_then_restarted_loses_nothing(
    team_dir: tuple[Path, dict[str, str]],
) -> None:
    root, env = team_dir
    accord(root, "task", "add", "long task")
    accord(root, "msg", "send", "--from", "lead", "--to", "alice", "first note")
    first = script(
        root / "s1.json",
        [
            {
                "tool_calls": [
                    {"name": "write_file", "arguments": {"path": "a.txt", "content": "1"}}
                ]
            },
            {
                "tool_calls": [
                    {"name": "bash", "arguments": {"command": f"touch started; sleep {MARK}"}}
                ]
            },
        ],
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord", "agent", "--member", "alice", "--model", first],
        cwd=root,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        until(lambda: (root / "started").exists())
    finally:
        proc.kill()
        proc.wait()
    # Mail sent while the member is down must arrive after the restart, exactly once.
    accord(root, "msg", "send", "--from", "lead", "--to", "alice", "second note")
    with open_store(str(root / ".accord" / "accord.db")) as store:
        task = store.get_task("main", 1)
        assert task.status == TaskStatus.IN_PROGRESS and task.owner == "alice"
        last = store.read_transcript("main", "alice")[-1]
        assert last.body["tool_calls"][0]["name"] == "bash"

    second = script(
        root / "s2.json",
        [
            {
                "tool_calls": [
                    {"name": "task_complete", "arguments": {"task_id": 1, "result": "ok"}}
                ]
            },
            {"text": "done"},
        ],
    )
    accord(root, "agent", "--member", "alice", "--model", second, "--once", env=env)

    with open_store(str(root / ".accord" / "accord.db")) as store:
        entries = store.read_transcript("main", "alice")
        texts = [json.dumps(e.body) for e in entries if e.kind == TranscriptKind.MESSAGE]
        assert sum("first note" in t for t in texts) == 1
        assert sum("second note" in t for t in texts) == 1
        results = [
            r
            for e in entries
            if e.kind == TranscriptKind.MESSAGE
            for r in e.body.get("tool_results", [])
        ]
        bash = [r for r in results if r["name"] == "bash"]
        assert len(bash) == 1 and bash[0]["error"] and "interrupted" in bash[0]["content"]
        assert store.get_task("main", 1).status == TaskStatus.COMPLETED
        assert not store.list_messages("main", member="alice", unacked=True)
        assert store.get_member("main", "alice").status == "stopped"
    assert (root / "a.txt").read_text() == "1"


def test_agent_works_a_task_through_the_openai_sdk(
    team_dir: tuple[Path, dict[str, str]],
) -> None:
    root, env = team_dir
    accord(root, "task", "add", "say hello")
    with FakeOpenAI() as server:
        server.call_tools(
            ("write_file", {"path": "hello.txt", "content": "hello"}),
            ("task_list", {}),
        )
        server.call_tools(("task_complete", {"task_id": 1, "result": "wrote hello.txt"}))
        server.say("done", usage={"prompt_tokens": 10, "completion_tokens": 2})
        accord(
            root,
            "agent",
            "--member",
            "alice",
            "--model",
            f"openai:local-model@{server.base_url}",
            "--once",
            env=env,
        )
        server.assert_complete()
        second = server.requests[1].body["messages"]
        tool_messages = [m for m in second if m["role"] == "tool"]
        assert len(tool_messages) == 2  # parallel calls each got their result
    assert (root / "hello.txt").read_text() == "hello"
    out = json.loads(accord(root, "cost", "--json"))
    assert out["total"]["calls"] == 3 and out["total"]["unpriced_calls"] == 3


def test_agent_works_a_task_through_the_anthropic_sdk(
    team_dir: tuple[Path, dict[str, str]],
) -> None:
    root, env = team_dir
    accord(root, "task", "add", "say hello")
    with FakeAnthropic() as server:
        server.call_tools(("task_complete", {"task_id": 1, "result": "said hello"}))
        server.say(
            "done",
            usage={"input_tokens": 1000, "output_tokens": 10, "cache_read_input_tokens": 500},
        )
        accord(
            root,
            "agent",
            "--member",
            "alice",
            "--model",
            "anthropic:claude-haiku-4-5",
            "--once",
            env={**env, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.base_url},
        )
        server.assert_complete()
        assert server.requests[0].api_key == "test-key"
    out = json.loads(accord(root, "cost", "--by", "model", "--json"))
    assert out["total"]["unpriced_calls"] == 0 and out["total"]["cost_usd"] > 0
    assert out["total"]["cache_read_tokens"] >= 500
