"""The store conformance suite (``accord.testing.conformance``), run against SQLite files
and against PostgreSQL (a schema of its own per test; see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from accord.store import Store, open_store
from accord.store.base import Clock
from accord.store.postgres import PostgresStore
from accord.store.sqlite import SQLiteStore
from accord.testing.conformance import MakeStore, StoreConformance


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def make_store(self, make_store: Callable[..., Store]) -> MakeStore:
        """conftest's ``make_store``: every call opens the same file in this test's folder."""

        def make(*, clock: Clock) -> Store:
            # NORMAL skips the fsync at each commit and changes nothing a test here can
            # see; durability under power loss is not what this suite checks.
            store = make_store(clock=clock, synchronous="normal")
            assert isinstance(store, SQLiteStore)
            return store

        return make


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def make_store(self, pg_url: str) -> Iterator[MakeStore]:
        """Every call opens another connection to the same schema of the test database."""
        opened: list[Store] = []

        def make(*, clock: Clock) -> Store:
            store = open_store(pg_url, create=True, clock=clock, synchronous="normal")
            assert isinstance(store, PostgresStore)
            opened.append(store)
            return store

        yield make
        for store in opened:
            store.close()
