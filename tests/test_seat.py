"""The person's seat (``accord watch``, the app of ``accord run``): driven by Textual's
pilot against real stores, and against a scripted team running in real processes.

What the person does is checked where it lands: a message typed in the app is in the
member's mailbox, and then in its transcript once the member read it; a stop asked
for stops the member; an approved plan is an approval message the member takes."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Label, Static, Tree

from accord.store import open_store
from accord.team import Team
from accord.team.permits import Permits
from accord.testing.cli import calls, clean_env, rules, start
from accord.testing.wait import until
from accord.tui.app import FOLD_LINES, NewChannel, Seat
from accord.tui.feed import CHANNEL_SHOWN
from accord.types import (
    PERSON,
    MemberRole,
    MemberStatus,
    MessageKind,
    NewTask,
    TranscriptEntry,
    TranscriptKind,
    UsageRecord,
)
from conftest import db

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def settle(pilot: Any, ok: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the app work until ``ok()`` holds (the pilot's clock, not a sleep)."""
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, "the app never got there"
        await pilot.pause(0.05)


def screen_text(app: Seat) -> str:
    """Every Static's and table's text on the screen, for text assertions."""
    out = []
    for widget in app.screen.query(Static):
        out.append(str(widget.render()))
    for table in app.screen.query(DataTable):
        for row in range(table.row_count):
            out.append(" ".join(str(c) for c in table.get_row_at(row)))
    return "\n".join(out)


def rendered(content: Any) -> str:
    """A rich renderable as the terminal shows it, as text."""
    from rich.console import Console

    console = Console(width=120, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(content)
    return console.export_text()


def tree_labels(app: Seat) -> list[str]:
    tree = app.query_one("#transcript", Tree)
    found: list[str] = []

    def walk(node: Any) -> None:
        for child in node.children:
            found.append(str(child.label))
            walk(child)

    walk(tree.root)
    return found


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[str, Team]]:
    """A store with a lead and three teammates, a board, and alice's transcript holding
    an escape sequence and a 10 MB tool result."""
    location = str(tmp_path / "accord.db")
    store = open_store(location, create=True)
    store.create_team("main")
    team = Team(store, "main")
    team.roster.add("lead", role=MemberRole.LEAD)
    for name in ("alice", "bob", "carol"):
        team.roster.add(name)
    first = team.board.add(NewTask(title="parse \x1b[31mheaders", description="both formats"))
    team.board.add(NewTask(title="write docs", blocked_by=(first.id,)))
    team.log.append_transcript(
        [
            TranscriptEntry("alice", 1, TranscriptKind.SESSION, {"event": "start", "why": "go"}),
            TranscriptEntry(
                "alice",
                1,
                TranscriptKind.MESSAGE,
                {
                    "role": "assistant",
                    "text": "Looking \x1b]0;pwned\x07 first.\nsecond line",
                    "tool_calls": [
                        {"id": "c1", "name": "bash", "arguments": {"command": "ls"}, "raw": ""}
                    ],
                },
            ),
            TranscriptEntry(
                "alice",
                1,
                TranscriptKind.MESSAGE,
                {
                    "role": "user",
                    "tool_results": [
                        {
                            "call_id": "c1",
                            "name": "bash",
                            "content": "line of output\n" * 700_000,
                            "error": False,
                        }
                    ],
                },
            ),
        ]
    )
    team.runs.record_usage(UsageRecord("alice", "openai:gpt-4o", 1000, 200, cost_usd=0.25))
    team.runs.record_usage(UsageRecord("bob", "local:qwen", 500, 50, task_id=first.id))
    yield location, team
    store.close()


# the app on a store ------------------------------------------------------------------


def test_select_focus_fold_escape_talk_and_the_board(seeded: tuple[str, Team]) -> None:
    location, team = seeded

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(150, 40)) as pilot:
            await settle(pilot, lambda: app.shown_rows == ["lead", "alice", "bob", "carol"])
            await pilot.press("shift+down")  # as in Claude Code
            assert app.selected() == "alice"
            await pilot.press("enter")
            await settle(pilot, lambda: app.entries_shown == 3)
            labels = tree_labels(app)
            # Escapes are shown written out, never sent to the terminal.
            assert any("\\x1b]0;pwned\\x07" in x for x in labels), labels
            assert not any("\x1b" in x for x in labels)
            # The 10 MB result is one folded line with its size, unfolding to a bounded
            # number of lines that say where it is whole.
            (result,) = [x for x in labels if "← bash" in x]
            assert "[10,500,000 chars]" in result and len(result) < 200
            tree = app.query_one("#transcript", Tree)
            node = [n for n in tree.root.children if "← bash" in str(n.label)][0]
            assert len(node.children) == FOLD_LINES + 1
            assert "accord member transcript alice --json" in str(node.children[-1].label)
            # Typing writes to the member in focus, from the person.
            await pilot.press(*"use the new parser", "enter")
            await settle(pilot, lambda: bool(team.mailbox.history("alice")))
            (sent,) = team.mailbox.history("alice")
            assert (sent.sender, sent.body) == (PERSON, "use the new parser")
            # Ctrl+T: the board, live, with blockers and attempts; Enter tells a task's story.
            await pilot.press("ctrl+t")
            board = app.query_one("#board", DataTable)
            assert board.row_count == 2
            assert "#1" in " ".join(str(c) for c in board.get_row_at(1))
            team.board.add(NewTask(title="a third"))
            await settle(pilot, lambda: board.row_count == 3)
            await pilot.press("enter")
            await settle(pilot, lambda: app.screen.__class__.__name__ == "Story")
            story = str(app.screen.query_one(Static).render())
            assert "\\x1b[31mheaders" in story and "both formats" in story
            await pilot.press("escape")
            await pilot.press("ctrl+t")  # toggles back
            assert app.query_one("#right").current == "focus"  # type: ignore[attr-defined]
            # Ctrl+O: costs per member, task and model, unpriced calls said, not zero.
            await pilot.press("ctrl+o")
            costs = rendered(app.query_one("#costs", Static).content)
            assert "spent $0.2500 (+1 unpriced calls)" in costs
            for needle in ("per member", "per task", "per model", "openai:gpt-4o", "#1"):
                assert needle in costs, needle
            await pilot.press("escape")  # back to the member in focus
            assert app.query_one("#right").current == "focus"  # type: ignore[attr-defined]

    run(drive())


def test_a_members_reply_streams_under_its_transcript_while_its_model_writes(
    seeded: tuple[str, Team],
) -> None:
    location, team = seeded

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(150, 40)) as pilot:
            await settle(pilot, lambda: bool(app.shown_rows))
            app.open_member("bob")
            live = app.query_one("#live", Static)
            team.log.publish_live("bob", 1, "Let me read the \x1b[2J parser", ["read_file"])
            await settle(pilot, lambda: "Let me read the" in str(live.render()))
            assert "\\x1b[2J parser" in str(live.render())
            assert "calling: read_file" in str(live.render())
            team.log.publish_live("bob", 1, "Let me read the parser first, then", ["read_file"])
            await settle(pilot, lambda: "then" in str(live.render()))
            team.log.clear_live("bob")  # the reply is saved: the transcript shows it
            await settle(pilot, lambda: str(live.render()).strip() == "")

    run(drive())


def test_channel_posts_to_the_person_show_in_the_conversation_with_their_channel(
    seeded: tuple[str, Team],
) -> None:
    location, team = seeded
    team.channels.create("#design", PERSON)
    team.channels.join("#design", "alice")
    team.channels.post("#design", "alice", "SQLite first")

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(150, 40)) as pilot:
            log = app.query_one("#chat-log")
            await settle(pilot, lambda: len(log.lines) > 0)  # type: ignore[attr-defined]
            shown = "\n".join(str(x.text) for x in log.lines)  # type: ignore[attr-defined]
            assert "alice → you in #design" in shown and "SQLite first" in shown

    run(drive())


def test_idle_members_fold_away_and_the_events_pane_filters(seeded: tuple[str, Team]) -> None:
    location, team = seeded
    for name in ("bob", "carol"):
        team.roster.heartbeat(name, status=MemberStatus.IDLE)

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(150, 40)) as pilot:
            await settle(pilot, lambda: app.shown_rows == ["lead", "alice"])
            assert "+ 2 idle: bob, carol  (Ctrl+F shows them)" in screen_text(app)
            await pilot.press("ctrl+f")
            assert app.shown_rows == ["lead", "alice", "bob", "carol"]
            await pilot.press("ctrl+e")
            await pilot.press(*"task_created")
            log = app.query_one("#event-log")
            await settle(pilot, lambda: len(log.lines) == 2)  # type: ignore[attr-defined]

    run(drive())


def test_a_terminal_too_small_gets_a_message_not_a_broken_layout(
    seeded: tuple[str, Team],
) -> None:
    location, _ = seeded

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(50, 12)) as pilot:
            await pilot.pause(0.1)
            small = app.query_one("#small", Static)
            assert small.display and "needs at least 60×16" in str(small.render())
            assert not app.query_one("#main").display
            await pilot.resize_terminal(120, 30)
            await pilot.pause(0.1)
            assert not small.display and app.query_one("#main").display

    run(drive())


def test_the_person_approves_a_plan_and_denies_a_permission_from_the_banner(
    seeded: tuple[str, Team],
) -> None:
    location, team = seeded
    (plan,) = team.mailbox.send(
        "alice", "lead", "1. read\n2. write", kind=MessageKind.PLAN_APPROVAL_REQUEST
    )

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(150, 40)) as pilot:
            await settle(pilot, lambda: bool(app.asks))
            assert "alice asks lead for a plan: 1. read 2. write" in screen_text(app)
            await pilot.press("ctrl+y")
            await pilot.press(*"go ahead", "enter")
            await settle(pilot, lambda: not app.asks)
            (answer,) = [
                m
                for m in team.mailbox.history("alice")
                if m.kind.value.startswith("plan_app") and m.sender == PERSON
            ]
            assert answer.reply_to == plan.id and answer.body == "approved: go ahead"
            assert not app.query_one("#asks", Static).display
            # A permission ask, later: denied with a reason, which the asker reads.
            ask = Permits(team).ask(
                "bob",
                PERSON,
                tool="bash",
                target="rm -rf build",
                rule="Bash(rm:*)",
                source="accord.toml",
                timeout=600,
            )
            await settle(pilot, lambda: bool(app.asks))
            assert "bob asks person for permission: bash: rm -rf build" in screen_text(app)
            await pilot.press("ctrl+n")
            await pilot.press(*"not the build dir", "enter")
            await settle(pilot, lambda: not app.asks)
            (denied,) = [m for m in team.mailbox.history("bob") if m.reply_to == ask.id]
            assert denied.body == "denied: not the build dir"

    run(drive())


# a scripted team in real processes -----------------------------------------------------

GREET = {"if": "use the new parser", "then": {"text": "Understood, switching parser."}}
LEAD = [
    {
        "if": "# First wake",
        "once": True,
        "then": calls(("spawn_teammate", {"name": "alice", "instructions": "Wait for word."})),
    },
]


def test_the_app_steers_a_running_team_and_survives_its_supervisor_killed(
    root: Path,
) -> None:
    lead = rules(root / "lead.json", LEAD, "Waiting.")
    mate = rules(root / "mate.json", [GREET], "Nothing to do.")
    sup = start(
        root, "run", "wait", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    try:
        until(lambda: Path(db(root)).exists())
        store = open_store(db(root))
        team = Team(store, "main")

        def alice_waits() -> bool:
            found = {m.name: m for m in team.roster.list()}.get("alice")
            return found is not None and found.status == MemberStatus.IDLE

        until(lambda: bool(store.list_teams()) and alice_waits(), timeout=60)

        async def drive() -> None:
            app = Seat(db(root), "main")
            async with app.run_test(size=(150, 40)) as pilot:
                await pilot.press("ctrl+f")  # alice is idle: show her
                await settle(pilot, lambda: "alice" in app.shown_rows)
                app.query_one("#members", DataTable).move_cursor(row=app.shown_rows.index("alice"))
                await pilot.press("enter")
                await pilot.press(*"use the new parser", "enter")
                # alice reads it before her next model call, and answers; the transcript
                # in the app shows both.
                await settle(
                    pilot,
                    lambda: any("switching parser" in x for x in tree_labels(app)),
                    timeout=60,
                )
                assert any("use the new parser" in x for x in tree_labels(app))
                # x stops her, after a confirmation.
                await pilot.press("ctrl+x")
                await pilot.press("y")
                await settle(
                    pilot,
                    lambda: (
                        {m.name: m.status for m in team.roster.list()}["alice"]
                        == MemberStatus.STOPPED
                    ),
                    timeout=60,
                )
                # kill -9 of the supervisor: the view stays, and says how to come back.
                sup.kill()
                sup.wait()
                await settle(pilot, lambda: "accord resume --team main" in app.notice_text, 30)
                assert "is not running" in app.notice_text

        run(drive())
        store.close()
    finally:
        if sup.poll() is None:
            sup.kill()
        sup.wait()
        subprocess.run(
            [sys.executable, "-m", "accord", "stop"],
            cwd=root,
            env=clean_env(),
            capture_output=True,
            check=False,
        )


# the store going away -------------------------------------------------------------------


def test_the_view_says_the_store_is_unreachable_and_reconnects(tmp_path: Path) -> None:
    from accord.testing import pg

    missing = pg.private_cluster_missing()
    if missing and not os.environ.get("ACCORD_REQUIRE_POSTGRES"):
        pytest.skip(missing)
    with pg.PrivateCluster() as cluster:
        url = cluster.url()
        store = open_store(url, create=True)
        store.create_team("main")
        Team(store, "main").roster.add("lead", role=MemberRole.LEAD)
        store.close()

        async def drive() -> None:
            app = Seat(url, "main")
            async with app.run_test(size=(150, 40)) as pilot:
                await settle(pilot, lambda: app.shown_rows == ["lead"])
                cluster.stop()
                await settle(pilot, lambda: "the store is unreachable" in app.notice_text, 30)
                cluster.start()
                await settle(pilot, lambda: app.unreachable is None, 60)
                assert "unreachable" not in app.notice_text
                again = open_store(url)
                Team(again, "main").roster.add("bob")
                again.close()
                await settle(pilot, lambda: "bob" in app.shown_rows, 30)

        run(drive())


# accord run in a real terminal ---------------------------------------------------------


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_accord_run_on_a_terminal_opens_the_app_and_closes_it_when_the_run_ends(
    root: Path, tmp_path: Path
) -> None:
    lead = rules(
        root / "lead.json",
        [{"if": "finish now", "then": calls(("finish", {"summary": "all done"}))}],
        "Waiting for the person.",
    )
    socket = str(tmp_path / "tmux.sock")
    out = tmp_path / "out.txt"
    env = clean_env(TERM="xterm-256color")
    command = (
        f"cd {root} && {sys.executable} -m accord run 'say hi' --model {lead}; "
        f"echo exit=$? > {out}; sleep 60"
    )
    tmux = ["tmux", "-S", socket]
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "140", "-y", "40", command], env=env, check=True
    )
    try:

        def screen() -> str:
            return subprocess.run(
                [*tmux, "capture-pane", "-p"], capture_output=True, text=True, check=False
            ).stdout

        # The app is up in the terminal; what the person types there reaches the lead.
        until(lambda: "lead (lead)" in screen() and "write to lead" in screen(), timeout=60)
        subprocess.run([*tmux, "send-keys", "finish now", "Enter"], check=True)
        until(lambda: out.exists(), timeout=60)
        assert out.read_text().strip() == "exit=0"
        assert "finished: all done" in screen()
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)


# channels (Ctrl+G) ----------------------------------------------------------------------


@pytest.fixture
def channels(seeded: tuple[str, Team]) -> tuple[str, Team, int]:
    """#design (alice's; bob and the person joined) with two posts, one routed to bob and
    answered by him; #quiet (carol's), which the person has not joined. Returns the
    routed post's id."""
    _, team = seeded
    team.channels.create("#design", "alice")
    for who in ("bob", PERSON):
        team.channels.join("#design", who)
    team.channels.post("#design", "alice", "SQLite first")
    team.channels.leave("#design", PERSON)  # so the routed post has one possible owner
    asked = team.routing().post("#design", "alice", "which port?", tags=["api"])
    team.channels.join("#design", PERSON)
    team.channels.post("#design", "bob", "8080", reply_to=asked.id)
    team.channels.create("#quiet", "carol")
    return seeded[0], team, asked.id


def channel_lines(app: Seat) -> list[str]:
    return [str(x.text) for x in app.query_one("#channel-log").lines]  # type: ignore[attr-defined]


def test_channels_list_open_post_and_unread_counts(channels: tuple[str, Team, int]) -> None:
    location, team, asked = channels

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(150, 40)) as pilot:
            await settle(pilot, lambda: bool(app.shown_rows))
            await pilot.press("ctrl+g")
            names = ["#design", "#quiet"]
            await settle(pilot, lambda: [r.name for r in app.channel_rows] == names)
            design, quiet = app.channel_rows
            assert (design.unread, design.joined, quiet.joined) == (2, True, False)
            listed = screen_text(app)
            assert "bob: 8080" in listed and "2 unread" in listed  # the newest post, counts
            await pilot.press("enter")  # opens #design, the selected one
            await settle(pilot, lambda: len(channel_lines(app)) == 3)
            first, routed, answer = channel_lines(app)
            assert "alice: SQLite first" in first and "owned by" not in first
            assert f"[{asked}]" in routed and "answered by bob" in routed
            assert f"bob ↩ {asked}: 8080" in answer
            # Opening it acknowledged the person's copies: the count drops.
            await settle(pilot, lambda: app.channel_rows[0].unread == 0)
            assert not [m for m in team.mailbox.history(PERSON, unacked=True) if m.channel]
            # The line at the bottom posts as the person.
            await pilot.press(*"ship it", "enter")
            await settle(pilot, lambda: len(channel_lines(app)) == 4)
            assert "you: ship it" in channel_lines(app)[-1]
            assert team.channels.read("#design")[-1].sender == PERSON
            # Another member's post comes in while it is open, is shown, and is read.
            team.channels.post("#design", "alice", "thanks")
            await settle(pilot, lambda: "alice: thanks" in channel_lines(app)[-1])
            await settle(pilot, lambda: app.channel_rows[0].unread == 0)
            # A routed post is marked with its owner until it is answered.
            asked2 = team.routing().post("#design", "alice", "and the host?")
            await settle(pilot, lambda: "owned by" in channel_lines(app)[-1])
            owner = team.routing().owner(asked2.id)
            assert owner is not None and f"owned by {owner.owner}" in channel_lines(app)[-1]
            # Its line follows its route: given to bob, then answered by him.
            team.routing().take(asked2.id, "bob", by=PERSON)
            await settle(pilot, lambda: "owned by bob" in channel_lines(app)[-1])
            team.channels.post("#design", "bob", "localhost", reply_to=asked2.id)
            await settle(pilot, lambda: "answered by bob" in channel_lines(app)[-2])
            bodies = [x.split(": ", 1)[1].split("  ")[0] for x in channel_lines(app)]
            assert bodies == ["SQLite first", "which port?", "8080", "ship it", "thanks",
                              "and the host?", "localhost"]  # fmt: skip
            app.close_channel()  # and opened again before the reader looked: read afresh
            app.open_channel("#design")
            await settle(pilot, lambda: len(channel_lines(app)) == 7)
            await pilot.press("escape")  # back to the list
            assert app.channel_open is None
            await pilot.press("ctrl+g")  # and back to the lead's conversation
            assert app.query_one("#right").current == "chat"  # type: ignore[attr-defined]

    run(drive())


def test_channels_join_leave_create_and_refusals_shown(channels: tuple[str, Team, int]) -> None:
    location, team, _ = channels
    for i in range(CHANNEL_SHOWN + 5):
        team.channels.post("#quiet", "carol", f"note {i}")

    async def drive() -> None:
        app = Seat(location, "main")
        async with app.run_test(size=(150, 40)) as pilot:
            await settle(pilot, lambda: bool(app.shown_rows))
            await pilot.press("ctrl+g")
            await settle(pilot, lambda: len(app.channel_rows) == 2)
            await pilot.press("down", "enter")  # #quiet, not joined
            await settle(pilot, lambda: app.channel_open == "#quiet")
            # A long channel shows its newest posts, saying where the rest are.
            await settle(pilot, lambda: len(channel_lines(app)) == CHANNEL_SHOWN + 1)
            lines = channel_lines(app)
            assert "accord channel read quiet" in lines[0] and "note 5" in lines[1]
            said = app.query_one("#channel-said", Static)
            await pilot.press(*"hello", "enter")  # refused: the person has not joined
            await settle(pilot, lambda: "has not joined #quiet" in str(said.render()))
            assert str(said.render()).startswith("error:")
            await pilot.press("escape")
            await pilot.press("j")  # joins the selected channel, #quiet
            await settle(pilot, lambda: PERSON in team.channels.list()[1].subscribers)
            await settle(pilot, lambda: app.channel_rows[1].joined)
            await pilot.press("l")
            await settle(pilot, lambda: PERSON not in team.channels.list()[1].subscribers)
            # n: a new channel; a bad name is refused in the dialog, with the store's words.
            await pilot.press("n")
            await settle(pilot, lambda: isinstance(app.screen, NewChannel))
            await pilot.press(*"Bad Name", "enter")
            await settle(pilot, lambda: bool(app.screen.query("#new-channel-error")))
            error = str(app.screen.query_one("#new-channel-error", Label).render())
            assert error.startswith("error:") and "Bad Name" in error
            box = app.screen.query_one("#new-channel", Input)
            box.value = ""
            await pilot.press(*"plans", "enter")
            await settle(pilot, lambda: [r.name for r in app.channel_rows][1:2] == ["#plans"])
            made = team.channels.list()[1]
            assert (made.name, made.creator, made.subscribers) == ("#plans", PERSON, (PERSON,))

    run(drive())
