"""Conformance for deliberations: phases the store enforces, on every backend.

A mixin of ``StoreConformance`` (its ``store`` and ``clock`` fixtures: team ``main``
with alice, bob and carol). The promises: a participant cannot read the others'
positions before it submitted its own (refused, nothing written); a position is
counted once however often it is retried; a phase ends when everyone owing a
submission made it, or at its deadline with the missing marked absent; the synthesis
lease passes to another participant only once it ran out, and only the holder's
token finishes; every step is in the log.
"""

from __future__ import annotations

import pytest

from accord.errors import InvalidState, Reason, UnknownDeliberation, UserError
from accord.store.base import Store
from accord.testing import FakeClock
from accord.types import PERSON, DeliberationPhase

TEAM = "main"


class DeliberationConformance:
    """Deliberations, on every backend."""

    def test_reading_before_submitting_is_refused_and_writes_nothing(self, store: Store) -> None:
        from accord.testing.conformance import logs

        d = store.open_deliberation(TEAM, "tabs or spaces?", PERSON, ["alice", "bob"])
        assert d.phase == DeliberationPhase.POSITIONS and d.channel == "#ask-1"
        with logs(store):
            with pytest.raises(InvalidState) as refused:
                store.read_positions(TEAM, d.id, "bob")
        assert refused.value.reason == Reason.POSITION_FIRST
        store.submit_position(TEAM, d.id, "alice", "spaces: PEP 8")
        with pytest.raises(InvalidState):
            store.read_positions(TEAM, d.id, "bob")  # still refused: bob has not submitted
        assert [p.body for p in store.read_positions(TEAM, d.id, "alice")] == ["spaces: PEP 8"]

    def test_a_retried_position_counts_once(self, store: Store) -> None:
        from accord.testing.conformance import logs

        d = store.open_deliberation(TEAM, "q?", PERSON, ["alice", "bob"], rounds=0)
        store.submit_position(TEAM, d.id, "alice", "yes")
        with logs(store):  # the same text again (a retry after kill -9) is no change
            store.submit_position(TEAM, d.id, "alice", "yes")
        with pytest.raises(InvalidState):
            store.submit_position(TEAM, d.id, "alice", "no, changed my mind")
        assert len(store.deliberation_positions(TEAM, d.id)) == 1

    def test_a_retry_after_its_round_ended_counts_once(self, store: Store) -> None:
        """A member killed after its submission ended the round retries it in the next
        phase: the same text is no change there too; a position meant for the positions
        phase is refused in the exchange."""
        from accord.testing.conformance import logs

        d = store.open_deliberation(TEAM, "q?", PERSON, ["alice", "bob"], rounds=1)
        store.submit_position(TEAM, d.id, "alice", "a")
        assert store.submit_position(TEAM, d.id, "bob", "b").phase == DeliberationPhase.EXCHANGE
        with logs(store):
            store.submit_position(TEAM, d.id, "bob", "b")
            store.submit_position(TEAM, d.id, "bob", "b", phase=DeliberationPhase.POSITIONS)
            with pytest.raises(InvalidState) as refused:
                store.submit_position(TEAM, d.id, "alice", "a2", phase=DeliberationPhase.POSITIONS)
        assert refused.value.reason == Reason.WRONG_PHASE
        store.submit_position(TEAM, d.id, "alice", "ra", phase=DeliberationPhase.EXCHANGE)
        d = store.submit_position(TEAM, d.id, "bob", "rb")
        assert d.phase == DeliberationPhase.SYNTHESIS
        with logs(store):
            store.submit_position(TEAM, d.id, "bob", "rb")
        with pytest.raises(InvalidState):
            store.submit_position(TEAM, d.id, "bob", "something new")
        rows = [(p.member, p.round) for p in store.deliberation_positions(TEAM, d.id)]
        assert rows == [("alice", 0), ("bob", 0), ("alice", 1), ("bob", 1)]

    def test_the_same_words_in_a_new_round_count_unless_they_ended_the_last(
        self, store: Store, clock: FakeClock
    ) -> None:
        """bob's reply ended round 1, so the same text again is his retry; alice's did
        not (a retry would have come while round 1 was open), so hers is a round 2 reply."""
        from accord.testing.conformance import logs

        d = store.open_deliberation(TEAM, "q?", PERSON, ["alice", "bob"], rounds=2)
        store.submit_position(TEAM, d.id, "alice", "a")
        store.submit_position(TEAM, d.id, "bob", "b")
        store.submit_position(TEAM, d.id, "alice", "I still say a")
        clock.advance(1)
        assert store.submit_position(TEAM, d.id, "bob", "b, then").round == 2
        reply = DeliberationPhase.EXCHANGE
        with logs(store):
            store.submit_position(TEAM, d.id, "bob", "b, then", phase=reply)
        store.submit_position(TEAM, d.id, "alice", "I still say a", phase=reply)
        rows = [(p.member, p.round) for p in store.deliberation_positions(TEAM, d.id)]
        assert rows == [("alice", 0), ("bob", 0), ("alice", 1), ("bob", 1), ("alice", 2)]

    def test_the_person_takes_part(self, store: Store) -> None:
        d = store.open_deliberation(
            TEAM, "q?", "alice", [PERSON, "alice"], rounds=0, synthesizer=PERSON
        )
        assert [p.member for p in d.participants] == ["alice", PERSON]
        with pytest.raises(InvalidState):
            store.read_positions(TEAM, d.id, PERSON)
        store.submit_position(TEAM, d.id, PERSON, "mine")
        d = store.submit_position(TEAM, d.id, "alice", "hers")
        assert (d.phase, d.lease_holder) == (DeliberationPhase.SYNTHESIS, PERSON)
        d = store.finish_deliberation(TEAM, d.id, PERSON, d.lease_token, "ours")
        assert d.phase == DeliberationPhase.DONE

    def test_phases_run_positions_exchange_synthesis_done(self, store: Store) -> None:
        from accord.testing.conformance import logs

        d = store.open_deliberation(
            TEAM, "which queue?", "alice", ["bob", "carol"], rounds=2, synthesizer="bob"
        )
        # alice asked: the channel has her, bob and carol; both got the question as mail
        assert [m.recipient for m in store.channel_history(TEAM, d.channel)] == [d.channel]
        store.submit_position(TEAM, d.id, "bob", "redis: we run it")
        with logs(
            store,
            "position_submitted",
            "deliberation_phase",
            "message_sent",  # the positions revealed in the channel
        ):
            d = store.submit_position(TEAM, d.id, "carol", "postgres: one store")
        assert (d.phase, d.round) == (DeliberationPhase.EXCHANGE, 1)
        assert "redis" in store.channel_history(TEAM, d.channel)[-1].body
        store.submit_position(TEAM, d.id, "bob", "fair: postgres then")
        d = store.agree(TEAM, d.id, "carol")
        # round 1 is complete and only bob has not agreed: nobody left to answer him
        assert (d.phase, d.round) == (DeliberationPhase.SYNTHESIS, 1)
        assert (d.lease_holder, d.lease_token) == ("bob", 1)
        with pytest.raises(InvalidState):
            store.finish_deliberation(TEAM, d.id, "carol", 1, "mine")
        d = store.finish_deliberation(
            TEAM, d.id, "bob", 1, "postgres", agreement="one store", dissent="none"
        )
        assert (d.phase, d.answer, d.dissent) == (DeliberationPhase.DONE, "postgres", "none")
        assert store.finish_deliberation(TEAM, d.id, "bob", 1, "postgres") == d  # a retry
        answer = store.channel_history(TEAM, d.channel)[-1]
        assert answer.sender == "bob" and "postgres" in answer.body
        assert [p.round for p in store.deliberation_positions(TEAM, d.id)] == [0, 0, 1]

    def test_a_missed_deadline_marks_absent_and_goes_on(
        self, store: Store, clock: FakeClock
    ) -> None:
        d = store.open_deliberation(TEAM, "q?", PERSON, ["alice", "bob"], phase_seconds=60)
        store.submit_position(TEAM, d.id, "alice", "a")
        assert store.settle_deliberation(TEAM, d.id).phase == DeliberationPhase.POSITIONS
        clock.advance(61)
        d = store.settle_deliberation(TEAM, d.id)
        # one present: no exchange with nobody; alice synthesizes
        assert d.phase == DeliberationPhase.SYNTHESIS and d.lease_holder == "alice"
        assert [p.absent for p in d.participants] == [False, True]
        with pytest.raises(InvalidState):
            store.submit_position(TEAM, d.id, "bob", "late")

    def test_the_synthesis_passes_on_only_after_its_lease(
        self, store: Store, clock: FakeClock
    ) -> None:
        d = store.open_deliberation(
            TEAM, "q?", "carol", ["alice", "bob"], rounds=0, synthesizer="alice", phase_seconds=30
        )
        store.submit_position(TEAM, d.id, "alice", "a")
        d = store.submit_position(TEAM, d.id, "bob", "b")
        assert (d.phase, d.lease_holder) == (DeliberationPhase.SYNTHESIS, "alice")
        with pytest.raises(InvalidState):
            store.claim_synthesis(TEAM, d.id, "bob")  # alice's lease still runs
        clock.advance(31)  # alice crashed mid-synthesis
        d = store.claim_synthesis(TEAM, d.id, "carol")  # the asker takes over
        assert (d.lease_holder, d.lease_token) == ("carol", 2)
        with pytest.raises(InvalidState):
            store.finish_deliberation(TEAM, d.id, "alice", 1, "stale")
        d = store.finish_deliberation(TEAM, d.id, "carol", 2, "b")
        assert d.phase == DeliberationPhase.DONE

    def test_a_lapsed_synthesis_passes_on_in_turn_and_is_said(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Nobody claims a dead synthesizer's work: once its lease ran out, the next step
        (the supervisor's look, anyone's call) records the lapse, tells the channel, and
        hands the lease to the next participant, then the asker, round again."""
        from accord.testing.conformance import logs

        d = store.open_deliberation(
            TEAM, "q?", "carol", ["alice", "bob"], rounds=0, synthesizer="alice", phase_seconds=30
        )
        store.submit_position(TEAM, d.id, "alice", "a")
        d = store.submit_position(TEAM, d.id, "bob", "b")
        assert store.open_deliberations(TEAM) == [(d.id, d.lease_until)]
        clock.advance(31)
        with logs(store, "synthesis_lapsed", "message_sent", "synthesis_claimed") as written:
            d = store.settle_deliberation(TEAM, d.id)
        assert written[0].payload == {"id": d.id, "member": "alice", "token": 1, "next": "bob"}
        assert (d.lease_holder, d.lease_token) == ("bob", 2)
        said = store.channel_history(TEAM, d.channel)[-1].body
        assert "lapsed" in said and "bob writes the one answer" in said
        with logs(store):
            store.settle_deliberation(TEAM, d.id)  # bob's lease runs: no change
        clock.advance(31)
        d = store.settle_deliberation(TEAM, d.id)
        assert (d.lease_holder, d.lease_token) == ("carol", 3)  # then the asker
        mail = store.list_messages(TEAM, member="carol")
        assert any("lapsed" in m.body and m.recipient == "carol" for m in mail)
        clock.advance(31)
        d = store.settle_deliberation(TEAM, d.id)
        assert (d.lease_holder, d.lease_token) == ("alice", 4)  # and round again
        assert "Each in turn has had it" in store.channel_history(TEAM, d.channel)[-1].body
        clock.advance(31)
        with logs(store):  # each had its turn: it waits for anyone to claim it
            d = store.settle_deliberation(TEAM, d.id)
        assert store.open_deliberations(TEAM) == [(d.id, d.lease_until)]
        with pytest.raises(InvalidState):
            store.finish_deliberation(TEAM, d.id, "bob", 4, "not his")
        d = store.claim_synthesis(TEAM, d.id, "alice")
        with pytest.raises(InvalidState):
            store.finish_deliberation(TEAM, d.id, "alice", 1, "stale token")
        d = store.finish_deliberation(TEAM, d.id, "alice", 4, "a")
        assert d.phase == DeliberationPhase.DONE and store.open_deliberations(TEAM) == []

    def test_the_holder_finishes_after_its_lease_if_nobody_took_it(
        self, store: Store, clock: FakeClock
    ) -> None:
        d = store.open_deliberation(TEAM, "q?", "carol", ["alice"], rounds=0, phase_seconds=30)
        d = store.submit_position(TEAM, d.id, "alice", "a")
        clock.advance(31)  # slow, not dead: its token is still the current one
        d = store.finish_deliberation(TEAM, d.id, "alice", d.lease_token, "a")
        assert d.phase == DeliberationPhase.DONE

    def test_bad_input_is_refused(self, store: Store) -> None:
        from accord.testing.conformance import logs

        with logs(store):
            for bad in (
                lambda: store.open_deliberation(TEAM, " ", PERSON, ["alice"]),
                lambda: store.open_deliberation(TEAM, "q", PERSON, []),
                lambda: store.open_deliberation(TEAM, "q", PERSON, ["nobody"]),
                lambda: store.open_deliberation(TEAM, "q", PERSON, ["alice"], rounds=99),
                lambda: store.read_positions(TEAM, 42, "alice"),
            ):
                with pytest.raises(UserError):
                    bad()
        with pytest.raises(UnknownDeliberation):
            store.deliberation(TEAM, 42)
        d = store.open_deliberation(TEAM, "q", PERSON, ["alice"])
        with pytest.raises(InvalidState) as refused:
            store.submit_position(TEAM, d.id, "carol", "not asked")
        assert refused.value.reason == Reason.NOT_PARTICIPANT
