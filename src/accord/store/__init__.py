"""The storage layer: the one place that speaks SQL.

``open_store`` turns a location (a path, or a ``postgresql://`` URL) into
a ``Store``; everything above this package talks to that interface only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from accord.errors import StoreError, StoreNotFound
from accord.location import parse_location
from accord.store.base import Clock, Store

__all__ = ["Store", "check_store_url", "open_store", "redact", "store_exists"]


def redact(location: str) -> str:
    """``location`` safe to print: a URL's password becomes ``***``."""
    return parse_location(location).shown()


def check_store_url(url: str) -> None:
    """StoreError, saying what is wrong, unless ``url`` is a store URL accord can use."""
    where = parse_location(url)
    if where.is_postgres:
        from accord.store.postgres import check_url

        check_url(url)
        return
    raise StoreError(
        f"unknown store scheme {where.scheme!r}; give a file path or a postgresql:// URL"
    )


def store_exists(location: str) -> bool:
    """Whether an accord store is already at ``location`` (a file, or a database with
    accord's tables); errors other than "none there" are raised."""
    if not parse_location(location).is_url:
        return Path(location).exists()
    try:
        open_store(location).close()
    except StoreNotFound:
        return False
    return True


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
    where = parse_location(location)
    if where.is_postgres:
        from accord.store.postgres import PostgresStore

        return PostgresStore(
            location,
            create=create,
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            clock=clock,
        )
    if where.is_url:
        check_store_url(location)
    from accord.store.sqlite import SQLiteStore

    return SQLiteStore(
        location, create=create, synchronous=synchronous, busy_timeout=busy_timeout, clock=clock
    )
