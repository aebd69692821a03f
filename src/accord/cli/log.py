"""The team's event log: ``events`` reads (and follows) it, ``wait`` blocks on it until a
member has mail or a ready task."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, plain, positive_int, reads, seconds, whole
from accord.errors import NothingToDo

if TYPE_CHECKING:
    from accord.cli._common import Subcommands
    from accord.types import Event


def register(commands: Subcommands, name: str) -> None:
    {"events": _events, "wait": _wait}[name](commands, name)


def _seq(text: str) -> int:
    value = whole(text, "an event number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _events(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(name, parents=reads(), help="the team's event log")
    p.add_argument("--since", type=_seq, default=0, metavar="SEQ")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument("--limit", type=positive_int)
    p.set_defaults(func=events)


def events(ctx: Context) -> int:
    from accord.team.wake import follow
    from accord.types import to_json

    team = ctx.reading

    def out(e: Event) -> None:
        line = json.dumps(to_json(e)) if ctx.json else plain(show.event_line(e))
        sys.stdout.write(line + "\n")

    if not ctx.args.follow:
        items = team.log.read_events(since=ctx.args.since, limit=ctx.args.limit)
        if ctx.json:
            show.emit_json(items)
        else:
            for e in items:
                out(e)
        return 0
    for e in follow(team.store, team.name, ctx.args.since):
        out(e)
        sys.stdout.flush()
    return 0


def _wait(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name, parents=reads(), help="block until a member has mail or a ready task"
    )
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--timeout", type=seconds, default=60.0, metavar="SECONDS")
    p.set_defaults(func=wait_cmd)


def wait_cmd(ctx: Context) -> int:
    from accord.types import to_json

    member = ctx.acting_as(ctx.args.as_)
    started = time.monotonic()
    woke = ctx.reading.wait(member, ctx.args.timeout)
    if ctx.json:
        out = to_json(woke)
        out["seconds"] = round(time.monotonic() - started, 4)
        show.say(json.dumps(out))
    elif woke.reason != "timeout":
        show.say(f"{member} has {woke.mail} message(s) and {woke.ready_tasks} ready task(s)")
    if woke.reason == "timeout":
        raise NothingToDo(f"nothing for {member} within {ctx.args.timeout:g}s")
    return 0
