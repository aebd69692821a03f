"""Faults around the store and its settings: each gives one clear ``error:`` line, exit 2,
no traceback, and leaves the store exactly as it was.

A malformed accord.toml, a store locked by a long writer, a file that is not a
database, a damaged database, someone else's SQLite file, a missing store, a
store path that is a folder; and the durability setting actually applied.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from accord.cli._common import Context
from accord.cli._parser import build
from accord.testing.cli import ok, one_error
from conftest import Cli, configure, dump
from conftest import store_path as db_path


@pytest.fixture
def made(cli: Cli, project: Path) -> Path:
    """A project with team main, member alice and one task."""
    ok(cli("init", "--team", "main"))
    ok(cli("member", "add", "alice"))
    ok(cli("task", "add", "one"))
    return project


# accord.toml ---------------------------------------------------------------

CONFIG_CASES: list[tuple[str, list[str]]] = [
    (
        """
        [store]
        synchronous = "full"
        busy_timeout = = 3
        """,
        ["is not valid TOML", "line 3", "fix that line"],
    ),
    (
        """
        [board]
        lease_seconds = 30

        [store]
        busy_timout = 3
        """,
        ["accord.toml:5: store.busy_timout: unknown setting"],
    ),
    (
        """
        [board]
        max_attempts = 2

        [store]
        synchronous = "fast"
        """,
        ["accord.toml:5: store.synchronous:", "'full' or 'normal'"],
    ),
    ("[bored]\nlease_seconds = 3\n", ["accord.toml:1: bored: unknown setting"]),
    ("[board]\n\nlease_seconds = -1\n", ["accord.toml:3: board.lease_seconds:", "greater than 0"]),
    ('[board]\nmax_attempts = "many"\n', ["accord.toml:2: board.max_attempts:", "integer"]),
    (
        """
        [[hooks.TaskCreated]]
        command = "true"

        [[hooks.TaskCreated]]
        command = "true"
        timout = 5
        """,
        ["accord.toml:6: hooks.TaskCreated.timout: unknown setting"],
    ),
    ('[hooks]\nTaskCreated = ""\n', ["accord.toml:2: hooks.TaskCreated.command:", "non-empty"]),
    (
        """
        [hooks]
        timeout = 5
        TaskCompleted = { command = "true", on_timeout = "maybe" }
        """,
        ["accord.toml:3: hooks.TaskCompleted.on_timeout:", "'block' or 'allow'"],
    ),
    ('[team]\n# which team\ndefault = "../x"\n', ["accord.toml:3: team.default:", "'../x'"]),
]


@pytest.mark.parametrize(("text", "needles"), CONFIG_CASES, ids=lambda v: None)
def test_a_malformed_accord_toml_names_the_line(
    cli: Cli, made: Path, text: str, needles: list[str]
) -> None:
    before = dump(db_path(made))
    configure(made, text)
    for args in (["task", "list"], ["task", "add", "two"], ["member", "add", "bob"]):
        one_error(cli(*args), 2, *needles)
    assert dump(db_path(made)) == before


def test_an_accord_toml_that_is_not_utf8_names_the_line(cli: Cli, made: Path) -> None:
    before = dump(db_path(made))
    (made / "accord.toml").write_bytes(b"[store]\n# caf\xe9\nsynchronous = 'full'\n")
    one_error(cli("task", "add", "two"), 2, "accord.toml:2:", "UTF-8")
    assert dump(db_path(made)) == before


def test_init_with_a_malformed_accord_toml_creates_nothing(cli: Cli, project: Path) -> None:
    configure(project, "[store]\nsynchronous = 'fast'\n")
    one_error(cli("init", "--team", "main"), 2, "accord.toml:2: store.synchronous")
    assert sorted(p.name for p in project.iterdir()) == ["accord.toml"]


# a store locked by a long writer ---------------------------------------------

HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
if len(sys.argv) > 2:
    time.sleep(float(sys.argv[2]))
else:
    sys.stdin.readline()
released = time.time()
db.execute("ROLLBACK")
print(released, flush=True)
"""


class Holder:
    """Another process holding the store's write lock (BEGIN IMMEDIATE)."""

    def __init__(self, db: Path, hold: float | None = None) -> None:
        args = [sys.executable, "-c", HOLDER, str(db)] + ([str(hold)] if hold else [])
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        # readline blocks until the lock is held; communicate's timeout bounds the rest.
        first = self.proc.stdout.readline()
        assert first.strip() == "locked", self.proc.stderr.read() if self.proc.stderr else ""

    def release(self) -> float:
        """Let go of the lock; returns when it let go (epoch seconds)."""
        out, err = self.proc.communicate("go\n", timeout=30)
        assert self.proc.returncode == 0, err
        return float(out.strip())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    made: list[Holder] = []
    yield made
    for h in made:
        h.stop()


def test_a_store_locked_past_the_busy_timeout_is_a_clear_error(
    cli: Cli, made: Path, holders: list[Holder]
) -> None:
    configure(made, "[store]\nbusy_timeout = 0.5\n")
    before = dump(db_path(made))
    events_before = ok(cli("events", "--json")).out
    holder = Holder(db_path(made))
    holders.append(holder)
    for args in (["task", "add", "two"], ["task", "claim", "--as", "alice"]):
        started = time.monotonic()
        r = cli(*args)
        waited = time.monotonic() - started
        one_error(r, 2, "stayed locked by another writer for more than 0.5s", "retry")
        assert waited >= 0.45  # it retried for the whole busy timeout before giving up
    # Readers are not blocked by a writer (WAL).
    assert [t["title"] for t in json.loads(ok(cli("task", "list", "--json")).out)] == ["one"]
    holder.release()
    assert dump(db_path(made)) == before
    assert ok(cli("events", "--json")).out == events_before
    ok(cli("task", "add", "two"))


def test_a_short_lock_is_waited_out(cli: Cli, made: Path, holders: list[Holder]) -> None:
    configure(made, "[store]\nbusy_timeout = 10\n")
    holder = Holder(db_path(made), hold=0.4)
    holders.append(holder)
    task = json.loads(ok(cli("task", "add", "two", "--json")).out)
    released = holder.release()
    assert task["created_at"] >= released  # written only once the other writer let go
    titles = [t["title"] for t in json.loads(ok(cli("task", "list", "--json")).out)]
    assert titles == ["one", "two"]


# not a database, damaged, someone else's ------------------------------------

STORE_COMMANDS = [
    ["team", "list"],
    ["task", "list", "--json"],
    ["task", "add", "two"],
    ["events", "--json"],
    ["init", "--team", "main"],
]


@pytest.mark.parametrize(
    "content",
    [
        random.Random(1).randbytes(8192),
        b"this is a shopping list, not a database\n" * 20,
    ],
    ids=["random", "text"],
)
def test_a_file_that_is_not_a_database(cli: Cli, project: Path, content: bytes) -> None:
    configure(project, "[store]\nbusy_timeout = 1\n")
    (project / ".accord").mkdir()
    db_path(project).write_bytes(content)
    for args in STORE_COMMANDS:
        one_error(cli(*args), 2, "not an accord store", "file is not a database")
    assert db_path(project).read_bytes() == content
    assert sorted(p.name for p in (project / ".accord").iterdir()) == ["accord.db"]


def _corrupt_data_pages(db: Path) -> None:
    """Overwrite every page that is not a table's or index's root page with garbage."""
    conn = sqlite3.connect(db)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        roots = max(r[0] for r in conn.execute("SELECT rootpage FROM sqlite_master"))
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()
    assert pages > roots + 4, "the store should have grown past its schema"
    noise = random.Random(7)
    with db.open("r+b") as f:
        for number in range(roots + 1, pages + 1):
            f.seek((number - 1) * page_size)
            f.write(noise.randbytes(page_size))


def test_a_damaged_database(cli: Cli, made: Path) -> None:
    for i in range(30):
        ok(cli("task", "add", f"task {i} " + "x" * 300, "-d", "details " * 200))
    db = db_path(made)
    assert not db.with_name("accord.db-wal").exists()  # checkpointed when the CLI closed it
    _corrupt_data_pages(db)
    damaged = db.read_bytes()
    for args in (["task", "list", "--json"], ["events", "--json"], ["task", "add", "x"]):
        one_error(cli(*args), 2, "is damaged", "malformed", ".recover")
    # Whatever else runs either works or fails the same clean way.
    for args in (
        ["team", "list"],
        ["member", "add", "bob"],
        ["task", "show", "3"],
        ["msg", "list"],
    ):
        r = cli(*args)
        if r.code != 0:
            one_error(r, 2, "is damaged")
    assert db.read_bytes() == damaged


def test_someone_elses_sqlite_file_is_refused_untouched(
    cli: Cli, project: Path, tmp_path: Path
) -> None:
    theirs = tmp_path / "app.db"
    conn = sqlite3.connect(theirs)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('soup')")
    conn.commit()
    conn.close()
    content = theirs.read_bytes()
    for args in (["team", "list"], ["init", "--team", "main"], ["task", "add", "x"]):
        one_error(cli(*args, "--store", str(theirs)), 2, "not an accord store")
    assert theirs.read_bytes() == content
    assert dump(theirs) == {"recipes": [("soup",)]}


def test_a_store_written_by_a_newer_accord_is_refused(cli: Cli, made: Path) -> None:
    conn = sqlite3.connect(db_path(made))
    conn.execute("INSERT INTO accord_migrations VALUES ('m999_from_the_future', 0)")
    conn.commit()
    conn.close()
    before = dump(db_path(made))
    one_error(cli("task", "add", "x"), 2, "newer accord", "m999_from_the_future", "upgrade")
    assert dump(db_path(made)) == before


# missing stores and folders ------------------------------------------------


def test_no_project_anywhere_is_a_clear_error(cli: Cli, project: Path) -> None:
    for args in (["team", "list"], ["task", "add", "x"], ["events", "--follow"]):
        one_error(cli(*args), 2, "no accord project in", "accord init", "--store")
    assert list(project.iterdir()) == []


def test_a_missing_store_is_a_clear_error(
    cli: Cli, made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "accord.db"
    one_error(cli("team", "list", "--store", str(missing)), 2, "no store at", str(missing))
    monkeypatch.setenv("ACCORD_STORE", str(missing))
    one_error(cli("task", "list"), 2, "no store at", str(missing))
    assert not missing.parent.exists()
    monkeypatch.delenv("ACCORD_STORE")
    db_path(made).unlink()
    one_error(cli("task", "list"), 2, "no store at", "accord init")
    assert not db_path(made).exists()


def test_a_store_path_that_is_a_folder(cli: Cli, project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    for args in (["team", "list"], ["task", "add", "x"], ["init", "--team", "main"]):
        one_error(cli(*args, "--store", str(folder)), 2, "is a folder")
    assert list(folder.iterdir()) == []
    assert list(project.iterdir()) == []  # a failed init leaves nothing behind
    (project / ".accord" / "accord.db").mkdir(parents=True)
    one_error(cli("team", "list"), 2, "is a folder, not a store")


# durability ----------------------------------------------------------------


def _pragmas(project: Path) -> tuple[int, str, int]:
    ctx = Context(build().parse_args(["team", "list"]))
    try:
        db = ctx.store._db  # type: ignore[attr-defined]
        return (
            db.execute("PRAGMA synchronous").fetchone()[0],
            db.execute("PRAGMA journal_mode").fetchone()[0],
            # The store retries writers itself up to busy_timeout (fairly, in short
            # sleeps); SQLite's own handler is kept short.
            int(ctx.store.busy_timeout * 1000),  # type: ignore[attr-defined]
        )
    finally:
        ctx.close()


def test_synchronous_is_full_by_default_and_normal_when_configured(cli: Cli, made: Path) -> None:
    assert _pragmas(made) == (2, "wal", 5000)  # FULL
    configure(made, '[store]\nsynchronous = "normal"\nbusy_timeout = 0.5\n')
    assert _pragmas(made) == (1, "wal", 500)  # NORMAL
    configure(made, '[store]\nsynchronous = "full"\n')
    assert _pragmas(made)[0] == 2
