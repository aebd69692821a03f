"""Whole team runs against the fake model servers, through the real SDKs.

`accord run` is a real process; the lead and two teammates are real member
processes that call the same fake server at once, so the server answers by rules
(who is asking, what it was just told), not by a queue. The server is strict like
llama-cpp-python's, so a run that works here works on a local model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from accord.store import open_store
from accord.testing import FakeAnthropic, FakeOpenAI
from accord.types import TaskStatus

Server = FakeOpenAI | FakeAnthropic


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    # No restart hides a member that crashed: it fails the run instead.
    (folder / "accord.toml").write_text("[run]\nmax_restarts = 0\ngrace = 5\n")
    (folder / ".accord").mkdir()
    return folder


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("ACCORD_", "ANTHROPIC_", "OPENAI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def accord(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or clean_env(),
    )


def db(root: Path) -> str:
    return str(root / ".accord" / "accord.db")


def script_team(server: Server) -> None:
    """The lead plans two tasks for two teammates; each writes its file and completes."""
    lead = server.on(system="You are lead,")
    lead.on(last="# First wake", once=True).call_tools(
        ("spawn_teammate", {"name": "alice", "instructions": "Do the task assigned to you."}),
        ("spawn_teammate", {"name": "bob", "instructions": "Do the task assigned to you."}),
        ("task_create", {"title": "write a.txt", "assignee": "alice"}),
        ("task_create", {"title": "write b.txt", "assignee": "bob"}),
    )
    # "2 completed" alone would also match "#2 completed by bob" in the changes.
    lead.on(last="# Board\n2 completed").call_tools(("finish", {"summary": "a.txt and b.txt"}))
    for n, (name, path) in enumerate((("alice", "a.txt"), ("bob", "b.txt")), start=1):
        mate = server.on(system=f"You are {name},")
        mate.on(last=f"# Your task #{n}").call_tools(
            ("write_file", {"path": path, "content": f"{name}\n"})
        )
        mate.on(last=f"created {path}").call_tools(
            ("task_complete", {"task_id": n, "result": f"wrote {path}"})
        )
    server.otherwise().say("Waiting.")


def bodies(server: Server) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if isinstance(r.body, dict)]


def asked_by(server: Server, member: str) -> list[dict[str, Any]]:
    return [b for b in bodies(server) if f"You are {member}," in server.system_text(b)]


def assert_finished(root: Path, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    with open_store(db(root)) as s:
        tasks = s.list_tasks("main")
        assert [t.status for t in tasks] == [TaskStatus.COMPLETED] * 2
        assert [t.attempts for t in tasks] == [1, 1]
        kinds = [e.kind for e in s.read_events("main")]
        assert "member_crashed" not in kinds and "member_failed" not in kinds
    assert (root / "a.txt").read_text() == "alice\n"
    assert (root / "b.txt").read_text() == "bob\n"
    status = json.loads(accord(root, "status", "--json").stdout)
    assert status["run"]["outcome"]["outcome"] == "finished", status["run"]


def cost_by_member(root: Path) -> dict[str, dict[str, Any]]:
    out = accord(root, "cost", "--by", "member", "--json")
    assert out.returncode == 0, out.stderr
    return {row["key"]: row for row in json.loads(out.stdout)["rows"]}


def test_only_model_on_a_strict_local_openai_server_runs_a_team_to_the_end(root: Path) -> None:
    with FakeOpenAI() as server:
        script_team(server)
        model = f"openai:qwen3@{server.base_url}"
        done = accord(root, "run", "write two files", "--model", model, "--display", "plain")
        server.assert_complete()
    assert_finished(root, done)
    sent = bodies(server)
    # All three members talked to the server, through the real openai SDK.
    for member in ("lead", "alice", "bob"):
        assert asked_by(server, member), member
    assert any(b.get("tools") for b in sent)
    assert all(b.get("tool_choice") == "auto" for b in sent if b.get("tools"))
    assert all(m.get("content") is not None for b in sent for m in b["messages"] if "content" in m)
    assert not any(r.api_key not in (None, "not-needed") for r in server.requests)
    spend = cost_by_member(root)
    assert {"lead", "alice", "bob"} <= set(spend)
    for member in ("lead", "alice", "bob"):
        assert spend[member]["calls"] >= 2 and spend[member]["input_tokens"] > 0, spend[member]
