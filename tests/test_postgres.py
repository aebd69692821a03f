"""The PostgreSQL store where it differs from SQLite: opening it, its migrations,
its wake-ups when notifications are lost, and members working through a restart.

Everything the two backends share is in the conformance suite, the stateful test
and the race tests, which run on both. Tests that need a server of their own (to
turn on passwords, or to restart it) start a private cluster in a temporary
folder (``accord.testing.pg.PrivateCluster``); the shared server is never
restarted or reconfigured.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql
import pytest

import accord.store.postgres as pg_store
from accord.cli._advice import worded
from accord.errors import Reason, StoreCorrupt, StoreError, StoreNotFound, StoreUnavailable
from accord.store import Store, open_store
from accord.store.migrations import MIGRATIONS
from accord.store.postgres import PostgresStore
from accord.team.wake import wait
from accord.testing import pg
from accord.testing.cli import accord, rules
from accord.types import NewTask, OutgoingMessage, PlannedTask, TaskStatus
from conftest import LEAD_FINISH, LEAD_PLAN, MATE, PG_REQUIRED, Result, claim_worker

CTX = mp.get_context("spawn")
TEAM = "main"
SECRET = "s3cr3t-Pa55"
DEADLINE = 60.0


def no_secret(text: str, secret: str = SECRET) -> str:
    assert secret not in text, f"a password was shown: {text!r}"
    return text


@pytest.fixture
def fresh_url(pg_database: pg.Throwaway) -> Iterator[str]:
    """A schema nobody has migrated (dropped after the test, never handed on)."""
    name, url = pg_database.schema(fresh=True)
    yield url
    pg_database.release(name)


@pytest.fixture
def cluster() -> Iterator[pg.PrivateCluster]:
    """A private server whose superuser logs in with SECRET."""
    missing = pg.private_cluster_missing()
    if missing:
        if PG_REQUIRED:
            pytest.fail(f"{pg.REQUIRE_ENV}=1 but {missing}")
        pytest.skip(f"needs a private PostgreSQL cluster: {missing}")
    with pg.PrivateCluster(password=SECRET) as running:
        yield running


# opening: URLs and connection errors ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"postgresql://alice:{SECRET}@localhost:notaport/db", "port 'notaport'"),
        (f"postgresql://alice:{SECRET}@localhost:99999/db", "port '99999'"),
        (f"postgresql://alice:{SECRET}@[::1/db", "IPv6"),
        (f"postgresql://alice:{SECRET}@localhost/db?color=blue", "color"),
    ],
)
def test_a_malformed_url_is_refused_without_showing_its_password(url: str, why: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(url)
    message = no_secret(str(info.value))
    assert "not a valid PostgreSQL URL" in message and why in message
    assert "alice:***@" in message and "postgresql://USER" in message


def test_nothing_listening_is_connection_refused() -> None:
    port = pg.free_port()
    with pytest.raises(StoreUnavailable) as info:
        open_store(f"postgresql://alice:{SECRET}@127.0.0.1:{port}/db")
    message = no_secret(str(info.value))
    assert f"nothing answers at 127.0.0.1:{port}" in message and "connection refused" in message
    assert f"postgresql://alice:***@127.0.0.1:{port}/db" in message


def test_an_unknown_host_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # What libpq says when the name does not resolve; looking a name up for real would
    # ask a DNS server, and tests stay off the network.
    def unresolved(*args: Any, **kwargs: Any) -> psycopg.Connection[Any]:
        raise psycopg.OperationalError(
            "failed to resolve host 'db.nowhere.invalid': [Errno -2] Name or service not known"
        )

    monkeypatch.setattr(pg_store.psycopg, "connect", unresolved)
    with pytest.raises(StoreUnavailable) as info:
        open_store(f"postgres://alice:{SECRET}@db.nowhere.invalid/accord")
    message = no_secret(str(info.value))
    assert "the host 'db.nowhere.invalid'" in message and "postgres://alice:***@" in message


def test_a_missing_database_says_how_to_create_it(pg_database: pg.Throwaway) -> None:
    url = pg.with_database(pg_database.url, "accord_no_such_database")
    with pytest.raises(StoreNotFound) as info:
        open_store(url)
    assert "has no database 'accord_no_such_database'" in str(info.value)
    assert "createdb" in str(info.value)


def test_init_on_a_missing_database_writes_no_file(
    cli: Callable[..., Result], project: Path, pg_database: pg.Throwaway
) -> None:
    url = pg.with_database(pg_database.url, "accord_no_such_database")
    r = cli("init", "--team", "main", "--store", url)
    assert r.code == 2 and r.err.startswith("error: the server of") and "createdb" in r.err
    assert list(project.iterdir()) == []


def test_a_wrong_password_is_refused_without_showing_either(cluster: pg.PrivateCluster) -> None:
    wrong = "not-" + SECRET
    with pytest.raises(StoreUnavailable) as info:
        open_store(cluster.url(password=wrong), create=True)
    message = no_secret(no_secret(str(info.value)), wrong)
    assert "refused the login" in message and "wrong user or password" in message
    assert f"postgresql://accord:***@127.0.0.1:{cluster.port}/postgres" in message
    with pytest.raises(StoreUnavailable, match="wants a password"):
        open_store(cluster.url(password=""), create=True)
    # The right one opens it.
    with open_store(cluster.url(), create=True) as store:
        store.create_team(TEAM)
        assert [t.name for t in store.list_teams()] == [TEAM]


def test_the_cli_prints_one_error_line_without_the_password(
    cli: Callable[..., Result], cluster: pg.PrivateCluster
) -> None:
    r = cli("team", "list", "--store", cluster.url(password="wrong-" + SECRET))
    assert r.code == 2 and r.out == ""
    (line,) = r.err.splitlines()
    assert line.startswith("error: PostgreSQL refused the login")
    no_secret(line, "wrong-" + SECRET)
    r = cli("init", "--store", f"postgresql://accord:{SECRET}@127.0.0.1:{pg.free_port()}/x")
    assert r.code == 2 and r.err.startswith("error: nothing answers") and SECRET not in r.err


def test_init_and_commands_against_a_url(
    cli: Callable[..., Result], project: Path, fresh_url: str
) -> None:
    r = cli("init", "--store", fresh_url, "--team", "main")
    assert r.code == 0, r.err
    assert "the store in postgresql://" in r.out and "team main" in r.out
    # accord.toml names the password-free URL, so later commands find the store.
    assert f"path = {json.dumps(fresh_url)}" in (project / "accord.toml").read_text()
    assert not (project / ".accord" / "accord.db").exists()
    assert cli("task", "add", "hello").code == 0
    listed = cli("task", "list", "--json")
    assert [t["title"] for t in json.loads(listed.out)] == ["hello"]
    again = cli("init")
    assert again.code == 0 and "already initialised" in again.out


def test_a_team_run_on_postgresql(tmp_path: Path, fresh_url: str) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "accord.toml").write_text(
        f"[store]\npath = {json.dumps(fresh_url)}\n"
        "[run]\nmax_restarts = 2\nrestart_backoff = 0.2\ngrace = 5\n"
    )
    lead = rules(root / "lead.json", [LEAD_PLAN, LEAD_FINISH], "Waiting for the team.")
    mate = rules(root / "mate.json", MATE)
    done = accord(
        root, "run", "make c.txt", "--model", lead, "--teammate-model", mate, "--display", "plain"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "finished: c.txt made" in done.stdout
    assert (root / "c.txt").read_text() == "a\nb\n"
    assert not (root / ".accord" / "accord.db").exists()
    with open_store(fresh_url) as store:
        assert [t.status for t in store.list_tasks("main")] == [TaskStatus.COMPLETED] * 3
        events = store.read_events("main")
        assert [e.seq for e in events] == list(range(1, len(events) + 1))


# what is in the database --------------------------------------------------------------


def test_an_empty_database_is_no_store_until_created(fresh_url: str) -> None:
    with pytest.raises(StoreNotFound, match="the database is empty") as refused:
        open_store(fresh_url)
    # The store says what is wrong; the command line says what to run.
    assert refused.value.reason == Reason.NO_STORE and refused.value.location
    assert "accord init --store" in worded(refused.value)
    with open_store(fresh_url, create=True) as store:
        store.create_team(TEAM)
    with open_store(fresh_url) as store:
        assert [t.name for t in store.list_teams()] == [TEAM]


def test_someone_elses_tables_are_refused_untouched(fresh_url: str) -> None:
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE tasks (what text)")
        conn.execute("INSERT INTO tasks VALUES ('theirs')")
    with pytest.raises(StoreCorrupt, match="not an accord store"):
        open_store(fresh_url, create=True)
    with psycopg.connect(fresh_url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        assert tables == [("tasks",)]
        assert conn.execute("SELECT what FROM tasks").fetchall() == [("theirs",)]


def test_a_store_written_by_a_newer_accord_is_refused(fresh_url: str) -> None:
    open_store(fresh_url, create=True).close()
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        conn.execute("INSERT INTO accord_migrations VALUES ('m999_from_the_future', 0)")
    with pytest.raises(StoreError, match="newer accord .*m999_from_the_future.*upgrade"):
        open_store(fresh_url)


def test_the_schema_uses_postgresql_types(pg_url: str) -> None:
    open_store(pg_url, create=True).close()
    with psycopg.connect(pg_url) as conn:
        types = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, data_type "
                "FROM information_schema.columns WHERE table_schema = current_schema()"
            ).fetchall()
        )
    assert types["teams.last_seq"] == "bigint"
    assert types["messages.id"] == "bigint"
    assert types["tasks.lease_expires_at"] == "double precision"
    assert types["events.payload"] == "text"


def migrate_worker(url: str, n: int, barrier: Barrier, out: Connection) -> None:
    barrier.wait(DEADLINE)
    try:
        with open_store(url, create=True) as store:
            store.create_team(f"team{n}")
        out.send("ok")
    except Exception as e:  # noqa: BLE001 - sent to the test to fail it there
        out.send(f"{type(e).__name__}: {e}")


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(fresh_url: str) -> None:
    workers = 6
    barrier = CTX.Barrier(workers)
    pipes = [CTX.Pipe(duplex=False) for _ in range(workers)]
    procs = [
        CTX.Process(target=migrate_worker, args=(fresh_url, n, barrier, pipes[n][1]))
        for n in range(workers)
    ]
    try:
        for p in procs:
            p.start()
        results = [pipe.recv() if pipe.poll(DEADLINE) else "silent" for pipe, _ in pipes]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(10)
    assert results == ["ok"] * workers
    with open_store(fresh_url) as store:
        assert sorted(t.name for t in store.list_teams()) == [f"team{n}" for n in range(workers)]
    with psycopg.connect(fresh_url) as conn:
        applied = [r[0] for r in conn.execute("SELECT name FROM accord_migrations ORDER BY 1")]
    assert applied == sorted(name for name, _ in MIGRATIONS)


def test_postgres_is_a_name_for_postgresql(pg_url: str) -> None:
    with open_store(pg_url.replace("postgresql://", "postgres://", 1), create=True) as store:
        assert isinstance(store, PostgresStore)
        store.create_team(TEAM)


# waking -------------------------------------------------------------------------------


def _store_with(url: str, *members: str) -> Store:
    store = open_store(url, create=True)
    store.create_team(TEAM)
    for name in members:
        store.add_member(TEAM, name, token_hash="h")
    return store


def _eventually(check: Callable[[], bool], what: str, within: float = 10.0) -> float:
    """Seconds until ``check()`` held."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < within, f"timed out waiting for {what}"
        time.sleep(0.002)
    return time.monotonic() - began


def test_the_marker_moves_by_polling_when_notifications_are_lost(pg_url: str) -> None:
    writer = _store_with(pg_url, "alice", "bob")
    watcher = open_store(pg_url)
    assert isinstance(watcher, PostgresStore)
    marker = watcher.change_marker()
    listening = watcher._changes._conn
    assert listening is not None, "the watcher listens for notifications"
    # The listening connection stays up but hears nothing more: a notification lost
    # without a trace, which only the poll of the teams' counters can make up for.
    listening.execute("UNLISTEN *")
    writer.send_message(TEAM, OutgoingMessage("alice", "bob", "are you there?"))
    took = _eventually(lambda: watcher.change_marker() != marker, "the marker to move")
    assert took < 2.0
    assert watcher.pending_work(TEAM, "bob").mail == 1
    writer.close()
    watcher.close()


def test_a_waiter_wakes_though_its_listening_connection_was_killed(
    pg_url: str, pg_database: pg.Throwaway, capfd: pytest.CaptureFixture[str]
) -> None:
    writer = _store_with(pg_url, "alice", "bob")
    waiter = open_store(pg_url)
    assert isinstance(waiter, PostgresStore)
    woke: list[tuple[str, float]] = []

    def wait_for_mail() -> None:
        wake = wait(waiter, TEAM, "bob", timeout=DEADLINE, recheck=60.0)
        woke.append((wake.reason, time.monotonic()))

    thread = threading.Thread(target=wait_for_mail)
    thread.start()
    _eventually(lambda: waiter._bells._conn is not None, "the bells to listen")
    listening = waiter._bells._conn
    assert listening is not None
    with psycopg.connect(pg_database.url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (listening.info.backend_pid,))
    sent = time.monotonic()
    writer.send_message(TEAM, OutgoingMessage("alice", "bob", "still there?"))
    thread.join(DEADLINE)
    # Not the minute of the recheck: the bell went deaf, rang, and its waiter polled.
    assert woke and woke[0][0] == "mail"
    assert woke[0][1] - sent < 2.0
    # The bells listen again on a new connection, and rings need no poll again.
    _eventually(
        lambda: waiter._bells._conn is not None and waiter._bells.deaf is None,
        "the bells to listen again",
    )
    waiter.receive_messages(TEAM, "bob", visibility_timeout=60)
    bell = waiter.bell(TEAM, "bob")
    writer.send_message(TEAM, OutgoingMessage("alice", "bob", "and now?"))
    assert bell.wait(2.0) and bell.deaf is None
    bell.close()
    writer.close()
    waiter.close()
    assert "the listening connection dropped" in capfd.readouterr().err


def test_a_waiter_is_rung_not_polled(pg_url: str) -> None:
    """Members of other teams, and a member of this team whose mail it is not, are not
    woken: each team has its channel, and each ring names its members."""
    writer = _store_with(pg_url, "alice", "bob", "carol")
    writer.create_team("other")
    writer.add_member("other", "bob", token_hash="h")
    waiter = open_store(pg_url)
    bob, carol, elsewhere = (
        waiter.bell(TEAM, "bob"),
        waiter.bell(TEAM, "carol"),
        waiter.bell("other", "bob", watch=True),
    )
    for i in range(5):
        sent = time.monotonic()
        writer.send_message(TEAM, OutgoingMessage("alice", "bob", f"ping {i}"))
        assert bob.wait(5.0)
        assert time.monotonic() - sent < 1.0
    assert not carol.wait(0.3)
    assert not elsewhere.wait(0.01)
    for bell in (bob, carol, elsewhere):
        bell.close()
    writer.close()
    waiter.close()


def test_a_notification_wakes_a_waiter_long_before_the_poll_would(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_store, "POLL_SECONDS", 30.0)
    writer = _store_with(pg_url, "alice", "bob")
    waiter = open_store(pg_url)
    latencies = []
    for i in range(5):
        marker = waiter.change_marker()
        sent = time.monotonic()
        writer.send_message(TEAM, OutgoingMessage("alice", "bob", f"ping {i}"))
        latencies.append(_eventually(lambda m=marker: waiter.change_marker() != m, "a wake"))
        assert time.monotonic() - sent < 5.0
    assert max(latencies) < 1.0, latencies
    writer.close()
    waiter.close()


# a commit whose answer is lost ------------------------------------------------------------


def _losing_the_commit(
    monkeypatch: pytest.MonkeyPatch, store: PostgresStore, *, committed: bool
) -> list[int]:
    """Make the store's next COMMIT lose its answer: after the server committed it, or
    with the connection closed before it got there. Returns a list counting commits."""
    real = psycopg.Connection.execute
    sent: list[int] = []

    def commits(query: Any) -> bool:  # the commit goes with the transaction's events
        parts = query if isinstance(query, psycopg.sql.Composed) else ()
        return query is store._commit or any(part is store._commit for part in parts)

    def execute(self: psycopg.Connection[Any], query: Any, *args: Any, **kw: Any) -> Any:
        if commits(query) and not sent:
            sent.append(1)
            if committed:
                real(self, query, *args, **kw)
            else:
                self.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real(self, query, *args, **kw)

    monkeypatch.setattr(psycopg.Connection, "execute", execute)
    return sent


@pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "before-commit"])
def test_a_lost_commit_answer_is_looked_up_not_guessed(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, committed: bool
) -> None:
    store = _store_with(pg_url, "alice", "bob")
    assert isinstance(store, PostgresStore)
    lost = _losing_the_commit(monkeypatch, store, committed=committed)
    (message,) = store.send_message(TEAM, OutgoingMessage("alice", "bob", "exactly once"))
    assert lost == [1]
    # Sent once either way: found committed, or found rolled back and sent again.
    assert [m.body for m in store.list_messages(TEAM)] == ["exactly once"]
    assert store.get_message(TEAM, message.id).body == "exactly once"
    kinds = [e.kind for e in store.read_events(TEAM)]
    assert kinds.count("message_sent") == 1
    store.close()


# the server restarts under working members ---------------------------------------------


def _report(pipe: Connection) -> Any:
    """What a member sent at the end (claim workers say "ready" first), or None."""
    while pipe.poll(DEADLINE):
        got = pipe.recv()
        if got != "ready":
            return got
    return None


def restart_sender(url: str, count: int, out: Connection) -> None:
    store = open_store(url)
    out.send("ready")
    sent = []
    for i in range(count):
        (message,) = store.send_message(TEAM, OutgoingMessage("boss", "inbox", f"note {i}"))
        sent.append(message.id)
    out.send(sent)
    store.close()


def restart_receiver(url: str, count: int, out: Connection) -> None:
    store = open_store(url)
    out.send("ready")
    got: list[int] = []
    limit = time.monotonic() + DEADLINE
    while len(got) < count and time.monotonic() < limit:
        wait(store, TEAM, "inbox", timeout=1.0)
        messages = store.receive_messages(TEAM, "inbox", visibility_timeout=120)
        store.ack_messages(TEAM, "inbox", [m.id for m in messages])
        got += [m.id for m in messages]
    out.send(got)
    store.close()


def test_members_work_on_through_a_server_restart(cluster: pg.PrivateCluster) -> None:
    url = cluster.create_database("team")
    claimers, tasks, notes = [f"w{i}" for i in range(4)], 400, 150
    with open_store(url, create=True) as store:
        store.create_team(TEAM)
        for name in (*claimers, "boss", "inbox"):
            store.add_member(TEAM, name, token_hash="h")
        planned = [PlannedTask(NewTask(f"task {i}")) for i in range(tasks)]
        store.add_tasks(TEAM, planned, max_attempts=3)
    procs: list[BaseProcess] = []
    pipes: list[Connection] = []

    def start(target: Callable[..., None], *args: Any) -> None:
        parent, child = CTX.Pipe(duplex=False)
        p = CTX.Process(target=target, args=(url, *args, child), daemon=True)
        procs.append(p)
        pipes.append(parent)
        p.start()

    go = CTX.Event()
    go.set()
    try:
        for name in claimers:
            start(claim_worker, name, go)
        start(restart_sender, notes)
        start(restart_receiver, notes)
        # Every member has its store open before the first restart: opening one while
        # the server is down is refused at once (and said so), which is not this test.
        for pipe in pipes:
            assert pipe.poll(DEADLINE) and pipe.recv() == "ready"
        with open_store(url) as watch:
            for goal in (tasks // 4, tasks // 2):
                _eventually(
                    lambda g=goal: len(watch.list_tasks(TEAM, status=TaskStatus.COMPLETED)) >= g,
                    "members to make progress",
                    within=DEADLINE,
                )
                cluster.restart("fast")  # every session ends; the members' pools reconnect
        reports = [_report(p) for p in pipes]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(10)
    assert None not in reports, f"a member died: exit codes {[p.exitcode for p in procs]}"
    completions = [pair for report in reports[: len(claimers)] for pair in report]
    sent, received = reports[-2], reports[-1]

    with open_store(url) as store:
        board = store.list_tasks(TEAM)
        events = store.read_events(TEAM)
        unacked = store.list_messages(TEAM, member="inbox", unacked=True)
    # Nothing lost, nothing done twice, nothing claimed twice.
    assert sorted(t for t, _ in completions) == list(range(1, tasks + 1))
    assert all(t.status == TaskStatus.COMPLETED and t.attempts == 1 for t in board)
    assert {t.id: t.fencing_token for t in board} == dict(completions)
    claimed = [e.payload for e in events if e.kind == "task_claimed"]
    assert Counter(p["id"] for p in claimed) == Counter(range(1, tasks + 1))
    assert len({p["token"] for p in claimed}) == len(claimed)
    assert not [e for e in events if e.kind == "lease_expired"]
    assert len(sent) == notes and received == sent and unacked == []
    # And the log has no gap.
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_the_private_cluster_helper_leaves_nothing_running() -> None:
    missing = pg.private_cluster_missing()
    if missing:
        pytest.skip(missing)
    with pg.PrivateCluster() as running:
        folder, port = running.folder, running.port
        with psycopg.connect(running.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not folder.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://accord@127.0.0.1:{port}/postgres", connect_timeout=2)
