"""``accord merge``: bring a team's integration branch into the branch its run started from.

It works in the person's own checkout, so it changes something only when that is
safe to do without asking: the checkout is on the branch the run started from and has
no uncommitted changes. Then it runs ``git merge --no-ff accord/<team>``. Otherwise it
changes nothing and prints exactly what to run. During a run accord never touches the
person's checkout or branch; this command, run by the person, is the one step that does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, writes

if TYPE_CHECKING:
    from accord.cli._common import Subcommands


def register(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="merge the team's branch (accord/TEAM) into the branch its run started from",
        description="Merge accord/TEAM, where the team's completed work was merged, into the "
        "branch the run started from, with `git merge --no-ff`, if your checkout is on that "
        "branch and clean; otherwise change nothing and say what to run.",
    )
    p.set_defaults(func=merge)


def merge(ctx: Context) -> int:
    from accord.errors import UserError

    worktrees = ctx.team.worktrees
    if not worktrees.active:
        raise UserError(
            f"team {ctx.team.name} works in the shared folder (no worktrees), so there is no "
            "branch to merge: its changes are in your files already"
        )
    commit = worktrees.merge_into_base()
    show.say(f"merged {worktrees.integration} into {worktrees.base()} ({commit[:10]})")
    return 0
