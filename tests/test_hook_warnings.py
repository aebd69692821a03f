"""A hook that cannot run, set to warn, is still seen by the member.

`team/hooks.py` logs such a hook (exit 126 or 127, or it fails to start) as a
``hook_broken`` event and lets the action through; here the member's model is
told too, in the tool result of ``task_create`` and ``task_complete``, and at the
start of its next session after going idle, so it never believes work was checked
that was not. The hooks are real commands that do not exist.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from accord.agent.launch import build_agent
from accord.agent.tools import TEAM_TOOLS
from accord.agent.tools.base import Toolbox, ToolContext
from accord.config import parse_config
from accord.llm.base import ToolCall, ToolResult
from accord.llm.scripted import ScriptedModel, reply
from accord.store import Store
from accord.team import Team
from accord.testing.cli import accord_out
from accord.types import OutgoingMessage

MISSING = "no-such-command-accord-test"


def services(make_store: Callable[..., Store], repo: Path, toml: str) -> Team:
    store = make_store()
    store.create_team("main")
    store.add_member("main", "alice", token_hash="x")
    return Team.open(store, "main", parse_config(textwrap.dedent(toml)), repo)


def tools(team: Team, repo: Path) -> Callable[..., ToolResult]:
    box = Toolbox(TEAM_TOOLS)
    ctx = ToolContext(workspace=repo, member="alice", team=team)

    def use(name: str, **arguments: Any) -> ToolResult:
        return box.execute(ctx, ToolCall("c1", name, arguments))

    return use


def warning(event: str) -> str:
    return f"warning: the {event} hook `{MISSING}` could not run (exit 127: program not found"


def test_task_create_and_complete_tell_the_model_a_hook_was_skipped(
    make_store: Callable[..., Store], repo: Path
) -> None:
    team = services(
        make_store,
        repo,
        f"""
        [hooks]
        on_broken = "warn"
        TaskCreated = ["{MISSING}", "true"]
        TaskCompleted = "{MISSING}"
        """,
    )
    use = tools(team, repo)
    created = use("task_create", title="write the parser")
    assert not created.is_error, created.content
    head, *_, last = created.content.splitlines()
    assert head == "created task #1"
    assert last.startswith(warning("TaskCreated")) and last.endswith("; it was skipped")
    assert use("task_claim", task_id=1).is_error is False
    done = use("task_complete", task_id=1, result="parsed")
    assert not done.is_error, done.content
    first, second = done.content.splitlines()
    assert first == "task #1 is completed"
    assert second.startswith(warning("TaskCompleted")) and second.endswith("; it was skipped")
    broken = [e for e in team.store.read_events("main") if e.kind == "hook_broken"]
    assert [(e.payload["event"], e.payload["blocked"]) for e in broken] == [
        ("TaskCreated", False),
        ("TaskCompleted", False),
    ]


def test_hooks_that_ran_say_nothing_more(make_store: Callable[..., Store], repo: Path) -> None:
    team = services(make_store, repo, '[hooks]\nTaskCreated = "true"\nTaskCompleted = "true"\n')
    use = tools(team, repo)
    assert "warning" not in use("task_create", title="x").content
    use("task_claim", task_id=1)
    assert use("task_complete", task_id=1, result="y").content == "task #1 is completed"


def test_a_skipped_hook_before_one_that_blocks_is_in_the_refusal(
    make_store: Callable[..., Store], repo: Path
) -> None:
    team = services(
        make_store,
        repo,
        f"""
        [[hooks.TaskCompleted]]
        command = "{MISSING}"
        on_broken = "warn"

        [[hooks.TaskCompleted]]
        command = "echo 'tests fail' >&2; exit 2"
        """,
    )
    use = tools(team, repo)
    use("task_create", title="x")
    use("task_claim", task_id=1)
    refused = use("task_complete", task_id=1, result="y")
    assert refused.is_error
    assert "tests fail" in refused.content and warning("TaskCompleted") in refused.content


def test_an_idle_member_hears_of_a_skipped_teammate_idle_hook_when_it_wakes(
    make_store: Callable[..., Store], repo: Path
) -> None:
    # TeammateIdle warns by default when it cannot run.
    toml = f'[hooks]\nTeammateIdle = "{MISSING}"\n'
    team = services(make_store, repo, toml)
    model = ScriptedModel([reply("noted")])
    agent = build_agent(team, "alice", parse_config(toml), repo, model=model, idle_wait=0.05)
    assert agent.run(once=True).reason == "idle"
    assert model.requests == []  # idle: nothing to tell the model yet
    team.store.send_message("main", OutgoingMessage(sender="person", recipient="alice", body="hi"))
    assert agent.run(once=True).reason == "idle"
    model.assert_complete()
    opening = model.requests[0].messages[0].text
    assert warning("TeammateIdle") in opening and "it was skipped" in opening
    broken = [e for e in team.store.read_events("main") if e.kind == "hook_broken"]
    assert [e.payload["event"] for e in broken] == ["TeammateIdle", "TeammateIdle"]


def test_a_member_process_reads_the_warning_in_its_tool_result(tmp_path: Path) -> None:
    """End to end: `accord agent` as its own process, its model scripted, a TaskCompleted
    hook set to warn that names no program: the completion goes through and the tool
    result saved in the member's transcript (what the model read) carries the warning."""
    root = tmp_path / "proj"
    root.mkdir()

    accord = partial(accord_out, cwd=root)

    accord("init", "--team", "main")
    with (root / "accord.toml").open("a") as f:
        f.write(f'\n[[hooks.TaskCompleted]]\ncommand = "{MISSING}"\non_broken = "warn"\n')
    token = json.loads(accord("member", "add", "alice", "--json"))["token"]
    accord("task", "add", "write the parser")
    script = root / "alice.json"
    complete = {"name": "task_complete", "arguments": {"task_id": 1, "result": "parsed"}}
    script.write_text(json.dumps([{"tool_calls": [complete]}, {"text": "done"}]))
    env = {"ACCORD_MEMBER": "alice", "ACCORD_TOKEN": token, "ACCORD_TEAM": "main"}
    accord("agent", "--member", "alice", "--model", f"scripted:{script}", "--once", env=env)
    assert json.loads(accord("task", "show", "1", "--json"))["status"] == "completed"
    entries = json.loads(accord("member", "transcript", "alice", "--json"))
    (result,) = [
        r["content"]
        for e in entries
        for r in e["body"].get("tool_results", ())
        if r["name"] == "task_complete"
    ]
    assert result.splitlines()[0] == "task #1 is completed"
    assert result.splitlines()[1].startswith(warning("TaskCompleted"))


def test_the_story_of_a_run_tells_of_a_hook_that_could_not_run(
    make_store: Callable[..., Store], repo: Path
) -> None:
    from accord.cli._render import story_line

    team = services(make_store, repo, f'[hooks]\nTaskCreated = "{MISSING}"\n')
    tools(team, repo)("task_create", title="x")
    (broken,) = [e for e in team.store.read_events("main") if e.kind == "hook_broken"]
    line = story_line(broken)
    assert line is not None and line.startswith(
        f"the TaskCreated hook `{MISSING}` could not run (exit 127: program not found"
    )
    assert line.endswith("; it was skipped")
