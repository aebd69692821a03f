"""Where the store is and which team is the default, without validating accord.toml again.

Agents and hooks call the command line all the time, mostly to read, and a read
needs only a few settings of accord.toml. ``config.locate`` validates the whole
file with pydantic, which costs more than the read itself. So when a command has
validated the file and succeeded (``remember``), ``.accord/config-checked`` keeps
the text that passed and the settings a read uses, as the validator gave them.
While accord.toml holds exactly that text, ``where`` answers from the note. Any
doubt (a new or changed file, another accord, no note) and it answers None: the
caller goes to ``config.locate``, which says exactly what is wrong, as ever.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from accord import __version__
from accord.location import parse_location

if TYPE_CHECKING:
    from accord.config import Config

CONFIG_NAME = "accord.toml"
STATE_DIR = ".accord"
STORE_NAME = "accord.db"
CHECKED_NAME = "config-checked"


@dataclass(frozen=True, slots=True)
class Where:
    """The part of a project a read command needs (see ``config.Project``)."""

    root: Path
    store_location: str
    synchronous: Literal["full", "normal"]
    busy_timeout: float
    default_team: str | None
    visibility_timeout: float
    recheck: float


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds .accord/ or accord.toml; from
    inside a member's worktree (``ROOT/.accord/worktrees/...``, which holds the project's
    committed accord.toml too), the project it belongs to."""
    here = start.resolve()
    parts = here.parts
    if STATE_DIR in parts:
        i = parts.index(STATE_DIR)
        if parts[i + 1 : i + 2] == ("worktrees",) and (Path(*parts[:i]) / STATE_DIR).is_dir():
            return Path(*parts[:i])
    for folder in (here, *here.parents):
        if (folder / STATE_DIR).is_dir() or (folder / CONFIG_NAME).is_file():
            return folder
    return None


def absolute(location: str, root: Path | None = None) -> str:
    """A store location as the store is opened with: a URL as it is, a path made
    absolute (a relative one against ``root``, the project's, when given)."""
    if parse_location(location).is_url:
        return location
    return str((root / location).resolve() if root else Path(location).expanduser().resolve())


def where(cwd: Path, store: str | None = None) -> Where | None:
    """The store and default team for ``cwd``, or None when ``config.locate`` must decide."""
    root = find_root(cwd)
    explicit = store or os.environ.get("ACCORD_STORE") or None
    if root is None and not explicit:
        return None  # no project here: config.locate says so
    settings = _DEFAULTS
    if root is not None and (root / CONFIG_NAME).is_file():
        try:
            text = (root / CONFIG_NAME).read_bytes()
            head, noted, checked = (root / STATE_DIR / CHECKED_NAME).read_bytes().split(b"\n", 2)
            if head != _header() or checked != text:
                return None
            settings = json.loads(noted)
        except (OSError, ValueError):
            return None
    path = settings["path"]
    if explicit:
        location = absolute(explicit)
    elif root is None:
        return None  # unreachable: no root means an explicit store
    elif path:
        location = absolute(path, root)
    else:
        location = str(root / STATE_DIR / STORE_NAME)
    return Where(
        root or cwd.resolve(),
        location,
        "normal" if settings["synchronous"] == "normal" else "full",
        float(settings["busy_timeout"]),
        settings["default"],
        float(settings["visibility_timeout"]),
        float(settings.get("recheck", 5.0)),
    )


def remember(root: Path) -> None:
    """Validate ``root``'s accord.toml and, if it passes, note its text and the settings
    a read uses. Best effort: a state folder that cannot be written only means reads
    keep validating."""
    from accord.config import parse_config

    config, state = root / CONFIG_NAME, root / STATE_DIR
    if not state.is_dir():
        return
    try:
        text = config.read_bytes()
        settings = _settings(parse_config(text.decode("utf-8"), str(config)))
        note = b"\n".join((_header(), json.dumps(settings).encode(), text))
    except Exception:  # noqa: BLE001 - an invalid file is config's to report, not ours
        return
    try:
        if (state / CHECKED_NAME).read_bytes() == note:
            return
    except OSError:
        pass  # not noted yet
    partial = state / f"{CHECKED_NAME}.{os.getpid()}"
    try:
        partial.write_bytes(note)
        os.replace(partial, state / CHECKED_NAME)  # whole or not at all, for a reader
    except OSError:
        partial.unlink(missing_ok=True)


def _settings(config: Config) -> dict[str, Any]:
    return {
        "path": config.store.path,
        "synchronous": config.store.synchronous,
        "busy_timeout": config.store.busy_timeout,
        "default": config.team.default,
        "visibility_timeout": config.mailbox.visibility_timeout,
        "recheck": config.mailbox.recheck,
    }


# What config.Config() holds for a project without accord.toml (a test keeps them equal).
_DEFAULTS: dict[str, Any] = {
    "path": None,
    "synchronous": "full",
    "busy_timeout": 5.0,
    "default": None,
    "visibility_timeout": 60.0,
    "recheck": 5.0,
}


def _header() -> bytes:
    """Which validator passed the noted text: this accord, and its config module as it is
    on disk (a change to the rules makes every note stale)."""
    rules = (Path(__file__).parent / "config.py").stat()
    return f"accord {__version__} {rules.st_size} {rules.st_mtime_ns}".encode()
