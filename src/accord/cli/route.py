"""``accord route``: routed messages. Why one has its owner (``explain``), the lead's or
the person's ``assign``, the owner's ``release``, and the sender's ``accept`` or
``reject`` of the owner's answer.

A message is routed when it is sent with ``accord msg send --route`` or posted with
``accord channel post --route``: the rules of accord.toml (``[[routing.rules]]``) and of
the agent definitions (``routes:``) choose its one owner, or the fallback does. Its
owner answers it by replying (``--reply-to``); nobody else but its sender may.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, group, positive_int, reads, writes

if TYPE_CHECKING:
    import argparse

    from accord.cli._common import Subcommands
    from accord.team.routing import Routing


def register(commands: Subcommands, name: str) -> None:
    verbs = group(commands, name, help="routed messages: explain, assign")
    p = verbs.add_parser("explain", parents=reads(), help="who owns a routed message, and why")
    p.add_argument("message", type=positive_int, metavar="MSG", help="the message's id")
    p.set_defaults(func=route_explain)
    p = verbs.add_parser(
        "assign", parents=writes(), help="give a routed message to a member (lead or person)"
    )
    p.add_argument("message", type=positive_int, metavar="MSG", help="the message's id")
    p.add_argument("owner", metavar="MEMBER", help="its new owner")
    p.add_argument("--as", dest="as_", metavar="LEAD", help="who assigns (default: you)")
    p.set_defaults(func=route_assign)
    p = verbs.add_parser(
        "release", parents=writes(), help="let go of a routed message you own: the next gets it"
    )
    p.add_argument("message", type=positive_int, metavar="MSG", help="the message's id")
    p.add_argument("--as", dest="as_", metavar="MEMBER", help="its owner (default: you)")
    p.set_defaults(func=route_release)
    for verb, helped in (
        ("accept", "accept the answer to a routed message you sent"),
        ("reject", "say the answer to a routed message you sent did not answer it"),
    ):
        p = verbs.add_parser(verb, parents=writes(), help=helped)
        p.add_argument("message", type=positive_int, metavar="MSG", help="the message's id")
        p.add_argument("--as", dest="as_", metavar="MEMBER", help="its sender (default: you)")
        p.set_defaults(func=route_judge, accepted=verb == "accept")


def routing(ctx: Context) -> Routing:
    """The team's routing: accord.toml's rules, then the agent definitions' routes."""
    from accord.agent.definition import routes_by_definition

    return ctx.team.routing(routes_by_definition(ctx.project.root))


def route_options(p: argparse.ArgumentParser) -> None:
    """The ``--route`` and ``--tag`` options of a send or a post."""
    p.add_argument(
        "--route",
        action="store_true",
        help="give it one owner, chosen by the routing rules (see `accord route explain`)",
    )
    p.add_argument(
        "--tag",
        dest="tags",
        action="append",
        default=[],
        metavar="TAG",
        help="a tag routing rules may match (with --route; repeat for more)",
    )


def route_explain(ctx: Context) -> int:
    told = ctx.reading.routing().explain(ctx.args.message)
    r = told.route
    if ctx.json:
        from accord.types import to_json

        show.emit_json({"route": to_json(r), "decisions": to_json(list(told.decisions))})
        return 0
    lease = "" if r.answer_id is not None else f", lease until {show.when(r.lease_expires_at)}"
    show.say(f"message {r.message_id} is owned by {show.who(r.owner)} (token {r.token}{lease})")
    show.say(f"because: {r.rule}")
    if r.topics:
        show.say("about: " + ", ".join(r.topics))
    if r.answer_id is not None:
        judged = {None: "not judged yet", True: "accepted", False: "turned down"}[r.accepted]
        show.say(f"answered by message {r.answer_id} at {show.when(r.answered_at)}: {judged}")
    elif len(r.candidates) > 1:
        show.say("next if the lease runs out: " + ", ".join(r.candidates))
    for e in told.decisions:
        was = f" (from {e.payload['previous']})" if "previous" in e.payload else ""
        show.say(f"  {show.when(e.at)} -> {e.payload.get('owner')}{was}: {e.payload.get('rule')}")
    return 0


def route_assign(ctx: Context) -> int:
    by = ctx.acting_as(ctx.args.as_ or ctx.me)
    route = routing(ctx).take(ctx.args.message, ctx.args.owner, by=by)
    show.say(f"message {route.message_id} is now owned by {show.who(route.owner)}")
    return 0


def route_release(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_ or ctx.me)
    route = routing(ctx).release(ctx.args.message, member)
    show.say(f"message {route.message_id} is now owned by {show.who(route.owner)}")
    return 0


def route_judge(ctx: Context) -> int:
    by = ctx.acting_as(ctx.args.as_ or ctx.me)
    route = routing(ctx).judge(ctx.args.message, by, accepted=ctx.args.accepted)
    verdict = "accepted" if ctx.args.accepted else "turned down"
    show.say(f"{show.who(route.owner)}'s answer to message {route.message_id} is {verdict}")
    return 0
