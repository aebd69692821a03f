"""The lead's tools: spawn teammates, ask them to stop, approve plans, read the digest, finish.

Spawning writes a request to the store; the supervisor (not an LLM) starts the
process. A second request for a live name is refused here, so a teammate is
never started twice. The first instructions go into the new member's mailbox,
where they wait until it reads them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from accord.agent.definition import AgentDefinition, find_definition
from accord.agent.model_choice import check_model, model_alias, model_name_for
from accord.agent.tools.base import Tool, ToolArgs, ToolContext
from accord.agent.tools.deliberations import DELIBERATE_TOOL
from accord.agent.tools.skills import SKILL_REVIEW_TOOL
from accord.config import Config, locate
from accord.errors import UnknownMember, UserError
from accord.team import Team
from accord.team.roster import hash_token, new_token
from accord.types import MemberRole, MessageKind, RunSettings, RunStatus, check_name


def _team(ctx: ToolContext) -> Team:
    if ctx.team is None:
        raise UserError("this tool needs a team")
    return ctx.team


class SpawnArgs(ToolArgs):
    name: str = Field(description="the teammate's name: lowercase letters, digits, - and _")
    instructions: str = Field(description="its first instructions: what to do and why")
    agent: str | None = Field(
        default=None, description="an agent definition from .accord/agents or .claude/agents"
    )
    model: str | None = Field(default=None, description="PROVIDER:MODEL, if not the default")
    host: str | None = Field(
        default=None,
        description="run it only on this host (a supervisor's --host name); by default it "
        "runs wherever a supervisor has room, and moves if that host is lost",
    )


def spawn_teammate(ctx: ToolContext, a: SpawnArgs) -> str:
    svc = _team(ctx)
    check_name(a.name, "teammate name")
    run = svc.runs.get()
    if run is None:
        raise UserError("spawning needs a team run, and this team has none; a person starts one")
    definition = find_definition(ctx.root, a.agent)
    # The model it will run is opened now, so a bad name or a missing key is this tool's
    # error, not a teammate that cannot start.
    config = locate(ctx.root, must_exist=False).config
    chosen = _model_for(svc, config, run.lead, a.name, model_alias(a.model), definition)
    try:
        check_model(chosen, config)
    except UserError as e:
        raise UserError(
            f"{a.name} could not use model {chosen}: {e}; pass another model (PROVIDER:MODEL)"
        ) from None
    if a.host is not None:
        check_name(a.host, "host name")
    limit = run.settings.max_teammates
    teammates = [n for n in run.wanted if n != run.lead]
    if limit is not None and a.name not in teammates and len(teammates) >= limit:
        raise UserError(
            f"the team already has {len(teammates)} teammates ({', '.join(teammates)}), the "
            f"most this run allows; give work to one of them instead"
        )
    spawn = svc.runs.request_spawn(
        a.name,
        token_hash=hash_token(new_token()),
        agent=a.agent,
        model=model_alias(a.model),  # none: its definition's, or the run's default
        host=a.host,
        requested_by=ctx.member,
    )
    svc.mailbox.send(ctx.member, a.name, a.instructions, summary="first instructions")
    return (
        f"{a.name} will be started (request {spawn.id}); your instructions are in its "
        "mailbox. Put tasks on the board (task_create, with assignee if only it should "
        "take them) and it will claim them."
    )


def _model_for(
    svc: Team,
    config: Config,
    lead: str,
    name: str,
    model: str | None,
    definition: AgentDefinition,
) -> str:
    run = svc.runs.get()
    settings = run.settings if run is not None else RunSettings()
    try:
        own = svc.roster.get(name).model
    except UnknownMember:
        own = None
    return model_name_for(
        definition,
        model or own,
        None,
        config,
        teammate_default=settings.teammate_model,
        lead_model=svc.roster.get(lead).model,
    )


class ShutdownArgs(ToolArgs):
    member: str
    reason: str = "the work is done"
    allow_refusal: bool = Field(default=False, description="let it refuse while mid-task")


def request_shutdown(ctx: ToolContext, a: ShutdownArgs) -> str:
    svc = _team(ctx)
    body = a.reason + (" (allow_refusal)" if a.allow_refusal else "")
    (sent,) = svc.mailbox.send(
        ctx.member, a.member, body, kind=MessageKind.SHUTDOWN_REQUEST, summary="please stop"
    )
    return (
        f"shutdown requested of {a.member} (request {sent.request_id}); it answers after "
        "its current step"
    )


class PlanArgs(ToolArgs):
    message_id: int = Field(description="the id of the plan_approval_request message")
    approve: bool
    feedback: str = ""


def approve_plan(ctx: ToolContext, a: PlanArgs) -> str:
    svc = _team(ctx)
    request = svc.mailbox.get(a.message_id)
    body = "approved" if a.approve else "rejected"
    if a.feedback:
        body += f": {a.feedback}"
    svc.mailbox.send(
        ctx.member,
        request.sender,
        body,
        kind=MessageKind.PLAN_APPROVAL_RESPONSE,
        reply_to=a.message_id,
    )
    return f"plan of {request.sender} {body}"


class PermissionArgs(ToolArgs):
    message_id: int = Field(description="the id of the permission_request message")
    allow: bool = Field(description="true: the teammate's tool call runs; false: it is denied")
    reason: str = Field(default="", description="why, told to the teammate (say it on a deny)")


def answer_permission(ctx: ToolContext, a: PermissionArgs) -> str:
    from accord.team.permits import Permits

    answer = Permits(_team(ctx)).answer(a.message_id, ctx.member, allowed=a.allow, reason=a.reason)
    ask = Permits(_team(ctx)).get(a.message_id)
    verb = "allowed" if answer.allowed else "denied"
    return f"{verb} {ask.member}'s use of {ask.tool} (permission request {a.message_id})"


class NoArgs(ToolArgs):
    pass


def team_digest(ctx: ToolContext, a: NoArgs) -> str:
    svc = _team(ctx)
    return svc.digest(0, ctx.member).text


class FinishArgs(ToolArgs):
    summary: str = Field(description="what the team did, for the person who asked")


def finish(ctx: ToolContext, a: FinishArgs) -> str:
    svc = _team(ctx)
    if not a.summary.strip():
        raise UserError("finish needs a summary of what was done")
    run = svc.runs.get()
    if run is not None and run.status == RunStatus.FINISHED:
        raise UserError(
            f"the run is finished already ({run.summary or 'no summary'}); end your turn"
        )
    svc.runs.update(status=RunStatus.FINISHED, summary=a.summary, actor=ctx.member)
    return "the run is finished; the supervisor stops the team"


class AssignArgs(ToolArgs):
    message_id: int = Field(description="the routed message (or any of its copies)")
    to: str = Field(description="the member who should own it and answer it")


def route_assign(ctx: ToolContext, a: AssignArgs) -> str:
    """Give a routed message to the member who should answer it, whoever owns it now."""
    route = _team(ctx).routing().take(a.message_id, check_name(a.to, "member"), by=ctx.member)
    return f"message #{a.message_id} is now owned by {route.owner}"


LEAD_TOOLS: list[Tool[Any]] = [
    Tool(
        "spawn_teammate",
        "Start a new teammate (its own process) with first instructions.",
        SpawnArgs,
        spawn_teammate,
    ),
    Tool(
        "request_shutdown",
        "Ask a teammate to stop after its current step.",
        ShutdownArgs,
        request_shutdown,
    ),
    Tool(
        "approve_plan",
        "Approve or reject a teammate's plan (a plan_approval_request).",
        PlanArgs,
        approve_plan,
    ),
    Tool(
        "answer_permission",
        "Allow or deny a teammate's paused tool call (a permission_request sent to you).",
        PermissionArgs,
        answer_permission,
    ),
    Tool(
        "team_digest",
        "The board, recent changes and the team, in brief.",
        NoArgs,
        team_digest,
        read_only=True,
    ),
    Tool(
        "route_assign",
        "Make a member the one owner of a routed message (it answers it; others leave it).",
        AssignArgs,
        route_assign,
    ),
    DELIBERATE_TOOL,
    SKILL_REVIEW_TOOL,
    Tool("finish", "End the run with a summary, once the goal is met.", FinishArgs, finish),
]

LEAD_ROLE = MemberRole.LEAD
