"""Plain values that move between the layers: teams, members, tasks, messages, events.

Everything here is a frozen dataclass or an enum, with no behaviour beyond
checking names and turning itself into JSON-ready dicts. Every serialized form
carries ``FORMAT_VERSION`` so readers can tell old exports from new.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict, TypeVar

from accord.errors import InvalidName

FORMAT_VERSION = 1

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")

BROADCAST = "*"

# The person at the terminal: a mail address in every team, never a member (so never
# a teammate, a claimant or a name to add). People see it as "you".
PERSON = "person"


CHANNEL_MARK = "#"


def check_channel(name: str) -> str:
    """``name`` as a channel's name (``#design``; ``design`` gains its ``#``), else
    InvalidName: a shell reads ``#`` at a word's start as a comment, so both are taken."""
    bare = name[1:] if isinstance(name, str) and name.startswith(CHANNEL_MARK) else name
    if not isinstance(bare, str) or NAME_PATTERN.fullmatch(bare) is None:
        shown = repr(name) if name else "an empty name"
        raise InvalidName(
            f"{shown} is not a valid channel name: use '#' and then 1-40 characters from "
            "a-z, 0-9, '-' and '_', starting with a letter or digit (like #design)"
        )
    return CHANNEL_MARK + bare


def check_tag(tag: str) -> str:
    """``tag`` (a topic a routed message or deliberation is about), in lower case, if it
    is 1-40 characters from a-z, 0-9, '-' and '_'; else InvalidName."""
    low = tag.strip().lower() if isinstance(tag, str) else tag
    if not isinstance(low, str) or NAME_PATTERN.fullmatch(low) is None:
        shown = repr(tag) if tag else "an empty tag"
        raise InvalidName(
            f"{shown} is not a valid tag: use 1-40 characters from a-z, 0-9, '-' and '_', "
            "starting with a letter or digit (like api or db-migration)"
        )
    return low


SKILL_NAME_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SKILL_NAME_MAX = 64
SKILL_DESCRIPTION_MAX = 1024


def check_skill_name(name: str) -> str:
    """``name`` if it is a valid skill name (the Agent Skills rule Claude Code follows:
    1-64 characters from a-z, 0-9 and '-', no '-' at either end or twice in a row), else
    InvalidName. A valid name is also a safe folder name."""
    if (
        not isinstance(name, str)
        or len(name) > SKILL_NAME_MAX
        or SKILL_NAME_PATTERN.fullmatch(name) is None
    ):
        shown = repr(name) if name else "an empty name"
        raise InvalidName(
            f"{shown} is not a valid skill name: use 1-64 characters from a-z, 0-9 and '-', "
            "with no '-' at either end or two in a row (like run-the-tests)"
        )
    return name


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a valid team, member or agent name, else raise InvalidName."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        shown = repr(name) if name else "an empty name"
        raise InvalidName(
            f"{shown} is not a valid {what}: use 1-40 characters from a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    return name


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class MemberStatus(StrEnum):
    STARTING = "starting"
    WORKING = "working"
    IDLE = "idle"
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"
    FAILED = "failed"  # cannot start (its configuration is wrong); not restarted


class MemberRole(StrEnum):
    LEAD = "lead"
    TEAMMATE = "teammate"


class MessageKind(StrEnum):
    TEXT = "text"
    SHUTDOWN_REQUEST = "shutdown_request"
    SHUTDOWN_RESPONSE = "shutdown_response"
    PLAN_APPROVAL_REQUEST = "plan_approval_request"
    PLAN_APPROVAL_RESPONSE = "plan_approval_response"
    IDLE_NOTIFICATION = "idle_notification"
    TASK_ASSIGNMENT = "task_assignment"
    # A tool call an ask rule paused, and the person's (or the lead's) answer to it.
    PERMISSION_REQUEST = "permission_request"
    PERMISSION_RESPONSE = "permission_response"
    # The person's Esc: stop after the current tool call and wait for their next word.
    INTERRUPT = "interrupt"

    @property
    def is_request(self) -> bool:
        return self in (
            MessageKind.SHUTDOWN_REQUEST,
            MessageKind.PLAN_APPROVAL_REQUEST,
            MessageKind.PERMISSION_REQUEST,
        )

    @property
    def answers(self) -> MessageKind | None:
        """The request kind this kind responds to, if it is a response."""
        return {
            MessageKind.SHUTDOWN_RESPONSE: MessageKind.SHUTDOWN_REQUEST,
            MessageKind.PLAN_APPROVAL_RESPONSE: MessageKind.PLAN_APPROVAL_REQUEST,
            MessageKind.PERMISSION_RESPONSE: MessageKind.PERMISSION_REQUEST,
        }.get(self)


class HookEvent(StrEnum):
    TASK_CREATED = "TaskCreated"
    TASK_COMPLETED = "TaskCompleted"
    TEAMMATE_IDLE = "TeammateIdle"


def to_json(value: Any) -> Any:
    """Turn a dataclass (or list of them) into JSON-ready data, with the format version."""
    if isinstance(value, RunSettings):
        return value.to_json()  # a run's settings read as they are stored
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"v": FORMAT_VERSION}
        for f in dataclasses.fields(value):
            if f.metadata.get("secret"):
                continue
            item = getattr(value, f.name)
            out[f.name] = to_json(item) if dataclasses.is_dataclass(item) else _plain(item)
        return out
    return _plain(value)


def _plain(item: Any) -> Any:
    if isinstance(item, StrEnum):
        return item.value
    if isinstance(item, tuple):
        return [to_json(i) if dataclasses.is_dataclass(i) else _plain(i) for i in item]
    return item


@dataclass(frozen=True, slots=True)
class Team:
    """A named group of members sharing one board."""

    id: int
    name: str
    description: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Member:
    """A lead or teammate of a team, with its liveness."""

    team: str
    name: str
    role: MemberRole
    agent: str | None
    model: str | None
    status: MemberStatus
    heartbeat_at: float | None
    pid: int | None
    host: str | None
    created_at: float
    token_hash: str = field(repr=False, metadata={"secret": True})


@dataclass(frozen=True, slots=True)
class Task:
    """A unit of work on the board.

    ``blocked_by`` lists every blocker; ``waiting_on`` the ones not yet completed;
    ``dead_blockers`` the failed or cancelled ones, which mean this task can never
    become ready until a person changes its blockers.
    """

    team: str
    id: int
    title: str
    description: str
    status: TaskStatus
    priority: int
    assignee: str | None
    owner: str | None
    fencing_token: int | None
    lease_expires_at: float | None
    attempts: int
    max_attempts: int
    result: str | None
    reason: str | None
    created_by: str | None
    created_at: float
    updated_at: float
    blocked_by: tuple[int, ...] = ()
    waiting_on: tuple[int, ...] = ()
    dead_blockers: tuple[int, ...] = ()
    admitted: bool = True
    plan_key: str | None = None  # the task's id in the plan file it was loaded from

    @property
    def ready(self) -> bool:
        return self.status == TaskStatus.PENDING and self.admitted and not self.waiting_on


@dataclass(frozen=True, slots=True)
class NewTask:
    """What a caller gives to put a task on the board."""

    title: str
    description: str = ""
    blocked_by: tuple[int, ...] = ()
    assignee: str | None = None
    priority: int = 0
    max_attempts: int | None = None


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """One task of a batch put on the board in one transaction (``Store.add_tasks``).

    ``after`` names blockers by their position in the batch (earlier positions only);
    ``task.blocked_by`` names tasks already on the board. ``key``, when given, is unique
    in the team: an item whose key is taken already adds nothing and stands for the
    task that holds it, so loading the same plan twice adds each task once.
    """

    task: NewTask
    after: tuple[int, ...] = ()
    key: str | None = None


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """A partial update of a pending or running task; None means unchanged."""

    title: str | None = None
    description: str | None = None
    add_blockers: tuple[int, ...] = ()
    remove_blockers: tuple[int, ...] = ()
    assignee: str | None = None
    unassign: bool = False
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A task taken under a lease; only ``fencing_token`` may act on it."""

    task: Task
    fencing_token: int
    lease_expires_at: float


@dataclass(frozen=True, slots=True)
class FileClaim:
    """A member's advisory claim on paths of the project while it works on a task.

    ``pattern`` is a path or glob relative to the project root. The claim counts only
    while ``member`` holds ``task_id`` under the claim it was made with (the same
    fencing token, an unexpired lease): it ends with the task, its release, or its
    lease, with nothing to clean up. accord's file tools refuse other members' writes
    to paths it matches; bash is not checked."""

    team: str
    task_id: int
    member: str
    pattern: str
    claimed_at: float


@dataclass(frozen=True, slots=True)
class Message:
    """One mailbox entry, kept until its recipient acknowledges it."""

    id: int
    team: str
    sender: str
    recipient: str
    kind: MessageKind
    body: str
    summary: str | None
    request_id: str | None
    reply_to: int | None
    idempotency_key: str | None
    sent_at: float
    delivered_at: float | None
    acked_at: float | None
    deliveries: int
    broadcast: bool = False
    #: The channel it was posted to (``#design``): a subscriber's copy, or the post itself
    #: (whose recipient is the channel) that the channel's history lists.
    channel: str | None = None
    #: A routed message's first row (its own id there): the id its one owner is kept under.
    route_id: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Who owns a routed message: one member under a lease, with a fencing ``token``
    raised at each change of owner, the rule (or who) that chose it, and the members
    ownership moves on to, in order, when the lease runs out."""

    team: str
    message_id: int
    owner: str
    token: int
    lease_expires_at: float
    rule: str
    candidates: tuple[str, ...]
    decided_at: float
    #: The owner's reply that answered it (the route then holds no lease), if any.
    answer_id: int | None = None
    answered_at: float | None = None
    #: Whether the message's sender accepted the answer; None while not judged.
    accepted: bool | None = None
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """A routing decision a send or post writes with the message, in one transaction."""

    owner: str
    rule: str
    lease_seconds: float
    candidates: tuple[str, ...] = ()
    #: What the message is about (its tags, and its channel): the team's working
    #: patterns count ownership and answers by these.
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkPattern:
    """What one member did on one topic (``*``: on everything), across runs: routed
    messages it owned, answered, and had its answer accepted or turned down, and
    deliberations whose answer it wrote."""

    member: str
    topic: str
    owned: int = 0
    answered: int = 0
    accepted: int = 0
    rejected: int = 0
    syntheses: int = 0

    @property
    def score(self) -> int:
        """How ``prefer = "history"`` ranks it: each answer counts 1, and 1 more once
        accepted or 2 less once turned down; each synthesis counts 1."""
        return self.answered + self.accepted - 2 * self.rejected + self.syntheses


class DeliberationPhase(StrEnum):
    """Where a deliberation stands; the store moves it forward, never back."""

    POSITIONS = "positions"  # each participant writes its own, unseen by the others
    EXCHANGE = "exchange"  # positions revealed; replies for up to ``rounds`` rounds
    SYNTHESIS = "synthesis"  # one synthesizer, under a lease, writes the answer
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Participant:
    """A member asked in a deliberation: ``absent`` once it missed a deadline,
    ``agreed`` once it agreed during the exchange (it owes no more replies)."""

    member: str
    absent: bool
    agreed: bool


@dataclass(frozen=True, slots=True)
class Position:
    """A participant's text for one round: round 0 is its independent position, round
    N its reply in the exchange's N-th round. One per participant per round."""

    member: str
    round: int
    body: str
    submitted_at: float


@dataclass(frozen=True, slots=True)
class Deliberation:
    """A question put to several members, in enforced phases, ending in one answer."""

    team: str
    id: int
    question: str
    asker: str
    channel: str
    phase: DeliberationPhase
    round: int
    rounds: int
    synthesizer: str | None
    phase_seconds: float
    deadline: float
    lease_holder: str | None
    lease_until: float | None
    lease_token: int
    supersedes: int | None
    answer: str | None
    agreement: str | None
    dissent: str | None
    memory_id: int | None
    created_at: float
    finished_at: float | None
    participants: tuple[Participant, ...]


@dataclass(frozen=True, slots=True)
class Channel:
    """A named, durable topic of a team; each post reaches every subscriber's inbox."""

    team: str
    name: str
    creator: str
    created_at: float
    subscribers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChannelNews:
    """What is new in a channel for one reader: its posts waiting unacknowledged in the
    reader's inbox, and the channel's newest post."""

    channel: str
    unread: int
    newest: Message | None


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """What a sender gives to send a message."""

    sender: str
    recipient: str
    body: str
    kind: MessageKind = MessageKind.TEXT
    summary: str | None = None
    reply_to: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One row of a team's append-only log; ``seq`` has no gaps."""

    team: str
    seq: int
    at: float
    actor: str | None
    kind: str
    payload: dict[str, Any]


class WakeReason(StrEnum):
    """Why a wait for work returned (``Wake.reason``)."""

    MAIL = "mail"  # unread mail is waiting
    TASK = "task"  # a task is ready to claim (or a lease it may take over has ended)
    NONE = "none"  # from ``Store.pending_work``: nothing to do yet
    TIMEOUT = "timeout"  # the wait's time ran out with nothing to do
    STOPPED = "stopped"  # the waiter was asked to stop
    OTHER = "other"  # the waiter's own condition (``wait(also=...)``) ended the wait


@dataclass(frozen=True, slots=True)
class Wake:
    """Why ``wait`` returned (a ``WakeReason``), with the unread mail and ready tasks
    counted; from ``Store.pending_work``, ``none`` when there is nothing."""

    reason: WakeReason
    mail: int = 0
    ready_tasks: int = 0
    #: When time alone may change this (a message becoming visible, a lease ending),
    #: by the store's clock; None when nothing is due.
    next_at: float | None = None


class TranscriptKind(StrEnum):
    MESSAGE = "message"  # a conversation turn (body: a ChatMessage dict)
    SESSION = "session"  # a fresh context began (body: why, which task)
    COMPACTION = "compaction"  # older turns were folded (body: the summary)
    NOTE = "note"  # something the runtime records for people (interrupted call, stop)
    PLAN_STATE = "plan_state"  # the plan approval moved (body: {"state": a PlanState})


class PlanState(StrEnum):
    """Where a ``plan_required`` member's plan for its task stands: it works read-only
    until the lead approves (see ``accord.agent.plan_approval``)."""

    NEEDED = "needed"  # no plan sent yet, or the lead rejected the last one
    SENT = "sent"  # sent with send_plan; the member waits for the lead's answer
    APPROVED = "approved"  # every tool is open (also: no plan is required here)


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One saved line of a member's history; ``seq`` orders a member's whole history."""

    member: str
    session: int
    kind: TranscriptKind
    body: dict[str, Any]
    task_id: int | None = None
    seq: int = 0
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class LiveOutput:
    """What a member's model is writing right now, before the reply is saved: the text so
    far of the model call in progress (and the tool calls it has begun), for a viewer to
    stream. Scratch, not history: replaced as the reply grows, cleared once it is saved
    into the transcript, never in the event log."""

    member: str
    session: int
    text: str
    tools: tuple[str, ...] = ()  # names of the tool calls begun so far, in order
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One model call: who, for which task, which model, tokens, and cost.

    ``cost_usd`` is None when the model has no known price (unpriced), never 0
    by default. ``suspect`` says why the server's counts were not believed (they
    were replaced by estimates); the store logs it as a ``usage_suspect`` event in
    the same transaction as the row.
    """

    member: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    task_id: int | None = None
    latency_seconds: float = 0.0
    at: float = 0.0
    id: int = 0
    suspect: str | None = None

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Spend of a group (a member, a task, a model, or the team)."""

    key: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    unpriced_calls: int

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


class RunStatus(StrEnum):
    RUNNING = "running"  # a supervisor serves the team
    STOPPING = "stopping"  # asked to stop (accord stop, Ctrl+C, budget): members are shut down
    STOPPED = "stopped"  # nothing runs; `accord resume` brings it back
    FINISHED = "finished"  # the lead called finish


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended (``finished``, ``stopped``, ``interrupted``, ``budget``...) and why,
    in one line; kept in the run's settings as ``ended``."""

    outcome: str
    reason: str


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What a run was started with, and how it ended: stored with the run as JSON.

    ``to_json`` writes what ``accord run`` has always stored (the four settings, each
    even when None; ``ended`` once there is one). ``from_json`` reads any stored run,
    however old or new: a missing key (or a value that cannot be read) takes its
    default, and a key this version does not know is kept in ``extra`` and written back
    as it was. So ``from_json(s.to_json()) == s``.
    """

    teammate_model: str | None = None  # the model a teammate gets when nothing else names one
    max_teammates: int | None = None  # the most teammates the lead may have at once
    budget_usd: float | None = None  # the run's team budget (`accord run --budget`)
    delegate: bool = False  # the lead only delegates: team tools, no files or shell
    ended: RunOutcome | None = None  # set when the run ends
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "teammate_model": self.teammate_model,
            "max_teammates": self.max_teammates,
            "budget_usd": self.budget_usd,
            "delegate": self.delegate,
        }
        if self.ended is not None:
            out["ended"] = {"outcome": self.ended.outcome, "reason": self.ended.reason}
        return {**self.extra, **out}

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> RunSettings:
        extra = dict(data or {})
        model = extra.pop("teammate_model", None)
        ended = extra.pop("ended", None)
        return RunSettings(
            teammate_model=str(model) if model is not None else None,
            max_teammates=_number(extra.pop("max_teammates", None), int),
            budget_usd=_number(extra.pop("budget_usd", None), float),
            delegate=bool(extra.pop("delegate", False)),
            # As `accord status` has always read it: a missing reason is an empty one.
            ended=RunOutcome(str(ended.get("outcome")), str(ended.get("reason") or ""))
            if isinstance(ended, dict)
            else None,
            extra=extra,
        )


class RunSettingsChange(TypedDict, total=False):
    """The settings a run update changes, each to the value given; the rest stay as
    they are. The store applies it inside its transaction, so two updates at once
    (``resume --budget`` and a run's end) both hold."""

    teammate_model: str | None
    max_teammates: int | None
    budget_usd: float | None
    delegate: bool
    ended: RunOutcome | None


_N = TypeVar("_N", int, float)


def _number(value: Any, kind: Callable[[Any], _N]) -> _N | None:
    """``value`` as a ``kind``; None when it is missing or not a number."""
    try:
        return kind(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Run:
    """A team's run: its goal, status, supervisor lease, and who should be running."""

    team: str
    goal: str
    lead: str
    status: RunStatus
    summary: str | None
    settings: RunSettings
    wanted: tuple[str, ...]
    supervisor_token: int
    supervisor_pid: int | None
    supervisor_host: str | None
    supervisor_expires_at: float | None
    started_at: float
    updated_at: float


class HostStatus(StrEnum):
    """Where a host's supervisor stands (``HostSupervisor.status``)."""

    LIVE = "live"  # serving, under a lease it renews
    STOPPED = "stopped"  # left the team in good order
    LOST = "lost"  # its lease ran out: its members count as gone and are placed again


@dataclass(frozen=True, slots=True)
class HostSupervisor:
    """A supervisor serving one host of a team: it takes spawn requests for that host
    (or any host) while it has free slots, and holds a lease it renews."""

    team: str
    host: str
    machine: str  # the real host name, where ``pid`` can be checked
    pid: int
    token: int
    slots: int | None  # None: no limit
    status: HostStatus
    started_at: float
    expires_at: float | None

    def live(self, now: float) -> bool:
        return (
            self.status == HostStatus.LIVE and self.expires_at is not None and self.expires_at > now
        )


class SpawnStatus(StrEnum):
    """Where a spawn request stands (``Spawn.status``): ``pending`` and ``taken`` wait
    for a supervisor; ``started`` and ``refused`` are final."""

    PENDING = "pending"  # waiting for a supervisor (of its host, or any)
    TAKEN = "taken"  # a host's supervisor took it and is starting the member
    STARTED = "started"  # the member's process was started
    REFUSED = "refused"  # it could not be started; ``Spawn.reason`` says why

    @property
    def final(self) -> bool:
        return self in (SpawnStatus.STARTED, SpawnStatus.REFUSED)


@dataclass(frozen=True, slots=True)
class Spawn:
    """A request (from the lead) that the supervisor start a member."""

    id: int
    team: str
    name: str
    agent: str | None
    model: str | None
    host: str | None
    requested_by: str | None
    status: SpawnStatus
    reason: str | None
    created_at: float
    taken_by: str | None = None  # the host whose supervisor took it


class MemoryType(StrEnum):
    DECISION = "decision"  # can be superseded; does not fade while active
    INSIGHT = "insight"  # changes how the team works; fades slowly
    OBSERVATION = "observation"  # a pattern noticed; repeats strengthen it; fades faster
    STORY = "story"  # context only: never ranked by recall, fetched by id or type


class MemoryStatus(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class MemoryEntry:
    """One typed piece of knowledge, with where it came from and how alive it is.

    ``scope`` is ``team``, ``project`` (every team of the store sees it) or
    ``member:NAME``. ``count`` is how many times it was noted (reinforcement);
    ``seen_at`` when it was last noted or confirmed.
    """

    id: int
    team: str | None
    scope: str
    type: MemoryType
    text: str
    tags: tuple[str, ...]
    status: MemoryStatus
    author: str | None
    task_id: int | None
    session: int | None
    created_at: float
    seen_at: float
    count: int = 1
    supersedes: int | None = None
    superseded_by: int | None = None


@dataclass(frozen=True, slots=True)
class TaskAttempt:
    """One attempt at a task: its claim's number (1 first), who held it, and how it
    ended: ``None`` while it runs, else completed, failed, retried, released,
    lease_lost or cancelled."""

    team: str
    task_id: int
    attempt: int
    member: str
    started_at: float
    ended_at: float | None
    outcome: str | None


class LessonCause(StrEnum):
    """Why an attempt did not succeed."""

    REFUSED = "refused"  # a TaskCompleted hook refused the completion
    MERGE_REFUSED = "merge_refused"  # the merge gate refused it (a conflict)
    FAILED = "failed"  # the task failed, or its member gave it up
    LEASE_LOST = "lease_lost"  # its member crashed or went silent past the lease
    BUDGET = "budget"  # a budget stopped its member


@dataclass(frozen=True, slots=True)
class Lesson:
    """What an attempt that did not succeed taught: an ``insight`` memory (``memory``,
    which later lessons like it reinforce), linked to the task, the attempt and the
    evidence; ``confirmed_at`` once an attempt shown it succeeded."""

    task_id: int
    attempt: int
    slot: str
    cause: LessonCause
    author: str
    evidence: str
    created_at: float
    confirmed_at: float | None
    memory: MemoryEntry


@dataclass(frozen=True, slots=True)
class NewLesson:
    """A lesson to record: ``slot`` makes it once per attempt (its cause, or for the
    n-th refusal ``refused#n``), so a retry after a crash does not count it twice."""

    task_id: int
    attempt: int
    slot: str
    cause: LessonCause
    text: str
    author: str
    evidence: str
    scope: str = "team"


@dataclass(frozen=True, slots=True)
class NewMemory:
    """What a member (or person) gives to remember something."""

    type: MemoryType
    text: str
    tags: tuple[str, ...] = ()
    scope: str = "team"
    author: str | None = None
    task_id: int | None = None
    session: int | None = None
    supersedes: int | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A memory found by the text index, with its raw relevance (higher is better)."""

    entry: MemoryEntry
    relevance: float


@dataclass(frozen=True, slots=True)
class ContinuityNote:
    """A member's first-person note of where it is; versioned, latest wins."""

    member: str
    version: int
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class TeamDump:
    """Everything a store holds for one team, row by row, for moving it to another store.

    ``rows`` maps a table to its rows (column to value, without the team's id);
    ``project_memories`` are the project-wide entries the team could see."""

    team: str
    rows: dict[str, list[dict[str, Any]]]
    project_memories: list[dict[str, Any]]

    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self.rows.items()}


class SkillStatus(StrEnum):
    """Where a version of a skill stands: it took effect (active: the highest active
    version is the skill's current one), waits for its review, or was rejected."""

    ACTIVE = "active"
    PENDING = "pending"
    REJECTED = "rejected"


class SkillOrigin(StrEnum):
    """Where a skill's text comes from: the team's store, the project's
    ``.claude/skills``, or the user's ``~/.claude/skills``."""

    STORE = "store"
    PROJECT = "project"
    USER = "user"


@dataclass(frozen=True, slots=True)
class SkillDraft:
    """The text of a skill's version, as a writer gives it: ``meta`` holds the front
    matter's other keys (allowed-tools...), ``files`` the files beside SKILL.md by path."""

    name: str
    description: str
    body: str
    meta: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SkillVersion:
    """One version of one of the team's skills, as the store keeps it."""

    name: str
    version: int
    description: str
    body: str
    meta: dict[str, Any]
    files: dict[str, str]
    status: SkillStatus
    origin: SkillOrigin
    supersedes: int | None
    reason: str | None
    author: str
    created_at: float
    reviewer: str | None = None
    reviewed_at: float | None = None
    review_reason: str | None = None


@dataclass(frozen=True, slots=True)
class SkillUse:
    """One ``use_skill`` call: the version a member loaded, for which task and attempt
    (None: outside a task), and that attempt's ``outcome`` as the board shows it now:
    succeeded, failed (failed, retried, refused for good or its lease lost), open (the
    attempt goes on), cancelled, or none (no task)."""

    id: int
    skill: str
    version: int
    origin: SkillOrigin
    member: str
    task_id: int | None
    attempt: int | None
    used_at: float
    outcome: str = "none"
