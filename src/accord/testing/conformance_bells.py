"""Conformance for bells: a commit wakes exactly the members it concerns.

A mixin of ``StoreConformance`` (its ``store``, ``clock`` and ``make_store`` fixtures:
team ``main`` with alice, bob and carol). Bells are held on another connection than
the one writing (another process, or on a server another machine), as waiting members
hold them. What is promised: a bell rings after a commit that concerns its member
(mail to it, a task it could claim becoming ready) from the moment ``bell`` returns;
a watching bell rings after any commit to its team; nobody's rings for a write that
failed, for another team's writes, or for another member's mail; and
``pending_work`` says when time alone will change its answer, so a waiter needs no
timer but that one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from accord.errors import UnknownMember, UnknownTeam
from accord.store.base import Store
from accord.testing import FakeClock
from accord.types import NewTask, OutgoingMessage

if TYPE_CHECKING:
    from accord.store.bells import Bell
    from accord.testing.conformance import MakeStore

TEAM = "main"
RUNG = 5.0  # how long a ring may take to arrive (a server's notification is not instant)
SILENT = 0.3  # how long a bell that must not ring is watched


def _rung(bell: Bell) -> bool:
    return bell.wait(RUNG)


def _silent(bell: Bell) -> bool:
    return not bell.wait(SILENT)


def _mail(store: Store, sender: str, recipient: str, body: str = "hi") -> None:
    store.send_message(TEAM, OutgoingMessage(sender=sender, recipient=recipient, body=body))


class BellConformance:
    """Bells (``bell``) and the deadlines of ``pending_work``."""

    def test_a_bell_rings_for_mail_to_its_member_and_no_other(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        waiting = make_store(clock=clock)
        with waiting.bell(TEAM, "bob") as bob, waiting.bell(TEAM, "carol") as carol:
            assert bob.deaf is None
            _mail(store, "alice", "bob")
            assert _rung(bob)
            assert _silent(carol)
            assert _silent(bob)  # the ring was taken: it does not ring again by itself
            _mail(store, "alice", "*")  # a broadcast reaches everyone but its sender
            assert _rung(bob) and _rung(carol)

    def test_a_task_that_becomes_ready_rings_those_who_could_claim_it(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        waiting = make_store(clock=clock)
        with waiting.bell(TEAM, "bob") as bob, waiting.bell(TEAM, "carol") as carol:
            first = store.add_task(TEAM, NewTask("first"), max_attempts=3)
            assert _rung(bob) and _rung(carol)
            store.add_task(TEAM, NewTask("then", blocked_by=(first.id,)), max_attempts=3)
            bob.wait(RUNG)
            carol.wait(RUNG)
            claim = store.claim_task(TEAM, "alice", lease_seconds=60, task_id=first.id)
            assert claim is not None
            assert _silent(bob) and _silent(carol)  # a claim makes nothing claimable
            store.complete_task(TEAM, first.id, "alice", claim.fencing_token, "done")
            assert _rung(bob) and _rung(carol)  # "then" is ready now

    def test_a_watching_bell_rings_for_any_change_of_its_team_only(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        store.create_team("other")
        store.add_member("other", "alice", token_hash="h")
        waiting = make_store(clock=clock)
        with waiting.bell(TEAM, "alice", watch=True) as lead, waiting.bell(TEAM, "bob") as bob:
            task = store.add_task(TEAM, NewTask("t"), max_attempts=3)
            assert _rung(lead)
            bob.wait(RUNG)
            assert store.claim_task(TEAM, "carol", lease_seconds=60, task_id=task.id)
            assert _rung(lead)  # a claim: the lead hears of it, bob does not
            assert _silent(bob)
            _mail(store, "carol", "bob")
            assert _rung(lead) and _rung(bob)
            store.add_task("other", NewTask("elsewhere"), max_attempts=3)
            assert _silent(lead)  # another team's commits ring nobody here

    def test_a_bell_hears_every_commit_made_after_it_is_returned(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        waiting = make_store(clock=clock)
        for n in range(20):
            with waiting.bell(TEAM, "bob") as bell:
                _mail(store, "alice", "bob", f"message {n}")
                assert _rung(bell), f"message {n} rang nobody"

    def test_a_failed_write_rings_nobody(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        waiting = make_store(clock=clock)
        with waiting.bell(TEAM, "bob", watch=True) as bob:
            with pytest.raises(UnknownMember):
                _mail(store, "alice", "dave")  # refused inside its transaction
            assert _silent(bob)
            bob.ring()  # a ring from this process (a stop asked for) still reaches it
            assert _rung(bob)

    def test_a_bell_names_a_team_and_member_that_exist(self, store: Store) -> None:
        with pytest.raises(UnknownTeam):
            store.bell("nope", "alice")
        with pytest.raises(UnknownMember):
            store.bell(TEAM, "dave")

    def test_pending_work_says_when_time_alone_changes_it(
        self, store: Store, clock: FakeClock
    ) -> None:
        assert store.pending_work(TEAM, "bob").next_at is None
        _mail(store, "alice", "bob")
        assert store.pending_work(TEAM, "bob").next_at is None  # visible now: nothing due
        store.receive_messages(TEAM, "bob", visibility_timeout=30)
        assert store.pending_work(TEAM, "bob").next_at == pytest.approx(clock() + 30)
        clock.advance(10)
        task = store.add_task(TEAM, NewTask("t"), max_attempts=3)
        assert store.claim_task(TEAM, "alice", lease_seconds=5, task_id=task.id)
        # Bob could take the task over once alice's lease ends, before his mail is back.
        assert store.pending_work(TEAM, "bob").next_at == pytest.approx(clock() + 5)
        assert store.pending_work(TEAM, "carol").next_at == pytest.approx(clock() + 5)
        clock.advance(6)
        work = store.pending_work(TEAM, "bob")
        assert work.ready_tasks == 1
        assert work.next_at == pytest.approx(clock() + 14)
