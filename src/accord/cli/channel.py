"""``accord channel``: the team's channels. Create, join, leave, post, read, list.

A channel name is ``#design``; ``design`` means the same (a shell reads ``#`` at the
start of a word as a comment, so the bare name is the one to type). Writes act as the
person unless ``--as MEMBER`` names a member (with its token, as an agent's calls carry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, group, int64, plain, positive_int, reads, writes
from accord.cli.route import route_options, routing
from accord.errors import UserError

if TYPE_CHECKING:
    import argparse

    from accord.cli._common import Subcommands


def register(commands: Subcommands, name: str) -> None:
    verbs = group(commands, name, help="channels: create, join, leave, post, read, list")
    for verb, helped, func in (
        ("create", "create a channel; you (or --as) join it", channel_create),
        ("join", "subscribe to a channel: its posts reach the inbox", channel_join),
        ("leave", "unsubscribe from a channel", channel_leave),
    ):
        p = verbs.add_parser(verb, parents=writes(), help=helped)
        p.add_argument("channel", metavar="CHANNEL", help="its name, like design or '#design'")
        _as(p)
        p.set_defaults(func=func)
    p = verbs.add_parser("post", parents=reads(), help="post to a channel you joined")
    p.add_argument("channel", metavar="CHANNEL", help="its name, like design or '#design'")
    p.add_argument("text")
    p.add_argument("--summary", metavar="TEXT", help="5-10 words shown in lists")
    p.add_argument(
        "--reply-to",
        type=positive_int,
        metavar="ID",
        help="the post or message it answers (a routed one: only its owner answers it)",
    )
    p.add_argument(
        "--key", metavar="IDEMPOTENCY_KEY", help="posting again with the same key posts nothing new"
    )
    _as(p)
    route_options(p)
    p.set_defaults(func=channel_post)
    p = verbs.add_parser("read", parents=reads(), help="a channel's history, oldest first")
    p.add_argument("channel", metavar="CHANNEL", help="its name, like design or '#design'")
    p.add_argument("--since", type=int64, default=0, metavar="ID", help="only posts after it")
    p.add_argument("--limit", type=positive_int, default=50)
    p.set_defaults(func=channel_read)
    p = verbs.add_parser("list", parents=reads(), help="the team's channels and subscribers")
    p.set_defaults(func=channel_list)


def _as(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as", dest="as_", metavar="MEMBER", help="who acts (default: you, the person)")


def _actor(ctx: Context) -> str:
    return ctx.acting_as(ctx.args.as_ or ctx.me)


def channel_create(ctx: Context) -> int:
    made = ctx.reading.channels.create(ctx.args.channel, _actor(ctx))
    show.say(f"created {made.name}; {show.who(made.creator)} joined it")
    return 0


def channel_join(ctx: Context) -> int:
    member = _actor(ctx)
    joined = ctx.reading.channels.join(ctx.args.channel, member)
    show.say(f"{show.who(member)} {'joined' if joined else 'had already joined'}")
    return 0


def channel_leave(ctx: Context) -> int:
    member = _actor(ctx)
    left = ctx.reading.channels.leave(ctx.args.channel, member)
    show.say(f"{show.who(member)} {'left' if left else 'had not joined'}")
    return 0


def channel_post(ctx: Context) -> int:
    a = ctx.args
    if a.tags and not a.route:
        raise UserError("--tag is for routing rules; add --route to route the post")
    if a.route:
        post = routing(ctx).post(
            a.channel,
            _actor(ctx),
            a.text,
            summary=a.summary,
            tags=a.tags,
            key=a.key,
            reply_to=a.reply_to,
        )
    else:
        post = ctx.reading.channels.post(
            a.channel, _actor(ctx), a.text, summary=a.summary, key=a.key, reply_to=a.reply_to
        )
    if ctx.json:
        show.emit_json(post)
    else:
        show.say(f"posted {post.id} to {post.channel}")
        owned = ctx.reading.routing().owner(post.id) if a.route else None
        if owned is not None:
            show.say(f"owned by {show.who(owned.owner)}: {owned.rule}")
    return 0


def channel_read(ctx: Context) -> int:
    a = ctx.args
    posts = ctx.reading.channels.read(a.channel, since=a.since, limit=a.limit)
    if ctx.json:
        show.emit_json(posts)
    elif not posts:
        show.say("no posts")
    else:
        marks = ctx.reading.routing().marks(posts)
        for m in posts:
            said = f"[{m.id}] {show.when(m.sent_at)} {show.who(m.sender)}: {plain(m.body)}"
            if m.reply_to is not None:
                said += f"  (reply to {m.reply_to})"
            if m.id in marks:
                said += f"  ({marks[m.id]})"
            show.say(said)
    return 0


def channel_list(ctx: Context) -> int:
    listed = ctx.reading.channels.list()
    if ctx.json:
        show.emit_json(listed)
    elif not listed:
        show.say("no channels yet; create one with `accord channel create NAME`")
    else:
        show.table(
            ["channel", "creator", "subscribers"],
            [
                (c.name, show.who(c.creator), ", ".join(show.who(s) for s in c.subscribers))
                for c in listed
            ],
        )
    return 0
