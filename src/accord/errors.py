"""The exception tree of accord.

Every error accord raises on purpose is an ``AccordError``. Its message is one
line that says what was wrong; the command line prints it after ``error:`` and
exits with the error's ``exit_code``.

An error raised below the front doors says only what was wrong, in neutral words,
and carries what it is about as fields (``team``, ``member``, ``task_id``, and a
stable ``reason`` where one class covers several cases). Each front door words its
own advice from those fields: the command line names a command
(``accord.cli._advice``), an agent's tools name a tool (``accord.agent.tools._advice``).

    AccordError
    ├── UserError                 bad input; nothing was changed (exit 2)
    │   ├── InvalidName           a team, member or agent name outside [a-z0-9][a-z0-9_-]{0,39}
    │   ├── ConfigError           accord.toml is malformed or names something wrong
    │   ├── NotFound
    │   │   ├── UnknownTeam
    │   │   ├── UnknownMember
    │   │   ├── UnknownTask
    │   │   ├── UnknownMessage
    │   │   ├── UnknownChannel
    │   │   ├── UnknownDeliberation
    │   │   ├── UnknownMemory
    │   │   └── UnknownSkill
    │   ├── AlreadyExists         a team or member name is taken
    │   ├── CycleError            a blocker would close a dependency cycle
    │   ├── InvalidState          the task or message is not in a state that allows this
    │   │   └── FileClaimed       another member claimed that path for a task it holds
    │   ├── IdentityError         acting as another member, or a wrong member token
    │   ├── ClaimError
    │   │   ├── StaleToken        the fencing token is no longer the current one
    │   │   └── NotClaimHolder    the task is held by somebody else, or by nobody
    │   ├── MissingKey            the API key a model's provider needs is not set
    │   ├── UsageError            the command line was used wrongly (see its --help)
    │   └── NotARepository        worktree isolation where there is no git repository
    ├── GitError                  a git command failed; git's stderr is in the message (exit 1)
    ├── MergeRefused              the merge gate refused a completion: a conflict, markers left
    ├── MergeBusy                 another completion held the team's merge lock too long
    ├── StoreError                the store cannot be used as it is (exit 2)
    │   ├── StoreNotFound
    │   ├── StoreLocked           another writer held the lock past the busy timeout
    │   ├── StoreCorrupt          not a database, or a damaged one
    │   ├── StoreFull             the disk is full
    │   └── StoreUnavailable      the database server cannot be reached, or refused the login
    ├── ModelError                a model call failed after its retries (exit 1)
    │   └── ContextTooLong        the server found the prompt longer than its window
    ├── HookBlocked               a hook exited 2 and refused the action (exit 1)
    ├── DisplayError              a terminal multiplexer (tmux) refused a command (exit 1)
    └── NothingToDo               nothing was ready, for example no task to claim (exit 3)
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from typing_extensions import Unpack


class Reason(StrEnum):
    """Which case of its class an error is, where a front door advises differently."""

    NO_TEAMS = "no_teams"  # UnknownTeam: the store has none at all
    MANY_TEAMS = "many_teams"  # UserError: the store has several and none was chosen
    ON_BOARD = "on_board"  # InvalidState: removing a task that is on the board
    ASSIGNED = "assigned"  # InvalidState: claiming a task assigned to another member
    NEVER_RUN = "never_run"  # InvalidState, UserError (resume): the team has no run
    SUPERVISED = "supervised"  # InvalidState: another supervisor holds the run
    FINISHED = "finished"  # InvalidState: the team's run finished (resume has nothing to do)
    LEADS = "leads"  # InvalidState: the member leads the running team
    RUNNING = "running"  # InvalidState: a live supervisor runs the member
    LIVE = "live"  # InvalidState: removing a member that looks live
    UNMERGED = "unmerged"  # InvalidState: removing a worktree that holds unmerged work
    UNCLAIMED = "unclaimed"  # NotClaimHolder: nobody holds the task
    WRONG_TOKEN = "wrong_token"  # StaleToken: the member holds it under another token
    CLAIM_LOST = "claim_lost"  # StaleToken: the member's own claim ended
    WRONG_MEMBER_TOKEN = "wrong_member_token"  # IdentityError: ACCORD_TOKEN is not theirs
    NOT_A_MEMBER = "not_a_member"  # UserError: a plan assigns a task to a non-member
    NO_STORE = "no_store"  # StoreNotFound: no file, or an empty database
    NOT_ACCORD = "not_accord"  # StoreCorrupt: a database, but not accord's
    NOT_A_DATABASE = "not_a_database"  # StoreCorrupt: not a database at all
    TABLES_MISSING = "tables_missing"  # StoreCorrupt: accord's tables were dropped
    # UserError, InvalidState: not an open permission request (another kind of message,
    # answered already, or past its deadline)
    NOT_AN_OPEN_ASK = "not_an_open_ask"
    NOT_SUBSCRIBED = "not_subscribed"  # InvalidState: posting to a channel not joined
    # InvalidState: reading a deliberation's positions before submitting one's own
    POSITION_FIRST = "position_first"
    WRONG_PHASE = "wrong_phase"  # InvalidState: a deliberation's step outside its phase
    NOT_PARTICIPANT = "not_participant"  # InvalidState: a member outside the deliberation
    NOT_ROUTED = "not_routed"  # InvalidState: ownership asked of a message with no route
    NOT_THE_OWNER = "not_the_owner"  # InvalidState: renewing or releasing another's route
    NOT_THE_LEAD = "not_the_lead"  # InvalidState: a teammate taking a routed message
    # InvalidState: replying to a routed message another member owns
    OWNED_BY_ANOTHER = "owned_by_another"
    NOT_ANSWERED = "not_answered"  # InvalidState: judging a routed message not yet answered


class Fields(TypedDict, total=False):
    """What an error is about (see ``AccordError``)."""

    team: str | None
    member: str | None
    task_id: int | None
    location: str | None
    reason: Reason | None


class AccordError(Exception):
    """Base of every error accord raises on purpose.

    Its fields say what it is about, for a front door to word advice: ``team``,
    ``member``, ``task_id``, ``location`` (a store, as safe to print), ``reason``.
    """

    exit_code = 1

    def __init__(
        self,
        message: str = "",
        *,
        team: str | None = None,
        member: str | None = None,
        task_id: int | None = None,
        location: str | None = None,
        reason: Reason | None = None,
    ) -> None:
        super().__init__(message)
        self.team = team
        self.member = member
        self.task_id = task_id
        self.location = location
        self.reason = reason


class UserError(AccordError):
    """Bad input: the message says what was wrong and how to fix it."""

    exit_code = 2


class InvalidName(UserError):
    """A name that cannot be used for a team, member or agent."""


class ConfigError(UserError):
    """accord.toml cannot be read or does not validate."""


class NotFound(UserError):
    """Something named does not exist."""


class UnknownTeam(NotFound):
    """No team by that name in the store."""


class UnknownMember(NotFound):
    """No member by that name in the team."""


class UnknownTask(NotFound):
    """No task with that id in the team."""


class UnknownMessage(NotFound):
    """No message with that id for that member; ``message_ids`` are the ones missing."""

    def __init__(
        self, message: str, *, message_ids: tuple[int, ...] = (), **fields: Unpack[Fields]
    ) -> None:
        super().__init__(message, **fields)
        self.message_ids = message_ids


class UnknownChannel(NotFound):
    """No channel by that name in the team; ``channel`` is the name asked for."""

    def __init__(self, message: str, *, channel: str, **fields: Unpack[Fields]) -> None:
        super().__init__(message, **fields)
        self.channel = channel


class UnknownDeliberation(NotFound):
    """No deliberation with that id in the team."""


class UnknownMemory(NotFound):
    """No memory entry with that id in the team or the project."""

    def __init__(
        self, message: str, *, memory_id: int | None = None, **fields: Unpack[Fields]
    ) -> None:
        super().__init__(message, **fields)
        self.memory_id = memory_id


class UnknownSkill(NotFound):
    """No skill of that name (or no such version of it) in the team's store or files."""


class AlreadyExists(UserError):
    """A name is already taken."""


class CycleError(UserError):
    """Adding a blocker would make tasks wait on each other forever."""

    def __init__(self, message: str, cycle: tuple[int, ...]) -> None:
        super().__init__(message)
        self.cycle = cycle


class InvalidState(UserError):
    """The thing exists but its state does not allow the change; ``seconds``, when
    given, is how long until it may allow it by itself (a lease running out)."""

    def __init__(
        self, message: str, *, seconds: float | None = None, **fields: Unpack[Fields]
    ) -> None:
        super().__init__(message, **fields)
        self.seconds = seconds


class FileClaimed(InvalidState):
    """A path (or a pattern that overlaps one) is claimed by another member: ``member``
    holds it for ``task_id`` with ``pattern``, until that task ends or its lease dies."""

    def __init__(self, message: str, *, pattern: str, **fields: Unpack[Fields]) -> None:
        super().__init__(message, **fields)
        self.pattern = pattern


class IdentityError(UserError):
    """A caller tried to act as a member it is not, or gave a wrong token."""


class ClaimError(UserError):
    """A claim-bound action (heartbeat, complete, fail) was refused."""


class StaleToken(ClaimError):
    """The fencing token is not the task's current one: the claim was lost."""


class NotClaimHolder(ClaimError):
    """The task is not held by the member that acted on it."""


class ModelError(AccordError):
    """A model call failed after its retries; the message names provider, model and cause."""

    exit_code = 1

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ContextTooLong(ModelError):
    """The server refused the prompt as longer than its context window.

    ``window`` is the window it named (``maximum context length is 8192 tokens``),
    or None when it did not say; the agent compacts and tries again.
    """

    def __init__(self, message: str, *, window: int | None = None) -> None:
        super().__init__(message, retryable=False)
        self.window = window


class MissingKey(UserError):
    """The API key a provider needs is not in the environment."""


class UsageError(UserError):
    """The command line was used wrongly: an unknown command or option, a bad value."""


class NotARepository(UserError):
    """``[team] isolation = "worktree"`` where the project is not in a git repository
    with a commit."""


class GitError(AccordError):
    """A git command failed (``accord.git``); the message names it and carries git's
    stderr."""

    def __init__(self, message: str, *, returncode: int = 1, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class MergeRefused(AccordError):
    """The merge gate refused a completion; ``files`` are the conflicted paths and
    ``detail`` shows their hunks (or says what else was wrong)."""

    def __init__(
        self,
        message: str,
        *,
        files: tuple[str, ...] = (),
        detail: str = "",
        team: str | None = None,
        member: str | None = None,
        task_id: int | None = None,
    ) -> None:
        super().__init__(message, team=team, member=member, task_id=task_id)
        self.files = files
        self.detail = detail


class MergeBusy(AccordError):
    """Another completion held the team's merge lock for longer than the wait allowed."""


class StoreError(AccordError):
    """The store cannot be opened or written as it is."""

    exit_code = 2


class StoreNotFound(StoreError):
    """No store where one was expected."""


class StoreLocked(StoreError):
    """Another process held the write lock for longer than the busy timeout."""


class StoreCorrupt(StoreError):
    """The store file is not a database or is damaged."""


class StoreFull(StoreError):
    """The disk holding the store is full."""


class StoreUnavailable(StoreError):
    """The database server cannot be reached (refused, unknown host, down for too long)."""


class HookBlocked(AccordError):
    """A hook exited 2: the action was refused and its stderr is the feedback."""

    exit_code = 1

    def __init__(self, message: str, feedback: str) -> None:
        super().__init__(message)
        self.feedback = feedback


class DisplayError(AccordError):
    """A terminal multiplexer (tmux) refused a command; its own words are in the message."""


class NothingToDo(AccordError):
    """There was nothing to do, for example no ready task to claim."""

    exit_code = 3
