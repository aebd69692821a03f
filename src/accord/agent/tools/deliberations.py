"""Deliberation tools: a participant's position, reading, replies, agreement and the
synthesis, as the member and nobody else (``ToolContext.member``); and the lead's
``deliberate``, which puts a question to members and returns at once (the answer comes
back by mail)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from accord.agent.tools.base import Tool, ToolArgs, ToolContext
from accord.agent.tools.team import _team
from accord.team.deliberations import PHASE_SECONDS
from accord.types import Deliberation, DeliberationPhase

_ID = "The deliberation's id (from the mail that asked you)."


def _state(d: Deliberation) -> str:
    if d.phase.value == "exchange":
        return f"deliberation {d.id} is in exchange round {d.round} of {d.rounds}"
    if d.phase.value == "synthesis":
        return f"deliberation {d.id} is in synthesis, written by {d.lease_holder}"
    return f"deliberation {d.id} is in its {d.phase.value} phase"


class PositionArgs(ToolArgs):
    deliberation_id: int = Field(ge=1, description=_ID)
    position: str = Field(min_length=1, description="Your position, with its evidence.")


def position_submit(ctx: ToolContext, args: PositionArgs) -> str:
    d = _team(ctx).deliberations.submit(
        args.deliberation_id, ctx.member, args.position, phase=DeliberationPhase.POSITIONS
    )
    return f"submitted; {_state(d)}"


class IdArgs(ToolArgs):
    deliberation_id: int = Field(ge=1, description=_ID)


def positions_read(ctx: ToolContext, args: IdArgs) -> str:
    team = _team(ctx)
    got = team.deliberations.read(args.deliberation_id, ctx.member)
    d = team.deliberations.get(args.deliberation_id)
    lines = [f"{d.question} ({_state(d)})"]
    lines += [
        f"[{'position' if p.round == 0 else f'round {p.round}'}] {p.member}: {p.body}" for p in got
    ]
    return "\n".join(lines)


class ReplyArgs(ToolArgs):
    deliberation_id: int = Field(ge=1, description=_ID)
    reply: str = Field(min_length=1, description="Your answer to the others' positions.")


def exchange_reply(ctx: ToolContext, args: ReplyArgs) -> str:
    d = _team(ctx).deliberations.submit(
        args.deliberation_id, ctx.member, args.reply, phase=DeliberationPhase.EXCHANGE
    )
    return f"replied; {_state(d)}"


def agree(ctx: ToolContext, args: IdArgs) -> str:
    d = _team(ctx).deliberations.agree(args.deliberation_id, ctx.member)
    return f"agreed; {_state(d)}"


class SynthesisArgs(ToolArgs):
    deliberation_id: int = Field(ge=1, description=_ID)
    answer: str = Field(min_length=1, description="The one answer to the question.")
    agreement: str = Field(default="", description="What the participants agreed on.")
    dissent: str = Field(default="", description="Who disagreed, on what; empty if nobody.")


def synthesis_submit(ctx: ToolContext, args: SynthesisArgs) -> str:
    d = _team(ctx).deliberations.synthesize(
        args.deliberation_id,
        ctx.member,
        args.answer,
        agreement=args.agreement,
        dissent=args.dissent,
    )
    return f"answer recorded as decision memory {d.memory_id}; the asker has it by mail"


class DeliberateArgs(ToolArgs):
    question: str = Field(min_length=1, description="The question, with what is at stake.")
    members: list[str] = Field(default=[], description="Who deliberates, by name.")
    role: str | None = Field(
        default=None, description="Or: every member of this role or agent definition."
    )
    rounds: int = Field(default=1, ge=0, le=10, description="Exchange rounds at most.")
    synthesizer: str | None = Field(default=None, description="Who writes the answer.")
    supersedes: int | None = Field(
        default=None, description="An earlier decision memory this answer replaces."
    )
    tags: list[str] = Field(
        default=[], description="Topics it is about (like db or api), for the team's patterns."
    )
    phase_seconds: float = Field(
        default=PHASE_SECONDS, gt=0, description="Each phase's deadline, in seconds."
    )


def deliberate(ctx: ToolContext, args: DeliberateArgs) -> str:
    d = _team(ctx).deliberations.ask(
        args.question,
        ctx.member,
        members=args.members,
        role=args.role,
        rounds=args.rounds,
        synthesizer=args.synthesizer,
        supersedes=args.supersedes,
        tags=args.tags,
        phase_seconds=args.phase_seconds,
    )
    return (
        f"opened deliberation {d.id} in {d.channel} with "
        f"{', '.join(p.member for p in d.participants)}; the answer comes to you by mail"
    )


DELIBERATION_TOOLS: list[Tool[Any]] = [
    Tool(
        "position_submit",
        "Submit your own position in a deliberation, before reading anyone else's.",
        PositionArgs,
        position_submit,
    ),
    Tool(
        "positions_read",
        "Read a deliberation's positions and replies (only once you submitted yours).",
        IdArgs,
        positions_read,
    ),
    Tool(
        "exchange_reply",
        "Reply to the others' positions in the deliberation's current exchange round.",
        ReplyArgs,
        exchange_reply,
    ),
    Tool("agree", "Agree during a deliberation's exchange: you reply no more.", IdArgs, agree),
    Tool(
        "synthesis_submit",
        "Write a deliberation's one answer, with agreement and dissent.",
        SynthesisArgs,
        synthesis_submit,
    ),
]

DELIBERATE_TOOL: Tool[Any] = Tool(
    "deliberate",
    "Put a question to several members in enforced phases; one answer comes back by mail.",
    DeliberateArgs,
    deliberate,
)
