"""Shared fixtures: stores on real SQLite files and on PostgreSQL, a fake clock, and an
in-process CLI runner.

PostgreSQL tests use the server named by ACCORD_TEST_POSTGRES, else the local one
(see accord.testing.pg); without one they are skipped with how to enable them, or
fail when ACCORD_REQUIRE_POSTGRES=1 (CI sets it).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from accord.store import Store, open_store
from accord.testing import FakeClock, pg

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
    # A developer's own ACCORD_* settings must never leak into a test.
    for key in list(os.environ):
        if key.startswith("ACCORD_"):
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


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder to run `accord` in, as the working directory."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def cli(project: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `accord ARGS...` in-process in the project folder; returns code, stdout, stderr."""
    from accord.cli import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
