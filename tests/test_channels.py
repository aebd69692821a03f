"""Channels above the store: `accord channel ...`, the member tools, and what a member's
context shows (channel posts in a section of their own, apart from direct mail).

The store's promises about channels are in the conformance suite
(``accord.testing.conformance_channels``), on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.llm.scripted import ScriptedModel, call, reply
from accord.team import Team
from accord.testing.cli import js, ok
from conftest import Cli, make_agent, refusals


@pytest.fixture
def channels(cli: Cli, project: Path) -> dict[str, str]:
    """Team main with alice and bob; #design made by the person, alice joined."""
    ok(cli("init", "--team", "main"))
    tokens = {n: js(cli("member", "add", n, "--json"))["token"] for n in ("alice", "bob")}
    ok(cli("channel", "create", "design"))
    ok(cli("channel", "join", "#design", "--as", "alice"))
    return tokens


def test_cli_create_join_post_read_list(cli: Cli, channels: dict[str, str]) -> None:
    posted = js(cli("channel", "post", "design", "hello all", "--json"))
    assert posted["recipient"] == "#design" and posted["channel"] == "#design"
    ok(cli("channel", "post", "design", "from alice", "--as", "alice"))
    history = js(cli("channel", "read", "design", "--json"))
    assert [(m["sender"], m["body"]) for m in history] == [
        ("person", "hello all"),
        ("alice", "from alice"),
    ]
    assert [
        m["body"]
        for m in js(cli("channel", "read", "design", "--since", str(posted["id"]), "--json"))
    ] == ["from alice"]
    assert "you: hello all" in ok(cli("channel", "read", "design")).out
    [listed] = js(cli("channel", "list", "--json"))
    assert (listed["name"], listed["subscribers"]) == ("#design", ["alice", "person"])
    assert "#design" in ok(cli("channel", "list")).out
    # The post reached alice's inbox as mail, marked with its channel; and the person's.
    inbox = js(cli("msg", "inbox", "--as", "alice", "--json"))
    assert [(m["body"], m["channel"]) for m in inbox] == [("hello all", "#design")]
    assert [m["body"] for m in js(cli("msg", "inbox", "--json"))] == ["from alice"]
    assert "left" in ok(cli("channel", "leave", "design", "--as", "alice")).out
    assert "had not joined" in ok(cli("channel", "leave", "design", "--as", "alice")).out


def test_cli_refusals_change_nothing(
    cli: Cli, project: Path, channels: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    refusals(
        cli,
        project,
        [
            (["channel", "post", "nope", "hi"], "no channel #nope"),
            (["channel", "post", "nope", "hi"], "accord channel list"),
            (["channel", "read", "nope"], "no channel #nope"),
            (["channel", "join", "nope", "--as", "bob"], "no channel #nope"),
            (["channel", "post", "design", "hi", "--as", "bob"], "bob has not joined #design"),
            (["channel", "post", "design", "hi", "--as", "bob"], "accord channel join"),
            (["channel", "create", "design"], "already has a channel #design"),
            (["channel", "create", "Bad Name"], "not a valid channel name"),
            (["channel", "join", "design", "--as", "dave"], "no member named 'dave'"),
            (["channel", "post", "design", "  "], "needs a body"),
        ],
    )
    # An agent acts only as itself: its token is checked.
    monkeypatch.setenv("ACCORD_MEMBER", "bob")
    monkeypatch.setenv("ACCORD_TOKEN", channels["bob"])
    refusals(cli, project, [(["channel", "post", "design", "hi", "--as", "alice"], "alice")])


def test_a_member_reads_a_post_in_its_own_section_and_posts_back(team: Team, repo: Path) -> None:
    team.channels.create("#design", "lead")
    team.channels.join("#design", "alice")
    team.mailbox.send("lead", "alice", "a direct word")
    team.channels.post("#design", "lead", "which database?")
    model = ScriptedModel(
        [
            reply("", call("channel_post", {"channel": "#design", "message": "SQLite first"})),
            reply("", call("channel_post", {"channel": "#nope", "message": "x"})),
            reply("", call("channel_read", {"channel": "#design"})),
            reply("answered"),
        ]
    )
    make_agent(team, model, repo).run(once=True)
    turn = model.requests[0].messages[-1].text
    direct, heading, posts = turn.partition("# Unread channel posts")
    assert heading and "a direct word" in direct and "which database?" not in direct
    assert '<post id="' in posts and 'channel="#design" from="lead"' in posts
    assert "which database?" in posts and "a direct word" not in posts
    # Both were acknowledged once saved.
    unacked = team.mailbox.history(member="alice", unacked=True)
    assert [m for m in unacked if m.recipient == "alice"] == []
    # Its post went to the channel and to the lead's inbox.
    assert [m.body for m in team.channels.read("#design")] == ["which database?", "SQLite first"]
    lead_mail = [m for m in team.mailbox.inbox("lead") if m.channel == "#design"]
    assert [(m.sender, m.body) for m in lead_mail] == [("alice", "SQLite first")]
    # A refusal went back to the model, worded for a tool.
    results = [m.text for m in model.requests[2].messages if m.role == "tool"] or [
        str(model.requests[2].messages[-1])
    ]
    assert any("no channel #nope" in r and "channel_read" in r for r in results), results
    model.assert_complete()


def test_posting_to_a_channel_not_joined_is_refused_to_the_tool(team: Team, repo: Path) -> None:
    team.channels.create("#review", "lead")
    model = ScriptedModel(
        [reply("", call("channel_post", {"channel": "review", "message": "hi"})), reply("ok")]
    )
    team.mailbox.send("lead", "alice", "go")
    make_agent(team, model, repo).run(once=True)
    said = str(model.requests[1].messages[-1])
    assert "alice has not joined #review" in said and "channel_join" in said
    assert team.channels.read("#review") == []


def test_the_live_view_says_what_happened_in_a_channel(team: Team) -> None:
    from accord.cli._live import describe

    since = team.store.read_events("main")[-1].seq
    team.channels.create("design", "lead")
    team.channels.join("design", "alice")
    team.channels.post("design", "alice", "hi")
    team.channels.leave("design", "alice")
    said = [describe(e) for e in team.store.read_events("main", since=since)]
    assert said == [
        "created channel #design",
        "joined #design",
        "posted in #design",
        "left #design",
    ]
