"""accord as an MCP server: one member of one team, served to an MCP client.

A front door, like ``cli/`` and ``tui/``: it parses what the client sends and
words what comes back, and holds no SQL and no business rules. The tools are
accord's own team and memory tools (``accord.agent.tools``) behind Claude Code's
names and argument shapes (``TaskCreate``, ``TaskUpdate``, ``SendMessage``...),
bound to one member through a ``ToolContext``: fencing tokens stay in the server,
the member's permission rules and the team's hooks apply as they do for
accord's own agents. ``server.py`` builds the server; ``http.py`` serves it over
streamable HTTP behind a bearer-token wall.
"""

from __future__ import annotations

from accord.mcp.server import Seat, build_server

__all__ = ["Seat", "build_server"]
