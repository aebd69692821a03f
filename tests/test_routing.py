"""Routing above the store: the rules' order and the fallback (``team.routing``), the
command line (``--route``, ``accord route explain|assign``), racing deciders, and a
Hypothesis state machine for the promise that a routed message never has two owners.

The store's promises about routes are in the conformance suite
(``accord.testing.conformance_routes``), on both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from accord.config import parse_config
from accord.errors import InvalidState, UserError
from accord.events import EventKind
from accord.llm.scripted import ScriptedModel, call, reply
from accord.store import Store, open_store
from accord.team import Team
from accord.testing import FakeClock
from accord.testing.cli import js, ok, one_error
from accord.types import MemberRole, OutgoingMessage, RouteChoice
from conftest import Cli, dump, make_agent, refusals, store_path

RULES = """
[routing]
fallback = "lead"

[[routing.rules]]
keyword = "deploy"
to = "ops"

[[routing.rules]]
pattern = "(?i)\\\\bbug #\\\\d+"
role = "fixer"

[[routing.rules]]
channel = "#design"
tags = ["db"]
to = "dana"

[[routing.rules]]
keyword = "deploy"
to = "bob"

[[routing.rules]]
match_role = "tester"
to = "nobody-here"
"""


@pytest.fixture
def routed(make_store: Callable[..., Store], tmp_path: Path) -> Team:
    """Team main: lead, ops, two fixers (fred, finn), dana, and tina the tester."""
    store = make_store()
    store.create_team("main")
    store.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
    for name, agent in (
        ("ops", None),
        ("fred", "fixer"),
        ("finn", "fixer"),
        ("dana", None),
        ("tina", "tester"),
    ):
        store.add_member("main", name, token_hash="x", agent=agent)
    return Team.open(store, "main", parse_config(RULES), tmp_path)


def test_rules_in_order_first_match_wins_then_the_fallback(routed: Team) -> None:
    routing = routed.routing({"tester": [{"keyword": "flaky"}]})
    everyone = ["lead", "ops", "fred", "finn", "dana", "tina"]
    # Rule 1 and rule 4 both match "deploy": the earlier one in the file wins.
    first = routing.decide("person", everyone, "please DEPLOY now")
    assert (first.owner, first.rule) == ("ops", "accord.toml rule 1 (keyword 'deploy', to ops)")
    # A role: the least busy member with that agent definition, the others next.
    routed.store.send_message(
        "main", OutgoingMessage("lead", "*", "x"), route=RouteChoice("fred", "r", 60.0)
    )
    bug = routing.decide("person", everyone, "see Bug #12")
    assert bug.owner == "finn" and bug.candidates[:2] == ("finn", "fred")
    # Channel and tags together.
    assert routing.decide("person", everyone, "which", channel="#design", tags=["db"]).owner == (
        "dana"
    )
    assert routing.decide("person", everyone, "which", channel="#design").owner == "lead"
    # A rule that matches but names nobody: passed over, and the decision says so.
    none = routing.decide("tina", everyone, "hello")
    assert none.owner == "lead"
    assert "accord.toml rule 5 matched but names nobody" in none.rule
    # A definition's route without an owner routes to the member playing it.
    flaky = routing.decide("person", everyone, "a flaky test")
    assert (flaky.owner, flaky.rule) == (
        "tina",
        "tina's definition, route 1 (keyword 'flaky', to tina)",
    )
    # No rule: the lead; with least_busy, the least busy recipient.
    assert routing.decide("person", everyone, "hi").rule == "fallback: the lead (no rule matched)"
    routed.store.add_member("main", "zed", token_hash="x")
    busy = Team.open(
        routed.store, "main", parse_config('[routing]\nfallback = "least_busy"'), Path()
    ).routing()
    assert busy.decide("person", ["fred", "zed"], "hi").owner == "zed"
    with pytest.raises(UserError, match="needs a member among its recipients"):
        routing.decide("lead", ["person"], "hi")


def test_send_and_post_write_the_owner_and_explain_reads_why(routed: Team) -> None:
    routing = routed.routing()
    sent = routing.send("person", "*", "deploy the thing")
    assert {routed.store.get_route("main", m.id).owner for m in sent} == {"ops"}  # type: ignore[union-attr]
    told = routing.explain(sent[3].id)
    assert told.route.owner == "ops"
    assert [e.kind for e in told.decisions] == [EventKind.MESSAGE_ROUTED]
    assert told.decisions[0].payload["rule"].startswith("accord.toml rule 1")
    routed.channels.create("#design", "lead")
    for name in ("dana", "fred"):
        routed.channels.join("#design", name)
    post = routing.post("#design", "lead", "schema?", tags=["db"])
    assert routing.owner(post.id).owner == "dana"  # type: ignore[union-attr]
    with pytest.raises(UserError, match="is not routed"):
        routing.explain(routed.mailbox.send("lead", "ops", "plain")[0].id)


def test_racing_deciders_leave_exactly_one_owner(tmp_path: Path) -> None:
    """Eight connections route the same message at once, each to its own member."""
    path = str(tmp_path / "race.db")
    first = open_store(path, create=True)
    first.create_team("main")
    names = [f"m{i}" for i in range(8)]
    for n in names:
        first.add_member("main", n, token_hash="x")
    [m, *_] = first.send_message("main", OutgoingMessage("m0", "*", "who takes it?"))
    stores = [open_store(path) for _ in names]
    won: list[str] = []
    start = threading.Barrier(len(names))

    def decide(store: Store, name: str) -> None:
        start.wait()
        if store.route_message("main", m.id, name, rule="race", lease_seconds=60.0):
            won.append(name)

    threads = [
        threading.Thread(target=decide, args=(s, n)) for s, n in zip(stores, names, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert first.get_route("main", m.id).owner == won[0]  # type: ignore[union-attr]
    routed = [e for e in first.read_events("main") if e.kind == EventKind.MESSAGE_ROUTED]
    assert len(routed) == 1
    for s in [first, *stores]:
        s.close()


def test_cli_route_send_post_explain_assign(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    (project / "accord.toml").write_text(
        (project / "accord.toml").read_text()
        + '\n[[routing.rules]]\nkeyword = "deploy"\nto = "ops"\n'
    )
    ok(cli("member", "add", "lead", "--role", "lead"))
    for n in ("ops", "bob"):
        ok(cli("member", "add", n))
    said = ok(cli("msg", "send", "deploy it", "--to", "*", "--route")).out
    assert "owned by ops: accord.toml rule 1" in said
    [first, *_] = js(cli("msg", "send", "deploy again", "--to", "*", "--route", "--json"))
    explained = js(cli("route", "explain", str(first["id"]), "--json"))
    assert explained["route"]["owner"] == "ops" and len(explained["decisions"]) == 1
    assert "because: accord.toml rule 1" in ok(cli("route", "explain", str(first["id"]))).out
    ok(cli("route", "assign", str(first["id"]), "bob"))
    assert js(cli("route", "explain", str(first["id"]), "--json"))["route"]["owner"] == "bob"
    ok(cli("channel", "create", "ops-room"))
    ok(cli("channel", "join", "ops-room", "--as", "bob"))
    assert "owned by bob" in ok(cli("channel", "post", "ops-room", "hi", "--route")).out
    [plain] = js(cli("msg", "send", "plain", "--to", "bob", "--json"))
    refusals(
        cli,
        project,
        [
            (["route", "explain", "999"], "no message #999"),
            (["route", "explain", str(plain["id"])], "is not routed"),
            (["msg", "send", "x", "--to", "bob", "--tag", "db"], "add --route"),
            (
                ["msg", "send", "x", "--to", "bob", "--route", "--kind", "idle_notification"],
                "plain text",
            ),
            (["route", "assign", str(first["id"]), "zed"], "no member named 'zed'"),
            (["route", "assign", str(first["id"]), "ops", "--as", "bob"], "not the lead"),
            (["channel", "post", "ops-room", "x", "--tag", "a"], "add --route"),
        ],
    )


def test_a_member_is_told_what_it_owns_and_who_owns_the_rest(team: Team, repo: Path) -> None:
    team.store.add_member("main", "bob", token_hash="x")
    mine = team.store.send_message(
        "main", OutgoingMessage("lead", "*", "yours"), route=RouteChoice("alice", "r", 60.0)
    )
    team.store.send_message(
        "main", OutgoingMessage("lead", "*", "bobs"), route=RouteChoice("bob", "r", 60.0)
    )
    model = ScriptedModel(
        [
            reply("", call("send_message", {"to": "*", "message": "who?", "route": True})),
            reply("ok"),
        ]
    )
    make_agent(team, model, repo).run(once=True)
    turn = model.requests[0].messages[-1].text
    assert "yours\n(routed: you own this message; you are the one to answer it, with " in turn
    assert 'owner="bob"' in turn and "(routed: owned by bob; leave the answer to bob)" in turn
    said = [m.text for m in model.requests[1].messages if m.role == "tool"] or [
        str(model.requests[1].messages[-1])
    ]
    assert any("owned by lead (fallback: the lead" in r for r in said), said
    assert team.routing().owner(mine[0].id).owner == "alice"  # type: ignore[union-attr]
    model.assert_complete()


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ('keyword = "x"\nto = "a"\nrole = "b"', "one of `to` or `role`"),
        ('pattern = "(unclosed"\nto = "a"', "not a regular expression"),
        ('keyword = "x"\nto = "a"\nsender = "b"', "sender"),
    ],
)
def test_a_bad_rule_in_accord_toml_is_refused(
    cli: Cli, project: Path, rule: str, needle: str
) -> None:
    ok(cli("init", "--team", "main"))
    ok(cli("member", "add", "bob"))
    toml = project / "accord.toml"
    toml.write_text(toml.read_text() + f"\n[[routing.rules]]\n{rule}\n")
    rows = dump(store_path(project))
    one_error(cli("msg", "send", "hi", "--to", "bob", "--route"), 2, needle)
    assert dump(store_path(project)) == rows


def test_definition_routes_parse_and_a_bad_one_is_named() -> None:
    from accord.agent.definition import parse_definition
    from accord.errors import ConfigError

    d = parse_definition("---\nroutes:\n  - keyword: flaky\n---\nbody", "t.md", "tester")
    assert d.routes == ({"keyword": "flaky"},)
    with pytest.raises(ConfigError, match="`routes` must be a list"):
        parse_definition("---\nroutes: flaky\n---\n", "t.md", "tester")


# The state machine: never two owners ----------------------------------------------

MEMBERS = ("alice", "bob", "carol", "lena")
LEASE = 30.0


class NeverTwoOwners(RuleBasedStateMachine):
    """Two connections to one store route, take, renew, release and expire routed
    messages while time moves; each message keeps exactly one owner, and the log's last
    decision for it names that owner."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    @initialize()
    def open(self) -> None:
        self.clock = FakeClock()
        for old in self.path.parent.glob(self.path.name + "*"):
            old.unlink()
        self.stores = [open_store(str(self.path), create=True, clock=self.clock) for _ in "ab"]
        a = self.stores[0]
        a.create_team("main")
        for n in MEMBERS:
            a.add_member(
                "main",
                n,
                token_hash="x",
                role=MemberRole.LEAD if n == "lena" else MemberRole.TEAMMATE,
            )
        self.messages: list[int] = []
        self.plain: list[int] = []
        self.answered: dict[int, str] = {}

    def teardown(self) -> None:
        for s in getattr(self, "stores", []):
            s.close()

    @rule(who=st.sampled_from(MEMBERS), routed=st.booleans(), side=st.integers(0, 1))
    def send(self, who: str, routed: bool, side: int) -> None:
        choice = RouteChoice(who, "r", LEASE, MEMBERS) if routed else None
        sent = self.stores[side].send_message(
            "main", OutgoingMessage("lena", "*", "x"), route=choice
        )
        (self.messages if routed else self.plain).append(sent[0].id)

    @rule(pick=st.integers(0, 99), who=st.sampled_from(MEMBERS), side=st.integers(0, 1))
    def route(self, pick: int, who: str, side: int) -> None:
        ids = self.messages + self.plain
        if not ids:
            return
        mid = ids[pick % len(ids)]
        before = self.stores[side].get_route("main", mid)
        got = self.stores[side].route_message("main", mid, who, rule="r", lease_seconds=LEASE)
        live = before is not None and before.lease_expires_at >= self.clock()
        assert (got is None) == (live or mid in self.answered)
        if got is not None and mid in self.plain:
            self.plain.remove(mid)
            self.messages.append(mid)

    @rule(pick=st.integers(0, 99), who=st.sampled_from(MEMBERS), by=st.sampled_from(MEMBERS))
    def take(self, pick: int, who: str, by: str) -> None:
        if not self.messages:
            return
        mid = self.messages[pick % len(self.messages)]
        try:
            route = self.stores[1].take_ownership("main", mid, who, by=by, lease_seconds=LEASE)
        except InvalidState:
            assert by != "lena" or mid in self.answered
        else:
            assert by == "lena" and route.owner == who

    @rule(pick=st.integers(0, 99), who=st.sampled_from(MEMBERS), side=st.integers(0, 1))
    def answer(self, pick: int, who: str, side: int) -> None:
        """A member replies to a routed message: its owner's reply answers it; anyone
        else's is refused until then (its sender, lena, only adds to it)."""
        if not self.messages:
            return
        mid = self.messages[pick % len(self.messages)]
        now = self.stores[side].get_route("main", mid)
        assert now is not None
        to = "lena" if who != "lena" else MEMBERS[0]
        try:
            self.stores[side].send_message("main", OutgoingMessage(who, to, "answer", reply_to=mid))
        except InvalidState:
            assert who not in (now.owner, "lena") and mid not in self.answered
        else:
            if who == now.owner and mid not in self.answered:
                self.answered[mid] = who

    @rule(pick=st.integers(0, 99), who=st.sampled_from(MEMBERS), stale=st.booleans())
    def renew_or_release(self, pick: int, who: str, stale: bool) -> None:
        if not self.messages:
            return
        mid = self.messages[pick % len(self.messages)]
        now = self.stores[0].get_route("main", mid)
        assert now is not None
        token = now.token - 1 if stale else now.token
        try:
            if pick % 2:
                self.stores[0].renew_route("main", mid, who, token, lease_seconds=LEASE)
            else:
                self.stores[0].release_route("main", mid, who, token)
        except InvalidState:
            pass
        else:
            assert who == now.owner and not stale and now.lease_expires_at >= self.clock()

    @rule(seconds=st.sampled_from((1.0, 10.0, LEASE + 1)))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(side=st.integers(0, 1))
    def expire(self, side: int) -> None:
        for r in self.stores[side].expire_routes("main"):
            assert r.lease_expires_at > self.clock()

    @invariant()
    def one_owner_each(self) -> None:
        if not hasattr(self, "stores"):
            return
        routes = self.stores[1].list_routes("main")
        assert sorted(r.message_id for r in routes) == sorted(self.messages)
        last: dict[int, str] = {}
        for e in self.stores[0].read_events("main"):
            if e.kind == EventKind.MESSAGE_ROUTED:
                last[e.payload["id"]] = e.payload["owner"]
        assert {r.message_id: r.owner for r in routes} == last
        assert all(r.owner in MEMBERS for r in routes)
        # Answered once, by the member that owned it then, and it stays with it.
        assert {r.message_id: r.owner for r in routes if r.answer_id} == self.answered
        answers = [
            (e.payload["id"], e.payload["member"])
            for e in self.stores[0].read_events("main")
            if e.kind == EventKind.MESSAGE_ANSWERED
        ]
        assert sorted(answers) == sorted(self.answered.items())


def test_never_two_owners(tmp_path: Path) -> None:
    run_state_machine_as_test(
        lambda: NeverTwoOwners(tmp_path / "sm.db"),
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_the_lead_gives_a_routed_message_to_another_member_with_its_tool(team: Team) -> None:
    from accord.agent.tools.base import Toolbox, ToolContext
    from accord.agent.tools.lead import LEAD_TOOLS
    from accord.llm.base import ToolCall

    team.store.add_member("main", "bob", token_hash="x")
    (first, *_) = team.routing().send("alice", "*", "who takes the flaky test?")
    before = team.routing().owner(first.id)
    assert before is not None
    other = "bob" if before.owner != "bob" else "alice"
    tools = Toolbox(LEAD_TOOLS)

    def use(member: str) -> str:
        ctx = ToolContext(Path("."), member, team=team)
        args = {"message_id": first.id, "to": other}
        return tools.execute(ctx, ToolCall.parse("c1", "route_assign", args)).content

    assert use("lead") == f"message #{first.id} is now owned by {other}"
    after = team.routing().owner(first.id)
    assert after is not None and after.owner == other and after.token > before.token
    assert "only the lead" in use("alice")  # a teammate cannot take it


def test_prefer_history_reinforces_who_answered_well(make_store: Callable[..., Store]) -> None:
    """Two fixers; fred answered api questions and had them accepted, so with
    ``prefer = "history"`` the next api question goes to him though he is busier, while
    a question on another topic, and the default preference, go to the least busy."""
    store = make_store()
    store.create_team("main")
    store.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
    for name in ("fred", "finn"):
        store.add_member("main", name, token_hash="x", agent="fixer")
    rules = '[[routing.rules]]\ntags = ["api"]\nrole = "fixer"\n'
    plain = Team.open(store, "main", parse_config(rules), Path("."))
    keen = Team.open(
        store, "main", parse_config('[routing]\nprefer = "history"\n' + rules), Path(".")
    )
    past = plain.routing()
    (asked,) = past.send("lead", "fred", "why is /users slow?", tags=["api"])
    assert past.owner(asked.id).owner == "fred"  # type: ignore[union-attr]
    (answer,) = plain.mailbox.send("fred", "lead", "an N+1 query", reply_to=asked.id)
    past.judge(asked.id, "lead")
    past.send("lead", "fred", "and /orders?", tags=["db"])  # fred now owns one: busier
    assert store.member_load("main") == {"fred": 1}

    def owner(team: Team, tags: list[str]) -> str:
        (m, *_) = team.routing().send("lead", "*", "another question", tags=tags)
        return team.routing().owner(m.id).owner  # type: ignore[union-attr]

    assert owner(plain, ["api"]) == "finn"  # least busy
    assert owner(keen, ["api"]) == "fred"  # best on api
    explained = keen.routing().explain(
        m_id := keen.routing().send("lead", "*", "q", tags=["api"])[0].id
    )
    assert "best history first" in explained.route.rule and m_id
    assert keen.routing().history(["api"]) == {"fred": 2, "finn": 0}
    assert owner(keen, ["css"]) == "finn"  # no history on css: the least busy
    assert answer.reply_to == asked.id


def test_cli_answer_judge_release_and_patterns(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    ok(cli("member", "add", "lead", "--role", "lead"))
    for n in ("ops", "bob"):
        ok(cli("member", "add", n))
    assert "no working patterns yet" in ok(cli("team", "patterns")).out
    [q, *_] = js(cli("msg", "send", "disk?", "--to", "*", "--route", "--tag", "infra", "--json"))
    owner = js(cli("route", "explain", str(q["id"]), "--json"))["route"]["owner"]
    assert owner == "lead"
    ok(cli("route", "assign", str(q["id"]), "ops"))
    ok(cli("channel", "create", "ops-room"))
    ok(cli("channel", "join", "ops-room", "--as", "ops"))
    ok(cli("channel", "join", "ops-room", "--as", "bob"))
    routed = js(cli("channel", "post", "ops-room", "who has db-2?", "--route", "--json"))
    said = ok(cli("channel", "read", "ops-room")).out
    owner = js(cli("route", "explain", str(routed["id"]), "--json"))["route"]["owner"]
    assert f"who has db-2?  (owned by {owner})" in said
    first = js(cli("channel", "post", "ops-room", "status?", "--key", "k1", "--json"))
    again = js(cli("channel", "post", "ops-room", "status?", "--key", "k1", "--json"))
    assert first["id"] == again["id"]
    [r2, *_] = js(cli("msg", "send", "logs?", "--to", "*", "--route", "--json"))
    refusals(
        cli,
        project,
        [
            (
                [
                    "msg",
                    "send",
                    "mine",
                    "--to",
                    "person",
                    "--from",
                    "bob",
                    "--reply-to",
                    str(q["id"]),
                ],
                "owned by ops",
            ),
            (["route", "accept", str(q["id"])], "not answered yet"),
            (["route", "release", str(q["id"]), "--as", "bob"], "does not own"),
            (
                ["channel", "post", "ops-room", "x", "--key", "k9", "--reply-to", "99999"],
                "no such message",
            ),
            (["team", "patterns", "--topic"], "expected one argument"),
        ],
    )
    ok(cli("route", "release", str(r2["id"]), "--as", "lead"))
    said = ok(
        cli(
            "msg", "send", "90% full", "--to", "person", "--from", "ops", "--reply-to", str(q["id"])
        )
    ).out
    assert "sent" in said
    assert "answered by message" in ok(cli("route", "explain", str(q["id"]))).out
    ok(
        cli(
            "msg",
            "send",
            "mine",
            "--to",
            "person",
            "--from",
            owner,
            "--reply-to",
            str(routed["id"]),
        )
    )
    said = ok(cli("channel", "read", "ops-room")).out
    assert f"(answered by {owner})" in said
    assert "is accepted" in ok(cli("route", "accept", str(q["id"]))).out
    rows = js(cli("team", "patterns", "--member", "ops", "--json"))
    assert [(p["topic"], p["answered"], p["accepted"], p["score"]) for p in rows] == [
        ("*", 1, 1, 2),
        ("infra", 1, 1, 2),
    ]
    table = ok(cli("team", "patterns")).out
    assert "infra" in table and "syntheses" in table


def test_members_answer_release_and_judge_with_their_tools(team: Team) -> None:
    from accord.agent.tools.base import Toolbox, ToolContext
    from accord.agent.tools.channels import CHANNEL_TOOLS
    from accord.agent.tools.team import TEAM_TOOLS
    from accord.llm.base import ToolCall

    team.store.add_member("main", "bob", token_hash="x")
    tools = Toolbox([*TEAM_TOOLS, *CHANNEL_TOOLS])

    def use(member: str, name: str, **args: object) -> str:
        ctx = ToolContext(Path("."), member, team=team)
        return tools.execute(ctx, ToolCall.parse("c1", name, dict(args))).content

    said = use("lead", "send_message", to="*", message="flaky test?", route=True, tags=["ci"])
    (q, *_) = team.store.list_messages("main")
    owner = team.routing().owner(q.id).owner  # type: ignore[union-attr]
    other = "bob" if owner == "alice" else "alice"
    assert f"owned by {owner}" in said
    assert f"owned by {owner}" in use(other, "send_message", to="lead", message="x", reply_to=q.id)
    assert f"{other} owns it now" in use(owner, "route_release", message_id=q.id)
    answered = use(other, "send_message", to="lead", message="it races", reply_to=q.id)
    assert f"message #{q.id} is answered" in answered
    assert "only lead" in use("alice", "answer_judge", message_id=q.id)
    assert "is turned down" in use("lead", "answer_judge", message_id=q.id, accepted=False)
    assert "tags are for routing rules" in use(
        "lead", "send_message", to="bob", message="x", tags=["a"]
    )
    team.channels.create("#ci", "lead")
    team.channels.join("#ci", "bob")
    posted = use("lead", "channel_post", channel="#ci", message="red", key="k")
    assert posted == use("lead", "channel_post", channel="#ci", message="red", key="k")
    patterns = team.routing().patterns()
    assert [(p.member, p.topic, p.answered, p.rejected) for p in patterns] == [
        (other, "*", 1, 1),
        (other, "ci", 1, 1),
    ]
