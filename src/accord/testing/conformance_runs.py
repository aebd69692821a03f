"""Conformance for runs, supervisor leases, spawn requests and host supervisors.

A mixin of ``StoreConformance`` (it uses that class's ``store`` and ``clock``
fixtures: team ``main`` with alice, bob and carol), kept in its own module so the
promises about who runs where read together.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from accord.errors import AlreadyExists, InvalidName, InvalidState, StaleToken, UserError
from accord.events import EventKind
from accord.store.base import Store
from accord.testing import FakeClock
from accord.types import (
    MemberStatus,
    MemoryType,
    NewMemory,
    NewTask,
    OutgoingMessage,
    RunOutcome,
    RunSettings,
    RunSettingsChange,
    RunStatus,
    SpawnStatus,
    TranscriptEntry,
    TranscriptKind,
    UsageRecord,
)

if TYPE_CHECKING:
    from accord.testing.conformance import MakeStore

TEAM = "main"


def _run(store: Store, want: tuple[str, ...] = ()) -> None:
    store.start_run(TEAM, "the goal", "alice", RunSettings(budget_usd=1.0))
    if want:
        store.update_run(TEAM, want=want)


def _host(store: Store, host: str, slots: int | None = None, **kw: object) -> int:
    lease = float(kw.pop("lease", 10.0))  # type: ignore[arg-type]
    take_over = bool(kw.pop("take_over", False))
    return store.register_host(
        TEAM,
        host,
        machine="m-" + host,
        pid=100,
        slots=slots,
        lease_seconds=lease,
        take_over=take_over,
    ).token


def _kinds(store: Store, since: int) -> list[str]:
    return [e.kind for e in store.read_events(TEAM, since=since)]


def _seq(store: Store) -> int:
    events = store.read_events(TEAM)
    return events[-1].seq if events else 0


class RunConformance:
    # runs and the run's supervisor lease -----------------------------------------

    def test_a_run_starts_with_its_lead_wanted(self, store: Store) -> None:
        assert store.get_run(TEAM) is None
        _run(store)
        run = store.get_run(TEAM)
        assert run is not None
        assert (run.goal, run.lead, run.status, run.wanted) == (
            "the goal",
            "alice",
            RunStatus.RUNNING,
            ("alice",),
        )
        assert run.settings == RunSettings(budget_usd=1.0)
        updated = store.update_run(TEAM, want=["bob", "carol"], unwant=["carol"])
        assert updated.wanted == ("alice", "bob")
        done = store.update_run(TEAM, status=RunStatus.FINISHED, summary="all done")
        assert done.status == RunStatus.FINISHED and done.summary == "all done"

    def test_a_runs_settings_change_where_told_and_keep_the_rest(self, store: Store) -> None:
        store.start_run(TEAM, "the goal", "alice", RunSettings(max_teammates=3, extra={"n": 1}))
        since = _seq(store)
        raised = store.update_run(TEAM, settings={"budget_usd": 5.0})
        given = RunSettings(max_teammates=3, budget_usd=5.0, extra={"n": 1})
        assert raised.settings == given  # the rest (an unknown stored key too) stays
        assert store.get_run(TEAM).settings == given  # type: ignore[union-attr]
        (event,) = store.read_events(TEAM, since=since)
        assert event.kind == EventKind.RUN_UPDATED
        assert event.payload["settings"] == {"budget_usd": 5.0}  # what changed
        store.update_run(TEAM, want=["bob"])
        assert store.get_run(TEAM).settings == given  # type: ignore[union-attr]
        since = _seq(store)
        ended = store.update_run(TEAM, settings={"ended": RunOutcome("budget", "spent")})
        assert ended.settings == dataclasses.replace(given, ended=RunOutcome("budget", "spent"))
        (event,) = store.read_events(TEAM, since=since)
        assert event.payload == {"settings": {"ended": {"outcome": "budget", "reason": "spent"}}}
        since = _seq(store)
        store.update_run(TEAM, settings={"ended": RunOutcome("budget", "spent")})  # no change
        assert store.read_events(TEAM, since=since) == []
        with pytest.raises(UserError, match="no run setting named budget"):
            store.update_run(TEAM, settings={"budget": 2.0})  # type: ignore[arg-type]
        assert store.get_run(TEAM).settings == ended.settings  # type: ignore[union-attr]
        again = store.start_run(TEAM, "the goal", "alice", RunSettings(delegate=True))
        assert again.settings == RunSettings(delegate=True)  # a new run, new settings

    def test_two_settings_changes_at_once_both_hold(
        self, store: Store, make_store: MakeStore
    ) -> None:
        """Each change is applied to the settings as they are in its own transaction: a
        budget raised while the run's end is recorded is not lost (nor is the end)."""
        _run(store)
        changes: list[RunSettingsChange] = [
            {"budget_usd": 9.0},
            {"ended": RunOutcome("stopped", "by hand")},
            {"max_teammates": 4},
            {"teammate_model": "openai:x"},
        ]
        others = [make_store(clock=FakeClock()) for _ in changes]  # one connection each
        with ThreadPoolExecutor(len(changes)) as pool:
            list(pool.map(lambda o, c: o.update_run(TEAM, settings=c), others, changes))
        settings = store.get_run(TEAM).settings  # type: ignore[union-attr]
        assert settings == RunSettings(
            teammate_model="openai:x",
            max_teammates=4,
            budget_usd=9.0,
            ended=RunOutcome("stopped", "by hand"),
        )

    def test_one_run_supervisor_at_a_time(self, store: Store, clock: FakeClock) -> None:
        _run(store)
        first = store.claim_supervisor(TEAM, 10, "h", 5.0)
        before = _seq(store)
        with pytest.raises(InvalidState):
            store.claim_supervisor(TEAM, 11, "h", 5.0)
        assert _seq(store) == before
        clock.advance(6)
        second = store.claim_supervisor(TEAM, 11, "h", 5.0)
        assert second.supervisor_token == first.supervisor_token + 1
        with pytest.raises(StaleToken):
            store.renew_supervisor(TEAM, first.supervisor_token, 5.0)
        store.release_supervisor(TEAM, first.supervisor_token)  # not ours: nothing
        assert store.get_run(TEAM).supervisor_expires_at is not None  # type: ignore[union-attr]
        store.release_supervisor(TEAM, second.supervisor_token)
        assert store.get_run(TEAM).supervisor_expires_at is None  # type: ignore[union-attr]

    def test_a_spawn_request_is_handled_once(self, store: Store) -> None:
        _run(store)
        spawn = store.request_spawn(TEAM, "dave", token_hash="h", agent="writer", host="b")
        assert (spawn.name, spawn.status, spawn.host) == ("dave", "pending", "b")
        assert store.get_member(TEAM, "dave").status == MemberStatus.STARTING
        assert "dave" in store.get_run(TEAM).wanted  # type: ignore[union-attr]
        with pytest.raises(InvalidState):
            store.request_spawn(TEAM, "dave", token_hash="h")
        refused = store.finish_spawn(TEAM, spawn.id, SpawnStatus.REFUSED, "no such agent")
        assert refused.status == "refused" and store.pending_spawns(TEAM) == []
        assert "dave" not in store.get_run(TEAM).wanted  # type: ignore[union-attr]
        for not_final in (SpawnStatus.TAKEN, "maybe"):
            with pytest.raises(UserError):
                store.finish_spawn(TEAM, spawn.id, not_final)  # type: ignore[arg-type]

    # host supervisors --------------------------------------------------------------

    def test_one_supervisor_per_host(self, store: Store, clock: FakeClock) -> None:
        _run(store)
        token = _host(store, "a", slots=2)
        before = _seq(store)
        with pytest.raises(InvalidState, match="already served"):
            _host(store, "a")
        assert _seq(store) == before
        other = _host(store, "b")
        assert {h.host for h in store.list_hosts(TEAM)} == {"a", "b"}
        clock.advance(11)
        again = _host(store, "a")
        assert again == token + 1 and other == 1
        with pytest.raises(StaleToken):
            store.renew_host(TEAM, "a", token, 10.0)
        renewed = store.renew_host(TEAM, "a", again, 30.0)
        assert renewed.expires_at == clock() + 30.0 and renewed.live(clock())
        assert _host(store, "a", take_over=True) == again + 1

    def test_bad_host_settings_are_refused(self, store: Store) -> None:
        _run(store)
        before = _seq(store)
        with pytest.raises(InvalidName):
            _host(store, "No Such/Host")
        with pytest.raises(UserError, match="slot"):
            _host(store, "a", slots=0)
        assert _seq(store) == before and store.list_hosts(TEAM) == []

    def test_each_spawn_is_taken_by_one_host(self, store: Store) -> None:
        _run(store)
        a, b = _host(store, "a"), _host(store, "b")
        anywhere = store.request_spawn(TEAM, "dave", token_hash="h")
        pinned = store.request_spawn(TEAM, "erin", token_hash="h", host="b")
        first = store.take_spawn(TEAM, "a", a)
        assert first is not None and first.id == anywhere.id and first.taken_by == "a"
        assert store.take_spawn(TEAM, "a", a) is None  # erin waits for b
        second = store.take_spawn(TEAM, "b", b)
        assert second is not None and second.id == pinned.id
        assert store.take_spawn(TEAM, "b", b) is None
        assert [(s.status, s.taken_by) for s in store.pending_spawns(TEAM)] == [
            ("taken", "a"),
            ("taken", "b"),
        ]
        with pytest.raises(StaleToken):
            store.take_spawn(TEAM, "a", a + 1)
        store.finish_spawn(TEAM, first.id, SpawnStatus.STARTED)
        assert [s.name for s in store.pending_spawns(TEAM)] == ["erin"]
        # A request already taken blocks a second request for the same member.
        with pytest.raises(InvalidState):
            store.request_spawn(TEAM, "erin", token_hash="h")

    def test_a_released_host_gives_back_what_it_took(self, store: Store) -> None:
        _run(store)
        a = _host(store, "a")
        store.request_spawn(TEAM, "dave", token_hash="h")
        assert store.take_spawn(TEAM, "a", a) is not None
        seq = _seq(store)
        store.release_host(TEAM, "a", a)
        assert _kinds(store, seq) == ["host_left"]
        assert [(s.name, s.status) for s in store.pending_spawns(TEAM)] == [("dave", "pending")]
        assert not store.list_hosts(TEAM)[0].live(0)
        with pytest.raises(StaleToken):
            store.renew_host(TEAM, "a", a, 10.0)
        store.release_host(TEAM, "a", a)  # twice: nothing more
        assert _kinds(store, seq) == ["host_left"]

    def test_members_of_a_lost_host_are_placed_again(self, store: Store, clock: FakeClock) -> None:
        _run(store, want=("bob", "carol"))
        a, b = _host(store, "a", lease=5.0), _host(store, "b", lease=60.0)
        placed = store.place_wanted(TEAM)
        assert sorted(s.name for s in placed) == ["bob", "carol"]  # never the lead
        assert all(s.host is None for s in placed)
        assert store.place_wanted(TEAM) == []  # they wait for their requests already
        for host, token in (("a", a), ("b", b)):
            spawn = store.take_spawn(TEAM, host, token)
            assert spawn is not None
            store.update_member(TEAM, spawn.name, status=MemberStatus.WORKING, pid=7, host=host)
            store.finish_spawn(TEAM, spawn.id, SpawnStatus.STARTED)
        on_a = next(m.name for m in store.list_members(TEAM) if m.host == "a")
        assert store.place_wanted(TEAM) == []
        clock.advance(6)  # a stops renewing; b is alive
        seq = _seq(store)
        again = store.place_wanted(TEAM)
        assert [s.name for s in again] == [on_a]
        lost = [e for e in store.read_events(TEAM, since=seq) if e.kind == "host_lost"]
        assert [e.payload["members"] for e in lost] == [[on_a]]
        moved = store.get_member(TEAM, on_a)
        assert moved.status == MemberStatus.CRASHED and moved.host is None
        with pytest.raises(StaleToken):
            store.renew_host(TEAM, "a", a, 5.0)
        taken = store.take_spawn(TEAM, "b", b)
        assert taken is not None and taken.name == on_a

    def test_a_supervisors_pass_over_an_idle_team_commits_nothing(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        _run(store, want=("bob",))
        token = _host(store, "a", lease=60.0)
        assert [s.name for s in store.place_wanted(TEAM)] == ["bob"]
        watcher = make_store(clock=clock)
        store.take_spawn(TEAM, "a", token)  # bob's request, taken
        time.sleep(0.3)  # that commit's notification, on a server, arrives first
        marker = watcher.change_marker()
        seq = _seq(store)
        for _ in range(3):  # a supervisor's passes over an idle team
            assert store.place_wanted(TEAM) == []
            assert store.take_spawn(TEAM, "a", token) is None
        assert _seq(store) == seq
        time.sleep(0.3)  # a server's notification would have come by now
        assert watcher.change_marker() == marker  # no commit: nobody is woken

    def test_a_pinned_member_waits_for_its_host(self, store: Store, clock: FakeClock) -> None:
        _run(store)
        b = _host(store, "b", lease=5.0)
        spawn = store.request_spawn(TEAM, "dave", token_hash="h", host="b")
        assert store.take_spawn(TEAM, "b", b) is not None
        store.update_member(TEAM, "dave", status=MemberStatus.WORKING, pid=7, host="b")
        store.finish_spawn(TEAM, spawn.id, SpawnStatus.STARTED)
        clock.advance(6)
        (again,) = store.place_wanted(TEAM)
        assert again.name == "dave" and again.host == "b"
        c = _host(store, "c")
        assert store.take_spawn(TEAM, "c", c) is None
        b2 = _host(store, "b")
        taken = store.take_spawn(TEAM, "b", b2)
        assert taken is not None and taken.name == "dave"

    def test_a_host_served_again_forgets_its_dead_members(
        self, store: Store, clock: FakeClock
    ) -> None:
        _run(store, want=("bob",))
        a = _host(store, "a", lease=5.0)
        store.update_member(TEAM, "bob", status=MemberStatus.WORKING, pid=7, host="a")
        assert store.place_wanted(TEAM) == []
        spawn = store.request_spawn(TEAM, "dave", token_hash="h")
        assert store.take_spawn(TEAM, "a", a) is not None
        # The supervisor of a dies and a new one serves a at once (it knows the old is dead).
        _host(store, "a", take_over=True)
        assert store.get_member(TEAM, "bob").host is None
        assert [s.id for s in store.pending_spawns(TEAM)] == [spawn.id]
        assert [s.name for s in store.place_wanted(TEAM)] == ["bob"]

    # moving a team ---------------------------------------------------------------

    def test_a_dumped_team_loads_whole_under_another_name(
        self, store: Store, clock: FakeClock
    ) -> None:
        _busy_team(store, clock)
        dump = store.dump_team(TEAM)
        copied = store.load_team(dataclasses.replace(dump, team="copy"))
        assert copied["events"] == len(store.read_events(TEAM)) and copied["tasks"] == 2
        assert copied["project memories"] == 0  # the project's entry is already here
        assert store.dump_team("copy").counts() == dump.counts()

        def same(a: object, b: object, *drop: str) -> None:
            def plain(x: object) -> dict[str, object]:
                fields = dataclasses.fields(x)  # type: ignore[arg-type]
                d = {f.name: getattr(x, f.name) for f in fields}
                return {k: v for k, v in d.items() if k not in ("team", *drop)}

            assert plain(a) == plain(b)

        for a, b in zip(store.list_tasks(TEAM), store.list_tasks("copy"), strict=True):
            same(a, b)
        for m, n in zip(store.list_members(TEAM), store.list_members("copy"), strict=True):
            same(m, n)
        run, again = store.get_run(TEAM), store.get_run("copy")
        same(run, again)
        old = store.list_messages(TEAM, limit=100)
        new = store.list_messages("copy", limit=100)
        assert [m.body for m in old] == [m.body for m in new]
        # Message ids are store-wide, so the copy's are new, and its reply points within it.
        assert {m.id for m in old}.isdisjoint({m.id for m in new})
        replies = [m for m in new if m.reply_to is not None]
        assert [r.reply_to for r in replies] == [next(m.id for m in new if m.body == "question")]
        # The event log is the same history, pointing at the copy's own ids.
        events = store.read_events("copy")
        assert [(e.seq, e.kind, e.at) for e in events] == [
            (e.seq, e.kind, e.at) for e in store.read_events(TEAM)
        ]
        sent = [i for e in events if e.kind == "message_sent" for i in e.payload["ids"]]
        assert sorted(sent) == sorted(m.id for m in new)
        # Memory: the supersession chain holds among the copy's entries.
        mine = [m for m in store.list_memories("copy") if m.team == "copy"]
        standing = next(m for m in mine if m.supersedes is not None)
        replaced = store.get_memory("copy", standing.supersedes)  # type: ignore[arg-type]
        assert replaced.team == "copy" and replaced.superseded_by == standing.id
        assert [(n.version, n.text, n.at) for n in store.continuity("copy", "bob")] == [
            (n.version, n.text, n.at) for n in store.continuity(TEAM, "bob")
        ]
        assert store.read_transcript("copy", "bob") == store.read_transcript(TEAM, "bob")
        assert store.usage_totals("copy") == store.usage_totals(TEAM)
        assert [(h.host, h.token) for h in store.list_hosts("copy")] == [("a", 1)]

    def test_loading_a_team_that_exists_changes_nothing(
        self, store: Store, clock: FakeClock
    ) -> None:
        from accord.testing.conformance import refused  # (that module imports this one)

        _busy_team(store, clock)
        dump = store.dump_team(TEAM)
        with refused(store, AlreadyExists):
            store.load_team(dump)


def _busy_team(store: Store, clock: FakeClock) -> None:
    """A team with something in every table."""
    first = store.add_task(TEAM, NewTask("first"), max_attempts=3)
    store.add_task(TEAM, NewTask("second", blocked_by=(first.id,)), max_attempts=3)
    claim = store.claim_task(TEAM, "bob", lease_seconds=60)
    assert claim is not None
    store.complete_task(TEAM, claim.task.id, "bob", claim.fencing_token, "done")
    question = store.send_message(TEAM, OutgoingMessage("alice", "bob", "question"))[0]
    store.send_message(TEAM, OutgoingMessage("bob", "alice", "answer", reply_to=question.id))
    store.receive_messages(TEAM, "bob", visibility_timeout=30)
    store.ack_messages(TEAM, "bob", [question.id])
    store.append_transcript(
        TEAM,
        [TranscriptEntry("bob", 1, TranscriptKind.MESSAGE, {"role": "user", "text": "hi"})],
        usage=UsageRecord("bob", "scripted:x", 10, 5, cost_usd=0.01),
    )
    clock.advance(5)
    old, _ = store.add_memory(TEAM, NewMemory(MemoryType.DECISION, "use sqlite"))
    store.add_memory(TEAM, NewMemory(MemoryType.DECISION, "use postgres", supersedes=old.id))
    store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "shared", scope="project"))
    store.set_continuity(TEAM, "bob", "I finished the first task.")
    _run(store, want=("bob",))
    store.request_spawn(TEAM, "dave", token_hash="h", host="a")
    _host(store, "a")
