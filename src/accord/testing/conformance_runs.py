"""Conformance for runs, supervisor leases, spawn requests and host supervisors.

A mixin of ``StoreConformance`` (it uses that class's ``store`` and ``clock``
fixtures: team ``main`` with alice, bob and carol), kept in its own module so the
promises about who runs where read together.
"""

from __future__ import annotations

import pytest

from accord.errors import InvalidName, InvalidState, StaleToken, UserError
from accord.store.base import Store
from accord.testing import FakeClock
from accord.types import MemberStatus, RunStatus

TEAM = "main"


def _run(store: Store, want: tuple[str, ...] = ()) -> None:
    store.start_run(TEAM, "the goal", "alice", {"budget_usd": 1.0})
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
        assert run.settings == {"budget_usd": 1.0}
        updated = store.update_run(TEAM, want=["bob", "carol"], unwant=["carol"])
        assert updated.wanted == ("alice", "bob")
        done = store.update_run(TEAM, status=RunStatus.FINISHED, summary="all done")
        assert done.status == RunStatus.FINISHED and done.summary == "all done"

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
        refused = store.finish_spawn(TEAM, spawn.id, "refused", "no such agent")
        assert refused.status == "refused" and store.pending_spawns(TEAM) == []
        assert "dave" not in store.get_run(TEAM).wanted  # type: ignore[union-attr]
        with pytest.raises(UserError):
            store.finish_spawn(TEAM, spawn.id, "maybe")

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
        store.finish_spawn(TEAM, first.id, "started")
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
            store.finish_spawn(TEAM, spawn.id, "started")
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

    def test_a_pinned_member_waits_for_its_host(self, store: Store, clock: FakeClock) -> None:
        _run(store)
        b = _host(store, "b", lease=5.0)
        spawn = store.request_spawn(TEAM, "dave", token_hash="h", host="b")
        assert store.take_spawn(TEAM, "b", b) is not None
        store.update_member(TEAM, "dave", status=MemberStatus.WORKING, pid=7, host="b")
        store.finish_spawn(TEAM, spawn.id, "started")
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
