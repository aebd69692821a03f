"""What a member sees: its system prompt, a fresh context per task, mail as turns, compaction.

Each task starts a new *session*: the agent definition's prompt and the
member's identity as the system prompt, then one user turn with the task, the
results of the tasks that blocked it, and the mail that waited. The
conversation is rebuilt from the transcript on restart, so a restarted member
continues exactly where it was.

When a conversation nears the model's window it is compacted: the middle turns
are folded into a summary of what was done, cutting only before an assistant
turn so every tool call stays with its result, and the team's current state is
put back in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from accord.agent.definition import AgentDefinition
from accord.llm.base import ChatMessage, ToolCall, ToolResult
from accord.team import Team
from accord.team.mailbox import sender_attrs
from accord.types import Message, MessageKind, Task, TaskStatus, TranscriptEntry, TranscriptKind

COMPACT_AT = 0.75  # fraction of the context window that triggers compaction
KEEP_RECENT = 6  # turns kept verbatim at the end when compacting
MAX_REPLY_CHARS = 200_000  # of one reply's text or one call's arguments, kept in the transcript


SKILLS_HEADING = "# Skills you can load"


def skills_section(definition: AgentDefinition, services: Team) -> str:
    """The skills the member may load, by name and description (the bodies come only
    with use_skill); empty when there are none."""
    listed = services.skills.listing(definition.skills)
    if not listed:
        return ""
    return (
        f"\n\n{SKILLS_HEADING}\n"
        "Each is a procedure the team keeps. When one fits what you are doing, load it with "
        "use_skill NAME and follow it. When a skill proved wrong or incomplete, revise it with "
        "revise_skill and the evidence; write_skill keeps a new procedure that worked.\n"
        f"{listed}"
    )


def system_prompt(definition: AgentDefinition, services: Team, member: str) -> str:
    me = services.roster.get(member)
    others = [m for m in services.roster.list() if m.name != member]
    roster = "\n".join(f"- {m.name} ({m.role.value}, {m.status.value})" for m in others)
    return (
        f"{definition.prompt}\n\n"
        f"# Who you are\n"
        f'You are {member}, the {me.role.value} of team "{services.team}" (agent definition '
        f'"{definition.name}"). Your tools act as you; you cannot act as anyone else.\n'
        f"Your plain-text replies are seen by nobody: to tell a teammate something, use "
        f"send_message. Messages from teammates arrive as <message> blocks; they come from "
        f"other agents, not from the user.\n\n"
        f"# Your team\n{roster or '- nobody else yet'}\n\n"
        f"# How you work\n"
        f"Work on the task you hold. When it is done and checked, call task_complete with a "
        f"short result (what you did, where, how you checked it). If you cannot do it, call "
        f"task_fail with the reason. A completion may be refused by the project's checks: "
        f"read the feedback, fix the problem, and complete again."
    ) + skills_section(definition, services)


PLAN_FIRST = (
    "Before you change anything, read what you need and send your plan to the lead with "
    "send_plan. Until the lead approves it you can only read; if the lead rejects it, revise "
    "the plan with its feedback and send it again."
)


def task_opening(services: Team, task: Task) -> str:
    lines = [f"# Your task #{task.id}: {task.title}"]
    if task.description:
        lines += ["", task.description]
    done = []
    for blocker_id in task.blocked_by:
        b = services.board.get(blocker_id)
        if b.status == TaskStatus.COMPLETED:
            done.append(f"- #{b.id} {b.title} (by {b.owner}): {b.result or 'no result given'}")
    if done:
        lines += ["", "## Results of the tasks this one waited on", *done]
    lines += ["", "You hold this task now. Begin."]
    return "\n".join(lines)


def owned_note(message: Message, member: str | None, owners: Mapping[int, str]) -> str:
    """What a member reads under a routed message: that it owns it (and answers it), or
    who does (and that it does not answer it); nothing for a message not routed."""
    owner = owners.get(message.id)
    if owner is None:
        return ""
    if owner == member:
        return (
            "\n(routed: you own this message; you are the one to answer it, with "
            f"reply_to={message.id}, or route_release it if you cannot)"
        )
    return f"\n(routed: owned by {owner}; leave the answer to {owner})"


def mail_text(
    message: Message, member: str | None = None, owners: Mapping[int, str] | None = None
) -> str:
    attrs = f'id="{message.id}" {sender_attrs(message)} kind="{message.kind.value}"'
    owned = owned_note(message, member, owners or {})
    if owned:
        attrs += f' owner="{(owners or {})[message.id]}"'
    if message.summary:
        attrs += f" summary={json.dumps(message.summary)}"
    if message.request_id:
        attrs += f' request_id="{message.request_id}"'
    if message.broadcast:
        attrs += ' to="*"'
    if message.channel:
        attrs += f' channel="{message.channel}"'
    note = ""
    if message.kind == MessageKind.SHUTDOWN_REQUEST:
        note = "\n(shutdown request: the runtime answers this for you)"
    return f"<message {attrs}>\n{message.body}{note}{owned}\n</message>"


CHANNEL_HEADING = "# Unread channel posts (reply in the channel with channel_post)"


def inbox_text(
    mail: Sequence[Message],
    interrupted: str,
    member: str | None = None,
    owners: Mapping[int, str] | None = None,
) -> str:
    """Mail as one user turn: direct mail first, then channel posts in a section of their
    own, so a member tells what was said to it from what was said in a channel. A routed
    message (``owners``: its owner by message id) says who owns it."""
    owners = owners or {}
    direct = [
        interrupted if m.kind == MessageKind.INTERRUPT else mail_text(m, member, owners)
        for m in mail
        if m.channel is None
    ]
    posts = [
        f'<post id="{m.id}" channel="{m.channel}" {sender_attrs(m)}>\n{m.body}'
        f"{owned_note(m, member, owners)}\n</post>"
        for m in mail
        if m.channel is not None
    ]
    if posts:
        direct.append("\n\n".join([CHANNEL_HEADING, *posts]))
    return "\n\n".join(direct)


@dataclass
class Conversation:
    """The live conversation of one session, and how to rebuild it from the transcript.

    ``seqs`` holds each message's transcript sequence number (None for the summary
    a compaction put in), so a later compaction can say exactly what it kept.
    """

    session: int
    task_id: int | None
    messages: list[ChatMessage]
    seqs: list[int | None]

    def add(self, message: ChatMessage, seq: int | None) -> None:
        self.messages.append(message)
        self.seqs.append(seq)

    @staticmethod
    def rebuild(entries: Sequence[TranscriptEntry]) -> Conversation | None:
        """The conversation of a session from its saved entries (None if it ended)."""
        if not entries:
            return None
        conv = Conversation(entries[-1].session, None, [], [])
        for e in entries:
            if e.kind == TranscriptKind.SESSION:
                if e.body.get("event") == "end":
                    return None
                conv.task_id = e.task_id
            elif e.kind == TranscriptKind.MESSAGE:
                conv.add(ChatMessage.from_dict(e.body), e.seq)
            elif e.kind == TranscriptKind.COMPACTION:
                kept_from = int(e.body["kept_from_seq"])
                head = ChatMessage.from_dict(e.body["head"])
                kept = [
                    (m, q)
                    for m, q in zip(conv.messages, conv.seqs, strict=True)
                    if q is not None and q >= kept_from
                ]
                conv.messages = [head, ChatMessage("user", e.body["summary"])]
                conv.seqs = [conv.seqs[0] if conv.seqs else None, None]
                for m, q in kept:
                    conv.add(m, q)
        return conv

    def unanswered_calls(self) -> list[ToolResult]:
        """Results for tool calls the process died during: reported as interrupted."""
        if not self.messages or self.messages[-1].role != "assistant":
            return []
        return [
            ToolResult(
                c.id,
                c.name,
                "interrupted: the process stopped while this tool call was running; its "
                "effects may be partial. Check the current state before doing it again.",
                is_error=True,
            )
            for c in self.messages[-1].tool_calls
        ]


def merged(messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
    """Adjacent turns of one role joined into one (tool results first), as APIs expect."""
    out: list[ChatMessage] = []
    for m in messages:
        if out and out[-1].role == m.role:
            prev = out[-1]
            text = "\n\n".join(t for t in (prev.text, m.text) if t)
            out[-1] = ChatMessage(
                m.role,
                text,
                prev.tool_calls + m.tool_calls,
                prev.tool_results + m.tool_results,
                prev.thinking + m.thinking,
            )
        else:
            out.append(m)
    return tuple(out)


def compaction_cut(messages: Sequence[ChatMessage], keep_recent: int = KEEP_RECENT) -> int | None:
    """Index of the first kept message: an assistant turn, leaving the head and at least
    one turn to fold. None when there is nothing worth folding."""
    start = max(2, len(messages) - keep_recent)
    for i in range(start, len(messages)):
        if messages[i].role == "assistant":
            return i
    for i in range(start - 1, 1, -1):
        if messages[i].role == "assistant":
            return i
    return None


def summarise(folded: Sequence[ChatMessage], team_state: str) -> str:
    """A plain, deterministic account of the folded turns: every tool call with its outcome."""
    results = {r.call_id: r for m in folded for r in m.tool_results}
    lines = ["[Earlier turns of this session were folded to save context. What happened:]"]
    for m in folded:
        if m.role == "assistant":
            if m.text:
                lines.append(f"- you said: {_clip(m.text, 300)}")
            for c in m.tool_calls:
                r = results.get(c.id)
                args = _clip(json.dumps(c.arguments) if c.arguments else c.raw_arguments, 160)
                outcome = (
                    "no result"
                    if r is None
                    else ("ERROR " if r.is_error else "") + _clip(r.content, 200)
                )
                lines.append(f"- {c.name}({args}) -> {outcome}")
        elif m.text:
            lines.append(f"- you were told: {_clip(m.text, 300)}")
    lines += ["", "[The team now:]", team_state]
    return "\n".join(lines)


def team_state(services: Team, member: str) -> str:
    tasks = services.board.list()
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.status.value] = counts.get(t.status.value, 0) + 1
    held = [f"#{t.id} {t.title}" for t in tasks if t.status == "in_progress" and t.owner == member]
    members = services.roster.list()
    return "\n".join(
        [
            "board: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "empty"),
            "you hold: " + (", ".join(held) or "nothing"),
            "members: " + ", ".join(f"{m.name} ({m.status.value})" for m in members),
        ]
    )


def cap_reply(message: ChatMessage, limit: int = MAX_REPLY_CHARS) -> tuple[ChatMessage, int]:
    """The reply with its text and each call's arguments cut to ``limit`` characters,
    and how many characters were cut. A runaway reply of megabytes would otherwise be
    saved, then re-sent whole on every later call of the session."""
    cut = 0
    text = message.text
    if len(text) > limit:
        cut += len(text) - limit
        text = (
            text[:limit] + f"\n\n[accord cut this reply here: it was {len(message.text):,} "
            f"characters, only the first {limit:,} are kept]"
        )
    calls: list[ToolCall] = []
    for c in message.tool_calls:
        raw = c.raw_arguments
        if len(raw) > limit:
            cut += len(raw) - limit
            # Cut arguments are no longer the model's: the call fails and says why.
            c = ToolCall(c.id, c.name, None, raw[:limit] + f" [cut: {len(raw):,} characters]")
        calls.append(c)
    if not cut:
        return message, 0
    return ChatMessage(
        message.role, text, tuple(calls), message.tool_results, message.thinking
    ), cut


def call_signature(message: ChatMessage) -> str | None:
    """What an assistant turn asked for, to notice the same calls over and over."""
    if not message.tool_calls:
        return None
    return json.dumps(
        [[c.name, c.arguments if c.arguments is not None else c.raw_arguments]
         for c in message.tool_calls],
        sort_keys=True,
    )  # fmt: skip


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
