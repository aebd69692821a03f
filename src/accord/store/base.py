"""The store interface: everything accord keeps, behind one set of atomic operations.

The interface is one protocol per noun: ``TeamStore`` (teams, members),
``BoardStore`` (tasks, claims, leases), ``MailStore``, ``WakeStore``, ``LogStore``
(events, transcripts, usage), ``RunStore`` (runs, spawns, hosts), ``MemoryStore``
and ``DumpStore``. ``Store`` is their union, plus the store's lifecycle; a service
that uses one part takes that part. Their docstrings are the contract.

A backend (SQLite, PostgreSQL) implements every method here and must pass
``accord.testing.conformance`` (which also checks that no method is left to a
protocol's empty body); both build on ``accord.store.sql``, which writes each
operation once. Each method is one transaction: it either
happens whole, with its event appended to the team's log in the same
transaction, or not at all. Services above this layer add the rules that need
no atomicity (hooks, identity checks); anything that must be decided together
with a write (which task a claim takes, whether a token is current, whether a
blocker closes a cycle) is decided here.

Times are seconds since the epoch from the store's ``clock``, so tests can pass
a fake one and move leases and visibility timeouts deterministically.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from accord.events import EventKind
from accord.types import (
    Candidate,
    Claim,
    ContinuityNote,
    Event,
    HostSupervisor,
    Member,
    MemberRole,
    MemberStatus,
    MemoryEntry,
    MemoryStatus,
    MemoryType,
    Message,
    NewMemory,
    NewTask,
    OutgoingMessage,
    PlannedTask,
    Run,
    RunSettings,
    RunStatus,
    Spawn,
    SpawnStatus,
    Task,
    TaskChanges,
    TaskStatus,
    Team,
    TeamDump,
    TranscriptEntry,
    UsageRecord,
    UsageTotal,
    Wake,
)

Clock = Callable[[], float]

# Caps that keep one bad caller from filling the store; errors say which was hit.
MAX_TITLE = 500
MAX_DESCRIPTION = 256 * 1024
MAX_RESULT = 256 * 1024
MAX_BODY = 256 * 1024
MAX_SUMMARY = 500
MAX_KEY = 200
MAX_PAYLOAD = 64 * 1024
MAX_MEMORY = 8 * 1024
MAX_CONTINUITY = 4 * 1024

UNSET: Any = object()


class TeamStore(Protocol):
    """Teams and their members (the roster)."""

    def create_team(self, name: str, description: str = "", actor: str | None = None) -> Team:
        """Create a team; AlreadyExists if the name is taken."""

    def get_team(self, name: str) -> Team:
        """UnknownTeam if absent."""

    def list_teams(self) -> list[Team]:
        """Every team, by name."""

    def delete_team(self, name: str) -> None:
        """Remove a team and everything in it (board, mail, roster, log)."""

    def add_member(
        self,
        team: str,
        name: str,
        *,
        token_hash: str,
        role: MemberRole = MemberRole.TEAMMATE,
        agent: str | None = None,
        model: str | None = None,
        actor: str | None = None,
    ) -> Member:
        """Add a member in status ``stopped``; AlreadyExists if the name is taken."""

    def get_member(self, team: str, name: str) -> Member:
        """UnknownMember if absent."""

    def list_members(self, team: str) -> list[Member]:
        """Every member of the team, by name."""

    def update_member(
        self,
        team: str,
        name: str,
        *,
        status: MemberStatus | None = None,
        pid: int | None = UNSET,
        host: str | None = UNSET,
        agent: str | None = UNSET,
        model: str | None = UNSET,
        token_hash: str | None = None,
        heartbeat: bool = False,
        actor: str | None = None,
    ) -> Member:
        """Change a member's fields; a status change is logged, a bare heartbeat is not."""

    def remove_member(self, team: str, name: str, actor: str | None = None) -> list[int]:
        """Remove a member; its in-progress tasks go back to pending. Returns their ids."""


class BoardStore(Protocol):
    """The board: tasks, their dependencies, and claims on them under leases."""

    def add_task(
        self,
        team: str,
        new: NewTask,
        *,
        max_attempts: int,
        actor: str | None = None,
        admitted: bool = True,
    ) -> Task:
        """Put a task on the board. Unadmitted tasks are never ready until admitted."""

    def add_tasks(
        self,
        team: str,
        items: Sequence[PlannedTask],
        *,
        max_attempts: int,
        actor: str | None = None,
        admitted: bool = True,
    ) -> list[tuple[Task, bool]]:
        """Put a batch of tasks on the board in one transaction, one ``task_created``
        event each: all of them, or (on any bad item) none.

        Returns, per item in order, its task and whether it was created now; an item
        whose ``key`` the team already holds is not created and gets the existing task.
        """

    def admit_task(self, team: str, task_id: int, actor: str | None = None) -> Task:
        """Let a task held for its TaskCreated hook become ready."""

    def remove_task(self, team: str, task_id: int, reason: str, actor: str | None = None) -> None:
        """Delete a task that was never admitted (its TaskCreated hook refused it)."""

    def get_task(self, team: str, task_id: int) -> Task:
        """UnknownTask if absent."""

    def list_tasks(
        self, team: str, *, status: TaskStatus | None = None, ready: bool = False
    ) -> list[Task]:
        """Tasks by id; ``ready`` keeps only those a claim could take now."""

    def update_task(
        self, team: str, task_id: int, changes: TaskChanges, actor: str | None = None
    ) -> Task:
        """Apply changes; blockers change only while pending and never make a cycle."""

    def claim_task(
        self,
        team: str,
        member: str,
        *,
        lease_seconds: float,
        task_id: int | None = None,
    ) -> Claim | None:
        """Atomically take the best ready task (or the named one) under a lease.

        Best means: assigned to ``member`` first, then higher priority, then more
        work waiting behind it, then older. Returns None when nothing is ready.
        """

    def heartbeat_task(
        self, team: str, task_id: int, member: str, token: int, *, lease_seconds: float
    ) -> Claim:
        """Extend a lease; StaleToken or NotClaimHolder if the claim is not current."""

    def check_claim(self, team: str, task_id: int, member: str, token: int) -> Task:
        """Raise unless ``member`` holds ``task_id`` under ``token`` right now."""

    def complete_task(
        self, team: str, task_id: int, member: str, token: int, result: str | None = None
    ) -> Task:
        """Complete a held task. Repeating the same completion returns the task unchanged."""

    def fail_task(
        self,
        team: str,
        task_id: int,
        member: str,
        token: int,
        reason: str,
        *,
        retry: bool = False,
    ) -> Task:
        """Fail a held task, or with ``retry`` put it back to pending while attempts remain."""

    def release_task(self, team: str, task_id: int, member: str, token: int, reason: str) -> Task:
        """Give a held task back to pending without using up an attempt: its holder
        could not work for a reason that is not the task's (the model was unreachable).
        Writes ``task_failed`` with status pending and ``attempt_kept``."""

    def cancel_task(self, team: str, task_id: int, reason: str, actor: str | None = None) -> Task:
        """Cancel a task that is not finished; its holder's token goes stale."""

    def expire_leases(self, team: str) -> list[Task]:
        """Return tasks whose lease ended to pending (or failed, out of attempts)."""


class MailStore(Protocol):
    """Mailboxes: messages between members, the person and channels."""

    def send_message(self, team: str, message: OutgoingMessage) -> list[Message]:
        """Send to a member, or to ``*`` for everyone but the sender (one row each).

        With an idempotency key already used by the same sender, returns the
        original messages and sends nothing.
        """

    def receive_messages(
        self, team: str, member: str, *, visibility_timeout: float, limit: int | None = None
    ) -> list[Message]:
        """Deliver unacknowledged, visible messages in order; each becomes invisible
        for ``visibility_timeout`` seconds and is delivered again if not acknowledged."""

    def ack_messages(self, team: str, member: str, ids: Sequence[int]) -> list[int]:
        """Acknowledge messages addressed to ``member``; returns the ids newly acknowledged.

        UnknownMessage (and nothing changes) if any id is not addressed to ``member``.
        """

    def get_message(self, team: str, message_id: int) -> Message:
        """UnknownMessage if absent."""

    def list_messages(
        self,
        team: str,
        *,
        member: str | None = None,
        unacked: bool = False,
        limit: int = 100,
    ) -> list[Message]:
        """The newest ``limit`` messages (to or from ``member``), oldest first."""


class WakeStore(Protocol):
    """What a waiting member checks: whether anything changed, and what is there for it."""

    def change_marker(self) -> int:
        """A cheap number that changes whenever anyone commits to the store: at once on
        SQLite, within a notification's delay (a poll's, at worst) on a server."""

    def pending_work(self, team: str, member: str) -> Wake:
        """How much visible mail and how many claimable ready tasks ``member`` has."""


class LogStore(Protocol):
    """The team's log: events, transcripts and model usage."""

    def append_event(
        self, team: str, kind: EventKind | str, payload: dict[str, Any], actor: str | None = None
    ) -> Event:
        """Log something that is not a state change of its own (a hook run, a note).

        accord names an ``EventKind`` (the ``Log`` service takes nothing else); the store
        logs whatever kind it is given, as a log may hold kinds of other versions."""

    def read_events(self, team: str, *, since: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > since``, in order."""

    def append_transcript(
        self,
        team: str,
        entries: Sequence[TranscriptEntry],
        *,
        ack: Sequence[int] = (),
        usage: UsageRecord | None = None,
    ) -> list[TranscriptEntry]:
        """Append entries to their members' transcripts, in order, and acknowledge the
        messages ``ack`` (addressed to the entries' member) in the same transaction,
        so a message is in the transcript exactly when it is acknowledged. ``usage``,
        when given, is recorded in that transaction too (one commit per model turn)."""

    def read_transcript(
        self,
        team: str,
        member: str,
        *,
        session: int | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> list[TranscriptEntry]:
        """A member's saved history (one session, or all), oldest first."""

    def last_session(self, team: str, member: str) -> int:
        """The member's newest session number, 0 when it has none."""

    def record_usage(self, team: str, record: UsageRecord) -> UsageRecord:
        """Store one model call's usage (and its event); returns it with id and time."""

    def usage_totals(
        self,
        team: str,
        *,
        by: Literal["member", "task", "model"] | None = None,
        member: str | None = None,
    ) -> list[UsageTotal]:
        """Spend grouped ``by`` (or one total with key None), optionally for one member."""


class RunStore(Protocol):
    """Runs, their supervisors, spawn requests, and one supervisor per host."""

    def start_run(self, team: str, goal: str, lead: str, settings: RunSettings) -> Run:
        """Begin the team's run (or begin it again): status running, the lead wanted."""

    def get_run(self, team: str) -> Run | None:
        """The team's run, or None if it never had one."""

    def update_run(
        self,
        team: str,
        *,
        status: RunStatus | None = None,
        summary: str | None = None,
        want: Sequence[str] = (),
        unwant: Sequence[str] = (),
        actor: str | None = None,
        settings: RunSettings | None = None,
    ) -> Run:
        """Change the run's status or summary, who should be running, or its settings
        (``settings`` replace the run's: a resume raising the budget, the run's end); the
        ``run_updated`` event logs only the settings that changed."""

    def claim_supervisor(
        self, team: str, pid: int, host: str, lease_seconds: float, *, take_over: bool = False
    ) -> Run:
        """Become the team's one supervisor; InvalidState while another holds a live lease,
        unless ``take_over`` (the caller knows the holder is dead)."""

    def renew_supervisor(self, team: str, token: int, lease_seconds: float) -> Run:
        """Extend the supervisor lease; StaleToken if another supervisor took over."""

    def release_supervisor(self, team: str, token: int) -> None:
        """Give the lease up (no-op if it is no longer ours)."""

    def request_spawn(
        self,
        team: str,
        name: str,
        *,
        token_hash: str,
        agent: str | None = None,
        model: str | None = None,
        host: str | None = None,
        requested_by: str | None = None,
    ) -> Spawn:
        """Ask for a member to be started: added (status starting) if new, made wanted.
        InvalidState if it is already wanted and live, or already requested."""

    def pending_spawns(self, team: str) -> list[Spawn]:
        """Spawn requests not yet handled (pending, or taken by a host not yet done with
        them), oldest first."""

    def finish_spawn(
        self, team: str, spawn_id: int, status: SpawnStatus, reason: str | None = None
    ) -> Spawn:
        """Mark a request ``started`` or ``refused`` (a refusal unwants the member)."""

    def register_host(
        self,
        team: str,
        host: str,
        *,
        machine: str,
        pid: int,
        slots: int | None,
        lease_seconds: float,
        take_over: bool = False,
    ) -> HostSupervisor:
        """Serve ``host`` of the team with a new token and lease. InvalidState while another
        supervisor holds a live lease for that host, unless ``take_over`` (it is known dead).
        Members a previous supervisor of the host ran are marked as nowhere, and spawn
        requests it had taken are pending again."""

    def renew_host(self, team: str, host: str, token: int, lease_seconds: float) -> HostSupervisor:
        """Extend the host's lease; StaleToken if another supervisor took the host over or
        it was declared lost."""

    def release_host(self, team: str, host: str, token: int) -> None:
        """Stop serving the host (no-op if no longer ours); its taken requests are pending
        again, and its members can be placed elsewhere."""

    def list_hosts(self, team: str) -> list[HostSupervisor]:
        """Every host that has served the team, oldest first."""

    def take_spawn(self, team: str, host: str, token: int) -> Spawn | None:
        """Take the oldest pending spawn request for ``host`` or any host, so that no other
        supervisor starts it; StaleToken if the token is not the host's current one."""

    def place_wanted(self, team: str) -> list[Spawn]:
        """Declare hosts whose lease ran out lost (their taken requests pending again,
        their members crashed and nowhere), then request a spawn for every member the run
        wants (but the lead) that runs on no live host and waits for no request. A member
        pinned to a host (its spawn named one) is requested for that host only."""


class MemoryStore(Protocol):
    """Typed memory entries, their search and vectors, and continuity notes."""

    def add_memory(
        self,
        team: str,
        new: NewMemory,
        *,
        same: Callable[[str, str], bool] | None = None,
        candidates: Sequence[str] = (),
    ) -> tuple[MemoryEntry, bool]:
        """Store an entry, or reinforce one already there; returns it and whether it was
        reinforced.

        With ``same`` (a judge of two texts) an active entry of the same type and scope
        that it judges the same, among those with identical text or the ten that best
        match the words ``candidates`` (as ``search_memories`` ranks them), gains one to
        its count and a new ``seen_at`` instead. Decided inside the write transaction,
        so concurrent writers of one observation leave one entry with the right count.
        ``supersedes`` links a new decision to the decision it replaces, one that no
        other decision replaced yet: an active one becomes superseded, a retired one
        stays retired (so a chain whose last decision was retired can go on).
        """

    def get_memory(self, team: str, memory_id: int) -> MemoryEntry:
        """An entry the team can see (its own, or project-wide); UserError if none."""

    def list_memories(
        self,
        team: str,
        *,
        type: MemoryType | None = None,
        status: MemoryStatus | None = None,
        scopes: Sequence[str] | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[MemoryEntry]:
        """Entries the team can see, newest first (only those of ``ids``, if given;
        an id the team cannot see is left out)."""

    def search_memories(
        self,
        team: str,
        words: Sequence[str],
        *,
        must: Sequence[str] = (),
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool = False,
        limit: int = 50,
    ) -> list[Candidate]:
        """Active entries in ``scopes`` of ``types`` that contain any of ``must`` (or, if
        ``must`` is empty, any of ``words``), best first, at most ``limit``.

        Each is scored by BM25 over all of ``words`` (a word in the text weighs 1.0, in
        the tags 0.5; the relevance is higher for a better match), so ``must`` only
        narrows which entries are ranked, never how. Words are plain text, split again
        by ``accord.text``: nothing in them is query syntax. ``include_superseded``
        adds superseded decisions.
        """

    def memory_matches(self, words: Sequence[str]) -> tuple[int, list[int]]:
        """How many entries the store holds, and how many contain each word: cheap counts
        that let recall choose which words an entry must contain to be ranked."""

    def set_memory_vectors(
        self, team: str, model: str, vectors: Sequence[tuple[int, bytes]]
    ) -> None:
        """Keep each ``(memory_id, vector)`` as the entry's vector from ``model``,
        replacing the one there. Vectors are derived data, like the text index: no
        event is written. UserError if the team cannot see an entry."""

    def memory_vectors(
        self,
        team: str,
        model: str,
        *,
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool = False,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, bytes]]:
        """The ``(memory_id, vector)`` pairs from ``model`` of the entries that
        ``search_memories`` would consider (only those of ``ids``, if given), by id,
        at most ``limit``."""

    def count_memory_vectors(
        self,
        team: str,
        model: str,
        *,
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool = False,
        up_to: int,
    ) -> int:
        """How many vectors ``memory_vectors`` would return, counting no further than
        ``up_to``: whether they are few enough to compare a query with every one."""

    def memories_without_vector(
        self, team: str, model: str, *, after: int = 0, limit: int
    ) -> list[MemoryEntry]:
        """Up to ``limit`` entries the team can see that recall may return (not stories,
        not retired) and that have no vector from ``model`` yet, by id from above
        ``after``."""

    def retire_memory(self, team: str, memory_id: int, actor: str | None = None) -> MemoryEntry:
        """Mark an entry retired (kept, never recalled again)."""

    def import_memories(
        self, team: str, entries: Sequence[MemoryEntry], actor: str | None = None
    ) -> list[MemoryEntry]:
        """Add exported entries in one transaction, keeping their times, counts, status
        and supersession links (renumbered); all or nothing. ``actor`` (None for a
        person) is recorded in the event."""

    def set_continuity(self, team: str, member: str, text: str) -> ContinuityNote:
        """Write a new version of a member's continuity note."""

    def continuity(self, team: str, member: str, *, history: bool = False) -> list[ContinuityNote]:
        """The member's latest note (or every version, oldest first with ``history``)."""


class DumpStore(Protocol):
    """Moving a team between stores."""

    def dump_team(self, team: str) -> TeamDump:
        """Every row the store holds for ``team`` (its history included), read in one
        snapshot."""

    def load_team(self, dump: TeamDump) -> dict[str, int]:
        """Add a dumped team, in one transaction; AlreadyExists if the store has a team
        of that name. Ids are kept where they are free; where another team holds them
        (messages, spawns, memories and usage records are numbered store-wide) they are
        renumbered and the team's event log follows. Project-wide memories are added
        unless an identical one is there. Returns rows written per table."""


class Store(
    TeamStore,
    BoardStore,
    MailStore,
    WakeStore,
    LogStore,
    RunStore,
    MemoryStore,
    DumpStore,
    Protocol,
):
    """One durable home for teams, members, tasks, messages and events: every part above.

    A service that needs one part takes that part (``BoardStore``, ``MailStore``, ...);
    ``open_store`` returns the whole.
    """

    location: str
    clock: Clock = time.time

    def close(self) -> None:
        """Release connections; the store object is not used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
