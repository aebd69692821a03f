"""``accord store``: the store itself. ``copy`` moves teams, with their whole history,
between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, group
from accord.errors import UserError

if TYPE_CHECKING:
    from accord.cli._common import Subcommands


def register(commands: Subcommands, name: str) -> None:
    verbs = group(commands, name, help="the store itself: copy teams between SQLite and PostgreSQL")
    _copy(verbs)


def _copy(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "copy",
        help="copy teams, with their whole history, from one store to another",
        description="Copy every team (or those named with --team) from one store to "
        "another: a SQLite path or a postgresql:// URL on either side. The target must not "
        "have a team of the same name; a new SQLite file is created. Each team is copied "
        "in one transaction and read back to check it. The source is left as it is.",
    )
    p.add_argument("--from", dest="source", required=True, metavar="STORE")
    p.add_argument("--to", dest="target", required=True, metavar="STORE")
    p.add_argument("--team", action="append", default=[], metavar="NAME", dest="teams")
    p.add_argument("--json", action="store_true", help="print JSON for programs")
    p.set_defaults(func=store_copy)


def store_copy(ctx: Context) -> int:
    from pathlib import Path

    from accord.location import parse_location
    from accord.store import open_store
    from accord.store.copy import copy_teams
    from accord.team import Team
    from accord.types import check_name

    source_at, target_at = ctx.args.source, ctx.args.target
    if _same_store(source_at, target_at):
        raise UserError("--from and --to name the same store; give two different stores")
    for name in ctx.args.teams:
        check_name(name, "team name")
    if not parse_location(source_at).is_url and not Path(source_at).expanduser().exists():
        raise UserError(f"no store at {source_at}; give the path or URL of an existing store")
    with open_store(source_at) as source:
        for name in ctx.args.teams:
            Team(source, name).record()  # before the target is created or touched
        with open_store(target_at, create=True) as target:
            copied = copy_teams(source, target, ctx.args.teams)
    if ctx.json:
        show.emit_json([{"team": c.team, "rows": c.rows} for c in copied])
        return 0
    for c in copied:
        total = sum(c.rows.values())
        parts = ", ".join(f"{n} {table}" for table, n in c.rows.items() if n)
        show.say(f"copied team {c.team}: {total} rows ({parts})")
    if not copied:
        show.say("the source store has no teams; nothing copied")
    return 0


def _same_store(a: str, b: str) -> bool:
    from pathlib import Path

    from accord.location import parse_location

    if parse_location(a).is_url or parse_location(b).is_url:
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
