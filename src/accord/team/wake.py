"""Waking up: block until a member has mail or a claimable task, without polling.

A waiter holds a bell (``accord.store.bells``) that the store rings after any commit
that concerns it, and sleeps in the kernel until the bell rings, or until the next
moment that time alone changes what it would find (a message becoming visible, a
lease it could take over running out; ``Wake.next_at``), or until ``recheck`` seconds
passed since it last looked. Only then does it look at the store. An idle member
therefore costs nothing between rings; a ring lost for any reason costs at most one
recheck interval (``[mailbox] recheck``), never a lost wake-up.

A bell that rings never (``Bell.deaf``: no socket folder, a PostgreSQL listen
connection that dropped) turns the wait into a poll every ``DEAF_POLL_SECONDS``, and
the process says so once on stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from accord.types import Event, Wake, WakeReason

if TYPE_CHECKING:
    from accord.store.base import Store
    from accord.store.bells import Bell

RECHECK_SECONDS = 5.0  # the default of [mailbox] recheck: a lost ring costs this at most
DEAF_POLL_SECONDS = 0.25  # how often a waiter whose bell cannot ring looks
STOP_SECONDS = 5.0  # how often ``stop`` is asked (a stop asked for rings: see ``nudge``)

_waiting: dict[tuple[str, str], set[Bell]] = {}
_waiting_lock = threading.RLock()  # a signal handler may nudge while its thread waits
_said: set[str] = set()


def wait(
    store: Store,
    team: str,
    member: str,
    timeout: float,
    *,
    recheck: float = RECHECK_SECONDS,
    stop: Callable[[], bool] | None = None,
    tasks: bool = True,
    also: Callable[[], bool] | None = None,
) -> Wake:
    """Return as soon as ``member`` has mail or a ready task, or after ``timeout`` seconds.

    ``tasks=False`` waits for mail only (a member that does not claim by itself);
    ``also`` is asked whenever the team changes (the bell listens to every commit of
    the team) and ends the wait (reason ``other``) when it says so. ``stop`` ends the
    wait early (reason ``stopped``): at once when whoever set it called ``nudge``,
    within ``STOP_SECONDS`` otherwise.
    """
    deadline = time.monotonic() + timeout
    bell = store.bell(team, member, watch=also is not None)
    with _listening(team, member, bell):

        def look() -> tuple[Wake, float]:
            every = recheck
            if bell.deaf is not None:
                _say(f"{bell.deaf}; waiting members look every {DEAF_POLL_SECONDS:g}s instead")
                every = min(recheck, DEAF_POLL_SECONDS)
            work = store.pending_work(team, member)
            if not tasks and work.reason == WakeReason.TASK:
                work = Wake(WakeReason.NONE, work.mail, work.ready_tasks, work.next_at)
            if work.reason == WakeReason.NONE and also is not None and also():
                return Wake(WakeReason.OTHER, work.mail, work.ready_tasks), 0.0
            now = time.monotonic()
            due = now + every
            if work.next_at is not None:  # a little after, so the store's clock has passed it
                due = min(due, now + max(0.0, work.next_at - store.clock()) + 0.002)
            return work, due

        work, due = look()
        while work.reason == WakeReason.NONE:
            now = time.monotonic()
            if now >= deadline:
                return Wake(WakeReason.TIMEOUT)
            if stop is not None and stop():
                return Wake(WakeReason.STOPPED)
            until = min(deadline, due, now + STOP_SECONDS if stop is not None else deadline)
            rung = bell.wait(until - now)
            if rung or time.monotonic() >= due:
                if stop is not None and stop():
                    return Wake(WakeReason.STOPPED)
                work, due = look()
    return work


def changed(
    store: Store,
    team: str,
    member: str,
    timeout: float,
    *,
    stop: Callable[[], bool] | None = None,
) -> bool:
    """Block until anything is committed to ``team`` (True), or ``timeout`` passes or
    ``stop`` says so (False). For a waiter whose condition is not ``pending_work``'s."""
    deadline = time.monotonic() + timeout
    bell = store.bell(team, member, watch=True)
    with _listening(team, member, bell):
        every = timeout if bell.deaf is None else DEAF_POLL_SECONDS
        while True:
            now = time.monotonic()
            if now >= deadline or (stop is not None and stop()):
                return False
            limit = min(deadline, now + every, now + STOP_SECONDS if stop else deadline)
            if bell.wait(limit - now) or bell.deaf is not None:
                return not (stop is not None and stop())


def nudge(team: str, member: str) -> None:
    """Ring every bell ``member`` of ``team`` waits on in this process: a stop was asked
    for (safe to call from a signal handler)."""
    with _waiting_lock:
        bells = list(_waiting.get((team, member), ()))
    for bell in bells:
        bell.ring()


@contextmanager
def _listening(team: str, member: str, bell: Bell) -> Iterator[None]:
    with _waiting_lock:
        _waiting.setdefault((team, member), set()).add(bell)
    try:
        yield
    finally:
        with _waiting_lock:
            bells = _waiting.get((team, member), set())
            bells.discard(bell)
            if not bells:
                _waiting.pop((team, member), None)
        bell.close()


def _say(text: str) -> None:
    if text not in _said:
        _said.add(text)
        print(f"accord: {text}", file=sys.stderr)


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
