"""Whole team runs against the fake model servers, through the real SDKs.

`accord run` is a real process; the lead and two teammates are real member
processes that call the same fake server at once, so the server answers by rules
(who is asking, what it was just told), not by a queue. The server is strict like
llama-cpp-python's, so a run that works here works on a local model.

Then what goes wrong in the middle of a run, as a person trying it meets it: a
context window smaller than assumed, broken replies, tools called wrongly, a model
that only chats, a model gone for good, Ctrl+C while a model thinks, a frozen lead.
The team carries on, or stops with its reason where the person is looking.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from accord.store import open_store
from accord.testing import FakeAnthropic, FakeOpenAI
from accord.testing.cli import accord as _accord
from accord.testing.cli import clean_env
from accord.testing.fake_llm import RecordedRequest
from accord.testing.wait import alive, until
from accord.types import TaskStatus
from conftest import db, run_project


@pytest.fixture
def root(tmp_path: Path) -> Path:
    # No restart hides a member that crashed: it fails the run instead.
    return run_project(tmp_path, "[run]\nmax_restarts = 0\ngrace = 5\n")


# A whole run against the fake servers may take minutes on a loaded machine.
accord = partial(_accord, timeout=180)

Server = FakeOpenAI | FakeAnthropic


def script_team(
    server: Server, *, alice_starts: bool = True, lead: bool = True, mates: bool = True
) -> None:
    """The lead plans two tasks for two teammates; each writes its file and completes.

    Without ``alice_starts`` the test scripts how alice begins her task; ``lead`` and
    ``mates`` say whose turns this server answers.
    """
    if lead:
        script_lead(server)
    if mates:
        script_mates(server, alice_starts=alice_starts)
    server.otherwise().say("Waiting.")


def script_lead(server: Server) -> None:
    lead = server.on(system="You are lead,")
    lead.on(last="# First wake", once=True).call_tools(
        ("spawn_teammate", {"name": "alice", "instructions": "Do the task assigned to you."}),
        ("spawn_teammate", {"name": "bob", "instructions": "Do the task assigned to you."}),
        ("task_create", {"title": "write a.txt", "assignee": "alice"}),
        ("task_create", {"title": "write b.txt", "assignee": "bob"}),
    )
    # "2 completed" alone would also match "#2 completed by bob" in the changes.
    lead.on(last="# Board\n2 completed").call_tools(("finish", {"summary": "a.txt and b.txt"}))


def script_mates(server: Server, *, alice_starts: bool = True) -> None:
    for n, (name, path) in enumerate((("alice", "a.txt"), ("bob", "b.txt")), start=1):
        mate = server.on(system=f"You are {name},")
        if name != "alice" or alice_starts:
            mate.on(last=f"# Your task #{n}").call_tools(
                ("write_file", {"path": path, "content": f"{name}\n"})
            )
        mate.on(last=f"created {path}").call_tools(
            ("task_complete", {"task_id": n, "result": f"wrote {path}"})
        )


def bodies(server: Server) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if isinstance(r.body, dict)]


def asked_by(server: Server, member: str) -> list[dict[str, Any]]:
    return [b for b in bodies(server) if f"You are {member}," in server.system_text(b)]


def assert_finished(
    root: Path,
    done: subprocess.CompletedProcess[str],
    store: str | None = None,
    env: dict[str, str] | None = None,
) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    with open_store(store or db(root)) as s:
        tasks = s.list_tasks("main")
        assert [t.status for t in tasks] == [TaskStatus.COMPLETED] * 2
        assert [t.attempts for t in tasks] == [1, 1]
        kinds = [e.kind for e in s.read_events("main")]
        assert "member_crashed" not in kinds and "member_failed" not in kinds
    assert (root / "a.txt").read_text() == "alice\n"
    assert (root / "b.txt").read_text() == "bob\n"
    status = json.loads(accord(root, "status", "--json", env=env).stdout)
    assert status["run"]["outcome"]["outcome"] == "finished", status["run"]


def cost_by_member(root: Path, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    out = accord(root, "cost", "--by", "member", "--json", env=env)
    assert out.returncode == 0, out.stderr
    return {row["key"]: row for row in json.loads(out.stdout)["rows"]}


def test_only_model_on_a_strict_local_openai_server_runs_a_team_to_the_end(
    root: Path, location: str
) -> None:
    env = clean_env(ACCORD_STORE=location)  # a SQLite file, then a PostgreSQL schema
    with FakeOpenAI() as server:
        script_team(server)
        model = f"openai:qwen3@{server.base_url}"
        goal = "write two files"
        done = accord(root, "run", goal, "--model", model, "--display", "plain", env=env)
        server.assert_complete()
    assert_finished(root, done, location, env)
    # The person watching sees the run as a story, ending with how it ended.
    for line in ("lead asks for teammate alice", "alice completed #1: wrote a.txt"):
        assert line in done.stdout
    assert done.stdout.rstrip().endswith("finished: a.txt and b.txt")
    sent = bodies(server)
    # All three members talked to the server, through the real openai SDK.
    for member in ("lead", "alice", "bob"):
        assert asked_by(server, member), member
    assert any(b.get("tools") for b in sent)
    assert all(b.get("tool_choice") == "auto" for b in sent if b.get("tools"))
    assert all(m.get("content") is not None for b in sent for m in b["messages"] if "content" in m)
    assert not any(r.api_key not in (None, "not-needed") for r in server.requests)
    spend = cost_by_member(root, env)
    assert {"lead", "alice", "bob"} <= set(spend)
    for member in ("lead", "alice", "bob"):
        assert spend[member]["calls"] >= 2 and spend[member]["input_tokens"] > 0, spend[member]


def test_a_team_on_anthropic_reads_its_prompts_from_the_cache(root: Path) -> None:
    with FakeAnthropic(prompt_cache=True) as server:
        script_team(server)
        env = clean_env(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=server.base_url)
        done = accord(
            root,
            "run",
            "write two files",
            "--model",
            "anthropic:claude-sonnet-4-5",
            "--display",
            "plain",
            env=env,
        )
        server.assert_complete()
    assert_finished(root, done)
    assert {r.api_key for r in server.requests} == {"sk-ant-test"}
    spend = cost_by_member(root)
    for member in ("lead", "alice", "bob"):
        # Each member's first call writes the cache; its later turns read it.
        row = spend[member]
        assert row["calls"] >= 2, row
        assert row["cache_read_tokens"] > 1024 and row["cache_write_tokens"] > 0, row
    by_task = accord(root, "cost", "--by", "task", "--json")
    tasks = {row["key"]: row for row in json.loads(by_task.stdout)["rows"]}
    assert tasks["1"]["cache_read_tokens"] > 0 and tasks["2"]["cache_read_tokens"] > 0, tasks


def test_a_lead_on_anthropic_with_teammates_on_a_local_server(root: Path) -> None:
    with FakeAnthropic() as claude, FakeOpenAI() as local:
        script_team(claude, mates=False)
        script_team(local, lead=False)
        local_model = f"openai:qwen3@{local.base_url}"
        env = clean_env(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=claude.base_url)
        done = accord(
            root,
            "run",
            "write two files",
            "--model",
            "anthropic:claude-sonnet-4-5",
            "--teammate-model",
            local_model,
            "--display",
            "plain",
            env=env,
        )
        claude.assert_complete()
        local.assert_complete()
    assert_finished(root, done)
    assert all("You are lead," in claude.system_text(r.body) for r in claude.requests)
    assert all("You are lead," not in local.system_text(r.body) for r in local.requests)
    # The Anthropic key reaches Anthropic only, never the local server.
    assert {r.api_key for r in local.requests} == {"not-needed"}
    assert not any("sk-ant-test" in r.raw.decode() + str(r.headers) for r in local.requests)
    models = accord(root, "cost", "--by", "model", "--json")
    rows = {row["key"]: row for row in json.loads(models.stdout)["rows"]}
    assert rows["anthropic:claude-sonnet-4-5"]["calls"] >= 2
    assert rows[local_model]["calls"] >= 4


WINDOW = 8192  # the window the server has, which the member does not know: it assumes 32k
STEPS = 12  # bash outputs that, with alice's prompt and tools, overflow WINDOW


def script_long_work(server: FakeOpenAI) -> None:
    """alice's task takes STEPS commands, each printing a screenful, before she writes a.txt."""
    alice = server.on(system="You are alice,")
    marks = [f"step-{n:02d}" for n in range(1, STEPS + 1)]
    alice.on(last="# Your task #1").call_tools(
        ("bash", {"command": f"yes {marks[0]} | head -n 250"})
    )
    for done, then in zip(marks, marks[1:], strict=False):
        alice.on(last=done).call_tools(("bash", {"command": f"yes {then} | head -n 250"}))
    alice.on(last=marks[-1]).call_tools(("write_file", {"path": "a.txt", "content": "alice\n"}))


def too_long(request: RecordedRequest) -> bool:
    return len(request.raw) > 4 * WINDOW  # the servers' four characters a token


def test_a_window_learned_from_a_real_400_is_compacted_to_and_the_run_finishes(
    root: Path,
) -> None:
    with FakeOpenAI() as server:
        # Once, as a server started with a small context would: the first prompt over it.
        server.on(system="You are alice,", test=too_long, once=True).context_exceeded(WINDOW)
        script_long_work(server)
        script_team(server, alice_starts=False)
        model = f"openai:qwen3@{server.base_url}"
        done = accord(root, "run", "write two files", "--model", model, "--display", "plain")
        server.assert_complete()
    assert_finished(root, done)
    alice = [r for r in server.requests if "You are alice," in server.system_text(r.body)]
    refused = next(n for n, r in enumerate(alice) if too_long(r))
    assert refused > 2  # in the middle of her task, not on its first call
    # The same turn was sent again, folded to fit; nothing after it overflowed again.
    assert refused + 1 < len(alice) and not any(too_long(r) for r in alice[refused + 1 :])
    assert "folded" in json.dumps(alice[refused + 1].body)
    assert server.latest_text(alice[refused + 1].body) == server.latest_text(alice[refused].body)
    events = json.loads(accord(root, "events", "--json").stdout)
    learned = [e for e in events if e["kind"] == "context_window_learned"]
    assert len(learned) == 1, learned
    assert learned[0]["payload"]["member"] == "alice"
    assert learned[0]["payload"]["window"] == WINDOW and learned[0]["payload"]["was"] == 32_768


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_an_html_page_then_broken_json_mid_task_are_ridden_out(root: Path, api: str) -> None:
    server: Server = FakeOpenAI() if api == "openai" else FakeAnthropic()
    with server:
        # bob has written b.txt; his next two replies come back broken, with status 200.
        server.on(system="You are bob,", last="created b.txt", once=True).html().not_json()
        script_team(server)
        env = clean_env()
        model = f"openai:qwen3@{server.base_url}"
        if isinstance(server, FakeAnthropic):
            env.update(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=server.base_url)
            model = "anthropic:claude-sonnet-4-5"
        goal = "write two files"
        done = accord(root, "run", goal, "--model", model, "--display", "plain", env=env)
        server.assert_complete()
    assert_finished(root, done)  # both tasks completed on their first attempt
    bob = [r for r in server.requests if "You are bob," in server.system_text(r.body)]
    after = [r for r in bob if server.latest_text(r.body).startswith("created b.txt")]
    assert len(after) == 3  # the same turn sent three times: two broken replies, then one
    with open_store(db(root)) as s:
        assert s.get_task("main", 2).attempts == 1
        stops = [e for e in s.read_events("main") if e.kind == "member_stopped"]
        assert all(e.payload.get("reason") != "model_error" for e in stops), stops


def test_a_teammate_that_calls_tools_wrongly_is_told_why_and_finishes(root: Path) -> None:
    # What small local models do: a tool from another harness, arguments cut short,
    # a lead's tool, a path out of the workspace. Each is answered with why; none stops her.
    with FakeOpenAI() as server:
        alice = server.on(system="You are alice,")
        wrong: list[tuple[str, dict[str, Any] | str]] = [
            ("str_replace_editor", {"path": "a.txt"}),
            ("write_file", '{"path": "a.txt", "content": '),
            ("spawn_teammate", {"name": "zed", "instructions": "help"}),
            ("write_file", {"path": "../../outside.txt", "content": "x"}),
        ]
        told = ["# Your task #1", "str_replace_editor", "write_file", "spawn_teammate"]
        for heard, (name, arguments) in zip(told, wrong, strict=True):
            alice.on(last=heard, once=True).call_tools((name, arguments))
        alice.on(last="outside your workspace").call_tools(
            ("write_file", {"path": "a.txt", "content": "alice\n"})
        )
        script_team(server, alice_starts=False)
        model = f"openai:qwen3@{server.base_url}"
        done = accord(root, "run", "write two files", "--model", model, "--display", "plain")
        server.assert_complete()
    assert_finished(root, done)
    answers = [
        server.latest_text(r.body)
        for r in server.requests
        if "You are alice," in server.system_text(r.body)
    ]
    errors = [a for a in answers if a.startswith("Error: ")]
    assert len(errors) == 4, answers
    assert "'str_replace_editor' is not available to you" in errors[0]
    assert "not a JSON object" in errors[1]
    assert "'spawn_teammate' is not available to you" in errors[2]
    assert "outside your workspace" in errors[3]
    assert not (root.parent.parent / "outside.txt").exists()


def quick_to_notice(root: Path) -> None:
    """Heartbeats every half second and a team silent for 3s is looked into."""
    (root / "accord.toml").write_text(
        "[run]\nmax_restarts = 0\ngrace = 5\nsilent_after = 3\n\n[agent]\nheartbeat_seconds = 0.5\n"
    )


def test_a_model_that_only_chats_stops_the_run_as_stalled_not_forever(root: Path) -> None:
    # What a local model that ignores the tools does: it answers every turn in prose.
    quick_to_notice(root)
    with FakeOpenAI() as server:
        server.otherwise().say("I'd be happy to help! What would you like me to do?")
        model = f"openai:qwen3@{server.base_url}"
        done = accord(root, "run", "write two files", "--model", model, "--display", "plain")
    assert done.returncode == 1, done.stdout + done.stderr
    status = json.loads(accord(root, "status", "--json").stdout)
    outcome = status["run"]["outcome"]
    assert outcome["outcome"] == "stalled", outcome
    assert "the lead has not finished" in outcome["reason"]
    assert f"stopped without finishing (stalled: {outcome['reason']})" in done.stdout
    # Told once that the board is empty, then left to wait: two calls, not a loop.
    assert len(server.requests) == 2


def test_a_teammates_model_down_for_good_ends_the_run_with_the_cause_in_sight(
    root: Path,
) -> None:
    quick_to_notice(root)
    with (root / "accord.toml").open("a") as f:
        f.write("max_retries = 1\n")  # under [agent]: give up on an outage within a second
    with FakeOpenAI() as server:
        # alice's model goes down in the middle of her task and never comes back.
        server.on(system="You are alice,", last="created a.txt").fail(503, "upstream is down")
        script_team(server)
        model = f"openai:qwen3@{server.base_url}"
        done = accord(root, "run", "write two files", "--model", model, "--display", "plain")
    # the call and its one retry (the run's story says why when it is not so)
    assert server.hits()[0][1] >= 2, done.stdout + done.stderr
    assert done.returncode == 1, done.stdout + done.stderr
    assert "alice stopped (model_error" in done.stdout and "HTTP 503" in done.stdout
    assert "stopped without finishing" in done.stdout
    with open_store(db(root)) as s:
        assert s.get_task("main", 1).status != TaskStatus.COMPLETED
        assert s.get_task("main", 2).status == TaskStatus.COMPLETED
    status = accord(root, "status")
    assert "alice stopped (model_error)" in status.stdout and "HTTP 503" in status.stdout
    outcome = json.loads(accord(root, "status", "--json").stdout)["run"]["outcome"]
    assert outcome["outcome"] != "finished" and outcome["reason"], outcome


def member_pids(root: Path) -> dict[str, int]:
    with open_store(db(root)) as s:
        return {m.name: m.pid for m in s.list_members("main") if m.pid is not None}


def test_ctrl_c_while_a_member_waits_on_its_model_then_resume_finishes(root: Path) -> None:
    with FakeOpenAI() as server:
        # alice's first call hangs, as a local model still thinking; after a resume it answers.
        server.on(system="You are alice,", last="# Your task #1", once=True).slow(120)
        script_team(server)
        model = f"openai:qwen3@{server.base_url}"
        run = subprocess.Popen(
            [sys.executable, "-m", "accord", "run", "two", "--model", model, "--display", "plain"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(),
        )
        try:
            until(lambda: [n for _, n in server.hits()][0] == 1)  # alice is waiting
            pids = member_pids(root)
            started = time.monotonic()
            run.send_signal(signal.SIGINT)
            out, _ = run.communicate(timeout=60)
            waited = time.monotonic() - started
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        assert run.returncode == 130, out
        # Within the 5s grace and room for a busy machine; not the 120s the reply takes.
        assert waited < 30, waited
        assert "stopped without finishing (interrupted: stopped by Ctrl+C)" in out
        assert set(pids) == {"lead", "alice", "bob"}
        assert not [name for name, pid in pids.items() if alive(pid)]
        with open_store(db(root)) as s:
            held = s.get_task("main", 1)
            assert held.status == TaskStatus.IN_PROGRESS and held.owner == "alice"
            # alice's call was cut short by the stop: she stopped herself, not the grace's kill.
            stops = [
                e.payload["reason"]
                for e in s.read_events("main")
                if e.kind == "member_stopped" and e.payload["name"] == "alice"
            ]
            assert stops == ["signal"], stops
        done = accord(root, "resume", "--display", "plain", env=clean_env())
        server.assert_complete()
    # alice carried on under the claim she held: the interruption cost no attempt.
    assert_finished(root, done)


def test_a_lead_that_stops_heartbeating_ends_the_run_saying_so(root: Path) -> None:
    quick_to_notice(root)
    with FakeOpenAI() as server:
        server.on(system="You are lead,", last="# First wake", once=True).call_tools(
            ("spawn_teammate", {"name": "alice", "instructions": "Do your task."}),
            ("task_create", {"title": "wait for go", "assignee": "alice"}),
        )
        wait = "touch started; until [ -f go ]; do sleep 0.1; done"
        server.on(system="You are alice,", last="# Your task #1").call_tools(
            ("bash", {"command": wait})
        )
        server.otherwise().say("Waiting.")
        model = f"openai:qwen3@{server.base_url}"
        run = subprocess.Popen(
            [sys.executable, "-m", "accord", "run", "wait", "--model", model, "--display", "plain"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(),
        )
        try:
            until(lambda: (root / "started").exists())
            with open_store(db(root)) as s:
                lead = s.get_member("main", "lead").pid
            assert lead is not None
            os.kill(lead, signal.SIGSTOP)  # frozen: alive, but its heartbeats stop
            out, _ = run.communicate(timeout=60)
        finally:
            (root / "go").touch()
            if run.poll() is None:
                run.kill()
                run.wait()
    assert run.returncode == 1, out
    assert "lead stopped heartbeating; killing it" in out
    reason = json.loads(accord(root, "status", "--json").stdout)["run"]["outcome"]["reason"]
    assert "heartbeat" in reason, reason
