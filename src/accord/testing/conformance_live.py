"""Conformance for members' live output: what a member's model is writing right now.

A mixin of ``StoreConformance`` (it uses that class's ``store``, ``clock`` and
``make_store`` fixtures: team ``main`` with alice, bob and carol), kept in its own
module so the promises about live output read together: one row per member, replaced
by each write and gone when cleared; seen from another connection (another machine,
on a server); no event, and no change marker moves for it, so a member streaming its
reply wakes none of its waiting teammates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from accord.errors import UnknownMember, UnknownTeam, UserError
from accord.store.base import Store
from accord.store.limits import MAX_LIVE
from accord.testing import FakeClock
from accord.types import LiveOutput

if TYPE_CHECKING:
    from accord.testing.conformance import MakeStore

TEAM = "main"


class LiveOutputConformance:
    """Members' live output (``set_live``, ``clear_live``, ``read_live``)."""

    def test_live_output_is_replaced_read_and_cleared(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        assert store.read_live(TEAM) == []
        store.set_live(TEAM, "bob", 2, "Let me")
        clock.advance(0.25)
        store.set_live(TEAM, "bob", 2, "Let me look at", ["read_file"])
        store.set_live(TEAM, "alice", 1, "Héllo ✓")
        at = clock()
        bob = LiveOutput("bob", 2, "Let me look at", ("read_file",), at)
        alice = LiveOutput("alice", 1, "Héllo ✓", (), at)
        assert store.read_live(TEAM) == [alice, bob]
        assert store.read_live(TEAM, "bob") == [bob]
        assert store.read_live(TEAM, "carol") == []
        # Another connection (another process, or on a server another machine) sees it.
        other = make_store(clock=clock)
        assert other.read_live(TEAM) == [alice, bob]
        store.clear_live(TEAM, "bob")
        store.clear_live(TEAM, "bob")  # harmless when there is none
        store.clear_live(TEAM, "carol")
        assert other.read_live(TEAM) == [alice]

    def test_live_output_logs_nothing_and_moves_no_marker(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        watcher = make_store(clock=clock)
        since = store.read_events(TEAM)[-1].seq
        marker = watcher.change_marker()
        for n in range(5):
            store.set_live(TEAM, "alice", 1, "word " * n, ["bash"] if n > 2 else [])
        store.clear_live(TEAM, "alice")
        assert watcher.change_marker() == marker
        assert store.read_events(TEAM, since=since) == []

    def test_live_output_refuses_bad_input(self, store: Store) -> None:
        with pytest.raises(UnknownMember):
            store.set_live(TEAM, "dave", 1, "text")
        with pytest.raises(UnknownTeam):
            store.set_live("nope", "alice", 1, "text")
        with pytest.raises(UnknownTeam):
            store.read_live("nope")
        with pytest.raises(UserError, match="live output"):
            store.set_live(TEAM, "alice", 1, "x" * (MAX_LIVE + 1))
        assert store.read_live(TEAM) == []

    def test_deleting_a_team_clears_its_live_output(self, store: Store) -> None:
        store.create_team("other")
        store.add_member("other", "alice", token_hash="h")
        store.set_live(TEAM, "alice", 1, "main's")
        store.set_live("other", "alice", 1, "other's")
        store.delete_team(TEAM)
        assert [o.text for o in store.read_live("other")] == ["other's"]
        store.create_team(TEAM)
        store.add_member(TEAM, "alice", token_hash="h")
        assert store.read_live(TEAM) == []
