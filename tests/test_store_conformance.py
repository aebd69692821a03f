"""The store conformance suite (``accord.testing.conformance``), run against SQLite files."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accord.store import Store
from accord.store.base import Clock
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
