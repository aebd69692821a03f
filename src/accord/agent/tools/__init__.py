"""The tools a member may use: files, bash, and the team's board and mailboxes."""

from __future__ import annotations

from typing import Any

from accord.agent.tools.base import HeldClaim, Tool, ToolArgs, Toolbox, ToolContext
from accord.agent.tools.channels import CHANNEL_TOOLS
from accord.agent.tools.claims import CLAIM_TOOLS
from accord.agent.tools.deliberations import DELIBERATION_TOOLS
from accord.agent.tools.files import FILE_TOOLS
from accord.agent.tools.memory import MEMORY_TOOLS
from accord.agent.tools.shell import SHELL_TOOLS
from accord.agent.tools.skills import SKILL_TOOLS
from accord.agent.tools.team import TEAM_TOOLS

__all__ = [
    "CHANNEL_TOOLS",
    "CLAIM_TOOLS",
    "DELIBERATION_TOOLS",
    "FILE_TOOLS",
    "MEMORY_TOOLS",
    "SHELL_TOOLS",
    "SKILL_TOOLS",
    "TEAM_TOOLS",
    "HeldClaim",
    "Tool",
    "ToolArgs",
    "ToolContext",
    "Toolbox",
    "all_tools",
]


def all_tools() -> list[Tool[Any]]:
    """Every built-in tool: files, bash, the team's, channels, deliberations, file claims,
    then memory and skills; an agent definition's allowlist picks from these by name."""
    return [
        *FILE_TOOLS,
        *SHELL_TOOLS,
        *TEAM_TOOLS,
        *CHANNEL_TOOLS,
        *DELIBERATION_TOOLS,
        *CLAIM_TOOLS,
        *MEMORY_TOOLS,
        *SKILL_TOOLS,
    ]
