"""``accord msg``: mailboxes. Send, deliver (``inbox``), acknowledge, and read the history."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import CHOICES, Context, group, plain, positive_int, reads
from accord.cli.route import route_options, routing
from accord.errors import UserError

if TYPE_CHECKING:
    from accord.cli._common import Subcommands
    from accord.types import Message


def register(commands: Subcommands, name: str) -> None:
    verbs = group(commands, name, help="mailboxes: send, inbox, ack, list")
    for grammar in (_send, _inbox, _ack, _list):
        grammar(verbs)


def _plain_message(m: Message) -> Message:
    """The message for people: what its sender wrote made ``plain``."""
    summary = None if m.summary is None else plain(m.summary)
    import dataclasses

    return dataclasses.replace(m, body=plain(m.body), summary=summary)


def _send(verbs: Subcommands) -> None:
    p = verbs.add_parser("send", parents=reads(), help="send a message")
    p.add_argument("text")
    p.add_argument(
        "--from",
        dest="sender",
        metavar="MEMBER",
        help="who sends it (default: you, the person; an agent: itself)",
    )
    p.add_argument(
        "--to",
        dest="recipient",
        metavar="MEMBER",
        required=True,
        help="a member, or '*' for everyone but the sender",
    )
    p.add_argument("--summary", metavar="TEXT", help="5-10 words shown in lists")
    p.add_argument("--kind", choices=CHOICES["MessageKind"], default="text")
    p.add_argument("--reply-to", type=positive_int, metavar="ID")
    p.add_argument(
        "--key", metavar="IDEMPOTENCY_KEY", help="sending again with the same key sends nothing new"
    )
    route_options(p)
    p.set_defaults(func=msg_send)


def msg_send(ctx: Context) -> int:
    from accord.types import MessageKind

    a = ctx.args
    sender = ctx.acting_as(a.sender or ctx.me)
    if a.tags and not a.route:
        raise UserError("--tag is for routing rules; add --route to route the message")
    if a.route:
        if a.kind != "text":
            raise UserError("--route sends a plain text message; drop --kind")
        sent = routing(ctx).send(
            sender,
            a.recipient,
            a.text,
            summary=a.summary,
            tags=a.tags,
            key=a.key,
            reply_to=a.reply_to,
        )
    else:
        sent = ctx.mailbox.send(
            sender,
            a.recipient,
            a.text,
            kind=MessageKind(a.kind),
            summary=a.summary,
            reply_to=a.reply_to,
            key=a.key,
        )
    if ctx.json:
        show.emit_json(sent)
    else:
        ids = ", ".join(str(m.id) for m in sent)
        to = ", ".join(show.who(m.recipient) for m in sent)
        show.say(f"sent {ids} to {to}")
        if a.route:
            _say_owner(ctx, sent[0].id)
    return 0


def _inbox(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "inbox",
        parents=reads(),
        help="deliver unacknowledged messages (they come again until acked)",
    )
    p.add_argument(
        "--as", dest="as_", metavar="MEMBER", help="whose inbox (default: yours, the person's)"
    )
    p.add_argument("--limit", type=positive_int)
    p.set_defaults(func=msg_inbox)


def msg_inbox(ctx: Context) -> int:
    from accord.types import PERSON

    member = ctx.acting_as(ctx.args.as_ or ctx.me)
    got = ctx.mailbox.inbox(member, ctx.args.limit)
    if ctx.json:
        show.emit_json(got)
    elif not got:
        show.say(f"no new messages for {show.who(member)}")
    else:
        show.messages([_plain_message(m) for m in got])
        who = "" if member == PERSON else f"--as {member} "
        show.say(f"acknowledge with: accord msg ack {who}" + " ".join(str(m.id) for m in got))
    return 0


def _ack(verbs: Subcommands) -> None:
    p = verbs.add_parser("ack", parents=reads(), help="acknowledge delivered messages")
    p.add_argument("ids", type=positive_int, nargs="+", metavar="ID")
    p.add_argument(
        "--as", dest="as_", metavar="MEMBER", help="whose messages (default: yours, the person's)"
    )
    p.set_defaults(func=msg_ack)


def msg_ack(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_ or ctx.me)
    fresh = ctx.mailbox.ack(member, ctx.args.ids)
    if ctx.json:
        show.say(json.dumps({"v": 1, "acked": fresh}))
    else:
        show.say(f"acknowledged {len(fresh)} message(s)")
    return 0


def _list(verbs: Subcommands) -> None:
    p = verbs.add_parser("list", parents=reads(), help="message history, for people")
    p.add_argument("--member", metavar="MEMBER", help="only messages to or from this member")
    p.add_argument("--unacked", action="store_true")
    p.add_argument("--limit", type=positive_int, default=50)
    p.set_defaults(func=msg_list)


def msg_list(ctx: Context) -> int:
    items = ctx.mailbox.history(ctx.args.member, ctx.args.unacked, ctx.args.limit)
    if ctx.json:
        show.emit_json(items)
    else:
        show.messages([_plain_message(m) for m in items])
    return 0


def _say_owner(ctx: Context, message_id: int) -> None:
    route = ctx.reading.routing().owner(message_id)
    if route is not None:
        show.say(f"owned by {show.who(route.owner)}: {route.rule}")
