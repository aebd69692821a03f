"""A team's processes: ``run`` a goal, ``resume``, ``supervise`` one host, ``stop``,
``watch`` and ``status``; ``agent`` (one member's process) and ``cost`` (what they spent).

Exit codes of a run: 0 the goal is finished; 1 the team stopped without finishing;
2 bad input, nothing started; 130 interrupted (``_RUN_EXITS``, shown by ``--help``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, finite, positive_int, reads, writes
from accord.errors import UserError

if TYPE_CHECKING:
    from accord.cli._common import Subcommands
    from accord.team import Team
    from accord.types import UsageTotal

_RUN_EXITS = (
    "Exit codes: 0 the goal is finished; 1 the team stopped without finishing (stopped by a "
    "person, budget spent, model error, crashed, stalled: `accord status` says which); 2 bad "
    "input, nothing started; 130 interrupted by Ctrl+C."
)


def register(commands: Subcommands, name: str) -> None:
    {
        "agent": _agent,
        "cost": _cost,
        "run": _run,
        "resume": _resume,
        "supervise": _supervise,
        "stop": _stop,
        "watch": _watch,
        "status": _status,
    }[name](commands, name)


# options of the commands that supervise -------------------------------------


def _usd(text: str) -> float:
    value = finite(text, "an amount of USD")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 USD")
    return value


def _host(text: str) -> str:
    from accord.types import NAME_PATTERN

    if not NAME_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a host name: use 1-40 lowercase letters, digits, - and _"
        )
    return text


def _placement(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        type=_host,
        metavar="NAME",
        help="the name this supervisor serves (default: this machine's name)",
    )
    p.add_argument(
        "--slots",
        type=positive_int,
        metavar="N",
        help="run at most N members on this host (default: [run] slots, else no limit)",
    )


DISPLAYS = ("tui", "table", "plain", "events", "tmux", "live")  # live: table's old name


def _display(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--display",
        choices=DISPLAYS,
        help="the full-screen app (tui, the default on a terminal), the refreshing table "
        "(table), the run as a story one step a line (plain, the default to a pipe), every "
        "raw event (events), or a tmux pane per member (tmux); live is the old name of table",
    )


# agent ------------------------------------------------------------------------


def _agent(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="run one member as an agent process (its token in ACCORD_TOKEN)",
        description="Run a member's agent loop: read mail, call the model, use tools, work "
        "tasks, until shut down. Agent processes carry ACCORD_MEMBER and ACCORD_TOKEN.",
    )
    p.add_argument("--member", required=True, metavar="NAME")
    p.add_argument("--model", metavar="PROVIDER:MODEL", help="override the member's model")
    p.add_argument("--agent", metavar="DEFINITION", help="override the member's definition")
    p.add_argument(
        "--workspace",
        metavar="DIR",
        help="folder the tools work in (default: the member's worktree in worktree mode, "
        "else the project folder)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="stop when there is nothing left to do instead of waiting",
    )
    p.set_defaults(func=agent_cmd)


def agent_cmd(ctx: Context) -> int:
    from pathlib import Path

    from accord import credentials
    from accord.agent.launch import CONFIG_EXIT, build_agent, record_config_failure
    from accord.events import EventKind

    credentials.receive()  # a supervised member's token and keys, before anything else
    member = ctx.acting_as(ctx.args.member)
    project = ctx.project
    env = {
        "ACCORD_TEAM": ctx.team.team,
        "ACCORD_MEMBER": member,
        "ACCORD_STORE": project.store_location,
    }
    try:
        agent = build_agent(
            ctx.team,
            member,
            project.config,
            project.root,
            model=ctx.args.model,
            definition_name=ctx.args.agent,
            workspace=Path(ctx.args.workspace) if ctx.args.workspace else None,
            env=env,
        )
    except UserError as e:
        # Started by a supervisor: say why in the store, and that a restart cannot help.
        if credentials.handed_over():
            record_config_failure(ctx.team, member, str(e))
            sys.stderr.write(f"error: {e}\n")
            return CONFIG_EXIT
        raise
    agent.install_signal_handlers()
    # With --once, the task failures of this session decide the exit code.
    history = ctx.team.log.read_events() if ctx.args.once else []
    since = history[-1].seq if history else 0
    outcome = agent.run(once=ctx.args.once)
    show.say(
        f"{member} stopped: {outcome.reason}" + (f" ({outcome.detail})" if outcome.detail else "")
    )
    failed = {
        e.payload["id"]
        for e in (ctx.team.log.read_events(since=since) if ctx.args.once else [])
        if e.kind == EventKind.TASK_FAILED and e.payload.get("owner") == member
    }
    if ctx.args.once and failed:
        ids = ", ".join(f"#{i}" for i in sorted(failed))
        sys.stderr.write(f"error: {member} failed task {ids}; see `accord task show`\n")
        return 1
    return 0 if outcome.reason in ("shutdown", "idle", "signal") else 1


# cost -------------------------------------------------------------------------


def _cost(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=reads(),
        help="tokens and USD spent, per member, task or model",
    )
    p.add_argument("--by", choices=["member", "task", "model"], default="member")
    p.set_defaults(func=cost)


def cost(ctx: Context) -> int:
    by = ctx.args.by
    rows = ctx.team.runs.usage_totals(by=by)
    total = ctx.team.runs.usage_totals()[0]
    if ctx.json:
        listed: list[dict[str, object]] = []
        out: dict[str, object] = {"v": 1, "by": by, "rows": listed, "total": None}
        for r in [*rows, total]:
            item: dict[str, object] = {
                "key": r.key,
                "calls": r.calls,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cache_read_tokens": r.cache_read_tokens,
                "cache_write_tokens": r.cache_write_tokens,
                "cost_usd": round(r.cost_usd, 6),
                "unpriced_calls": r.unpriced_calls,
            }
            if r is total:
                out["total"] = item
            else:
                listed.append(item)
        show.say(json.dumps(out, indent=2))
        return 0
    if not total.calls:
        show.say("no model calls yet")
        return 0

    def line(label: str, r: UsageTotal) -> tuple[object, ...]:
        spent = f"${r.cost_usd:.4f}" + (
            f" (+{r.unpriced_calls} unpriced)" if r.unpriced_calls else ""
        )
        return (
            label,
            r.calls,
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            spent,
        )

    table = [line((f"#{r.key}" if by == "task" and r.key else r.key) or "(none)", r) for r in rows]
    show.table(
        [by, "calls", "input", "output", "cache read", "cache write", "cost"],
        [*table, line("total", total)],
    )
    return 0


# run, resume ------------------------------------------------------------------


def _run(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="a lead and teammates work on a goal until it is done",
        description="Start a supervisor, which starts the lead; the lead plans tasks and "
        "spawns teammates. Ctrl+C stops the team (resumable with `accord resume`); twice "
        "forces it.",
        epilog=_RUN_EXITS,
    )
    p.add_argument("goal", help="what the team should do, in plain language")
    p.add_argument("--model", metavar="PROVIDER:MODEL", help="the lead's model")
    p.add_argument(
        "--teammate-model",
        metavar="PROVIDER:MODEL",
        help="default model of the teammates the lead spawns",
    )
    p.add_argument("--max-teammates", type=positive_int, metavar="N")
    p.add_argument(
        "--budget", type=_usd, metavar="USD", help="stop the team when it has spent this much"
    )
    p.add_argument(
        "--delegate", action="store_true", help="the lead only coordinates: no file or shell tools"
    )
    _display(p)
    _placement(p)
    p.set_defaults(func=run_cmd)


def run_cmd(ctx: Context) -> int:
    from pathlib import Path

    from accord.runtime.project import set_up_store
    from accord.runtime.team_run import budget_warning, prepare_run, start_integration
    from accord.store import redact
    from accord.team import Team

    _refuse_a_missing_display(ctx)
    # A first run sets the store up where the project says (a fresh clone has the
    # committed accord.toml but not .accord/), or in this folder when there is none.
    project, made = set_up_store(Path.cwd(), ctx.args.store)
    if made:
        show.say(f"created the team's store at {redact(project.store_location)}")
    team = Team.open(ctx.store, _team_name_for_run(ctx), ctx.project.config, ctx.project.root)
    prepare_run(
        team,
        ctx.project,
        ctx.args.goal,
        model=ctx.args.model,
        teammate_model=ctx.args.teammate_model,
        max_teammates=ctx.args.max_teammates,
        budget_usd=ctx.args.budget,
        delegate=ctx.args.delegate,
    )
    note = start_integration(team)
    if note is not None:
        show.say(note)
    warning = budget_warning(team, ctx.project)
    if warning is not None:
        sys.stderr.write(f"warning: {warning}\n")
    return _supervise_run(ctx, team)


def _refuse_a_missing_display(ctx: Context) -> None:
    """No tmux for ``--display tmux``: refused before anything starts or changes."""
    if ctx.args.display == "tmux":
        from accord.cli._panes import need_tmux

        need_tmux()


def _team_name_for_run(ctx: Context) -> str:
    explicit = ctx.args.team or os.environ.get("ACCORD_TEAM")
    if explicit:
        return str(explicit)
    default = ctx.project.config.team.default
    if default:
        return default
    from accord.team import teams as all_teams

    teams = [t.name for t in all_teams(ctx.store)]
    return teams[0] if len(teams) == 1 else "main"


def _supervise_run(ctx: Context, team: Team) -> int:
    """Run the team until it ends; exit 0 finished, 1 stopped without finishing, 130
    interrupted (the codes are in `accord run --help` and the README)."""
    from accord.runtime.lifecycle import exit_code, run_outcome
    from accord.runtime.supervisor import Supervisor

    display = ctx.args.display or ("tui" if sys.stdout.isatty() else "plain")
    if display == "tui":
        from accord.tui import supervise_in_app

        final = supervise_in_app(ctx.project, team, host=ctx.args.host, slots=ctx.args.slots)
    elif display in ("table", "live"):
        from accord.cli._live import supervise_live

        final = supervise_live(ctx.project, team, host=ctx.args.host, slots=ctx.args.slots)
    elif display == "tmux":
        from accord.cli._panes import supervise_in_panes

        final = supervise_in_panes(ctx.project, team, host=ctx.args.host, slots=ctx.args.slots)
    else:
        supervisor = Supervisor(
            ctx.project,
            team,
            say=show.say_now,
            on_event=show.Story(team, show.say_now, raw=display == "events"),
            host=ctx.args.host,
            slots=ctx.args.slots,
        )
        final = supervisor.run()
    run = team.runs.get()
    outcome = run_outcome(team)
    if final == "finished":
        show.say(f"finished: {run.summary if run else ''}")
        if team.worktrees.active:
            # The team's work waits on its branch; the person's own is never touched.
            show.say(
                f"the team's work is on branch {team.worktrees.integration}; "
                f"merge it with `accord merge --team {team.name}`"
            )
        return 0
    why = f" ({outcome.outcome}: {outcome.reason})" if outcome is not None else ""
    show.say(f"team {team.name} stopped without finishing{why}")
    show.say(f"`accord resume --team {team.name}` brings it back; `accord status` shows it")
    return exit_code(outcome)


def _resume(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="bring back a stopped or crashed team run",
        description="Bring the team back: its members, transcripts, claims and mail. "
        "Members that crashed too often, failed on their configuration or stopped over "
        "budget come back too (fix the cause first), and the lead is woken to carry on.",
        epilog=_RUN_EXITS,
    )
    _display(p)
    p.add_argument(
        "--budget", type=_usd, metavar="USD", help="raise the team's budget (after a budget stop)"
    )
    _placement(p)
    p.set_defaults(func=resume_cmd)


def resume_cmd(ctx: Context) -> int:
    from accord.runtime.team_run import budget_warning, prepare_resume

    _refuse_a_missing_display(ctx)
    run, why = prepare_resume(ctx.team, ctx.project, budget_usd=ctx.args.budget)
    show.say(f"resuming team {run.team}: {', '.join(run.wanted)}; {why}")
    warning = budget_warning(ctx.team, ctx.project)
    if warning is not None and ctx.args.budget is not None:
        sys.stderr.write(f"warning: {warning}\n")
    return _supervise_run(ctx, ctx.team)


# supervise, stop, watch, status -------------------------------------------------


def _supervise(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="serve one host of a team: run the members placed here (for teams on many machines)",
        description="Start the members a team run places on this host, watch and restart "
        "them, and stop them when the run stops. Run `accord run` on one machine and "
        "`accord supervise --host NAME` on others, all with the same store (a postgresql:// "
        "URL); a member whose host is lost is started again elsewhere unless the lead "
        "pinned it there. Waits for the team to run; Ctrl+C stops it.",
    )
    _placement(p)
    p.add_argument("--once", action="store_true", help="return when the current (or next) run ends")
    p.set_defaults(func=supervise_cmd)


def supervise_cmd(ctx: Context) -> int:
    from accord.runtime.supervisor import Supervisor

    Supervisor(
        ctx.project, ctx.team, say=show.say_now, host=ctx.args.host, slots=ctx.args.slots
    ).serve(once=ctx.args.once)
    show.say(f"supervisor {ctx.args.host or 'of this host'} for team {ctx.team.name} stopped")
    return 0


def _stop(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="stop the team (resumable), or ask one member to shut down",
    )
    p.add_argument("member", nargs="?")
    p.set_defaults(func=stop_cmd)


def stop_cmd(ctx: Context) -> int:
    from accord.runtime.team_run import stop

    show.say(stop(ctx.team, ctx.args.member))
    return 0


def _watch(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="the live view of a team, from any terminal (closing it stops nothing)",
        description="Attach to a team from any terminal, or from another machine with the "
        "same store (a postgresql:// URL): the full-screen app on a terminal, the "
        "refreshing table with --display table, or a tmux pane per member with --tmux. "
        "Closing the view never stops the team.",
    )
    p.add_argument(
        "--display",
        choices=("tui", "table"),
        help="the full-screen app (default on a terminal) or the refreshing table",
    )
    p.add_argument(
        "--tmux",
        action="store_true",
        help="a tmux pane per member following its transcript, the board and the lead's "
        "conversation in panes of their own (outside tmux, a tmux session to attach to)",
    )
    # What `accord run` opens the app with: close once the run it saw running ends.
    p.add_argument("--until-run-ends", action="store_true", help=argparse.SUPPRESS)
    # The keeper that --display tmux starts: keep the panes current while PID lives.
    p.add_argument("--keep-for", type=positive_int, metavar="PID", help=argparse.SUPPRESS)
    p.set_defaults(func=watch_cmd)


def watch_cmd(ctx: Context) -> int:
    if ctx.args.tmux:
        from accord.cli._panes import watch_in_panes

        return watch_in_panes(ctx.project, ctx.team, keep_for=ctx.args.keep_for)
    display = ctx.args.display or ("tui" if sys.stdout.isatty() else "table")
    if display == "tui":
        from accord.tui import watch_in_app

        return watch_in_app(ctx.project, ctx.team, until_run_ends=ctx.args.until_run_ends)
    from accord.cli._live import watch

    watch(ctx.team)
    return 0


def _status(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(name, parents=reads(), help="the team's run, members and board, once")
    p.set_defaults(func=status_cmd)


def status_cmd(ctx: Context) -> int:
    from accord.cli._live import render_status, status_data
    from accord.runtime.lifecycle import sweep

    sweep(ctx.reading)  # a supervisor dead on this machine: say so, tidy up
    data = status_data(ctx.reading)
    if ctx.json:
        show.say(json.dumps(data, indent=2))
    else:
        render_status(data)
    return 0
