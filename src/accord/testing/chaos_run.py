"""The chaos run: a real team under a driver that kills, pauses and restarts it, then the
Jepsen-style check of ``accord.testing.chaos``.

The team is a real ``accord run``: a supervisor process, a scripted lead that spawns
the teammates, and each teammate a real ``accord agent`` process with a rule-scripted
model. Scripted agents rather than ``accord work`` workers, because agents read mail:
they save each message into their transcript and only then acknowledge it, which is
the promise the mail half of the check defends; and because ``accord work``'s workers
are threads of one process, so one of them could not be killed alone. Each task is a
real tool call (``bash``: a short sleep, so claims are held while members are killed
or paused) followed by ``task_complete``.

While the team works, the driver at random, with a seeded generator:

- SIGKILLs a member (the supervisor restarts it from its transcript);
- SIGSTOPs a member for longer than the lease, then SIGCONTs it (its lease ends
  meanwhile, someone else takes the task, and the woken member's token is stale);
- SIGKILLs the supervisor (its members die with it) and starts ``accord resume``;
- sends mail between teammates.

When the board is done (and, with ``minutes``, not before that time is up: a new
batch of tasks is added whenever one is done), it stops the chaos, waits for the
mail to be read, stops the team with ``accord stop`` and checks the store.

    python -m accord.testing.chaos_run --tasks 1000 --workers 16 --minutes 10
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.store import Store, open_store
from accord.testing.chaos import ChaosReport, check
from accord.testing.cli import calls, clean_env, rules
from accord.types import MemberStatus, NewTask, OutgoingMessage, TaskStatus

TEAM = "main"
_ENDED = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    """How big the run is and how hard the driver shakes it."""

    tasks: int = 1000  # per batch
    workers: int = 16
    minutes: float | None = None  # None: one batch, ended when it is done
    seed: int = 17
    lease_seconds: float = 2.0
    work_seconds: tuple[float, float] = (0.05, 0.4)  # each task's sleep: uniform in
    every: tuple[float, float] = (0.3, 1.2)  # seconds between chaos actions
    messages_per_action: int = 2
    # A supervisor kill is random (about one act in twelve); if none has come by then,
    # one comes now, so even a short run kills its supervisor.
    supervisor_kill_after: float = 60.0
    max_batches: int = 3  # with minutes: the most batches the members have rules for
    deadline_seconds: float = 600.0  # give up (and say so) after the chaos ends


@dataclass
class ChaosOutcome:
    """The check's report and what the driver did."""

    report: ChaosReport
    actions: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    batches: int = 0

    def __str__(self) -> str:
        did = ", ".join(f"{k} {v}" for k, v in sorted(self.actions.items()))
        return f"{self.seconds:.0f}s, {self.batches} batch(es); driver: {did}\n{self.report}"


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat): tells a pid reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


class _Driver:
    def __init__(self, root: Path, settings: ChaosSettings, say: Callable[[str], None]) -> None:
        self.root = root
        self.s = settings
        self.say = say
        self.rng = random.Random(settings.seed)
        self.mates = [f"w{i}" for i in range(1, settings.workers + 1)]
        self.actions: Counter[str] = Counter()
        self.paused: dict[int, tuple[str | None, float]] = {}  # pid -> (start time, resume at)
        self.supervisor: subprocess.Popen[bytes] | None = None
        (root / ".accord").mkdir(parents=True, exist_ok=True)
        self.log = (root / ".accord" / "chaos-supervisor.log").open("ab")
        self.store: Store | None = None
        self.next_id = 1
        self.batches = 0
        self.began = time.monotonic()
        self.last_supervisor_kill = 0.0
        self.rules_path = root / "mate.json"
        self.lead_model = ""
        self.mate_model = ""

    # the project -------------------------------------------------------------------

    def prepare(self) -> None:
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / "accord.toml").write_text(
            "[board]\n"
            f"lease_seconds = {self.s.lease_seconds}\n"
            "max_attempts = 1000\n"
            "[run]\nmax_restarts = 100\nrestart_backoff = 0.2\ngrace = 3\n"
            "[learning]\nenabled = false\n"
        )
        (root / ".accord").mkdir(exist_ok=True)
        spawn = [
            ("spawn_teammate", {"name": m, "instructions": "Do ready tasks."}) for m in self.mates
        ]
        lead_rules: list[dict[str, Any]] = [
            {
                "if": "# First wake",
                "once": True,
                "then": calls(*spawn),
            }
        ]
        self.lead_model = rules(root / "lead.json", lead_rules, "Waiting.")
        self.mate_model = f"scripted:{self.rules_path}"
        self._write_mate_rules(self.s.tasks * (1 if self.s.minutes is None else self.s.max_batches))
        self._accord("init", "--team", TEAM)
        self.store = open_store(str(root / ".accord" / "accord.db"))

    def _write_mate_rules(self, upto: int) -> None:
        found: list[dict[str, Any]] = []
        for i in range(1, upto + 1):
            pause = self.rng.uniform(*self.s.work_seconds)
            work = f"sleep {pause:.2f}; echo '<done {i}>'"
            found.append({"if": f"Your task #{i}:", "then": calls(("bash", {"command": work}))})
            done = calls(("task_complete", {"task_id": i, "result": "ok"}))
            found.append({"if": f"<done {i}>", "then": done})
        rules(self.rules_path, found, "Noted.")

    def _accord(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "accord", *args],
            cwd=self.root,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"accord {' '.join(args)}: {done.stderr.strip()}")
        return done

    def add_batch(self) -> None:
        assert self.store is not None
        first = self.next_id
        for i in range(self.s.tasks):
            task = self.store.add_task(TEAM, NewTask(f"chaos task {first + i}"), max_attempts=1000)
            self.next_id = task.id + 1
        self.batches += 1

    # processes ---------------------------------------------------------------------

    def start_supervisor(self, *args: str) -> None:
        self.supervisor = subprocess.Popen(
            [sys.executable, "-m", "accord", *args, "--display", "plain"],
            cwd=self.root,
            env=clean_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def ensure_supervisor(self) -> None:
        """Restart the supervisor if it is down: ``accord resume``."""
        if self.supervisor is not None and self.supervisor.poll() is None:
            return
        self.actions["supervisor_restarts"] += 1
        self.start_supervisor("resume")

    def live_members(self) -> list[tuple[str, int]]:
        assert self.store is not None
        return [
            (m.name, m.pid)
            for m in self.store.list_members(TEAM)
            if m.pid is not None and m.status == MemberStatus.WORKING and _alive(m.pid)
        ]

    def resume_paused(self, all_of_them: bool = False) -> None:
        now = time.monotonic()
        for pid, (started, at) in list(self.paused.items()):
            if all_of_them or now >= at:
                if _start_time(pid) == started:
                    _signal(pid, signal.SIGCONT)
                del self.paused[pid]

    def act(self) -> None:
        """One random act of chaos, and some mail."""
        self.ensure_supervisor()
        choice = self.rng.random()
        members = [(n, p) for n, p in self.live_members() if p not in self.paused]
        now = time.monotonic()
        overdue = (
            not self.actions["supervisor_kills"]
            and now - self.began >= self.s.supervisor_kill_after
        )
        # The supervisor only once most of the team is back from the last time: a team
        # killed whole again while it restarts would do no work between kills.
        up = 2 * len(members) >= len(self.mates) and now - self.last_supervisor_kill >= 10
        if (choice < 0.08 and up or overdue) and self.supervisor is not None:
            self.supervisor.kill()
            self.supervisor.wait()
            self.actions["supervisor_kills"] += 1
            self.last_supervisor_kill = now
        elif choice < 0.5 and members:
            _, pid = self.rng.choice(members)
            _signal(pid, signal.SIGKILL)
            self.actions["member_kills"] += 1
        elif members:
            _, pid = self.rng.choice(members)
            until = time.monotonic() + self.s.lease_seconds + self.rng.uniform(0.5, 2.0)
            self.paused[pid] = (_start_time(pid), until)
            _signal(pid, signal.SIGSTOP)
            self.actions["member_pauses"] += 1
        self.send_mail()

    def send_mail(self) -> None:
        assert self.store is not None
        for _ in range(self.s.messages_per_action):
            sender, recipient = self.rng.sample(self.mates, 2)
            n = self.actions["messages_sent"] + 1
            try:
                self.store.send_message(
                    TEAM, OutgoingMessage(sender, recipient, f"chaos note {n} from {sender}")
                )
            except Exception:  # noqa: BLE001 - a member not added yet: the lead spawns them
                continue
            self.actions["messages_sent"] += 1

    # the run -------------------------------------------------------------------------

    def board_done(self) -> bool:
        assert self.store is not None
        return all(t.status in _ENDED for t in self.store.list_tasks(TEAM))

    def mail_read(self) -> bool:
        assert self.store is not None
        return not [
            m
            for m in self.store.list_messages(TEAM, unacked=True, limit=2**62)
            if m.recipient in self.mates
        ]

    def run(self) -> ChaosOutcome:
        began = self.began = time.monotonic()
        self.prepare()
        assert self.store is not None
        self.add_batch()
        self.start_supervisor(
            "run", "chaos", "--model", self.lead_model, "--teammate-model", self.mate_model
        )
        try:
            # No chaos before the lead has spawned every teammate: a lead killed before
            # its first turn is saved would start over, and on a loaded machine might
            # never get that far.
            warm = time.monotonic() + self.s.deadline_seconds
            while len({n for n, _ in self.live_members()} & set(self.mates)) < len(self.mates):
                if time.monotonic() > warm:
                    raise RuntimeError("the teammates did not all start; see the supervisor log")
                time.sleep(0.2)
            self.say(f"{len(self.mates)} teammates up after {time.monotonic() - began:.0f}s")
            self.began = time.monotonic()
            ends = None if self.s.minutes is None else self.began + self.s.minutes * 60
            # The chaos: until the board is done, or (with minutes) the time is up; a
            # board done early gets another batch, while the members' rules cover it.
            while True:
                time.sleep(self.rng.uniform(*self.s.every))
                self.resume_paused()
                if ends is not None and time.monotonic() >= ends:
                    break
                if self.board_done():
                    if ends is None or self.batches >= self.s.max_batches:
                        break
                    self.add_batch()
                    self.say(f"batch {self.batches} added at {time.monotonic() - began:.0f}s")
                self.act()
            # Calm: everyone awake, a supervisor up, the mail read.
            self.resume_paused(all_of_them=True)
            self.ensure_supervisor()
            limit = time.monotonic() + self.s.deadline_seconds
            while not (self.board_done() and self.mail_read()):
                if time.monotonic() > limit:
                    self.say("the mail was not all read before the deadline")
                    break
                self.ensure_supervisor()
                time.sleep(0.2)
            self._accord("stop")
            if self.supervisor is not None:
                self.supervisor.wait(timeout=60)
        finally:
            self.resume_paused(all_of_them=True)
            self.cleanup()
        report = check(self.store, TEAM, members=self.mates)
        self.store.close()
        return ChaosOutcome(report, self.actions, time.monotonic() - began, self.batches)

    def cleanup(self) -> None:
        """End every process of this run: the supervisor, then any member left."""
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.kill()
            self.supervisor.wait()
        if self.store is not None:
            for m in self.store.list_members(TEAM):
                if m.pid is not None and _alive(m.pid) and _ours(m.pid, self.root):
                    _signal(m.pid, signal.SIGCONT)
                    _signal(m.pid, signal.SIGKILL)
        self.log.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _ours(pid: int, root: Path) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/cwd").startswith(str(root))
    except OSError:
        return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def run_chaos(
    root: Path, settings: ChaosSettings, say: Callable[[str], None] = lambda _: None
) -> ChaosOutcome:
    """Make a project at ``root``, run the team under chaos, and check what it left."""
    return _Driver(root, settings, say).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="a new folder for the project")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    settings = ChaosSettings(args.tasks, args.workers, args.minutes, args.seed)
    outcome = run_chaos(args.root, settings, lambda line: print(line, flush=True))
    print(outcome)
    return 0 if outcome.report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
