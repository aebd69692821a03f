"""Starting, resuming and stopping a team run: the rules, kept out of the front door.

Everything that can be wrong with a run (no model, a missing key, a bad name,
an unknown team to resume) is checked before anything is written, so a refused
``accord run`` leaves the store as it was.
"""

from __future__ import annotations

import time
from typing import Any

from accord.agent.definition import find_definition
from accord.agent.launch import model_name_for
from accord.agent.lead import LEAD
from accord.config import Project
from accord.errors import InvalidState, UnknownTeam, UserError
from accord.llm.base import ModelName
from accord.llm.registry import open_model
from accord.runtime.supervisor import holder_is_dead
from accord.store.base import Store
from accord.team import TeamServices
from accord.team.roster import hash_token, new_token
from accord.types import MemberRole, MessageKind, Run, RunStatus, check_name

LEAD_NAME = "lead"


def prepare_run(
    store: Store,
    project: Project,
    team: str,
    goal: str,
    *,
    model: str | None = None,
    teammate_model: str | None = None,
    max_teammates: int | None = None,
    budget_usd: float | None = None,
    delegate: bool = False,
) -> Run:
    """Check everything, then create the team and its lead if needed and start the run."""
    check_name(team, "team name")
    if not goal.strip():
        raise UserError('say what the team should do: accord run "GOAL"')
    try:
        existing = {m.name: m for m in store.list_members(team)}
        team_exists = True
    except UnknownTeam:
        existing, team_exists = {}, False
    lead = existing.get(LEAD_NAME)
    if lead is not None and lead.role != MemberRole.LEAD:
        raise UserError(f"team {team!r} has a teammate named {LEAD_NAME!r}; rename it first")
    run = store.get_run(team) if team_exists else None
    if run is not None and run.status in (RunStatus.RUNNING, RunStatus.STOPPING):
        expires = run.supervisor_expires_at
        dead = holder_is_dead(run.supervisor_pid, run.supervisor_host)
        if expires is not None and expires > time.time() and not dead:
            raise InvalidState(
                f"team {team!r} is running already (supervisor pid {run.supervisor_pid}); "
                f"watch it with `accord watch --team {team}` or stop it with `accord stop`"
            )
    lead_model = model_name_for(LEAD, model or (lead.model if lead else None), None, project.config)
    # Opening the model checks its name and its key now, before anything is written.
    open_model(
        lead_model,
        timeout=project.config.agent.model_timeout,
        max_retries=project.config.agent.max_retries,
        base_urls=dict(project.config.agent.base_urls),
    ).close()
    if teammate_model is not None:
        ModelName.parse(teammate_model)
    declared = project.config.team.members
    for spec in declared:
        if spec.name == LEAD_NAME:
            raise UserError(f"accord.toml: [[team.members]] cannot be named {LEAD_NAME!r}")
        find_definition(project.root, spec.agent)
        if spec.model is not None:
            ModelName.parse(spec.model)
    if max_teammates is not None and max_teammates < 1:
        raise UserError("--max-teammates must be 1 or more")
    if budget_usd is not None and budget_usd <= 0:
        raise UserError("--budget must be more than 0 USD")
    if not team_exists:
        store.create_team(team)
    if lead is None:
        store.add_member(
            team,
            LEAD_NAME,
            token_hash=hash_token(new_token()),
            role=MemberRole.LEAD,
            model=lead_model,
        )
    elif model is not None:
        store.update_member(team, LEAD_NAME, model=model)
    for spec in declared:
        # A declared teammate starts with the lead; its model falls back to the run's.
        if spec.name in existing:
            store.update_member(team, spec.name, agent=spec.agent, model=spec.model)
        else:
            store.add_member(
                team,
                spec.name,
                token_hash=hash_token(new_token()),
                agent=spec.agent,
                model=spec.model or teammate_model,
            )
    settings: dict[str, Any] = {
        "teammate_model": teammate_model,
        "max_teammates": max_teammates,
        "budget_usd": budget_usd,
        "delegate": delegate,
    }
    run = store.start_run(team, goal, LEAD_NAME, settings)
    if declared:
        run = store.update_run(team, want=[spec.name for spec in declared])
    return run


def prepare_resume(store: Store, team: str) -> Run:
    run = store.get_run(team)
    if run is None:
        raise UserError(f"team {team!r} has never been run; start it with `accord run GOAL`")
    if run.status == RunStatus.FINISHED:
        raise InvalidState(
            f"team {team!r} finished ({run.summary or 'no summary'}); start a new goal with "
            f"`accord run GOAL --team {team}`"
        )
    return run


def stop(store: Store, services: TeamServices, member: str | None) -> str:
    """Stop the whole team (resumable), or ask one member to shut down."""
    run = store.get_run(services.team)
    if run is None:
        raise UserError(f"team {services.team!r} has never been run; nothing to stop")
    if member is None:
        live = (
            run.supervisor_expires_at is not None
            and run.supervisor_expires_at > time.time()
            and not holder_is_dead(run.supervisor_pid, run.supervisor_host)
        )
        status = RunStatus.STOPPING if live else RunStatus.STOPPED
        store.update_run(services.team, status=status)
        if live:
            return f"asked the supervisor of {services.team} to stop the team"
        return f"team {services.team} is stopped (no supervisor was running)"
    store.get_member(services.team, member)
    services.mailbox.send(
        run.lead,
        member,
        "stop requested by a person at the terminal",
        kind=MessageKind.SHUTDOWN_REQUEST,
        summary="please stop",
    )
    return f"asked {member} to shut down after its current step"
