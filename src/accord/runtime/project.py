"""Setting a project up: ``.accord/`` (kept out of git), ``accord.toml`` and the store.

Three commands make a project, each as much of it as it needs:

- ``accord init`` writes the commented accord.toml, ``.accord/`` and the store, and
  may create a team (``init``);
- ``accord run`` in a fresh clone finds the committed accord.toml but no store, and
  makes the store (and ``.accord/``) where the project says (``set_up_store``);
- ``accord demo`` makes its scratch project's (``set_up_store`` with its own path).

``.accord/`` always gets the same ``.gitignore`` (``*``): the store, logs and
worktrees in it are one machine's, never committed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from accord.config import CONFIG_NAME, CONFIG_TEMPLATE, STATE_DIR, Project, locate
from accord.errors import UserError
from accord.location import parse_location
from accord.store import check_store_url, open_store, redact, store_exists
from accord.team import Team
from accord.types import check_name


def make_state_dir(root: Path) -> bool:
    """``.accord/`` in ``root``, with a ``.gitignore`` that keeps all of it out of git.
    False when it was there already (it is left as it is)."""
    state = root / STATE_DIR
    if state.exists():
        return False
    state.mkdir()
    (state / ".gitignore").write_text("*\n", encoding="utf-8")
    return True


def set_up_store(cwd: Path, store: str | None) -> tuple[Project, bool]:
    """The project of ``cwd`` (``store`` overriding where its store is), with the store
    made if it is not there yet: where accord.toml says, or in ``cwd`` when there is no
    project. True when the store was made now."""
    project = locate(cwd, store, must_exist=False)
    location = project.store_location
    if store_exists(location):
        return project, False
    if not parse_location(location).is_url:
        make_state_dir(project.root)
    open_store(location, create=True).close()
    return project, True


@dataclass(frozen=True, slots=True)
class Initialised:
    """What ``init`` found and made, for the command line to tell."""

    root: Path
    made: tuple[str, ...]  # what was created, in words ("accord.toml", ".accord/", ...)
    store_location: str
    password_withheld: bool  # --store is a URL with a password, so accord.toml omits it


def init(
    here: Path, store: str | None, *, store_from_env: str | None, team: str | None
) -> Initialised:
    """``accord init`` in ``here``: accord.toml (naming ``store``, the one given on the
    command line, when it is safe to commit), ``.accord/``, the store (``store``, else
    ``store_from_env``, else where accord.toml says) and, if named, a team.

    Bad input is refused before anything is written, so a failed init leaves no files.
    """
    location = store or store_from_env
    if team is not None:
        check_name(team, "team name")
    url = location if location and parse_location(location).is_url else None
    if location and not url and Path(location).expanduser().is_dir():
        raise UserError(f"{location} is a folder, not a store; pass the path of a file to create")
    made: list[str] = []
    config_path = here / CONFIG_NAME
    if url:
        # A malformed URL, or a server that cannot be reached, leaves no files behind.
        check_store_url(url)
        fresh = not store_exists(url)
        open_store(url, create=True).close()  # a missing database, say, is refused here
    if not config_path.exists():
        text = CONFIG_TEMPLATE
        if store and not parse_location(store).is_url:
            # Record the chosen store so later commands find it without --store.
            chosen = Path(store).expanduser().resolve()
            shown = os.path.relpath(chosen, here) if chosen.is_relative_to(here) else str(chosen)
            text = text.replace('# path = ".accord/accord.db"', f"path = {json.dumps(shown)}")
        elif store and url and redact(url) == url:
            # A URL without a password is as safe to commit as a path; one with a
            # password is not written down (the caller says what to do instead).
            text = text.replace('# path = ".accord/accord.db"', f"path = {json.dumps(url)}")
        config_path.write_text(text, encoding="utf-8")
        made.append(CONFIG_NAME)
    project = locate(here, location, must_exist=False)
    if make_state_dir(here):
        made.append(f"{STATE_DIR}/")
    store_path = project.store_location
    cfg = project.config.store
    if not url:  # the store named by accord.toml, or the default file
        fresh = not store_exists(store_path)
    with open_store(
        store_path, create=True, synchronous=cfg.synchronous, busy_timeout=cfg.busy_timeout
    ) as opened:
        if fresh:
            made.append(
                f"the store in {redact(store_path)}"
                if parse_location(store_path).is_url
                else os.path.relpath(store_path, here)
            )
        if team:
            Team.create(opened, team)
            made.append(f"team {team}")
    return Initialised(here, tuple(made), store_path, bool(url and redact(url) != url and store))
