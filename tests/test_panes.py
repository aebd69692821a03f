"""A team in tmux panes (`--display tmux`, `accord watch --tmux`) and `accord chat`, on a
real tmux server of the test's own (a private socket, killed at the end), and real runs.

The promises: a pane per member follows its transcript, the board and the lead's
conversation have panes of their own, a member that stops gets its pane marked;
outside tmux a session is started and the person told how to attach; no tmux is
refused before anything starts; the person's typed line reaches the lead and the
lead's reply is shown, escaped.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from accord.errors import AccordError
from accord.store import open_store
from accord.team.mailbox import Mailbox
from accord.testing.cli import accord, accord_out, calls, clean_env, rules, start
from accord.testing.wait import until
from conftest import LEAD_FINISH, LEAD_PLAN, MATE, db

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def tmux() -> Iterator[str]:
    """A private tmux server's socket (a short path: sockets have a length limit), with
    an empty configuration; the server is killed at the end, and the panes with it."""
    folder = tempfile.mkdtemp(prefix="accord-tmux-")
    socket = str(Path(folder) / "s")
    subprocess.run(
        ["tmux", "-S", socket, "-f", "/dev/null", "new-session", "-d", "-s", "holder"],
        check=True,
        timeout=10,
    )
    try:
        yield socket
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def outside(socket: str) -> dict[str, str]:
    """The environment of a person's terminal outside tmux, with accord's panes on ``socket``."""
    return {"ACCORD_TMUX_SOCKET": socket, "TMUX": "", "TMUX_PANE": ""}


def panes(socket: str, session: str) -> dict[str, str]:
    """Title -> pane id of every pane in ``session``'s window."""
    done = subprocess.run(
        [
            "tmux",
            "-S",
            socket,
            "list-panes",
            "-t",
            f"={session}:",
            "-F",
            "#{pane_id} #{pane_title}",
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if done.returncode != 0:
        return {}
    return {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in done.stdout.splitlines()}


def screen(socket: str, pane: str) -> str:
    return subprocess.run(
        ["tmux", "-S", socket, "capture-pane", "-p", "-J", "-S", "-200", "-t", pane],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout


def test_a_tmux_run_shows_each_member_in_its_pane_and_marks_who_stopped(
    root: Path, tmux: str
) -> None:
    lead = rules(root / "lead.json", [LEAD_PLAN, LEAD_FINISH], "Waiting for the team.")
    mate = rules(root / "mate.json", MATE)
    done = accord(
        root,
        "run",
        "make c.txt",
        "--model",
        lead,
        "--teammate-model",
        mate,
        "--display",
        "tmux",
        env=outside(tmux),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"attach with: tmux -S {tmux} attach -t accord-main" in done.stdout
    assert "finished: c.txt made" in done.stdout  # the story, told beside the panes

    # Every member stopped when the run finished: the keeper marks each one's pane.
    stopped = {"lead (stopped)", "alice (stopped)", "bob (stopped)"}
    until(lambda: stopped <= set(panes(tmux, "accord-main")), timeout=15)
    assert set(panes(tmux, "accord-main")) == {"chat with lead", "board", *stopped}
    shown = panes(tmux, "accord-main")
    until(lambda: "write_file" in screen(tmux, shown["alice (stopped)"]), timeout=10)
    assert "a.txt" in screen(tmux, shown["alice (stopped)"])
    until(lambda: "b.txt" in screen(tmux, shown["bob (stopped)"]), timeout=10)
    until(lambda: "combine into c.txt" in screen(tmux, shown["board"]), timeout=10)
    until(lambda: "talking with lead" in screen(tmux, shown["chat with lead"]), timeout=10)


def test_watch_outside_tmux_starts_a_session_and_says_how_to_attach(root: Path, tmux: str) -> None:
    accord_out(root, "init", "--team", "main")
    accord_out(root, "member", "add", "alice")
    done = accord(root, "watch", "--tmux", env=outside(tmux))
    assert done.returncode == 0, done.stderr
    assert f"attach with: tmux -S {tmux} attach -t accord-main" in done.stdout
    assert f"close them with: tmux -S {tmux} kill-session -t accord-main" in done.stdout
    assert set(panes(tmux, "accord-main")) == {"board", "alice"}
    # A second watch finds the session and doubles nothing.
    again = accord(root, "watch", "--tmux", env=outside(tmux))
    assert again.returncode == 0, again.stderr
    assert sorted(panes(tmux, "accord-main")) == ["alice", "board"]
    until(lambda: "no tasks" in screen(tmux, panes(tmux, "accord-main")["board"]), timeout=10)


def test_no_tmux_is_refused_before_anything_starts(root: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    refused = accord(root, "run", "goal", "--display", "tmux", env={"PATH": str(empty)})
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: panes in tmux need tmux 3.x")
    assert refused.stdout == ""
    assert list((root / ".accord").iterdir()) == []  # no store made, nothing started


def test_chat_sends_a_typed_line_and_shows_the_reply_escaped(root: Path) -> None:
    accord_out(root, "init", "--team", "main")
    accord_out(root, "member", "add", "lead", "--role", "lead")
    lines: list[str] = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord", "chat"],
        cwd=root,
        env=clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    out = proc.stdout

    def read() -> None:
        for line in out:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        until(lambda: any("talking with lead" in x for x in lines), timeout=10)
        proc.stdin.write("please hurry\n")
        proc.stdin.flush()
        with open_store(db(root)) as store:
            mail = Mailbox(store, "main")
            until(
                lambda: any(
                    m.sender == "person" and m.body == "please hurry" for m in mail.history("lead")
                ),
                timeout=10,
            )
            mail.send("lead", "person", "on it \x1b[31mnow")
        until(lambda: any("lead: on it \\x1b[31mnow" in x for x in lines), timeout=10)
        assert any("you: please hurry" in x for x in lines)
        proc.stdin.close()  # Ctrl+D: it ends quietly
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not any("Traceback" in x or "\x1b" in x for x in lines)


def test_watch_adds_a_pane_as_a_teammate_spawns_and_ends_with_the_run(
    root: Path, tmux: str
) -> None:
    waits = "until [ -e {0} ]; do sleep 0.02; done"
    lead = rules(
        root / "lead.json",
        [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(("bash", {"command": waits.format(root / "spawn")})),
            },
            {
                "if": "[exit code 0]",
                "once": True,
                "then": calls(
                    ("spawn_teammate", {"name": "alice", "instructions": "Do your task."}),
                    ("task_create", {"title": "wait for go", "assignee": "alice"}),
                ),
            },
            {"if": "1 completed", "then": calls(("finish", {"summary": "went"}))},
        ],
        "Waiting.",
    )
    mate = rules(
        root / "mate.json",
        [
            {
                "if": "Your task #1",
                "then": calls(("bash", {"command": waits.format(root / "go")})),
            },
            {
                "if": "[exit code 0]",
                "then": calls(("task_complete", {"task_id": 1, "result": "went"})),
            },
        ],
    )
    run = start(root, "run", "go", "--model", lead, "--teammate-model", mate, "--display", "plain")
    watch = None
    try:
        until(lambda: lead_is_up(root), timeout=20)
        watch = start(root, "watch", "--tmux", env=outside(tmux))
        until(lambda: {"board", "lead"} <= set(panes(tmux, "accord-main")), timeout=10)
        assert "alice" not in panes(tmux, "accord-main")
        (root / "spawn").touch()
        until(lambda: "alice" in panes(tmux, "accord-main"), timeout=10)
        (root / "go").touch()
        out, _ = watch.communicate(timeout=30)
        assert watch.returncode == 0, out
        assert "attach with:" in out and "run ended" in out
        assert {"lead (stopped)", "alice (stopped)"} <= set(panes(tmux, "accord-main"))
        assert run.wait(timeout=30) == 0
    finally:
        for proc in (run, watch):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def lead_is_up(root: Path) -> bool:
    """The run is going on (its store and team may not be there yet)."""
    if not Path(db(root)).exists():
        return False
    try:
        with open_store(db(root)) as store:
            run = store.get_run("main")
    except AccordError:
        return False
    return run is not None and run.status == "running"


def test_the_board_follows_the_store_reprinting_only_what_changed(root: Path) -> None:
    accord_out(root, "init", "--team", "main")
    board = start(root, "task", "list", "--follow")
    assert board.stdout is not None
    out = board.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(out), daemon=True)
    reader.start()
    try:
        until(lambda: any("no tasks" in x for x in lines), timeout=10)
        accord_out(root, "task", "add", "paint the \x1b[2Jfence")
        until(lambda: any("#1" in x for x in lines), timeout=10)
        accord_out(root, "member", "add", "alice")  # the store moves, the board does not
        accord_out(root, "task", "add", "second")
        until(lambda: any("#2" in x for x in lines), timeout=10)
    finally:
        board.kill()
        board.wait()
    # To a pipe: a separator between boards, never a screen clear; two changes, two more.
    assert sum(x.startswith("----") for x in lines) == 2
    assert not any("\x1b" in x for x in lines)
    assert any("paint the fence" in x for x in lines)
