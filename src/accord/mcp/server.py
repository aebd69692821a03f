"""The MCP server of one member: its tools, its resources, its prompt.

``Seat`` is the member being served: a ``ToolContext`` bound to it (its claims and
their fencing tokens live there, never in a tool's arguments or results), the
toolbox its agent definition allows, and a ``LeaseKeeper`` that heartbeats the
member and every claim it holds while the server runs. Each MCP tool turns
Claude Code's argument shape into a call of accord's own tool of that meaning
(``TaskCreate`` is ``task_create``, ``TaskUpdate {status: "completed"}`` is
``task_complete`` through the merge gate and the TaskCompleted hooks), so the
member's permission rules and the team's hooks apply exactly as they do for
accord's own agents. The tools with no Claude Code counterpart (channels, routed
messages, deliberations) keep accord's own names and arguments (``channel_post``,
``reply_to``), and run accord's tool of that name unchanged. A refusal comes back as a
tool error the client can act on, in the store's own words.

Work that may block (a hook, a wait for mail) runs in a worker thread, so one slow
call never holds up the server's other requests. Results are capped at
``RESULT_CHARS`` with a note saying where the whole text is.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.subscriptions import ResourceUpdated
from pydantic import Field

from accord.agent.definition import AgentDefinition, find_definition
from accord.agent.launch import gate_for, toolbox_for
from accord.agent.lead import LEAD
from accord.agent.tools.base import Toolbox, ToolContext
from accord.agent.tools.team import held_claim
from accord.config import Config
from accord.errors import AccordError, ClaimError
from accord.llm.base import ToolCall
from accord.team import Team
from accord.team.board import LeaseKeeper
from accord.types import MemberRole, Message, Task, TaskStatus, WakeReason

# A result longer than this is cut, with a note saying where it is whole.
RESULT_CHARS = 100_000
# One message body or task description is cut at this, so a batch of mail stays whole JSON.
BODY_CHARS = 16_000
# read_mail delivers at most this many messages a call: with BODY_CHARS, a result fits.
MAIL_BATCH = 5
# wait_for_work waits at most this long, whatever it is asked.
MAX_WAIT = 600.0
INBOX = "accord://inbox"
ENDED_REASON = "the MCP session ended before the task was completed"
BOARD = "accord://board"

T = TypeVar("T")

_CREATED = re.compile(r"created task #(\d+)")


def capped(text: str, whole: str, limit: int = RESULT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with a note naming where it is ``whole``."""
    if len(text) <= limit:
        return text
    return (
        f"{text[:limit]}\n[accord cut this here: it is {len(text):,} characters; "
        f"the whole text: {whole}]"
    )


# What accord's own tools say, in the names an MCP client has for them.
_OUR_NAMES = {
    "task_claim": 'TaskUpdate {status: "in_progress"}',
    "task_complete": 'TaskUpdate {status: "completed"}',
    "send_message": "SendMessage",
    "task_list": "TaskList",
    "task_get": "TaskGet",
}
_OUR_NAME = re.compile(r"\b(" + "|".join(_OUR_NAMES) + r")\b")


def mcp_words(text: str) -> str:
    """``text`` with accord's tool names as the MCP client knows them."""
    return _OUR_NAME.sub(lambda m: _OUR_NAMES[m.group(1)], text)


class Seat:
    """One member of one team as an MCP server serves it: its tools act as it alone."""

    def __init__(self, team: Team, member: str, project_root: Path, config: Config) -> None:
        self.team = team
        self.member = member
        record = team.roster.get(member)
        self.definition: AgentDefinition = (
            LEAD
            if record.role == MemberRole.LEAD and record.agent is None
            else find_definition(project_root, record.agent)
        )
        self.toolbox: Toolbox = toolbox_for(self.definition, lead=record.role == MemberRole.LEAD)
        root = project_root.resolve()
        # In worktree mode a member that has worked has its own worktree, where its
        # permission rules are anchored, as for accord's own agents.
        work = team.worktrees.workspace(member).resolve() if team.worktrees.has(member) else root
        self.ctx = ToolContext(
            workspace=work,
            member=member,
            team=team,
            project_root=root,
            skills=self.definition.skills,
        )
        self.ctx.permissions = gate_for(config, root, work, self.definition)
        self._calls = itertools.count(1)
        self._keeper: LeaseKeeper | None = None
        self._users = 0

    # the member's lease -----------------------------------------------------------

    def start(self) -> None:
        """Heartbeat the member and every claim it holds, from a thread, until the last
        ``stop`` (each session of the server starts and stops it once)."""
        self._users += 1
        if self._keeper is not None:
            return
        self._keeper = LeaseKeeper(
            self.team.board,
            self.member,
            lambda: [(h.task_id, h.token) for h in list(self.ctx.claims.values())],
            also=lambda: self.team.roster.heartbeat(self.member),
        ).start()

    def stop(self) -> None:
        """At the last session's end, stop the heartbeats and put back each task still
        held for another attempt (promise 2's way, without waiting out the lease): the
        tokens die with this server, so no later session could complete them."""
        self._users -= 1
        if self._users > 0 or self._keeper is None:
            return
        self._keeper.close(timeout=5)
        self._keeper = None
        for held in list(self.ctx.claims.values()):
            try:
                self.team.board.fail(
                    held.task_id, self.member, held.token, ENDED_REASON, retry=True
                )
            except AccordError:
                pass  # lost already, or the store is gone: the lease ends it either way
            self.ctx.claims.pop(held.task_id, None)

    # running accord's own tools ---------------------------------------------------

    def run(self, name: str, arguments: dict[str, Any]) -> str:
        """Accord's tool ``name``, as this member: its permission rules, hooks and caps
        apply; a refusal is a ToolError carrying what the tool said."""
        call = ToolCall(f"mcp-{next(self._calls)}", name, arguments, json.dumps(arguments))
        result = self.toolbox.execute(self.ctx, call)
        if result.is_error:
            raise ToolError(mcp_words(result.content))
        return mcp_words(result.content)

    def allowed(self, name: str) -> None:
        """ToolError unless this member's definition gives it accord's tool ``name``."""
        if name not in self.toolbox.tools:
            raise ToolError(
                f"{name} is not among your tools (agent definition {self.definition.name!r})"
            )

    def guarded(self, act: Callable[[], T]) -> T:
        """``act()``, with accord's errors as tool errors."""
        try:
            return act()
        except AccordError as e:
            from accord.agent.tools._advice import worded

            raise ToolError(mcp_words(worded(e))) from e

    # views ------------------------------------------------------------------------

    def board_view(self, status: str | None = None) -> list[dict[str, Any]]:
        tasks = self.team.board.list(status=TaskStatus(status) if status else None)
        return [
            {
                "id": t.id,
                "subject": t.title,
                "status": t.status.value,
                "owner": t.owner,
                "blockedBy": list(t.waiting_on),
                "ready": bool(t.ready) if t.status == TaskStatus.PENDING else False,
            }
            for t in tasks
        ]

    def task_view(self, task: Task) -> dict[str, Any]:
        whole = f"`accord task show {task.id} --json`"
        return {
            "id": task.id,
            "subject": task.title,
            "description": capped(task.description, whole, BODY_CHARS),
            "status": task.status.value,
            "owner": task.owner,
            "blockedBy": list(task.waiting_on),
            "attempts": task.attempts,
            "maxAttempts": task.max_attempts,
            "result": capped(task.result, whole, BODY_CHARS) if task.result else task.result,
            "reason": task.reason,
            "youHoldIt": task.id in self.ctx.claims,
        }

    def mail_view(self, messages: list[Message]) -> list[dict[str, Any]]:
        return [
            {
                "id": m.id,
                "from": m.sender,
                "kind": m.kind.value,
                "summary": m.summary,
                "message": capped(
                    m.body, f"`accord msg inbox --json` (message {m.id})", BODY_CHARS
                ),
                **({"to": "*"} if m.broadcast else {}),
            }
            for m in messages
        ]

    def instructions(self) -> str:
        note = self.team.memory.continuity(self.member)
        parts = [
            self.definition.prompt,
            f"# Who you are\nYou are {self.member} of team {self.team.name!r}. Your accord "
            "tools act as you and nobody else. Claim a task with TaskUpdate "
            '{status: "in_progress"}, finish it with TaskUpdate {status: "completed", result}; '
            "the project's checks may refuse a completion: fix what they say and complete "
            "again. When you have nothing to do, call wait_for_work.",
        ]
        if note is not None:
            parts.append(f"# Your continuity note (version {note.version})\n{note.text}")
        return "\n\n".join(p for p in parts if p)

    # task status changes ----------------------------------------------------------

    def give_back(self, task_id: int) -> str:
        held = held_claim(self.ctx, task_id, "give back")
        try:
            self.team.board.release(task_id, self.member, held.token, "given back by its holder")
        finally:
            self.ctx.claims.pop(task_id, None)
        return f"task #{task_id} is pending again; you no longer hold it"

    def fail(self, task_id: int, reason: str, retry: bool) -> str:
        self.allowed("task_fail")
        held = held_claim(self.ctx, task_id, "fail")
        try:
            task = self.team.board.fail(task_id, self.member, held.token, reason, retry=retry)
        except ClaimError:
            self.ctx.claims.pop(task_id, None)
            raise
        self.ctx.claims.pop(task_id, None)
        return f"task #{task.id} is {task.status.value}: {reason}"


def given(**args: Any) -> dict[str, Any]:
    """An accord tool's arguments: those the client gave (None and empty lists left
    out, so the tool's own defaults apply)."""
    return {k: v for k, v in args.items() if v is not None and v != []}


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


async def _threaded(fn: Callable[[], str]) -> str:
    # A hook or a merge may take minutes: never on the event loop.
    return await anyio.to_thread.run_sync(fn)


def build_server(seat: Seat) -> MCPServer[Any]:
    """The MCP server of ``seat``'s member: tools, the board and inbox resources, and the
    ``member`` prompt. Arguments are camelCase where Claude Code's tools name them so
    (``taskId``, ``blockedBy``): a client that knows those shapes needs no new ones."""
    bus = InMemorySubscriptionBus()

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[None]:
        seat.start()
        stop = threading.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_announce_mail, seat, bus, stop)
            try:
                yield None
            finally:
                stop.set()
                tg.cancel_scope.cancel()
                seat.stop()

    server: MCPServer[Any] = MCPServer(
        name="accord",
        instructions=f"accord: act as member {seat.member} of team {seat.team.name!r}",
        lifespan=lifespan,
        subscriptions=bus,
        log_level="WARNING",  # a refused call is the client's answer, not a log line
    )
    s = seat

    # the board ----------------------------------------------------------------

    @server.tool(
        name="TaskList",
        description="The team's board: id, subject, status, owner, "
        "blockedBy (open blockers) and ready, for each task.",
    )
    async def task_list(
        status: Literal["pending", "in_progress", "completed", "failed", "cancelled"] | None = None,
    ) -> str:
        def go() -> str:
            s.allowed("task_list")
            view = s.guarded(lambda: _dump({"tasks": s.board_view(status)}))
            return capped(view, "`accord task list --json`")

        return await _threaded(go)

    @server.tool(
        name="TaskGet",
        description="One task whole: subject, description, status, "
        "owner, blockedBy, attempts, result, reason.",
    )
    async def task_get(taskId: int) -> str:
        def go() -> str:
            s.allowed("task_get")
            return s.guarded(lambda: _dump(s.task_view(s.team.board.get(taskId))))

        return await _threaded(go)

    @server.tool(
        name="TaskCreate",
        description="Put a new task on the board, optionally "
        "blocked by other tasks (blockedBy) or meant for a member (owner).",
    )
    async def task_create(
        subject: str,
        description: str = "",
        blockedBy: list[int] | None = None,
        owner: str | None = None,
    ) -> str:
        def go() -> str:
            args: dict[str, Any] = {"title": subject, "description": description}
            if blockedBy:
                args["blocked_by"] = blockedBy
            if owner is not None:
                args["assignee"] = owner
            text = s.run("task_create", args)
            found = _CREATED.search(text)
            task_id = int(found.group(1)) if found else None
            warned = [line for line in text.splitlines() if line.startswith("warning:")]
            out: dict[str, Any] = {"task": {"id": task_id, "subject": subject}}
            if warned:
                out["warnings"] = warned
            return _dump(out)

        return await _threaded(go)

    @server.tool(
        name="TaskUpdate",
        description='status "in_progress" claims the task for you; "completed" completes a '
        "task you hold with its result (the project's checks may refuse it: fix what they say "
        'and complete again); "pending" gives your claim back. subject, description, owner '
        "and addBlockedBy change the task.",
    )
    async def task_update(
        taskId: int,
        status: Literal["in_progress", "completed", "pending"] | None = None,
        result: str | None = None,
        subject: str | None = None,
        description: str | None = None,
        owner: str | None = None,
        addBlockedBy: list[int] | None = None,
    ) -> str:
        def go() -> str:
            said: list[str] = []
            changes: dict[str, Any] = {"task_id": taskId}
            if subject is not None:
                changes["title"] = subject
            if description is not None:
                changes["description"] = description
            if owner is not None:
                changes["assignee"] = owner
            if addBlockedBy:
                changes["add_blockers"] = addBlockedBy
            if len(changes) > 1:
                said.append(s.run("task_update", changes))
            if status == "in_progress":
                text = s.run("task_claim", {"task_id": taskId})
                if taskId not in s.ctx.claims:
                    raise ToolError(text)
                said.append(f"you hold task #{taskId} now")
            elif status == "completed":
                done = result if result and result.strip() else "completed (no result given)"
                said.append(s.run("task_complete", {"task_id": taskId, "result": done}))
            elif status == "pending":
                said.append(s.guarded(lambda: s.give_back(taskId)))
            if not said:
                raise ToolError("nothing to change: give a status or a field to update")
            return capped("\n".join(said), f"`accord task show {taskId} --json`")

        return await _threaded(go)

    @server.tool(
        name="task_fail",
        description="Give up a task you hold, saying why it cannot "
        "be done; retry=true puts it back for another attempt.",
    )
    async def task_fail(taskId: int, reason: str, retry: bool = False) -> str:
        if not reason.strip():
            raise ToolError("task_fail needs a reason")
        return await _threaded(lambda: s.guarded(lambda: s.fail(taskId, reason, retry)))

    # mail -------------------------------------------------------------------------

    @server.tool(
        name="SendMessage",
        description="Send a message to a teammate by name, to "
        "'person' (the person you work for), or to every other member with '*'.",
    )
    async def send_message(
        to: str,
        message: str,
        summary: str | None = None,
        reply_to: int | None = None,
        route: bool = False,
        tags: list[str] | None = None,
    ) -> str:
        args = given(
            to=to, message=message, summary=summary, reply_to=reply_to, route=route, tags=tags
        )
        return await _threaded(lambda: s.run("send_message", args))

    @server.tool(
        name="route_release",
        description="Let go of a routed message you own and cannot answer: the next "
        "member gets it.",
    )
    async def route_release(message_id: int) -> str:
        return await _threaded(lambda: s.run("route_release", {"message_id": message_id}))

    @server.tool(
        name="answer_judge",
        description="Say whether the answer to a routed message you sent was good "
        "(accepted=true) or not.",
    )
    async def answer_judge(message_id: int, accepted: bool = True) -> str:
        args = {"message_id": message_id, "accepted": accepted}
        return await _threaded(lambda: s.run("answer_judge", args))

    # channels -----------------------------------------------------------------------

    @server.tool(
        name="channel_create",
        description="Create a channel (a named topic like '#design'); you join it.",
    )
    async def channel_create(channel: str) -> str:
        return await _threaded(lambda: s.run("channel_create", {"channel": channel}))

    @server.tool(name="channel_join", description="Join a channel: its new posts reach your mail.")
    async def channel_join(channel: str) -> str:
        return await _threaded(lambda: s.run("channel_join", {"channel": channel}))

    @server.tool(name="channel_leave", description="Leave a channel.")
    async def channel_leave(channel: str) -> str:
        return await _threaded(lambda: s.run("channel_leave", {"channel": channel}))

    @server.tool(
        name="channel_post",
        description="Post to a channel you joined; every other subscriber gets it. route=true "
        "gives it one owner (tags: its topics); reply_to answers a post or message; the same "
        "key again posts nothing new.",
    )
    async def channel_post(
        channel: str,
        message: str,
        summary: str | None = None,
        route: bool = False,
        tags: list[str] | None = None,
        reply_to: int | None = None,
        key: str | None = None,
    ) -> str:
        args = given(
            channel=channel,
            message=message,
            summary=summary,
            route=route,
            tags=tags,
            reply_to=reply_to,
            key=key,
        )
        return await _threaded(lambda: s.run("channel_post", args))

    @server.tool(
        name="channel_read",
        description="A channel's history after post id since, oldest first; with no "
        "channel, the team's channels.",
    )
    async def channel_read(
        channel: str | None = None, since: Annotated[int, Field(ge=0)] = 0
    ) -> str:
        args = given(channel=channel, since=since)
        return await _threaded(lambda: s.run("channel_read", args))

    # deliberations --------------------------------------------------------------------

    @server.tool(
        name="position_submit",
        description="Submit your own position in a deliberation, before reading anyone else's.",
    )
    async def position_submit(deliberation_id: int, position: str) -> str:
        args = {"deliberation_id": deliberation_id, "position": position}
        return await _threaded(lambda: s.run("position_submit", args))

    @server.tool(
        name="positions_read",
        description="A deliberation's positions and replies (only once you submitted yours).",
    )
    async def positions_read(deliberation_id: int) -> str:
        args = {"deliberation_id": deliberation_id}
        return await _threaded(
            lambda: capped(s.run("positions_read", args), f"`accord ask show {deliberation_id}`")
        )

    @server.tool(
        name="exchange_reply",
        description="Reply to the others' positions in the deliberation's current exchange round.",
    )
    async def exchange_reply(deliberation_id: int, reply: str) -> str:
        args = {"deliberation_id": deliberation_id, "reply": reply}
        return await _threaded(lambda: s.run("exchange_reply", args))

    @server.tool(
        name="agree", description="Agree during a deliberation's exchange: you reply no more."
    )
    async def agree(deliberation_id: int) -> str:
        return await _threaded(lambda: s.run("agree", {"deliberation_id": deliberation_id}))

    @server.tool(
        name="synthesis_submit",
        description="Write a deliberation's one answer, with agreement and dissent.",
    )
    async def synthesis_submit(
        deliberation_id: int, answer: str, agreement: str = "", dissent: str = ""
    ) -> str:
        args = {
            "deliberation_id": deliberation_id,
            "answer": answer,
            "agreement": agreement,
            "dissent": dissent,
        }
        return await _threaded(lambda: s.run("synthesis_submit", args))

    @server.tool(
        name="read_mail",
        description="Your unread mail, oldest first, a few at a time. It is not "
        "acknowledged: call ack_mail with the ids once you have dealt with it, or it "
        "comes back after the team's visibility timeout.",
    )
    async def read_mail() -> str:
        def go() -> str:
            mail = s.guarded(lambda: s.mail_view(s.team.mailbox.inbox(s.member, MAIL_BATCH)))
            out: dict[str, Any] = {}
            if len(mail) == MAIL_BATCH:
                out["more"] = "there may be more: call read_mail again"
            out["messages"] = mail
            return capped(_dump(out), "`accord msg inbox --json`")

        return await _threaded(go)

    @server.tool(
        name="ack_mail",
        description="Acknowledge messages you have read, by id: they leave your inbox for good.",
    )
    async def ack_mail(ids: list[int]) -> str:
        def go() -> str:
            acked = s.guarded(lambda: _dump({"acked": s.team.mailbox.ack(s.member, ids)}))
            return acked

        return await _threaded(go)

    @server.tool(
        name="team_digest", description="The board, recent changes and the team, in brief."
    )
    async def team_digest() -> str:
        def go() -> str:
            text = s.guarded(lambda: s.team.digest(0, s.member).text)
            return capped(text, "`accord status`")

        return await _threaded(go)

    # memory -----------------------------------------------------------------------

    @server.tool(
        name="remember",
        description="Keep a decision, insight, observation or story for later sessions.",
    )
    async def remember(
        type: Literal["decision", "insight", "observation", "story"],
        text: str,
        tags: list[str] | None = None,
    ) -> str:
        args = {"type": type, "text": text, "tags": tags or []}
        return await _threaded(lambda: s.run("remember", args))

    @server.tool(name="recall", description="Search what the team remembers, best first.")
    async def recall(query: str, limit: Annotated[int, Field(ge=1, le=20)] = 5) -> str:
        return await _threaded(lambda: s.run("recall", {"query": query, "k": limit}))

    @server.tool(name="forget", description="Retire a memory that is wrong or no longer true.")
    async def forget(id: int) -> str:
        return await _threaded(lambda: s.run("forget", {"id": id}))

    @server.tool(
        name="write_continuity",
        description="Rewrite your own continuity note, "
        "read first at your next session: what you were doing, what is open.",
    )
    async def write_continuity(note: str) -> str:
        return await _threaded(lambda: s.run("write_continuity", {"text": note}))

    # waiting ------------------------------------------------------------------------

    @server.tool(
        name="wait_for_work",
        description="Block until you have mail or a ready "
        "task you may claim, or until timeout seconds pass; says which.",
    )
    async def wait_for_work(timeout: Annotated[float, Field(gt=0)] = 60.0) -> str:
        stop = threading.Event()

        def go() -> str:
            wake = s.guarded(
                lambda: _dump(
                    _wake_view(s.team.wait(s.member, min(timeout, MAX_WAIT), stop=stop.is_set))
                )
            )
            return wake

        try:
            return await anyio.to_thread.run_sync(go, abandon_on_cancel=True)
        finally:
            stop.set()

    # resources and the prompt -----------------------------------------------------

    @server.resource(
        BOARD, name="board", description="The team's board.", mime_type="application/json"
    )
    async def board() -> str:
        return await _threaded(
            lambda: capped(_dump({"tasks": s.board_view()}), "`accord task list --json`")
        )

    @server.resource(
        INBOX,
        name="inbox",
        description="Your unacknowledged mail (reading it delivers nothing).",
        mime_type="application/json",
    )
    async def inbox() -> str:
        def go() -> str:
            mail = s.mail_view(s.team.mailbox.history(s.member, unacked=True))
            return capped(_dump({"messages": mail}), "`accord msg inbox --json`")

        return await _threaded(go)

    @server.prompt(
        name="member", description="Your instructions as this member, and your continuity note."
    )
    async def member_prompt() -> str:
        return await _threaded(s.instructions)

    return server


def _wake_view(wake: Any) -> dict[str, Any]:
    reason = wake.reason
    said = {
        WakeReason.MAIL: "you have mail: call read_mail",
        WakeReason.TASK: "a task is ready for you: TaskList, then TaskUpdate in_progress",
    }.get(reason, "nothing arrived")
    return {
        "reason": reason.value,
        "mail": wake.mail,
        "readyTasks": wake.ready_tasks,
        "next": said,
    }


async def _announce_mail(seat: Seat, bus: InMemorySubscriptionBus, stop: threading.Event) -> None:
    """Tell subscribed clients the inbox resource changed whenever new mail arrives (the
    protocol's resource-updated notification); ``wait_for_work`` works without it."""
    seen: set[int] = set()

    def next_mail() -> list[int]:
        while not stop.is_set():
            wake = seat.team.wait(seat.member, 30.0, stop=stop.is_set, tasks=False)
            if wake.reason != WakeReason.MAIL:
                continue
            fresh = [
                m.id for m in seat.team.mailbox.history(seat.member, unacked=True)
                if m.id not in seen
            ]  # fmt: skip
            if fresh:
                return fresh
            stop.wait(0.5)  # mail waits that was announced already: look again shortly
        return []

    while not stop.is_set():
        try:
            fresh = await anyio.to_thread.run_sync(next_mail, abandon_on_cancel=True)
        except AccordError:
            await anyio.sleep(1.0)
            continue
        if fresh:
            seen.update(fresh)
            await bus.publish(ResourceUpdated(uri=INBOX))
