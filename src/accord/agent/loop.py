"""The agent loop: one member working its tasks, its mail and its model until told to stop.

Each pass: take in mail (saved into the transcript and acknowledged in one
transaction, so no message is lost or doubled), then either carry on the
current session with one model call and its tool calls, or find work: a held
task, a ready task to claim when the definition allows self-claiming, or wait
cheaply for mail or a newly ready task. A turn that ends with no task runs the
TeammateIdle hook; exit 2 keeps the member working with the feedback.

Everything said and done is written to the transcript as it happens, so a
restarted process continues exactly where it was; a tool call the process died
during is reported to the model as interrupted. A background thread heartbeats
the member and the leases of its claims. Budgets are checked before each call
(``Runs.over_budget``, counting that call's estimated input).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from accord.agent import context, plan_approval
from accord.agent.definition import AgentDefinition
from accord.agent.learning import Learning
from accord.agent.live import LivePublisher
from accord.agent.tools.base import HeldClaim, Setback, Toolbox, ToolContext
from accord.agent.tools.team import skipped_hooks
from accord.config import Config
from accord.errors import AccordError, InvalidState
from accord.events import EventKind
from accord.llm.base import (
    ChatMessage,
    ContextTooLong,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolResult,
    Usage,
    estimate_tokens,
)
from accord.llm.prices import Price, cost_of, usage_record
from accord.memory.lessons import LESSON_PROMPT
from accord.sandbox import Sandbox
from accord.team import Team
from accord.team.board import LeaseKeeper
from accord.types import (
    PERSON,
    LessonCause,
    MemberRole,
    MemberStatus,
    Message,
    MessageKind,
    PlanState,
    Task,
    TaskStatus,
    TranscriptEntry,
    TranscriptKind,
    UsageRecord,
)

# A deliberation's steps: offered while one is open in the team (``_idle_tools``).
DELIBERATION_STEPS = frozenset(
    {"position_submit", "positions_read", "exchange_reply", "agree", "synthesis_submit"}
)

if TYPE_CHECKING:
    from accord.agent.mcp import McpServers

NUDGES = 2  # times a member is reminded of a task it still holds before it is released
REPEAT_NUDGE = 3  # the same tool calls this many times in a row: the model is told
REPEAT_STOP = 5  # ... and this many times: the member stops
WINDOW_RETRIES = 3  # compactions tried on one call the server found too long
# Tools whose run a stop cuts short (a command may run for minutes; the rest are quick).
_INTERRUPTIBLE = frozenset({"bash"})
# What the model reads when the person presses Esc, and for the calls it did not make.
INTERRUPTED = (
    "[The person interrupted you. Stop what you were doing; do not go on with it. Wait "
    "for their next message, which says what to do instead.]"
)
NOT_RUN = "not run: the person interrupted you before this call"
OUTAGE = "model unreachable: "  # how a task given back for an outage says why


class _OverBudget(Exception):
    """A call sent again after a compaction would pass a budget: the member stops."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True, slots=True)
class Outcome:
    """Why the loop stopped: ``shutdown``, ``budget``, ``max_turns``, ``model_error``,
    ``signal`` or ``idle`` (``once`` runs only).

    ``transient`` marks a stop that waiting could cure (the model was unreachable
    after its retries): the member's task was given back, and a supervisor may start
    it again under its restart rules.
    """

    reason: str
    detail: str = ""
    transient: bool = False


def record_stopped(services: Team, member: str, outcome: Outcome) -> None:
    """Mark ``member`` stopped and log why, as its runtime ends (whatever plays it);
    a store that is gone by then is let be."""
    with contextlib.suppress(AccordError):
        services.roster.heartbeat(member, status=MemberStatus.STOPPED)
    with contextlib.suppress(AccordError):
        services.log.append_event(
            EventKind.MEMBER_STOPPED,
            {
                "name": member,
                "reason": outcome.reason,
                "detail": outcome.detail,
                "transient": outcome.transient,
            },
            member,
        )


class Agent:
    """One member's runtime."""

    keeps_continuity = True  # the lead keeps notes of its own instead
    MEMORY_BUDGET = 6000  # characters of continuity and recalled memories per session

    def __init__(
        self,
        services: Team,
        member: str,
        definition: AgentDefinition,
        model: Model,
        toolbox: Toolbox,
        workspace: Path,
        config: Config,
        *,
        env: dict[str, str] | None = None,
        idle_wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        project_root: Path | None = None,
    ) -> None:
        self.services = services
        self.team = services.team
        self.member = member
        self.definition = definition
        self.model = model
        self.toolbox = toolbox
        self.config = config
        self.idle_wait = idle_wait
        self.clock = clock
        self.ctx = ToolContext(
            workspace=workspace,
            member=member,
            team=services,
            env=dict(env or {}),
            bash_timeout=config.agent.bash_timeout,
            project_root=project_root,
            sandbox=Sandbox.for_project(
                services.cwd,
                workspace,
                services.location,
                config.sandbox,
                network=definition.network,
            ),
            skills=definition.skills,
        )
        self._skill_warnings_said = 0  # how many of its skills' warnings went to the log
        # This process is a member's: its hooks are a teammate's (refused without a
        # sandbox when one is required), whoever's turn on the board runs them.
        services.hooks.for_teammate = True
        if workspace.resolve() != services.cwd.resolve():
            services.hooks.workdir = workspace  # its worktree: never the person's checkout
        # The integration branch's tip this member was last told about (worktree mode).
        self._integration_seen: str | None = None
        self.memory = services.memory
        self.prices = {
            k: Price(p.input, p.output, p.cache_read, p.cache_write)
            for k, p in config.prices.items()
        }
        self.conversation: context.Conversation | None = None
        self.system: str | None = None
        # The failure loop: setbacks whose lesson the member's next reply writes.
        self.learning = Learning(services, member, model, config, self.prices)
        self.awaiting_lessons: list[Setback] = []
        # Plan approval (definition.plan_required): per task, read-only until approved.
        self.plan = plan_approval.PlanApproval(definition.plan_required)
        self.turns = 0
        self.nudges = 0
        self.repeats = 0
        self.last_calls: str | None = None
        self.idle_hook_ran = False
        self.skipped_hooks: list[str] = []  # said at the start of the next session
        settings = config.models.get(str(model.name)) or config.models.get(
            f"{model.name.provider}:{model.name.model}"
        )
        if settings is not None and settings.context_window is not None:
            model.context_window = settings.context_window
        if settings is not None and not settings.stream:
            model.streaming = False
        self._stop = threading.Event()
        # The person pressed Esc: no model call until the person speaks again.
        self.held = False
        self._calling = False  # in a model call or a command, which a stop may cut short
        self._keeper: LeaseKeeper | None = None  # heartbeats the member and its claims
        self._live: LivePublisher | None = None  # the call in progress, for views to stream
        self._live_reported = False
        # Its MCP servers (build_agent starts them), stopped when the loop ends.
        self.mcp: McpServers | None = None

    # lifecycle -----------------------------------------------------------------

    def run(self, *, once: bool = False) -> Outcome:
        """Work until stopped; with ``once``, return when there is nothing left to do."""
        # The supervisor says which of its hosts this is; run by hand, the machine name.
        host = os.environ.get("ACCORD_HOST") or socket.gethostname()
        self._set_status(MemberStatus.WORKING, pid=os.getpid(), host=host)
        self._start_heartbeat()
        outcome = Outcome("signal", "stopped by a signal")
        try:
            self._restore()
            while not self._stop.is_set():
                result = self._step(once)
                if result is not None:
                    outcome = result
                    break
        except KeyboardInterrupt:
            outcome = Outcome("signal", "interrupted")
        finally:
            if self._keeper is not None:
                self._keeper.close(timeout=5)
            if self.mcp is not None:
                self.mcp.close()
            try:
                self._leave_note(f"I stopped ({outcome.reason})")
            except AccordError:
                pass
            record_stopped(self.services, self.member, outcome)
        return outcome

    def request_stop(self) -> None:
        self._stop.set()
        self.services.nudge(self.member)  # a wait in progress ends now

    def stopping(self) -> bool:
        """A stop was asked for (a tool waiting on an answer gives up its wait)."""
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.request_stop()
            if self._calling:
                # A model call can take minutes; the supervisor's grace is shorter.
                raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handler)

    # one pass ------------------------------------------------------------------

    def _step(self, once: bool) -> Outcome | None:
        # Take a task first, so mail that waited lands in that task's fresh context.
        if self.conversation is None:
            self._find_task()
        stop = self._take_mail()
        if stop is not None:
            return stop
        if self.held and self.conversation is not None:
            if once and not self.services.pending_work(self.member).mail:
                return Outcome("idle", "interrupted: waiting for the person's next message")
            self.services.wait(self.member, self.idle_wait, stop=self._stop.is_set, tasks=False)
            return None
        if self.plan.waiting and self.conversation is not None:
            if once and not self.services.pending_work(self.member).mail:
                return Outcome("idle", "waiting for the lead to answer the plan")
            self.services.wait(
                self.member,
                self.idle_wait,
                stop=self._stop.is_set,
                tasks=False,
            )
            return None
        if self.conversation is None and not self._idle():
            if once:
                return Outcome("idle", "nothing left to do")
            self._wait()
            return None
        return self._turn()

    def _wait(self) -> None:
        self.services.wait(
            self.member,
            self.idle_wait,
            stop=self._stop.is_set,
            tasks=self.definition.self_claim,
        )

    def _mail_opening(self) -> str:
        return "You have new messages."

    def _restore(self) -> None:
        for task in self.services.board.list(TaskStatus.IN_PROGRESS):
            if task.owner == self.member and task.fencing_token is not None:
                self.ctx.claims[task.id] = HeldClaim(task.id, task.fencing_token)
        last = self.services.log.last_session(self.member)
        if last == 0:
            return
        entries = self.services.log.read_transcript(self.member, session=last)
        for entry in entries:
            # A window learned before the restart holds: no second refused call to learn it.
            if entry.kind != TranscriptKind.NOTE:
                continue
            learned = entry.body.get("context_window")
            if isinstance(learned, int) and entry.body.get("model") == str(self.model.name):
                self.model.context_window = min(self.model.context_window, learned)
        conv = context.Conversation.rebuild(entries)
        if conv is None:
            return
        self.conversation = conv
        self.ctx.task_id = conv.task_id
        self.plan.restore(entries, conv.task_id, required=self.definition.plan_required)
        if conv.task_id is not None and conv.task_id not in self.ctx.claims:
            self._take_back(conv.task_id)
        interrupted = conv.unanswered_calls()
        if interrupted:
            self._save(ChatMessage("user", tool_results=tuple(interrupted)))
            self._note(f"{len(interrupted)} tool call(s) interrupted by a restart")

    def _take_back(self, task_id: int) -> None:
        """The session's task went back to pending while this member was down (its model
        was unreachable, or its lease ran out): claim it again, so the conversation goes on
        where it stopped. Taken by someone else meanwhile: the session goes on without."""
        try:
            if self.services.board.get(task_id).status != TaskStatus.PENDING:
                return
            claim = self.services.board.claim(self.member, task_id=task_id)
        except AccordError:
            return
        if claim is not None:
            self.ctx.claims[task_id] = HeldClaim(task_id, claim.fencing_token)
            self._note(f"task #{task_id} claimed again to carry on with it")

    def _find_task(self) -> bool:
        """Start a session for a task held already or, when allowed, a newly claimed one."""
        held = sorted(self.ctx.claims)
        if held:
            task = self.services.board.get(held[0])
            self._start_session(task.id, self._task_opening(task))
            return True
        if self.definition.self_claim:
            claim = self.services.board.claim(self.member)
            if claim is not None:
                self.ctx.claims[claim.task.id] = HeldClaim(claim.task.id, claim.fencing_token)
                self.learning.settle(claim.task)  # earlier attempts' lessons, first
                self._start_session(claim.task.id, self._task_opening(claim.task))
                return True
        return False

    def _idle(self) -> bool:
        """Nothing to do: run TeammateIdle once per idle spell; True if it keeps us working."""
        if self.idle_hook_ran:
            return False
        self.idle_hook_ran = True
        outcome = self.services.roster.idle(self.member)
        self.skipped_hooks += skipped_hooks(outcome)
        if not outcome.blocked:
            return False
        self._start_session(
            None, "The TeammateIdle hook asks you to keep working:\n" + outcome.feedback
        )
        return True

    def _start_session(self, task_id: int | None, opening: str) -> None:
        self.idle_hook_ran = False
        self.turns = 0
        self.nudges = 0
        self.repeats = 0
        self.last_calls = None
        self.system = None
        self.ctx.task_id = task_id
        self.plan.start(task_id, required=self.definition.plan_required)
        session = self.services.log.last_session(self.member) + 1
        self.conversation = context.Conversation(session, task_id, [], [])
        self._set_status(MemberStatus.WORKING)
        start = TranscriptEntry(
            self.member, session, TranscriptKind.SESSION, {"event": "start"}, task_id
        )
        self.ctx.wrote_continuity = False
        warned = "".join(f"\n\n{w}" for w in self.skipped_hooks)
        self.skipped_hooks = []
        self._save(ChatMessage("user", opening + warned + self._remembered(opening)), before=start)

    def _end_session(self, why: str) -> None:
        conv = self.conversation
        if conv is None:
            return
        for setback in self.awaiting_lessons:  # asked, but no reply came
            self.learning.plain(setback)
        self.awaiting_lessons = []
        self._leave_note(why)
        self._append(
            TranscriptEntry(
                self.member,
                conv.session,
                TranscriptKind.SESSION,
                {"event": "end", "why": why},
                conv.task_id,
            )
        )
        self.conversation = None

    # mail ----------------------------------------------------------------------

    def _owners(self, mail: list[Message]) -> dict[int, str]:
        """The owner of each routed message in ``mail``, by its id (now, as it is read)."""
        routing = self.services.routing()
        found = {}
        for m in mail:
            if m.route_id is not None:
                route = routing.owner(m.id)
                if route is not None:
                    found[m.id] = route.owner
        return found

    def _take_mail(self) -> Outcome | None:
        mail = self.services.mailbox.inbox(self.member)
        if not mail:
            return None
        for m in mail:
            self._set_plan(self.plan.answered(m))
            if m.kind == MessageKind.INTERRUPT:
                self.held = True
            elif m.sender == PERSON and self.held:
                self.held = False  # the person's word after an Esc steers what comes next
        shutdown = [m for m in mail if m.kind == MessageKind.SHUTDOWN_REQUEST]
        ordinary = [m for m in mail if m.kind != MessageKind.SHUTDOWN_REQUEST]
        if ordinary:
            if self.conversation is None:
                self._start_session(None, self._mail_opening())
            text = context.inbox_text(ordinary, INTERRUPTED, self.member, self._owners(ordinary))
            self._save(ChatMessage("user", text), ack=[m.id for m in ordinary])
            if self.held:
                self._note("interrupted by the person: waiting for their next message")
        for request in shutdown:
            result = self._answer_shutdown(request)
            if result is not None:
                return result
        return None

    def _answer_shutdown(self, request: Message) -> Outcome | None:
        held = sorted(self.ctx.claims)
        refusable = "allow_refusal" in request.body or "may refuse" in request.body
        if held and refusable:
            reason = f"refused: I am in the middle of task #{held[0]}; ask again when it is done"
            self.services.mailbox.send(
                self.member,
                request.sender,
                reason,
                kind=MessageKind.SHUTDOWN_RESPONSE,
                reply_to=request.id,
            )
            self._note(f"shutdown request {request.id} from {request.sender} refused")
            self.services.mailbox.ack(self.member, [request.id])
            return None
        self.services.mailbox.send(
            self.member,
            request.sender,
            "approved: shutting down" + (f" (task #{held[0]} stays claimed)" if held else ""),
            kind=MessageKind.SHUTDOWN_RESPONSE,
            reply_to=request.id,
        )
        self._note(f"shutdown request {request.id} from {request.sender} approved")
        self.services.mailbox.ack(self.member, [request.id])
        self._set_status(MemberStatus.STOPPING)
        return Outcome("shutdown", f"approved shutdown request {request.id}")

    # a turn --------------------------------------------------------------------

    def _turn(self) -> Outcome | None:
        conv = self.conversation
        assert conv is not None
        request = self._request()
        size = estimate_tokens(request)
        if size > context.COMPACT_AT * self.model.context_window and self._compact():
            request = self._request()
            size = estimate_tokens(request)
        # Promise 10: the budget is asked before every model call, with this call's input.
        over = self._over_budget(size)
        if over is not None:
            return self._stop_for_budget(over)
        if self.turns >= self.definition.max_turns:
            return self._stop_for_turns()
        self.turns += 1
        try:
            response, request = self._complete(request)
        except ModelError as e:
            return self._stop_for_model(e)
        except _OverBudget as e:
            return self._stop_for_budget(e.why)
        message, cut = context.cap_reply(response.message)
        if cut:
            self._note(f"the model's reply was cut by {cut:,} characters before it was saved")
        self._save(message, usage=self._usage(response, request, message))
        self._lessons_written(message.text)
        if message.tool_calls:
            repeating = self._repeating(message)
            if repeating is not None:
                return repeating
            tools = self._tools()
            results = self._execute_all(tools, message.tool_calls)
            if any(
                c.name == "send_plan" and not r.is_error
                for c, r in zip(message.tool_calls, results, strict=True)
            ):
                self._set_plan(self.plan.sent())
            nudge = ""
            if self.repeats >= REPEAT_NUDGE:
                nudge = (
                    f"You have made the same tool call(s) with the same arguments "
                    f"{self.repeats} times in a row, and got the same kind of answer. You are "
                    f"repeating yourself: try something different, or if you are stuck, call "
                    f"task_fail with the reason."
                )
            nudge = "\n\n".join(t for t in (nudge, self._moved_note(), self._ask_lesson()) if t)
            self._save(ChatMessage("user", nudge, tool_results=tuple(results)))
            self._after_tools(results)
            return None
        self.repeats, self.last_calls = 0, None
        return self._turn_ended()

    def _ask_lesson(self) -> str:
        """This turn's setbacks (a refused completion, a failed task): the member's next
        reply writes their lesson (``accord.agent.learning``)."""
        setbacks, self.ctx.setbacks = self.ctx.setbacks, []
        if not setbacks or not self.learning.enabled:
            return ""
        self.awaiting_lessons.extend(setbacks)
        return LESSON_PROMPT + self.learning.skill_prompt(setbacks)

    def _lessons_written(self, reply: str) -> None:
        for setback in self.awaiting_lessons:
            self.learning.written(setback, reply)
        self.awaiting_lessons = []

    def _moved_note(self) -> str:
        """Worktree mode: when the team's branch moved and is not in this member's
        branch, one short note (who merged what, and to call sync) with the tool results
        the next model call reads; once per move, a rev-parse when it did not move."""
        try:
            worktrees = self.services.worktrees
            if not worktrees.active:
                return ""
            seen, note = worktrees.moved(self.member, self._integration_seen)
        except AccordError:
            return ""  # the notice is a courtesy: a git hiccup must not stop the turn
        self._integration_seen = seen
        return note or ""

    def _execute_all(self, tools: Toolbox, calls: tuple[ToolCall, ...]) -> list[ToolResult]:
        """The reply's tool calls in order, until the person interrupts (Esc): the call
        running then finishes, and the rest are answered as not run, so the conversation
        stays whole (every call has its result) and the person's next message steers."""
        results: list[ToolResult] = []
        for call in calls:
            if self._interrupt_waiting():
                results.append(ToolResult(call.id, call.name, NOT_RUN, is_error=True))
                continue
            results.append(self._execute(tools, call))
        return results

    def _interrupt_waiting(self) -> bool:
        """An Esc from the person is in the mailbox (read without taking the mail)."""
        try:
            unread = self.services.mailbox.history(self.member, unacked=True, limit=50)
        except AccordError:
            return False
        return any(m.kind == MessageKind.INTERRUPT and m.recipient == self.member for m in unread)

    def _execute(self, tools: Toolbox, call: ToolCall) -> ToolResult:
        """One tool call. A stop asked for while a command runs cuts it short (its whole
        process group is killed): its result is never saved, so on resume the call is
        made again, as after a crash."""
        self._calling = call.name in _INTERRUPTIBLE
        try:
            if self._calling and self._stop.is_set():
                raise KeyboardInterrupt
            return tools.execute(self.ctx, call)
        finally:
            self._calling = False

    def _complete(self, request: ModelRequest) -> tuple[ModelResponse, ModelRequest]:
        """One model call; a prompt the server finds too long teaches the window, is
        compacted and sent again. A stop asked for meanwhile (SIGTERM) cuts the call
        short: nothing of it is saved, so the member carries on from before it."""
        self._calling = True
        conv = self.conversation
        # What the model writes goes to the live channel as it comes, for views to stream;
        # the row is cleared once the reply is saved (_save), or here when the call fails.
        live = self._live = LivePublisher(
            self.services.log,
            self.member,
            conv.session if conv else 0,
            clock=self.clock,
            report=self._live_failed,
        )
        try:
            if self._stop.is_set():
                raise KeyboardInterrupt
            return self._complete_now(request)
        except BaseException:
            live.clear()
            self._live = None
            raise
        finally:
            self._calling = False

    def _complete_now(self, request: ModelRequest) -> tuple[ModelResponse, ModelRequest]:
        live = self._live or LivePublisher(self.services.log, self.member, 0)
        for _ in range(WINDOW_RETRIES):
            try:
                return self.model.stream(request, live), request
            except ContextTooLong as e:
                if not self._learn_window(e, request):
                    raise
                live.restart()
                request = self._request()
                self._check_budget(request)
        return self.model.stream(request, live), request

    def _live_failed(self, error: Exception) -> None:
        """The live channel refused a write: said once, and the turn goes on without it."""
        if self._live_reported:
            return
        self._live_reported = True
        try:
            self._note(f"the live view of replies is off for now: {error}")
        except AccordError:
            pass

    def _check_budget(self, request: ModelRequest) -> None:
        """Before a call sent again (compacted), as before the first: _OverBudget."""
        over = self._over_budget(estimate_tokens(request))
        if over is not None:
            raise _OverBudget(over)

    def _learn_window(self, error: ContextTooLong, request: ModelRequest) -> bool:
        """Take the window the server named (or, when it named none or the one we
        knew, a smaller one than this prompt) and compact to it; False if nothing folds."""
        known = self.model.context_window
        if error.window is not None and error.window < known:
            window = error.window
        else:
            # Our estimate of four characters a token undercounts this server.
            window = max(int(min(known, estimate_tokens(request)) * 0.8), 1024)
        self.model.context_window = window
        self.services.log.append_event(
            EventKind.CONTEXT_WINDOW_LEARNED,
            {
                "member": self.member,
                "model": str(self.model.name),
                "window": window,
                "was": known,
                "said": error.window,
            },
            self.member,
        )
        self._note(
            f"the model's context window is {window} tokens, not {known}: compacting",
            model=str(self.model.name),
            context_window=window,
        )
        return self._compact()

    def _repeating(self, message: ChatMessage) -> Outcome | None:
        """Count the same calls in a row; at REPEAT_STOP answer them unrun and stop."""
        signature = context.call_signature(message)
        self.repeats = self.repeats + 1 if signature == self.last_calls else 1
        self.last_calls = signature
        if self.repeats < REPEAT_STOP:
            return None
        names = ", ".join(c.name for c in message.tool_calls)
        why = (
            f"the model repeated the same call ({names}) with the same arguments "
            f"{self.repeats} times in a row"
        )
        unrun = tuple(
            ToolResult(c.id, c.name, f"not run: {why}", is_error=True) for c in message.tool_calls
        )
        self._save(ChatMessage("user", tool_results=unrun))
        self._note(why)
        self._release_held(why)
        self._tell_lead(f"{self.member} stopped: {why}.", "repeating stop")
        return Outcome("model_error", why)

    def _stop_for_model(self, error: ModelError) -> Outcome:
        why = f"the model failed: {error}"
        self._note(why)
        if error.retryable:
            # An outage is not the task's fault: it goes back without using an attempt.
            self._give_back_held(why)
        else:
            self._release_held(why)
        self._tell_lead(f"{self.member} stopped: {why}.", "model error stop")
        return Outcome("model_error", str(error), transient=error.retryable)

    def _after_tools(self, results: list[ToolResult]) -> None:
        # Forget claims that are no longer ours (completed, failed, cancelled, lost).
        for task_id in list(self.ctx.claims):
            try:
                task = self.services.board.get(task_id)
            except AccordError:
                self.ctx.claims.pop(task_id, None)
                continue
            if task.status != TaskStatus.IN_PROGRESS or task.owner != self.member:
                self.ctx.claims.pop(task_id, None)

    def _turn_ended(self) -> Outcome | None:
        conv = self.conversation
        assert conv is not None
        self._after_tools([])
        held = sorted(self.ctx.claims)
        if held and self.plan.waiting:
            return None  # _step waits for the lead's answer before the next call
        if held and self.plan.needed:
            if self.nudges < NUDGES:
                self.nudges += 1
                self._save(ChatMessage("user", "Send your plan with send_plan first."))
                return None
        if held and self.nudges < NUDGES:
            self.nudges += 1
            self._save(
                ChatMessage(
                    "user",
                    f"You still hold task #{held[0]}. If it is done and checked, call "
                    f"task_complete with a short result; if you cannot do it, call task_fail "
                    f"with the reason.",
                )
            )
            return None
        if held:
            self._release_held("the member ended its turn without completing the task")
        self._end_session("turn ended")
        return None

    def _request(self) -> ModelRequest:
        conv = self.conversation
        assert conv is not None
        system = self._system_prompt()
        hidden = self._idle_tools(system)
        return ModelRequest(
            system=system,
            messages=context.merged(conv.messages),
            tools=tuple(s for s in self._tools().specs() if s.name not in hidden),
            max_tokens=self.config.agent.max_tokens,
        )

    def _idle_tools(self, system: str) -> frozenset[str]:
        """Tools with nothing to act on now, left out of the request (a small window
        holds the rest; a call to one still runs): a deliberation's steps while none is
        open, loading and revising skills when the member has none."""
        hidden: set[str] = set()
        try:
            if not self.services.deliberations.open():
                hidden |= DELIBERATION_STEPS
        except AccordError:
            pass
        if context.SKILLS_HEADING not in system:
            hidden |= {"use_skill", "revise_skill"}
        return frozenset(hidden)

    def _remembered(self, opening: str) -> str:
        """The member's continuity note, then what the team remembers that bears on the
        session's opening, within MEMORY_BUDGET characters."""
        parts: list[str] = []
        budget = self.MEMORY_BUDGET
        if self.keeps_continuity:
            note = self.memory.continuity(self.member)
            if note is not None:
                text = note.text[: budget // 2]
                parts.append(f"## Your continuity note, from your last session\n{text}")
                budget -= len(text)
        lines: list[str] = []
        for r in self.memory.recall(opening, member=self.member, k=8):
            line = f"- [{r.entry.id}] {r.entry.type.value}: {r.entry.text}"
            if len(line) > budget:
                break
            lines.append(line)
            budget -= len(line)
        if lines:
            parts.append("## What the team remembers that may bear on this\n" + "\n".join(lines))
        return "".join("\n\n" + p for p in parts)

    def _leave_note(self, why: str) -> None:
        """End of a working session: keep the member's own continuity note, or write a
        plain first-person one so the next session starts from where this one stopped."""
        conv = self.conversation
        if not self.keeps_continuity or conv is None or self.ctx.wrote_continuity:
            return
        said = ""
        for message in reversed(conv.messages):
            if message.role == "assistant" and message.text.strip():
                said = " ".join(message.text.split())[:400]
                break
        lines = []
        if conv.task_id is not None:
            try:
                task = self.services.board.get(conv.task_id)
                lines.append(
                    f"I was working on task #{task.id} ({task.title}); it is now "
                    f"{task.status.value}."
                )
            except AccordError:
                pass
        else:
            lines.append("I was answering messages, not working a task.")
        if said:
            lines.append(f"The last thing I said: {said}")
        held = sorted(self.ctx.claims)
        lines.append(f"I still hold task #{held[0]}." if held else "I hold no task.")
        lines.append(f"The session ended: {why}.")
        try:
            self.memory.write_continuity(self.member, " ".join(lines))
        except AccordError:
            pass

    def _task_opening(self, task: Task) -> str:
        opening = context.task_opening(self.services, task)
        try:
            lessons = self.services.lessons.briefing(task, task.attempts)
        except AccordError:
            lessons = ""  # a help, never a reason not to start
        if lessons:
            opening += "\n\n" + lessons
        if self.definition.plan_required:
            opening += "\n\n" + context.PLAN_FIRST
        return opening

    def _tools(self) -> Toolbox:
        """The tools for this turn: read-only ones while a plan awaits approval."""
        return self.plan.tools(self.toolbox)

    def _set_plan(self, state: PlanState | None) -> None:
        """Save a move of the plan approval, so a restart takes it up (None: no move)."""
        if state is not None:
            self._append(self._entry(TranscriptKind.PLAN_STATE, plan_approval.body(state)))

    def _system_prompt(self) -> str:
        # Built once per session: fewer reads per turn, and a stable prefix that the
        # provider's prompt cache can reuse on every call of the session.
        if self.system is None:
            self.system = context.system_prompt(self.definition, self.services, self.member)
            self._say_skill_warnings()
        return self.system

    def _say_skill_warnings(self) -> None:
        """A SKILL.md that could not be read was skipped: say so in the member's log,
        once per file and process."""
        said = self.services.skills.warnings
        for warning in said[self._skill_warnings_said :]:
            sys.stderr.write(f"warning: {warning}\n")
        self._skill_warnings_said = len(said)

    def _compact(self) -> bool:
        conv = self.conversation
        assert conv is not None
        cut = context.compaction_cut(conv.messages)
        kept_from = conv.seqs[cut] if cut is not None else None
        if cut is None or kept_from is None:
            return False
        head = conv.messages[0]
        summary = context.summarise(
            conv.messages[1:cut], context.team_state(self.services, self.member)
        )
        self._append(
            TranscriptEntry(
                self.member,
                conv.session,
                TranscriptKind.COMPACTION,
                {"head": head.to_dict(), "summary": summary, "kept_from_seq": kept_from},
                conv.task_id,
            )
        )
        conv.messages = [head, ChatMessage("user", summary), *conv.messages[cut:]]
        conv.seqs = [conv.seqs[0], None, *conv.seqs[cut:]]
        self.services.log.append_event(
            EventKind.CONTEXT_COMPACTED,
            {"member": self.member, "folded": cut - 1, "kept": len(conv.messages) - 2},
            self.member,
        )
        return True

    # budgets and turns ---------------------------------------------------------

    def _over_budget(self, tokens: int) -> str | None:
        """Why a call sending about ``tokens`` input tokens may not be made
        (``Runs.over_budget``): what was spent plus that input, at the model's price,
        would reach a budget. The input is priced whole, as if nothing were cached: a
        cached prefix costs less, so the check errs toward stopping a call early."""
        name = str(self.model.name)
        cost = cost_of(name, Usage(input_tokens=tokens, output_tokens=0), self.prices)
        return self.services.runs.over_budget(self.member, next_usd=cost or 0.0, next_tokens=tokens)

    def _stop_for_budget(self, why: str) -> Outcome:
        held = sorted(self.ctx.claims)
        note = (
            f"{self.member} stopped: {why}. Its transcript and work are kept"
            + (f"; it still holds task #{held[0]} until its lease ends" if held else "")
            + "."
        )
        self._tell_lead(note, "budget stop")
        self._note(note)
        if self.learning.enabled:
            for task_id in held:  # no model call may be made now: the plain lesson
                try:
                    attempt = self.services.board.get(task_id).attempts
                except AccordError:
                    continue
                self.learning.plain(Setback(task_id, attempt, LessonCause.BUDGET, why))
        self.services.log.append_event(
            EventKind.BUDGET_EXCEEDED, {"member": self.member, "why": why}, self.member
        )
        return Outcome("budget", why)

    def _stop_for_turns(self) -> Outcome:
        why = f"max_turns ({self.definition.max_turns}) reached without finishing"
        self._release_held(why)
        self._tell_lead(f"{self.member} stopped: {why}.", "max_turns stop")
        self._note(why)
        return Outcome("max_turns", why)

    def _release_held(self, reason: str) -> None:
        for task_id, held in list(self.ctx.claims.items()):
            try:
                self.services.board.fail(task_id, self.member, held.token, reason, retry=True)
            except AccordError:
                pass
            self.ctx.claims.pop(task_id, None)

    def _give_back_held(self, reason: str) -> None:
        """Give held tasks back for an outage without spending an attempt; but only once
        in a row, so a model that never comes back cannot keep a task (and a pool that
        re-claims it at once) going for ever: the next outage spends one."""
        for task_id, held in list(self.ctx.claims.items()):
            try:
                task = self.services.board.get(task_id)
                if (task.reason or "").startswith(OUTAGE):
                    self.services.board.fail(task_id, self.member, held.token, reason, retry=True)
                else:
                    self.services.board.release(task_id, self.member, held.token, OUTAGE + reason)
            except AccordError:
                pass
            self.ctx.claims.pop(task_id, None)

    def _tell_lead(self, text: str, summary: str) -> None:
        leads = [
            m.name
            for m in self.services.roster.list()
            if m.role == MemberRole.LEAD and m.name != self.member
        ]
        for lead in leads:
            try:
                self.services.mailbox.send(self.member, lead, text, summary=summary)
            except AccordError:
                pass

    # persistence ---------------------------------------------------------------

    def _usage(
        self, response: ModelResponse, request: ModelRequest, message: ChatMessage
    ) -> UsageRecord:
        conv = self.conversation
        saved = ModelResponse(message, response.stop_reason, response.usage, response.model,
                              response.latency_seconds)  # fmt: skip
        return usage_record(
            self.member, self.model, saved, request, conv.task_id if conv else None, self.prices
        )

    def _save(
        self,
        message: ChatMessage,
        ack: list[int] | None = None,
        usage: UsageRecord | None = None,
        before: TranscriptEntry | None = None,
    ) -> None:
        """Save one turn (after ``before``, in the same transaction) and only then use it."""
        conv = self.conversation
        assert conv is not None
        entry = TranscriptEntry(
            self.member, conv.session, TranscriptKind.MESSAGE, message.to_dict(), conv.task_id
        )
        saved = self.services.log.append_transcript(
            [e for e in (before, entry) if e is not None], ack=ack or (), usage=usage
        )
        conv.add(message, saved[-1].seq)
        if usage is not None and self._live is not None:
            self._live.clear()  # the reply is saved: views read it from the transcript now
            self._live = None

    def _append(self, entry: TranscriptEntry) -> None:
        self.services.log.append_transcript([entry])

    def _note(self, text: str, **facts: object) -> None:
        self._append(self._entry(TranscriptKind.NOTE, {"text": text, **facts}))

    def _entry(self, kind: TranscriptKind, body: dict[str, object]) -> TranscriptEntry:
        """An entry of the current session (else of the last one) and its task."""
        conv = self.conversation
        session = conv.session if conv else self.services.log.last_session(self.member)
        return TranscriptEntry(self.member, session, kind, body, conv.task_id if conv else None)

    def _set_status(
        self, status: MemberStatus, pid: int | None = None, host: str | None = None
    ) -> None:
        try:
            self.services.roster.heartbeat(self.member, status=status, pid=pid, host=host)
        except InvalidState:
            pass

    def _start_heartbeat(self) -> None:
        self._keeper = LeaseKeeper(
            self.services.board,
            self.member,
            lambda: [(held.task_id, held.token) for held in list(self.ctx.claims.values())],
            every=self.config.agent.heartbeat_seconds,
            also=lambda: self.services.roster.heartbeat(self.member),
        ).start()
