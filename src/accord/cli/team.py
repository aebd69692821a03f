"""``accord team``: create, list, show and delete the teams of a store."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, group, reads, writes
from accord.errors import InvalidState

if TYPE_CHECKING:
    from accord.cli._common import Subcommands


def register(commands: Subcommands, name: str) -> None:
    verbs = group(commands, name, help="create, list, show and delete teams; working patterns")
    for grammar in (_create, _list, _show, _delete, _patterns):
        grammar(verbs)


def _create(verbs: Subcommands) -> None:
    p = verbs.add_parser("create", parents=reads(), help="create a team")
    p.add_argument("name")
    p.add_argument("--description", default="", metavar="TEXT")
    p.set_defaults(func=team_create)


def team_create(ctx: Context) -> int:
    from accord.team import Team

    team = Team.create(ctx.store, ctx.args.name, description=ctx.args.description).record()
    if ctx.json:
        show.emit_json(team)
    else:
        show.say(f"created team {team.name}")
    return 0


def _list(verbs: Subcommands) -> None:
    p = verbs.add_parser("list", parents=reads(), help="list teams")
    p.set_defaults(func=team_list)


def team_list(ctx: Context) -> int:
    from accord.team import Team
    from accord.team import teams as all_teams
    from accord.types import TaskStatus

    teams = all_teams(ctx.store)
    if ctx.json:
        show.emit_json(teams)
        return 0
    if not teams:
        show.say("no teams; create one with `accord team create NAME`")
        return 0
    rows = []
    for t in teams:
        team = Team(ctx.store, t.name)
        members = team.roster.list()
        tasks = team.board.list()
        done = sum(1 for k in tasks if k.status == TaskStatus.COMPLETED)
        rows.append((t.name, len(members), f"{done}/{len(tasks)}", show.when(t.created_at)))
    show.table(["team", "members", "tasks done", "created"], rows)
    return 0


def _show(verbs: Subcommands) -> None:
    p = verbs.add_parser("show", parents=reads(), help="show a team: members, board counts, mail")
    p.add_argument("name", nargs="?")
    p.set_defaults(func=team_show)


def team_show(ctx: Context) -> int:
    from accord.types import TaskStatus, to_json

    if ctx.args.name is not None:
        ctx.args.team = ctx.args.name
    svc = ctx.team
    team = svc.record()
    members = svc.roster.list()
    tasks = svc.board.list()
    counts = {s.value: sum(1 for t in tasks if t.status == s) for s in TaskStatus}
    counts["ready"] = sum(1 for t in tasks if t.ready)
    unacked = svc.mailbox.history(unacked=True, limit=100000)
    if ctx.json:
        out = to_json(team)
        out.update(members=to_json(members), tasks=counts, unacked_messages=len(unacked))
        show.say(json.dumps(out, indent=2))
        return 0
    show.say(f"team {team.name}" + (f": {team.description}" if team.description else ""))
    show.say("tasks: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "tasks: none")
    show.say(f"unacknowledged messages: {len(unacked)}")
    show.members(members)
    return 0


def _delete(verbs: Subcommands) -> None:
    p = verbs.add_parser("delete", parents=writes(), help="delete a team and everything in it")
    p.add_argument("name")
    p.add_argument(
        "--force",
        action="store_true",
        help="delete even while members are live, or their worktrees hold unmerged work",
    )
    p.set_defaults(func=team_delete)


def team_delete(ctx: Context) -> int:
    from accord import credentials
    from accord.runtime.lifecycle import sweep
    from accord.team import Team
    from accord.team.roster import LIVE_STATUSES, acting_member

    name = ctx.args.name
    # An agent (ACCORD_MEMBER set) may delete only its own team, and only with its token.
    acting_member(ctx.store, name, os.environ.get("ACCORD_MEMBER"), credentials.get("ACCORD_TOKEN"))
    project = ctx.project
    team = Team(ctx.store, name, project.config, project.root)
    sweep(team)  # members a dead supervisor left `starting` are not live
    members = [m.name for m in team.roster.list()]
    live = [m.name for m in team.roster.list() if m.status in LIVE_STATUSES]
    if live and not ctx.args.force:
        raise InvalidState(
            f"team {name!r} has live members ({', '.join(live)}); stop them first, or pass --force"
        )
    # Members' worktrees and branches go with the team: refused first (nothing changed)
    # while one holds work not in the team's branch, unless --force. The team's own
    # branch stays, for the person to merge or delete.
    worktrees = team.worktrees
    worktrees.check_removable(members, ctx.args.force)
    team.delete()
    for member in members:
        worktrees.remove(member, record=False)
    worktrees.remove_scratch()
    show.say(f"deleted team {name}")
    return 0


def _patterns(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "patterns",
        parents=reads(),
        help="who owned, answered, had accepted and synthesised what, by topic",
        description="The team's working patterns, kept across runs: per member and topic "
        "(a routed message's tags and channel; a deliberation's tags), the routed messages "
        "it owned, answered, and had its answer accepted or turned down, and the "
        "deliberations whose answer it wrote. Topic * is everything. Routing rules with "
        'prefer = "history" pick by the score.',
    )
    p.add_argument("--member", metavar="NAME", help="only this member")
    p.add_argument("--topic", metavar="TOPIC", help="only this topic (a tag, or #channel)")
    p.set_defaults(func=team_patterns)


def team_patterns(ctx: Context) -> int:
    from accord.types import to_json

    a = ctx.args
    found = [
        p
        for p in ctx.reading.routing().patterns()
        if (a.member is None or p.member == a.member) and (a.topic is None or p.topic == a.topic)
    ]
    if ctx.json:
        show.emit_json([dict(to_json(p), score=p.score) for p in found])
        return 0
    if not found:
        show.say(
            "no working patterns yet: they come from routed messages answered "
            "(`accord msg send --route`) and deliberations synthesised (`accord ask`)"
        )
        return 0
    show.table(
        ["member", "topic", "owned", "answered", "accepted", "rejected", "syntheses", "score"],
        [
            (
                show.who(p.member),
                p.topic,
                p.owned,
                p.answered,
                p.accepted,
                p.rejected,
                p.syntheses,
                p.score,
            )
            for p in found
        ],
    )
    return 0
