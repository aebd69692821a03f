"""Memory tools: remember, recall, forget, and write_continuity, acting as the member.

What ``recall`` returns goes to the model only; nothing recalled is written back
as a new memory.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from accord.agent.tools.base import Tool, ToolArgs, ToolContext, dumps
from accord.errors import UserError
from accord.memory import Memory
from accord.types import MemoryType, NewMemory


def _memory(ctx: ToolContext) -> Memory:
    if ctx.team is None:
        raise UserError("memory needs a team")
    return ctx.team.memory


class RememberArgs(ToolArgs):
    type: Literal["decision", "insight", "observation", "story"] = Field(
        description="decision (can be superseded), insight (changes how we work), observation "
        "(a pattern; repeats strengthen it), story (context, never recalled by search)"
    )
    text: str = Field(description="one self-contained statement, understandable later")
    tags: list[str] = Field(default_factory=list)
    supersedes: int | None = Field(default=None, description="id of the decision this replaces")
    scope: Literal["team", "project", "me"] = Field(
        default="team", description="who should see it: the team, every team, or only you"
    )


def remember(ctx: ToolContext, a: RememberArgs) -> str:
    scope = f"member:{ctx.member}" if a.scope == "me" else a.scope
    entry, reinforced = _memory(ctx).remember(
        NewMemory(
            MemoryType(a.type),
            a.text,
            tuple(a.tags),
            scope,
            author=ctx.member,
            task_id=next(iter(sorted(ctx.claims)), None),
            supersedes=a.supersedes,
        )
    )
    if reinforced:
        return f"already known as memory {entry.id}; now noted {entry.count} times"
    linked = f", superseding {a.supersedes}" if a.supersedes else ""
    return f"remembered as {entry.type.value} {entry.id}{linked}"


class RecallArgs(ToolArgs):
    query: str
    k: int = Field(default=5, ge=1, le=20)


def recall(ctx: ToolContext, a: RecallArgs) -> str:
    found = _memory(ctx).recall(a.query, member=ctx.member, k=a.k)
    if not found:
        return "nothing remembered matches"
    return "\n".join(
        f"[{r.entry.id}] {r.entry.type.value} (score {r.score:.2f}): {r.entry.text}" for r in found
    )


class ForgetArgs(ToolArgs):
    id: int


def forget(ctx: ToolContext, a: ForgetArgs) -> str:
    entry = _memory(ctx).forget(a.id, ctx.member)
    return f"memory {entry.id} is retired (kept, never recalled)"


class ContinuityArgs(ToolArgs):
    text: str = Field(
        description="first person, a few hundred words at most: what you were doing, what is "
        "open, what you know about working with your teammates and the person"
    )


def write_continuity(ctx: ToolContext, a: ContinuityArgs) -> str:
    note = _memory(ctx).write_continuity(ctx.member, a.text)
    ctx.wrote_continuity = True
    return f"continuity note saved (version {note.version}); you will read it first next time"


MEMORY_TOOLS: list[Tool[Any]] = [
    Tool(
        "remember",
        "Keep a decision, insight, observation or story for later sessions.",
        RememberArgs,
        remember,
    ),
    Tool(
        "recall", "Search what the team remembers, best first.", RecallArgs, recall, read_only=True
    ),
    Tool("forget", "Retire a memory that is wrong or no longer true.", ForgetArgs, forget),
    Tool(
        "write_continuity",
        "Rewrite your own continuity note for your next session.",
        ContinuityArgs,
        write_continuity,
    ),
]

__all__ = ["MEMORY_TOOLS", "dumps"]
