"""Deliberations above the store: two scripted members deliberating through their tools
to a decision memory, the lead's ``deliberate`` tool, and `accord ask` (its refusals:
one error line, exit 2, store unchanged).

The store's phase rules (the refused early read, no double count, deadlines, the
synthesis lease) are in the conformance suite
(``accord.testing.conformance_deliberations``), on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accord.agent.tools.base import Toolbox, ToolContext
from accord.agent.tools.lead import LEAD_TOOLS
from accord.errors import InvalidState
from accord.events import EventKind
from accord.llm.base import ToolCall
from accord.llm.scripted import ScriptedModel, call, reply
from accord.store import open_store
from accord.team import Team
from accord.testing import FakeClock
from accord.testing.cli import js, ok
from accord.types import DeliberationPhase, MemoryType
from conftest import Cli, make_agent, refusals


def test_two_scripted_members_deliberate_to_a_decision(team: Team, repo: Path) -> None:
    team.store.add_member("main", "bob", token_hash="x")
    d = team.deliberations.ask(
        "SQLite or PostgreSQL for the cache?",
        "lead",
        members=["alice", "bob"],
        synthesizer="alice",
    )
    alice_1 = ScriptedModel(
        [
            reply("", call("position_submit", {"deliberation_id": d.id, "position": "SQLite"})),
            reply("submitted"),
        ]
    )
    make_agent(team, alice_1, repo).run(once=True)
    assert "SQLite or PostgreSQL" in alice_1.requests[0].messages[-1].text  # told by mail
    bob = ScriptedModel(
        [
            reply("", call("positions_read", {"deliberation_id": d.id})),  # too early
            reply("", call("position_submit", {"deliberation_id": d.id, "position": "PG"})),
            reply("", call("positions_read", {"deliberation_id": d.id})),
            reply("", call("agree", {"deliberation_id": d.id})),
            reply("agreed"),
        ]
    )
    make_agent(team, bob, repo, member="bob").run(once=True)
    refused = str(bob.requests[1].messages[-1])
    assert "before submitting its own" in refused and "SQLite" not in refused
    assert "alice: SQLite" in str(bob.requests[3].messages[-1])
    alice_2 = ScriptedModel(
        [
            reply("", call("agree", {"deliberation_id": d.id})),
            reply(
                "",
                call(
                    "synthesis_submit",
                    {
                        "deliberation_id": d.id,
                        "answer": "SQLite",
                        "agreement": "both fine",
                        "dissent": "bob preferred PG",
                    },
                ),
            ),
            reply("done"),
        ]
    )
    make_agent(team, alice_2, repo).run(once=True)
    assert "positions of deliberation 1, revealed" in alice_2.requests[0].messages[-1].text
    for model in (alice_1, bob, alice_2):
        model.assert_complete()
    done = team.deliberations.get(d.id)
    assert done.phase == DeliberationPhase.DONE and done.memory_id is not None
    decision = team.memory.get(done.memory_id)
    assert decision.type == MemoryType.DECISION and "bob preferred PG" in decision.text
    # The answer reached the asker (the lead) by mail; the positions stay as provenance.
    assert any("Answer" in m.body or "answer" in m.body for m in team.mailbox.inbox("lead"))
    assert [(p.member, p.round) for p in team.deliberations.positions(d.id)] == [
        ("alice", 0),
        ("bob", 0),
    ]
    # Replayable: every step is in the log.
    kinds = [e.kind for e in team.store.read_events("main")]
    for kind in (
        "deliberation_opened",
        "position_submitted",
        "deliberation_agreed",
        "deliberation_phase",
        "synthesis_claimed",
        "deliberation_finished",
        "deliberation_recorded",
    ):
        assert kind in kinds


def test_a_second_answer_supersedes_the_first_decision(team: Team) -> None:
    def run(question: str, supersedes: int | None = None) -> int:
        d = team.deliberations.ask(question, "lead", members=["alice"], supersedes=supersedes)
        team.deliberations.submit(d.id, "alice", "yes")
        d = team.deliberations.synthesize(d.id, "alice", f"answer to {question}")
        assert d.memory_id is not None
        return d.memory_id

    first = run("ship on friday?")
    second = run("ship on friday?", supersedes=first)
    assert team.memory.get(first).superseded_by == second


def test_the_lead_opens_a_deliberation_with_its_tool(team: Team, repo: Path) -> None:
    ctx = ToolContext(workspace=repo, member="lead", team=team)
    got = Toolbox(LEAD_TOOLS).execute(
        ctx, ToolCall("c1", "deliberate", {"question": "which ORM?", "members": ["alice"]})
    )
    assert "opened deliberation 1 in #ask-1 with alice" in str(got)
    assert "which ORM?" in team.mailbox.inbox("alice")[-1].body


def test_cli_ask_show_and_refusals(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    for n in ("alice", "bob"):
        ok(cli("member", "add", n))
    asked = js(cli("ask", "tabs or spaces?", "--members", "alice,bob", "--json"))
    assert asked["channel"] == "#ask-1" and asked["phase"] == "positions"
    shown = js(cli("ask", "show", "1", "--json"))
    assert shown["deliberation"]["question"] == "tabs or spaces?" and shown["positions"] == []
    assert "tabs or spaces?" in ok(cli("ask", "list")).out
    refusals(
        cli,
        project,
        [
            (["ask", "q?"], "--members"),
            (["ask", "q?", "--members", "dave"], "no member named 'dave'"),
            (["ask", "q?", "--members", "alice", "--role", "x"], "not both"),
            (["ask", "q?", "--role", "reviewer"], "no member of team"),
            (["ask", "q?", "--members", "alice", "--rounds", "99"], "rounds must be"),
            (["ask", "show", "9"], "no deliberation 9"),
            (["ask", "show", "x"], "accord ask show ID"),
            (["ask", "q?", "--members", "alice", "--supersedes", "7"], "7"),
        ],
    )


def test_the_supervisors_look_settles_only_deliberations_past_their_deadline(
    team: Team,
) -> None:
    """With its members all dead nobody acts on a deliberation: the supervisor's periodic
    ``settle_due`` settles those past their deadline (the store then marks the absent,
    as the conformance suite checks) and leaves the ones still in time alone."""
    team.store.add_member("main", "bob", token_hash="x")
    late = team.deliberations.ask("cache?", "lead", members=["alice", "bob"], phase_seconds=1)
    early = team.deliberations.ask("queue?", "lead", members=["alice", "bob"])
    assert team.deliberations.settle_due(late.deadline - 0.5) == []
    (moved,) = team.deliberations.settle_due(late.deadline + 0.1 + 5)
    assert moved.id == late.id
    assert team.deliberations.get(early.id).phase == DeliberationPhase.POSITIONS


def _opened(team: Team) -> dict[str, object]:
    (e,) = [e for e in team.store.read_events("main") if e.kind == "deliberation_opened"]
    return dict(e.payload)


def test_the_leads_deliberate_passes_tags_and_a_phase_deadline(team: Team, repo: Path) -> None:
    ctx = ToolContext(workspace=repo, member="lead", team=team)
    args = {"question": "which db?", "members": ["alice"], "tags": ["DB", "cache"]}
    got = Toolbox(LEAD_TOOLS).execute(
        ctx, ToolCall("c1", "deliberate", {**args, "phase_seconds": 30})
    )
    assert "opened deliberation 1" in str(got)
    opened = _opened(team)
    assert opened["tags"] == ["db", "cache"] and opened["phase_seconds"] == 30
    d = team.deliberations.get(1)
    assert d.phase_seconds == 30 and d.deadline - d.created_at == 30
    team.deliberations.submit(1, "alice", "sqlite")
    team.deliberations.synthesize(1, "alice", "sqlite")
    made = {(p.member, p.topic): p.syntheses for p in team.store.work_patterns("main", ["db"])}
    assert made == {("alice", "db"): 1}
    bad = Toolbox(LEAD_TOOLS).execute(
        ctx, ToolCall("c2", "deliberate", {**args, "tags": ["no spaces"]})
    )
    assert "not a valid tag" in str(bad) and len(team.deliberations.all()) == 1


def test_cli_ask_takes_tags(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    ok(cli("member", "add", "alice"))
    ok(cli("ask", "tabs?", "--members", "alice", "--tag", "style", "--tag", "Python"))
    events = js(cli("events", "--json"))
    (opened,) = [e for e in events if e["kind"] == "deliberation_opened"]
    assert opened["payload"]["tags"] == ["style", "python"]
    refusals(cli, project, [(["ask", "q?", "--members", "alice", "--tag", "a b"], "valid tag")])


def test_the_person_takes_part_from_the_command_line(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    for n in ("alice", "bob"):
        ok(cli("member", "add", n))
    asked = js(
        cli("ask", "tabs?", "--members", "person,alice", "--synthesizer", "person", "--json")
    )
    assert [p["member"] for p in asked["participants"]] == ["alice", "person"]
    refusals(
        cli,
        project,
        [
            (["ask", "read", "1"], "before submitting its own"),
            (["ask", "position", "9", "tabs"], "no deliberation 9"),
            (["ask", "position", "1"], 'accord ask position ID "TEXT"'),
            (["ask", "position", "x", "tabs"], "deliberation id"),
            (["ask", "agree", "1"], "positions phase"),
            (["ask", "answer", "1", "tabs"], "positions phase"),
            (["ask", "position", "1", "   "], "needs text"),
            (["ask", "reply", "1", "hm", "--agreement", "x"], "--agreement"),
        ],
    )
    assert "submitted" in ok(cli("ask", "position", "1", "tabs: fewer bytes")).out
    ok(cli("ask", "position", "1", "tabs: fewer bytes"))  # a retry is no change
    assert js(cli("ask", "read", "1", "--json"))[0]["body"] == "tabs: fewer bytes"
    ok(cli("ask", "position", "1", "spaces: PEP 8", "--as", "alice"))
    refusals(
        cli,
        project,
        [
            (["ask", "position", "1", "tabs, again but other"], "may reply now"),
            (["ask", "reply", "1", "x", "--as", "bob"], "not a participant"),
        ],
    )
    shown = ok(cli("ask", "read", "1")).out
    assert "alice: spaces: PEP 8" in shown and "person: tabs" in shown
    assert "round 1" in ok(cli("ask", "reply", "1", "tabs still")).out
    ok(cli("ask", "agree", "1", "--as", "alice"))
    got = ok(cli("ask", "answer", "1", "tabs", "--dissent", "alice: spaces"))
    assert "recorded as decision memory 1" in got.out
    d = js(cli("ask", "show", "1", "--json"))
    assert d["deliberation"]["phase"] == "done" and d["deliberation"]["lease_holder"] == "person"
    assert [(p["member"], p["round"]) for p in d["positions"]] == [
        ("alice", 0),
        ("person", 0),
        ("person", 1),
    ]
    refusals(cli, project, [(["ask", "reply", "1", "late"], "done phase")])


# The phase rules, driven at random against the real SQLite store ------------------

PEOPLE = ("alice", "bob", "carol")
PHASE_SECONDS = 30.0
RANK = {p: i for i, p in enumerate(DeliberationPhase)}


class PhaseRules(RuleBasedStateMachine):
    """Members submit, read, reply, agree, write syntheses and let deadlines pass, in any
    order, on several deliberations at once. Whatever happens: nobody reads the others'
    positions before submitting its own; a participant has at most one position per
    round; a phase never goes back; a finished deliberation has exactly one answer; an
    absent participant never counts as having submitted."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    @initialize()
    def open_store(self) -> None:
        self.clock = FakeClock()
        for old in self.path.parent.glob(self.path.name + "*"):
            old.unlink()
        self.store = open_store(str(self.path), create=True, clock=self.clock)
        self.store.create_team("main")
        for n in (*PEOPLE, "lena"):
            self.store.add_member("main", n, token_hash="x")
        self.ids: list[int] = []
        self.seen: dict[int, tuple[int, int]] = {}  # id: (phase rank, round) last seen

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()

    def pick(self, n: int) -> int | None:
        return self.ids[n % len(self.ids)] if self.ids else None

    def member(self, ident: int, k: int) -> str:
        """One of its participants, or (``k`` 3) lena, who asked and takes no part."""
        names = [p.member for p in self.store.deliberation("main", ident).participants]
        return names[k % len(names)] if k < 3 else "lena"

    @precondition(lambda self: len(self.ids) < 2)
    @rule(
        people=st.lists(st.sampled_from(PEOPLE), min_size=2, max_size=3, unique=True),
        rounds=st.integers(0, 2),
        synthesizer=st.sampled_from((None, *PEOPLE)),
    )
    def ask(self, people: list[str], rounds: int, synthesizer: str | None) -> None:
        d = self.store.open_deliberation(
            "main",
            "q?",
            "lena",
            people,
            rounds=rounds,
            synthesizer=synthesizer,
            phase_seconds=PHASE_SECONDS,
        )
        self.ids.append(d.id)

    @rule(
        n=st.integers(0, 9),
        k=st.integers(0, 3),
        text=st.sampled_from(("yes", "no")),
        phase=st.sampled_from((None, DeliberationPhase.POSITIONS, DeliberationPhase.EXCHANGE)),
    )
    def submit(self, n: int, k: int, text: str, phase: DeliberationPhase | None) -> None:
        ident = self.pick(n)
        if ident is None:
            return
        who = self.member(ident, k)
        try:
            self.store.submit_position("main", ident, who, text, phase=phase)
        except InvalidState:
            pass

    @rule(n=st.integers(0, 9), k=st.integers(0, 3))
    def read(self, n: int, k: int) -> None:
        ident = self.pick(n)
        if ident is None:
            return
        who = self.member(ident, k)
        d = self.store.deliberation("main", ident)
        own = any(
            p.member == who and p.round == 0
            for p in self.store.deliberation_positions("main", ident)
        )
        try:
            got = self.store.read_positions("main", ident, who)
        except InvalidState:
            assert d.phase == DeliberationPhase.POSITIONS and not own
        else:
            assert d.phase != DeliberationPhase.POSITIONS or own
            assert got == self.store.deliberation_positions("main", ident)

    @rule(n=st.integers(0, 9), k=st.integers(0, 3))
    def agree(self, n: int, k: int) -> None:
        ident = self.pick(n)
        if ident is not None:
            try:
                self.store.agree("main", ident, self.member(ident, k))
            except InvalidState:
                pass

    @rule(n=st.integers(0, 9), k=st.integers(0, 3), stale=st.booleans())
    def synthesize(self, n: int, k: int, stale: bool) -> None:
        ident = self.pick(n)
        if ident is None:
            return
        who = self.member(ident, k)
        try:
            d = self.store.claim_synthesis("main", ident, who)
            self.store.finish_deliberation(
                "main", ident, who, d.lease_token - stale, f"answer by {who}"
            )
        except InvalidState:
            pass

    @rule(n=st.integers(0, 9), k=st.integers(0, 2))
    def one_is_late(self, n: int, k: int) -> None:
        """Everyone owing a submission but one makes it, the deadline passes, and the
        late one tries: refused, as it was marked absent."""
        ident = self.pick(n)
        if ident is None:
            return
        d = self.store.settle_deliberation("main", ident)
        if d.phase not in (DeliberationPhase.POSITIONS, DeliberationPhase.EXCHANGE):
            return
        done = {
            p.member for p in self.store.deliberation_positions("main", ident) if p.round == d.round
        }
        owing = [p.member for p in d.participants if not (p.absent or p.agreed or p.member in done)]
        if not owing:
            return
        late = owing[k % len(owing)]
        for m in owing:
            if m != late:
                self.store.submit_position("main", ident, m, f"{m} in round {d.round}")
        self.clock.advance(d.deadline - self.clock() + 1)
        with pytest.raises(InvalidState):
            self.store.submit_position("main", ident, late, "too late")

    @rule(n=st.integers(0, 9))
    def settle(self, n: int) -> None:
        ident = self.pick(n)
        if ident is not None:
            self.store.settle_deliberation("main", ident)

    @rule(seconds=st.sampled_from((10.0, PHASE_SECONDS + 1)))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def the_phases_hold(self) -> None:
        if not hasattr(self, "store"):
            return
        events = self.store.read_events("main")
        for ident in self.ids:
            d = self.store.deliberation("main", ident)
            rows = [(p.member, p.round) for p in self.store.deliberation_positions("main", ident)]
            mine = [e.payload for e in events if e.payload.get("id") == ident]
            # one position per participant per round, each submitted once, by a participant
            counted = [
                (e.payload["member"], e.payload["round"])
                for e in events
                if e.kind == EventKind.POSITION_SUBMITTED and e.payload["id"] == ident
            ]
            assert len(set(rows)) == len(rows) and sorted(counted) == sorted(rows)
            assert {m for m, _ in rows} <= {p.member for p in d.participants}
            # a phase never goes back, nor a round
            before = self.seen.get(ident, (0, 0))
            now = (RANK[d.phase], d.round)
            assert now >= before
            self.seen[ident] = now
            # one answer when done, none before
            finished = [
                e
                for e in events
                if e.kind == EventKind.DELIBERATION_FINISHED and e.payload["id"] == ident
            ]
            if d.phase == DeliberationPhase.DONE:
                assert d.answer is not None and len(finished) == 1
                assert finished[0].payload["member"] == d.lease_holder
            else:
                assert d.answer is None and finished == []
            # the absent: no position for the round they missed, nor any later
            for e in events:
                if e.kind == EventKind.DELIBERATION_ABSENT and e.payload["id"] == ident:
                    for m in e.payload["members"]:
                        assert not [r for who, r in rows if who == m and r >= e.payload["round"]]
                        assert next(p for p in d.participants if p.member == m).absent
            assert mine  # its opening is in the log


def test_phase_rules(tmp_path: Path) -> None:
    run_state_machine_as_test(
        lambda: PhaseRules(tmp_path / "phases.db"),
        settings=settings(
            max_examples=50,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
