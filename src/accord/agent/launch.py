"""Putting a member's runtime together: its definition, model, tools, workspace and identity."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from accord.agent.definition import DEFAULT, AgentDefinition, find_definition, first_warning
from accord.agent.external import ExternalAgent
from accord.agent.gate import Gate
from accord.agent.lead import LEAD, Lead
from accord.agent.loop import Agent
from accord.agent.model_choice import check_model, model_alias, model_name_for
from accord.agent.tools import all_tools
from accord.agent.tools.base import Toolbox
from accord.agent.tools.channels import CHANNEL_TOOLS
from accord.agent.tools.claims import CLAIM_TOOLS
from accord.agent.tools.deliberations import DELIBERATION_TOOLS
from accord.agent.tools.lead import LEAD_TOOLS
from accord.agent.tools.skills import SKILL_TOOLS
from accord.agent.tools.team import TEAM_TOOLS
from accord.config import Config
from accord.errors import UserError
from accord.events import EventKind
from accord.llm.base import Model
from accord.llm.registry import open_model

__all__ = [
    "CONFIG_EXIT",
    "build_agent",
    "check_model",
    "gate_for",
    "model_alias",
    "model_name_for",
    "record_config_failure",
    "toolbox_for",
]
from accord.team import Team
from accord.types import MemberRole, MemberStatus, RunSettings

# the board, mail, channels, deliberations, file claims, skills (which skills: the
# definition's ``skills:``)
ALWAYS = tuple(
    t.name for t in [*TEAM_TOOLS, *CHANNEL_TOOLS, *DELIBERATION_TOOLS, *CLAIM_TOOLS, *SKILL_TOOLS]
)

# `accord agent` exits with this (sysexits' EX_CONFIG) when the member cannot start
# because of its configuration: no model, a missing key, a bad definition or tool.
# The supervisor does not restart it: a restart would fail the same way.
CONFIG_EXIT = 78


def record_config_failure(services: Team, member: str, reason: str) -> None:
    """Mark ``member`` failed with its one-line reason, for the supervisor, the lead's
    digest and `accord status`."""
    reason = " ".join(reason.split())
    services.roster.update(member, status=MemberStatus.FAILED)
    services.log.append_event(EventKind.MEMBER_FAILED, {"name": member, "reason": reason}, member)


def toolbox_for(
    definition: AgentDefinition, *, lead: bool = False, delegate: bool = False
) -> Toolbox:
    """A member's tools: its definition's allowlist plus the team tools; a lead also
    gets the lead tools, and a delegating lead only those and the team tools."""
    tools = all_tools() + (list(LEAD_TOOLS) if lead else [])
    extra = list(ALWAYS) + ([t.name for t in LEAD_TOOLS] if lead else [])
    if delegate:
        return Toolbox(tools, extra)
    if definition.tools is None:
        return Toolbox(tools)
    allow = list(definition.tools) + [n for n in extra if n not in definition.tools]
    return Toolbox(tools, allow)


def gate_for(
    config: Config,
    project_root: Path,
    workspace: Path,
    definition: AgentDefinition,
    stop: Callable[[], bool] | None = None,
) -> Gate | None:
    """A member's permission gate: the rules of .claude/settings*.json, accord.toml and
    its definition, anchored at its workspace; None when there are no rules at all.
    ConfigError (naming the file and the rule) when a settings file's rule is malformed."""
    from accord.permissions import Anchors, gather

    p = config.permissions
    where = definition.source or definition.name
    try:  # a rule's source reads as the settings files' do: relative to the project
        where = str(Path(where).resolve().relative_to(project_root.resolve()))
    except ValueError:
        pass
    rules = gather(
        project_root,
        {"allow": p.allow, "ask": p.ask, "deny": p.deny},
        definition=where,
        definition_deny=definition.deny_rules,
        definition_ask=definition.ask_rules,
    )
    if not rules:
        return None
    anchored = rules.with_anchors(Anchors.of(workspace, project_root))
    return Gate(anchored, p.ask_to, p.ask_timeout, stop)


def _workspace(services: Team, member: str, workspace: Path | None, project_root: Path) -> Path:
    if workspace is None and services.worktrees.active:
        # Worktree mode: the member works on its own branch, in its own worktree (made
        # on its first start, re-attached on a restart); NotARepository if impossible.
        workspace = services.worktrees.workspace(member)
    root = (workspace or project_root).resolve()
    if not root.is_dir():
        raise UserError(f"the workspace {root} is not a folder")
    return root


def build_agent(
    services: Team,
    member: str,
    config: Config,
    project_root: Path,
    *,
    model: str | Model | None = None,
    definition_name: str | None = None,
    workspace: Path | None = None,
    env: dict[str, str] | None = None,
    idle_wait: float = 30.0,
) -> Agent | ExternalAgent:
    """A ready-to-run Agent for ``member``; fails before any work on a bad model or key.
    A teammate whose definition says ``runtime: command`` gets an ``ExternalAgent``
    instead: its program plays it, through accord's MCP server.

    Its workspace is ``workspace`` if given, else its worktree in worktree mode
    (``Team.worktrees``), else the project folder."""
    record = services.roster.get(member)
    is_lead = record.role == MemberRole.LEAD
    name = definition_name or record.agent
    definition = LEAD if is_lead and name is None else find_definition(project_root, name)
    # Its MCP servers, checked before anything is written (ConfigError names the file).
    from accord.agent import mcp

    default = definition is DEFAULT
    servers = mcp.servers_for(
        definition, mcp.configured_servers(project_root, config), default=default
    )
    missing = [n for n, spec in servers.items() if spec.transport == "missing"]
    if missing:
        sys.stderr.write(
            f"warning: agent definition {definition.name!r}: MCP server(s) "
            f"{', '.join(missing)} not configured in .mcp.json or accord.toml "
            "[mcp.servers]; calls of their tools will fail\n"
        )
    warning = first_warning(definition)
    if warning is not None:  # the member's log, and the team's log where the person sees it
        sys.stderr.write(f"warning: {warning}\n")
        services.log.append_event(
            EventKind.DEFINITION_UNSUPPORTED,
            {"member": member, "agent": definition.name, "warning": warning},
            member,
        )
    if definition.runtime == "command" and not is_lead:
        from accord import credentials
        from accord.agent.external import check_command

        check_command(definition)
        token = credentials.get("ACCORD_TOKEN")
        if not token:
            raise UserError(
                f"{member} runs `{definition.command}` through accord's MCP server, which "
                "needs the member's token: start it with `accord run` (or set ACCORD_TOKEN)"
            )
        root = _workspace(services, member, workspace, project_root)
        return ExternalAgent(
            services, member, definition, root, config, token=token, idle_wait=idle_wait
        )
    run = services.runs.get()
    settings = run.settings if run is not None else RunSettings()
    if isinstance(model, Model):
        chosen = model
    else:
        lead_model = None
        if run is not None and not is_lead:
            lead_model = services.roster.get(run.lead).model
        chosen = open_model(
            model_name_for(
                definition,
                record.model,
                model,
                config,
                teammate_default=None if is_lead else settings.teammate_model,
                lead_model=lead_model,
            ),
            timeout=config.agent.model_timeout,
            max_retries=config.agent.max_retries,
            base_urls=dict(config.agent.base_urls),
        )
    root = _workspace(services, member, workspace, project_root)
    kind = Lead if is_lead else Agent
    agent = kind(
        services,
        member,
        definition,
        chosen,
        toolbox_for(definition, lead=is_lead, delegate=settings.delegate),
        root,
        config,
        env=env,
        idle_wait=idle_wait,
        project_root=project_root.resolve(),
    )
    agent.ctx.permissions = gate_for(config, project_root, root, definition, agent.stopping)
    if servers:
        # Started now, while the rest starts up; the first model call waits for them.
        m = config.mcp
        agent.mcp = mcp.McpServers(
            servers,
            root,
            settings=mcp.McpSettings(m.start_timeout, m.call_timeout, m.retry_after),
            sandbox=agent.ctx.sandbox,
            allowed=mcp.tool_filter(definition, default=default),
        ).start()
        agent.toolbox.source = agent.mcp
    return agent
