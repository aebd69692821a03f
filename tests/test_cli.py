"""The ``accord`` command line: every command, its JSON, its exit codes and its errors.

Most runs are in-process (the ``cli`` fixture); a few go through a real
``python -m accord`` process to prove the console entry works end to end.
Every error must be one ``error:`` line on stderr and must leave the store
exactly as it was.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from accord.store import Store, open_store
from accord.testing.cli import Result, js, ok, one_error
from accord.testing.cli import accord as _accord
from conftest import Cli, dump, refusals, snapshot, store_path

accord_process = partial(_accord, timeout=30)

NAME_41 = "a" * 41
BAD_NAMES = ["../x", "A B", "", NAME_41]


@dataclass
class Seeded:
    """A project with team main: alice holds #1, #2 waits on #1, #3 on #2, #4 is ready."""

    project: Path
    tokens: dict[str, str]
    fence: int  # alice's fencing token on task #1


@pytest.fixture
def seeded(cli: Cli, project: Path) -> Seeded:
    ok(cli("init", "--team", "main"))
    tokens = {n: js(cli("member", "add", n, "--json"))["token"] for n in ("alice", "bob")}
    ok(cli("task", "add", "one"))
    ok(cli("task", "add", "two", "--blocked-by", "1"))
    ok(cli("task", "add", "three", "--blocked-by", "2"))
    ok(cli("task", "add", "four"))
    claim = js(cli("task", "claim", "--as", "alice", "--id", "1", "--json"))
    ok(cli("msg", "send", "--from", "alice", "--to", "bob", "hello bob"))
    return Seeded(project, tokens, claim["fencing_token"])


# init and teams -----------------------------------------------------------


def test_init_creates_project_and_is_idempotent(cli: Cli, project: Path) -> None:
    r = ok(cli("init"))
    assert "created" in r.out
    assert (project / "accord.toml").is_file()
    assert store_path(project).is_file()
    assert (project / ".accord" / ".gitignore").read_text() == "*\n"
    toml = (project / "accord.toml").read_text()
    assert toml.startswith("#") and "[hooks]" in toml
    r = ok(cli("init"))
    assert "already initialised" in r.out
    assert js(cli("team", "list", "--json")) == []


def test_init_with_team(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    assert [t["name"] for t in js(cli("team", "list", "--json"))] == ["main"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_init_with_bad_team_name_creates_nothing(cli: Cli, project: Path, bad: str) -> None:
    one_error(cli("init", "--team", bad), 2, "not a valid team name")
    assert list(project.iterdir()) == []


def test_team_create_list_show_delete(cli: Cli, project: Path) -> None:
    ok(cli("init"))
    created = js(cli("team", "create", "alpha", "--description", "first", "--json"))
    assert created["name"] == "alpha" and created["description"] == "first"
    assert created["v"] == 1
    ok(cli("team", "create", "beta"))
    assert [t["name"] for t in js(cli("team", "list", "--json"))] == ["alpha", "beta"]
    table = ok(cli("team", "list")).out
    assert "alpha" in table and "beta" in table
    ok(cli("member", "add", "alice", "--team", "alpha"))
    shown = js(cli("team", "show", "alpha", "--json"))
    assert shown["name"] == "alpha"
    assert [m["name"] for m in shown["members"]] == ["alice"]
    assert "token_hash" not in shown["members"][0]
    assert shown["tasks"]["pending"] == 0 and shown["unacked_messages"] == 0
    assert "team alpha: first" in ok(cli("team", "show", "alpha")).out
    assert js(cli("team", "show", "--team", "beta", "--json"))["name"] == "beta"
    ok(cli("team", "delete", "beta"))
    assert [t["name"] for t in js(cli("team", "list", "--json"))] == ["alpha"]


def test_team_list_empty(cli: Cli) -> None:
    ok(cli("init"))
    assert "no teams" in ok(cli("team", "list")).out


def test_team_delete_refuses_live_members_without_force(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    ok(cli("member", "add", "alice"))
    ok(cli("member", "heartbeat", "--as", "alice", "--status", "working"))
    before = snapshot(cli, project)
    one_error(cli("team", "delete", "main"), 2, "live members", "alice", "--force")
    assert snapshot(cli, project) == before
    ok(cli("team", "delete", "main", "--force"))
    assert js(cli("team", "list", "--json")) == []


# members ------------------------------------------------------------------


def test_member_add_list_show_remove(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    (project / ".accord" / "agents").mkdir()
    (project / ".accord" / "agents" / "planner.md").write_text("---\nname: planner\n---\nPlan.\n")
    added = js(
        cli(
            "member",
            "add",
            "lead",
            "--role",
            "lead",
            "--agent",
            "planner",
            "--model",
            "x:y",
            "--json",
        )
    )
    assert added["name"] == "lead" and added["role"] == "lead"
    assert added["agent"] == "planner" and added["model"] == "x:y"
    assert added["token"].startswith("acc_")
    r = ok(cli("member", "add", "bob"))
    assert "token" in r.out and "acc_" in r.out
    names = [m["name"] for m in js(cli("member", "list", "--json"))]
    assert names == ["bob", "lead"]
    assert "lead" in ok(cli("member", "list")).out
    shown = js(cli("member", "show", "bob", "--json"))
    assert shown["name"] == "bob" and shown["status"] == "stopped"
    assert "token_hash" not in shown and "token" not in shown
    assert "bob" in ok(cli("member", "show", "bob")).out
    ok(cli("member", "remove", "bob"))
    assert [m["name"] for m in js(cli("member", "list", "--json"))] == ["lead"]


def test_member_remove_releases_held_tasks(cli: Cli, seeded: Seeded) -> None:
    ok(cli("member", "heartbeat", "--as", "alice", "--status", "working"))
    one_error(cli("member", "remove", "alice"), 2, "alice is working", "--force")
    r = ok(cli("member", "remove", "alice", "--force"))
    assert "#1" in r.out
    task = js(cli("task", "show", "1", "--json"))
    assert task["status"] == "pending" and task["owner"] is None


def test_member_heartbeat_records_status_pid_host(cli: Cli, seeded: Seeded) -> None:
    ok(cli("member", "heartbeat", "--as", "bob", "--status", "idle", "--pid", "42", "--host", "h1"))
    bob = js(cli("member", "show", "bob", "--json"))
    assert (bob["status"], bob["pid"], bob["host"]) == ("idle", 42, "h1")
    assert bob["heartbeat_at"] is not None


def test_member_token_rotate(cli: Cli, seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = js(cli("member", "token", "bob", "--rotate", "--json"))
    assert issued["name"] == "bob" and issued["token"] != seeded.tokens["bob"]
    assert "new token for alice" in ok(cli("member", "token", "alice", "--rotate")).out
    monkeypatch.setenv("ACCORD_MEMBER", "bob")
    monkeypatch.setenv("ACCORD_TOKEN", seeded.tokens["bob"])
    one_error(cli("msg", "inbox", "--as", "bob"), 2, "ACCORD_TOKEN is not bob's token")
    monkeypatch.setenv("ACCORD_TOKEN", issued["token"])
    assert len(js(cli("msg", "inbox", "--as", "bob", "--json"))) == 1


# tasks --------------------------------------------------------------------


def test_task_add_list_show(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    ok(cli("member", "add", "alice"))
    a = js(cli("task", "add", "build it", "-d", "the details", "--priority", "5", "--json"))
    assert (a["id"], a["title"], a["description"], a["priority"]) == (
        1,
        "build it",
        "the details",
        5,
    )
    assert a["status"] == "pending" and a["admitted"] is True
    b = js(
        cli(
            "task", "add", "test it", "--blocked-by", "1", "--assign", "alice",
            "--max-attempts", "7", "--json",
        )
    )  # fmt: skip
    assert b["blocked_by"] == [1] and b["waiting_on"] == [1]
    assert b["assignee"] == "alice" and b["max_attempts"] == 7
    assert "waiting on #2" in ok(cli("task", "add", "ship it", "--blocked-by", "#2")).out
    assert [t["id"] for t in js(cli("task", "list", "--json"))] == [1, 2, 3]
    assert [t["id"] for t in js(cli("task", "list", "--ready", "--json"))] == [1]
    assert [t["id"] for t in js(cli("task", "list", "--status", "pending", "--json"))] == [1, 2, 3]
    assert js(cli("task", "list", "--status", "completed", "--json")) == []
    listing = ok(cli("task", "list")).out
    assert "build it" in listing and "waiting on #1" in listing
    shown = js(cli("task", "show", "2", "--json"))
    assert shown["title"] == "test it"
    text = ok(cli("task", "show", "#2")).out
    assert "#2 test it" in text and "blocked by" in text
    assert "no tasks" in ok(cli("task", "list", "--status", "failed")).out


def test_task_update(cli: Cli, seeded: Seeded) -> None:
    t = js(
        cli(
            "task", "update", "4", "--title", "FOUR", "-d", "new", "--priority", "9",
            "--assign", "bob", "--add-blocker", "2", "--json",
        )
    )  # fmt: skip
    assert (t["title"], t["description"], t["priority"], t["assignee"]) == ("FOUR", "new", 9, "bob")
    assert t["blocked_by"] == [2]
    t = js(cli("task", "update", "4", "--remove-blocker", "2", "--unassign", "--json"))
    assert t["blocked_by"] == [] and t["assignee"] is None
    assert "updated #4" in ok(cli("task", "update", "4", "--priority", "1")).out


def test_task_claim_heartbeat_complete_unblocks(cli: Cli, seeded: Seeded) -> None:
    beat = js(
        cli("task", "heartbeat", "1", "--as", "alice", "--token", str(seeded.fence), "--json")
    )
    assert beat["fencing_token"] == seeded.fence
    r = ok(cli("task", "heartbeat", "1", "--as", "alice", "--token", str(seeded.fence)))
    assert "lease on #1" in r.out
    done = js(
        cli(
            "task", "complete", "1", "--as", "alice", "--token", str(seeded.fence),
            "--result", "all good", "--json",
        )
    )  # fmt: skip
    assert done["status"] == "completed" and done["result"] == "all good"
    # The same completion again (a retry after a lost reply) is deduplicated, not an error.
    again = js(
        cli("task", "complete", "1", "--as", "alice", "--token", str(seeded.fence), "--json")
    )
    assert again["status"] == "completed"
    assert [t["id"] for t in js(cli("task", "list", "--ready", "--json"))] == [2, 4]
    claim = ok(cli("task", "claim", "--as", "bob", "--lease", "60"))
    assert "claimed #2" in claim.out
    events = js(cli("events", "--json"))
    completed = [e for e in events if e["kind"] == "task_completed"]
    assert len(completed) == 1 and completed[0]["payload"]["unblocked"] == [2]


def test_task_claim_nothing_ready_exits_3(cli: Cli, seeded: Seeded) -> None:
    ok(cli("task", "claim", "--as", "bob", "--id", "4"))
    before = snapshot(cli, seeded.project)
    r = cli("task", "claim", "--as", "bob")
    assert r.code == 3 and r.out == ""
    assert r.err.splitlines() == ["nothing to do: no ready task for bob to claim"]
    assert snapshot(cli, seeded.project) == before


def test_task_fail_and_cancel(cli: Cli, seeded: Seeded) -> None:
    t = js(
        cli(
            "task", "fail", "1", "--as", "alice", "--token", str(seeded.fence),
            "--reason", "flaky", "--retry", "--json",
        )
    )  # fmt: skip
    assert t["status"] == "pending" and t["reason"] == "flaky"
    fence = js(cli("task", "claim", "--as", "alice", "--id", "1", "--json"))["fencing_token"]
    r = ok(cli("task", "fail", "1", "--as", "alice", "--token", str(fence), "--reason", "broken"))
    assert "failed" in r.out
    two = js(cli("task", "show", "2", "--json"))
    assert two["dead_blockers"] == [1]
    assert "can never" in ok(cli("task", "show", "2")).out
    cancelled = js(cli("task", "cancel", "4", "--reason", "not needed", "--json"))
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "not needed"
    assert "cancelled #3" in ok(cli("task", "cancel", "3")).out
    one_error(cli("task", "cancel", "4"), 2, "already cancelled")


# mail ---------------------------------------------------------------------


def test_msg_send_inbox_ack_list(cli: Cli, seeded: Seeded) -> None:
    sent = js(
        cli(
            "msg", "send", "--from", "bob", "--to", "alice", "ping", "--summary", "a ping",
            "--key", "k1", "--json",
        )
    )  # fmt: skip
    assert len(sent) == 1 and sent[0]["body"] == "ping" and sent[0]["summary"] == "a ping"
    again = js(
        cli("msg", "send", "--from", "bob", "--to", "alice", "ping", "--key", "k1", "--json")
    )
    assert [m["id"] for m in again] == [sent[0]["id"]]
    everyone = js(cli("msg", "send", "--from", "alice", "--to", "*", "all hands", "--json"))
    assert [m["recipient"] for m in everyone] == ["bob"] and everyone[0]["broadcast"]
    inbox = js(cli("msg", "inbox", "--as", "bob", "--json"))
    assert [m["body"] for m in inbox] == ["hello bob", "all hands"]
    assert all(m["delivered_at"] is not None for m in inbox)
    # Delivered but not acknowledged: invisible until the visibility timeout ends.
    assert "no new messages" in ok(cli("msg", "inbox", "--as", "bob")).out
    acked = js(cli("msg", "ack", "--as", "bob", "--json", *(str(m["id"]) for m in inbox)))
    assert acked["acked"] == [m["id"] for m in inbox]
    assert "acknowledged 0" in ok(cli("msg", "ack", "--as", "bob", str(inbox[0]["id"]))).out
    text = ok(cli("msg", "inbox", "--as", "alice")).out
    assert "ping" in text and "msg ack --as alice" in text
    history = js(cli("msg", "list", "--json"))
    assert [m["body"] for m in history] == ["hello bob", "ping", "all hands"]
    assert [m["body"] for m in js(cli("msg", "list", "--unacked", "--json"))] == ["ping"]
    assert len(js(cli("msg", "list", "--member", "bob", "--limit", "1", "--json"))) == 1
    assert "hello bob" in ok(cli("msg", "list")).out


def test_msg_request_and_response_kinds(cli: Cli, seeded: Seeded) -> None:
    req = js(
        cli("msg", "send", "--from", "alice", "--to", "bob", "stop?", "--kind", "shutdown_request",
            "--json")
    )[0]  # fmt: skip
    assert req["request_id"]
    one_error(
        cli("msg", "send", "--from", "alice", "--to", "bob", "no", "--kind", "shutdown_response"),
        2,
        "--reply-to",
    )
    resp = js(
        cli(
            "msg", "send", "--from", "bob", "--to", "alice", "yes", "--kind",
            "shutdown_response", "--reply-to", str(req["id"]), "--json",
        )
    )[0]  # fmt: skip
    assert resp["request_id"] == req["request_id"]


# events and wait ----------------------------------------------------------


def test_events_plain_json_since_limit(cli: Cli, seeded: Seeded) -> None:
    events = js(cli("events", "--json"))
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert events[0]["kind"] == "team_created"
    kinds = {e["kind"] for e in events}
    assert {"member_added", "task_created", "task_claimed", "message_sent"} <= kinds
    assert [e["seq"] for e in js(cli("events", "--since", "3", "--json"))] == seqs[3:]
    assert [e["seq"] for e in js(cli("events", "--since", "3", "--limit", "2", "--json"))] == [4, 5]
    assert js(cli("events", "--since", str(seqs[-1]), "--json")) == []
    lines = ok(cli("events")).out.splitlines()
    assert len(lines) == len(seqs) and "team_created" in lines[0]


def test_wait_returns_for_mail_and_times_out_with_3(cli: Cli, seeded: Seeded) -> None:
    woke = js(cli("wait", "--as", "bob", "--timeout", "5", "--json"))
    assert woke["reason"] == "mail" and woke["mail"] == 1
    assert "bob has 1 message" in ok(cli("wait", "--as", "bob", "--timeout", "5")).out
    ok(cli("team", "create", "quiet"))
    ok(cli("member", "add", "zed", "--team", "quiet"))
    before = snapshot(cli, seeded.project, "quiet")
    r = cli("wait", "--as", "zed", "--team", "quiet", "--timeout", "0.1", "--json")
    assert r.code == 3
    assert json.loads(r.out)["reason"] == "timeout"
    assert r.err.splitlines() == ["nothing to do: nothing for zed within 0.1s"]
    assert snapshot(cli, seeded.project, "quiet") == before


def test_wait_in_another_process_wakes_on_a_message(cli: Cli, seeded: Seeded) -> None:
    ok(cli("task", "update", "4", "--assign", "bob"))  # now alice has nothing to do
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord", "wait", "--as", "alice", "--timeout", "30", "--json"],
        cwd=seeded.project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ok(cli("msg", "send", "--from", "bob", "--to", "alice", "wake up"))
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    woke = json.loads(out)
    assert (woke["reason"], woke["mail"]) == ("mail", 1)


def _reader(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _following(seeded: Seeded, *args: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """`accord ARGS` started in the seeded project, and the lines it prints as they come."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord", *args],
        cwd=seeded.project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, _reader(proc.stdout)


def _next_event(lines: queue.Queue[str], deadline: float) -> dict[str, Any]:
    remaining = deadline - time.monotonic()
    assert remaining > 0, "events --follow printed nothing new before the deadline"
    try:
        event: dict[str, Any] = json.loads(lines.get(timeout=remaining))
    except queue.Empty:
        raise AssertionError("events --follow printed nothing new before the deadline") from None
    return event


def test_events_follow_prints_new_events(cli: Cli, seeded: Seeded) -> None:
    last = js(cli("events", "--json"))[-1]["seq"]
    proc, lines = _following(seeded, "events", "--follow", "--json", "--since", "2")
    try:
        deadline = time.monotonic() + 20
        seen = [_next_event(lines, deadline)["seq"]]
        while seen[-1] < last:
            seen.append(_next_event(lines, deadline)["seq"])
        assert seen == list(range(3, last + 1))
        ok(cli("task", "add", "arrives later"))
        event = _next_event(lines, deadline)
        assert event["seq"] == last + 1 and event["kind"] == "task_created"
        assert event["payload"]["title"] == "arrives later"
        assert proc.poll() is None  # still following
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_member_transcript_follow_prints_entries_as_they_are_saved(seeded: Seeded) -> None:
    from accord.types import TranscriptEntry, TranscriptKind

    def say(store: Store, text: str) -> None:
        entry = TranscriptEntry("bob", 1, TranscriptKind.MESSAGE, {"role": "user", "text": text})
        store.append_transcript("main", [entry])

    with open_store(str(store_path(seeded.project))) as store:
        say(store, "before")
        say(store, "saved already")
        proc, lines = _following(seeded, "member", "transcript", "bob", "-f", "--json")
        try:
            deadline = time.monotonic() + 20
            texts = [_next_event(lines, deadline)["body"]["text"] for _ in range(2)]
            assert texts == ["before", "saved already"]
            say(store, "arrives later")  # one JSON object per line, as it is saved
            later = _next_event(lines, deadline)
            assert (later["member"], later["body"]["text"]) == ("bob", "arrives later")
            assert proc.poll() is None  # still following
        finally:
            proc.kill()
            proc.wait(timeout=10)


def _json_commands() -> set[str]:
    """Every command whose parser takes --json, as "group verb" (or "command")."""
    import argparse

    from accord.cli._parser import build

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    found = set()
    for name, group in subcommands(build()).items():
        verbs = subcommands(group)
        for path, parser in ({f"{name} {v}": p for v, p in verbs.items()} or {name: group}).items():
            if any("--json" in a.option_strings for a in parser._actions):
                found.add(path)
    return found


def test_every_json_output_parses(
    cli: Cli, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCORD_TEAM", "main")  # "team create extra" makes a second team
    fence = str(seeded.fence)
    runs: dict[str, list[str]] = {
        "team create": ["team", "create", "extra"],
        "team list": ["team", "list"],
        "team show": ["team", "show", "main"],
        "member add": ["member", "add", "carol"],
        "member list": ["member", "list"],
        "member show": ["member", "show", "carol"],
        "member token": ["member", "token", "carol", "--rotate"],
        "task add": ["task", "add", "five"],
        "task list": ["task", "list"],
        "task show": ["task", "show", "1"],
        "task update": ["task", "update", "5", "--priority", "3"],
        "task claim": ["task", "claim", "--as", "carol", "--id", "5"],
        "task heartbeat": ["task", "heartbeat", "1", "--as", "alice", "--token", fence],
        "task complete": ["task", "complete", "1", "--as", "alice", "--token", fence],
        "task fail": ["task", "fail", "5", "--as", "carol", "--token", "2", "--reason", "no"],
        "task cancel": ["task", "cancel", "4"],
        "msg send": ["msg", "send", "--from", "bob", "--to", "alice", "hi"],
        "msg inbox": ["msg", "inbox", "--as", "bob"],
        "msg ack": ["msg", "ack", "--as", "bob", "1"],
        "msg list": ["msg", "list"],
        "events": ["events"],
        "wait": ["wait", "--as", "alice", "--timeout", "5"],
    }
    # Every command of the coordination core takes --json (later commands test their own).
    assert set(runs) <= _json_commands()
    for name, args in runs.items():
        r = cli(*args, "--json")
        assert r.code == 0, f"{name}: {r.err}"
        try:
            value = json.loads(r.out)
        except json.JSONDecodeError as e:
            raise AssertionError(f"{name} --json printed no JSON: {r.out[:200]!r}") from e
        items = value if isinstance(value, list) else [value]
        assert all(isinstance(i, dict) and i.get("v") == 1 for i in items), name


# errors: unknown things, names, duplicates, cycles, tokens ----------------

UNKNOWN_CASES: list[tuple[list[str], str]] = [
    (["task", "list", "--team", "nope"], "no team named 'nope'"),
    (["team", "show", "nope"], "no team named 'nope'"),
    (["team", "delete", "nope"], "no team named 'nope'"),
    (["member", "add", "carol", "--team", "nope"], "no team named 'nope'"),
    (["task", "claim", "--as", "nobody"], "no member named 'nobody'"),
    (["member", "show", "nobody"], "no member named 'nobody'"),
    (["member", "remove", "nobody"], "no member named 'nobody'"),
    (["member", "token", "nobody", "--rotate"], "no member named 'nobody'"),
    (["member", "heartbeat", "--as", "nobody"], "no member named 'nobody'"),
    (["msg", "send", "--from", "alice", "--to", "nobody", "hi"], "no member named 'nobody'"),
    (["msg", "send", "--from", "nobody", "--to", "alice", "hi"], "no member named 'nobody'"),
    (["msg", "inbox", "--as", "nobody"], "no member named 'nobody'"),
    (["msg", "ack", "--as", "nobody", "1"], "no member named 'nobody'"),
    (["msg", "list", "--member", "nobody"], "no member named 'nobody'"),
    (["task", "add", "x", "--assign", "nobody"], "no member named 'nobody'"),
    (["task", "update", "4", "--assign", "nobody"], "no member named 'nobody'"),
    (["wait", "--as", "nobody", "--timeout", "0.1"], "no member named 'nobody'"),
    (["task", "show", "99"], "no task #99"),
    (["task", "update", "99", "--title", "x"], "no task #99"),
    (["task", "claim", "--as", "bob", "--id", "99"], "no task #99"),
    (["task", "cancel", "99"], "no task #99"),
    (["task", "heartbeat", "99", "--as", "alice", "--token", "1"], "no task #99"),
    (["task", "complete", "99", "--as", "alice", "--token", "1"], "no task #99"),
    (["task", "fail", "99", "--as", "alice", "--token", "1", "--reason", "x"], "no task #99"),
    (["task", "add", "x", "--blocked-by", "99"], "no task #99"),
    (["task", "update", "4", "--add-blocker", "99"], "no task #99"),
    (["msg", "ack", "--as", "bob", "99"], "no message 99"),
    (["msg", "send", "--from", "bob", "--to", "alice", "x", "--reply-to", "99"], "99"),
]


def test_unknown_teams_members_tasks_and_messages_are_one_line_errors(
    cli: Cli, seeded: Seeded
) -> None:
    refusals(cli, seeded.project, UNKNOWN_CASES)


def test_invalid_names_are_refused(cli: Cli, seeded: Seeded) -> None:
    shapes = [
        (["team", "create", "{}"], "team name"),
        (["member", "add", "{}"], "member name"),
        (["member", "add", "carol", "--agent", "{}"], "agent definition name"),
        (["task", "list", "--team", "{}"], "team name (from --team)"),
        (["team", "show", "{}"], "team name (from --team)"),
    ]
    cases = [
        ([a.replace("{}", bad) for a in args], f"not a valid {what}: use 1-40 characters")
        for args, what in shapes
        for bad in BAD_NAMES
    ]
    refusals(cli, seeded.project, cases)


def test_a_40_character_name_is_fine(cli: Cli, seeded: Seeded) -> None:
    ok(cli("member", "add", "a" * 40))
    ok(cli("team", "create", "0" + "_-" * 19 + "z"))


def test_duplicate_names_are_refused(cli: Cli, seeded: Seeded) -> None:
    refusals(
        cli,
        seeded.project,
        [
            (["team", "create", "main"], "a team named 'main' already exists"),
            (["member", "add", "alice"], "already has a member named 'alice'"),
            (["init", "--team", "main"], "a team named 'main' already exists"),
        ],
    )


def test_cycles_and_self_blocks_are_refused_with_the_cycle_named(cli: Cli, seeded: Seeded) -> None:
    ok(cli("task", "add", "five", "--blocked-by", "3"))
    before = snapshot(cli, seeded.project)
    one_error(cli("task", "update", "2", "--add-blocker", "2"), 2, "#2 cannot block itself")
    one_error(cli("task", "update", "2", "--add-blocker", "3"), 2, "cycle", "#2 -> #3 -> #2")
    one_error(cli("task", "update", "2", "--add-blocker", "5"), 2, "cycle", "#2 -> #3 -> #5 -> #2")
    # One good blocker beside a cycle-closing one: the whole update is refused.
    one_error(cli("task", "update", "2", "--add-blocker", "4", "--add-blocker", "3"), 2, "cycle")
    assert snapshot(cli, seeded.project) == before


def test_blockers_of_a_running_task_cannot_change(cli: Cli, seeded: Seeded) -> None:
    before = snapshot(cli, seeded.project)
    one_error(cli("task", "update", "1", "--add-blocker", "4"), 2, "only while pending")
    assert snapshot(cli, seeded.project) == before


def test_wrong_and_stale_tokens_are_refused(cli: Cli, seeded: Seeded) -> None:
    fence = str(seeded.fence)
    before = snapshot(cli, seeded.project)
    for verb in (["heartbeat"], ["complete"], ["fail", "--reason", "x"]):
        one_error(
            cli("task", verb[0], "1", "--as", "alice", "--token", "999", *verb[1:]),
            2,
            "token 999 is not the current claim on task #1",
        )
    # A task that nobody holds.
    one_error(
        cli("task", "complete", "4", "--as", "alice", "--token", fence), 2, "nobody has claimed it"
    )
    assert snapshot(cli, seeded.project) == before
    # The claim moves on: the old token is stale, even for the same member.
    ok(cli("task", "fail", "1", "--as", "alice", "--token", fence, "--reason", "again", "--retry"))
    fresh = js(cli("task", "claim", "--as", "alice", "--id", "1", "--json"))["fencing_token"]
    assert fresh != seeded.fence
    before = snapshot(cli, seeded.project)
    one_error(
        cli("task", "complete", "1", "--as", "alice", "--token", fence),
        2,
        f"token {fence} is not the current claim",
        f"the current one is {fresh}",
    )
    assert snapshot(cli, seeded.project) == before


def test_a_token_whose_lease_ran_out_is_stale(cli: Cli, seeded: Seeded) -> None:
    claim = js(cli("task", "claim", "--as", "bob", "--id", "4", "--lease", "0.2", "--json"))
    deadline = time.monotonic() + 10
    while time.time() <= claim["lease_expires_at"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    before = snapshot(cli, seeded.project)
    one_error(
        cli("task", "complete", "4", "--as", "bob", "--token", str(claim["fencing_token"])),
        2,
        "lease expired",
        "claim it again",
    )
    assert snapshot(cli, seeded.project) == before


def test_completing_a_task_someone_else_holds_is_refused(cli: Cli, seeded: Seeded) -> None:
    fence = str(seeded.fence)
    before = snapshot(cli, seeded.project)
    for verb in (["complete"], ["heartbeat"], ["fail", "--reason", "mine now"]):
        one_error(
            cli("task", verb[0], "1", "--as", "bob", "--token", fence, *verb[1:]),
            2,
            "held by alice, not bob",
        )
    assert snapshot(cli, seeded.project) == before
    assert js(cli("task", "show", "1", "--json"))["owner"] == "alice"


BAD_INPUT_CASES: list[tuple[list[str], str]] = [
    (["task", "show", "abc"], "not a task id"),
    (["task", "show", "0"], "ids start at 1"),
    (["task", "claim", "--as", "bob", "--lease", "0"], "more than 0 seconds"),
    (["task", "claim", "--as", "bob", "--lease", "soon"], "not a number of seconds"),
    (["task", "add", "x", "--max-attempts", "0"], "must be 1 or more"),
    (["task", "list", "--status", "done"], "invalid choice"),
    (["task", "update", "4"], "nothing to change"),
    (["task", "update", "4", "--remove-blocker", "1"], "not blocked by #1"),
    (["task", "add", "   "], "needs a title"),
    (["task", "fail", "1", "--as", "alice", "--token", "1", "--reason", " "], "reason"),
    (["task", "claim", "--as", "bob", "--id", "2"], "not ready"),
    (["task", "claim", "--as", "bob", "--id", "1"], "held by alice"),
    (["msg", "send", "--from", "alice", "--to", "bob", "  "], "needs a body"),
    (["member", "token", "bob"], "--rotate"),
    (["member", "add", "carol", "--role", "boss"], "invalid choice"),
    (["team", "create"], "required"),
    (["task"], "required: VERB"),
    ([], "required: COMMAND"),
    (["bogus"], "invalid choice: 'bogus'"),
]


def test_bad_input_is_one_line_exit_2(cli: Cli, seeded: Seeded) -> None:
    refusals(cli, seeded.project, BAD_INPUT_CASES)


# which team ---------------------------------------------------------------


@pytest.fixture
def two_teams(cli: Cli, project: Path) -> Path:
    ok(cli("init"))
    for team in ("alpha", "beta"):
        ok(cli("team", "create", team))
        ok(cli("task", "add", f"task of {team}", "--team", team))
    return project


def _titles(r: Result) -> list[str]:
    return [t["title"] for t in js(r)]


def test_the_only_team_is_used(cli: Cli, project: Path) -> None:
    ok(cli("init"))
    ok(cli("team", "create", "solo"))
    ok(cli("task", "add", "x"))
    assert _titles(cli("task", "list", "--json")) == ["x"]


def test_no_team_at_all_is_an_error(cli: Cli, project: Path) -> None:
    ok(cli("init"))
    one_error(cli("task", "list"), 2, "no teams yet", "accord team create")


def test_several_teams_without_a_choice_is_an_error_listing_them(cli: Cli, two_teams: Path) -> None:
    before = dump(store_path(two_teams))
    one_error(cli("task", "add", "where?"), 2, "2 teams (alpha, beta)", "--team", "ACCORD_TEAM")
    assert dump(store_path(two_teams)) == before


def test_team_from_flag_env_and_config_in_that_order(
    cli: Cli, two_teams: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _titles(cli("task", "list", "--team", "beta", "--json")) == ["task of beta"]
    (two_teams / "accord.toml").write_text('[team]\ndefault = "alpha"\n')
    assert _titles(cli("task", "list", "--json")) == ["task of alpha"]
    monkeypatch.setenv("ACCORD_TEAM", "beta")
    assert _titles(cli("task", "list", "--json")) == ["task of beta"]
    assert _titles(cli("task", "list", "--team", "alpha", "--json")) == ["task of alpha"]
    monkeypatch.setenv("ACCORD_TEAM", "gamma")
    one_error(cli("task", "list"), 2, "no team named 'gamma'", "alpha, beta")
    monkeypatch.setenv("ACCORD_TEAM", "../x")
    one_error(cli("task", "list"), 2, "'../x' is not a valid team name (from ACCORD_TEAM)")
    monkeypatch.delenv("ACCORD_TEAM")
    (two_teams / "accord.toml").write_text('[team]\ndefault = "gamma"\n')
    one_error(cli("task", "list"), 2, "no team named 'gamma'")


# which store --------------------------------------------------------------


def test_store_is_found_walking_up_from_a_subfolder(
    cli: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(cli("init", "--team", "main"))
    ok(cli("task", "add", "from the top"))
    deep = project / "src" / "pkg" / "deeper"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert _titles(cli("task", "list", "--json")) == ["from the top"]
    ok(cli("task", "add", "from below"))
    assert not (deep / ".accord").exists()
    monkeypatch.chdir(project)
    assert _titles(cli("task", "list", "--json")) == ["from the top", "from below"]


def test_store_and_env_override_discovery(
    cli: Cli, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(cli("init", "--team", "here"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = elsewhere / "other.db"
    ok(cli("init", "--store", str(other), "--team", "there"))
    assert other.is_file()

    def teams(*extra: str) -> list[str]:
        return [t["name"] for t in js(cli("team", "list", "--json", *extra))]

    assert teams() == ["here"]
    assert teams("--store", str(other)) == ["there"]
    monkeypatch.setenv("ACCORD_STORE", str(other))
    assert teams() == ["there"]
    ok(cli("task", "add", "via env"))
    assert teams("--store", str(store_path(project))) == ["here"]  # the flag beats the env
    monkeypatch.setenv("ACCORD_STORE", str(tmp_path / "missing.db"))
    one_error(cli("team", "list"), 2, "no store at", "missing.db")
    monkeypatch.delenv("ACCORD_STORE")
    assert _titles(cli("task", "list", "--store", str(other), "--json")) == ["via env"]


def test_no_project_is_a_clear_error(cli: Cli, project: Path) -> None:
    one_error(cli("team", "list"), 2, "no accord project", "accord init")
    assert list(project.iterdir()) == []


# identity -----------------------------------------------------------------


def _as_agent(monkeypatch: pytest.MonkeyPatch, member: str, token: str) -> None:
    monkeypatch.setenv("ACCORD_MEMBER", member)
    monkeypatch.setenv("ACCORD_TOKEN", token)


AS_CASES: list[list[str]] = [
    ["task", "claim", "--as", "{m}"],
    ["task", "heartbeat", "1", "--as", "{m}", "--token", "1"],
    ["task", "complete", "1", "--as", "{m}", "--token", "1"],
    ["task", "fail", "1", "--as", "{m}", "--token", "1", "--reason", "x"],
    ["msg", "send", "--from", "{m}", "--to", "alice", "hi"],
    ["msg", "inbox", "--as", "{m}"],
    ["msg", "ack", "--as", "{m}", "1"],
    ["member", "heartbeat", "--as", "{m}"],
    ["wait", "--as", "{m}", "--timeout", "0.1"],
    ["member", "token", "{m}", "--rotate"],
]


def _as_bob(args: list[str]) -> list[str]:
    return [a.replace("{m}", "bob") for a in args]


def test_an_agent_cannot_act_as_another_member(
    cli: Cli, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(cli, seeded.project)
    _as_agent(monkeypatch, "alice", seeded.tokens["alice"])
    db = store_path(seeded.project)
    for args in AS_CASES:
        rows = dump(db)
        one_error(cli(*_as_bob(args)), 2, "acts for alice (ACCORD_MEMBER); it cannot act as bob")
        assert dump(db) == rows, args
    monkeypatch.delenv("ACCORD_MEMBER")
    monkeypatch.delenv("ACCORD_TOKEN")
    assert snapshot(cli, seeded.project) == before


def test_an_agent_with_a_wrong_or_missing_token_is_refused(
    cli: Cli, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(cli, seeded.project)
    db = store_path(seeded.project)
    for token, needle in (
        (seeded.tokens["alice"], "ACCORD_TOKEN is not bob's token in team 'main'"),
        ("", "ACCORD_MEMBER=bob is set but ACCORD_TOKEN is not"),
    ):
        _as_agent(monkeypatch, "bob", token)
        for args in AS_CASES:
            rows = dump(db)
            one_error(cli(*_as_bob(args)), 2, needle)
            assert dump(db) == rows, args
    monkeypatch.delenv("ACCORD_MEMBER")
    monkeypatch.delenv("ACCORD_TOKEN")
    assert snapshot(cli, seeded.project) == before


def test_an_agent_with_its_own_token_works(
    cli: Cli, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_agent(monkeypatch, "alice", seeded.tokens["alice"])
    fence = str(seeded.fence)
    ok(cli("task", "heartbeat", "1", "--as", "alice", "--token", fence))
    ok(cli("task", "complete", "1", "--as", "alice", "--token", fence))
    ok(cli("msg", "send", "--from", "alice", "--to", "bob", "done"))
    ok(cli("msg", "inbox", "--as", "alice"))
    ok(cli("member", "heartbeat", "--as", "alice", "--status", "working"))
    added = js(cli("task", "add", "follow-up", "--json"))
    assert added["created_by"] == "alice"  # the verified agent is recorded as the actor
    claimed = js(cli("task", "claim", "--as", "alice", "--json"))
    assert claimed["task"]["owner"] == "alice"
    fresh = js(cli("member", "token", "alice", "--rotate", "--json"))["token"]
    one_error(cli("msg", "inbox", "--as", "alice"), 2, "ACCORD_TOKEN is not alice's token")
    monkeypatch.setenv("ACCORD_TOKEN", fresh)
    ok(cli("msg", "inbox", "--as", "alice"))


def test_an_agent_cannot_delete_a_team_it_is_not_in(
    cli: Cli, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(cli("team", "create", "other"))
    before = dump(store_path(seeded.project))
    _as_agent(monkeypatch, "alice", seeded.tokens["alice"])
    one_error(cli("team", "delete", "other", "--force"), 2, "no member named 'alice'")
    assert dump(store_path(seeded.project)) == before


def test_agent_writes_without_as_still_need_a_valid_token(
    cli: Cli, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(cli, seeded.project)
    _as_agent(monkeypatch, "alice", "acc_not-the-token")
    for args in (
        ["task", "add", "sneaky"],
        ["task", "cancel", "4"],
        ["task", "update", "4", "--priority", "9"],
        ["member", "add", "eve"],
        ["member", "remove", "bob"],
        ["team", "delete", "main", "--force"],
    ):
        one_error(cli(*args), 2, "ACCORD_TOKEN is not alice's token")
    monkeypatch.delenv("ACCORD_MEMBER")
    one_error(cli("task", "add", "sneaky"), 2, "ACCORD_TOKEN is set without ACCORD_MEMBER")
    monkeypatch.setenv("ACCORD_MEMBER", "alice")
    monkeypatch.delenv("ACCORD_TOKEN")
    one_error(cli("task", "claim", "--as", "alice"), 2, "ACCORD_TOKEN is not")
    monkeypatch.delenv("ACCORD_MEMBER")
    assert snapshot(cli, seeded.project) == before


# the real console entry ---------------------------------------------------


def test_version_and_help_through_a_real_process(project: Path) -> None:
    from accord import __version__

    r = accord_process("--version", cwd=project)
    assert r.returncode == 0 and r.stdout.strip() == f"accord {__version__}"
    r = accord_process("--help", cwd=project)
    assert r.returncode == 0
    for group in ("init", "team", "member", "task", "msg", "events", "wait"):
        assert group in r.stdout
    assert "Exit codes" in r.stdout


def test_help_of_every_group_and_verb_in_process(cli: Cli) -> None:
    verbs = {
        "team": ["create", "list", "show", "delete"],
        "member": ["add", "list", "show", "remove", "token", "heartbeat"],
        "task": [
            "add", "list", "show", "update", "claim", "heartbeat", "complete", "fail", "cancel",
        ],
        "msg": ["send", "inbox", "ack", "list"],
    }  # fmt: skip
    for group, names in verbs.items():
        with pytest.raises(SystemExit) as exit_:
            cli(group, "--help")
        assert exit_.value.code == 0
        for verb in names:
            with pytest.raises(SystemExit) as exit_:
                cli(group, verb, "--help")
            assert exit_.value.code == 0
    for command in ("init", "events", "wait"):
        with pytest.raises(SystemExit) as exit_:
            cli(command, "--help")
        assert exit_.value.code == 0


def test_group_help_through_a_real_process(project: Path) -> None:
    procs = {
        group: subprocess.Popen(
            [sys.executable, "-m", "accord", group, "--help"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for group in ("team", "member", "task", "msg")
    }
    for group, proc in procs.items():
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert f"accord {group}" in out


def test_a_whole_flow_through_real_processes(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    token = js(cli("member", "add", "alice", "--json"))["token"]
    ok(cli("task", "add", "real"))
    env = {**os.environ, "ACCORD_MEMBER": "alice", "ACCORD_TOKEN": token}
    claim = accord_process("task", "claim", "--as", "alice", "--json", cwd=project, env=env)
    assert claim.returncode == 0, claim.stderr
    fence = str(json.loads(claim.stdout)["fencing_token"])
    wrong = {**env, "ACCORD_TOKEN": "acc_wrong"}
    r = accord_process(
        "task", "complete", "1", "--as", "alice", "--token", fence, cwd=project, env=wrong
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    r = accord_process(
        "task", "complete", "1", "--as", "alice", "--token", fence, cwd=project, env=env
    )
    assert r.returncode == 0, r.stderr
    assert js(cli("task", "show", "1", "--json"))["status"] == "completed"
    r = accord_process("task", "claim", "--as", "alice", cwd=project, env=env)
    assert r.returncode == 3 and r.stderr.startswith("nothing to do: ")
