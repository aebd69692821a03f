"""Where the store is and which team is the default, read quickly from accord.toml.

Agents and hooks call the command line all the time, mostly to read, and a read
needs only this much of accord.toml. ``config.locate`` validates the whole file
with pydantic, which costs more than the read itself. So once a command has
validated the file (``remember``), ``.accord/config-checked`` holds the text it
accepted; while accord.toml still has exactly that text, ``where`` reads the few
settings a read uses with tomllib alone. Any doubt (a changed or new file, another
accord, a value it does not know) and it answers None: the caller goes to
``config.locate``, which says exactly what is wrong, as it always has.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from accord import __version__
from accord.types import NAME_PATTERN

CONFIG_NAME = "accord.toml"
STATE_DIR = ".accord"
STORE_NAME = "accord.db"
CHECKED_NAME = "config-checked"
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
            text = (root / CONFIG_NAME).read_bytes()
            if (root / STATE_DIR / CHECKED_NAME).read_bytes() != _checked(text):
                return None
            raw = tomllib.loads(text.decode("utf-8"))
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


def remember(root: Path) -> None:
    """Validate ``root``'s accord.toml and, if it passes, note its text as checked, so
    reads take the quick way while it stays as it is. Best effort: a state folder that
    cannot be written only means reads keep validating."""
    from accord.config import parse_config

    config, state = root / CONFIG_NAME, root / STATE_DIR
    try:
        text = config.read_bytes()
    except OSError:
        return
    if not state.is_dir():
        return
    try:
        if (state / CHECKED_NAME).read_bytes() == _checked(text):
            return
    except OSError:
        pass  # not noted yet
    try:
        parse_config(text.decode("utf-8"), str(config))
    except Exception:  # noqa: BLE001 - an invalid file is config's to report, not ours
        return
    partial = state / f"{CHECKED_NAME}.{os.getpid()}"
    try:
        partial.write_bytes(_checked(text))
        os.replace(partial, state / CHECKED_NAME)  # whole or not at all, for a reader
    except OSError:
        partial.unlink(missing_ok=True)


def _checked(text: bytes) -> bytes:
    """What ``.accord/config-checked`` holds for ``text``: it, and which validator passed
    it (this accord, and its config module as it is on disk)."""
    rules = (Path(__file__).parent / "config.py").stat()
    head = f"accord {__version__} {rules.st_size} {rules.st_mtime_ns}\n"
    return head.encode() + text


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
    if not isinstance(value, int | float):  # pydantic's lax float takes true as 1.0 too
        return None
    return float(value) if 0 < value <= most else None
