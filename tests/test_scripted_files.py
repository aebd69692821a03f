"""A malformed ``scripted:PATH`` model file is bad input: one ``error:`` line that names
the file and what is wrong, exit code 2, and the store unchanged."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import pytest

from accord.errors import UserError
from accord.llm.scripted import RuleModel, ScriptedModel
from accord.testing.cli import accord as accord_process

BAD: dict[str, tuple[str, str]] = {
    "not JSON": ("[{\"text\": ", "is not JSON"),
    "a number": ("42", "must be a JSON list of steps"),
    "a step that is a string": ('["hello"]', "step 1 must be an object"),
    "an unknown step key": ('[{"txt": "hi"}]', "step 1 has unknown key(s) txt"),
    "text that is not a string": ('[{"text": 3}]', 'step 1 has a "text" that is not a string'),
    "tool calls not a list": ('[{"tool_calls": {"name": "bash"}}]', "that is not a list"),
    "a call without a name": ('[{"tool_calls": [{"arguments": {}}]}]', 'with a "name"'),
    "arguments not an object": (
        '[{"tool_calls": [{"name": "bash", "arguments": "ls"}]}]',
        'tool call 1 has "arguments" that are not an object',
    ),
    "a rule without then": ('{"rules": [{"if": "x"}]}', 'rule 1 must be an object with'),
    "a bad otherwise": ('{"rules": [], "otherwise": 5}', "otherwise must be an object"),
    "a bad window": ('{"steps": [], "context_window": "big"}', "context_window must be a positive"),
    "an unknown top key": ('{"step": []}', "unknown key(s) step"),
    "a delay not a number": ('{"steps": [], "delay": "slow"}', "delay must be seconds"),
    "a negative delay": ('{"rules": [], "delay": -1}', "delay must be seconds"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_a_malformed_script_names_the_file_and_what_is_wrong(tmp_path: Path, case: str) -> None:
    text, wrong = BAD[case]
    path = tmp_path / "model.json"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        ScriptedModel.from_file(path)
    message = str(caught.value)
    assert str(path) in message and wrong in message and "\n" not in message


def test_a_missing_script_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"cannot read the model script {tmp_path}/nope.json"):
        ScriptedModel.from_file(tmp_path / "nope.json")


def test_good_scripts_still_load(tmp_path: Path) -> None:
    steps = tmp_path / "steps.json"
    steps.write_text(
        json.dumps({"steps": [{"text": "hi"}, {"error": "down"}], "context_window": 9000})
    )
    model = ScriptedModel.from_file(steps)
    assert model.remaining == 2 and model.context_window == 9000
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"if": "a", "then": {"text": "b"}, "once": True}]}))
    assert isinstance(ScriptedModel.from_file(rules), RuleModel)


def test_a_scripts_delay_is_how_long_each_call_takes(tmp_path: Path) -> None:
    from accord.llm.base import ChatMessage, ModelRequest

    rules = tmp_path / "slow.json"
    rules.write_text(json.dumps({"rules": [], "otherwise": {"text": "ok"}, "delay": 0.2}))
    model = ScriptedModel.from_file(rules)
    assert model.delay == 0.2
    began = time.monotonic()
    reply = model.complete(ModelRequest(system="s", messages=(ChatMessage("user", "hi"),)))
    assert reply.message.text == "ok"
    assert time.monotonic() - began >= 0.2


def test_accord_agent_with_a_malformed_script_exits_2_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()

    accord = partial(accord_process, cwd=root)

    assert accord("init", "--team", "main").returncode == 0
    added = json.loads(accord("member", "add", "alice", "--json").stdout)
    assert accord("task", "add", "something").returncode == 0
    script = root / "bad.json"
    script.write_text('[{"tool_calls": [{"name": "bash", "arguments": "ls"}]}]')
    before = accord("events", "--json").stdout
    assert "task_created" in before
    env = {"ACCORD_MEMBER": "alice", "ACCORD_TOKEN": added["token"], "ACCORD_TEAM": "main"}
    done = accord("agent", "--member", "alice", "--model", f"scripted:{script}", "--once", env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(script) in lines[0] and "not an object" in lines[0]
    assert accord("events", "--json").stdout == before
