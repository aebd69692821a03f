"""Waking up: block until a member has mail or a claimable task, without spinning.

The store's change marker (SQLite's ``PRAGMA data_version``) is a cheap number
that moves whenever any other connection commits. ``wait`` sleeps in short
slices, reads that number, and only runs the real query when it moved, or
every ``recheck`` seconds to catch what time alone changes (a lease or a
visibility timeout running out). Idle cost is a few hundred microsecond-cheap
reads per second; wake latency is one slice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from accord.types import Event, Wake, WakeReason

if TYPE_CHECKING:
    from accord.store.base import Store

POLL_SECONDS = 0.004  # slice while the store is busy
QUIET_POLL_SECONDS = 0.010  # slice once nothing has changed for QUIET_AFTER seconds
QUIET_AFTER = 2.0
RECHECK_SECONDS = 0.25


def wait(
    store: Store,
    team: str,
    member: str,
    timeout: float,
    *,
    poll: float = POLL_SECONDS,
    recheck: float = RECHECK_SECONDS,
    stop: Callable[[], bool] | None = None,
    tasks: bool = True,
    also: Callable[[], bool] | None = None,
) -> Wake:
    """Return as soon as ``member`` has mail or a ready task, or after ``timeout`` seconds.

    ``tasks=False`` waits for mail only (a member that does not claim by itself);
    ``also`` is asked whenever the store changes and ends the wait (reason
    ``other``) when it says so. ``stop``, checked every slice, ends the wait early
    (reason ``stopped``). The slice
    grows from ``poll`` to 10 ms after two quiet seconds, halving the idle cost of a
    long wait while a busy team still wakes within a few milliseconds.
    """
    deadline = time.monotonic() + timeout
    marker = store.change_marker()

    def look() -> Wake:
        work = store.pending_work(team, member)
        if not tasks and work.reason == WakeReason.TASK:
            work = Wake(WakeReason.NONE, work.mail, work.ready_tasks)
        if work.reason == WakeReason.NONE and also is not None and also():
            return Wake(WakeReason.OTHER, work.mail, work.ready_tasks)
        return work

    work = look()
    checked = changed = time.monotonic()
    while work.reason == WakeReason.NONE:
        now = time.monotonic()
        if now >= deadline:
            return Wake(WakeReason.TIMEOUT)
        if stop is not None and stop():
            return Wake(WakeReason.STOPPED)
        slice_ = poll if now - changed < QUIET_AFTER else max(poll, QUIET_POLL_SECONDS)
        time.sleep(min(slice_, deadline - now))
        seen = store.change_marker()
        if seen != marker or time.monotonic() - checked >= recheck:
            if seen != marker:
                changed = time.monotonic()
            marker = seen
            work = look()
            checked = time.monotonic()
    return work


def follow(
    store: Store,
    team: str,
    since: int = 0,
    *,
    poll: float = 0.05,
    until: float | None = None,
) -> Iterator[Event]:
    """Yield the team's events after ``since`` as they are written (``until`` is a deadline)."""
    marker: int | None = None
    while True:
        seen = store.change_marker()
        if seen != marker:
            marker = seen
            for event in store.read_events(team, since=since):
                since = event.seq
                yield event
        if until is not None and time.monotonic() >= until:
            return
        time.sleep(poll)
