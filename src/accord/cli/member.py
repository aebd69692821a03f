"""``accord member``: add, list, show and remove members; their tokens, transcripts and
heartbeats."""

from __future__ import annotations

import itertools
import json
import os
import sys
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import CHOICES, Context, group, plain, positive_int, reads, writes

if TYPE_CHECKING:
    from accord.cli._common import Subcommands
    from accord.types import TranscriptEntry


def register(commands: Subcommands, name: str) -> None:
    verbs = group(commands, name, help="add, list, show and remove members")
    for grammar in (_add, _list, _show, _remove, _token, _transcript, _heartbeat):
        grammar(verbs)


def _add(verbs: Subcommands) -> None:
    p = verbs.add_parser("add", parents=reads(), help="add a member; prints its secret token once")
    p.add_argument("name")
    p.add_argument("--role", choices=CHOICES["MemberRole"], default="teammate")
    p.add_argument("--agent", metavar="DEFINITION", help="agent definition name")
    p.add_argument("--model", metavar="PROVIDER:MODEL")
    p.set_defaults(func=member_add)


def member_add(ctx: Context) -> int:
    from accord.agent.definition import find_definition
    from accord.types import MemberRole, to_json

    if ctx.args.agent is not None:
        # Checked now, not when the member first starts: an unknown or broken
        # definition is refused before anything is added.
        warning = find_definition(ctx.project.root, ctx.args.agent).unsupported()
        if warning is not None:
            sys.stderr.write(f"warning: {warning}\n")
    added = ctx.team.roster.add(
        ctx.args.name,
        role=MemberRole(ctx.args.role),
        agent=ctx.args.agent,
        model=ctx.args.model,
        actor=ctx.actor,
    )
    if ctx.json:
        out = to_json(added.member)
        out["token"] = added.token
        show.say(json.dumps(out, indent=2))
    else:
        show.say(f"added {added.member.name} to team {ctx.team.team}")
        show.say(f"token (shown once; agents carry it as ACCORD_TOKEN): {added.token}")
    return 0


def _list(verbs: Subcommands) -> None:
    p = verbs.add_parser("list", parents=reads(), help="list members with status and heartbeat")
    p.set_defaults(func=member_list)


def member_list(ctx: Context) -> int:
    members = ctx.team.roster.list()
    if ctx.json:
        show.emit_json(members)
    else:
        show.members(members)
    return 0


def _show(verbs: Subcommands) -> None:
    p = verbs.add_parser("show", parents=reads(), help="show one member")
    p.add_argument("name")
    p.set_defaults(func=member_show)


def member_show(ctx: Context) -> int:
    from accord.types import TaskStatus

    m = ctx.team.roster.get(ctx.args.name)
    if ctx.json:
        show.emit_json(m)
        return 0
    show.members([m])
    held = [t for t in ctx.team.board.list(TaskStatus.IN_PROGRESS) if t.owner == m.name]
    if held:
        show.say("holds: " + ", ".join(f"#{t.id} {plain(t.title)}" for t in held))
    return 0


def _remove(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "remove", parents=writes(), help="remove a member; its tasks go back to pending"
    )
    p.add_argument("name")
    p.add_argument(
        "--force",
        action="store_true",
        help="remove even while it looks live, or while its worktree holds unmerged work",
    )
    p.set_defaults(func=member_remove)


def member_remove(ctx: Context) -> int:
    from accord.runtime.lifecycle import refuse_removing_a_running_member

    refuse_removing_a_running_member(ctx.team, ctx.args.name)
    # Its worktree and branch go with it; refused first (nothing changed) while they
    # hold work that is not in the team's branch, unless --force.
    worktrees = ctx.team.worktrees
    worktrees.check_removable([ctx.args.name], ctx.args.force)
    released = ctx.team.roster.remove(ctx.args.name, force=ctx.args.force, actor=ctx.actor)
    gone = worktrees.remove(ctx.args.name)
    note = f"; tasks back to pending: {', '.join(f'#{i}' for i in released)}" if released else ""
    note += "; its worktree and branch were removed" if gone else ""
    show.say(f"removed {ctx.args.name}{note}")
    return 0


def _token(verbs: Subcommands) -> None:
    p = verbs.add_parser("token", parents=reads(), help="issue a new secret token for a member")
    p.add_argument("name")
    p.add_argument(
        "--rotate", action="store_true", required=True, help="required: the old token stops working"
    )
    p.set_defaults(func=member_token)


def member_token(ctx: Context) -> int:
    # An agent may rotate only its own token: printing another's would let it act as them.
    name = ctx.acting_as(ctx.args.name)
    issued = ctx.team.roster.rotate_token(name, actor=ctx.actor)
    if ctx.json:
        show.say(json.dumps({"v": 1, "name": issued.member.name, "token": issued.token}))
    else:
        show.say(
            f"new token for {issued.member.name} (the old one no longer works): {issued.token}"
        )
    return 0


def _transcript(verbs: Subcommands) -> None:
    p = verbs.add_parser("transcript", parents=reads(), help="a member's saved conversation")
    p.add_argument("name")
    p.add_argument("--session", type=positive_int, help="only this session (default: all)")
    p.add_argument("--last", type=positive_int, metavar="N", help="only the last N entries")
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing entries as the member saves them, until interrupted "
        "(with --json: one JSON object per line)",
    )
    p.set_defaults(func=member_transcript)


def member_transcript(ctx: Context) -> int:
    team = ctx.team
    team.roster.get(ctx.args.name)  # UnknownMember, before an empty transcript
    entries = team.log.read_transcript(ctx.args.name, session=ctx.args.session)
    since = entries[-1].seq if entries else 0
    if ctx.args.last:
        entries = entries[-ctx.args.last :]
    if ctx.args.follow:
        return _follow(ctx, entries, since)
    if ctx.json:
        show.emit_json(entries)
    elif not entries:
        show.say(f"{ctx.args.name} has no transcript yet")
    else:
        for e in entries:
            show.transcript_entry(e)
    return 0


def _follow(ctx: Context, shown: list[TranscriptEntry], since: int) -> int:
    """``transcript --follow``: what is saved so far (``--last`` of it), then each entry
    as it is saved; JSON lines with ``--json``, colours on a terminal."""
    from accord.types import to_json

    colour = not ctx.json and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    follow = ctx.team.log.follow_transcript(ctx.args.name, session=ctx.args.session, since=since)
    for entry in itertools.chain(shown, follow):
        if ctx.json:
            sys.stdout.write(json.dumps(to_json(entry), ensure_ascii=False) + "\n")
        else:
            show.transcript_entry(entry, colour=colour)
        sys.stdout.flush()
    return 0


def _heartbeat(verbs: Subcommands) -> None:
    p = verbs.add_parser("heartbeat", parents=writes(), help="record that a member is alive")
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--status", choices=CHOICES["MemberStatus"])
    p.add_argument("--pid", type=positive_int)
    p.add_argument("--host")
    p.set_defaults(func=member_heartbeat)


def member_heartbeat(ctx: Context) -> int:
    from accord.types import MemberStatus

    name = ctx.acting_as(ctx.args.as_)
    status = MemberStatus(ctx.args.status) if ctx.args.status else None
    ctx.team.roster.heartbeat(name, status=status, pid=ctx.args.pid, host=ctx.args.host)
    return 0
