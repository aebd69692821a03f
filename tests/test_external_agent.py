"""Any coding agent as a teammate (``runtime: command``): a scripted team in real
processes in which one teammate is a program that works only through accord's MCP
server (``accord.testing.fake_agent``, an MCP client built on the ``mcp`` SDK)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from accord.store import open_store
from accord.team import Team
from accord.testing.cli import accord, calls, rules
from conftest import db

FAKE = f"{sys.executable} -m accord.testing.fake_agent"
DEFINITION = f"""---
name: outsider
runtime: command
command: {FAKE} --mcp-config {{mcp}} --prompt-file {{prompt_file}}
---
You do your tasks through accord's tools, and nothing else.
"""
LEAD = [
    {
        "if": "# First wake",
        "once": True,
        "then": calls(
            ("spawn_teammate", {"name": "ext", "agent": "outsider", "instructions": "Do #1."}),
            (
                "task_create",
                {"title": "make out.txt", "description": "write out.txt", "assignee": "ext"},
            ),
        ),
    },
    {"if": "1 completed", "then": calls(("finish", {"summary": "ext made out.txt"}))},
]


def test_an_external_program_does_its_task_through_mcp_and_through_the_gate(root: Path) -> None:
    agents = root / ".accord" / "agents"
    agents.mkdir(parents=True)
    (agents / "outsider.md").write_text(DEFINITION)
    (root / ".gitignore").write_text(".accord/\n*.json\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=root, check=True)  # worktree mode
    lead = rules(root / "lead.json", LEAD, "Waiting.")
    done = accord(root, "run", "make out.txt", "--model", lead, "--display", "plain", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    with open_store(db(root)) as store:
        team = Team(store, "main")
        (task,) = team.board.list()
        assert (task.status.value, task.owner) == ("completed", "ext")
        said = [e.body.get("text", "") for e in team.log.read_transcript("ext")]
        assert any("# Your task #1: make out.txt" in s for s in said)
        assert any("task #1 completed" in s for s in said)
        ext = {t.key: t for t in team.runs.usage_totals(by="member")}["ext"]
        assert ext.cost_usd == 0.0042 and ext.input_tokens == 1200
        assert any(
            m.sender == "ext" and m.body == "task #1 is done" for m in team.mailbox.history("lead")
        )
    # The work went through the merge gate onto the team's branch.
    shown = subprocess.run(
        ["git", "show", "accord/main:out.txt"], cwd=root, capture_output=True, text=True
    )
    assert shown.returncode == 0 and "task #1" in shown.stdout


def test_a_command_that_is_not_installed_is_refused_when_the_run_starts(root: Path) -> None:
    agents = root / ".accord" / "agents"
    agents.mkdir(parents=True)
    (agents / "outsider.md").write_text(
        "---\nname: outsider\nruntime: command\ncommand: no-such-agent-xyz -p {prompt}\n---\nHi.\n"
    )
    lead = rules(root / "lead.json", LEAD, "Waiting.")
    refused = accord(root, "run", "go", "--model", lead, "--display", "plain")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith("error: agent definition 'outsider'")
    assert "no-such-agent-xyz" in line and "not installed" in line
    with open_store(db(root)) as store:
        assert store.list_teams() == [] or store.get_run("main") is None


def test_the_programs_json_result_gives_the_cost_and_codex_gets_its_overrides() -> None:
    from accord.agent.external import _codex_overrides, _json_result

    claude = '{"type":"result","result":"done","total_cost_usd":0.31,"usage":{"input_tokens":9}}'
    assert _json_result(claude) == {
        "type": "result",
        "result": "done",
        "total_cost_usd": 0.31,
        "usage": {"input_tokens": 9},
    }
    codex_lines = '{"type":"item.completed"}\n{"type":"turn.completed","usage":{"input_tokens":5}}'
    assert _json_result(codex_lines) == {"type": "turn.completed", "usage": {"input_tokens": 5}}
    assert _json_result("plain words") is None
    server = {"command": "/usr/bin/python3", "args": ["-m", "accord"], "env": {"ACCORD_STORE": "x"}}
    assert _codex_overrides(server) == [
        "-c",
        'mcp_servers.accord.command="/usr/bin/python3"',
        "-c",
        'mcp_servers.accord.args=["-m", "accord"]',
        "-c",
        'mcp_servers.accord.env={ACCORD_STORE = "x"}',
    ]
