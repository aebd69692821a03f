"""What a tool command or hook can reach, with real team runs: no secrets, no survivors.

A member's bash tool reads its own member's ``/proc/PID/environ`` and finds no
key, no token and no store password there, while the member still talks to its
model with the key the supervisor handed it through a pipe. And ``kill -9`` of
the supervisor leaves nothing behind: not a grandchild a bash command forked
into the background, not a hook still running in a member.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from accord.store import open_store
from accord.testing import FakeAnthropic
from accord.testing.cli import accord as accord_process
from accord.testing.cli import calls, clean_env, rules
from accord.testing.wait import alive, until
from conftest import run_project


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return run_project(
        tmp_path,
        '[run]\nmax_restarts = 0\ngrace = 5\n\n[secrets]\nvariables = ["MY_DEPLOY_HOOK"]\n',
    )


PLANTED = {
    "ANTHROPIC_API_KEY": "sk-ant-planted-key",
    "OPENAI_API_KEY": "sk-openai-planted-key",
    "GH_TOKEN": "ghp-planted-token",
    "HF_TOKEN": "hf-planted-token",
    "AWS_SECRET_ACCESS_KEY": "aws-planted-secret",
    "MY_DEPLOY_HOOK": "declared-in-accord-toml",
}


def running(mark: str) -> list[int]:
    """Live processes whose command line holds ``mark`` (``ps`` by hand)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    pids = [int(line.split(None, 1)[0]) for line in out.splitlines() if mark in line]
    return [p for p in pids if p != os.getpid() and alive(p)]


def lead_script(root: Path) -> str:
    return rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "Do task 1."}),
                    ("task_create", {"title": "look around", "assignee": "alice"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "looked"}))},
        ],
        "Waiting.",
    )


# The sandbox hides other processes from a command (test_sandbox.py); these tests look
# behind it, running commands unsandboxed (no bubblewrap, not required) so they can read
# the member's own environment: even there no secret is to be found.
UNWALLED = {"ACCORD_BWRAP": "/nonexistent/bwrap"}


def test_a_member_and_its_commands_hold_no_key_token_or_password(root: Path) -> None:
    with (root / "accord.toml").open("a") as f:
        f.write("\n[sandbox]\nrequired = false\n")
    look = (
        "echo $PPID > member.pid; tr '\\0' '\\n' < /proc/$PPID/environ > member.env; "
        "env > command.env; supervisor=$(ps -o ppid= -p $PPID | tr -d ' '); "
        "echo $supervisor > supervisor.pid; "
        "tr '\\0' '\\n' < /proc/$supervisor/environ > supervisor.env"
    )
    with FakeAnthropic() as server:
        base_url = server.base_url
        server.call_tools(("bash", {"command": look}))
        server.call_tools(("task_complete", {"task_id": 1, "result": "looked"}))
        for _ in range(30):
            server.say("Done.")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "accord",
                "run",
                "look",
                "--model",
                lead_script(root),
                "--teammate-model",
                "anthropic:claude-haiku-4-5",
                "--display",
                "plain",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(**PLANTED, **UNWALLED, ANTHROPIC_BASE_URL=server.base_url),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        # The member reached its model with the key it was handed through the pipe.
        assert server.requests and server.requests[0].api_key == PLANTED["ANTHROPIC_API_KEY"]
    with open_store(str(root / ".accord" / "accord.db")) as s:
        member = s.get_member("main", "alice")
    # The bash tool's parent is the member process itself.
    assert int((root / "member.pid").read_text()) == member.pid
    member_env = (root / "member.env").read_text()
    command_env = (root / "command.env").read_text()
    # Not the supervisor's either, though the person's shell gave it every key.
    supervisor_env = (root / "supervisor.env").read_text()
    assert f"ANTHROPIC_BASE_URL={base_url}" in supervisor_env  # it is `accord run`
    assert "ACCORD_MEMBER=alice" in member_env and "ACCORD_TEAM=main" in command_env
    for text in (member_env, command_env, supervisor_env):
        for name, value in PLANTED.items():
            assert value not in text, name
        assert "ACCORD_TOKEN" not in text
        assert "acc_" not in text  # no member token under any name


def test_kill_9_of_the_supervisor_leaves_no_tool_grandchild_and_no_hook(root: Path) -> None:
    tool_mark, hook_mark = "4243.71", "4243.72"
    with (root / "accord.toml").open("a") as f:
        f.write(f'\n[hooks]\nTaskCompleted = "touch hooked; sleep {hook_mark}"\n')
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "Do your task."}),
                    ("spawn_teammate", {"name": "bob", "instructions": "Do your task."}),
                    ("task_create", {"title": "run a command", "assignee": "alice"}),
                    ("task_create", {"title": "finish a task", "assignee": "bob"}),
                ),
            }
        ],
        "Waiting.",
    )
    mate = rules(
        root / "mate.json",
        [
            # bash forks `sleep` (a grandchild of the member) and waits for it.
            {
                "if": "Your task #1",
                "then": calls(("bash", {"command": f"touch forked; sleep {tool_mark}; echo"})),
            },
            # bob's completion runs the TaskCompleted hook inside bob's process.
            {
                "if": "Your task #2",
                "then": calls(("task_complete", {"task_id": 2, "result": "done"})),
            },
        ],
    )
    sup = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "accord",
            "run",
            "two things",
            "--model",
            lead,
            "--teammate-model",
            mate,
            "--display",
            "plain",
        ],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    try:
        until(lambda: (root / "forked").exists() and bool(running(tool_mark)))
        until(lambda: (root / "hooked").exists() and bool(running(hook_mark)))
        sup.kill()
        sup.wait()
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
    until(lambda: not running(tool_mark) and not running(hook_mark), timeout=10)


def test_a_store_password_reaches_neither_the_member_environment_nor_its_commands(
    tmp_path: Path, pg_url: str
) -> None:
    folder = tmp_path / "pgproj"
    folder.mkdir()
    parts = urlsplit(pg_url)
    assert parts.password is None
    secret = "pw-planted-4243"
    url = urlunsplit(
        parts._replace(netloc=f"{parts.username}:{secret}@{parts.hostname}:{parts.port}")
    )
    env = clean_env(ACCORD_STORE=url)
    made = subprocess.run(
        [sys.executable, "-m", "accord", "init", "--team", "main"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    toml = folder / "accord.toml"
    toml.write_text(toml.read_text().replace("required = true", "required = false", 1))
    env.update(UNWALLED)
    look = "tr '\\0' '\\n' < /proc/$PPID/environ > member.env; env > command.env"
    mate = rules(
        folder / "mate.json",
        [
            {"if": "Your task #1", "then": calls(("bash", {"command": look}))},
            {
                "if": "[exit code 0]",
                "then": calls(("task_complete", {"task_id": 1, "result": "ok"})),
            },
        ],
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accord",
            "run",
            "look",
            "--model",
            lead_script(folder),
            "--teammate-model",
            mate,
            "--display",
            "plain",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    member_env = (folder / "member.env").read_text()
    command_env = (folder / "command.env").read_text()
    stripped = url.replace(f":{secret}@", "@")
    assert f"ACCORD_STORE={stripped}" in member_env
    for text in (member_env, command_env):
        assert secret not in text


def test_accord_work_commands_get_no_keys(root: Path) -> None:
    env = clean_env(**PLANTED)

    accord = partial(accord_process, cwd=root, env=env)

    assert accord("init", "--team", "main").returncode == 0
    assert accord("task", "add", "show me your environment").returncode == 0
    done = accord("work", "--command", "env > command.env")
    assert done.returncode == 0, done.stdout + done.stderr
    seen = (root / "command.env").read_text()
    assert "ACCORD_TASK_TITLE=show me your environment" in seen
    for name, value in PLANTED.items():
        assert value not in seen, name
