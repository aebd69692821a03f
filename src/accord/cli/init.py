"""``accord init``: make a project here (accord.toml, ``.accord/``, the store, a team)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context

if TYPE_CHECKING:
    from accord.cli._common import Subcommands


def register(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        help="create .accord/ and a commented accord.toml here",
        description="Create .accord/ (the store) and a commented accord.toml "
        "in the current folder.",
    )
    p.add_argument("--team", metavar="NAME", help="also create a team with this name")
    p.add_argument("--store", metavar="PATH", help="create the store here instead")
    p.set_defaults(func=init)


def init(ctx: Context) -> int:
    from pathlib import Path

    from accord.runtime import project
    from accord.store import redact

    here = Path.cwd()
    done = project.init(
        here, ctx.args.store, store_from_env=os.environ.get("ACCORD_STORE"), team=ctx.args.team
    )
    if done.made:
        show.say(f"created {', '.join(done.made)} in {here}")
    else:
        show.say(f"already initialised: {redact(done.store_location)}")
    if done.password_withheld:
        show.say(
            "the store's URL holds a password, so accord.toml does not name it: set "
            "ACCORD_STORE for later commands, or keep the password in ~/.pgpass"
        )
    if not ctx.args.team:
        show.say("next: accord team create NAME")
    return 0
