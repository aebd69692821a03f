"""Races, kill -9 and cross-process wake-ups, with real OS processes on one real store.

Every worker is its own interpreter (multiprocessing's ``spawn`` context) that
opens its own store, exactly as members do. The promises defended here are
DESIGN.md's 1 (one claim per ready task, fencing tokens), 2 (leases end, tasks
come back with attempts raised), 4 (no message lost before its ack), 5 (gap-free
log) and 6 (committed state survives kill -9).

The races, the lease and the mail tests run on SQLite and on PostgreSQL (the
``location`` fixture); kill -9 mid-write and the chaos soak are SQLite's, whose
file is what a killed writer could damage.

Nothing here sleeps to synchronise: a test waits on something it can observe
(a pipe, a file, the store) with a deadline, and every child process is killed
and reaped in ``finally`` whatever happens.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

import pytest

from accord.config import BoardConfig
from accord.errors import ClaimError, StaleToken
from accord.store import Store, open_store
from accord.team.board import Board
from accord.team.wake import wait
from accord.types import Event, NewTask, OutgoingMessage, TaskStatus
from conftest import CONTENDED_BUSY_TIMEOUT, DEADLINE, claim_worker, reaped

CTX = mp.get_context("spawn")
TEAM = "main"
T = TypeVar("T")


def now() -> float:
    """CLOCK_MONOTONIC: one clock for every process on the machine (Linux)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# plumbing ---------------------------------------------------------------------


def start(procs: list[BaseProcess], target: Callable[..., None], *args: Any) -> BaseProcess:
    p = CTX.Process(target=target, args=args, daemon=True)
    procs.append(p)
    p.start()
    return p


def receive(conn: Connection, proc: BaseProcess, what: str, timeout: float = DEADLINE) -> Any:
    """The next object ``proc`` sends, failing fast if it dies first."""
    limit = now() + timeout
    while now() < limit:
        if conn.poll(0.05):
            try:
                return conn.recv()
            except EOFError:
                break  # the process closed its end: it died
        if not proc.is_alive() and not conn.poll(0):
            break
    else:
        pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
    proc.join(10)
    pytest.fail(f"{what}: the process exited with code {proc.exitcode} first")


def eventually(check: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """Poll ``check`` until it returns something other than None or False."""
    limit = now() + timeout
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if now() >= limit:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


def reaches(count: Callable[[], int], goal: int, what: str) -> None:
    """Poll until ``count()`` is at least ``goal``."""
    eventually(lambda: count() >= goal, what)


def killed(p: BaseProcess) -> None:
    """SIGKILL ``p`` and reap it."""
    p.kill()
    p.join(10)
    assert p.exitcode == -signal.SIGKILL, f"expected death by SIGKILL, got {p.exitcode}"


def new_store(path: Path | str, members: tuple[str, ...]) -> Store:
    """A store at ``path`` (a SQLite file, or a PostgreSQL URL) with team main and
    ``members``."""
    store = open_store(str(path), create=True, synchronous="normal")
    store.create_team(TEAM)
    for name in members:
        store.add_member(TEAM, name, token_hash="unused")
    return store


def assert_gap_free(events: list[Event]) -> None:
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "the event log has a gap or a repeat"


def block_forever() -> None:
    threading.Event().wait()


# workers (each runs in its own process) ---------------------------------------


def hold_worker(path: str, member: str, lease: float, conn: Connection) -> None:
    """Claim one task under a short lease, say so, then hang until killed."""
    store = open_store(path)
    claim = Board(store, TEAM).claim(member, lease_seconds=lease)
    assert claim is not None
    conn.send((claim.task.id, claim.fencing_token, claim.lease_expires_at))
    block_forever()


def write_worker(path: str, log: str, seed: int) -> None:
    """Write tasks, messages and events without end; after each commit, log what it was.

    The log line is written only after the store call returned, so every line
    names a committed write; a kill between the two loses a line, never a write.
    """
    store = open_store(path)  # synchronous=FULL, the default
    rng = random.Random(seed)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    i = 0
    while True:
        i += 1
        choice = i % 3
        if choice == 0:
            # Big enough that a kill often lands inside the transaction.
            body = "x" * rng.randrange(1, 40_000)
            task = store.add_task(TEAM, NewTask(f"t{seed}-{i}", body), max_attempts=3)
            line = f"task {task.id}\n"
        elif choice == 1:
            (message,) = store.send_message(TEAM, OutgoingMessage("alice", "bob", f"m{seed}-{i}"))
            line = f"message {message.id}\n"
        else:
            event = store.append_event(TEAM, "note", {"i": i, "seed": seed}, "alice")
            line = f"event {event.seq}\n"
        os.write(fd, line.encode())


def mail_waiter(path: str, member: str, rounds: int, conn: Connection) -> None:
    """Block in wait() for each round; report why and when it woke and what it got."""
    store = open_store(path)
    # With nothing addressed to it, wait() must not wake early.
    idle = wait(store, TEAM, member, timeout=0.2)
    conn.send(("ready", idle.reason))
    for _ in range(rounds):
        wake = wait(store, TEAM, member, timeout=DEADLINE)
        woke = now()
        messages = store.receive_messages(TEAM, member, visibility_timeout=60)
        store.ack_messages(TEAM, member, [m.id for m in messages])
        conn.send((wake.reason, woke, [m.id for m in messages]))
    store.close()


def take_and_hang(path: str, member: str, limit: int | None, vis: float, conn: Connection) -> None:
    """On "go", receive mail (never acknowledging it), say what came, then hang until killed."""
    store = open_store(path)
    conn.recv()
    messages = store.receive_messages(TEAM, member, visibility_timeout=vis, limit=limit)
    conn.send([m.id for m in messages])
    block_forever()


def drain(path: str, member: str, count: int, conn: Connection) -> None:
    """On "go", wait for, receive and acknowledge mail until ``count`` messages are in."""
    store = open_store(path)
    conn.recv()
    got: list[tuple[int, int]] = []
    limit = now() + DEADLINE
    while len(got) < count and now() < limit:
        wait(store, TEAM, member, timeout=limit - now())
        messages = store.receive_messages(TEAM, member, visibility_timeout=60)
        store.ack_messages(TEAM, member, [m.id for m in messages])
        got += [(m.id, m.deliveries) for m in messages]
    conn.send(got)
    store.close()


def chaos_worker(path: str, member: str, lease: float, log: str) -> None:
    """Claim, heartbeat-free "work" of random length, complete; log each completion."""
    store = open_store(path, synchronous="normal", busy_timeout=CONTENDED_BUSY_TIMEOUT)
    board = Board(store, TEAM, BoardConfig(lease_seconds=lease))
    rng = random.Random(f"{member}-{os.getpid()}")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    while True:
        claim = board.claim(member)
        if claim is None:
            if not store.list_tasks(TEAM, status=TaskStatus.PENDING) and not store.list_tasks(
                TEAM, status=TaskStatus.IN_PROGRESS
            ):
                return
            wait(store, TEAM, member, timeout=0.5)
            continue
        threading.Event().wait(rng.random() * 0.01)  # the work itself
        try:
            board.complete(claim.task.id, member, claim.fencing_token, result=member)
        except ClaimError:
            continue  # the lease ran out under us: somebody else owns it now
        os.write(fd, f"{claim.task.id} {claim.fencing_token}\n".encode())


# 1. many processes, one board -------------------------------------------------


def _race(location: str, workers: int, tasks: int, deps: bool) -> None:
    members = tuple(f"w{i}" for i in range(workers))
    store = new_store(location, members)
    rng = random.Random(7)
    blockers: dict[int, tuple[int, ...]] = {}
    for i in range(1, tasks + 1):
        wanted: tuple[int, ...] = ()
        if deps and i > 1 and rng.random() < 0.1:
            wanted = tuple(sorted(rng.sample(range(max(1, i - 50), i), rng.randint(1, 2))))
        task = store.add_task(TEAM, NewTask(f"task {i}", blocked_by=wanted), max_attempts=3)
        assert task.id == i
        blockers[i] = wanted
    go = CTX.Event()
    with reaped() as procs:
        pipes = []
        for member in members:
            parent, child = CTX.Pipe()
            pipes.append((parent, start(procs, claim_worker, location, member, go, child)))
        for parent, p in pipes:
            assert receive(parent, p, "a worker to open the store") == "ready"
        go.set()  # all at once, so they really contend
        # At least 50 cycles a second, however slow the machine: beyond that, fail.
        budget = DEADLINE + tasks / 50
        reports: list[list[tuple[int, int]]] = [
            receive(parent, p, "a worker's report", budget) for parent, p in pipes
        ]
        for p in procs:
            p.join(DEADLINE)
            assert p.exitcode == 0

    # Each worker's completions, together: every task exactly once.
    reported = [pair for report in reports for pair in report]
    assert len(reported) == tasks, f"{len(reported) - tasks} completions reported twice"
    assert sorted(task_id for task_id, _ in reported) == list(range(1, tasks + 1))
    assert sum(1 for report in reports if report) >= 2, "one worker did everything: no race"
    by_task = dict(reported)
    by_member = {task_id: members[n] for n, report in enumerate(reports) for task_id, _ in report}

    board = store.list_tasks(TEAM)
    assert len(board) == tasks
    for task in board:
        assert task.status == TaskStatus.COMPLETED, f"task #{task.id} is {task.status}"
        assert task.attempts == 1
        assert task.owner == task.result == by_member[task.id]
        assert task.fencing_token == by_task[task.id]

    events = store.read_events(TEAM)
    assert_gap_free(events)
    claimed = [e for e in events if e.kind == "task_claimed"]
    completed = [e for e in events if e.kind == "task_completed"]
    assert Counter(e.payload["id"] for e in claimed) == Counter(range(1, tasks + 1))
    assert Counter(e.payload["id"] for e in completed) == Counter(range(1, tasks + 1))
    tokens = [e.payload["token"] for e in claimed]
    assert len(set(tokens)) == len(tokens), "a fencing token was issued twice"
    assert {e.payload["id"]: e.payload["token"] for e in claimed} == by_task
    assert not [e for e in events if e.kind == "lease_expired"]

    # A task was claimed only after every task blocking it had completed.
    done_at = {e.payload["id"]: e.seq for e in completed}
    claimed_at = {e.payload["id"]: e.seq for e in claimed}
    for task_id, wanted in blockers.items():
        for b in wanted:
            assert done_at[b] < claimed_at[task_id], f"#{task_id} claimed before #{b} was done"
    store.close()


def test_eight_processes_claim_and_complete_every_task_exactly_once(
    location: str, request: pytest.FixtureRequest
) -> None:
    # 2,000 tasks on SQLite; 800 on PostgreSQL, whose round trips cost several times
    # SQLite's (2,000 there too with --slow): the race is the same at either size.
    slow = request.config.getoption("--slow")
    many = 800 if "://" in location and not slow else 2000
    _race(location, workers=8, tasks=many, deps=False)


def test_processes_respect_dependencies_under_contention(location: str) -> None:
    _race(location, workers=8, tasks=300, deps=True)


@pytest.mark.slow
def test_sixteen_processes_5000_tasks_with_dependencies(location: str) -> None:
    _race(location, workers=16, tasks=5000, deps=True)


# 2. kill -9 ---------------------------------------------------------------------


def test_a_killed_holder_loses_its_claim_when_the_lease_ends(location: str) -> None:
    path = location
    store = new_store(path, ("alice", "bob"))
    store.add_task(TEAM, NewTask("the only task"), max_attempts=3)
    board = Board(store, TEAM)
    with reaped() as procs:
        parent, child = CTX.Pipe()
        holder = start(procs, hold_worker, path, "alice", 2.0, child)
        task_id, token, expires = receive(parent, holder, "alice's claim")
        killed(holder)

    # Dead, but its lease runs on: the task stays in progress and nobody else gets it.
    task = store.get_task(TEAM, task_id)
    assert (task.status, task.owner, task.fencing_token) == (TaskStatus.IN_PROGRESS, "alice", token)
    early = board.claim("bob", lease_seconds=60)
    if time.time() < expires:  # (the claim read its clock before this)
        assert early is None, "bob took a task whose lease was still running"
    if early is None:
        # The end of the lease is observable: wait() reports work for bob.
        wake = wait(store, TEAM, "bob", timeout=expires - time.time() + DEADLINE)
        assert wake.reason == "task"
        assert time.time() >= expires
        with pytest.raises(StaleToken, match="lost"):
            store.heartbeat_task(TEAM, task_id, "alice", token, lease_seconds=60)
        claim = eventually(lambda: board.claim("bob", lease_seconds=60), "bob's claim")
    else:
        claim = early  # this machine stalled past the lease; the rest still holds
    assert claim.task.id == task_id
    assert claim.task.attempts == 2
    assert claim.fencing_token > token

    # The dead holder's token can do nothing, now or after bob is done.
    with pytest.raises(ClaimError):
        store.complete_task(TEAM, task_id, "alice", token, "from beyond")
    with pytest.raises(ClaimError):
        store.heartbeat_task(TEAM, task_id, "alice", token, lease_seconds=60)
    board.complete(task_id, "bob", claim.fencing_token, "done")
    with pytest.raises(StaleToken):
        store.complete_task(TEAM, task_id, "alice", token, "from beyond")
    task = store.get_task(TEAM, task_id)
    assert (task.status, task.owner, task.result) == (TaskStatus.COMPLETED, "bob", "done")

    events = store.read_events(TEAM)
    assert_gap_free(events)
    expired = [e.payload for e in events if e.kind == "lease_expired"]
    assert expired == [
        {"id": task_id, "owner": "alice", "token": token, "attempts": 1, "status": "pending"}
    ]
    store.close()


def _committed(log: Path) -> dict[str, list[int]]:
    """What the killed writer reported as committed (a torn last line is ignored)."""
    found: dict[str, list[int]] = {"task": [], "message": [], "event": []}
    for line in log.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            kind, number = line.split()
            found[kind].append(int(number))
    return found


def test_committed_writes_survive_kill_9_mid_stream(tmp_path: Path) -> None:
    path = tmp_path / "accord.db"
    new_store(path, ("alice", "bob")).close()
    log = tmp_path / "committed.log"
    log.touch()
    rng = random.Random(11)
    for round_ in range(3):
        # Kill after a different, random amount of work each round.
        goal = len(_committed(log)["task"]) + rng.randint(20, 60)
        with reaped() as procs:
            writer = start(procs, write_worker, str(path), str(log), round_)
            reaches(lambda: len(_committed(log)["task"]), goal, "the writer to commit tasks")
            killed(writer)

        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        db.close()
        committed = _committed(log)
        with open_store(str(path)) as store:
            tasks = {t.id for t in store.list_tasks(TEAM)}
            assert set(committed["task"]) <= tasks
            messages = {m.id for m in store.list_messages(TEAM, limit=1_000_000)}
            assert set(committed["message"]) <= messages
            events = store.read_events(TEAM)
            assert_gap_free(events)
            assert set(committed["event"]) <= {e.seq for e in events}
            # What is there is whole: every task has its task_created event, and so on.
            created = {e.payload["id"] for e in events if e.kind == "task_created"}
            assert created == tasks
            sent = {i for e in events if e.kind == "message_sent" for i in e.payload["ids"]}
            assert sent == messages


@pytest.mark.slow
def test_chaos_killing_workers_never_duplicates_a_completion(tmp_path: Path) -> None:
    """Workers with short leases are SIGKILLed at random and replaced, until all is done."""
    workers, tasks, lease = 6, 600, 0.5
    members = tuple(f"w{i}" for i in range(workers))
    path = tmp_path / "accord.db"
    store = new_store(path, members)
    for i in range(tasks):
        store.add_task(TEAM, NewTask(f"task {i}"), max_attempts=1000)
    log = tmp_path / "completions.log"
    log.touch()
    rng = random.Random(3)
    kills = 0

    def completed_count() -> int:
        return len(store.list_tasks(TEAM, status=TaskStatus.COMPLETED))

    with reaped() as procs:
        running = {m: start(procs, chaos_worker, str(path), m, lease, str(log)) for m in members}
        while (done := completed_count()) < tasks:
            victim = rng.choice(members)
            if running[victim].is_alive():
                killed(running[victim])
                kills += 1
            running[victim] = start(procs, chaos_worker, str(path), victim, lease, str(log))
            # Let the team make some progress before the next kill.
            reaches(completed_count, min(tasks, done + 25), "the team to make progress")
    assert kills > 0

    board = store.list_tasks(TEAM)
    assert all(t.status == TaskStatus.COMPLETED for t in board)
    events = store.read_events(TEAM)
    assert_gap_free(events)
    completed = [e.payload for e in events if e.kind == "task_completed"]
    assert Counter(p["id"] for p in completed) == Counter(range(1, tasks + 1))
    tokens = [e.payload["token"] for e in events if e.kind == "task_claimed"]
    assert len(set(tokens)) == len(tokens)
    final = {t.id: t.fencing_token for t in board}
    assert {p["id"]: p["token"] for p in completed} == final
    # Every completion a worker lived to log is the one the store recorded.
    for line in log.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            task_id, token = map(int, line.split())
            assert final[task_id] == token
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
    store.close()


# 3. mail between processes ----------------------------------------------------


def test_a_waiting_process_wakes_quickly_when_another_sends_mail(location: str) -> None:
    path = location
    store = new_store(path, ("alice", "bob"))
    rounds = 5
    latencies = []
    with reaped() as procs:
        parent, child = CTX.Pipe()
        waiter = start(procs, mail_waiter, path, "bob", rounds, child)
        assert receive(parent, waiter, "bob to start waiting") == ("ready", "timeout")
        for i in range(rounds):
            sent = now()
            (message,) = store.send_message(TEAM, OutgoingMessage("alice", "bob", f"ping {i}"))
            reason, woke, ids = receive(parent, waiter, "bob to wake")
            assert reason == "mail"
            assert ids == [message.id]
            latencies.append(woke - sent)
        waiter.join(DEADLINE)
        assert waiter.exitcode == 0
    # Typically a few milliseconds (one poll slice); the bound is loose on purpose.
    assert max(latencies) < 2.0, f"wake latencies (s): {latencies}"
    assert min(latencies) > 0
    store.close()


def test_mail_is_redelivered_after_receivers_die_before_acking(location: str) -> None:
    path = location
    store = new_store(path, ("alice", "bob"))
    sent = [
        store.send_message(TEAM, OutgoingMessage("alice", "bob", f"note {i}"))[0].id
        for i in range(30)
    ]
    # Long enough that a loaded machine never lets the first receiver's mail come back
    # before the second receiver takes its share (which would make it take all).
    vis = 4.0
    with reaped() as procs:
        # Started up front and told when to act, so interpreter start-up time never
        # eats into the visibility timeout.
        pipes = [CTX.Pipe() for _ in range(3)]
        first = start(procs, take_and_hang, path, "bob", 10, vis, pipes[0][1])
        second = start(procs, take_and_hang, path, "bob", None, vis, pipes[1][1])
        third = start(procs, drain, path, "bob", len(sent), pipes[2][1])

        # Two receivers take mail and die before acknowledging any of it.
        pipes[0][0].send("go")
        assert receive(pipes[0][0], first, "the first receiver's mail") == sent[:10]
        killed(first)
        pipes[1][0].send("go")
        assert receive(pipes[1][0], second, "the second receiver's mail") == sent[10:]
        killed(second)
        assert [m.id for m in store.list_messages(TEAM, member="bob", unacked=True)] == sent

        # A restarted receiver gets all of it again once the visibility timeout ends.
        pipes[2][0].send("go")
        got = receive(pipes[2][0], third, "the restarted receiver's mail")
        third.join(DEADLINE)
        assert third.exitcode == 0
    assert [mid for mid, _ in got] == sent, "lost, duplicated or reordered mail"
    assert all(deliveries == 2 for _, deliveries in got)
    assert store.list_messages(TEAM, member="bob", unacked=True) == []
    events = store.read_events(TEAM)
    assert_gap_free(events)
    acked = [i for e in events if e.kind == "messages_acked" for i in e.payload["ids"]]
    assert sorted(acked) == sent
    store.close()
