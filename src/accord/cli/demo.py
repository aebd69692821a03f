"""``accord demo``: a whole team at work, offline, with scripted replies (no model, no key)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context

if TYPE_CHECKING:
    from accord.cli._common import Subcommands
    from accord.config import Project
    from accord.team import Team
    from accord.types import RunStatus


def register(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        help="watch a whole team work, offline: scripted replies, no model or key needed",
        description="Run a complete team in a scratch git repository with the scripted model: "
        "a lead plans three tasks, two teammates write code, the repository's tests refuse one "
        "completion and the teammate fixes it. No model, no key, no network; a few seconds.",
    )
    p.add_argument(
        "--dir", metavar="DIR", help="run in this new or empty folder (default: a temporary one)"
    )
    p.add_argument("--keep", action="store_true", help="keep the folder even if the demo fails")
    p.add_argument(
        "--display",
        choices=["tui", "table", "plain"],
        help="the full-screen app (default on a terminal), the refreshing table, or one "
        "line per step",
    )
    p.set_defaults(func=demo_cmd)


def demo_cmd(ctx: Context) -> int:
    from accord.runtime import demo
    from accord.runtime.supervisor import Supervisor

    # Only the demo's own folder and store: never the project (if any) of the cwd.
    folder = demo.scratch_folder(ctx.args.dir)
    show.say(demo.NOTICE)
    show.say(f"scratch repository: {folder.root}")
    show.say(f"goal: {demo.GOAL}")
    sys.stdout.flush()
    display = ctx.args.display or ("tui" if sys.stdout.isatty() else "plain")

    say = show.say_now

    def supervise(project: Project, team: Team) -> RunStatus:
        story = demo.Narrator(team, say)
        if display == "plain":
            return Supervisor(project, team, say=say, on_event=story).run()
        before = team.log.read_events()
        if display == "tui":
            from accord.tui import supervise_in_app

            final = supervise_in_app(project, team)
        else:
            from accord.cli._live import supervise_live

            final = supervise_live(project, team)
        # The view shows the team; the story of the run is told once it is over.
        say("what happened:")
        for e in team.log.read_events(since=before[-1].seq if before else 0):
            story(e)
        return final

    report = demo.run(folder, supervise, keep=ctx.args.keep)
    for line in demo.closing(report):
        show.say(line)
    return 0
