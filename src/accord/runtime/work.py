"""Plan-file runs without a lead: a pool of workers, each running a fresh process per task.

``accord work --workers N --command CMD`` starts N worker loops (threads of one
process), members ``worker-1`` .. ``worker-N`` of the team. Each claims the best
ready task under a lease and runs ``/bin/sh -c CMD`` for it in the project
folder, in its own process group, with the task in its environment
(``ACCORD_TASK_ID``, ``ACCORD_TASK_TITLE``, ``ACCORD_TASK_DESCRIPTION``,
``ACCORD_TASK_KEY``, ``ACCORD_TEAM``...) and as JSON on stdin. The lease is
heartbeated while it runs. Exit 0 completes the task, through the board, so
TaskCompleted hooks apply; a hook that refuses, or any other exit, fails the
attempt with the reason (the hook's feedback, or the tail of the output) and
puts the task back while attempts remain. Each run's whole output is kept in
``.accord/logs/work/TEAM/``. With ``--agent DEFINITION`` an agent works each
task instead: the worker claims it, and an agent for that worker resumes the
claim and works it to the end (it claims nothing else).

The pool stops when nothing is in progress and nothing ready is left for its
workers. Killed (even with SIGKILL) and started again, it carries on: each
command's process group dies with the pool (``accord.process``), so the
commands that were running die with it, background children included, and
the new pool puts the tasks its workers held back to pending at once (one pool
per team and worker prefix runs at a time, so they cannot be anyone's but a dead
pool's); completed tasks are never redone. Agents instead resume their own
claims from their transcripts.

Ctrl+C or SIGTERM stops claiming, sends SIGTERM to the running commands'
process groups (SIGKILL after a grace period, or at once on a second signal),
and fails each interrupted task with ``retry``, so it is claimable again at once
rather than when its lease ends. An interrupted attempt counts as an attempt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from accord import process
from accord.config import STATE_DIR, Config
from accord.credentials import scrubbed, without_password
from accord.errors import AccordError, ClaimError, HookBlocked, UserError
from accord.location import parse_location
from accord.team import Team
from accord.team.board import heartbeat_period
from accord.types import (
    Claim,
    MemberStatus,
    Task,
    TaskStatus,
    TranscriptEntry,
    TranscriptKind,
    check_name,
    to_json,
)

if TYPE_CHECKING:
    from accord.agent.loop import Agent

Say = Callable[[str], None]

OUTPUT_TAIL = 2048  # bytes of a command's output kept as its result or failure reason
_ENV_LIMIT = (
    64 * 1024
)  # a description longer than this is cut in the environment (stdin has it all)
_SCRUB = ("ACCORD_MEMBER",)  # a command acts for nobody (scrubbed() takes the secrets)
_RECHECK = 0.5  # seconds between looks at the board while waiting, for leases that end


@dataclass(frozen=True, slots=True)
class WorkSettings:
    """How ``accord work`` runs: how many workers, and what each does per task."""

    workers: int
    command: str | None = None
    agent: str | None = None
    model: str | None = None
    lease_seconds: float | None = None  # None: [board] lease_seconds of accord.toml
    prefix: str = "worker"
    grace_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class WorkSummary:
    """The board when the pool stopped, and what this pool did."""

    started: int  # attempts this pool started
    completed: tuple[Task, ...]
    failed: tuple[Task, ...]
    cancelled: tuple[Task, ...]
    left: tuple[Task, ...]  # pending or in progress: blocked by failed tasks, or not ours
    seconds: float
    stopped_by: str | None  # "signal", "budget": stopped before the end

    @property
    def ok(self) -> bool:
        return not self.failed and not self.left and self.stopped_by is None


@dataclass
class _Running:
    """A command a worker is running, and whether the pool has asked it to end."""

    child: process.Child
    signalled: bool = False
    kill_at: float | None = None


class WorkPool:
    """N workers working a team's board until nothing is left for them."""

    def __init__(
        self,
        services: Team,
        config: Config,
        root: Path,
        settings: WorkSettings,
        say: Say,
    ) -> None:
        if (settings.command is None) == (settings.agent is None):
            raise UserError("give either --command CMD or --agent DEFINITION to say what to run")
        if settings.model is not None and settings.agent is None:
            raise UserError("--model goes with --agent; a --command picks its own tools")
        if settings.command is not None and not settings.command.strip():
            raise UserError("the --command is empty; say what to run for each task")
        if settings.workers < 1:
            raise UserError("--workers must be 1 or more")
        self.names = [
            check_name(f"{settings.prefix}-{i}", "worker name (from --as-prefix)")
            for i in range(1, settings.workers + 1)
        ]
        lease = settings.lease_seconds or config.board.lease_seconds
        board_config = config.board.model_copy(update={"lease_seconds": lease})
        self.config = config.model_copy(update={"board": board_config})
        # The pool's own lease: the same team, with services made for its settings.
        self.services = services.with_config(self.config)
        self.board = self.services.board
        self.team = services.team
        self.root = root.resolve()
        self.settings = settings
        self.lease = lease
        self._say = say
        self._say_lock = threading.RLock()  # a signal handler may say while main says
        self._stop = threading.Event()
        self._force = threading.Event()
        self._stopped_by: str | None = None
        self._agents: dict[str, Agent] = {}
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._started = 0
        location = self.services.location
        state = root / STATE_DIR if parse_location(location).is_url else Path(location).parent
        self.logs = state / "logs" / "work" / self.team
        self._lock_path = state / f"work-{self.team}-{settings.prefix}.lock"

    # running -------------------------------------------------------------------

    def run(self) -> WorkSummary:
        """Work until nothing is left for the workers, or until stopped."""
        began = time.monotonic()
        with self._exclusive():
            if self.settings.agent is not None:
                self._check_agent()  # a bad definition, model or key fails before any write
            self._enlist()
            if self.settings.command is not None:
                self._release_orphans()
                self.logs.mkdir(parents=True, exist_ok=True)
            beat = threading.Thread(target=self._beat_members, name="work-members", daemon=True)
            workers = [
                threading.Thread(target=self._worker, args=(name,), name=name, daemon=True)
                for name in self.names
            ]
            beat.start()
            for w in workers:
                w.start()
            try:
                while any(w.is_alive() for w in workers):
                    for w in workers:
                        w.join(timeout=0.2)  # short joins keep signal handlers responsive
            finally:
                self._stop.set()
                beat.join(timeout=5)
                for name in self.names:
                    with contextlib.suppress(AccordError):
                        self.services.roster.heartbeat(name, status=MemberStatus.STOPPED)
        if self._errors:
            raise self._errors[0]
        return self._summary(time.monotonic() - began)

    def stop(self, why: str = "signal", force: bool = False) -> None:
        """Stop claiming and end what runs: SIGTERM, then SIGKILL after the grace
        period (at once with ``force``). Safe to call from a signal handler."""
        if self._stopped_by is None and not self._stop.is_set():
            self._stopped_by = why
        self._stop.set()
        if force:
            self._force.set()
        for agent in list(self._agents.values()):
            agent.request_stop()
        for name in self.names:
            self.services.nudge(name)  # a worker waiting for work stops now

    @contextlib.contextmanager
    def signal_handlers(self) -> Iterator[None]:
        """While inside, the first SIGINT or SIGTERM stops the pool, a second forces it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            forced = self._stop.is_set()
            self.stop("signal", force=forced)
            if forced and self.settings.agent is not None:
                raise KeyboardInterrupt  # an agent mid model call cannot be ended from outside
            if not forced:
                self.say(
                    f"stopping ({signal.Signals(signum).name}): no new tasks; running ones are "
                    "ended and put back. Again to force."
                )

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def say(self, line: str) -> None:
        with self._say_lock:
            self._say(line)

    # setting up ----------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One pool per team and prefix at a time; the kernel drops the lock when we die."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise UserError(
                    f"`accord work` is already running for team {self.team!r} with workers "
                    f"{self.settings.prefix}-N ({holder}); stop it first, or pass "
                    "--as-prefix NAME to run a second pool"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _check_agent(self) -> None:
        from accord.agent.definition import find_definition
        from accord.agent.launch import model_name_for
        from accord.llm.registry import open_model

        definition = find_definition(self.root, self.settings.agent)
        open_model(
            model_name_for(definition, None, self.settings.model, self.config),
            timeout=self.config.agent.model_timeout,
            max_retries=self.config.agent.max_retries,
            base_urls=dict(self.config.agent.base_urls),
        )

    def _enlist(self) -> None:
        known = {m.name for m in self.services.roster.list()}
        for name in self.names:
            if name not in known:
                self.services.roster.add(name, agent=self.settings.agent, model=self.settings.model)
            self.services.roster.heartbeat(
                name, status=MemberStatus.WORKING, pid=os.getpid(), host=os.uname().nodename
            )

    def _release_orphans(self) -> None:
        """Put back the tasks a dead pool's workers still held (we hold the pool lock)."""
        ours = set(self.names)
        for task in self.board.list(TaskStatus.IN_PROGRESS):
            if task.owner in ours and task.fencing_token is not None:
                try:
                    after = self.board.fail(
                        task.id,
                        task.owner,
                        task.fencing_token,
                        "the `accord work` running it stopped before it finished",
                        retry=True,
                    )
                except ClaimError:
                    # Its lease ended first: the store's sweep puts it back, as for anyone's.
                    self.board.expire_leases()
                    after = self.board.get(task.id)
                self.say(
                    f"{task.owner}: #{task.id} {task.title} was left running by a stopped "
                    f"pool: {_after_failure(after)}"
                )

    # one worker ----------------------------------------------------------------

    def _worker(self, name: str) -> None:
        try:
            if self.settings.agent is not None and self._holds(name):
                self._run_agent(name, None)  # carry on what it held when the last pool died
            while not self._stop.is_set():
                claim = self.board.claim(name, lease_seconds=self.lease)
                if claim is None:
                    if self._nothing_left():
                        return
                    self.services.changed(name, _RECHECK, stop=self._stop.is_set)
                    continue
                with self._lock:
                    self._started += 1
                if self.settings.command is not None:
                    self._run_command(name, claim, self.settings.command)
                else:
                    self._run_agent(name, claim)
        except BaseException as e:  # noqa: BLE001 - reported by run() in the main thread
            self._errors.append(e)
            self.stop("error", force=True)

    def _holds(self, name: str) -> bool:
        return any(t.owner == name for t in self.board.list(TaskStatus.IN_PROGRESS))

    def _nothing_left(self) -> bool:
        """Nothing in progress (by anyone) and nothing ready that a worker may claim."""
        ours = set(self.names)
        tasks = self.board.list()
        if any(t.status == TaskStatus.IN_PROGRESS for t in tasks):
            return False
        return not any(t.ready and (t.assignee is None or t.assignee in ours) for t in tasks)

    # a command per task --------------------------------------------------------

    def _run_command(self, name: str, claim: Claim, command: str) -> None:
        task, token = claim.task, claim.fencing_token
        self.say(f"{name}: start #{task.id} {task.title} ({_attempt(task)})")
        log = self.logs / f"task-{task.id}.{token}.log"
        began = time.monotonic()
        # If the pool dies, even by SIGKILL, the command's group dies too.
        with tempfile.TemporaryFile() as stdin, open(log, "wb") as out:
            stdin.write(json.dumps(to_json(task), ensure_ascii=False).encode())
            stdin.seek(0)
            try:
                child = process.start(
                    ["/bin/sh", "-c", command],
                    cwd=self.root,
                    env=self._env(name, task),
                    stdin=stdin,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            except OSError as e:
                self._fail(name, task, token, f"cannot start `/bin/sh -c {command}`: {e}")
                return
            with child:  # what it left behind goes with it
                running = _Running(child)
                code, lost = self._supervise(name, claim, running)
        took = time.monotonic() - began
        tail = _tail(log, OUTPUT_TAIL)
        if lost is not None:
            self.say(
                f"{name}: #{task.id} lost its claim after {took:.1f}s ({lost}); result dropped"
            )
            return
        if running.signalled:
            self._fail(name, task, token, "interrupted: `accord work` was stopped while it ran")
            return
        if code == 0:
            self._complete(name, task, token, tail, took)
            return
        how = f"exited {code}" if code >= 0 else f"was killed by {signal.Signals(-code).name}"
        lines = [line for line in tail.splitlines() if line.strip()]
        if lines:
            # The first line says what happened at a glance; the rest is the output's tail.
            reason = f"the command {how}: {lines[-1][:200]}\n\nits output ended:\n{tail}"
        else:
            reason = f"the command {how} with no output"
        self._fail(name, task, token, reason, f"{how} after {took:.1f}s")

    def _supervise(
        self, name: str, claim: Claim, running: _Running
    ) -> tuple[int, ClaimError | None]:
        """Wait for the command, keeping its lease; end it if stopped or the claim is lost."""
        task, token, child = claim.task, claim.fencing_token, running.child
        with self.board.keep_lease(task.id, name, token) as lease:
            while not child.wait(0.1):
                if lease.lost is not None:
                    return child.close(), lease.lost
                now = time.monotonic()
                if self._stop.is_set():
                    if not running.signalled:
                        running.signalled = True
                        running.kill_at = now + self.settings.grace_seconds
                        child.kill(signal.SIGTERM)
                    elif self._force.is_set() or (running.kill_at and now >= running.kill_at):
                        child.kill(signal.SIGKILL)
        return child.close(), None

    def _env(self, name: str, task: Task) -> dict[str, str]:
        env = {k: v for k, v in scrubbed(os.environ).items() if k not in _SCRUB}
        description = task.description
        if len(description.encode()) > _ENV_LIMIT:
            description = description.encode()[:_ENV_LIMIT].decode("utf-8", "ignore")
        env.update(
            ACCORD_TEAM=self.team,
            ACCORD_STORE=without_password(self.services.location),
            ACCORD_WORKER=name,
            ACCORD_TASK_ID=str(task.id),
            ACCORD_TASK_KEY=task.plan_key or "",
            ACCORD_TASK_TITLE=task.title,
            ACCORD_TASK_DESCRIPTION=description,
            ACCORD_TASK_ATTEMPT=str(task.attempts),
        )
        # A NUL cannot go into the environment; nothing else is changed.
        return {k: v.replace("\0", "") for k, v in env.items()}

    def _complete(self, name: str, task: Task, token: int, tail: str, took: float) -> None:
        try:
            self.board.complete(task.id, name, token, tail.strip() or None)
        except HookBlocked as e:
            self._fail(
                name,
                task,
                token,
                f"the TaskCompleted hook refused it: {e.feedback}",
                f"refused by the TaskCompleted hook after {took:.1f}s",
            )
            return
        except ClaimError as e:
            self.say(f"{name}: #{task.id} lost its claim before completing ({e}); result dropped")
            return
        self.say(f"{name}: completed #{task.id} {task.title} in {took:.1f}s")

    def _fail(
        self, name: str, task: Task, token: int, reason: str, short: str | None = None
    ) -> None:
        try:
            after = self.board.fail(task.id, name, token, reason, retry=True)
        except ClaimError as e:
            self.say(f"{name}: #{task.id} lost its claim ({e})")
            return
        first = reason.splitlines()[0] if reason.strip() else reason
        self.say(f"{name}: #{task.id} {task.title} {short or first}: {_after_failure(after)}")

    # an agent per task ---------------------------------------------------------

    def _new_agent(self, name: str) -> Agent:
        from accord.agent.launch import build_agent
        from accord.agent.loop import Agent

        agent = build_agent(
            self.services,
            name,
            self.config,
            self.root,
            model=self.settings.model,
            definition_name=self.settings.agent,
            # `accord work` keeps working in the project folder in either isolation
            # mode: its workers are threads of one process, not members with branches.
            workspace=self.root,
            env={"ACCORD_TEAM": self.team, "ACCORD_STORE": self.services.location},
        )
        if not isinstance(agent, Agent):
            raise UserError(
                f"agent definition {self.settings.agent!r} runs a command, and `accord work` "
                "runs accord's own agents only: use it in a team run (`accord run`)"
            )
        # It works the task its worker claimed for it, and claims nothing else.
        agent.definition = dataclasses.replace(agent.definition, self_claim=False)
        return agent

    def _end_stale_session(self, name: str, task_id: int) -> None:
        """Close a session a stopped agent left open on another task, so the agent
        starts the task its worker just claimed with a fresh context."""
        from accord.agent.context import Conversation

        last = self.services.log.last_session(name)
        if last == 0:
            return
        conv = Conversation.rebuild(self.services.log.read_transcript(name, session=last))
        if conv is None or conv.task_id == task_id:
            return
        end = {"event": "end", "why": f"accord work gave {name} task #{task_id}"}
        self.services.log.append_transcript(
            [TranscriptEntry(name, last, TranscriptKind.SESSION, end, conv.task_id)],
        )

    def _run_agent(self, name: str, claim: Claim | None) -> None:
        if claim is not None:
            self.say(f"{name}: start #{claim.task.id} {claim.task.title} ({_attempt(claim.task)})")
        else:
            self.say(f"{name}: resuming the task it held")
        if claim is not None:
            self._end_stale_session(name, claim.task.id)
        agent = self._new_agent(name)
        began = time.monotonic()
        with self._lock:
            self._agents[name] = agent
        try:
            if self._stop.is_set():
                agent.request_stop()
            outcome = agent.run(once=True)
        finally:
            with self._lock:
                self._agents.pop(name, None)
        took = time.monotonic() - began
        held = [t for t in self.board.list(TaskStatus.IN_PROGRESS) if t.owner == name]
        for task in held:
            assert task.fencing_token is not None
            why = f"the agent stopped without finishing it ({outcome.reason}"
            why += f": {outcome.detail})" if outcome.detail else ")"
            self._fail(name, task, task.fencing_token, why)
        if claim is not None:
            task = self.board.get(claim.task.id)
            if task.status == TaskStatus.COMPLETED and task.owner == name:
                self.say(f"{name}: completed #{task.id} {task.title} in {took:.1f}s")
            elif task.status != TaskStatus.IN_PROGRESS and not held:
                self.say(f"{name}: #{task.id} {task.title} {task.status.value}: {task.reason}")
        if outcome.reason == "budget":
            self.say(f"{name}: {outcome.detail}; stopping the pool")
            self.stop("budget")

    # liveness and the end ------------------------------------------------------

    def _beat_members(self) -> None:
        every = heartbeat_period(self.lease, self.config.agent.heartbeat_seconds)
        while not self._stop.wait(every):
            for name in self.names:
                with contextlib.suppress(AccordError):
                    self.services.roster.heartbeat(name)

    def _summary(self, seconds: float) -> WorkSummary:
        tasks = self.board.list()

        def having(*states: TaskStatus) -> tuple[Task, ...]:
            return tuple(t for t in tasks if t.status in states)

        return WorkSummary(
            started=self._started,
            completed=having(TaskStatus.COMPLETED),
            failed=having(TaskStatus.FAILED),
            cancelled=having(TaskStatus.CANCELLED),
            left=having(TaskStatus.PENDING, TaskStatus.IN_PROGRESS),
            seconds=seconds,
            stopped_by=None if self._nothing_left() else self._stopped_by,
        )


def _tail(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            kept = f.read()
    except OSError:
        return ""
    text = kept.decode("utf-8", "replace")
    if size > len(kept):
        text = f"[{size - len(kept)} earlier bytes in {path}]\n" + text
    return text


def _attempt(task: Task) -> str:
    return f"attempt {task.attempts} of {task.max_attempts}"


def _after_failure(task: Task) -> str:
    if task.status == TaskStatus.PENDING:
        return f"back to pending ({task.attempts} of {task.max_attempts} attempts used)"
    if task.status == TaskStatus.FAILED:
        return f"failed for good after {task.attempts} attempt(s)"
    return f"now {task.status.value}"
