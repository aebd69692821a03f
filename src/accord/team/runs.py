"""The team's run: its goal and status, the supervisors and hosts that serve it, the
spawn requests they fulfil, and what its model calls cost against its budgets.

``over_budget`` is the one budget check: the agent asks it before every model
call, and the supervisor asks it for the team as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from accord.types import (
    HostSupervisor,
    Run,
    RunSettings,
    RunSettingsChange,
    RunStatus,
    Spawn,
    SpawnStatus,
    UsageRecord,
    UsageTotal,
)

if TYPE_CHECKING:
    from accord.config import BudgetsConfig
    from accord.store.base import Store


class Runs:
    """The run of one team, its spawns, hosts, usage and budgets."""

    def __init__(self, store: Store, team: str, budgets: BudgetsConfig | None = None) -> None:
        self.store = store
        self.team = team
        self._budgets = budgets

    @property
    def budgets(self) -> BudgetsConfig:
        if self._budgets is None:
            from accord.config import BudgetsConfig

            self._budgets = BudgetsConfig()
        return self._budgets

    # the run ---------------------------------------------------------------------

    def get(self) -> Run | None:
        """The team's run, or None if it never had one."""
        return self.store.get_run(self.team)

    def start(self, goal: str, lead: str, settings: RunSettings) -> Run:
        """Begin the team's run (or begin it again): status running, the lead wanted."""
        return self.store.start_run(self.team, goal, lead, settings)

    def update(
        self,
        *,
        status: RunStatus | None = None,
        summary: str | None = None,
        want: Sequence[str] = (),
        unwant: Sequence[str] = (),
        actor: str | None = None,
        settings: RunSettingsChange | None = None,
    ) -> Run:
        """Change the run's status or summary, who should be running, or its settings
        (``settings`` names those it changes; see ``Store.update_run``)."""
        return self.store.update_run(
            self.team,
            status=status,
            summary=summary,
            want=want,
            unwant=unwant,
            actor=actor,
            settings=settings,
        )

    # the supervisor and its hosts --------------------------------------------------

    def claim_supervisor(
        self, pid: int, host: str, lease_seconds: float, *, take_over: bool = False
    ) -> Run:
        return self.store.claim_supervisor(self.team, pid, host, lease_seconds, take_over=take_over)

    def renew_supervisor(self, token: int, lease_seconds: float) -> Run:
        return self.store.renew_supervisor(self.team, token, lease_seconds)

    def release_supervisor(self, token: int) -> None:
        self.store.release_supervisor(self.team, token)

    def register_host(
        self,
        host: str,
        *,
        machine: str,
        pid: int,
        slots: int | None,
        lease_seconds: float,
        take_over: bool = False,
    ) -> HostSupervisor:
        return self.store.register_host(
            self.team,
            host,
            machine=machine,
            pid=pid,
            slots=slots,
            lease_seconds=lease_seconds,
            take_over=take_over,
        )

    def renew_host(self, host: str, token: int, lease_seconds: float) -> HostSupervisor:
        return self.store.renew_host(self.team, host, token, lease_seconds)

    def release_host(self, host: str, token: int) -> None:
        self.store.release_host(self.team, host, token)

    def hosts(self) -> list[HostSupervisor]:
        """Every host that has served the team, oldest first."""
        return self.store.list_hosts(self.team)

    # spawn requests --------------------------------------------------------------

    def request_spawn(
        self,
        name: str,
        *,
        token_hash: str,
        agent: str | None = None,
        model: str | None = None,
        host: str | None = None,
        requested_by: str | None = None,
    ) -> Spawn:
        return self.store.request_spawn(
            self.team,
            name,
            token_hash=token_hash,
            agent=agent,
            model=model,
            host=host,
            requested_by=requested_by,
        )

    def pending_spawns(self) -> list[Spawn]:
        return self.store.pending_spawns(self.team)

    def take_spawn(self, host: str, token: int) -> Spawn | None:
        return self.store.take_spawn(self.team, host, token)

    def finish_spawn(self, spawn_id: int, status: SpawnStatus, reason: str | None = None) -> Spawn:
        return self.store.finish_spawn(self.team, spawn_id, status, reason)

    def place_wanted(self) -> list[Spawn]:
        return self.store.place_wanted(self.team)

    # usage and budgets -------------------------------------------------------------

    def record_usage(self, record: UsageRecord) -> UsageRecord:
        return self.store.record_usage(self.team, record)

    def usage_totals(
        self,
        *,
        by: Literal["member", "task", "model"] | None = None,
        member: str | None = None,
    ) -> list[UsageTotal]:
        """Spend grouped ``by`` (or one total with key None), optionally for one member."""
        return self.store.usage_totals(self.team, by=by, member=member)

    def run_budget_usd(self) -> float | None:
        """The run's own USD budget (``accord run --budget``, raised by ``resume
        --budget``), or None."""
        run = self.get()
        return run.settings.budget_usd if run is not None else None

    def over_budget(
        self, member: str | None, *, next_usd: float = 0.0, next_tokens: int = 0
    ) -> str | None:
        """Why ``member`` may not make its next model call (None asks for the team as a
        whole), or None when it may.

        The limits, all of which hold at once:

        - the team's USD limit is the run's ``--budget`` when it has one (it replaces
          ``[budgets.team] usd``, so ``accord resume --budget`` can raise it past the
          file's), else ``[budgets.team] usd``;
        - the team's token limit is ``[budgets.team] tokens``;
        - a member's limits are ``[budgets.members.NAME]``, else ``[budgets.member]``.

        A limit is reached when what was spent (by the team, or by the member for its
        own limits) plus what the next call is known to cost reaches it:
        ``spent + next >= limit``. What the next call costs is not known before it is
        made, so the caller passes what it can know: ``next_tokens``, the estimated
        input tokens of the request it is about to send, and ``next_usd``, that input
        at the model's price (0 for an unpriced model, whose USD spend the budget
        cannot see). The reply's output is not counted beforehand: a call that is
        allowed can end past a limit by its output, and the next check stops the member.
        """
        budgets = self.budgets
        team_usd = self.run_budget_usd()
        if team_usd is None:
            team_usd = budgets.team.usd
        scopes: list[tuple[str, float | None, int | None, str | None]] = [
            ("team", team_usd, budgets.team.tokens, None)
        ]
        if member is not None:
            mine = budgets.for_member(member)
            scopes.insert(0, ("member", mine.usd, mine.tokens, member))
        for scope, usd, tokens, who in scopes:
            if usd is None and tokens is None:
                continue
            total = self.usage_totals(member=who)[0]
            if usd is not None and total.cost_usd + next_usd >= usd:
                if total.cost_usd >= usd or next_usd <= 0:
                    return f"the {scope} budget of ${usd:.2f} is spent (${total.cost_usd:.4f})"
                return (
                    f"the {scope} budget of ${usd:.2f} would be passed by the next call "
                    f"(${total.cost_usd:.4f} spent, about ${next_usd:.4f} to send)"
                )
            if tokens is not None and total.tokens + next_tokens >= tokens:
                if total.tokens >= tokens or next_tokens <= 0:
                    return f"the {scope} budget of {tokens} tokens is spent ({total.tokens})"
                return (
                    f"the {scope} budget of {tokens} tokens would be passed by the next "
                    f"call ({total.tokens} spent, about {next_tokens} to send)"
                )
        return None
