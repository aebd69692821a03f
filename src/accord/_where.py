"""Where the store is and which team is the default, read quickly from accord.toml.

Agents and hooks call the command line all the time, mostly to read, and a read
needs only this much of accord.toml. ``config.locate`` validates the whole file
with pydantic, which costs more than the read itself; ``where`` reads the few
settings a read uses and checks them by the same rules. Whenever it is not sure
(a value it does not know, a file it cannot parse) it answers None, and the
caller goes to ``config.locate``, which says exactly what is wrong. So a bad
value is reported the same way, and only settings a read never uses (hooks,
budgets, models) wait for the first command that uses them to be checked.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from accord.types import NAME_PATTERN

CONFIG_NAME = "accord.toml"
STATE_DIR = ".accord"
STORE_NAME = "accord.db"
# The sections of config.Config; a test keeps the two lists equal.
SECTIONS = frozenset(
    ("team", "store", "board", "mailbox", "hooks", "agent", "run", "memory", "budgets", "prices")
)


@dataclass(frozen=True, slots=True)
class Where:
    """The part of a project a read command needs (see ``config.Project``)."""

    root: Path
    store_location: str
    synchronous: Literal["full", "normal"]
    busy_timeout: float
    default_team: str | None
    visibility_timeout: float


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds .accord/ or accord.toml."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / STATE_DIR).is_dir() or (folder / CONFIG_NAME).is_file():
            return folder
    return None


def where(cwd: Path, store: str | None = None) -> Where | None:
    """The store and default team for ``cwd``, or None when ``config.locate`` must decide."""
    root = find_root(cwd)
    raw: dict[str, Any] = {}
    if root is not None and (root / CONFIG_NAME).is_file():
        try:
            raw = tomllib.loads((root / CONFIG_NAME).read_bytes().decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
    settings = _settings(raw)
    if settings is None:
        return None
    path, synchronous, busy_timeout, default, visibility = settings
    explicit = store or os.environ.get("ACCORD_STORE") or None
    if explicit:
        location = explicit if "://" in explicit else str(Path(explicit).expanduser().resolve())
    elif root is None:
        return None  # config.locate says there is no project here
    elif path:
        location = path if "://" in path else str((root / path).resolve())
    else:
        location = str(root / STATE_DIR / STORE_NAME)
    return Where(root or cwd.resolve(), location, synchronous, busy_timeout, default, visibility)


def _settings(
    raw: dict[str, Any],
) -> tuple[str | None, Literal["full", "normal"], float, str | None, float] | None:
    if not set(raw) <= SECTIONS or not all(isinstance(v, dict) for v in raw.values()):
        return None
    store, team, mailbox = raw.get("store", {}), raw.get("team", {}), raw.get("mailbox", {})
    if not set(store) <= {"path", "synchronous", "busy_timeout"}:
        return None
    if not set(team) <= {"default", "members"} or not set(mailbox) <= {"visibility_timeout"}:
        return None
    path = store.get("path")
    synchronous = store.get("synchronous", "full")
    busy_timeout = _number(store.get("busy_timeout", 5.0), 600)
    default = team.get("default")
    visibility = _number(mailbox.get("visibility_timeout", 60.0), 86400)
    if path is not None and not isinstance(path, str):
        return None
    if synchronous not in ("full", "normal") or busy_timeout is None or visibility is None:
        return None
    sync: Literal["full", "normal"] = "full" if synchronous == "full" else "normal"
    if default is not None and not (isinstance(default, str) and NAME_PATTERN.fullmatch(default)):
        return None
    return path, sync, busy_timeout, default, visibility


def _number(value: object, most: float) -> float | None:
    """A number of seconds in (0, most], as pydantic's ``Field(gt=0, le=most)`` takes it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value <= most else None
