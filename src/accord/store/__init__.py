"""The storage layer: the one place that speaks SQL.

``open_store`` turns a location (a path, or a ``postgresql://`` URL) into
a ``Store``; everything above this package talks to that interface only.
"""

from __future__ import annotations

import time
from typing import Literal

from accord.errors import StoreError
from accord.store.base import Clock, Store

__all__ = ["Store", "open_store"]


def open_store(
    location: str,
    *,
    create: bool = False,
    synchronous: Literal["full", "normal"] = "full",
    busy_timeout: float = 5.0,
    clock: Clock = time.time,
) -> Store:
    """Open the store at ``location``: a SQLite file path, or a ``postgresql://`` URL.

    ``create`` makes a new SQLite file if absent, or the schema in an empty database.
    """
    if location.startswith(("postgresql://", "postgres://")):
        from accord.store.postgres import PostgresStore

        return PostgresStore(
            location,
            create=create,
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            clock=clock,
        )
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise StoreError(
            f"unknown store scheme {scheme!r}; give a file path or a postgresql:// URL"
        )
    from accord.store.sqlite import SQLiteStore

    return SQLiteStore(
        location, create=create, synchronous=synchronous, busy_timeout=busy_timeout, clock=clock
    )
