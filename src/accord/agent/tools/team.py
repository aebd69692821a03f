"""Team tools: the board, mailboxes and roster, acting as the member and nobody else.

Every tool here takes its identity from ``ToolContext.member``; no argument
names the actor, so a model cannot claim, complete, fail or send as another
member (promise 8). Claims keep their fencing token in ``ToolContext.claims``:
the model names a task, the tool finds the token, and a token never appears in
what the model reads or writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field

from accord.agent.tools.base import HeldClaim, Setback, Tool, ToolArgs, ToolContext, dumps
from accord.errors import AccordError, ClaimError, HookBlocked, UserError
from accord.git import MergeRefused
from accord.team import Team
from accord.types import (
    BROADCAST,
    LessonCause,
    Member,
    NewTask,
    Task,
    TaskChanges,
    TaskStatus,
    check_name,
)

if TYPE_CHECKING:
    from accord.team.hooks import HookOutcome, HookRunner
    from accord.team.routing import Routing

T = TypeVar("T")

# task_list shows at most this many tasks.
LIST_LIMIT = 200


def _team(ctx: ToolContext) -> Team:
    if ctx.team is None:
        raise UserError("this agent runs without a team, so the team tools cannot be used")
    return ctx.team


def skipped_hooks(outcome: HookOutcome | None) -> list[str]:
    """One warning per hook that could not run (exit 126 or 127, or it failed to start)
    and was skipped because it is set to warn: the model would otherwise believe its
    work was checked. A hook that blocked says so in its own refusal."""
    if outcome is None:
        return []
    return [
        f"warning: the {r.event} hook `{r.command}` could not run ({r.error}); it was skipped"
        for r in outcome.runs
        if r.error is not None and not r.blocked
    ]


def _hooked(hooks: HookRunner | None, act: Callable[[], T]) -> tuple[T, str]:
    """``act()``, and the warnings of the hooks it ran, one per line after a newline."""
    if hooks is None:
        return act(), ""
    hooks.last = None
    try:
        done = act()
    except HookBlocked as e:  # a later hook blocked: say what was skipped before it
        warned = "".join(f"\n{w}" for w in skipped_hooks(hooks.last))
        raise HookBlocked(str(e), e.feedback + warned) from e
    return done, "".join(f"\n{w}" for w in skipped_hooks(hooks.last))


def task_view(task: Task, *, full: bool = False) -> dict[str, Any]:
    """What the model sees of a task: no fencing token, nothing empty."""
    view: dict[str, Any] = {
        "id": task.id,
        "title": task.title,
        "status": task.status.value if task.admitted else "held for its TaskCreated hook",
        "ready": task.ready if task.status == TaskStatus.PENDING else None,
        "priority": task.priority,
        "assignee": task.assignee,
        "owner": task.owner,
        "blocked_by": list(task.blocked_by),
        "waiting_on": list(task.waiting_on),
        "dead_blockers": list(task.dead_blockers),
    }
    if full:
        view.update(
            description=task.description,
            attempts=f"{task.attempts} of {task.max_attempts}",
            result=task.result,
            reason=task.reason,
            created_by=task.created_by,
        )
    return {k: v for k, v in view.items() if v not in (None, "", [])}


def _lines(rows: Iterable[dict[str, Any]]) -> str:
    """One compact JSON object per line: a list the model can scan without nesting."""
    return "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)


def _member_view(member: Member, me: str) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": member.name,
        "role": member.role.value,
        "status": member.status.value,
        "agent": member.agent,
        "model": member.model,
    }
    if member.name == me:
        view["you"] = True
    return {k: v for k, v in view.items() if v is not None}


# reading the board ---------------------------------------------------------


class TaskListArgs(ToolArgs):
    status: Literal["pending", "in_progress", "completed", "failed", "cancelled"] | None = Field(
        default=None, description="Only tasks with this status."
    )
    ready_only: bool = Field(
        default=False, description="Only pending tasks whose blockers are all completed."
    )


def task_list(ctx: ToolContext, args: TaskListArgs) -> str:
    status = TaskStatus(args.status) if args.status else None
    tasks = _team(ctx).board.list(status=status, ready=args.ready_only)
    if not tasks:
        which = "ready " if args.ready_only else ""
        which += f"{args.status} " if args.status else ""
        return f"no {which}tasks on the board"
    out = _lines(task_view(t) for t in tasks[:LIST_LIMIT])
    if len(tasks) > LIST_LIMIT:
        out += f"\n[{len(tasks) - LIST_LIMIT} more tasks; filter by status or ready_only]"
    return out


class TaskGetArgs(ToolArgs):
    task_id: int = Field(description="The task's id.")


def task_get(ctx: ToolContext, args: TaskGetArgs) -> str:
    task = _team(ctx).board.get(args.task_id)
    view = task_view(task, full=True)
    if args.task_id in ctx.claims:
        view["you_hold_it"] = True
    return dumps(view)


# changing the board --------------------------------------------------------


class TaskCreateArgs(ToolArgs):
    title: str = Field(min_length=1, description="A short title saying what is to be done.")
    description: str = Field(default="", description="What to do and how to know it is done.")
    blocked_by: list[int] = Field(
        default_factory=list, description="Ids of tasks that must complete before this one."
    )
    assignee: str | None = Field(default=None, description="Member who should take it.")
    priority: int = Field(default=0, description="Higher is taken first.")


def task_create(ctx: ToolContext, args: TaskCreateArgs) -> str:
    if args.assignee is not None:
        check_name(args.assignee, "member name")
    board = _team(ctx).board
    new = NewTask(
        title=args.title,
        description=args.description,
        blocked_by=tuple(args.blocked_by),
        assignee=args.assignee,
        priority=args.priority,
    )
    task, warned = _hooked(board.hooks, lambda: board.add(new, actor=ctx.member))
    return f"created task #{task.id}\n{dumps(task_view(task))}{warned}"


class TaskUpdateArgs(ToolArgs):
    task_id: int = Field(description="The task's id.")
    title: str | None = Field(default=None, min_length=1, description="New title.")
    description: str | None = Field(default=None, description="New description.")
    add_blockers: list[int] = Field(
        default_factory=list, description="Ids of tasks that must now complete first."
    )
    remove_blockers: list[int] = Field(default_factory=list, description="Ids of blockers to drop.")
    assignee: str | None = Field(default=None, description="Member who should take it.")
    unassign: bool = Field(default=False, description="Clear the assignee.")
    priority: int | None = Field(default=None, description="New priority; higher is first.")


def task_update(ctx: ToolContext, args: TaskUpdateArgs) -> str:
    if args.assignee is not None:
        check_name(args.assignee, "member name")
        if args.unassign:
            raise UserError("give either assignee or unassign=true, not both")
    task = _team(ctx).board.update(
        args.task_id,
        TaskChanges(
            title=args.title,
            description=args.description,
            add_blockers=tuple(args.add_blockers),
            remove_blockers=tuple(args.remove_blockers),
            assignee=args.assignee,
            unassign=args.unassign,
            priority=args.priority,
        ),
        actor=ctx.member,
    )
    return f"updated task #{task.id}\n{dumps(task_view(task))}"


# claims ----------------------------------------------------------------------


class TaskClaimArgs(ToolArgs):
    task_id: int | None = Field(
        default=None, description="The task to claim; omit to take the best ready task."
    )


def task_claim(ctx: ToolContext, args: TaskClaimArgs) -> str:
    board = _team(ctx).board
    if args.task_id is not None and args.task_id in ctx.claims:
        task = board.get(args.task_id)
        if task.owner == ctx.member and task.status == TaskStatus.IN_PROGRESS:
            return f"you already hold task #{task.id}; work on it and call task_complete"
    claim = board.claim(ctx.member, args.task_id)
    if claim is None:
        return "no task is ready to claim right now"
    ctx.claims[claim.task.id] = HeldClaim(claim.task.id, claim.fencing_token)
    view = task_view(claim.task, full=True)
    return (
        f"you claimed task #{claim.task.id}; when it is done call task_complete with its "
        f"result, or task_fail with the reason if it cannot be done\n{dumps(view)}"
    )


def held_claim(ctx: ToolContext, task_id: int, action: str) -> HeldClaim:
    """The claim the member holds on ``task_id``, or ClaimError saying what the task is
    (and who holds it) and to claim it before it can ``action`` it."""
    held = ctx.claims.get(task_id)
    if held is not None:
        return held
    task = _team(ctx).board.get(task_id)  # UnknownTask if there is no such task
    state = task.status.value
    if task.owner and task.status == TaskStatus.IN_PROGRESS:
        holder = "you, but not in this session" if task.owner == ctx.member else task.owner
        state += f", held by {holder}"
    raise ClaimError(
        f"you hold no claim on task #{task_id} (it is {state}); claim it with task_claim "
        f"before you {action} it"
    )


class TaskCompleteArgs(ToolArgs):
    task_id: int = Field(description="The task you hold.")
    result: str = Field(
        min_length=1, description="What you did and what others need to know about it."
    )


def task_complete(ctx: ToolContext, args: TaskCompleteArgs) -> str:
    """In worktree mode through the merge gate (``Team.complete``): a conflict or a
    failing check on the merged tree is this tool's error, and the claim stays."""
    held = held_claim(ctx, args.task_id, "complete")
    team = _team(ctx)
    board = team.board
    try:
        task, warned = _hooked(
            board.hooks,
            lambda: team.complete(args.task_id, ctx.member, held.token, args.result),
        )
    except HookBlocked as e:
        _setback(ctx, args.task_id, LessonCause.REFUSED, e.feedback or str(e))
        raise HookBlocked(
            f"{e}. Fix what the feedback below says, then call task_complete again",
            e.feedback,
        ) from e
    except MergeRefused as e:
        _setback(ctx, args.task_id, LessonCause.MERGE_REFUSED, f"{e}\n{e.detail}")
        raise
    except ClaimError:
        ctx.claims.pop(args.task_id, None)  # the claim is gone; the store says how
        raise
    ctx.claims.pop(args.task_id, None)
    return f"task #{task.id} is completed{warned}"


def _setback(ctx: ToolContext, task_id: int, cause: LessonCause, evidence: str) -> None:
    """Note an attempt that did not succeed, for the loop to ask for its lesson."""
    try:
        attempt = _team(ctx).board.get(task_id).attempts
    except AccordError:
        return
    ctx.setbacks.append(Setback(task_id, attempt, cause, evidence))


class TaskFailArgs(ToolArgs):
    task_id: int = Field(description="The task you hold.")
    reason: str = Field(min_length=1, description="Why it cannot be done.")


def task_fail(ctx: ToolContext, args: TaskFailArgs) -> str:
    held = held_claim(ctx, args.task_id, "fail")
    try:
        task = _team(ctx).board.fail(args.task_id, ctx.member, held.token, args.reason)
    except ClaimError:
        ctx.claims.pop(args.task_id, None)  # the claim is gone; the store says how
        raise
    ctx.claims.pop(args.task_id, None)
    ctx.setbacks.append(Setback(task.id, task.attempts, LessonCause.FAILED, args.reason))
    return f"task #{task.id} is {task.status.value}: {args.reason}"


class SyncArgs(ToolArgs):
    pass


def sync(ctx: ToolContext, args: SyncArgs) -> str:
    """Merge the team's branch into the member's (its pending work committed first).
    A merge, not a rebase: a conflict stops once, with every file to fix, instead of
    once for each of the member's commits."""
    worktrees = _team(ctx).worktrees
    if not worktrees.active:
        return "the team works in one shared folder (no worktrees): there is nothing to sync"
    done = worktrees.sync(ctx.member)
    if done.already:
        return f"your branch already has everything on {worktrees.integration}"
    if not done.conflicts:
        return f"merged {worktrees.integration} into your work; no conflicts"
    files = "\n".join(f"- {f}" for f in done.conflicts)
    return (
        f"merged {worktrees.integration} into your work with conflicts in:\n{files}\n"
        "Each of these files has <<<<<<<, ======= and >>>>>>> lines around the two sides. "
        "Edit them to keep what both sides need and delete the marker lines, then call "
        "task_complete again (it commits your resolution)."
    )


# mail and roster -------------------------------------------------------------


class SendMessageArgs(ToolArgs):
    to: str = Field(
        description="A member's name, 'person' for the person you work for, "
        "or '*' for every other member."
    )
    message: str = Field(min_length=1, description="The message text.")
    summary: str | None = Field(default=None, description="A few words saying what it is about.")
    route: bool = Field(
        default=False,
        description="Give it one owner among its recipients, chosen by the team's routing "
        "rules; the others see who owns it and leave the answer to them.",
    )
    tags: list[str] = Field(
        default=[],
        description="With route: topics it is about (like 'api'); routing rules match them.",
    )
    reply_to: int | None = Field(
        default=None,
        description="The id of the message you answer. Answering a routed message you own "
        "marks it answered; a routed message another member owns is theirs to answer.",
    )


def routing(ctx: ToolContext) -> Routing:
    """The team's routing with the project's agent definitions' routes."""
    from accord.agent.definition import routes_by_definition

    return _team(ctx).routing(routes_by_definition(ctx.root))


def owned_line(ctx: ToolContext, message_id: int) -> str:
    route = _team(ctx).routing().owner(message_id)
    return "" if route is None else f"; owned by {route.owner} ({route.rule})"


def answered_line(ctx: ToolContext, reply_to: int | None) -> str:
    """What a reply did to the routed message it answers, if it is one."""
    if reply_to is None:
        return ""
    route = _team(ctx).routing().owner(reply_to)
    if route is None or route.owner != ctx.member:
        return ""
    return f"; message #{route.message_id} is answered"


def check_tags(route: bool, tags: list[str]) -> None:
    if tags and not route:
        raise UserError("tags are for routing rules; set route to true to route the message")


def send_message(ctx: ToolContext, args: SendMessageArgs) -> str:
    if args.to != BROADCAST:
        check_name(args.to, "member name")
        if args.to == ctx.member:
            raise UserError("you cannot send a message to yourself")
    check_tags(args.route, args.tags)
    if args.route:
        sent = routing(ctx).send(
            ctx.member,
            args.to,
            args.message,
            summary=args.summary,
            tags=args.tags,
            reply_to=args.reply_to,
        )
    else:
        sent = _team(ctx).mailbox.send(
            ctx.member, args.to, args.message, summary=args.summary, reply_to=args.reply_to
        )
    owned = (owned_line(ctx, sent[0].id) if args.route else "") + answered_line(ctx, args.reply_to)
    if args.to == BROADCAST:
        names = ", ".join(m.recipient for m in sent)
        return f"sent to {len(sent)} members ({names}){owned}"
    return f"sent to {args.to} (message #{sent[0].id}){owned}"


class ListMembersArgs(ToolArgs):
    pass


class RouteArgs(ToolArgs):
    message_id: int = Field(ge=1, description="The routed message (or any of its copies).")


def route_release(ctx: ToolContext, args: RouteArgs) -> str:
    """The owner lets a routed message go to the next member who could answer it."""
    route = routing(ctx).release(args.message_id, ctx.member)
    return f"you let message #{args.message_id} go; {route.owner} owns it now"


class JudgeArgs(RouteArgs):
    accepted: bool = Field(
        default=True, description="true: the answer is good; false: it did not answer it."
    )


def answer_judge(ctx: ToolContext, args: JudgeArgs) -> str:
    """The sender of a routed message says whether its owner's answer was good."""
    route = routing(ctx).judge(args.message_id, ctx.member, accepted=args.accepted)
    verdict = "accepted" if args.accepted else "turned down"
    return f"{route.owner}'s answer to message #{route.message_id} is {verdict}"


def list_members(ctx: ToolContext, args: ListMembersArgs) -> str:
    team = _team(ctx)
    members = team.roster.list()
    return _lines(_member_view(m, ctx.member) for m in members)


TEAM_TOOLS: list[Tool[Any]] = [
    Tool(
        "task_list",
        "List the tasks on the team's board (id, title, status, owner, blockers).",
        TaskListArgs,
        task_list,
        read_only=True,
    ),
    Tool(
        "task_get",
        "Show one task in full: description, blockers, result, reason.",
        TaskGetArgs,
        task_get,
        read_only=True,
    ),
    Tool(
        "task_create",
        "Put a new task on the board, optionally blocked by other tasks or for a member.",
        TaskCreateArgs,
        task_create,
    ),
    Tool(
        "task_update",
        "Change a task's title, description, blockers, assignee or priority.",
        TaskUpdateArgs,
        task_update,
    ),
    Tool(
        "task_claim",
        "Claim a ready task for yourself (the best ready one if no task_id is given).",
        TaskClaimArgs,
        task_claim,
    ),
    Tool(
        "task_complete",
        "Mark a task you hold as completed, with its result. The project's checks may "
        "refuse it; then fix what they say and call it again.",
        TaskCompleteArgs,
        task_complete,
    ),
    Tool(
        "sync",
        "Bring the team's latest merged work into your worktree (a git merge of the "
        "team's branch into yours). Conflicts are left marked in the files for you to fix.",
        SyncArgs,
        sync,
    ),
    Tool(
        "task_fail",
        "Give up a task you hold, saying why it cannot be done.",
        TaskFailArgs,
        task_fail,
    ),
    Tool(
        "send_message",
        "Send a message to a teammate by name, or to everyone with '*'.",
        SendMessageArgs,
        send_message,
    ),
    Tool(
        "route_release",
        "Let go of a routed message you own and cannot answer: the next member gets it.",
        RouteArgs,
        route_release,
    ),
    Tool(
        "answer_judge",
        "Say whether the answer to a routed message you sent was good (accepted) or not; "
        "the team routes such questions to whoever answers them well.",
        JudgeArgs,
        answer_judge,
    ),
    Tool(
        "list_members",
        "List the members of your team with their role and status.",
        ListMembersArgs,
        list_members,
        read_only=True,
    ),
]
