"""Plan files and workers: `accord plan load` checks a whole file before writing anything,
and `accord work` runs a real shell command (or an agent) once per task, in dependency
order, through hooks, crashes and signals, leaving no process behind."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from accord.store import open_store
from accord.testing.cli import ok, one_error
from accord.testing.wait import until as _until
from accord.types import NewTask, PlannedTask, Task, TaskStatus
from conftest import Cli, dump

until = partial(_until, timeout=20.0)  # what these pools do takes seconds, not minutes


# A sleep length no other process uses, not even this test run on another xdist worker.
MARK = f"4243.{os.getpid()}"


# helpers ------------------------------------------------------------------


def with_mark(only_sleep: bool = False) -> list[int]:
    """Processes whose command line holds MARK: the commands' shells and sleeps, and
    `accord work` itself (its --command holds it); with ``only_sleep``, the sleeps."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if MARK.encode() in cmd and (cmd.startswith(b"sleep\0") or not only_sleep):
                found.append(int(entry.name))
    return found


def sleepers() -> list[int]:
    return with_mark(only_sleep=True)


def tasks(project: Path) -> dict[str, Task]:
    """The board by plan id."""
    with open_store(str(project / ".accord" / "accord.db")) as store:
        return {t.plan_key or str(t.id): t for t in store.list_tasks("main")}


def events(project: Path, kind: str) -> list[dict[str, Any]]:
    with open_store(str(project / ".accord" / "accord.db")) as store:
        return [e.payload for e in store.read_events("main") if e.kind == kind]


def plan(project: Path, text: str, name: str = "plan.toml") -> str:
    (project / name).write_text(textwrap.dedent(text))
    return name


@pytest.fixture
def team(project: Path, cli: Cli) -> Iterator[Path]:
    """A project with team main; afterwards, no command a test started may be left."""
    ok(cli("init", "--team", "main"))
    yield project
    left = with_mark()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind: {left}"


THREE = """
    [[task]]
    id = "parse"
    title = "Parse the input"
    description = "both header styles"
    blocked_by = ["setup"]
    priority = 2

    [[task]]
    id = "setup"
    title = "Set up the package"

    [[task]]
    id = "docs"
    title = "Write the docs"
    blocked_by = ["parse", "setup"]
    assignee = "alice"
    max_attempts = 5
"""


# plan load ----------------------------------------------------------------


def test_plan_load_puts_every_task_on_the_board_blockers_first(team: Path, cli: Cli) -> None:
    ok(cli("member", "add", "alice"))
    out = json.loads(ok(cli("plan", "load", plan(team, THREE), "--json")).out)
    assert [(t["id"], t["outcome"], t["task"]["id"]) for t in out["tasks"]] == [
        ("setup", "added", 1),
        ("parse", "added", 2),
        ("docs", "added", 3),
    ]
    board = tasks(team)
    assert board["setup"].ready and board["setup"].title == "Set up the package"
    parse, docs = board["parse"], board["docs"]
    assert parse.blocked_by == (1,) and parse.priority == 2
    assert parse.description == "both header styles"
    assert docs.blocked_by == (1, 2) and docs.assignee == "alice" and docs.max_attempts == 5
    assert all(t.admitted and t.status == TaskStatus.PENDING for t in board.values())
    assert [e["plan_key"] for e in events(team, "task_created")] == ["setup", "parse", "docs"]
    shown = ok(cli("task", "show", "2", "--json")).out
    assert json.loads(shown)["plan_key"] == "parse"


def test_loading_again_adds_only_what_is_new(team: Path, cli: Cli) -> None:
    ok(cli("member", "add", "alice"))
    ok(cli("plan", "load", plan(team, THREE)))
    again = ok(cli("plan", "load", "plan.toml"))
    assert "0 added, 3 already loaded" in again.out
    assert len(events(team, "task_created")) == 3
    # A grown plan adds its new task, waiting on one loaded before; a renamed one stays.
    grown = THREE.replace("Set up the package", "Set up, renamed") + (
        '\n    [[task]]\n    id = "ship"\n    title = "Ship it"\n    blocked_by = ["docs"]\n'
    )
    out = json.loads(ok(cli("plan", "load", plan(team, grown), "--json")).out)
    outcomes = {t["id"]: (t["outcome"], t["note"]) for t in out["tasks"]}
    assert outcomes["ship"] == ("added", None)
    assert outcomes["setup"][0] == "existing" and "Set up the package" in outcomes["setup"][1]
    board = tasks(team)
    assert board["ship"].blocked_by == (board["docs"].id,) and board["ship"].id == 4
    assert board["setup"].title == "Set up the package"
    assert len(events(team, "task_created")) == 4


BAD_PLANS = [
    ("toml", '[[task]]\nid = "a"\ntitle = \n', ["plan.toml:3", "not valid TOML"]),
    ("unknown-key", '[[task]]\nid = "a"\ntitle = "A"\ntitel = "x"\n', ["plan.toml:4", "titel"]),
    ("unknown-top-level", 'name = "x"\n[[task]]\nid = "a"\ntitle = "A"\n', [":1:", "'name'"]),
    (
        "duplicate-id",
        '[[task]]\nid = "a"\ntitle = "A"\n\n[[task]]\nid = "a"\ntitle = "B"\n',
        ["plan.toml:5", "duplicate task id 'a'", "line 1"],
    ),
    (
        "unknown-blocker",
        '[[task]]\nid = "a"\ntitle = "A"\n\n[[task]]\nid = "b"\ntitle = "B"\nblocked_by = ["zz"]\n',
        ["plan.toml:8", "'zz'", "not in this plan"],
    ),
    (
        "cycle",
        '[[task]]\nid = "a"\ntitle = "A"\nblocked_by = ["c"]\n'
        '[[task]]\nid = "b"\ntitle = "B"\nblocked_by = ["a"]\n'
        '[[task]]\nid = "c"\ntitle = "C"\nblocked_by = ["b"]\n'
        '[[task]]\nid = "ok"\ntitle = "fine"\n',
        ["a -> b -> c -> a", "cycle"],
    ),
    ("self-block", '[[task]]\nid = "a"\ntitle = "A"\nblocked_by = ["a"]\n', ["by itself"]),
    ("bad-id", '[[task]]\nid = "Parse It"\ntitle = "A"\n', ["plan.toml:2", "'Parse It'"]),
    ("long-id", f'[[task]]\nid = "{"a" * 41}"\ntitle = "A"\n', ["not a valid id"]),
    ("no-id", '[[task]]\ntitle = "A"\n', ["plan.toml:1", "no id"]),
    ("no-title", '[[task]]\nid = "a"\n', ["needs a title"]),
    ("blank-title", '[[task]]\nid = "a"\ntitle = "  "\n', ["needs a title"]),
    ("priority-type", '[[task]]\nid = "a"\ntitle = "A"\npriority = "high"\n', [":4:"]),
    ("blockers-type", '[[task]]\nid = "a"\ntitle = "A"\nblocked_by = "b"\n', ["list"]),
    ("bad-assignee", '[[task]]\nid = "a"\ntitle = "A"\nassignee = "../x"\n', ["member name"]),
    ("unknown-assignee", '[[task]]\nid = "a"\ntitle = "A"\nassignee = "bob"\n', ["'bob'"]),
    ("attempts", '[[task]]\nid = "a"\ntitle = "A"\nmax_attempts = 0\n', ["max_attempts"]),
    ("empty", "", ["no tasks"]),
    ("not-tables", 'task = "a"\n', ["[[task]] tables"]),
]


@pytest.mark.parametrize(
    ("text", "needles"), [(t, n) for _, t, n in BAD_PLANS], ids=[i for i, _, _ in BAD_PLANS]
)
def test_a_bad_plan_writes_nothing(team: Path, cli: Cli, text: str, needles: list[str]) -> None:
    ok(cli("task", "add", "already here"))
    before = dump(team / ".accord" / "accord.db")
    (team / "plan.toml").write_text(text)
    one_error(cli("plan", "load", "plan.toml"), *needles)
    assert dump(team / ".accord" / "accord.db") == before


def test_unreadable_plans(team: Path, cli: Cli) -> None:
    one_error(cli("plan", "load", "missing.toml"), "cannot read the plan missing.toml")
    (team / "latin.toml").write_bytes(b'[[task]]\nid = "a"\ntitle = "caf\xe9"\n')
    one_error(cli("plan", "load", "latin.toml"), "latin.toml:3", "UTF-8")


def test_task_created_hook_refuses_a_task_and_whatever_waits_on_it(team: Path, cli: Cli) -> None:
    (team / "accord.toml").write_text(
        "[hooks]\nTaskCreated = \"grep -q Forbidden && { echo 'no forbidden work' >&2; exit 2; }"
        ' || exit 0"\n'
    )
    text = """
        [[task]]
        id = "fine"
        title = "Fine work"

        [[task]]
        id = "bad"
        title = "Forbidden work"

        [[task]]
        id = "after-bad"
        title = "Follow-up"
        blocked_by = ["bad", "fine"]
    """
    r = cli("plan", "load", plan(team, text), "--json")
    assert r.code == 1, r.err
    out = {t["id"]: t for t in json.loads(r.out)["tasks"]}
    assert out["fine"]["outcome"] == "added"
    assert out["bad"]["outcome"] == "refused" and "no forbidden work" in out["bad"]["note"]
    assert out["after-bad"]["outcome"] == "refused" and "blocker 'bad'" in out["after-bad"]["note"]
    board = tasks(team)
    assert list(board) == ["fine"] and board["fine"].ready
    # The refused ones are gone, so the fixed plan adds them.
    (team / "accord.toml").write_text("")
    out2 = json.loads(ok(cli("plan", "load", "plan.toml", "--json")).out)
    assert [t["outcome"] for t in out2["tasks"]] == ["existing", "added", "added"]


def test_a_load_that_died_before_its_hooks_ran_is_finished_by_the_next(
    team: Path, cli: Cli
) -> None:
    # As if `plan load` was killed after its transaction, before the TaskCreated hooks ran.
    with open_store(str(team / ".accord" / "accord.db")) as store:
        store.add_tasks(
            "main",
            [PlannedTask(NewTask("Set up"), key="setup")],
            max_attempts=3,
            admitted=False,
        )
    (team / "accord.toml").write_text('[hooks]\nTaskCreated = "cat > hook-ran"\n')
    setup = plan(team, '[[task]]\nid = "setup"\ntitle = "Set up"\n')
    out = json.loads(ok(cli("plan", "load", setup, "--json")).out)
    assert [t["outcome"] for t in out["tasks"]] == ["existing"]
    assert json.loads((team / "hook-ran").read_text())["task_subject"] == "Set up"
    assert tasks(team)["setup"].admitted and tasks(team)["setup"].ready


# work: a command per task -------------------------------------------------

FAN = """
    [[task]]
    id = "setup"
    title = "Set up"

    [[task]]
    id = "a"
    title = "Part a"
    blocked_by = ["setup"]

    [[task]]
    id = "b"
    title = "Part b"
    description = "line one\\nline 'two' $HOME"
    blocked_by = ["setup"]

    [[task]]
    id = "c"
    title = "Part c"
    blocked_by = ["setup"]

    [[task]]
    id = "final"
    title = "Put it together"
    blocked_by = ["a", "b", "c"]
"""

# Records its start and end in a shared log, its environment and stdin in files.
RECORD = (
    'echo "start $ACCORD_TASK_KEY" >> runs.log; '
    'printf "%s|%s|%s|%s" "$ACCORD_TASK_ID" "$ACCORD_TASK_TITLE" "$ACCORD_TASK_DESCRIPTION" '
    '"$ACCORD_TEAM" > "env-$ACCORD_TASK_ID"; cat > "stdin-$ACCORD_TASK_ID.json"; pwd > where; '
    'echo "end $ACCORD_TASK_KEY" >> runs.log'
)


def test_work_runs_each_task_once_after_its_blockers(team: Path, cli: Cli) -> None:
    ok(cli("plan", "load", plan(team, FAN)))
    (team / "sub").mkdir()
    r = ok(cli("work", "--workers", "3", "--command", RECORD))
    assert "finished" in r.out and "5 completed, 0 failed" in r.out
    for t in tasks(team).values():
        assert f": start #{t.id} {t.title} (attempt 1 of 3)" in r.out
        assert f": completed #{t.id} {t.title} in " in r.out
    lines = (team / "runs.log").read_text().splitlines()
    assert sorted(lines) == sorted(
        f"{w} {k}" for k in ("setup", "a", "b", "c", "final") for w in ("start", "end")
    )
    at = {line: i for i, line in enumerate(lines)}
    board = tasks(team)
    for t in board.values():
        for blocker in t.blocked_by:
            key = next(k for k, b in board.items() if b.id == blocker)
            assert at[f"end {key}"] < at[f"start {t.plan_key}"], (key, t.plan_key)
    assert all(t.status == TaskStatus.COMPLETED and t.attempts == 1 for t in board.values())
    assert {t.owner for t in board.values()} <= {"worker-1", "worker-2", "worker-3"}
    b = board["b"]
    assert (team / f"env-{b.id}").read_text() == f"{b.id}|Part b|line one\nline 'two' $HOME|main"
    sent = json.loads((team / f"stdin-{b.id}.json").read_text())
    assert sent["id"] == b.id and sent["plan_key"] == "b" and sent["status"] == "in_progress"
    assert (team / "where").read_text().strip() == str(team)
    members = json.loads(ok(cli("member", "list", "--json")).out)
    assert {m["name"]: m["status"] for m in members} == {
        "worker-1": "stopped",
        "worker-2": "stopped",
        "worker-3": "stopped",
    }
    # Nothing left: a second run does nothing and says so.
    again = ok(cli("work", "--workers", "2", "--command", RECORD))
    assert "0 attempt(s) started" in again.out and len(lines) == 10


def test_a_failing_command_is_retried_then_fails_with_its_output(team: Path, cli: Cli) -> None:
    text = FAN.replace('title = "Part b"', 'title = "Part b"\n    max_attempts = 2')
    ok(cli("plan", "load", plan(team, text)))
    command = (
        'if [ "$ACCORD_TASK_KEY" = b ]; then head -c 10000 /dev/zero | tr "\\0" x; echo; '
        'echo "b broke on attempt $ACCORD_TASK_ATTEMPT" >&2; exit 3; fi; echo fine'
    )
    r = cli("work", "--workers", "2", "--command", command)
    assert r.code == 1, r.err
    board = tasks(team)
    b = board["b"]
    assert b.status == TaskStatus.FAILED and b.attempts == 2
    assert b.reason is not None and b.reason.startswith(
        "the command exited 3: b broke on attempt 2"
    )
    assert "earlier bytes in" in b.reason and len(b.reason) < 2600
    assert board["final"].status == TaskStatus.PENDING and board["final"].dead_blockers == (b.id,)
    assert all(board[k].status == TaskStatus.COMPLETED for k in ("setup", "a", "c"))
    assert board["a"].result == "fine"
    assert "exited 3" in r.out and "back to pending (1 of 2 attempts used)" in r.out
    assert "failed for good after 2 attempt(s)" in r.out
    assert "3 completed, 1 failed, 0 cancelled, 1 left" in r.out
    assert f"left   #{board['final'].id} Put it together: blocked for good" in r.out


def test_task_completed_hook_refusal_is_a_failed_attempt(team: Path, cli: Cli) -> None:
    # The hook refuses the first completion of each task, then lets it through.
    (team / "accord.toml").write_text(
        "[hooks]\nTaskCompleted = \"f=seen-$(python3 -c 'import json,sys; "
        'print(json.load(sys.stdin)[\\"task_id\\"])\'); '
        '[ -e $f ] && exit 0; touch $f; echo tests fail >&2; exit 2"\n'
    )
    ok(cli("plan", "load", plan(team, '[[task]]\nid = "only"\ntitle = "Only"\n')))
    r = ok(cli("work", "--command", "echo built >> built.log"))
    assert "refused by the TaskCompleted hook" in r.out and "completed #1" in r.out
    only = tasks(team)["only"]
    assert only.status == TaskStatus.COMPLETED and only.attempts == 2
    failed = events(team, "task_failed")
    assert len(failed) == 1 and "TaskCompleted hook refused it: tests fail" in failed[0]["reason"]
    assert (team / "built.log").read_text() == "built\nbuilt\n"


def test_work_waits_for_other_holders_and_reclaims_ended_leases(team: Path, cli: Cli) -> None:
    ok(cli("member", "add", "alice"))
    text = """
        [[task]]
        id = "held"
        title = "Held by alice"

        [[task]]
        id = "next"
        title = "Next"
        blocked_by = ["held"]

        [[task]]
        id = "hers"
        title = "Hers"
        assignee = "alice"
    """
    ok(cli("plan", "load", plan(team, text)))
    ok(cli("task", "claim", "--as", "alice", "--id", "1", "--lease", "0.5"))
    r = cli("work", "--command", "echo ok")
    assert r.code == 1, r.err
    board = tasks(team)
    assert board["held"].status == TaskStatus.COMPLETED and board["held"].owner == "worker-1"
    assert board["held"].attempts == 2  # alice's lease ended; the worker's claim is the second
    assert board["next"].status == TaskStatus.COMPLETED
    assert board["hers"].status == TaskStatus.PENDING  # only alice may claim it
    assert "0 failed, 0 cancelled, 1 left" in r.out and "left   #3 Hers: ready" in r.out


def test_a_command_whose_claim_is_lost_is_killed_and_its_result_dropped(
    team: Path, cli: Cli
) -> None:
    ok(cli("task", "add", "soon cancelled"))
    command = f"touch started; sleep {MARK}; touch finished"

    def cancel() -> None:
        until(lambda: (team / "started").exists() and bool(sleepers()))
        with open_store(str(team / ".accord" / "accord.db")) as store:
            store.cancel_task("main", 1, "no longer wanted")
        try:
            until(lambda: not sleepers())
        except AssertionError:
            for pid in sleepers():  # the test fails below rather than hang
                os.kill(pid, signal.SIGKILL)

    canceller = threading.Thread(target=cancel)
    canceller.start()
    r = cli("work", "--command", command, "--lease", "0.3")
    canceller.join()
    # The next heartbeat was refused: the command was killed, and nothing was recorded.
    assert "lost its claim" in r.out and "result dropped" in r.out, r.out
    assert not (team / "finished").exists() and not sleepers()
    assert tasks(team)["1"].status == TaskStatus.CANCELLED


def test_usage_errors(team: Path, cli: Cli) -> None:
    r = cli("work", "--workers", "2")
    assert r.code == 2 and "--command" in r.err
    one_error(cli("work", "--command", "true", "--model", "scripted:x.json"), "--model")
    one_error(cli("work", "--command", "true", "--as-prefix", "Bad Name"), "--as-prefix")
    one_error(cli("work", "--command", "  "), "empty")
    one_error(cli("work", "--agent", "nobody"), "no agent definition named 'nobody'")
    # One pool per team and prefix: a second one is refused while the first runs.
    lock = team / ".accord" / "work-main-worker.lock"
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        one_error(cli("work", "--command", "true"), "already running", "--as-prefix")
    assert json.loads(ok(cli("member", "list", "--json")).out) == []


# work: crashes and signals, as real processes ------------------------------


def start_work(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "accord", "work", *args],
        cwd=root,
        env={k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


SLOW = (
    'case "$ACCORD_TASK_KEY" in quick*) ;; *) touch "started-$ACCORD_TASK_KEY"; '
    f'[ -e release ] || sleep {MARK};; esac; echo x >> "done-$ACCORD_TASK_KEY"'
)
PLAN_FOR_CRASH = """
    [[task]]
    id = "quick"
    title = "Quick"
    priority = 9

    [[task]]
    id = "slow-1"
    title = "Slow one"

    [[task]]
    id = "slow-2"
    title = "Slow two"

    [[task]]
    id = "quick-after"
    title = "Quick, after slow one"
    blocked_by = ["slow-1"]
"""


def test_killed_with_sigkill_then_restarted_finishes_each_task_once(team: Path, cli: Cli) -> None:
    ok(cli("plan", "load", plan(team, PLAN_FOR_CRASH)))
    first = start_work(team, "--workers", "2", "--command", SLOW, "--lease", "1")
    try:
        until(lambda: len(sleepers()) == 2 and (team / "done-quick").exists())
    finally:
        first.kill()
        first.communicate()
    # The commands it left running die with it (they are tethered to the pool).
    until(lambda: not sleepers())
    board = tasks(team)
    assert board["quick"].status == TaskStatus.COMPLETED
    assert {board[k].status for k in ("slow-1", "slow-2")} == {TaskStatus.IN_PROGRESS}

    (team / "release").touch()
    second = start_work(team, "--workers", "2", "--command", SLOW, "--lease", "1")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "left running by a stopped pool: back to pending" in out
    board = tasks(team)
    assert all(t.status == TaskStatus.COMPLETED for t in board.values())
    completed = [e["id"] for e in events(team, "task_completed")]
    assert sorted(completed) == sorted(t.id for t in board.values())  # each exactly once
    for key in board:
        assert (team / f"done-{key}").read_text() == "x\n", key
    assert board["slow-1"].attempts == 2 and board["quick"].attempts == 1


def test_sigterm_ends_running_commands_and_puts_their_tasks_back(team: Path, cli: Cli) -> None:
    ok(cli("plan", "load", plan(team, PLAN_FOR_CRASH)))
    proc = start_work(team, "--workers", "2", "--command", SLOW)
    until(lambda: len(sleepers()) == 2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "stopping (SIGTERM)" in out and "stopped after" in out
    assert not sleepers()
    board = tasks(team)
    for key in ("slow-1", "slow-2"):
        t = board[key]
        assert t.status == TaskStatus.PENDING and t.attempts == 1 and t.owner is None
        assert t.reason is not None and "interrupted" in t.reason
    # Claimable at once, not when a lease ends.
    (team / "release").touch()
    ok(cli("work", "--workers", "2", "--command", SLOW))
    assert all(t.status == TaskStatus.COMPLETED for t in tasks(team).values())


# work: an agent per task ---------------------------------------------------


def test_agent_workers_complete_tasks_with_a_scripted_model(team: Path, cli: Cli) -> None:
    agents = team / ".accord" / "agents"
    agents.mkdir()
    (agents / "coder.md").write_text("---\nname: coder\n---\nYou write code.\n")
    ok(cli("plan", "load", plan(team, '[[task]]\nid = "hello"\ntitle = "Say hello"\n')))
    script = team / "script.json"
    script.write_text(
        json.dumps(
            [
                {
                    "tool_calls": [
                        {"name": "write_file", "arguments": {"path": "hi.txt", "content": "hi"}}
                    ]
                },
                {
                    "tool_calls": [
                        {"name": "task_complete", "arguments": {"task_id": 1, "result": "said hi"}}
                    ]
                },
                {"text": "done"},
            ]
        )
    )
    r = ok(cli("work", "--agent", "coder", "--model", f"scripted:{script}"))
    assert "worker-1: start #1 Say hello" in r.out and "worker-1: completed #1" in r.out
    hello = tasks(team)["hello"]
    assert hello.status == TaskStatus.COMPLETED and hello.owner == "worker-1"
    assert hello.result == "said hi"
    assert (team / "hi.txt").read_text() == "hi"
    member = json.loads(ok(cli("member", "show", "worker-1", "--json")).out)
    assert member["agent"] == "coder" and member["status"] == "stopped"


def test_an_agent_starts_each_new_task_with_a_fresh_context(team: Path, cli: Cli) -> None:
    agents = team / ".accord" / "agents"
    agents.mkdir()
    (agents / "coder.md").write_text("---\nname: coder\n---\nYou write code.\n")
    first = '[[task]]\nid = "a"\ntitle = "Task a"\nmax_attempts = 1\n'
    ok(cli("plan", "load", plan(team, first)))
    broken = team / "broken.json"
    broken.write_text(json.dumps([{"error": "the model fell over"}]))
    r = cli("work", "--agent", "coder", "--model", f"scripted:{broken}")
    assert r.code == 1 and "the model fell over" in r.out
    # Its session on task a was left open; the next task must not continue it.
    ok(cli("plan", "load", plan(team, first + '\n[[task]]\nid = "b"\ntitle = "Task b"\n')))
    script = team / "script.json"
    complete = {"name": "task_complete", "arguments": {"task_id": 2, "result": "b done"}}
    script.write_text(json.dumps([{"tool_calls": [complete]}, {"text": "done"}]))
    r = cli("work", "--agent", "coder", "--model", f"scripted:{script}")
    assert r.code == 1 and "1 completed, 1 failed" in r.out  # a failed in the first run
    assert tasks(team)["b"].result == "b done"
    with open_store(str(team / ".accord" / "accord.db")) as store:
        sessions = [
            (e.session, e.task_id, e.body.get("event"), e.body.get("why"))
            for e in store.read_transcript("main", "worker-1")
            if e.kind == "session"
        ]
    assert sessions[:3] == [
        (1, 1, "start", None),
        (1, 1, "end", "accord work gave worker-1 task #2"),
        (2, 2, "start", None),
    ]
