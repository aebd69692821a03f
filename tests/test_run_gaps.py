"""Gaps a person meets in a real run: a model that is down for a while, ``model:
inherit`` in a definition, and what ``accord work`` starts outliving it.

A member stopped by a transient model error is restarted under the crash rules
(backoff, ``max_restarts``) and given up like a crash; ``inherit`` is the lead's
model; ``accord work`` commands are tethered, so ``kill -9`` of the pool leaves
nothing running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from accord.agent.definition import AgentDefinition, parse_definition
from accord.agent.model_choice import model_name_for
from accord.config import Config

# inherit --------------------------------------------------------------------------


def test_inherit_in_a_definition_is_the_leads_model_before_any_default() -> None:
    inherit = parse_definition("---\nname: m\nmodel: inherit\n---\n", "m.md")
    assert inherit.model is None and inherit.inherits_model
    plain = AgentDefinition(name="x")
    config = Config.model_validate({"agent": {"model": "openai:from-toml"}})
    lead = "openai:the-lead"
    default = "openai:teammate-default"
    # No model in the definition: --teammate-model, then accord.toml, then the lead's.
    assert model_name_for(plain, None, None, config, teammate_default=default, lead_model=lead) == (
        default
    )
    assert model_name_for(plain, None, None, config, lead_model=lead) == "openai:from-toml"
    # inherit: straight to the lead's, past --teammate-model and accord.toml.
    assert model_name_for(
        inherit, None, None, config, teammate_default=default, lead_model=lead
    ) == (lead)
    # The spawn call (or the member's own model) still comes first.
    assert model_name_for(
        inherit, "openai:spawned", None, config, teammate_default=default, lead_model=lead
    ) == ("openai:spawned")
    # With no lead (accord work, or a member run by hand) inherit falls to the defaults.
    assert model_name_for(inherit, None, None, config, teammate_default=default) == default
    assert model_name_for(inherit, None, None, config) == "openai:from-toml"


# accord work is tethered ----------------------------------------------------------

MARK = f"4245.{os.getpid()}"  # a sleep length no other process uses


def _accord(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}


def _marked(mark: str, program: bytes = b"") -> list[int]:
    """Live processes whose command line holds ``mark`` (zombies are dead already), and
    starts with ``program`` when given."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if mark.encode() in cmd and cmd.startswith(program) and state != "Z":
            found.append(int(entry.name))
    return found


def _until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_kill_9_of_accord_work_leaves_none_of_its_commands_running(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    assert _accord(root, "init", "--team", "main").returncode == 0
    assert _accord(root, "task", "add", "wait in the background").returncode == 0
    # The sleep is a background job of the command's shell, which waits for it.
    command = f"sleep {MARK} & touch started; wait"
    pool = subprocess.Popen(
        [sys.executable, "-m", "accord", "work", "--workers", "1", "--command", command],
        cwd=root,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _until(lambda: (root / "started").exists() and bool(_sleeps()))
        pool.kill()
        pool.wait()
        _until(lambda: not _sleeps(), timeout=10)
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait()
        for pid in _marked(MARK):
            os.kill(pid, signal.SIGKILL)


def _sleeps() -> list[int]:
    return _marked(MARK, b"sleep\0")
