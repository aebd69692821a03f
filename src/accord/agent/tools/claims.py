"""File claims: a member says which paths it is changing for a task, so that others
sharing its folder do not write them meanwhile.

``claim_files`` claims paths or globs for a task the member holds, and
``release_files`` gives them up early; the claim's fencing token comes from
``ToolContext.claims`` and never reaches the model. The
claim is advisory: accord's own file tools (write_file, edit_file) refuse another
member's write to a claimed path, naming the holder and its task; bash is not
checked. Claims end by themselves with the task (completed, failed, released,
cancelled) or when its lease runs out.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from accord.agent.tools.base import HeldClaim, Tool, ToolArgs, ToolContext
from accord.agent.tools.team import held_claim
from accord.errors import ClaimError, UserError
from accord.team import Team

_GLOB = frozenset("*?[")


def _team(ctx: ToolContext) -> Team:
    if ctx.team is None:
        raise UserError("this agent runs without a team, so files cannot be claimed")
    return ctx.team


class ClaimFilesArgs(ToolArgs):
    patterns: list[str] = Field(
        min_length=1,
        description="Paths or globs relative to the project root, e.g. 'src/api.py' or "
        "'src/api/**' ('**' spans folders, '*' stays within one name). A folder "
        "means everything in it.",
    )
    task_id: int | None = Field(
        default=None,
        description="The task you hold that the claim is for; may be left out when you "
        "hold exactly one.",
    )


def _task(ctx: ToolContext, task_id: int | None) -> HeldClaim:
    if task_id is None:
        if len(ctx.claims) == 1:
            return next(iter(ctx.claims.values()))
        if not ctx.claims:
            raise ClaimError(
                "you hold no task; claim one with task_claim first: files are claimed for a "
                "task you hold, and the claim ends with it"
            )
        several = ", ".join(f"#{i}" for i in sorted(ctx.claims))
        raise UserError(f"you hold several tasks ({several}); say which with task_id")
    return held_claim(ctx, task_id, "claim files for")


def _as_folder(ctx: ToolContext, pattern: str) -> str:
    """A plain path naming a folder of the workspace means everything in it."""
    text = pattern.strip()
    if _GLOB & set(text) or not text or text.startswith(("/", "~")) or ".." in text.split("/"):
        return pattern  # the store judges it (and words what is wrong)
    root = ctx.workspace.resolve()
    try:
        folder = (root / text).resolve()
    except (RuntimeError, OSError):
        return pattern
    if folder != root and folder.is_relative_to(root) and folder.is_dir():
        return text.rstrip("/") + "/"
    return pattern


def claim_files(ctx: ToolContext, args: ClaimFilesArgs) -> str:
    held = _task(ctx, args.task_id)
    patterns = [_as_folder(ctx, p) for p in args.patterns]
    try:
        claims = _team(ctx).board.claim_files(held.task_id, ctx.member, held.token, patterns)
    except ClaimError:
        ctx.claims.pop(held.task_id, None)  # the task claim is gone; the store says how
        raise
    shown = ", ".join(c.pattern for c in claims)
    return (
        f"task #{held.task_id} now claims: {shown}. Other members' write_file and "
        "edit_file on these paths are refused until the task ends (bash is not checked)."
    )


class ReleaseFilesArgs(ToolArgs):
    patterns: list[str] | None = Field(
        default=None,
        description="The patterns to give up, as you claimed them; leave out to give up "
        "every file claim of the task.",
    )
    task_id: int | None = Field(
        default=None,
        description="The task the claim is for; may be left out when you hold exactly one.",
    )


def release_files(ctx: ToolContext, args: ReleaseFilesArgs) -> str:
    held = _task(ctx, args.task_id)
    try:
        left = _team(ctx).board.release_files(held.task_id, ctx.member, held.token, args.patterns)
    except ClaimError:
        ctx.claims.pop(held.task_id, None)
        raise
    still = ", ".join(c.pattern for c in left) if left else "nothing"
    return f"released; task #{held.task_id} now claims: {still}"


CLAIM_TOOLS: list[Tool[Any]] = [
    Tool(
        "claim_files",
        "Claim paths or globs (relative to the project root, e.g. 'src/api/**') for a task "
        "you hold, so that other members' write_file and edit_file refuse to change them "
        "until the task ends or its lease runs out. Claim before you edit files others may "
        "touch. Advisory: commands run with bash are not checked. Claiming a path another "
        "member holds is refused with its holder's name: message them, or work elsewhere.",
        ClaimFilesArgs,
        claim_files,
    ),
    Tool(
        "release_files",
        "Give up file claims of a task you hold before it ends (all of them if no "
        "patterns are given), so others may write those paths. Claims end by themselves "
        "when the task does.",
        ReleaseFilesArgs,
        release_files,
    ),
]
