"""Agent definitions checked for real: `member add --agent` refuses a bad one at once,
and a member started on a Claude Code subagent says which parts of it accord ignores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accord.testing.cli import accord

RESEARCHER = """\
---
name: researcher
tools: Read, WebFetch, TodoWrite, mcp__github__search_issues
permissionMode: acceptEdits
mcpServers: [github]
---
Look things up.
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    assert accord(folder, "init", "--team", "main").returncode == 0
    agents = folder / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "researcher.md").write_text(RESEARCHER)
    (agents / "broken.md").write_text("---\ntools: [Read\n---\nx\n")
    return folder


def members(root: Path) -> list[str]:
    out = accord(root, "member", "list", "--json")
    assert out.returncode == 0, out.stderr
    return [m["name"] for m in json.loads(out.stdout)]


@pytest.mark.parametrize(
    ("agent", "needle"),
    [("nobody", "no agent definition named 'nobody'"), ("broken", "broken.md")],
)
def test_member_add_refuses_an_unknown_or_broken_definition(
    root: Path, agent: str, needle: str
) -> None:
    r = accord(root, "member", "add", "alice", "--agent", agent)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1, r.stderr
    assert needle in r.stderr
    assert members(root) == []


def test_a_member_on_a_claude_subagent_warns_of_what_is_ignored(root: Path) -> None:
    added = accord(root, "member", "add", "alice", "--agent", "researcher", "--json")
    assert added.returncode == 0, added.stderr
    assert added.stderr.startswith("warning: agent definition 'researcher'")
    assert "WebFetch" in added.stderr and "permissionMode" in added.stderr
    token = json.loads(added.stdout)["token"]
    model = root / "model.json"
    model.write_text(json.dumps([{"text": "Nothing to do."}]))
    ran = accord(
        root,
        "agent",
        "--member",
        "alice",
        "--model",
        f"scripted:{model}",
        "--once",
        env={"ACCORD_MEMBER": "alice", "ACCORD_TOKEN": token, "ACCORD_TEAM": "main"},
    )
    assert ran.returncode == 0, ran.stderr
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("warning:")]
    # What accord ignores, in one line; and the MCP server configured nowhere, in another.
    assert len(warnings) == 2 and "TodoWrite" in warnings[1], warnings
    assert "MCP server(s) github not configured" in warnings[0]
    events = json.loads(accord(root, "events", "--json").stdout)
    (event,) = [e for e in events if e["kind"] == "definition_unsupported"]
    assert event["payload"]["member"] == "alice" and "WebFetch" in event["payload"]["warning"]
