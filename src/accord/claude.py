"""Claude Code's project settings, read as Claude Code writes them.

``.claude/settings.json`` and ``.claude/settings.local.json`` hold, among much else,
the hooks accord runs and the permission rules it obeys. Both readers take the
files from here, in this order, so a malformed file is reported the same way
whoever reads it first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from accord.errors import ConfigError

# Claude Code's settings files, in the order their hooks run and their rules are read.
CLAUDE_SETTINGS = (".claude/settings.json", ".claude/settings.local.json")


def claude_settings(root: Path) -> Iterator[tuple[str, Path, Any]]:
    """Each settings file under ``root`` that exists: its name, path and parsed JSON;
    ConfigError naming the file when one is unreadable or not JSON."""
    for name in CLAUDE_SETTINGS:
        path = root / name
        settings = read_json(path)
        if settings is not None:
            yield name, path, settings


def read_json(path: Path) -> Any | None:
    """One of Claude Code's JSON files (settings, ``.mcp.json``) parsed, None when it is
    not there; ConfigError naming the file when it is unreadable or not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}; fix or remove it") from e
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON ({e}); fix it") from e
