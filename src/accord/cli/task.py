"""``accord task``: the task board. Add, list, show and change tasks; claim one under a
lease, keep the lease alive, complete, fail or cancel it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import (
    CHOICES,
    Context,
    group,
    int64,
    plain,
    positive_int,
    reads,
    seconds,
    task_id,
)
from accord.errors import NothingToDo, UserError

if TYPE_CHECKING:
    from accord.cli._common import Subcommands
    from accord.types import Task, TaskStatus


def register(commands: Subcommands, name: str) -> None:
    verbs = group(commands, name, help="the task board: add, claim, complete...")
    for grammar in (
        _add,
        _list,
        _show,
        _update,
        _claim,
        _heartbeat,
        _complete,
        _fail,
        _cancel,
    ):
        grammar(verbs)


def _plain_task(t: Task) -> Task:
    """The task for people: what was written in it made ``plain``."""
    import dataclasses

    return dataclasses.replace(
        t,
        title=plain(t.title),
        description=plain(t.description),
        result=None if t.result is None else plain(t.result),
        reason=None if t.reason is None else plain(t.reason),
    )


def _add(verbs: Subcommands) -> None:
    p = verbs.add_parser("add", parents=reads(), help="put a task on the board")
    p.add_argument("title")
    p.add_argument("--description", "-d", default="", metavar="TEXT")
    p.add_argument(
        "--blocked-by",
        type=task_id,
        action="append",
        default=[],
        metavar="ID",
        help="a task that must complete first (repeatable)",
    )
    p.add_argument("--assign", metavar="MEMBER", help="only this member may claim it")
    p.add_argument("--priority", type=int64, default=0, help="higher is claimed first")
    p.add_argument(
        "--max-attempts",
        type=positive_int,
        metavar="N",
        help="claims before it fails for good (default from accord.toml)",
    )
    p.set_defaults(func=task_add)


def task_add(ctx: Context) -> int:
    from accord.types import NewTask

    a = ctx.args
    task = ctx.team.board.add(
        NewTask(
            title=a.title,
            description=a.description,
            blocked_by=tuple(a.blocked_by),
            assignee=a.assign,
            priority=a.priority,
            max_attempts=a.max_attempts,
        ),
        actor=ctx.actor,
    )
    if ctx.json:
        show.emit_json(task)
    else:
        show.say(f"added #{task.id} {plain(task.title)} ({show.task_state(task)})")
    return 0


def _list(verbs: Subcommands) -> None:
    p = verbs.add_parser("list", parents=reads(), help="list tasks")
    p.add_argument("--status", choices=CHOICES["TaskStatus"])
    p.add_argument("--ready", action="store_true", help="only tasks a claim could take now")
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="print the board again whenever it changes, until interrupted (on a terminal "
        "in place; to a pipe after a separator line)",
    )
    p.set_defaults(func=task_list)


def task_list(ctx: Context) -> int:
    from accord.types import TaskStatus

    status = TaskStatus(ctx.args.status) if ctx.args.status else None
    if ctx.args.follow:
        if ctx.json:
            raise UserError("task list --follow prints for people; leave out --json")
        return _follow_board(ctx, status)
    tasks = ctx.reading.board.list(status, ready=ctx.args.ready)
    if ctx.json:
        show.emit_json(tasks)
    else:
        show.tasks([_plain_task(t) for t in tasks])
    return 0


BOARD_POLL = 0.25  # how often --follow looks at the store's change marker


def _follow_board(ctx: Context, status: TaskStatus | None) -> int:
    """``task list --follow``: the board, then again each time what it shows changed.
    The board is read only when the store's change marker moved, and printed only when
    a cell changed (a lease renewed or a transcript saved moves the marker, not the
    board)."""
    import sys
    import time

    board = ctx.reading.board
    terminal = sys.stdout.isatty()
    shown: list[tuple[object, ...]] | None = None
    marker: int | None = None
    try:
        while True:
            moved = ctx.reading.log.change_marker()
            if moved != marker:
                marker = moved
                tasks = [_plain_task(t) for t in board.list(status, ready=ctx.args.ready)]
                cells = [_cells(t) for t in tasks]
                if cells != shown:
                    if terminal:
                        sys.stdout.write("\x1b[H\x1b[2J")  # clear the screen, top left
                    elif shown is not None:
                        show.say("-" * 40)
                    show.say(f"board at {time.strftime('%H:%M:%S')}")
                    show.tasks(tasks)
                    sys.stdout.flush()
                    shown = cells
            time.sleep(BOARD_POLL)
    except KeyboardInterrupt:
        return 0


def _cells(t: Task) -> tuple[object, ...]:
    """What ``show.tasks`` prints of a task."""
    return (
        t.id,
        t.title,
        show.task_state(t),
        t.priority,
        t.assignee,
        t.owner if t.status == "in_progress" else None,
        t.attempts,
        t.max_attempts,
    )


def _show(verbs: Subcommands) -> None:
    p = verbs.add_parser("show", parents=reads(), help="show one task with its blockers")
    p.add_argument("id", type=task_id)
    p.set_defaults(func=task_show)


def task_show(ctx: Context) -> int:
    task = ctx.team.board.get(ctx.args.id)
    if ctx.json:
        show.emit_json(task)
    else:
        claimed = [plain(c.pattern) for c in ctx.team.board.file_claims(task.id)]
        show.task_detail(_plain_task(task), claimed)
    return 0


def _update(verbs: Subcommands) -> None:
    p = verbs.add_parser("update", parents=reads(), help="change a task")
    p.add_argument("id", type=task_id)
    p.add_argument("--title")
    p.add_argument("--description", "-d", metavar="TEXT")
    p.add_argument("--add-blocker", type=task_id, action="append", default=[], metavar="ID")
    p.add_argument("--remove-blocker", type=task_id, action="append", default=[], metavar="ID")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--assign", metavar="MEMBER")
    who.add_argument("--unassign", action="store_true")
    p.add_argument("--priority", type=int64)
    p.set_defaults(func=task_update)


def task_update(ctx: Context) -> int:
    from accord.types import TaskChanges

    a = ctx.args
    changes = TaskChanges(
        title=a.title,
        description=a.description,
        add_blockers=tuple(a.add_blocker),
        remove_blockers=tuple(a.remove_blocker),
        assignee=a.assign,
        unassign=a.unassign,
        priority=a.priority,
    )
    if changes == TaskChanges():
        raise UserError(
            "nothing to change; pass --title, --description, --add-blocker, "
            "--remove-blocker, --assign, --unassign or --priority"
        )
    task = ctx.team.board.update(a.id, changes, actor=ctx.actor)
    if ctx.json:
        show.emit_json(task)
    else:
        show.say(f"updated #{task.id} {plain(task.title)} ({show.task_state(task)})")
    return 0


def _claim(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "claim",
        parents=reads(),
        help="take the best ready task (or --id) under a lease",
    )
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--id", type=task_id, help="claim this task instead of the best one")
    p.add_argument(
        "--lease", type=seconds, metavar="SECONDS", help="lease length (default from accord.toml)"
    )
    p.set_defaults(func=task_claim)


def task_claim(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_)
    claim = ctx.team.board.claim(member, ctx.args.id, ctx.args.lease)
    if claim is None:
        raise NothingToDo(f"no ready task for {member} to claim")
    if ctx.json:
        show.emit_json(claim)
    else:
        show.say(
            f"claimed #{claim.task.id} {plain(claim.task.title)} as {member}: token "
            f"{claim.fencing_token}, lease until {show.when(claim.lease_expires_at)}"
        )
    return 0


def _heartbeat(verbs: Subcommands) -> None:
    p = verbs.add_parser("heartbeat", parents=reads(), help="extend a claim's lease")
    p.add_argument("id", type=task_id)
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--token", type=int64, required=True, help="the fencing token of the claim")
    p.add_argument("--lease", type=seconds, metavar="SECONDS")
    p.set_defaults(func=task_heartbeat)


def task_heartbeat(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_)
    claim = ctx.team.board.heartbeat(ctx.args.id, member, ctx.args.token, ctx.args.lease)
    if ctx.json:
        show.emit_json(claim)
    else:
        show.say(f"lease on #{ctx.args.id} until {show.when(claim.lease_expires_at)}")
    return 0


def _complete(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "complete",
        parents=reads(),
        help="complete a held task (TaskCompleted hooks must allow it)",
    )
    p.add_argument("id", type=task_id)
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--token", type=int64, required=True)
    p.add_argument("--result", metavar="TEXT")
    p.set_defaults(func=task_complete)


def task_complete(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_)
    # Team.complete: through the merge gate when the member works in a worktree.
    task = ctx.team.complete(ctx.args.id, member, ctx.args.token, ctx.args.result)
    if ctx.json:
        show.emit_json(task)
    else:
        show.say(f"completed #{task.id} {plain(task.title)}")
    return 0


def _fail(verbs: Subcommands) -> None:
    p = verbs.add_parser("fail", parents=reads(), help="fail a held task")
    p.add_argument("id", type=task_id)
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--token", type=int64, required=True)
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.add_argument("--retry", action="store_true", help="put it back to pending if attempts remain")
    p.set_defaults(func=task_fail)


def task_fail(ctx: Context) -> int:
    member = ctx.acting_as(ctx.args.as_)
    task = ctx.team.board.fail(
        ctx.args.id, member, ctx.args.token, ctx.args.reason, retry=ctx.args.retry
    )
    if ctx.json:
        show.emit_json(task)
    else:
        show.say(f"#{task.id} {plain(task.title)} is now {task.status.value}")
    return 0


def _cancel(verbs: Subcommands) -> None:
    p = verbs.add_parser("cancel", parents=reads(), help="cancel an unfinished task")
    p.add_argument("id", type=task_id)
    p.add_argument("--reason", default="cancelled", metavar="TEXT")
    p.set_defaults(func=task_cancel)


def task_cancel(ctx: Context) -> int:
    task = ctx.team.board.cancel(ctx.args.id, ctx.args.reason, actor=ctx.actor)
    if ctx.json:
        show.emit_json(task)
    else:
        show.say(f"cancelled #{task.id} {plain(task.title)}")
    return 0
