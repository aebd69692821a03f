"""Conformance for advisory file claims: paths a member claims for a task it holds.

A mixin of ``StoreConformance`` (it uses that class's ``store``, ``clock`` and
``make_store`` fixtures: team ``main`` with alice, bob and carol), kept in its own
module so the promises about file claims read together: a claim needs the current
fencing token, two members never hold patterns one path could match, and a claim
ends with its task claim however that ends, with nothing to release by hand.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from accord.errors import (
    AccordError,
    FileClaimed,
    NotClaimHolder,
    StaleToken,
    UnknownTask,
    UnknownTeam,
    UserError,
)
from accord.events import EventKind
from accord.store.base import Store
from accord.store.limits import MAX_FILE_CLAIMS, MAX_PATTERN
from accord.testing import FakeClock
from accord.types import Claim, FileClaim, NewTask

if TYPE_CHECKING:
    from accord.testing.conformance import MakeStore

TEAM = "main"
LEASE = 60.0


def _take(store: Store, member: str, title: str = "task", lease: float = LEASE) -> Claim:
    task = store.add_task(TEAM, NewTask(title), max_attempts=3)
    claim = store.claim_task(TEAM, member, lease_seconds=lease, task_id=task.id)
    assert claim is not None
    return claim


def _claim(store: Store, claim: Claim, member: str, *patterns: str) -> list[FileClaim]:
    return store.claim_files(TEAM, claim.task.id, member, claim.fencing_token, patterns)


def _held(store: Store) -> list[tuple[int, str, str]]:
    return [(c.task_id, c.member, c.pattern) for c in store.file_claims(TEAM)]


def _rows(store: Store) -> int:
    """File claim rows the store keeps, dead or alive (a dump reads them all)."""
    return len(store.dump_team(TEAM).rows["file_claims"])


class FileClaimConformance:
    """Advisory file claims, on every backend."""

    def test_claim_files_and_read_them(self, store: Store, clock: FakeClock) -> None:
        alice = _take(store, "alice")
        with_events = store.read_events(TEAM)
        got = _claim(store, alice, "alice", "./src//api/", "README.md", "README.md")
        assert [(c.task_id, c.member, c.pattern, c.team) for c in got] == [
            (alice.task.id, "alice", "README.md", TEAM),
            (alice.task.id, "alice", "src/api/**", TEAM),
        ]
        assert all(c.claimed_at == clock() for c in got)
        (event,) = store.read_events(TEAM, since=with_events[-1].seq)
        assert event.kind == EventKind.FILES_CLAIMED and event.actor == "alice"
        assert event.payload == {
            "task_id": alice.task.id,
            "member": "alice",
            "token": alice.fencing_token,
            "patterns": ["src/api/**", "README.md"],
        }
        # Claiming what the task holds already changes nothing and writes no event; a new
        # pattern is added beside the others.
        seq = store.read_events(TEAM)[-1].seq
        assert _claim(store, alice, "alice", "src/api/**") == got
        assert store.read_events(TEAM, since=seq) == []
        clock.advance(1)
        more = _claim(store, alice, "alice", "docs/*.md", "README.md")
        assert [c.pattern for c in more] == ["README.md", "docs/*.md", "src/api/**"]
        assert store.read_events(TEAM, since=seq)[0].payload["patterns"] == ["docs/*.md"]
        assert store.file_claims(TEAM, task_id=alice.task.id) == more
        assert _held(store) == [
            (alice.task.id, "alice", p) for p in ("README.md", "docs/*.md", "src/api/**")
        ]
        # Another connection sees the same.
        assert store.file_claims(TEAM) == more
        with pytest.raises(UnknownTask):
            store.file_claims(TEAM, task_id=999)
        with pytest.raises(UnknownTeam):
            store.file_claims("nope")

    def test_file_holder_names_another_member_only(self, store: Store) -> None:
        alice = _take(store, "alice")
        _claim(store, alice, "alice", "src/api/**", "setup.py")
        holder = store.file_holder(TEAM, "src/api/x.py", "bob")
        assert holder is not None
        assert (holder.member, holder.task_id, holder.pattern) == (
            "alice",
            alice.task.id,
            "src/api/**",
        )
        deep = store.file_holder(TEAM, "src/api/v1/handlers.py", "carol")
        assert deep is not None and deep.member == "alice"
        assert store.file_holder(TEAM, "setup.py", "bob") is not None
        assert store.file_holder(TEAM, "src/api/x.py", "alice") is None  # her own
        assert store.file_holder(TEAM, "src/other.py", "bob") is None
        assert store.file_holder(TEAM, "src/api", "bob") is None  # the folder's name alone
        assert store.file_holder(TEAM, "src/apis/x.py", "bob") is None

    def test_overlapping_claims_of_another_member_are_refused(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        from accord.testing.conformance import refused  # (that module imports this one)

        alice = _take(store, "alice")
        bob = _take(store, "bob")
        _claim(store, alice, "alice", "src/api/**")
        for pattern, theirs in (
            ("src/api/x.py", "src/api/**"),  # a path under her glob
            ("src/**", "src/api/**"),  # a glob over it
            ("src/**/test_*.py", "src/api/**"),  # globs that share src/api/test_x.py
            ("src/api/**", "src/api/**"),
        ):
            with refused(store, FileClaimed) as info:
                _claim(store, bob, "bob", "docs/**", pattern)
            error = info.value
            assert (error.member, error.task_id, error.pattern) == ("alice", alice.task.id, theirs)
            assert error.team == TEAM
            assert "alice" in str(error) and f"#{alice.task.id}" in str(error)
        assert _held(store) == [(alice.task.id, "alice", "src/api/**")]
        # What no path can match twice is free; and the other way round too.
        _claim(store, bob, "bob", "src/*.py", "src/apis/**", "*.md")
        with refused(store, FileClaimed) as info:
            _claim(store, alice, "alice", "src/main.py")
        assert info.value.member == "bob"
        # A member's own claims never block it, on the same task or another.
        second = _take(store, "alice", "second")
        assert [c.pattern for c in _claim(store, second, "alice", "src/api/x.py")] == [
            "src/api/x.py"
        ]
        other = make_store(clock=clock)
        assert len(other.file_claims(TEAM)) == 5

    def test_claiming_needs_the_current_claim(self, store: Store, clock: FakeClock) -> None:
        from accord.testing.conformance import refused

        alice = _take(store, "alice")
        with refused(store, StaleToken):
            store.claim_files(TEAM, alice.task.id, "alice", alice.fencing_token + 1, ["a.py"])
        with refused(store, NotClaimHolder):
            store.claim_files(TEAM, alice.task.id, "bob", alice.fencing_token, ["a.py"])
        pending = store.add_task(TEAM, NewTask("nobody's"), max_attempts=3)
        with refused(store, NotClaimHolder):
            store.claim_files(TEAM, pending.id, "alice", 1, ["a.py"])
        with refused(store, UnknownTask):
            store.claim_files(TEAM, 999, "alice", 1, ["a.py"])
        store.complete_task(TEAM, alice.task.id, "alice", alice.fencing_token)
        with refused(store, StaleToken):
            store.claim_files(TEAM, alice.task.id, "alice", alice.fencing_token, ["a.py"])
        short = _take(store, "alice", "short", lease=10)
        clock.advance(11)
        with refused(store, StaleToken):  # its lease ran out: the claim is lost
            _claim(store, short, "alice", "a.py")

    def test_bad_patterns_are_refused(self, store: Store) -> None:
        from accord.testing.conformance import refused

        alice = _take(store, "alice")
        _claim(store, alice, "alice", "kept.py")
        for patterns in (
            [],
            [""],
            ["  "],
            ["/etc/passwd"],
            ["~/x"],
            ["../outside.py"],
            ["src/../../x"],
            ["."],
            ["./"],
            ["ok.py", "/abs"],
            ["a\x00b"],
            ["x" * (MAX_PATTERN + 1)],
            [f"f{i}.py" for i in range(MAX_FILE_CLAIMS + 1)],
        ):
            with refused(store, UserError) as info:
                _claim(store, alice, "alice", *patterns)
            assert not isinstance(info.value, FileClaimed), patterns
            assert str(info.value)
        assert _held(store) == [(alice.task.id, "alice", "kept.py")]

    def test_claims_end_with_their_task_claim(self, store: Store, clock: FakeClock) -> None:
        ends: dict[str, Callable[[Claim], object]] = {
            "complete": lambda c: store.complete_task(TEAM, c.task.id, "alice", c.fencing_token),
            "fail": lambda c: store.fail_task(TEAM, c.task.id, "alice", c.fencing_token, "no"),
            "retry": lambda c: store.fail_task(
                TEAM, c.task.id, "alice", c.fencing_token, "again", retry=True
            ),
            "release": lambda c: store.release_task(
                TEAM, c.task.id, "alice", c.fencing_token, "model down"
            ),
            "cancel": lambda c: store.cancel_task(TEAM, c.task.id, "not needed"),
        }
        for how, end in ends.items():
            alice = _take(store, "alice", how)
            _claim(store, alice, "alice", f"{how}/**")
            assert store.file_holder(TEAM, f"{how}/x.py", "bob") is not None
            end(alice)
            assert store.file_holder(TEAM, f"{how}/x.py", "bob") is None, how
            assert _held(store) == [], how
        # A lease that ran out ends them at once, before anything sweeps the lease.
        alice = _take(store, "alice", "lease", lease=10)
        _claim(store, alice, "alice", "lease/**")
        clock.advance(5)
        store.heartbeat_task(TEAM, alice.task.id, "alice", alice.fencing_token, lease_seconds=10)
        clock.advance(9)
        assert _held(store) == [(alice.task.id, "alice", "lease/**")]  # heartbeats keep them
        clock.advance(2)
        assert _held(store) == [] and store.file_holder(TEAM, "lease/a", "bob") is None
        # The task taken again (by her or anyone) does not bring the old claims back.
        again = store.claim_task(TEAM, "alice", lease_seconds=LEASE, task_id=alice.task.id)
        assert again is not None
        assert _held(store) == []
        # Each claim swept the rows that ended before it; hers waits for the next claim.
        assert _rows(store) == 1
        bob = _take(store, "bob", "sweeper")
        _claim(store, bob, "bob", "lease/**")  # free again: hers ended
        assert _rows(store) == 1
        assert _held(store) == [(bob.task.id, "bob", "lease/**")]

    def test_release_files_gives_claims_up_early(self, store: Store) -> None:
        from accord.testing.conformance import refused

        alice, bob = _take(store, "alice"), _take(store, "bob")
        _claim(store, alice, "alice", "src/**", "docs/**", "setup.py")
        token = alice.fencing_token
        with refused(store, StaleToken):
            store.release_files(TEAM, alice.task.id, "alice", token + 1, ["src/**"])
        with refused(store, NotClaimHolder):
            store.release_files(TEAM, alice.task.id, "bob", token, ["src/**"])
        with refused(store, UserError) as info:
            store.release_files(TEAM, alice.task.id, "alice", token, ["src/**", "src/a.py"])
        assert "src/a.py" in str(info.value) and "docs/**" in str(info.value)
        seq = store.read_events(TEAM)[-1].seq
        left = store.release_files(TEAM, alice.task.id, "alice", token, ["./src/"])
        assert [c.pattern for c in left] == ["docs/**", "setup.py"]
        (event,) = store.read_events(TEAM, since=seq)
        assert event.kind == EventKind.FILES_RELEASED and event.actor == "alice"
        assert event.payload == {
            "task_id": alice.task.id,
            "member": "alice",
            "token": token,
            "patterns": ["src/**"],
        }
        assert store.file_holder(TEAM, "src/a.py", "bob") is None
        _claim(store, bob, "bob", "src/a.py")  # free for him now
        assert store.release_files(TEAM, alice.task.id, "alice", token) == []
        assert _held(store) == [(bob.task.id, "bob", "src/a.py")]
        seq = store.read_events(TEAM)[-1].seq
        assert store.release_files(TEAM, alice.task.id, "alice", token) == []  # nothing left
        assert store.read_events(TEAM, since=seq) == []

    def test_claims_race_and_one_wins(
        self, store: Store, make_store: MakeStore, clock: FakeClock
    ) -> None:
        """Two members claiming overlapping paths at once: exactly one gets them."""
        alice, bob = _take(store, "alice"), _take(store, "bob")
        stores = {"alice": make_store(clock=clock), "bob": make_store(clock=clock)}
        claims = {"alice": alice, "bob": bob}
        for round_ in range(4):
            start = threading.Barrier(2)

            def attempt(member: str, r: int = round_, go: threading.Barrier = start) -> str:
                go.wait(10)
                try:
                    _claim(stores[member], claims[member], member, f"r{r}/**", f"r{r}/x/*.py")
                except AccordError as e:
                    assert isinstance(e, FileClaimed), e
                    return "refused"
                return "won"

            with ThreadPoolExecutor(2) as pool:
                outcome = sorted(pool.map(attempt, ["alice", "bob"]))
            assert outcome == ["refused", "won"]
        held = store.file_claims(TEAM)
        assert len(held) == 8
        for r in range(4):
            assert len({c.member for c in held if c.pattern.startswith(f"r{r}/")}) == 1

    def test_claims_move_with_their_team_and_go_with_it(self, store: Store) -> None:
        alice = _take(store, "alice")
        _claim(store, alice, "alice", "src/**")
        done = _take(store, "bob", "done")
        _claim(store, done, "bob", "docs/**")
        store.complete_task(TEAM, done.task.id, "bob", done.fencing_token)
        dump = store.dump_team(TEAM)
        store.load_team(dataclasses.replace(dump, team="copy"))
        assert [(c.team, c.task_id, c.member, c.pattern) for c in store.file_claims("copy")] == [
            ("copy", alice.task.id, "alice", "src/**")
        ]
        assert store.dump_team("copy").counts() == dump.counts()
        store.delete_team("copy")
        assert _held(store) == [(alice.task.id, "alice", "src/**")]
        with pytest.raises(UnknownTeam):
            store.file_claims("copy")
