"""Work without a lead: ``plan load`` puts a plan file's tasks on the board, checked whole
first; ``work`` starts workers that run a command (or an agent) once per ready task."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, group, plain, positive_int, reads, seconds, writes

if TYPE_CHECKING:
    from accord.cli._common import Subcommands


def register(commands: Subcommands, name: str) -> None:
    {"plan": _plan, "work": _work}[name](commands, name)


def _plan(commands: Subcommands, name: str) -> None:
    verbs = group(commands, name, help="put a plan file's tasks on the board, checked whole first")
    p = verbs.add_parser(
        "load",
        parents=reads(),
        help="load a TOML plan of tasks with ids and blockers (again: adds only new ones)",
        description="Check the whole plan (TOML, keys, ids, blockers, cycles) and then put "
        "every task on the board in one transaction. Tasks loaded before (by id) are left "
        "as they are, so loading a plan again adds only the tasks that are new.",
    )
    p.add_argument("file", metavar="FILE.toml")
    p.set_defaults(func=plan_load)


def plan_load(ctx: Context) -> int:
    from pathlib import Path

    from accord.team.plan import load_plan, read_plan
    from accord.types import to_json

    plan = read_plan(Path(ctx.args.file))  # the whole file is checked before the store opens
    loaded = load_plan(ctx.team, plan, actor=ctx.actor)
    if ctx.json:
        out = {
            "v": 1,
            "team": loaded.team,
            "plan": loaded.origin,
            "tasks": [
                {"id": e.item.id, "outcome": e.outcome, "note": e.note, "task": to_json(e.task)}
                for e in loaded.entries
            ],
        }
        show.say(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        counts = [
            f"{loaded.count('added')} added",
            f"{loaded.count('existing')} already loaded",
        ]
        if loaded.count("refused"):
            counts.append(f"{loaded.count('refused')} refused by the TaskCreated hook")
        show.say(f"{loaded.origin} -> team {loaded.team}: {', '.join(counts)}")
        label = {"added": "added", "existing": "already loaded", "refused": "refused"}
        show.table(
            ["plan id", "task", "title", "state", "note"],
            [
                (
                    e.item.id,
                    f"#{e.task.id}" if e.outcome != "refused" else "-",
                    plain(e.task.title),
                    label[e.outcome]
                    if e.outcome == "refused"
                    else f"{label[e.outcome]}, {show.task_state(e.task)}",
                    (e.note or "").splitlines()[0] if e.note else None,
                )
                for e in loaded.entries
            ],
        )
    return 1 if loaded.count("refused") else 0


def _work(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="N workers run a command (or an agent) once per ready task",
        description="Start N workers (members PREFIX-1..PREFIX-N) that claim ready tasks and "
        "run `/bin/sh -c CMD` for each in the project folder, with ACCORD_TASK_ID, "
        "ACCORD_TASK_TITLE, ACCORD_TASK_DESCRIPTION, ACCORD_TASK_KEY and ACCORD_TEAM set and "
        "the task as JSON on stdin. Exit 0 completes the task (TaskCompleted hooks apply); "
        "another exit fails the attempt with the output's tail as the reason. Stops when "
        "nothing is left; exit 0 if every task completed, 1 otherwise. Ctrl+C puts running "
        "tasks back; started again, it carries on.",
    )
    p.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="tasks run at once (1)"
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--command", metavar="CMD", help="shell command to run once per task")
    what.add_argument(
        "--agent", metavar="DEFINITION", help="run an agent with this definition per task"
    )
    p.add_argument("--model", metavar="PROVIDER:MODEL", help="the agents' model (with --agent)")
    p.add_argument(
        "--lease",
        type=seconds,
        metavar="SECONDS",
        help="claim lease, kept alive while a task runs (default from accord.toml)",
    )
    p.add_argument(
        "--as-prefix",
        default="worker",
        metavar="PREFIX",
        help="workers are members PREFIX-1..PREFIX-N (default: worker)",
    )
    p.set_defaults(func=work)


def work(ctx: Context) -> int:
    from accord.runtime.work import WorkPool, WorkSettings

    a = ctx.args

    line = show.say_now
    pool = WorkPool(
        ctx.team,
        ctx.project.config,
        ctx.project.root,
        WorkSettings(
            workers=a.workers,
            command=a.command,
            agent=a.agent,
            model=a.model,
            lease_seconds=a.lease,
            prefix=a.as_prefix,
        ),
        say=line,
    )
    with pool.signal_handlers():
        summary = pool.run()
    head = "stopped" if summary.stopped_by else "finished"
    line(
        f"{head} after {summary.seconds:.1f}s: {len(summary.completed)} completed, "
        f"{len(summary.failed)} failed, {len(summary.cancelled)} cancelled, "
        f"{len(summary.left)} left ({summary.started} attempt(s) started by this run)"
    )
    for t in summary.failed:
        why = (t.reason or "").strip().splitlines()
        line(f"  failed #{t.id} {plain(t.title)}" + (f": {plain(why[0])}" if why else ""))
    for t in summary.left:
        line(f"  left   #{t.id} {plain(t.title)}: {show.task_state(t)}")
    if summary.stopped_by == "signal":
        return 130
    return 0 if summary.ok else 1
