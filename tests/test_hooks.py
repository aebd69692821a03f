"""Hooks with real shell scripts, configured in a real accord.toml.

TaskCreated gates a new task, TaskCompleted gates a completion, TeammateIdle
keeps a member working. Exit 0 allows, exit 2 blocks with stderr as the
feedback, anything else is logged and allows; a hook that cannot run (126, 127)
is an error that blocks TaskCompleted by default. Hangs are killed with their
whole process group (a payload bigger than a pipe included), floods of output
are kept bounded and stripped of control characters, Claude Code's settings
files and JSON answers work, and every run is in the log.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from accord import sandbox
from accord.config import locate
from accord.store import open_store
from accord.team import Team
from accord.testing.cli import Result, js, ok
from accord.types import HookEvent
from conftest import Cli, configure

# helpers ------------------------------------------------------------------


def blocked(r: Result, *needles: str) -> list[str]:
    """A HookBlocked refusal: exit 1, one ``error:`` line, then ``  | `` feedback lines."""
    assert r.code == 1, f"exit {r.code}; err={r.err!r}"
    assert r.out == ""
    head, *feedback = r.err.splitlines()
    assert head.startswith("error: ") and "Traceback" not in r.err
    assert feedback and all(line.startswith("  | ") for line in feedback), r.err
    text = "\n".join(line[4:] for line in feedback)
    for needle in needles:
        assert needle in r.err, f"{needle!r} not in {r.err!r}"
    return text.splitlines()


def script(project: Path, name: str, body: str) -> str:
    """Write an executable shell script under hooks/ and return the command that runs it."""
    path = project / "hooks" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body).lstrip())
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return f"./hooks/{name}"


def hook_runs(cli: Cli) -> list[dict[str, Any]]:
    return [e["payload"] for e in js(cli("events", "--json")) if e["kind"] == "hook_run"]


def kinds(cli: Cli) -> list[str]:
    return [e["kind"] for e in js(cli("events", "--json"))]


@pytest.fixture
def team(cli: Cli, project: Path) -> dict[str, str]:
    """Team main with alice and bob (no hooks yet); returns their tokens."""
    ok(cli("init", "--team", "main"))
    return {n: js(cli("member", "add", n, "--json"))["token"] for n in ("alice", "bob")}


@contextmanager
def services(project: Path) -> Iterator[Team]:
    found = locate(project)
    store = open_store(found.store_location)
    try:
        yield Team.open(store, "main", found.config, found.root)
    finally:
        store.close()


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name, or None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    fields = _proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has exited


def _group_members(pgid: int) -> list[int]:
    live = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                live.append(int(entry.name))
    return live


def _in_namespace(ns: str) -> list[int]:
    """Every live process in the PID namespace ``ns`` (as /proc/PID/ns/pid names it)."""
    live = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "pid") == ns and _alive(int(entry.name)):
                    live.append(int(entry.name))
            except OSError:
                pass  # gone, or not ours to look at
    return live


def wait_all_gone(project: Path, name: str, within: float = 10.0) -> None:
    """Every process the hook recorded in ``NAME.pids`` / ``.pgid`` / ``.ns`` has gone.

    A sandboxed hook has a PID namespace of its own, whose numbers mean nothing out
    here: then every process in that namespace must be gone."""
    ns = (project / f"{name}.ns").read_text().strip()
    if ns != os.readlink("/proc/self/ns/pid"):
        deadline = time.monotonic() + within
        while _in_namespace(ns):
            assert time.monotonic() < deadline, f"hook processes survived: {_in_namespace(ns)}"
            time.sleep(0.02)
        return
    pids = [int(p) for p in (project / f"{name}.pids").read_text().split()]
    pgid = int((project / f"{name}.pgid").read_text())
    deadline = time.monotonic() + within
    while any(_alive(p) for p in pids) or _group_members(pgid):
        assert time.monotonic() < deadline, (
            f"hook processes survived: {[p for p in pids if _alive(p)]}, "
            f"group {pgid}: {_group_members(pgid)}"
        )
        time.sleep(0.02)


# TaskCreated --------------------------------------------------------------


def test_task_created_exit_0_admits_the_task_with_the_claude_code_payload(
    cli: Cli, project: Path, team: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    command = script(project, "created.sh", "cat > created.json\nenv > created.env\nexit 0\n")
    configure(
        project,
        f"""
        [hooks]
        TaskCreated = "{command}"
        """,
    )
    monkeypatch.setenv("ACCORD_MEMBER", "alice")
    monkeypatch.setenv("ACCORD_TOKEN", team["alice"])
    planted = {
        "ANTHROPIC_API_KEY": "sk-ant-x1",
        "GH_TOKEN": "ghp-x2",
        "AWS_SECRET_ACCESS_KEY": "x3",
    }
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    task = js(cli("task", "add", "write docs", "-d", "all of them", "--json"))
    assert task["admitted"] is True and task["status"] == "pending"
    payload = json.loads((project / "created.json").read_text())
    assert payload["hook_event_name"] == "TaskCreated"
    assert payload["team_name"] == "main"
    assert payload["teammate_name"] == "alice"
    assert payload["task_id"] == str(task["id"])
    assert payload["task_subject"] == "write docs"
    assert payload["task_description"] == "all of them"
    assert Path(payload["cwd"]).resolve() == project.resolve()
    env = (project / "created.env").read_text().splitlines()
    assert "ACCORD_TEAM=main" in env and "ACCORD_HOOK_EVENT=TaskCreated" in env
    assert not any(line.startswith("ACCORD_TOKEN=") for line in env)  # the secret stays home
    assert not any(value in line for line in env for value in planted.values())  # keys too
    assert [t["id"] for t in js(cli("task", "list", "--ready", "--json"))] == [task["id"]]
    assert kinds(cli)[-3:] == ["task_created", "hook_run", "task_admitted"]
    (run,) = hook_runs(cli)
    assert run["exit_code"] == 0 and run["blocked"] is False and run["event"] == "TaskCreated"
    assert run["command"] == command and run["task_id"] == str(task["id"])


def test_task_created_exit_2_removes_the_task_and_returns_the_feedback(
    cli: Cli, project: Path, team: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the hook runs the task exists but nobody can claim it: ask from inside the hook.
    monkeypatch.setenv("TEST_PYTHON", sys.executable)
    command = script(
        project,
        "refuse.sh",
        """
        "$TEST_PYTHON" -m accord task claim --as bob > /dev/null 2>&1
        echo $? > claim.rc
        echo "every task needs a ticket number" >&2
        echo "example: 'ABC-12 write docs'" >&2
        exit 2
        """,
    )
    configure(project, f'[[hooks.TaskCreated]]\ncommand = "{command}"\n')
    r = cli("task", "add", "write docs")
    feedback = blocked(r, "TaskCreated hook refused task #1", "it was removed")
    assert feedback == ["every task needs a ticket number", "example: 'ABC-12 write docs'"]
    # Nothing to claim meanwhile; or, in the sandbox hooks run in, no store to reach at all.
    expected = "2" if sandbox.available().ok else "3"
    assert (project / "claim.rc").read_text().strip() == expected
    assert js(cli("task", "list", "--json")) == []
    assert cli("task", "show", "1").code == 2
    assert cli("task", "claim", "--as", "bob").code == 3
    assert kinds(cli)[-3:] == ["task_created", "hook_run", "task_removed"]
    (run,) = hook_runs(cli)
    assert run["exit_code"] == 2 and run["blocked"] is True
    assert "every task needs a ticket number" in run["stderr"]


def test_other_exit_codes_are_logged_and_do_not_block(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    fails = script(project, "fails.sh", "echo 'something broke' >&2\nexit 1\n")
    configure(project, f'[hooks]\nTaskCreated = ["{fails}"]\nTaskCompleted = ["exit 3"]\n')
    task = js(cli("task", "add", "still fine", "--json"))
    assert task["admitted"] is True
    claim = js(cli("task", "claim", "--as", "alice", "--json"))
    ok(cli("task", "complete", "1", "--as", "alice", "--token", str(claim["fencing_token"])))
    runs = hook_runs(cli)
    assert [(r["event"], r["exit_code"], r["blocked"], r["error"]) for r in runs] == [
        ("TaskCreated", 1, False, None),
        ("TaskCompleted", 3, False, None),
    ]
    assert "something broke" in runs[0]["stderr"]


def test_a_hook_that_cannot_run_is_reported_and_blocks_a_completion(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    not_executable = project / "hooks" / "plain.sh"
    not_executable.parent.mkdir()
    not_executable.write_text("#!/bin/sh\nexit 0\n")
    configure(
        project,
        """
        [hooks]
        TaskCreated = ["no-such-command-accord-test", "./hooks/plain.sh"]

        [[hooks.TaskCompleted]]
        command = ["/nonexistent/accord-hook"]
        """,
    )
    # TaskCreated warns by default: the task is added, and the person is told.
    added = cli("task", "add", "still fine", "--json")
    assert added.code == 0 and json.loads(added.out)["admitted"] is True
    warnings = added.err.splitlines()
    assert len(warnings) == 2 and all(
        w.startswith("warning: the TaskCreated hook") for w in warnings
    )
    assert "exit 127: program not found" in warnings[0]
    assert "exit 126: not executable" in warnings[1]
    # TaskCompleted blocks by default: the completion is refused with one error line.
    claim = js(cli("task", "claim", "--as", "alice", "--json"))
    token = str(claim["fencing_token"])
    refused = cli("task", "complete", "1", "--as", "alice", "--token", token)
    feedback = blocked(refused, "/nonexistent/accord-hook", "cannot run", "program not found")
    assert any("on_broken" in line for line in feedback)
    events = js(cli("events", "--json"))
    broken = [e["payload"] for e in events if e["kind"] == "hook_broken"]
    assert [(b["event"], b["blocked"]) for b in broken] == [
        ("TaskCreated", False),
        ("TaskCreated", False),
        ("TaskCompleted", True),
    ]
    assert js(cli("task", "show", "1", "--json"))["status"] == "in_progress"
    # on_broken = "warn" lets it through, still reported.
    with (project / "accord.toml").open("a") as f:
        f.write('on_broken = "warn"\n')
    done = cli("task", "complete", "1", "--as", "alice", "--token", token)
    assert done.code == 0 and "warning: the TaskCompleted hook" in done.err


def test_the_first_blocking_hook_stops_the_rest(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    first = script(project, "first.sh", "touch first.ran\nexit 0\n")
    second = script(project, "second.sh", "echo 'no' >&2\nexit 2\n")
    third = script(project, "third.sh", "touch third.ran\nexit 0\n")
    configure(project, f'[hooks]\nTaskCreated = ["{first}", "{second}", "{third}"]\n')
    assert blocked(cli("task", "add", "x")) == ["no"]
    assert (project / "first.ran").exists() and not (project / "third.ran").exists()
    assert [r["exit_code"] for r in hook_runs(cli)] == [0, 2]


def test_a_blocking_hook_with_no_output_still_says_why(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    silent = script(project, "silent.sh", "exit 2\n")
    configure(project, f'[hooks]\nTaskCreated = "{silent}"\n')
    (line,) = blocked(cli("task", "add", "x"))
    assert "exited 2 with no output" in line


# TaskCompleted ------------------------------------------------------------


def test_task_completed_exit_2_refuses_then_a_passing_hook_allows(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    command = script(
        project,
        "checks.sh",
        """
        cat > completed.json
        if [ -f checks.passed ]; then exit 0; fi
        echo "3 tests failed; see pytest output" >&2
        exit 2
        """,
    )
    configure(project, f'[hooks]\nTaskCompleted = "{command}"\n')
    ok(cli("task", "add", "fix bug", "-d", "the parser one"))
    ok(cli("task", "add", "after the fix", "--blocked-by", "1"))
    claim = js(cli("task", "claim", "--as", "alice", "--json"))
    token = str(claim["fencing_token"])
    r = cli("task", "complete", "1", "--as", "alice", "--token", token, "--result", "done")
    assert blocked(r, "TaskCompleted hook refused", "stays in progress with alice") == [
        "3 tests failed; see pytest output"
    ]
    task = js(cli("task", "show", "1", "--json"))
    assert (task["status"], task["owner"], task["fencing_token"]) == (
        "in_progress",
        "alice",
        claim["fencing_token"],
    )
    assert task["result"] is None
    assert [t["id"] for t in js(cli("task", "list", "--ready", "--json"))] == []
    payload = json.loads((project / "completed.json").read_text())
    assert payload["hook_event_name"] == "TaskCompleted"
    assert (payload["team_name"], payload["teammate_name"]) == ("main", "alice")
    assert (payload["task_id"], payload["task_subject"]) == ("1", "fix bug")
    assert payload["task_description"] == "the parser one"
    assert Path(payload["cwd"]).resolve() == project.resolve()
    # The claim is intact: the holder's token still works, and nobody else's does.
    ok(cli("task", "heartbeat", "1", "--as", "alice", "--token", token))
    assert cli("task", "complete", "1", "--as", "bob", "--token", token).code == 2
    (project / "checks.passed").touch()
    done = js(cli("task", "complete", "1", "--as", "alice", "--token", token, "--json"))
    assert done["status"] == "completed" and done["owner"] == "alice"
    assert [t["id"] for t in js(cli("task", "list", "--ready", "--json"))] == [2]
    assert [(r["exit_code"], r["blocked"]) for r in hook_runs(cli)] == [(2, True), (0, False)]
    # Completing again with the same token is the same completion: no hook, no new event.
    before = kinds(cli)
    ok(cli("task", "complete", "1", "--as", "alice", "--token", token))
    assert kinds(cli) == before


def test_a_completion_hook_slower_than_the_lease_keeps_the_lease_alive(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    command = script(project, "slow.sh", "sleep 2.5\nexit 0\n")
    configure(
        project,
        f"""
        [board]
        lease_seconds = 1

        [hooks]
        TaskCompleted = "{command}"
        """,
    )
    ok(cli("task", "add", "slow checks"))
    claim = js(cli("task", "claim", "--as", "alice", "--json"))
    assert claim["lease_expires_at"] - time.time() <= 1.0
    token = str(claim["fencing_token"])
    done = js(cli("task", "complete", "1", "--as", "alice", "--token", token, "--json"))
    assert done["status"] == "completed" and done["attempts"] == 1
    (run,) = hook_runs(cli)
    assert run["seconds"] >= 2.5 and run["exit_code"] == 0
    assert "lease_expired" not in kinds(cli)


# TeammateIdle -------------------------------------------------------------


def test_teammate_idle_exit_2_keeps_the_member_working(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    command = script(
        project,
        "idle.sh",
        """
        cat > idle.json
        if [ -f all.done ]; then exit 0; fi
        echo "task #3 is still open; pick it up" >&2
        exit 2
        """,
    )
    configure(project, f'[hooks]\nTeammateIdle = "{command}"\n')
    with services(project) as svc:
        outcome = svc.roster.idle("bob", reason="no ready task")
        assert outcome.blocked
        assert outcome.feedback == "task #3 is still open; pick it up"
        assert svc.store.get_member("main", "bob").status == "working"
        payload = json.loads((project / "idle.json").read_text())
        assert payload["hook_event_name"] == "TeammateIdle"
        assert (payload["team_name"], payload["teammate_name"]) == ("main", "bob")
        assert Path(payload["cwd"]).resolve() == project.resolve()
        (project / "all.done").touch()
        outcome = svc.roster.idle("bob")
        assert not outcome.blocked and outcome.feedback == ""
        assert svc.store.get_member("main", "bob").status == "idle"
    runs = hook_runs(cli)
    assert [(r["event"], r["exit_code"], r["blocked"]) for r in runs] == [
        ("TeammateIdle", 2, True),
        ("TeammateIdle", 0, False),
    ]
    assert all(r["teammate_name"] == "bob" for r in runs)


def test_teammate_idle_without_hooks_just_goes_idle(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    with services(project) as svc:
        outcome = svc.roster.idle("alice")
        assert not outcome.blocked and outcome.runs == ()
        assert svc.store.get_member("main", "alice").status == "idle"


# hangs and floods ---------------------------------------------------------

HANG = """
cut -d' ' -f5 /proc/$$/stat > hang.pgid
readlink /proc/$$/ns/pid > hang.ns
sleep 1000 &
echo $! >> hang.pids
sh -c 'sleep 1000' &
echo $! >> hang.pids
echo "about to hang" >&2
sleep 1000
"""


@pytest.mark.parametrize("on_timeout", ["block", "allow"])
def test_a_hanging_hook_is_killed_with_its_children_at_its_timeout(
    cli: Cli, project: Path, team: dict[str, str], on_timeout: str
) -> None:
    command = script(project, "hang.sh", HANG)
    setting = "" if on_timeout == "block" else 'on_timeout = "allow"'
    configure(
        project,
        f"""
        [[hooks.TaskCreated]]
        command = "{command}"
        timeout = 0.5
        {setting}
        """,
    )
    started = time.monotonic()
    r = cli("task", "add", "hangs")
    assert time.monotonic() - started < 30
    wait_all_gone(project, "hang")
    if on_timeout == "block":
        feedback = blocked(r, "TaskCreated hook refused task #1")
        assert feedback == ["about to hang", "hook timed out after 0.5s and was killed"]
        assert js(cli("task", "list", "--json")) == []
    else:
        ok(r)
        assert [t["title"] for t in js(cli("task", "list", "--ready", "--json"))] == ["hangs"]
    (run,) = hook_runs(cli)
    assert run["timed_out"] is True and run["exit_code"] is None
    assert run["blocked"] is (on_timeout == "block")
    assert 0.5 <= run["seconds"] < 30


def test_a_hook_that_exits_leaving_children_behind_does_not_leave_them_running(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    command = script(
        project,
        "leaks.sh",
        """
        cut -d' ' -f5 /proc/$$/stat > leak.pgid
        readlink /proc/$$/ns/pid > leak.ns
        sleep 1000 > /dev/null 2>&1 &
        echo $! > leak.pids
        exit 0
        """,
    )
    configure(project, f'[hooks]\nTaskCreated = "{command}"\n')
    ok(cli("task", "add", "x"))
    wait_all_gone(project, "leak")


def test_a_hook_printing_megabytes_finishes_with_bounded_output(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    flood = script(
        project,
        "flood.sh",
        """
        head -c 20000000 /dev/zero | tr '\\0' x
        head -c 3000000 /dev/zero | tr '\\0' y >&2
        echo "the end" >&2
        exit 0
        """,
    )
    configure(project, f'[hooks]\noutput_limit = 65536\nTaskCreated = "{flood}"\n')
    assert js(cli("task", "add", "noisy", "--json"))["admitted"] is True
    (run,) = hook_runs(cli)
    assert run["exit_code"] == 0 and run["output_bytes"] == 23_000_008
    assert len(run["stderr"]) <= 2000 and run["stderr"].endswith("the end\n")
    # Through the service: what is kept is the tail, within the limit.
    with services(project) as svc:
        outcome = svc.hooks.run(HookEvent.TASK_CREATED, {"task_id": "1"}, None)
    (kept,) = outcome.runs
    assert kept.output_bytes == 23_000_008
    assert len(kept.stdout) <= 65536 + 100 and kept.stdout.endswith("x" * 1000)
    assert "earlier bytes cut" in kept.stdout
    assert len(kept.stderr) <= 65536 + 100 and kept.stderr.endswith("the end\n")


def test_a_blocking_hook_printing_megabytes_gives_bounded_feedback(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    flood = script(
        project,
        "flood2.sh",
        """
        head -c 5000000 /dev/zero | tr '\\0' z >&2
        echo >&2
        echo "last words" >&2
        exit 2
        """,
    )
    configure(project, f'[hooks]\nTaskCreated = "{flood}"\n')
    r = cli("task", "add", "noisy")
    feedback = blocked(r)
    assert feedback[-1] == "last words"
    assert len(r.err) < 70_000
    assert js(cli("task", "list", "--json")) == []


def test_hooks_run_in_the_project_root_from_a_subfolder(
    cli: Cli, project: Path, team: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    command = script(project, "where.sh", "pwd > where.txt\nexit 0\n")
    configure(project, f'[hooks]\nTaskCreated = "{command}"\n')
    sub = project / "deep" / "er"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    ok(cli("task", "add", "from below"))
    assert Path((project / "where.txt").read_text().strip()).resolve() == project.resolve()
    assert os.getcwd() == str(sub)


# payloads, output and Claude Code's settings -------------------------------------


def test_a_hook_that_never_reads_a_big_payload_still_times_out(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    # 200 KB of payload is more than a pipe holds; the hook never reads it and hangs.
    configure(project, '[hooks]\ntimeout = 1\nTaskCreated = "exec sleep 4243.81"\n')
    started = time.monotonic()
    refused = cli("task", "add", "huge", "--description", "x" * 200_000)
    took = time.monotonic() - started
    blocked(refused, "timed out after 1s")
    assert took < 15, took
    assert js(cli("task", "list", "--json")) == []


def test_hook_output_shown_to_people_has_no_control_characters(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    noisy = script(
        project,
        "noisy.sh",
        r"""
        printf '\033[31mred\033[0m\rback\a \033]0;title\007tests failed\n\tindented\n' >&2
        exit 2
        """,
    )
    configure(project, f'[hooks]\nTaskCreated = "{noisy}"\n')
    refused = cli("task", "add", "x")
    feedback = blocked(refused, "redback tests failed")
    assert feedback == ["redback tests failed", "\tindented"]
    for text in (refused.err, hook_runs(cli)[0]["stderr"]):
        assert not any(c in text for c in "\x1b\r\x07"), repr(text)


def claude_settings(project: Path, name: str, hooks: dict[str, Any]) -> None:
    folder = project / ".claude"
    folder.mkdir(exist_ok=True)
    groups = {
        event: [{"matcher": "", "hooks": [{"type": "command", "command": c, "timeout": 30}]}]
        for event, c in hooks.items()
    }
    (folder / name).write_text(json.dumps({"permissions": {"allow": []}, "hooks": groups}))


def test_claude_code_settings_hooks_run_with_its_payloads_and_answers(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    refuse = script(
        project,
        "refuse.sh",
        """
        cat > completed.json
        echo '{"decision": "block", "reason": "write the changelog first"}'
        """,
    )
    claude_settings(project, "settings.json", {"TaskCompleted": refuse})
    claude_settings(
        project, "settings.local.json", {"TaskCreated": "echo 'no tasks on fridays' >&2; exit 2"}
    )
    configure(project, '[hooks]\nTaskCreated = "touch toml-hook.ran"\n')
    # accord.toml's hook runs first, then settings.local.json's, which refuses by exit 2.
    assert blocked(cli("task", "add", "x")) == ["no tasks on fridays"]
    assert (project / "toml-hook.ran").exists()
    runs = hook_runs(cli)
    assert [(r["source"], r["exit_code"]) for r in runs] == [
        ("accord.toml", 0),
        (".claude/settings.local.json", 2),
    ]
    (project / ".claude" / "settings.local.json").unlink()
    task = js(cli("task", "add", "y", "--json"))
    claim = js(cli("task", "claim", "--as", "alice", "--json"))
    token = str(claim["fencing_token"])
    # {"decision": "block"} on stdout refuses like exit 2, with the reason as feedback.
    refused = cli("task", "complete", str(task["id"]), "--as", "alice", "--token", token)
    assert blocked(refused) == ["write the changelog first"]
    payload = json.loads((project / "completed.json").read_text())
    assert payload["hook_event_name"] == "TaskCompleted"
    assert payload["task_subject"] == "y" and payload["teammate_name"] == "alice"
    assert {"session_id", "cwd", "permission_mode", "task_id"} <= payload.keys()


def test_a_claude_code_continue_false_stops_the_teammate(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    ok(cli("member", "add", "boss", "--role", "lead"))
    answer = '{"continue": false, "stopReason": "the sprint is over"}'
    claude_settings(project, "settings.json", {"TeammateIdle": f"echo '{answer}'"})
    with services(project) as s:
        outcome = s.roster.idle("alice")
        assert outcome.stop == "the sprint is over" and not outcome.blocked
        (request,) = s.store.list_messages("main", member="alice", unacked=True)
    assert request.kind.value == "shutdown_request" and request.sender == "boss"
    assert "the sprint is over" in request.body


def test_a_broken_claude_code_settings_file_is_an_error_line(
    cli: Cli, project: Path, team: dict[str, str]
) -> None:
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.json").write_text('{"hooks": {"TaskCreated": [')
    r = cli("task", "add", "x")
    assert r.code == 2 and r.err.startswith("error: ") and len(r.err.splitlines()) == 1
    assert "settings.json is not valid JSON" in r.err
    assert js(cli("task", "list", "--json")) == []
