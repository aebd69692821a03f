"""Team services: the board, mailboxes, roster, hooks, memory, run and log of one team.

``pick_team`` applies the rule for which team a command means; ``Team`` gathers
the services of one team over one store, wired to the project's settings and
hooks, and is the one way above ``store/`` to reach the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord.errors import AccordError, Reason, UnknownTeam, UserError
from accord.types import check_name

if TYPE_CHECKING:
    from accord.config import Config
    from accord.memory import Memory
    from accord.memory.lessons import Lessons
    from accord.store.base import Store
    from accord.team.board import Board
    from accord.team.channels import Channels
    from accord.team.deliberations import Deliberations
    from accord.team.digest import Digest
    from accord.team.hooks import HookRunner
    from accord.team.log import Log
    from accord.team.mailbox import Mailbox
    from accord.team.roster import Roster
    from accord.team.routing import Routing
    from accord.team.runs import Runs
    from accord.team.skills import Skills
    from accord.team.worktrees import Worktrees
    from accord.types import Event, Task, Wake
    from accord.types import Team as TeamRecord

__all__ = [
    "Board",
    "Channels",
    "Deliberations",
    "HookRunner",
    "Log",
    "Mailbox",
    "Roster",
    "Routing",
    "Runs",
    "Skills",
    "Team",
    "pick_team",
    "teams",
]


_LAZY = {
    "Board": "board",
    "Channels": "channels",
    "Deliberations": "deliberations",
    "HookRunner": "hooks",
    "Log": "log",
    "Mailbox": "mailbox",
    "Roster": "roster",
    "Routing": "routing",
    "Runs": "runs",
    "Skills": "skills",
}


def __getattr__(name: str) -> Any:
    # The services load config (and pydantic) only when asked for, so a command that
    # needs just ``pick_team`` or the mailbox starts fast.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"accord.team.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pick_team(
    store: Store, explicit: str | None, env_team: str | None, config_default: str | None
) -> str:
    """The team a command means: --team, then ACCORD_TEAM, then accord.toml's default,
    then the only team in the store."""
    for name, origin in (
        (explicit, "--team"),
        (env_team, "ACCORD_TEAM"),
        (config_default, "[team] default in accord.toml"),
    ):
        # An explicit but empty --team is a mistake, not "no choice"; an empty variable is unset.
        if name or (name is not None and origin == "--team"):
            check_name(name, f"team name (from {origin})")
            store.get_team(name)  # UnknownTeam, listing the teams there are
            return name
    teams = [t.name for t in store.list_teams()]
    if len(teams) == 1:
        return teams[0]
    if not teams:
        raise UnknownTeam("this store has no teams yet", reason=Reason.NO_TEAMS)
    raise UserError(
        f"this store has {len(teams)} teams ({', '.join(teams)})", reason=Reason.MANY_TEAMS
    )


def teams(store: Store) -> list[TeamRecord]:
    """Every team in ``store``, by name."""
    return store.list_teams()


class Team:
    """One team in one store, and the one way above ``store/`` to act on it.

    It gathers the team's services: ``board`` (tasks, claims, leases), ``mailbox``,
    ``roster`` (members, tokens, liveness), ``hooks``, ``memory`` (typed memories and
    continuity notes), ``runs`` (the run, its supervisors, hosts and spawn requests,
    usage and budgets), ``log`` (events and transcripts) and ``worktrees`` (members'
    git worktrees and the merge gate, which ``complete`` goes through). They are the only code
    above ``store/`` that calls the store. A process builds its Team once and passes
    it down; each service is made the first time it is asked for. Bound without the
    project's settings (``Team(store, name)``) it takes the defaults and runs no hooks:
    enough for a quick read, which then loads neither the validator nor the hook runner.
    """

    def __init__(
        self,
        store: Store,
        team: str,
        config: Config | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.store = store
        self.team = team
        self._config = config
        self._cwd = cwd

    @classmethod
    def open(cls, store: Store, team: str, config: Config, cwd: Path) -> Team:
        """The team ``team`` of ``store``, wired to the project's settings and hooks."""
        return cls(store, team, config, cwd)

    @classmethod
    def create(
        cls,
        store: Store,
        team: str,
        config: Config | None = None,
        cwd: Path | None = None,
        *,
        description: str = "",
        actor: str | None = None,
    ) -> Team:
        """Create the team in ``store`` (AlreadyExists if it is there) and bind to it."""
        store.create_team(team, description, actor)
        return cls(store, team, config, cwd)

    def record(self) -> TeamRecord:
        """The team as the store keeps it (id, description, when it was made);
        UnknownTeam, listing the teams there are, if it is not there."""
        return self.store.get_team(self.team)

    def delete(self) -> None:
        """Remove the team and everything in it (board, mail, roster, log)."""
        self.store.delete_team(self.team)

    def with_config(self, config: Config) -> Team:
        """The same team with other settings (a work pool's own lease), and services
        made anew for them."""
        return Team(self.store, self.team, config, self._cwd)

    @property
    def cwd(self) -> Path:
        """Where hooks run: the project's root (the working folder when none was given)."""
        return self._cwd if self._cwd is not None else Path.cwd()

    @property
    def name(self) -> str:
        return self.team

    @property
    def location(self) -> str:
        """Where the store is: its file path or server URL, as the store gives it."""
        return self.store.location

    @property
    def config(self) -> Config:
        if self._config is None:
            from accord.config import Config

            self._config = Config()
        return self._config

    def _setting(self, section: str) -> Any:
        # One section of the project's settings, or None (the service's defaults) for a
        # Team bound without them.
        return None if self._config is None else getattr(self._config, section)

    def _gates(self) -> HookRunner | None:
        # A Team bound without the project's settings (a quick read, a sweep) runs no
        # hooks, and loads neither the validator nor the hook runner.
        return self.hooks if self._config is not None else None

    @cached_property
    def hooks(self) -> HookRunner:
        from accord.team.hooks import HookRunner

        return HookRunner(self.config.hooks, self.store, self.team, self.cwd, self.config.sandbox)

    @cached_property
    def board(self) -> Board:
        from accord.team.board import Board

        return Board(self.store, self.team, self._setting("board"), self._gates())

    @cached_property
    def mailbox(self) -> Mailbox:
        from accord.team.mailbox import Mailbox

        return Mailbox(self.store, self.team, self._setting("mailbox"))

    @cached_property
    def channels(self) -> Channels:
        from accord.team.channels import Channels

        return Channels(self.store, self.team)

    def routing(
        self, definition_routes: dict[str, Sequence[dict[str, object]]] | None = None
    ) -> Routing:
        """The team's routing: accord.toml's rules, then the ``routes:`` of the members'
        agent definitions (by definition name, as ``agent.definition`` reads them)."""
        from accord.team.routing import Routing, definition_rules

        extra = definition_rules(self.store.list_members(self.team), definition_routes or {})
        return Routing(self.store, self.team, self._setting("routing"), extra)

    @cached_property
    def deliberations(self) -> Deliberations:
        from accord.team.deliberations import Deliberations

        return Deliberations(self.store, self.team, self.memory)

    @cached_property
    def roster(self) -> Roster:
        from accord.team.roster import Roster

        return Roster(self.store, self.team, self._gates())

    @cached_property
    def memory(self) -> Memory:
        """The team's memory; the one place a ``Memory`` is built above the store."""
        from accord.memory import Memory

        return Memory(self.store, self.team, self.config.memory)

    @cached_property
    def lessons(self) -> Lessons:
        """What attempts that did not succeed taught (``[learning]``)."""
        from accord.memory.lessons import Lessons

        return Lessons(self.store, self.team, self.memory, self.config.learning)

    @cached_property
    def skills(self) -> Skills:
        """The skills its members can use: the team's own (in the store), the project's
        and the user's (``.claude/skills``), and how they are revised and reviewed."""
        from accord.team.skills import Skills

        return Skills(self.store, self.team, self._setting("learning"), self.cwd)

    @cached_property
    def runs(self) -> Runs:
        from accord.team.runs import Runs

        return Runs(self.store, self.team, self._setting("budgets"))

    @cached_property
    def worktrees(self) -> Worktrees:
        """Members' worktrees, the integration branch and the merge gate."""
        from accord.team.worktrees import Worktrees

        return Worktrees(self)

    def complete(self, task_id: int, member: str, token: int, result: str | None = None) -> Task:
        """Complete ``member``'s task: through the merge gate when the member works in a
        worktree (its work merged into the team's branch and checked there first), else
        on the board as ever. A member's tool and the person's `accord task complete`
        both come here, so neither can skip the gate."""
        if self._config is not None and self.worktrees.has(member):
            task = self.worktrees.complete(task_id, member, token, result)
        else:
            task = self.board.complete(task_id, member, token, result)
        try:
            # The attempt succeeded: the lessons it was shown helped (a second
            # transaction: a crash between leaves them unconfirmed, nothing worse).
            self.store.confirm_lessons(self.team, task.id, task.attempts)
        except AccordError:
            pass
        return task

    @cached_property
    def log(self) -> Log:
        from accord.team.log import Log

        return Log(self.store, self.team)

    # the lead's digest --------------------------------------------------------------

    def digest(self, since: int, lead: str) -> Digest:
        """What changed since event ``since``, for the lead (see ``team.digest.build``)."""
        from accord.team.digest import build

        return build(self.store, self.team, since, lead)

    def interesting_since(self, since: int, lead: str) -> list[Event]:
        """The events since ``since`` that would wake the lead."""
        from accord.team.digest import interesting_since

        return interesting_since(self.store, self.team, since, lead)

    # waking ------------------------------------------------------------------------

    def pending_work(self, member: str) -> Wake:
        """How much visible mail and how many claimable ready tasks ``member`` has."""
        return self.store.pending_work(self.team, member)

    def wait(
        self,
        member: str,
        timeout: float,
        *,
        stop: Callable[[], bool] | None = None,
        tasks: bool = True,
        also: Callable[[], bool] | None = None,
    ) -> Wake:
        """Block until ``member`` has mail or a ready task (see ``team.wake.wait``); a
        lost ring costs at most the mailbox's ``recheck`` seconds."""
        from accord.team.wake import wait

        recheck = self.mailbox.settings.recheck
        return wait(
            self.store,
            self.team,
            member,
            timeout,
            recheck=recheck,
            stop=stop,
            tasks=tasks,
            also=also,
        )

    def changed(
        self, member: str, timeout: float, *, stop: Callable[[], bool] | None = None
    ) -> bool:
        """Block until anything is committed to the team, or ``timeout`` passes (see
        ``team.wake.changed``)."""
        from accord.team.wake import changed

        return changed(self.store, self.team, member, timeout, stop=stop)

    def nudge(self, member: str) -> None:
        """End ``member``'s waits in this process now: its ``stop`` was set (safe in a
        signal handler)."""
        from accord.team.wake import nudge

        nudge(self.team, member)
