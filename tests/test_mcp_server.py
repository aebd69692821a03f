"""`accord mcp`: the mcp SDK's own client against the real command, over stdio and HTTP.

A whole task cycle (claim, message, a completion the TaskCompleted hook refuses, the
fix, the completion), two members racing for one task, wrong and missing tokens,
another member's task, 10 MB results capped, wait_for_work waking on mail, and new
mail announced to a client listening on the inbox resource.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from accord.config import locate
from accord.mcp.server import INBOX
from accord.store import open_store
from accord.team import Team
from accord.testing.cli import clean_env
from accord.types import NewTask

SRC = str(Path(__file__).resolve().parents[1] / "src")
HOOK = """\
#!/bin/sh
# Refuses every completion until the client has written fixed.txt.
if [ -f fixed.txt ]; then exit 0; fi
echo "fixed.txt is missing: write it, then complete again" >&2
exit 2
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose TaskCompleted hook refuses until fixed.txt exists; team main has
    members alice and bob, whose tokens are in tokens.json."""
    root = tmp_path / "proj"
    (root / "hooks").mkdir(parents=True)
    hook = root / "hooks" / "done.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    (root / "accord.toml").write_text(
        textwrap.dedent(
            """
            [hooks]
            TaskCompleted = "./hooks/done.sh"
            [sandbox]
            required = false
            """
        )
    )
    (root / ".accord").mkdir()
    store = open_store(str(root / ".accord" / "accord.db"), create=True)
    try:
        team = Team.create(store, "main")
        tokens = {n: team.roster.add(n).token for n in ("alice", "bob")}
    finally:
        store.close()
    (root / "tokens.json").write_text(json.dumps(tokens))
    return root


def tokens(project: Path) -> dict[str, str]:
    found: dict[str, str] = json.loads((project / "tokens.json").read_text())
    return found


@contextmanager
def services(project: Path) -> Iterator[Team]:
    """Team main of the project's store, with its settings: what the servers see."""
    store = open_store(str(project / ".accord" / "accord.db"))
    try:
        yield Team.open(store, "main", locate(project).config, project)
    finally:
        store.close()


def env(**extra: str) -> dict[str, str]:
    return {**clean_env(), "PYTHONPATH": SRC, **extra}


@asynccontextmanager
async def stdio(
    project: Path, member: str, token: str, *options: str
) -> AsyncIterator[ClientSession]:
    """A client session with `accord mcp` for ``member``: its token in ACCORD_TOKEN, or,
    with ``--token-file``, ``token`` is the file's name."""
    carried = {} if "--token-file" in options else {"ACCORD_TOKEN": token}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "accord", "mcp", "--team", "main", "--as", member, *options],
        env=env(**carried),
        cwd=project,
    )
    async with stdio_client(params) as (r, w), ClientSession(r, w) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, name: str, **args: Any) -> tuple[bool, str]:
    """(is_error, text) of one tool call."""
    result = await session.call_tool(name, args)
    text = "".join(getattr(c, "text", "") for c in result.content)
    return bool(result.is_error), text


async def ok(session: ClientSession, name: str, **args: Any) -> str:
    failed, text = await call(session, name, **args)
    assert not failed, f"{name} failed: {text}"
    return text


async def refused(session: ClientSession, name: str, *needles: str, **args: Any) -> str:
    failed, text = await call(session, name, **args)
    assert failed, f"{name} should be refused: {text}"
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


async def task_cycle(session: ClientSession, project: Path, member: str) -> None:
    """Create, claim, message, a refused completion, the fix, the completion."""
    created = json.loads(await ok(session, "TaskCreate", subject="ship it", description="all"))
    task_id = created["task"]["id"]
    assert created == {"task": {"id": task_id, "subject": "ship it"}}
    board = json.loads(await ok(session, "TaskList"))["tasks"]
    assert {"id": task_id, "subject": "ship it", "status": "pending", "owner": None,
            "blockedBy": [], "ready": True} in board  # fmt: skip
    await ok(session, "TaskUpdate", taskId=task_id, status="in_progress")
    sent = await ok(session, "SendMessage", to="bob", message="on it", summary="status")
    assert "sent to bob" in sent
    await refused(
        session, "TaskUpdate", "TaskCompleted hook refused", "fixed.txt is missing",
        taskId=task_id, status="completed", result="done",
    )  # fmt: skip
    held = json.loads(await ok(session, "TaskGet", taskId=task_id))
    assert held["status"] == "in_progress" and held["youHoldIt"] is True  # the claim stays
    (project / "fixed.txt").write_text("fixed\n")
    await ok(session, "TaskUpdate", taskId=task_id, status="completed", result="done")
    done = json.loads(await ok(session, "TaskGet", taskId=task_id))
    assert done["status"] == "completed" and done["result"] == "done"
    with services(project) as team:
        (mail,) = team.mailbox.history("bob", unacked=True)
        assert (mail.sender, mail.body, mail.summary) == (member, "on it", "status")


def test_stdio_task_cycle_through_a_refusing_hook(project: Path) -> None:
    async def main() -> None:
        async with stdio(project, "alice", tokens(project)["alice"]) as session:
            await task_cycle(session, project, "alice")

    anyio.run(main)


def test_two_members_race_for_one_task_and_the_loser_cannot_touch_it(project: Path) -> None:
    with services(project) as team:
        task = team.board.add(NewTask(title="only one"))
    keys = tokens(project)

    async def main() -> None:
        async with (
            stdio(project, "alice", keys["alice"]) as alice,
            stdio(project, "bob", keys["bob"]) as bob,
        ):
            outcomes: dict[str, bool] = {}

            async def claim(name: str, session: ClientSession) -> None:
                failed, _ = await call(session, "TaskUpdate", taskId=task.id, status="in_progress")
                outcomes[name] = not failed

            async with anyio.create_task_group() as tg:
                tg.start_soon(claim, "alice", alice)
                tg.start_soon(claim, "bob", bob)
            assert sorted(outcomes.values()) == [False, True], outcomes
            winner = next(n for n, won in outcomes.items() if won)
            loser = bob if winner == "alice" else alice
            for status in ("completed", "pending"):
                await refused(
                    loser, "TaskUpdate", "hold no claim", f"held by {winner}",
                    taskId=task.id, status=status, result="mine",
                )  # fmt: skip
            await refused(loser, "task_fail", "hold no claim", taskId=task.id, reason="no")
            with services(project) as team:
                held = team.board.get(task.id)
                assert (held.status, held.owner, held.attempts) == ("in_progress", winner, 1)

    anyio.run(main)


def test_a_wrong_or_missing_token_stops_the_stdio_server_before_it_serves(
    project: Path,
) -> None:
    keys = tokens(project)
    command = [sys.executable, "-m", "accord", "mcp", "--team", "main", "--as", "alice"]
    for extra, needle in [
        ({"ACCORD_TOKEN": keys["bob"]}, "not alice's token"),
        ({}, "no token for alice"),
    ]:
        done = subprocess.run(
            command, cwd=project, env=env(**extra), input="", capture_output=True, text=True,
            timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        (line,) = done.stderr.splitlines()
        assert line.startswith("error: ") and needle in line, line


def test_results_of_ten_megabytes_are_capped(project: Path) -> None:
    # The store holds 256 KB a text at most; forty of them are ten megabytes of mail.
    big = "x" * 250_000
    with services(project) as team:
        task = team.board.add(NewTask(title="big", description=big))
        for _ in range(40):
            team.mailbox.send("bob", "alice", big)

    # The token comes from a file this time.
    (project / "alice.token").write_text(tokens(project)["alice"] + "\n")

    async def main() -> None:
        async with stdio(project, "alice", "", "--token-file", "alice.token") as session:
            shown = await ok(session, "TaskGet", taskId=task.id)
            assert len(shown) < 200_000
            assert f"accord task show {task.id} --json" in shown
            mail = await ok(session, "read_mail")
            assert len(mail) < 200_000 and "accord msg inbox" in mail
            assert "call read_mail again" in mail
            # An argument of ten megabytes is refused with a reason, not stored.
            await refused(session, "SendMessage", "longer than", to="bob", message="y" * 10**7)

    anyio.run(main)


def test_wait_for_work_wakes_on_mail(project: Path) -> None:
    async def main() -> None:
        async with stdio(project, "alice", tokens(project)["alice"]) as session:
            idle = json.loads(await ok(session, "wait_for_work", timeout=0.2))
            assert idle["reason"] == "timeout"
            woke: dict[str, Any] = {}
            started = time.monotonic()

            async def wait() -> None:
                woke.update(json.loads(await ok(session, "wait_for_work", timeout=30)))

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                # The server still answers while one of its calls waits.
                assert json.loads(await ok(session, "TaskList")) == {"tasks": []}
                with services(project) as team:
                    team.mailbox.send("bob", "alice", "wake up")
            assert woke["reason"] == "mail" and woke["mail"] == 1
            assert time.monotonic() - started < 20
            (message,) = json.loads(await ok(session, "read_mail"))["messages"]
            assert (message["from"], message["message"]) == ("bob", "wake up")
            await ok(session, "ack_mail", ids=[message["id"]])
            inbox = await session.read_resource("accord://inbox")
            assert json.loads(getattr(inbox.contents[0], "text", "")) == {"messages": []}

    anyio.run(main)


# HTTP ------------------------------------------------------------------------------


@contextmanager
def http_server(project: Path, member: str) -> Iterator[str]:
    """`accord mcp --http 127.0.0.1:0` for ``member`` (no token at start): its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord", "mcp", "--team", "main", "--as", member,
         "--http", "127.0.0.1:0"],
        cwd=project, env=env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving" in line, line
        yield line.split(" at ", 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def post(url: str, token: str | None) -> int:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_http_refuses_wrong_and_missing_tokens_and_runs_a_task_cycle(project: Path) -> None:
    keys = tokens(project)
    with http_server(project, "alice") as url:
        assert post(url, None) == 401
        assert post(url, keys["bob"]) == 401  # bob's token is not alice's
        assert post(url, "acc_nonsense") == 401

        async def main() -> None:
            headers = {"Authorization": f"Bearer {keys['alice']}"}
            async with (
                create_mcp_http_client(headers=headers) as client,
                streamable_http_client(url, http_client=client) as (r, w),
                ClientSession(r, w) as session,
            ):
                await session.initialize()
                await task_cycle(session, project, "alice")

        anyio.run(main)
    with services(project) as team:
        assert [t.status for t in team.board.list()] == ["completed"]


def test_new_mail_is_announced_to_a_listening_client(project: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "accord", "mcp", "--team", "main", "--as", "alice"],
        env=env(ACCORD_TOKEN=tokens(project)["alice"]),
        cwd=project,
    )

    async def main() -> None:
        async with (
            Client(params) as client,
            client.listen(resource_subscriptions=[INBOX]) as events,
        ):
            with services(project) as team:
                team.mailbox.send("bob", "alice", "news")
            with anyio.fail_after(20):
                event = await events.__anext__()
            assert getattr(event, "uri", None) == INBOX

    anyio.run(main)


def test_a_task_still_held_when_the_session_ends_goes_back_for_another_attempt(
    project: Path,
) -> None:
    with services(project) as team:
        task = team.board.add(NewTask(title="left half done"))

    async def main() -> None:
        async with stdio(project, "alice", tokens(project)["alice"]) as session:
            await ok(session, "TaskUpdate", taskId=task.id, status="in_progress")

    anyio.run(main)
    with services(project) as team:
        after = team.board.get(task.id)
        assert (after.status, after.owner, after.attempts) == ("pending", None, 1)
        assert after.reason is not None and "MCP session ended" in after.reason


# channels, routing and deliberations ------------------------------------------------


def test_a_channel_round_trip_and_its_refusals(project: Path) -> None:
    keys = tokens(project)

    async def main() -> None:
        async with (
            stdio(project, "alice", keys["alice"]) as alice,
            stdio(project, "bob", keys["bob"]) as bob,
        ):
            assert "created #design" in await ok(alice, "channel_create", channel="design")
            # The store's own words come back as the tool's error.
            await refused(bob, "channel_post", "bob has not joined #design", "channel_join",
                          channel="#design", message="early")  # fmt: skip
            await refused(bob, "channel_join", "#nowhere", channel="#nowhere")
            await refused(bob, "channel_read", "#nowhere", channel="#nowhere")
            assert "joined #design" in await ok(bob, "channel_join", channel="#design")
            posted = await ok(alice, "channel_post", channel="#design", message="v2 api?",
                              summary="api", key="k1")  # fmt: skip
            again = await ok(alice, "channel_post", channel="#design", message="v2 api?",
                             key="k1")  # fmt: skip
            assert posted.split("(")[1] == again.split("(")[1]  # the same post, once
            post_id = int(posted.split("post #")[1].rstrip(")"))
            await ok(bob, "channel_post", channel="#design", message="yes", reply_to=post_id)
            history = await ok(bob, "channel_read", channel="#design")
            said = [f"#{post_id} alice: v2 api?", f"#{post_id + 2} bob: yes (reply to #{post_id})"]
            assert history.splitlines() == said
            assert "#design (alice, bob) [joined]" in await ok(bob, "channel_read")
            assert "left #design" in await ok(bob, "channel_leave", channel="#design")
            await refused(bob, "channel_post", "has not joined", channel="#design", message="x")
        with services(project) as team:
            posts = team.channels.read("#design")
            assert [(p.sender, p.reply_to) for p in posts] == [("alice", None), ("bob", post_id)]
            to_bob = team.mailbox.history("bob", unacked=True)
            assert [m.body for m in to_bob if m.recipient == "bob"] == ["v2 api?"]

    anyio.run(main)


def test_a_routed_reply_answers_the_route_and_the_sender_judges_it(project: Path) -> None:
    keys = tokens(project)

    async def main() -> None:
        async with (
            stdio(project, "alice", keys["alice"]) as alice,
            stdio(project, "bob", keys["bob"]) as bob,
        ):
            await refused(alice, "SendMessage", "set route to true",
                          to="bob", message="x", tags=["api"])  # fmt: skip
            sent = await ok(alice, "SendMessage", to="bob", message="which port?", route=True,
                            tags=["api"])  # fmt: skip
            assert "owned by bob" in sent
            asked = int(sent.split("message #")[1].split(")")[0])
            answer = await ok(bob, "SendMessage", to="alice", message="8080", reply_to=asked)
            assert f"message #{asked} is answered" in answer
            await refused(alice, "answer_judge", "", message_id=asked + 999)
            judged = await ok(alice, "answer_judge", message_id=asked, accepted=True)
            assert "is accepted" in judged
            await refused(bob, "route_release", "answered", message_id=asked)
        with services(project) as team:
            route = team.routing().owner(asked)
            assert route is not None
            assert (route.owner, route.accepted, route.topics) == ("bob", True, ("api",))
            assert route.answer_id is not None
            assert team.mailbox.get(route.answer_id).reply_to == asked

    anyio.run(main)


def test_positions_are_read_only_after_submitting_one(project: Path) -> None:
    keys = tokens(project)
    with services(project) as team:
        d = team.deliberations.ask("Which database?", "person", members=["alice", "bob"])

    async def main() -> None:
        async with stdio(project, "alice", keys["alice"]) as alice:
            refusal = await refused(alice, "positions_read", deliberation_id=d.id)
            with services(project) as team, pytest.raises(Exception) as direct:
                team.deliberations.read(d.id, "alice")
            assert str(direct.value) in refusal  # the store's words, whole
            await ok(alice, "position_submit", deliberation_id=d.id, position="SQLite: one file")
            read = await ok(alice, "positions_read", deliberation_id=d.id)
            assert "alice: SQLite: one file" in read and "Which database?" in read

    anyio.run(main)
