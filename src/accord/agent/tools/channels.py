"""Channel tools: create, join, leave, post to and read the team's channels, as the
member and nobody else (the member is ``ToolContext.member``; no argument names it)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from accord.agent.tools.base import Tool, ToolArgs, ToolContext
from accord.agent.tools.team import _team, answered_line, check_tags, owned_line, routing
from accord.types import Message

# channel_read shows at most this many posts.
READ_LIMIT = 50

_NAME = "The channel's name, like '#design'."


def _post_line(m: Message, marks: dict[int, str] | None = None) -> str:
    said = f"#{m.id} {m.sender}: {m.body}"
    if m.reply_to is not None:
        said += f" (reply to #{m.reply_to})"
    mark = (marks or {}).get(m.id)
    if mark is not None:
        said += f" (routed: {mark})"
    return said


class ChannelCreateArgs(ToolArgs):
    channel: str = Field(description="The new channel's name, like '#design'.")


def channel_create(ctx: ToolContext, args: ChannelCreateArgs) -> str:
    made = _team(ctx).channels.create(args.channel, ctx.member)
    return f"created {made.name}; you subscribe to it"


class ChannelJoinArgs(ToolArgs):
    channel: str = Field(description=_NAME)


def channel_join(ctx: ToolContext, args: ChannelJoinArgs) -> str:
    team = _team(ctx)
    joined = team.channels.join(args.channel, ctx.member)
    return f"{'joined' if joined else 'you had already joined'} {args.channel}"


def channel_leave(ctx: ToolContext, args: ChannelJoinArgs) -> str:
    left = _team(ctx).channels.leave(args.channel, ctx.member)
    return f"{'left' if left else 'you had not joined'} {args.channel}"


class ChannelPostArgs(ToolArgs):
    channel: str = Field(description=_NAME)
    message: str = Field(min_length=1, description="The post's text.")
    summary: str | None = Field(default=None, description="A few words saying what it is about.")
    route: bool = Field(
        default=False,
        description="Give the post one owner among the other subscribers, chosen by the "
        "team's routing rules; the others see who owns it and leave the answer to them.",
    )
    tags: list[str] = Field(
        default=[],
        description="With route: topics it is about (like 'api'); routing rules match them.",
    )
    reply_to: int | None = Field(
        default=None,
        description="The id of the post or message you answer. Answering a routed one you "
        "own marks it answered; one another member owns is theirs to answer.",
    )
    key: str | None = Field(
        default=None,
        description="A key of your choosing: posting again with the same key posts nothing "
        "new (safe to retry).",
    )


def channel_post(ctx: ToolContext, args: ChannelPostArgs) -> str:
    check_tags(args.route, args.tags)
    if args.route:
        post = routing(ctx).post(
            args.channel,
            ctx.member,
            args.message,
            summary=args.summary,
            tags=args.tags,
            key=args.key,
            reply_to=args.reply_to,
        )
    else:
        post = _team(ctx).channels.post(
            args.channel,
            ctx.member,
            args.message,
            summary=args.summary,
            key=args.key,
            reply_to=args.reply_to,
        )
    owned = (owned_line(ctx, post.id) if args.route else "") + answered_line(ctx, args.reply_to)
    return f"posted to {post.channel} (post #{post.id}){owned}"


class ChannelReadArgs(ToolArgs):
    channel: str | None = Field(
        default=None, description="A channel's name; leave it out to list the team's channels."
    )
    since: int = Field(default=0, ge=0, description="Only posts after this post id.")


def channel_read(ctx: ToolContext, args: ChannelReadArgs) -> str:
    team = _team(ctx)
    if args.channel is None:
        listed = team.channels.list()
        if not listed:
            return "the team has no channels yet; make one with channel_create"
        return "\n".join(
            f"{c.name} ({', '.join(c.subscribers) or 'no subscribers'})"
            + (" [joined]" if ctx.member in c.subscribers else "")
            for c in listed
        )
    posts = team.channels.read(args.channel, since=args.since, limit=READ_LIMIT)
    if not posts:
        return f"no posts in {args.channel}" + (f" after #{args.since}" if args.since else "")
    more = f"\n(more: call again with since={posts[-1].id})" if len(posts) == READ_LIMIT else ""
    marks = team.routing().marks(posts)
    return "\n".join(_post_line(m, marks) for m in posts) + more


CHANNEL_TOOLS: list[Tool[Any]] = [
    Tool(
        "channel_create",
        "Create a channel (a named topic like '#design'); you join it.",
        ChannelCreateArgs,
        channel_create,
    ),
    Tool(
        "channel_join",
        "Join a channel: its new posts reach your mail.",
        ChannelJoinArgs,
        channel_join,
    ),
    Tool("channel_leave", "Leave a channel.", ChannelJoinArgs, channel_leave),
    Tool(
        "channel_post",
        "Post to a channel you joined; every other subscriber gets it.",
        ChannelPostArgs,
        channel_post,
    ),
    Tool(
        "channel_read",
        "Read a channel's history, oldest first (or, with no channel, list the channels).",
        ChannelReadArgs,
        channel_read,
        read_only=True,
    ),
]
