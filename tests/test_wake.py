"""Waking on SQLite: a waiter sleeps until a commit that concerns it rings its bell, or
until the next deadline that concerns it, and looks at the store only then.

What is checked: a wait looks at the store once, then once per ring (never on a
timer); a lost ring costs one recheck interval, never the message; a message coming
back after its visibility timeout wakes its member with no ring at all; a stop asked
for ends a wait at once; a bell that cannot be made turns the wait into a poll, said on
stderr; and a killed waiter's socket is cleared by the next ring.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accord.store import bells
from accord.store.base import Store
from accord.team import wake
from accord.team.wake import wait
from accord.types import OutgoingMessage, WakeReason

TEAM = "main"


@pytest.fixture
def live(make_store: Callable[..., Store]) -> Store:
    """A store on the real clock, with team main (alice, bob, carol)."""
    s = make_store()
    s.create_team(TEAM)
    for name in ("alice", "bob", "carol"):
        s.add_member(TEAM, name, token_hash="h")
    return s


def _send_later(store: Store, delay: float, body: str = "hi", to: str = "bob") -> list[float]:
    """Send alice's message to ``to`` after ``delay`` seconds; the list gets the time it
    committed."""
    sent: list[float] = []

    def send() -> None:
        time.sleep(delay)
        store.send_message(TEAM, OutgoingMessage("alice", to, body))
        sent.append(time.monotonic())

    threading.Thread(target=send, daemon=True).start()
    return sent


def _first(sent: list[float]) -> float:
    """When the sender's commit returned (the waiter may have woken before it did)."""
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.001)
    return sent[0]


def _counting(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    looks: list[float] = []
    real = store.pending_work

    def pending_work(team: str, member: str) -> Any:
        looks.append(time.monotonic())
        return real(team, member)

    monkeypatch.setattr(store, "pending_work", pending_work)
    return looks


def test_a_waiter_looks_at_the_store_only_when_rung(
    live: Store, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = make_store()
    looks = _counting(waiting, monkeypatch)
    # Writes that concern others ring nobody here: carol's mail, a claim, a heartbeat.
    live.send_message(TEAM, OutgoingMessage("alice", "carol", "not for bob"))
    sent = _send_later(live, 0.6)
    for _ in range(3):
        threading.Thread(
            target=lambda: live.send_message(TEAM, OutgoingMessage("bob", "carol", "x")),
            daemon=True,
        ).start()
    woke = wait(waiting, TEAM, "bob", timeout=10, recheck=60)
    returned = time.monotonic()
    assert woke.reason == WakeReason.MAIL
    assert returned - _first(sent) < 0.2
    assert len(looks) == 2, looks  # once at the start, once for the ring: no timer


def test_a_lost_ring_costs_one_recheck_never_the_message(
    live: Store, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bells.Doorbells, "ring", lambda self, team_id, members: None)
    waiting = make_store()
    began = time.monotonic()
    sent = _send_later(live, 0.1)
    woke = wait(waiting, TEAM, "bob", timeout=10, recheck=0.5)
    took = time.monotonic() - began
    assert woke.reason == WakeReason.MAIL
    assert _first(sent) and 0.45 < took < 2.0, took


def test_mail_back_from_its_visibility_timeout_wakes_its_member_unrung(
    live: Store, make_store: Callable[..., Store]
) -> None:
    live.send_message(TEAM, OutgoingMessage("alice", "bob", "read me twice"))
    assert len(live.receive_messages(TEAM, "bob", visibility_timeout=0.5)) == 1
    began = time.monotonic()
    woke = wait(make_store(), TEAM, "bob", timeout=10, recheck=60)
    took = time.monotonic() - began
    assert woke.reason == WakeReason.MAIL
    assert 0.3 < took < 1.5, took  # at its deadline, not the minute's recheck


def test_a_stop_asked_for_ends_a_wait_at_once(live: Store) -> None:
    stop = threading.Event()
    woke: list[tuple[WakeReason, float]] = []

    def waiting() -> None:
        reason = wait(live, TEAM, "bob", timeout=30, recheck=60, stop=stop.is_set).reason
        woke.append((reason, time.monotonic()))

    thread = threading.Thread(target=waiting)
    thread.start()
    time.sleep(0.2)
    stop.set()
    asked = time.monotonic()
    wake.nudge(TEAM, "bob")
    thread.join(10)
    assert woke and woke[0][0] == WakeReason.STOPPED
    assert woke[0][1] - asked < 0.2


def test_a_bell_that_cannot_be_made_polls_and_says_so(
    request: pytest.FixtureRequest,
    make_store: Callable[..., Store],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    handle, name = tempfile.mkstemp(prefix="accord-blocked-", dir="/tmp")  # a short path
    os.close(handle)
    blocked = Path(name)  # a file where the runtime folder would go
    request.addfinalizer(blocked.unlink)
    monkeypatch.setattr(bells, "_runtime", lambda: blocked / "accord")
    store = make_store("deaf.db")
    store.create_team(TEAM)
    for name in ("alice", "bob"):
        store.add_member(TEAM, name, token_hash="h")
    assert store.bell(TEAM, "bob").deaf is not None
    sent = _send_later(store, 0.3)
    woke = wait(store, TEAM, "bob", timeout=10, recheck=60)
    assert woke.reason == WakeReason.MAIL
    assert time.monotonic() - _first(sent) < wake.DEAF_POLL_SECONDS + 0.3
    err = capfd.readouterr().err
    assert "cannot make a bell" in err and "look every 0.25s" in err


def test_a_killed_waiters_bell_is_cleared_by_the_next_ring(
    live: Store, make_store: Callable[..., Store]
) -> None:
    path = live.location
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from accord.store import open_store\n"
            f"bell = open_store({str(path)!r}).bell('main', 'bob')\n"
            "print(bell.path, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.stdout is not None
    socket_path = Path(child.stdout.readline().strip())
    assert socket_path.exists()
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert socket_path.exists()  # a killed process cleans up nothing
    with make_store().bell(TEAM, "bob") as mine:
        assert not socket_path.exists()  # the next bell made there swept it
        live.send_message(TEAM, OutgoingMessage("alice", "bob", "anyone?"))
        assert mine.wait(5)
    # The last bell of a store closed, nothing of it is left in the runtime folder.
    assert not socket_path.parent.parent.parent.exists()


def test_a_ring_to_a_dead_waiter_removes_its_bell(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    dead = bells.SocketBell(folder / "x.1.1")
    dead._sock.close()  # as if its process had been killed: bound, nobody reading
    bells._send(str(dead.path))
    assert not dead.path.exists()


def test_a_writer_waits_its_turn_in_the_kernel_and_gives_up_at_its_busy_timeout(
    make_store: Callable[..., Store],
) -> None:
    """Writers queue on ``accord.db-writers`` (flock) before SQLite's lock: a writer
    whose turn does not come within its busy timeout fails as a locked store, changing
    nothing, and writes again once the turn is free."""
    import fcntl

    from accord.errors import StoreLocked

    store = make_store(busy_timeout=0.5)
    store.create_team(TEAM)
    holder = os.open(store.location + "-writers", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another writer's turn, held
    try:
        began = time.monotonic()
        with pytest.raises(StoreLocked):
            store.add_member(TEAM, "dave", token_hash="h")
        assert 0.4 < time.monotonic() - began < 3.0
        assert store.list_members(TEAM) == []  # a read does not queue; nothing was written
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    store.add_member(TEAM, "dave", token_hash="h")
    assert [m.name for m in store.list_members(TEAM)] == ["dave"]


@pytest.mark.parametrize(
    ("kind", "payload", "rung"),
    [
        ("message_sent", {"to": "bob"}, {"bob"}),
        ("message_sent", {"to": "*"}, {"*"}),
        ("message_sent", {"to": "general", "channel": "general"}, {"*"}),
        ("task_created", {"id": 1}, {"*"}),
        ("task_completed", {"id": 1, "unblocked": [2]}, {"*"}),
        ("task_completed", {"id": 1, "unblocked": []}, set()),
        ("lease_expired", {"id": 1}, {"*"}),
        ("task_claimed", {"id": 1}, set()),
        ("model_call", {}, set()),
        ("member_updated", {}, set()),
        ("a_kind_of_the_callers", {}, {"*"}),
    ],
)
def test_whom_an_event_rings(kind: str, payload: dict[str, object], rung: set[str]) -> None:
    """Its recipient for a message, everyone for what may make a task claimable (or a kind
    not known to be quiet), the watchers alone (empty) for the rest."""
    assert bells.targets(kind, payload) == rung
