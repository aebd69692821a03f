"""Team services: the board, mailboxes, roster, hooks and events of one team.

``pick_team`` applies the rule for which team a command means; ``TeamServices``
bundles the services of one team over one store, wired to the project's
settings and hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord.errors import Reason, UnknownTeam, UserError
from accord.types import check_name

if TYPE_CHECKING:
    from accord.config import Config
    from accord.store.base import Store
    from accord.team.board import Board
    from accord.team.hooks import HookRunner
    from accord.team.mailbox import Mailbox
    from accord.team.roster import Roster

__all__ = ["Board", "HookRunner", "Mailbox", "Roster", "TeamServices", "pick_team"]


_LAZY = {"Board": "board", "HookRunner": "hooks", "Mailbox": "mailbox", "Roster": "roster"}


def __getattr__(name: str) -> Any:
    # The services load config (and pydantic) only when asked for, so a command that
    # needs just ``pick_team`` or the mailbox starts fast.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"accord.team.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pick_team(
    store: Store, explicit: str | None, env_team: str | None, config_default: str | None
) -> str:
    """The team a command means: --team, then ACCORD_TEAM, then accord.toml's default,
    then the only team in the store."""
    for name, origin in (
        (explicit, "--team"),
        (env_team, "ACCORD_TEAM"),
        (config_default, "[team] default in accord.toml"),
    ):
        # An explicit but empty --team is a mistake, not "no choice"; an empty variable is unset.
        if name or (name is not None and origin == "--team"):
            check_name(name, f"team name (from {origin})")
            store.get_team(name)  # UnknownTeam, listing the teams there are
            return name
    teams = [t.name for t in store.list_teams()]
    if len(teams) == 1:
        return teams[0]
    if not teams:
        raise UnknownTeam("this store has no teams yet", reason=Reason.NO_TEAMS)
    raise UserError(
        f"this store has {len(teams)} teams ({', '.join(teams)}); pass --team NAME, "
        "set ACCORD_TEAM, or set [team] default in accord.toml"
    )


@dataclass(frozen=True, slots=True)
class TeamServices:
    """Everything a front door needs to act on one team."""

    store: Store
    team: str
    board: Board
    mailbox: Mailbox
    roster: Roster
    hooks: HookRunner

    @classmethod
    def open(cls, store: Store, team: str, config: Config, cwd: Path) -> TeamServices:
        from accord.team.board import Board
        from accord.team.hooks import HookRunner
        from accord.team.mailbox import Mailbox
        from accord.team.roster import Roster

        hooks = HookRunner(config.hooks, store, team, cwd)
        return cls(
            store=store,
            team=team,
            board=Board(store, team, config.board, hooks),
            mailbox=Mailbox(store, team, config.mailbox),
            roster=Roster(store, team, hooks),
            hooks=hooks,
        )
