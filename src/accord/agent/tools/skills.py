"""Skill tools: load a skill the member's context lists, write a new one, revise one with
the evidence for the change, and (the lead) review a pending revision.

A member's system prompt lists each skill it may use by name and description; the body
(and the list of the files beside it) comes only when it calls ``use_skill``, which
records the use for the skill's outcomes. The member's agent definition may narrow the
skills it may use (``skills:``, kept in ``ToolContext.skills``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from accord.agent.tools.base import Tool, ToolArgs, ToolContext
from accord.agent.tools.team import _team
from accord.types import SkillStatus

_NAME = "The skill's name, like 'run-the-tests'."


class UseSkillArgs(ToolArgs):
    name: str = Field(description=_NAME)
    file: str | None = Field(
        default=None,
        description="A file beside the skill's SKILL.md (a path its listing shows) to read "
        "instead of the skill itself.",
    )


def use_skill(ctx: ToolContext, args: UseSkillArgs) -> str:
    skills = _team(ctx).skills
    if args.file is not None:
        return skills.read_file(args.name, args.file, ctx.skills)
    task_id = ctx.task_id
    if task_id is None and len(ctx.claims) == 1:  # a seat of the MCP server: its one claim
        task_id = next(iter(ctx.claims))
    loaded = skills.load(args.name, ctx.member, task_id, ctx.skills)
    s = loaded.skill
    kept = " (the version you loaded earlier in this task)" if loaded.pinned else ""
    lines = [
        f"# Skill {s.name} (v{s.version}, {s.origin.value}){kept}",
        s.description,
        "",
        loaded.body,
    ]
    if s.files:
        lines += [
            "",
            "Files beside it (read one with use_skill and file=PATH):",
            *(f"- {f}" for f in s.files),
        ]
    return "\n".join(lines)


class WriteSkillArgs(ToolArgs):
    name: str = Field(
        description="A new skill's name: lowercase letters, digits and '-', at most 64."
    )
    description: str = Field(
        min_length=1,
        max_length=1024,
        description="One line: what the skill does and when to use it.",
    )
    body: str = Field(min_length=1, description="The procedure, in Markdown: steps to follow.")


def write_skill(ctx: ToolContext, args: WriteSkillArgs) -> str:
    made = _team(ctx).skills.write(args.name, args.description, args.body, ctx.member)
    return f"wrote skill {made.name} (v{made.version}); teammates see it from their next task"


class ReviseSkillArgs(ToolArgs):
    name: str = Field(description=_NAME)
    body: str = Field(min_length=1, description="The whole new body (it replaces the old).")
    reason: str = Field(
        min_length=1,
        description="Why, naming the evidence: the task, failure or result that showed the "
        "current text fell short (like 'task #12 failed: step 3 ran the wrong test command').",
    )
    description: str | None = Field(
        default=None, max_length=1024, description="A new one-line description, if it changes."
    )


def revise_skill(ctx: ToolContext, args: ReviseSkillArgs) -> str:
    made = _team(ctx).skills.revise(
        args.name,
        args.body,
        args.reason,
        ctx.member,
        description=args.description,
        allowed=ctx.skills,
    )
    if made.status == SkillStatus.PENDING:
        return (
            f"revised skill {made.name}: v{made.version} waits for a review before it takes "
            f"effect (v{made.supersedes} stays current meanwhile)"
        )
    return f"revised skill {made.name}: v{made.version} takes effect from the next task"


class SkillReviewArgs(ToolArgs):
    name: str = Field(description=_NAME)
    version: int = Field(ge=1, description="The pending version to review.")
    approve: bool = Field(description="true: it takes effect; false: it is rejected.")
    reason: str = Field(default="", description="Why (required to reject).")


def skill_review(ctx: ToolContext, args: SkillReviewArgs) -> str:
    done = _team(ctx).skills.review(
        args.name, args.version, approve=args.approve, reviewer=ctx.member, reason=args.reason
    )
    verb = "approved: it is the current version" if args.approve else "rejected"
    return f"skill {done.name} v{done.version} {verb}"


SKILL_TOOLS: list[Tool[Any]] = [
    Tool(
        "use_skill",
        "Load a skill your instructions list (its procedure, and the files beside it); "
        "with file, read one of those files.",
        UseSkillArgs,
        use_skill,
        read_only=True,
    ),
    Tool(
        "write_skill",
        "Write a new skill: a named procedure teammates can load when they need it.",
        WriteSkillArgs,
        write_skill,
    ),
    Tool(
        "revise_skill",
        "Revise a skill with a better body, giving the evidence; every version is kept.",
        ReviseSkillArgs,
        revise_skill,
    ),
]

SKILL_REVIEW_TOOL: Tool[Any] = Tool(
    "skill_review",
    "Approve or reject a teammate's pending revision of a skill.",
    SkillReviewArgs,
    skill_review,
)
