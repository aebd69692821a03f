"""accord: durable, model-agnostic teams of LLM agents.

A lead plans, teammates work in parallel in their own processes, and everything
they share (the board, mailboxes, roster, events) lives in one durable store.

A program drives a team with the names this package exports, no private module::

    import accord

    store = accord.open_store("team.db", create=True)
    team = accord.Team.create(store, "main")
    team.roster.add("alice")
    team.board.add(accord.NewTask(title="write the parser"))
    claim = team.board.claim("alice")
    team.board.complete(claim.task.id, "alice", claim.fencing_token, "parser.py")
    for event in team.log.read_events():
        print(event.seq, event.kind)

``build_agent`` puts a member's agent together (its definition, model, tools and
identity) for ``Agent.run``; ``Memory`` is a team's typed memory; every error
accord raises on purpose is an ``AccordError`` (the tree is drawn in
``accord.errors``).

Each name is imported when first used (PEP 562), so ``import accord`` stays as
cheap as the command line needs it to be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from accord.agent.launch import build_agent
    from accord.agent.loop import Agent
    from accord.config import Config, Project
    from accord.errors import (
        AccordError,
        AlreadyExists,
        ClaimError,
        ConfigError,
        ContextTooLong,
        CycleError,
        DisplayError,
        FileClaimed,
        GitError,
        HookBlocked,
        IdentityError,
        InvalidName,
        InvalidState,
        MergeBusy,
        MergeRefused,
        MissingKey,
        ModelError,
        NotARepository,
        NotClaimHolder,
        NotFound,
        NothingToDo,
        StaleToken,
        StoreCorrupt,
        StoreError,
        StoreFull,
        StoreLocked,
        StoreNotFound,
        StoreUnavailable,
        UnknownChannel,
        UnknownDeliberation,
        UnknownMember,
        UnknownMemory,
        UnknownMessage,
        UnknownSkill,
        UnknownTask,
        UnknownTeam,
        UsageError,
        UserError,
    )
    from accord.memory import Memory
    from accord.store import Store, open_store
    from accord.team import Team
    from accord.types import (
        Claim,
        Event,
        Member,
        MemberRole,
        MemberStatus,
        MemoryEntry,
        MemoryStatus,
        MemoryType,
        Message,
        MessageKind,
        NewMemory,
        NewTask,
        Task,
        TaskChanges,
        TaskStatus,
    )

# Where each exported name lives; every AccordError in accord.errors is exported too.
_HOMES: dict[str, tuple[str, ...]] = {
    "accord.agent.launch": ("build_agent",),
    "accord.agent.loop": ("Agent",),
    "accord.config": ("Config", "Project"),
    "accord.memory": ("Memory",),
    "accord.store": ("Store", "open_store"),
    "accord.team": ("Team",),
    "accord.types": (
        "Claim",
        "Event",
        "Member",
        "MemberRole",
        "MemberStatus",
        "MemoryEntry",
        "MemoryStatus",
        "MemoryType",
        "Message",
        "MessageKind",
        "NewMemory",
        "NewTask",
        "Task",
        "TaskChanges",
        "TaskStatus",
    ),
    "accord.errors": (
        "AccordError",
        "AlreadyExists",
        "ClaimError",
        "ConfigError",
        "ContextTooLong",
        "CycleError",
        "DisplayError",
        "FileClaimed",
        "GitError",
        "MergeBusy",
        "MergeRefused",
        "NotARepository",
        "HookBlocked",
        "IdentityError",
        "InvalidName",
        "InvalidState",
        "MissingKey",
        "ModelError",
        "NotClaimHolder",
        "NotFound",
        "NothingToDo",
        "StaleToken",
        "StoreCorrupt",
        "StoreError",
        "StoreFull",
        "StoreLocked",
        "StoreNotFound",
        "StoreUnavailable",
        "UnknownChannel",
        "UnknownDeliberation",
        "UnknownMember",
        "UnknownMemory",
        "UnknownMessage",
        "UnknownSkill",
        "UnknownTask",
        "UnknownTeam",
        "UsageError",
        "UserError",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AccordError",
    "Agent",
    "AlreadyExists",
    "Claim",
    "ClaimError",
    "Config",
    "ConfigError",
    "ContextTooLong",
    "CycleError",
    "DisplayError",
    "Event",
    "FileClaimed",
    "GitError",
    "MergeBusy",
    "MergeRefused",
    "NotARepository",
    "HookBlocked",
    "IdentityError",
    "InvalidName",
    "InvalidState",
    "Member",
    "MemberRole",
    "MemberStatus",
    "Memory",
    "MemoryEntry",
    "MemoryStatus",
    "MemoryType",
    "Message",
    "MessageKind",
    "MissingKey",
    "ModelError",
    "NewMemory",
    "NewTask",
    "NotClaimHolder",
    "NotFound",
    "NothingToDo",
    "Project",
    "StaleToken",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreFull",
    "StoreLocked",
    "StoreNotFound",
    "StoreUnavailable",
    "Task",
    "TaskChanges",
    "TaskStatus",
    "Team",
    "UnknownChannel",
    "UnknownDeliberation",
    "UnknownMember",
    "UnknownMemory",
    "UnknownMessage",
    "UnknownSkill",
    "UnknownTask",
    "UnknownTeam",
    "UsageError",
    "UserError",
    "__version__",
    "build_agent",
    "open_store",
]


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # asked once: later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
