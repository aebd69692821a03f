"""What the test modules share: fixtures (stores on real SQLite files and on PostgreSQL,
a fake clock, an in-process CLI runner, projects for real runs, fake model servers), and
the plain functions and scripts that more than one module uses, which a module imports
with ``from conftest import ...``. A test module never imports another test module
(test_suite_rules.py holds that, and that no helper is written twice).

Helpers a program outside this suite could use too live in ``accord.testing``:
``accord.testing.cli`` (``ok``, ``js``, ``one_error``, ``accord`` as a process) and
``accord.testing.wait`` (``until``, ``alive``).

PostgreSQL tests use the server named by ACCORD_TEST_POSTGRES, else the local one
(see accord.testing.pg); without one they are skipped with how to enable them, or
fail when ACCORD_REQUIRE_POSTGRES=1 (CI sets it).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import psycopg
import pytest

from accord.agent.definition import AgentDefinition
from accord.agent.launch import build_agent, toolbox_for
from accord.agent.loop import Agent
from accord.config import BoardConfig, Config
from accord.llm.base import Model
from accord.memory import Memory
from accord.store import Store, open_store
from accord.team import Team
from accord.team.board import Board
from accord.team.wake import wait
from accord.testing import FakeClock, FakeOpenAI, pg
from accord.testing.cli import Result, accord, calls, ok, one_error
from accord.testing.wait import alive
from accord.types import MemberRole, MemoryEntry, MemoryType, NewMemory, TaskStatus

# Read before _clean_env takes every ACCORD_* variable away from the tests.
PG_SERVER = os.environ.get(pg.ENV) or None
PG_REQUIRED = os.environ.get(pg.REQUIRE_ENV) == "1"

# Tests test this checkout, whatever copy of accord pip installed last: so do the
# processes they start (`python -m accord ...`), which inherit this.
_SRC = str(Path(__file__).resolve().parent.parent / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_SRC, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _SRC]]
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run long soak and chaos tests")
    parser.addoption(
        "--order",
        default="file",
        metavar="file|reverse|random:SEED",
        help="run the tests in another order, to find tests that depend on the ones before",
    )
    parser.addoption(
        "--minutes",
        type=float,
        default=10.0,
        metavar="N",
        help="how long the long chaos run (with --slow) shakes its team: N minutes",
    )


def pytest_report_header(config: pytest.Config) -> str:
    url, why = pg.find_server(PG_SERVER)
    if url is not None:
        return f"postgres: {pg.redact(url)}"
    if PG_REQUIRED:
        return f"postgres: none ({why}); {pg.REQUIRE_ENV}=1, so its tests fail"
    return f"postgres: none ({why}); its tests are skipped: {pg.HOW_TO_ENABLE}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order = str(config.getoption("--order"))
    if order == "reverse":
        items.reverse()
    elif order.startswith("random:"):
        # The same seed gives every xdist worker the same order, as xdist requires.
        random.Random(order.removeprefix("random:")).shuffle(items)
    elif order != "file":
        raise pytest.UsageError(f"--order {order}: use file, reverse or random:SEED")
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="long soak/chaos test: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own ACCORD_* settings, and their model providers' real keys and
    # URLs, must never leak into a test.
    for key in list(os.environ):
        if key.startswith(("ACCORD_", "ANTHROPIC_", "OPENAI_")):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[pg.Throwaway]:
    """A throwaway database for this test process, dropped at the end of the session."""
    url, why = pg.find_server(PG_SERVER)
    if url is None:
        message = f"no PostgreSQL server for these tests ({why}); {pg.HOW_TO_ENABLE}"
        if PG_REQUIRED:
            pytest.fail(f"{pg.REQUIRE_ENV}=1 but {message}")
        pytest.skip(message)
    try:
        database = pg.Throwaway(url)
    except psycopg.Error as e:
        message = f"cannot make a test database on {pg.redact(url)} ({e}); {pg.HOW_TO_ENABLE}"
        if PG_REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    with database:
        yield database


@pytest.fixture
def pg_url(pg_database: pg.Throwaway) -> Iterator[str]:
    """The URL of an empty accord schema of its own for this test (emptied after it)."""
    name, url = pg_database.schema()
    yield url
    pg_database.release(name)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store for this test goes: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "accord.db")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like ``location``, but a PostgreSQL schema that no test has ever migrated: for
    tests that build an old schema by hand (a reused schema already has the new one)."""
    if request.param == "sqlite":
        yield str(tmp_path / "accord.db")
        return
    database: pg.Throwaway = request.getfixturevalue("pg_database")
    name, url = database.schema(fresh=True)
    yield url
    database.release(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """Open (and later close) SQLite stores in this test's folder; same path = same store."""
    opened: list[Store] = []

    def make(name: str = "accord.db", **kw: object) -> Store:
        s = open_store(str(tmp_path / name), create=True, **kw)  # type: ignore[arg-type]
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[..., Store], clock: FakeClock) -> Store:
    """A store with a fake clock and a team 'main' holding members alice, bob and carol."""
    s = make_store(clock=clock)
    s.create_team("main")
    for name in ("alice", "bob", "carol"):
        s.add_member("main", name, token_hash="unused")
    return s


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder to run `accord` in, as the working directory."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


Cli = Callable[..., Result]


@pytest.fixture
def cli(project: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `accord ARGS...` in-process in the project folder; returns code, stdout, stderr."""
    from accord.cli import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository for a member to work in."""
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.fixture
def team(make_store: Callable[..., Store], repo: Path) -> Team:
    """Team main (lead and alice) on a fresh store, its services working in ``repo``."""
    store = make_store()
    store.create_team("main")
    store.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
    store.add_member("main", "alice", token_hash="x")
    return Team.open(store, "main", Config(), repo)


def make_agent(
    team: Team,
    model: Model,
    repo: Path,
    config: Config | None = None,
    definition: AgentDefinition | None = None,
    member: str = "alice",
) -> Agent:
    """An agent for ``member`` of ``team`` playing ``model`` in ``repo``, quick to idle."""
    cfg = config or Config()
    services = Team.open(team.store, team.team, cfg, repo)
    agent = build_agent(services, member, cfg, repo, model=model, idle_wait=0.05)
    if definition is not None:
        agent.definition = definition
        agent.toolbox = toolbox_for(definition)
    return agent


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A local OpenAI-compatible server, for the real SDK to talk to."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    """``fake_openai``, by its shorter name."""
    return fake_openai


@pytest.fixture
def sleeps() -> list[float]:
    """A list a test's stand-in for ``time.sleep`` appends each wait to."""
    return []


# A project's store and config ------------------------------------------------------


def store_path(project: Path) -> Path:
    """The project's own store file."""
    return project / ".accord" / "accord.db"


def db(root: Path) -> str:
    """The project's own store file, as ``open_store`` takes it."""
    return str(store_path(root))


def configure(project: Path, toml: str) -> None:
    """Write the project's accord.toml (``toml`` may be indented)."""
    (project / "accord.toml").write_text(textwrap.dedent(toml).lstrip())


def dump(db: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the SQLite store at ``db``, in a stable order."""
    conn = sqlite3.connect(db)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables
        }
    finally:
        conn.close()


@dataclass
class Snapshot:
    """The whole store, plus what the CLI itself reports as the log and the board."""

    rows: dict[str, list[tuple[Any, ...]]]
    events: str
    tasks: str


def snapshot(cli: Cli, project: Path, team: str = "main") -> Snapshot:
    events = ok(cli("events", "--json", "--team", team)).out
    tasks = ok(cli("task", "list", "--json", "--team", team)).out
    return Snapshot(dump(store_path(project)), events, tasks)


def refusals(cli: Cli, project: Path, cases: list[tuple[list[str], str]], code: int = 2) -> None:
    """Each case fails with ``code`` and one ``error:`` line naming its needle, and changes
    nothing: every row of the store is compared after each case, and the CLI's own view of
    the log and the board once at the end."""
    before = snapshot(cli, project)
    db = store_path(project)
    for args, needle in cases:
        rows = dump(db)
        shown = "accord " + " ".join(repr(a) if not a or " " in a else a for a in args)
        try:
            one_error(cli(*args), code, needle)
        except AssertionError as e:
            raise AssertionError(f"{shown}: {e}") from None
        assert dump(db) == rows, f"{shown} changed the store"
    assert snapshot(cli, project) == before


def note(memory: Memory, kind: MemoryType, text: str, **kw: Any) -> MemoryEntry:
    """Remember one entry; returns it."""
    entry, _ = memory.remember(NewMemory(kind, text, **kw))
    return entry


# Real team runs: a git project, the scripts its members play, their processes -------

MARK = "4243.5"  # a sleep length no other process uses


def run_project(tmp_path: Path, toml: str) -> Path:
    """A git project for ``accord run`` with this accord.toml and an empty .accord/."""
    folder = tmp_path / "proj"
    folder.mkdir()
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    (folder / "accord.toml").write_text(toml)
    (folder / ".accord").mkdir()
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project for a real run that restarts a dead member twice, quickly."""
    return run_project(tmp_path, "[run]\nmax_restarts = 2\nrestart_backoff = 0.2\ngrace = 5\n")


def status(root: Path) -> dict[str, Any]:
    """``accord status --json`` in the project."""
    done = accord(root, "status", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def member_pids(root: Path) -> list[int]:
    """The process ids the store holds for team main's members."""
    with open_store(db(root)) as s:
        return [m.pid for m in s.list_members("main") if m.pid is not None]


def sleepers(mark: str = MARK) -> list[int]:
    """Live processes whose command line holds ``mark`` and a sleep: the tool commands
    (and their shells) that a scripted member started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if mark.encode() in cmd and b"sleep" in cmd:
                found.append(int(entry.name))
    return [p for p in found if alive(p)]


# A lead that plans three tasks for two teammates, and the teammates' script.
LEAD_PLAN = {
    "if": "# First wake",
    "once": True,
    "then": calls(
        ("spawn_teammate", {"name": "alice", "instructions": "Do the tasks assigned to you."}),
        ("spawn_teammate", {"name": "bob", "instructions": "Do the tasks assigned to you."}),
        ("task_create", {"title": "write a.txt", "assignee": "alice"}),
        ("task_create", {"title": "write b.txt", "assignee": "bob"}),
        ("task_create", {"title": "combine into c.txt", "blocked_by": [1, 2]}),
    ),
}
LEAD_FINISH = {"if": "3 completed", "then": calls(("finish", {"summary": "c.txt made"}))}
MATE = [
    {"if": "Your task #1", "then": calls(("write_file", {"path": "a.txt", "content": "a\n"}))},
    {"if": "Your task #2", "then": calls(("write_file", {"path": "b.txt", "content": "b\n"}))},
    {"if": "Your task #3", "then": calls(("bash", {"command": "cat a.txt b.txt > c.txt"}))},
    {"if": "created a.txt", "then": calls(("task_complete", {"task_id": 1, "result": "a"}))},
    {"if": "created b.txt", "then": calls(("task_complete", {"task_id": 2, "result": "b"}))},
    {"if": "[exit code 0]", "then": calls(("task_complete", {"task_id": 3, "result": "c"}))},
]


# Races: workers that each run in a process of their own ----------------------------


@contextmanager
def reaped() -> Iterator[list[BaseProcess]]:
    """Processes started into the yielded list are SIGKILLed and joined at the end."""
    procs: list[BaseProcess] = []
    try:
        yield procs
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(10)
        assert not [p.pid for p in procs if p.is_alive()], "a child process survived SIGKILL"


# Generous: a loaded 2-core machine can take seconds to start eight interpreters.
DEADLINE = 60.0
# Workers that contend flat out wait this long for the write lock. SQLite's busy
# handler is not fair (it sleeps up to 100 ms between tries while others take the
# lock), so with eight processes saturating two cores one call can wait several
# seconds, past the default 5 s. These tests are about who gets which task, not that.
CONTENDED_BUSY_TIMEOUT = DEADLINE


def claim_worker(path: str, member: str, go: MpEvent, conn: Connection) -> None:
    """Claim and complete until the board has nothing open; report (task, token) pairs."""
    team = "main"
    store = open_store(path, synchronous="normal", busy_timeout=CONTENDED_BUSY_TIMEOUT)
    board = Board(store, team, BoardConfig(lease_seconds=600))
    conn.send("ready")
    go.wait(DEADLINE)
    done: list[tuple[int, int]] = []
    while True:
        claim = board.claim(member)
        if claim is None:
            # Nothing ready: finished, or waiting on blockers held by others.
            if not store.list_tasks(team, status=TaskStatus.PENDING):
                break
            wait(store, team, member, timeout=1.0)
            continue
        board.complete(claim.task.id, member, claim.fencing_token, result=member)
        done.append((claim.task.id, claim.fencing_token))
    conn.send(done)
    store.close()


# Start-up: what a real `accord` process loads -------------------------------------

PROBE = """
import sys
from accord.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
sys.stderr.write(f"CODE {code}\\n")
"""


def loaded(*args: str, cwd: Path, code: tuple[str, ...] = ("0",)) -> set[str]:
    """The modules a real process running ``accord ARGS`` (output piped) had loaded,
    when it exited with one of ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    tail = done.stderr.rsplit("\nMODULES ", 1)
    assert len(tail) == 2, done.stderr
    modules, exited = tail[1].split("\nCODE ")
    exited = "0" if exited.strip() == "None" else exited.strip()  # SystemExit() of --help
    assert exited in code, (args, done.stderr)
    return set(modules.split())


def heavy(modules: set[str]) -> set[str]:
    """The modules of ``modules`` that a fast read must not load."""
    roots = ("pydantic", "rich", "accord.config", "accord.memory", "accord.team.hooks")
    return {m for m in modules if m.split(".")[0] in roots or m in roots}
