"""`accord run --budget` end to end: the lead, talking to a fake OpenAI server whose calls
cost a known amount, stops before the call that would pass the run's budget, and the server
shows that call never arrived."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from accord.testing.fake_llm import FakeOpenAI


def accord(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    drop = ("ACCORD_", "ANTHROPIC_", "OPENAI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_run_budget_stops_the_lead_before_the_call_that_would_pass_it(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".accord").mkdir()
    with FakeOpenAI() as server:
        model = f"openai:qwen3@{server.base_url}"
        # One dollar per million input tokens, output free: a call costs its input tokens.
        (root / "accord.toml").write_text(
            f'[run]\nmax_restarts = 0\ngrace = 5\n\n[prices."{model}"]\ninput = 1.0\noutput = 0.0\n'
        )
        # The first call reports a million input tokens: $1.00, under the $1.0005 budget.
        server.call_tools(
            ("task_create", {"title": "write a.txt"}),
            usage={"prompt_tokens": 1_000_000, "completion_tokens": 0},
        )
        server.say("this reply is never asked for")
        done = accord(
            root,
            "run",
            "write a file",
            "--model",
            model,
            "--budget",
            "1.0005",
            "--display",
            "plain",
        )
        # The second call never arrived: the server saw one request, its second reply unplayed.
        assert len(server.requests) == 1, done.stdout + done.stderr
        assert server.remaining == 1
        first = server.requests[0].body
    assert done.returncode == 1, done.stdout + done.stderr
    assert "warning:" not in done.stderr  # priced: the budget sees the spend
    status = json.loads(accord(root, "status", "--json").stdout)
    assert status["run"]["outcome"]["outcome"] == "budget", status["run"]
    assert "would be passed by the next call" in done.stdout + json.dumps(status)
    # What was spent ($1.00) had not reached the budget: the stop came from the next call,
    # larger than the first, whose input alone (four characters a token, at $1 a million)
    # was more than the $0.0005 left.
    assert isinstance(first, dict) and len(json.dumps(first)) // 4 > 500
