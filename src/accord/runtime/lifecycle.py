"""A run's life as the store records it, cheap to read from any front door.

How a run ended (``run_ended``: an outcome and its reason) and what `accord run`
and `accord resume` exit with for it; whether the run's supervisor is gone; and
the sweep that tidies what a supervisor killed on this machine left behind. Kept
apart from the supervisor and the agents, so `accord status` reads it without
loading them.

Every run ends with an outcome and its reason, logged as a ``run_ended`` event by
whoever ended it (the supervisor, ``accord stop``, or ``accord status`` finding the
supervisor dead): ``finished``, ``stopped`` (by a person), ``interrupted`` (Ctrl+C),
``budget``, ``model_error``, ``crashed``, ``config``, ``stalled``, ``store_lost``,
``taken_over`` (another supervisor took the run).
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

from accord import process
from accord.errors import InvalidState, Reason, UnknownTeam
from accord.events import EventKind
from accord.team import Team
from accord.team.roster import LIVE_STATUSES
from accord.types import Event, MemberStatus, Run, RunOutcome, RunStatus

# What `accord run` and `accord resume` exit with (README, `accord run --help`).
EXIT_FINISHED = 0  # the lead finished the goal
EXIT_STOPPED = 1  # the team stopped without finishing: see the outcome in `accord status`
EXIT_BAD_INPUT = 2  # refused before anything started; the store is unchanged
EXIT_INTERRUPTED = 130  # Ctrl+C (SIGINT) or SIGTERM


def default_host() -> str:
    """This machine's name as a host name accord accepts (lower case, no dots)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().split(".")[0].lower())
    name = name.strip("-_")[:40] or "host"
    return name if name[0].isalnum() else f"h{name}"[:40]


def holder_is_dead(pid: int | None, host: str | None) -> bool:
    """True when a supervisor recorded on this host is certainly gone (killed, rebooted)."""
    if pid is None or host != socket.gethostname():
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"accord" not in cmdline or pid == os.getpid()


def run_outcome(team: Team) -> RunOutcome | None:
    """How the team's latest run ended (None while it runs, or before any run).

    Read from the run's settings, where ``record_end`` keeps it, so that `accord status`
    costs the same on a log of a million events as on one of ten."""
    try:
        run = team.runs.get()
    except UnknownTeam:
        return None
    if run is None or run.status in (RunStatus.RUNNING, RunStatus.STOPPING):
        return None
    return run.settings.ended


def record_end(team: Team, outcome: str, reason: str) -> Event:
    """Record how the run ended (its status is changed by the caller): a ``run_ended``
    event for the log, and the same in the run's settings for a cheap look-up."""
    team.runs.update(settings={"ended": RunOutcome(outcome, reason)})
    return team.log.append_event(EventKind.RUN_ENDED, {"outcome": outcome, "reason": reason})


def exit_code(outcome: RunOutcome | None) -> int:
    """What `accord run` or `accord resume` exits with after a run ended this way."""
    if outcome is not None and outcome.outcome == "finished":
        return EXIT_FINISHED
    if outcome is not None and outcome.outcome == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_STOPPED


def supervisor_gone(run: Run) -> str | None:
    """Why the run's supervisor is certainly or probably gone, or None if it serves."""
    if run.status not in (RunStatus.RUNNING, RunStatus.STOPPING):
        return None
    if holder_is_dead(run.supervisor_pid, run.supervisor_host):
        return f"its supervisor (pid {run.supervisor_pid}) is dead"
    expires = run.supervisor_expires_at
    if expires is None:
        return "no supervisor holds it"
    if expires < time.time():
        return f"its supervisor stopped renewing its lease {time.time() - expires:.0f}s ago"
    return None


def sweep(bound: Team) -> list[str]:
    """Tidy what a supervisor killed on this machine left behind: the run is stopped
    (outcome ``crashed``) and members it marked live but whose process is gone are
    stopped. Only a holder certainly dead is swept, never one just slow to renew."""
    try:
        run = bound.runs.get()
    except UnknownTeam:
        return []
    if run is None:
        return []
    dead = run.supervisor_pid is not None and holder_is_dead(
        run.supervisor_pid, run.supervisor_host
    )
    if not dead:
        return []
    swept = []
    machine = socket.gethostname()
    here = {h.host for h in bound.runs.hosts() if h.machine == machine} | {default_host()}
    for m in bound.roster.list():
        ours = m.host is None or m.host in here
        if m.status in LIVE_STATUSES and ours and not process.alive(m.pid):
            bound.roster.update(m.name, status=MemberStatus.STOPPED)
            swept.append(m.name)
    if run.status in (RunStatus.RUNNING, RunStatus.STOPPING):
        bound.runs.update(status=RunStatus.STOPPED)
        record_end(
            bound,
            "crashed",
            f"the supervisor (pid {run.supervisor_pid}) died; `accord resume --team {bound.name}` "
            "brings the team back",
        )
    return swept


def supervised(run: Run) -> bool:
    """A supervisor holds the run now: its lease is current and it is not known dead."""
    return (
        run.status in (RunStatus.RUNNING, RunStatus.STOPPING)
        and run.supervisor_expires_at is not None
        and run.supervisor_expires_at > time.time()
        and not holder_is_dead(run.supervisor_pid, run.supervisor_host)
    )


def refuse_removing_a_running_member(bound: Team, name: str) -> None:
    """A member a live supervisor runs is stopped first, never pulled from under it."""
    run = bound.runs.get()
    m = bound.roster.get(name)
    if run is None or not supervised(run):
        return
    if name == run.lead:
        raise InvalidState(f"{name} leads the running team", member=name, reason=Reason.LEADS)
    if m.status in LIVE_STATUSES and name in run.wanted:
        raise InvalidState(
            f"{name} is running ({m.status.value})", member=name, reason=Reason.RUNNING
        )
