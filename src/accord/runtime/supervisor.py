"""The supervisor: a thin program, not an LLM, that keeps a team's processes running.

It holds the team's supervisor lease (a second supervisor refuses), starts every
member the run wants (the lead first) as its own process with its token in the
environment and its output in ``.accord/logs/``, and then, a few times a second:

- fulfils spawn requests the lead wrote to the store (a refused one says why);
- notices a member that exited without stopping cleanly, or stopped
  heartbeating, marks it crashed, and restarts it from its transcript with
  backoff, up to a limit; the lead sees each crash and restart in its digest;
- restarts a member (the lead too) that stopped because its model was
  unreachable (``member_stopped`` with ``model_error`` and ``"transient": true``)
  under the same backoff and limit, so an outage of a minute does not end the
  team; once the limit is used up it is given up (``member_given_up``) like a
  crash. A model error that waiting cannot cure (a refused request, a bad key)
  is not restarted;
- does not restart a member that cannot start because of its configuration
  (``accord agent`` exits with ``CONFIG_EXIT`` and logs ``member_failed`` with
  the reason): it is marked failed, and the lead is told why;
- stops everything when the lead finishes, when `accord stop` asks, when the
  team budget is spent, on Ctrl+C (gracefully: SIGTERM, then SIGKILL after a
  grace period; a second Ctrl+C forces it at once), when the run has stalled
  (nothing runs that could wake anyone, and nothing happened for
  ``silent_after``), or when its SQLite store file is deleted or replaced.

Whatever ends the run, ``run_ended`` records the outcome and its reason.

Several supervisors can serve one team, one per host: `accord run` (or
`accord resume`) holds the run and serves its own host; `accord supervise --host
NAME` on another machine serves that host. Each holds a lease in the store and
takes spawn requests for its host, or for any host while it has free slots; a
request is taken by exactly one of them. When a host's lease runs out (its
supervisor was killed, or the machine went away), the members it ran are
placed again and started by whichever supervisor has room, unless they were
pinned to that host.

Members are started so that they die with the supervisor, and the supervisor
ends what a dead member left behind (``accord.process`` has the one strategy
against orphans), so nothing it started outlives it, even after ``kill -9``;
their transcripts, claims and mail are in the store, and ``accord resume``
brings the same members back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from accord import credentials, process
from accord.agent.definition import find_definition
from accord.agent.launch import CONFIG_EXIT
from accord.config import Project
from accord.errors import AccordError, StaleToken, StoreNotFound, UnknownMember, UserError
from accord.events import EventKind
from accord.location import parse_location
from accord.runtime.forks import ForkServer
from accord.runtime.lifecycle import default_host, holder_is_dead, record_end
from accord.team import Team
from accord.types import (
    Event,
    MemberRole,
    MemberStatus,
    RunStatus,
    SpawnStatus,
    TaskStatus,
    TranscriptKind,
)

Say = Callable[[str], None]


# Seconds a member's process may take to send its first heartbeat, beyond silent_after.
SETTLE_EVERY = 2.0  # seconds between two looks at the deliberations' deadlines
RENEWALS_PER_LEASE = 3  # a supervisor renews its leases this many times per lease
START_ALLOWANCE = 10.0


@dataclass
class Process:
    """One member process the supervisor started."""

    name: str
    child: process.Child
    started: float
    since_seq: int
    log: Path
    restarts: int = 0


@dataclass
class Settings:
    poll: float = 0.2
    lease: float = 15.0
    grace: float = 20.0
    max_restarts: int = 3
    backoff: float = 1.0
    silent_after: float = 120.0  # no heartbeat for this long while running: hung
    slots: int | None = None  # members this host runs at once; None: no limit
    fork_members: bool = False  # start members through a fork server (runtime.forks)
    python: str = sys.executable
    extra_env: dict[str, str] = field(default_factory=dict)


class Supervisor:
    """Runs one team on this host until it finishes or is stopped."""

    def __init__(
        self,
        project: Project,
        team: Team,
        *,
        say: Say = print,
        settings: Settings | None = None,
        on_event: Callable[[Event], None] | None = None,
        host: str | None = None,
        slots: int | None = None,
        keep: Collection[int] = (),
    ) -> None:
        self.project = project
        # Children of this process that are no member's (a view it opened): never reaped.
        self.keep = set(keep)
        self.team = team.name
        # The team wired to this project's settings and hooks, whatever ``team`` was bound to.
        self.services = Team.open(team.store, team.name, project.config, project.root)
        self.say = say
        cfg = project.config.run
        self.settings = settings or Settings(
            grace=cfg.grace,
            max_restarts=cfg.max_restarts,
            backoff=cfg.restart_backoff,
            silent_after=cfg.silent_after,
            lease=cfg.supervisor_lease,
            slots=cfg.slots,
            fork_members=cfg.fork_members,
        )
        if slots is not None:
            self.settings.slots = slots
        self.machine = socket.gethostname()
        self.host = host or default_host()
        self.host_token = 0
        self.renewed_at = float("-inf")  # when this supervisor last renewed its leases
        self.procs: dict[str, Process] = {}
        self.forks: ForkServer | None = None  # see _fork_server
        self.restarts: dict[str, int] = {}
        self.due: dict[str, float] = {}  # restarts waiting for their backoff
        self.due_after: dict[str, str] = {}  # why each of those restarts: crashed, model_error
        self.on_event = on_event
        self.seq = 0  # the last event seen
        self.token = 0
        self.interrupts = 0
        self.logs = project.state_dir / "logs"
        self.outcome: tuple[str, str] = ("stopped", "the supervisor stopped")
        self.quiet_since = time.monotonic()  # the last time an event was seen
        self.next_stall_check = 0.0
        self.store_file = _store_file(project.store_location)
        self.store_id = _file_id(self.store_file)
        self.store_lost: str | None = None
        self.next_settle = 0.0  # when the deliberations' deadlines are next looked at

    # the whole run -------------------------------------------------------------

    def run(self) -> RunStatus:
        """Hold the run: start the lead, serve this host, and end the run when it is over."""
        prior = self.services.runs.get()
        dead = prior is not None and holder_is_dead(prior.supervisor_pid, prior.supervisor_host)
        run = self.services.runs.claim_supervisor(
            os.getpid(), self.machine, self.settings.lease, take_over=dead
        )
        self.token = run.supervisor_token
        try:
            self._join()
        except AccordError:
            self.services.runs.release_supervisor(self.token)
            raise
        # Events before this supervisor are history: show and watch only what follows.
        history = self.services.log.read_events(since=0)
        self.seq = history[-1].seq if history else 0
        if run.status != RunStatus.RUNNING:
            self.services.runs.update(status=RunStatus.RUNNING)
        self.logs.mkdir(parents=True, exist_ok=True)
        process.become_subreaper()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        final = RunStatus.STOPPED
        try:
            self._start(run.lead)
            while True:
                verdict = self._tick()
                if verdict is not None:
                    final = verdict
                    break
                time.sleep(self.settings.poll)
        except StaleToken as e:
            self.say(f"supervisor: {e}; stopping what this one started")
            self.outcome = ("taken_over", str(e))
            final = RunStatus.STOPPED
        except KeyboardInterrupt:
            self.outcome = ("interrupted", "stopped by Ctrl+C (forced)")
            raise
        finally:
            self._stop_all(force=self.interrupts > 1)
            self._close_fork_server()
            process.reap_orphans(self._pids())
            for s, handler in previous.items():
                signal.signal(s, handler)
            if self.store_lost is None:
                try:
                    now = self.services.runs.get()
                    if now is not None and now.status != RunStatus.FINISHED:
                        self.services.runs.update(status=RunStatus.STOPPED)
                        final = RunStatus.STOPPED
                    record_end(self.services, *self.outcome)
                    self.services.runs.release_supervisor(self.token)
                    self.services.runs.release_host(self.host, self.host_token)
                except AccordError:
                    pass
        if self.store_lost is not None:
            # Nothing is reported into a file that is no longer the team's store.
            raise StoreNotFound(self.store_lost)
        return final

    def serve(self, once: bool = False) -> None:
        """Serve this host of the team: run what is placed here while the team's run is
        running; stop it when the run stops, and wait for the next (or return, ``once``)."""
        self._join()
        history = self.services.log.read_events(since=0)
        self.seq = history[-1].seq if history else 0
        self.logs.mkdir(parents=True, exist_ok=True)
        process.become_subreaper()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        served = False
        waiting = False
        try:
            while not self.interrupts:
                self._renew(supervisor=False)
                for event in self.services.log.read_events(since=self.seq):
                    self.seq = event.seq
                run = self.services.runs.get()
                if run is None or run.status != RunStatus.RUNNING:
                    if self.procs:
                        self.say(f"supervisor {self.host}: the run is over; stopping members")
                        self._stop_all()
                        self.due.clear()
                        self.due_after.clear()
                    if once and served:
                        break
                    if not waiting:
                        self.say(f"supervisor {self.host}: waiting for team {self.team} to run")
                        waiting = True
                else:
                    if not served or waiting:
                        self.say(f"supervisor {self.host}: serving team {self.team}")
                    served, waiting = True, False
                    self.services.runs.place_wanted()
                    self._serve()
                time.sleep(self.settings.poll)
        except StaleToken as e:
            self.say(f"supervisor {self.host}: {e}")
        finally:
            self._stop_all(force=self.interrupts > 1)
            self._close_fork_server()
            process.reap_orphans(self._pids())
            for s, handler in previous.items():
                signal.signal(s, handler)
            try:
                self.services.runs.release_host(self.host, self.host_token)
            except AccordError:
                pass

    def _join(self) -> None:
        """Become this host's supervisor (a dead predecessor on this machine is replaced
        at once; one elsewhere only once its lease has run out)."""
        known = {h.host: h for h in self.services.runs.hosts()}
        prior = known.get(self.host)
        dead = prior is not None and holder_is_dead(prior.pid, prior.machine)
        self.host_token = self.services.runs.register_host(
            self.host,
            machine=self.machine,
            pid=os.getpid(),
            slots=self.settings.slots,
            lease_seconds=self.settings.lease,
            take_over=dead,
        ).token

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.interrupts += 1
        if self.interrupts == 1:
            self.say("supervisor: stopping the team (again to force)")
        else:
            self.say("supervisor: forcing")
            raise KeyboardInterrupt

    # one pass ------------------------------------------------------------------

    def _renew(self, *, supervisor: bool) -> None:
        """Renew this supervisor's leases once a third of them has passed, not on every
        pass: a renewal is a write, and on an idle team it would be the only one, waking
        every waiter that watches the store a few times a second."""
        now = time.monotonic()
        if now - self.renewed_at < self.settings.lease / RENEWALS_PER_LEASE:
            return
        if supervisor:
            self.services.runs.renew_supervisor(self.token, self.settings.lease)
        self.services.runs.renew_host(self.host, self.host_token, self.settings.lease)
        self.renewed_at = now

    def _tick(self) -> RunStatus | None:
        lost = self._store_replaced()
        if lost is not None:
            self.store_lost = lost
            self.outcome = ("store_lost", lost)
            self.say(f"supervisor: {lost}; stopping the team")
            return RunStatus.STOPPED
        self._renew(supervisor=True)
        for event in self.services.log.read_events(since=self.seq):
            self.seq = event.seq
            self.quiet_since = time.monotonic()
            if self.on_event is not None:
                self.on_event(event)
        run = self.services.runs.get()
        assert run is not None
        if run.status == RunStatus.FINISHED:
            self.say(f"supervisor: the lead finished: {run.summary or ''}".rstrip(": "))
            self.outcome = ("finished", run.summary or "the lead finished")
            return RunStatus.FINISHED
        if self.interrupts:
            self.outcome = ("interrupted", "stopped by Ctrl+C")
            return RunStatus.STOPPED
        if run.status in (RunStatus.STOPPING, RunStatus.STOPPED):
            self.outcome = ("stopped", "stopped by a person (`accord stop`)")
            return RunStatus.STOPPED
        over = self.services.runs.over_budget(None)  # the team's limits; members ask their own
        if over:
            self.say(f"supervisor: {over}; stopping the team")
            self.services.log.append_event(EventKind.BUDGET_EXCEEDED, {"member": None, "why": over})
            self.outcome = ("budget", f"{over}; `accord resume --budget USD` raises it")
            return RunStatus.STOPPED
        self.services.runs.place_wanted()
        self._settle_deliberations()
        self._serve()
        now = self.services.runs.get()
        if (
            now is not None
            and now.lead not in now.wanted
            and now.lead not in self.procs
            and now.lead not in self.due
        ):
            # Only the lead can finish the run: without it the team cannot get there.
            self.outcome = self._why_nobody_runs(run.lead)
            self.say(f"supervisor: {self.outcome[1]}; stopping the team")
            return RunStatus.STOPPED
        if (
            not self.procs
            and not self.due
            and not self.services.runs.pending_spawns()
            and not self._running_elsewhere()
        ):
            self.outcome = self._why_nobody_runs(run.lead)
            self.say(f"supervisor: no member is running any more ({self.outcome[1]}); stopping")
            return RunStatus.STOPPED
        stalled = self._stalled(run.lead)
        if stalled is not None:
            self.outcome = ("stalled", stalled)
            self.say(f"supervisor: the run has stalled: {stalled}; stopping")
            return RunStatus.STOPPED
        return None

    def _settle_deliberations(self) -> None:
        """Every ``SETTLE_EVERY`` seconds, move on the deliberations whose deadline passed
        (nobody else may act on one whose participants all died)."""
        now = time.monotonic()
        if now < self.next_settle:
            return
        self.next_settle = now + SETTLE_EVERY
        try:
            self.services.deliberations.settle_due(time.time())
        except AccordError as e:
            self.say(f"supervisor: could not move a deliberation on: {e}")

    def _why_nobody_runs(self, lead: str) -> tuple[str, str]:
        """The outcome of a run whose every member has stopped: what the lead's last
        word was (crashed for good, failed to start, a model error, its budget)."""
        for e in reversed(self.services.log.read_events()):
            if e.payload.get("name") != lead:
                continue
            if e.kind == EventKind.MEMBER_FAILED:
                return ("config", f"the lead cannot start: {e.payload.get('reason')}")
            if e.kind == EventKind.MEMBER_CRASHED:
                why = str(e.payload.get("why") or "").strip().splitlines()
                last = why[-1] if why else f"exit {e.payload.get('exit_code')}"
                return ("crashed", f"the lead crashed and was not restarted again: {last}")
            if e.kind == EventKind.MEMBER_GIVEN_UP:
                return (
                    "model_error",
                    f"the lead's model was still unreachable after {e.payload.get('restarts')} "
                    f"restart(s), so it was not restarted again: {e.payload.get('detail')}",
                )
            if e.kind == EventKind.MEMBER_STOPPED:
                reason = str(e.payload.get("reason"))
                detail = str(e.payload.get("detail") or "")
                kinds = {"model_error": "model_error", "budget": "budget"}
                said = f"the lead stopped ({reason}" + (f": {detail})" if detail else ")")
                return (kinds.get(reason, "stopped"), said)
            if e.kind in (EventKind.SUPERVISOR_STARTED, EventKind.RUN_STARTED):
                break
        return ("stopped", "no member is running any more")

    def _stalled(self, lead: str) -> str | None:
        """Why nothing can happen any more, or None. Nothing can wake the team when no
        event came for ``silent_after``, no spawn or restart waits, no deliberation is
        open, no task is in progress, nobody has unread mail, every teammate here is idle
        and the lead sits between wakes (its last session ended)."""
        now = time.monotonic()
        if now - self.quiet_since < self.settings.silent_after or now < self.next_stall_check:
            return None
        self.next_stall_check = now + 1.0  # a quiet team is looked at once a second
        if self.due or self.services.runs.pending_spawns() or self._running_elsewhere():
            return None
        if any(due > time.time() - SETTLE_EVERY for _, due in self.services.deliberations.open()):
            # Its next deadline moves it on (``_settle_deliberations``), or the person
            # answers: a team waiting on a deliberation is not stalled. One whose synthesis
            # lapsed with everyone in turn (its lease long over) waits on nobody.
            return None
        tasks = self.services.board.list()
        if any(t.status == TaskStatus.IN_PROGRESS for t in tasks):
            return None
        members = {m.name: m for m in self.services.roster.list()}
        for name in self.procs:
            m = members.get(name)
            if m is None:
                continue
            if self.services.pending_work(name).mail:
                return None
            if m.role == MemberRole.LEAD:
                if not self._between_wakes(name):
                    return None
            elif m.status != MemberStatus.IDLE:
                return None
        ready = sum(1 for t in tasks if t.ready)
        pending = sum(1 for t in tasks if t.status == TaskStatus.PENDING)
        quiet = f"nothing happened for {self.settings.silent_after:g}s"
        if pending:
            return (
                f"{pending} task(s) pending ({ready} ready) but no teammate takes them and the "
                f"lead waits; {quiet}"
            )
        return f"the lead waits and no teammate has work, but the lead has not finished; {quiet}"

    def _between_wakes(self, lead: str) -> bool:
        last = self.services.log.last_session(lead)
        if last == 0:
            return False
        entries = self.services.log.read_transcript(lead, session=last)
        return bool(
            entries
            and entries[-1].kind == TranscriptKind.SESSION
            and entries[-1].body.get("event") == "end"
        )

    def _store_replaced(self) -> str | None:
        if self.store_file is None:
            return None
        now = _file_id(self.store_file)
        if now is None:
            return f"the store {self.store_file} was deleted while the team ran"
        if now != self.store_id:
            return f"the store {self.store_file} was replaced by another file while the team ran"
        return None

    def _serve(self) -> None:
        """One pass of this host's duties: take spawn requests while there is room, watch
        what runs here, restart what crashed once its backoff is over."""
        self._spawns()
        self._watch()
        process.reap_orphans(self._pids())
        now = time.monotonic()
        for name, at in list(self.due.items()):
            if now >= at and name not in self.procs:
                del self.due[name]
                try:
                    self._start(name, restart=True)
                except UnknownMember:
                    self.say(f"supervisor: {name} was removed from the team; not restarting it")
                    self.services.runs.update(unwant=[name])

    def _running_elsewhere(self) -> bool:
        now = time.time()
        live = {h.host for h in self.services.runs.hosts() if h.live(now)} - {self.host}
        busy = (MemberStatus.STARTING, MemberStatus.WORKING, MemberStatus.IDLE)
        return any(m.host in live and m.status in busy for m in self.services.roster.list())

    def _room(self) -> bool:
        slots = self.settings.slots
        return slots is None or len(self.procs) + len(self.due) < slots

    def _spawns(self) -> None:
        while self._room():
            spawn = self.services.runs.take_spawn(self.host, self.host_token)
            if spawn is None:
                return
            try:
                find_definition(self.project.root, spawn.agent)
            except UserError as e:
                self.services.runs.finish_spawn(spawn.id, SpawnStatus.REFUSED, str(e))
                self.say(f"supervisor: refused to start {spawn.name}: {e}")
                continue
            if spawn.name in self.procs and not self._reap_stopping(spawn.name):
                self.services.runs.finish_spawn(spawn.id, SpawnStatus.REFUSED, "already running")
                continue
            # Spawned again while a restart waits out its backoff: this start is that one.
            self.due.pop(spawn.name, None)
            self.due_after.pop(spawn.name, None)
            self._start(spawn.name)
            self.services.runs.finish_spawn(spawn.id, SpawnStatus.STARTED)

    def _reap_stopping(self, name: str) -> bool:
        """A member asked to start again while its old process is still on its way out
        (it stopped, but was not reaped yet): wait for that exit and forget it. False if
        it is really running."""
        proc = self.procs[name]
        # Its status says `starting` already (the new request): its own last word counts.
        if proc.child.poll() is None and self._stop_event(proc) is None:
            return False
        proc.child.wait(self.settings.grace)
        proc.child.close()
        del self.procs[name]
        return True

    def _watch(self) -> None:
        for name, proc in list(self.procs.items()):
            hung: str | None = None
            if proc.child.poll() is None:
                if not self._silent(proc):
                    continue
                self.say(f"supervisor: {name} stopped heartbeating; killing it")
                hung = (
                    f"it sent no heartbeat for {self.settings.silent_after:g}s, so the "
                    "supervisor killed it as hung"
                )
            # Ended or hung: its whole group goes, and with it what the member left there.
            code = proc.child.close()
            del self.procs[name]
            try:
                self.services.roster.get(name)
            except UnknownMember:
                self.say(f"supervisor: {name} was removed from the team; not restarting it")
                self.services.runs.update(unwant=[name])
                continue
            failed = self._failed(proc, code)
            if failed is not None:
                self.say(f"supervisor: {name} cannot start, not restarting it: {failed}")
                self.services.roster.update(name, status=MemberStatus.FAILED)
                self.services.runs.update(unwant=[name])
                continue
            stop = self._stop_event(proc)
            if stop is not None:
                stopped = str(stop.get("reason"))
                self.say(f"supervisor: {name} stopped ({stopped})")
                again = any(sp.name == name for sp in self.services.runs.pending_spawns())
                if again:
                    continue  # the lead spawned it again meanwhile: it stays wanted
                if stopped == "model_error" and stop.get("transient") is True:
                    self._outage(name, str(stop.get("detail") or ""))
                elif stopped in ("shutdown", "budget", "max_turns", "model_error"):
                    self.services.runs.update(unwant=[name])
                continue
            self._crashed(proc, code, why=hung)

    def _failed(self, proc: Process, code: int | None) -> str | None:
        """The reason a member gave for failing on its configuration, if it did."""
        for event in self.services.log.read_events(since=proc.since_seq):
            if event.kind == EventKind.MEMBER_FAILED and event.payload.get("name") == proc.name:
                return str(event.payload.get("reason"))
        if code == CONFIG_EXIT:
            lines = [line for line in _tail(proc.log).splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit {code}"
            self.services.log.append_event(
                EventKind.MEMBER_FAILED, {"name": proc.name, "reason": reason}
            )
            return reason
        return None

    def _crashed(self, proc: Process, code: int | None, why: str | None = None) -> None:
        name = proc.name
        # Why it ended: what the supervisor knows (it killed a hung member), else what
        # the member's log says last.
        tail = why or _tail(proc.log)
        count = self.restarts.get(name, 0)
        try:
            self.services.roster.update(name, status=MemberStatus.CRASHED)
        except UnknownMember:
            return
        gave_up = count >= self.settings.max_restarts
        self.services.log.append_event(
            EventKind.MEMBER_CRASHED,
            {"name": name, "exit_code": code, "why": tail, "gave_up": gave_up},
        )
        if gave_up:
            self.say(f"supervisor: {name} crashed {count + 1} times; not restarting it")
            self.services.runs.update(unwant=[name])
            return
        delay = self._restart_later(name, "crashed")
        self.say(f"supervisor: {name} crashed (exit {code}); restarting in {delay:g}s")

    def _outage(self, name: str, detail: str) -> None:
        """``name`` stopped because its model was unreachable: restart it like a crash
        (waiting may cure it), or give it up once its restarts are used up."""
        count = self.restarts.get(name, 0)
        if count >= self.settings.max_restarts:
            self.services.log.append_event(
                EventKind.MEMBER_GIVEN_UP,
                {"name": name, "reason": "model_error", "detail": detail, "restarts": count},
            )
            self.say(
                f"supervisor: {name}'s model is still unreachable after {count} restart(s); "
                f"not restarting it: {detail}"
            )
            self.services.runs.update(unwant=[name])
            return
        delay = self._restart_later(name, "model_error")
        self.say(
            f"supervisor: {name}'s model is unreachable for now; restarting it in {delay:g}s "
            f"(restart {count + 1} of {self.settings.max_restarts})"
        )

    def _restart_later(self, name: str, after: str) -> float:
        """Schedule a restart of ``name`` after its backoff; the delay in seconds."""
        count = self.restarts.get(name, 0)
        delay: float = self.settings.backoff * 2.0**count
        self.restarts[name] = count + 1
        self.due[name] = time.monotonic() + delay
        self.due_after[name] = after
        return delay

    def _silent(self, proc: Process) -> bool:
        running = time.monotonic() - proc.started
        if running < self.settings.silent_after:
            return False
        try:
            member = self.services.roster.get(proc.name)
        except UnknownMember:
            return True  # removed from the team while it ran: end it
        beat = member.heartbeat_at
        if beat is None or beat < time.time() - running:
            # No heartbeat from this process yet: it is still starting (an interpreter,
            # its imports, the sandbox's probe), which a loaded machine can stretch past
            # a short silent_after. Hung only once the start-up allowance is spent too.
            return running > self.settings.silent_after + START_ALLOWANCE
        return time.time() - beat > self.settings.silent_after

    def _stop_event(self, proc: Process) -> dict[str, object] | None:
        """What ``proc``'s member said when it stopped cleanly (reason, detail,
        transient), or None if it did not."""
        for event in self.services.log.read_events(since=proc.since_seq):
            if event.kind == EventKind.MEMBER_STOPPED and event.payload.get("name") == proc.name:
                return dict(event.payload)
        return None

    # processes -----------------------------------------------------------------

    def _start(self, name: str, restart: bool = False) -> None:
        issued = self.services.roster.rotate_token(name)
        since = self.seq
        log = self.logs / f"{name}.log"
        # Keys, the token and a store password go through a pipe, not the environment:
        # any tool command could read a member's environment from /proc (or ours).
        credentials.hide_from_proc()
        whole = {**os.environ, **self.settings.extra_env}
        handed = {k: v for k, v in whole.items() if credentials.is_secret(k)}
        handed["ACCORD_TOKEN"] = issued.token
        handed["ACCORD_STORE"] = self.project.store_location
        secrets_fd = credentials.hand_over(handed)
        env = {
            **credentials.scrubbed(whole),
            "ACCORD_TEAM": self.team,
            "ACCORD_MEMBER": name,
            "ACCORD_STORE": credentials.without_password(self.project.store_location),
            "ACCORD_HOST": self.host,
            credentials.FD_VARIABLE: str(secrets_fd),
        }
        argv = ["agent", "--team", self.team, "--member", name]
        with open(log, "ab") as out:
            out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} start {name}\n".encode())
            out.flush()
            try:
                forks = self._fork_server(credentials.scrubbed(whole))
                if forks is not None:
                    child = forks.start(
                        argv, cwd=self.project.root, env=env, log=out.fileno(), secrets=secrets_fd
                    )
                else:
                    child = process.start(
                        [self.settings.python, "-m", "accord", *argv],
                        cwd=self.project.root,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        pass_fds=(secrets_fd,),
                    )
            finally:
                os.close(secrets_fd)  # the member holds the read end now
        self.procs[name] = Process(
            name, child, time.monotonic(), since, log, self.restarts.get(name, 0)
        )
        self.services.roster.update(
            name, status=MemberStatus.STARTING, pid=child.pid, host=self.host
        )
        where = f" on {self.host}" if self.host != default_host() else ""
        if restart:
            self.services.log.append_event(
                EventKind.MEMBER_RESTARTED,
                {
                    "name": name,
                    "restarts": self.restarts.get(name, 0),
                    "after": self.due_after.pop(name, "crashed"),
                    "pid": child.pid,
                    "host": self.host,
                },
            )
            self.say(f"supervisor: restarted {name} (pid {child.pid}{where})")
        else:
            self.say(f"supervisor: started {name} (pid {child.pid}{where}, log {log})")

    def _stop_all(self, force: bool = False) -> None:
        procs = list(self.procs.values())
        if not procs:
            return
        grace = None if force else self.settings.grace
        if not process.end([p.child for p in procs], grace):
            self.say("supervisor: forcing")
        for p in procs:
            # A member killed before it could say so is stopped now, not live.
            try:
                m = self.services.roster.get(p.name)
                if m.status not in (MemberStatus.STOPPED, MemberStatus.FAILED):
                    self.services.roster.update(p.name, status=MemberStatus.STOPPED)
            except AccordError:
                pass
        self.procs.clear()

    def _pids(self) -> set[int]:
        forks = {self.forks.pid} if self.forks is not None else set()
        return {p.child.pid for p in self.procs.values()} | self.keep | forks

    def _fork_server(self, env: dict[str, str]) -> ForkServer | None:
        """The fork server members start from (``[run] fork_members``), started on first
        use and again if it died; None when members start as fresh processes."""
        if not self.settings.fork_members:
            return None
        if self.forks is not None and not self.forks.alive():
            self.forks.close()
            self.forks = None
        if self.forks is None:
            self.forks = ForkServer(
                self.settings.python, self.project.root, env, self.logs / "fork-server.log"
            )
        return self.forks

    def _close_fork_server(self) -> None:
        if self.forks is not None:
            self.forks.close()
            self.forks = None


def _store_file(location: str) -> Path | None:
    return None if parse_location(location).is_url else Path(location)


def _file_id(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _tail(path: Path, size: int = 1500) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
