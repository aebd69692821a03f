"""Starting, resuming and stopping a team run: the rules, kept out of the front door.

Everything that can be wrong with a run (no model, a missing key, a bad name,
an unknown team to resume) is checked before anything is written, so a refused
``accord run`` leaves the store as it was.

How a run ended, and what that means for exit codes and `accord status`, is in
``runtime/lifecycle.py``.
"""

from __future__ import annotations

import time
from typing import Any

from accord.agent.definition import find_definition, load_definitions
from accord.agent.external import check_command
from accord.agent.lead import LEAD
from accord.agent.model_choice import check_model, model_alias, model_name_for
from accord.config import Project
from accord.errors import InvalidState, NothingToDo, Reason, UnknownTeam, UserError
from accord.events import EventKind
from accord.llm.prices import Price, price_for
from accord.runtime.lifecycle import (
    holder_is_dead,
    record_end,
    run_outcome,
    supervised,
    sweep,
)
from accord.team import Team
from accord.team.roster import LIVE_STATUSES
from accord.types import MemberRole, MessageKind, Run, RunSettings, RunStatus, check_name

LEAD_NAME = "lead"


def prepare_run(
    t: Team,
    project: Project,
    goal: str,
    *,
    model: str | None = None,
    teammate_model: str | None = None,
    max_teammates: int | None = None,
    budget_usd: float | None = None,
    delegate: bool = False,
) -> Run:
    """Check everything, then create the team ``t`` (bound to the project's settings)
    and its lead if needed, and start the run."""
    team = t.name
    check_name(team, "team name")
    if not goal.strip():
        raise UserError('say what the team should do: accord run "GOAL"')
    t.worktrees.active  # noqa: B018 - NotARepository, before anything is written
    model, teammate_model = model_alias(model), model_alias(teammate_model)
    try:
        existing = {m.name: m for m in t.roster.list()}
        team_exists = True
    except UnknownTeam:
        existing, team_exists = {}, False
    lead = existing.get(LEAD_NAME)
    if lead is not None and lead.role != MemberRole.LEAD:
        raise UserError(f"team {team!r} has a teammate named {LEAD_NAME!r}; rename it first")
    run = t.runs.get() if team_exists else None
    if run is not None and run.status in (RunStatus.RUNNING, RunStatus.STOPPING):
        _refuse_if_supervised(run)
    config = project.config
    lead_model = model_name_for(LEAD, model or (lead.model if lead else None), None, config)
    declared = project.config.team.members
    for spec in declared:
        if spec.name == LEAD_NAME:
            raise UserError(f"accord.toml: [[team.members]] cannot be named {LEAD_NAME!r}")
        find_definition(project.root, spec.agent)
    # Members read .mcp.json when they start: a malformed one stops the run before it starts.
    from accord.agent.mcp import configured_servers

    configured_servers(project.root, project.config)
    if max_teammates is not None and max_teammates < 1:
        raise UserError("--max-teammates must be 1 or more")
    if budget_usd is not None and budget_usd <= 0:
        raise UserError("--budget must be more than 0 USD")
    # Every model the run can name now is opened (name and key checked) before any write.
    named: dict[str, str] = {lead_model: "the lead's model"}
    if teammate_model is not None:
        named.setdefault(teammate_model, "--teammate-model")
    for spec in declared:
        own = model_alias(spec.model) or (
            model_alias(existing[spec.name].model) if spec.name in existing else None
        )
        if own is not None:
            named.setdefault(own, f"the model of member {spec.name}")
    for definition in load_definitions(project.root).values():
        if definition.runtime == "command":
            # Its program, not a model, plays it: one error now, never a crash loop.
            check_command(definition)
        elif definition.model is not None:
            named.setdefault(definition.model, f"the model of agent definition {definition.name}")
    for name, what in named.items():
        _check(name, what, project)
    if not team_exists:
        t = Team.create(t.store, team, project.config, project.root)
    if lead is None:
        t.roster.add(LEAD_NAME, role=MemberRole.LEAD, model=lead_model)
    elif model is not None or lead.model is None:
        t.roster.update(LEAD_NAME, model=lead_model)
    for spec in declared:
        # A declared teammate starts with the lead. A model it was given before (member
        # add --model) stays unless accord.toml names one; with none it takes the run's.
        own = model_alias(spec.model)
        if spec.name in existing:
            changes: dict[str, Any] = {"agent": spec.agent}
            if own is not None:
                changes["model"] = own
            t.roster.update(spec.name, **changes)
        else:
            t.roster.add(spec.name, agent=spec.agent, model=own)
    _drop_stale_shutdowns(t)
    settings = RunSettings(
        teammate_model=teammate_model,
        max_teammates=max_teammates,
        budget_usd=budget_usd,
        delegate=delegate,
    )
    run = t.runs.start(goal, LEAD_NAME, settings)
    if declared:
        run = t.runs.update(want=[spec.name for spec in declared])
    return run


def start_integration(t: Team) -> str | None:
    """Worktree mode: the team's integration branch, made from the person's HEAD if it
    is not there yet; a line to show when uncommitted changes were left out of it (the
    run starts from HEAD rather than refusing: the person's work is theirs to commit)."""
    return t.worktrees.start()


def _check(name: str, what: str, project: Project) -> None:
    try:
        check_model(name, project.config)
    except UserError as e:
        raise UserError(f"{what} cannot be used: {e}") from None


def _refuse_if_supervised(run: Run) -> None:
    expires = run.supervisor_expires_at
    dead = holder_is_dead(run.supervisor_pid, run.supervisor_host)
    if expires is not None and expires > time.time() and not dead:
        raise InvalidState(
            f"team {run.team!r} is running already (supervisor pid {run.supervisor_pid})",
            team=run.team,
            reason=Reason.SUPERVISED,
        )


def budget_warning(t: Team, project: Project) -> str | None:
    """A USD budget on a model with no price never triggers: say so, and what to do."""
    run = t.runs.get()
    if run is None:
        return None
    usd = run.settings.budget_usd
    if usd is None and project.config.budgets.team.usd is None:
        return None
    overrides = {
        k: Price(p.input, p.output, p.cache_read, p.cache_write)
        for k, p in project.config.prices.items()
    }
    models = {m.model for m in t.roster.list() if m.model}
    teammate_default = run.settings.teammate_model
    if teammate_default:
        models.add(str(teammate_default))
    unpriced = sorted(m for m in models if price_for(m, overrides) is None)
    if not unpriced:
        return None
    return (
        f"the USD budget cannot see the spend of {', '.join(unpriced)} (no price known); "
        f'add [prices."{unpriced[0]}"] to accord.toml, or set a token budget '
        "([budgets.team] tokens)"
    )


def _drop_stale_shutdowns(t: Team) -> None:
    """A shutdown request nobody read before the last run ended is for that run only."""
    for m in t.mailbox.history(unacked=True, limit=10_000):
        if m.kind == MessageKind.SHUTDOWN_REQUEST:
            t.mailbox.ack(m.recipient, [m.id])


def prepare_resume(
    t: Team, project: Project, *, budget_usd: float | None = None
) -> tuple[Run, str]:
    """Check the run can come back, then bring back what stopped for a cause now fixed
    (a member that crashed too often, failed on its configuration, or stopped over
    budget), raise the budget if asked, and wake the lead to carry on. Returns the run
    and what the lead is told."""
    team = t.name
    run = t.runs.get()
    if run is None:
        raise UserError(f"team {team!r} has never been run", team=team, reason=Reason.NEVER_RUN)
    if run.status == RunStatus.FINISHED:
        raise InvalidState(
            f"team {team!r} finished ({run.summary or 'no summary'})",
            team=team,
            reason=Reason.FINISHED,
        )
    if run.status in (RunStatus.RUNNING, RunStatus.STOPPING):
        _refuse_if_supervised(run)
    if budget_usd is not None and budget_usd <= 0:
        raise UserError("--budget must be more than 0 USD")
    back = _to_bring_back(t, run)
    members = {m.name: m for m in t.roster.list()}
    for name in back:
        _check_member_model(t, project, run, name, members[name].agent)
    sweep(t)
    _drop_stale_shutdowns(t)
    ended = run_outcome(t)
    said = [f"it had stopped ({ended.outcome}: {ended.reason})" if ended else "it had stopped"]
    if budget_usd is not None:
        old = run.settings.budget_usd
        run = t.runs.update(settings={"budget_usd": budget_usd})
        said.append(
            f"the budget is now ${budget_usd:.2f}" + (f" (was ${float(old):.2f})" if old else "")
        )
    if run.lead not in run.wanted:
        run = t.runs.update(want=[run.lead])
    if back:
        run = t.runs.update(want=back)
        said.append(f"brought back: {', '.join(back)}")
    # The lead wakes for this (its digest shows it) and carries on with the team.
    why = "; ".join(said)
    t.log.append_event(EventKind.RUN_RESUMED, {"why": why, "members": back})
    return run, why


def _to_bring_back(t: Team, run: Run) -> list[str]:
    """Teammates whose last word was a crash given up, a configuration failure, or a
    stop for budget or a model error: a resume gives them another go."""
    last: dict[str, bool] = {}
    for e in t.log.read_events():
        name = e.payload.get("name")
        if not isinstance(name, str) or name == run.lead:
            continue
        if e.kind == EventKind.MEMBER_FAILED:
            last[name] = True
        elif e.kind == EventKind.MEMBER_CRASHED:
            last[name] = bool(e.payload.get("gave_up"))
        elif e.kind == EventKind.MEMBER_STOPPED:
            last[name] = e.payload.get("reason") in ("budget", "model_error", "config")
        elif e.kind in (EventKind.SPAWN_STARTED, EventKind.MEMBER_REMOVED):
            last[name] = False
    known = {m.name for m in t.roster.list()}
    return sorted(n for n, again in last.items() if again and n in known and n not in run.wanted)


def _check_member_model(t: Team, project: Project, run: Run, name: str, agent: str | None) -> None:
    try:
        definition = find_definition(project.root, agent)
        if definition.runtime == "command":
            check_command(definition)
            return
        lead = t.roster.get(run.lead)
        chosen = model_name_for(
            definition,
            t.roster.get(name).model,
            None,
            project.config,
            teammate_default=run.settings.teammate_model,
            lead_model=lead.model,
        )
        check_model(chosen, project.config)
    except UserError as e:
        raise UserError(f"{name} cannot start yet: {e}") from None


def stop(t: Team, member: str | None) -> str:
    """Stop the whole team (resumable), or ask one running member to shut down."""
    team = t.name
    run = t.runs.get()
    if run is None:
        raise UserError(f"team {team!r} has never been run; nothing to stop")
    live = supervised(run)
    if member is None:
        if run.status == RunStatus.FINISHED:
            raise NothingToDo(
                f"team {team} finished already ({run.summary or 'no summary'}); nothing to stop"
            )
        if live:
            t.runs.update(status=RunStatus.STOPPING)
            return f"asked the supervisor of {team} to stop the team"
        if run.status == RunStatus.STOPPED:
            raise NothingToDo(f"team {team} is stopped already")
        sweep(t)
        now = t.runs.get()
        if now is not None and now.status != RunStatus.STOPPED:
            t.runs.update(status=RunStatus.STOPPED)
            record_end(t, "stopped", "stopped by a person (no supervisor was running)")
        return f"team {team} is stopped (no supervisor was running)"
    m = t.roster.get(member)
    if not live or m.status not in LIVE_STATUSES or m.name not in run.wanted:
        raise InvalidState(f"{member} is not running ({m.status.value}); there is nothing to stop")
    t.mailbox.send(
        run.lead,
        member,
        "stop requested by a person at the terminal",
        kind=MessageKind.SHUTDOWN_REQUEST,
        summary="please stop",
    )
    return f"asked {member} to shut down after its current step"
