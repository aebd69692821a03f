"""A Claude Code project works unchanged: a real team run obeys the hooks of
.claude/settings.json, their JSON answers included, next to accord.toml's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from accord.store import open_store
from accord.testing.cli import calls, rules
from accord.types import MemberStatus, TaskStatus

CHANGELOG_GATE = (
    "test -f changelog.md || "
    """echo '{"decision": "block", "reason": "write changelog.md first"}'"""
)


def test_a_team_run_obeys_claude_code_settings_hooks(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".claude").mkdir(parents=True)
    (root / "accord.toml").write_text('[run]\ngrace = 5\n\n[hooks]\nTaskCompleted = "true"\n')
    settings = {
        "permissions": {"allow": ["Bash(npm test)"]},
        "hooks": {
            "TaskCompleted": [
                {"matcher": "", "hooks": [{"type": "command", "command": CHANGELOG_GATE}]}
            ],
            # A teammate with nothing to do is told to stop, as Claude Code would.
            "TeammateIdle": [
                {
                    "hooks": [
                        {
                            "type": "command",
                            "command": """echo '{"continue": false, "stopReason": "all done"}'""",
                            "timeout": 30,
                        }
                    ]
                }
            ],
        },
    }
    (root / ".claude" / "settings.json").write_text(json.dumps(settings))
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "Do task 1."}),
                    ("task_create", {"title": "ship it", "assignee": "alice"}),
                ),
            },
            # Finishing stops everyone: wait until alice has answered the hook's stop.
            {"if": "shutting down", "then": calls(("finish", {"summary": "shipped"}))},
        ],
        "Waiting.",
    )
    mate = rules(
        root / "mate.json",
        [
            {
                "if": "Your task #1",
                "then": calls(("task_complete", {"task_id": 1, "result": "shipped"})),
            },
            {
                "if": "write changelog.md first",
                "then": calls(("write_file", {"path": "changelog.md", "content": "- shipped\n"})),
            },
            {
                "if": "created changelog.md",
                "then": calls(("task_complete", {"task_id": 1, "result": "shipped"})),
            },
        ],
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accord",
            "run",
            "ship it",
            "--model",
            lead,
            "--teammate-model",
            mate,
            "--display",
            "plain",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        env={k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with open_store(str(root / ".accord" / "accord.db")) as s:
        assert s.get_task("main", 1).status == TaskStatus.COMPLETED
        events = s.read_events("main")
        alice = s.get_member("main", "alice")
        to_alice = s.list_messages("main", member="alice")
    runs = [e.payload for e in events if e.kind == "hook_run"]
    completed = [(r["source"], r["blocked"]) for r in runs if r["event"] == "TaskCompleted"]
    # accord.toml's hook first, then Claude Code's: refused once, then allowed.
    assert completed == [
        ("accord.toml", False),
        (".claude/settings.json", True),
        ("accord.toml", False),
        (".claude/settings.json", False),
    ]
    assert (root / "changelog.md").exists()
    stops = [r for r in runs if r["event"] == "TeammateIdle" and r["stop"] == "all done"]
    assert stops and stops[0]["teammate_name"] == "alice"
    # The stop reached alice as a shutdown request, which she approved.
    asked = [m for m in to_alice if m.kind.value == "shutdown_request" and "all done" in m.body]
    assert asked and asked[0].body == "the TeammateIdle hook asks you to stop: all done"
    stopped = [e.payload for e in events if e.kind == "member_stopped"]
    assert any(p["name"] == "alice" and p["reason"] == "shutdown" for p in stopped)
    assert alice.status == MemberStatus.STOPPED
