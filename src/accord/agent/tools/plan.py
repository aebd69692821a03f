"""Plan approval: a member whose definition sets ``plan_required`` works read-only
until the lead approves the plan it sends with ``send_plan``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from accord.agent.tools.base import Tool, ToolArgs, ToolContext
from accord.errors import UserError
from accord.types import MessageKind


class PlanArgs(ToolArgs):
    plan: str = Field(description="what you will change and how you will check it, step by step")


def send_plan(ctx: ToolContext, a: PlanArgs) -> str:
    svc = ctx.team
    if svc is None:
        raise UserError("send_plan needs a team")
    run = svc.runs.get()
    if run is None:
        raise UserError("there is no lead to approve a plan: this team has no run")
    if not a.plan.strip():
        raise UserError("the plan is empty; say what you will do")
    (sent,) = svc.mailbox.send(
        ctx.member, run.lead, a.plan, kind=MessageKind.PLAN_APPROVAL_REQUEST, summary="plan"
    )
    return (
        f"plan sent to {run.lead} (request {sent.request_id}). End your turn now; you will "
        "be woken with the answer. Until it is approved you can only read."
    )


PLAN_TOOLS: list[Tool[Any]] = [
    Tool("send_plan", "Send your plan to the lead for approval.", PlanArgs, send_plan),
]

# What a member may use while its plan waits for approval.
PLANNING_ALLOWED = (
    "read_file",
    "list_files",
    "glob",
    "grep",
    "task_list",
    "task_get",
    "list_members",
    "send_message",
    "send_plan",
)
