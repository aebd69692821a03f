"""``accord permit`` and ``accord deny``: answer a member's tool call an ask rule paused.

``accord permit --list`` shows the open asks (their ids, who asks, the tool and what
it would touch, the rule, and the time left); ``accord permit ID`` lets the call run,
``accord deny ID --reason TEXT`` refuses it with the reason the member is told. Only
the ask's addressee may answer (the person, or the lead when ``ask_to = "lead"``),
once, before its deadline.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, positive_int, reads

if TYPE_CHECKING:
    from accord.cli._common import Subcommands
    from accord.team.permits import Ask


def register(commands: Subcommands, name: str) -> None:
    {"permit": _permit, "deny": _deny}[name](commands, name)


def _permit(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=reads(),
        help="let a member's paused tool call run (--list: the open asks)",
        description="Answer a permission request (an ask rule paused a member's tool call) "
        "with yes: the call runs. --list shows the open requests.",
    )
    p.add_argument("id", type=positive_int, nargs="?", metavar="ID", help="the request's id")
    p.add_argument("--list", action="store_true", help="show the open permission requests")
    p.set_defaults(func=permit)


def _deny(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=reads(),
        help="refuse a member's paused tool call, with a reason it is told",
        description="Answer a permission request with no: the member's tool call does not "
        "run, and its result says who denied it and why.",
    )
    p.add_argument("id", type=positive_int, metavar="ID", help="the request's id")
    p.add_argument("--reason", metavar="TEXT", default="", help="why, for the member")
    p.set_defaults(func=deny)


def permit(ctx: Context) -> int:
    if ctx.args.list:
        if ctx.args.id is not None:
            from accord.errors import UsageError

            raise UsageError("give an ID to answer, or --list to see the open requests, not both")
        return _list(ctx)
    if ctx.args.id is None:
        from accord.errors import UsageError

        raise UsageError("give the ID of the request to permit (accord permit --list shows them)")
    return _answer(ctx, allowed=True, reason="")


def deny(ctx: Context) -> int:
    return _answer(ctx, allowed=False, reason=ctx.args.reason)


def _answer(ctx: Context, *, allowed: bool, reason: str) -> int:
    from accord.team.permits import Permits

    by = ctx.acting_as(ctx.me)
    permits = Permits(ctx.reading)
    answer = permits.answer(ctx.args.id, by, allowed=allowed, reason=reason)
    ask = permits.get(ctx.args.id)
    if ctx.json:
        out = {
            "v": 1,
            "request": answer.request,
            "member": ask.member,
            "tool": ask.tool,
            "allowed": answer.allowed,
            "by": answer.by,
            "reason": answer.reason,
        }
        show.say(json.dumps(out, ensure_ascii=False))
    else:
        verb = "permitted" if allowed else "denied"
        show.say(f"{verb} request {answer.request}: {ask.member} {_what(ask)}")
    return 0


def _what(ask: Ask) -> str:
    return f"may use {ask.tool}" + (f" ({ask.target})" if ask.target else "")


def _list(ctx: Context) -> int:
    import time

    from accord.team.permits import Permits

    asks = Permits(ctx.reading).pending()
    if ctx.json:
        out = [
            {
                "v": 1,
                "id": a.id,
                "member": a.member,
                "to": a.to,
                "tool": a.tool,
                "target": a.target,
                "rule": a.rule,
                "deadline": a.deadline,
            }
            for a in asks
        ]
        show.say(json.dumps(out, ensure_ascii=False))
        return 0
    if not asks:
        show.say("no open permission requests")
        return 3
    now = time.time()
    show.table(
        ["id", "member", "asks", "tool", "target", "rule", "left"],
        [
            (
                a.id,
                a.member,
                a.to,
                a.tool,
                a.target or "",
                a.rule,
                f"{max(0, a.deadline - now):.0f}s",
            )
            for a in asks
        ],
    )
    show.say("answer with: accord permit ID, or accord deny ID --reason TEXT")
    return 0
