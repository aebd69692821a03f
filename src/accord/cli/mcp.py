"""``accord mcp --team T --as NAME``: serve one member to an MCP client (Claude Code, ...).

Over stdio by default; with ``--http 127.0.0.1:PORT`` over streamable HTTP. The
member's token comes from ``ACCORD_TOKEN``, or from the file ``--token-file`` (or
``ACCORD_TOKEN_FILE``) names, never from a tool argument. Over stdio a wrong or
missing token stops the server before it serves anything; over HTTP each request
must carry it as ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from accord.cli._common import Context, writes

if TYPE_CHECKING:
    from accord.cli._common import Subcommands


def register(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="serve a member's team tools to an MCP client (stdio, or --http)",
        description="Run an MCP server that acts as one member of the team: the board "
        "(TaskList, TaskGet, TaskCreate, TaskUpdate, task_fail), mail (SendMessage, "
        "read_mail, ack_mail, wait_for_work), team_digest and memory. Its token comes from "
        "ACCORD_TOKEN or --token-file (ACCORD_TOKEN_FILE).",
    )
    p.add_argument("--as", dest="member", required=True, metavar="NAME", help="the member")
    p.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the member's token from this file (else ACCORD_TOKEN_FILE, ACCORD_TOKEN)",
    )
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (port 0: any "
        "free port, printed on stderr); clients send the token as a bearer token",
    )
    p.set_defaults(func=mcp_cmd)


def _address(text: str) -> tuple[str, int]:
    from accord.errors import UserError

    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"--http {text!r} is not HOST:PORT; give e.g. --http 127.0.0.1:8765")
    return host, int(port)


def _token(path: str | None) -> str | None:
    from pathlib import Path

    from accord import credentials
    from accord.errors import UserError

    path = path or os.environ.get("ACCORD_TOKEN_FILE")
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as e:
            raise UserError(f"cannot read the token file {path}: {e.strerror}") from None
    return credentials.get("ACCORD_TOKEN")


def mcp_cmd(ctx: Context) -> int:
    from accord import credentials
    from accord.errors import IdentityError, UserError
    from accord.team.roster import authorize
    from accord.types import check_name

    credentials.receive()
    member = check_name(ctx.args.member, "member name")
    address = _address(ctx.args.http) if ctx.args.http else None
    token = _token(ctx.args.token_file)
    team = ctx.team
    project = ctx.project
    team.roster.get(member)  # an unknown name is said as such, before its token
    if token is None and address is None:
        raise UserError(
            f"no token for {member}: set ACCORD_TOKEN or give --token-file (the token "
            f"`accord member add` printed, or `accord member token {member}` makes a new one)"
        )
    if token is not None:
        authorize(team.store, team.name, member, member, token)
    else:
        team.roster.get(member)  # UnknownMember, naming the members there are

    from accord.mcp import Seat, build_server
    from accord.mcp.transport import serve_http, serve_stdio

    seat = Seat(team, member, project.root, project.config)
    server = build_server(seat)
    if address is None:
        serve_stdio(server)
        return 0

    def verify(given: str | None) -> str | None:
        if given is None:
            return f"send the token of {member} as Authorization: Bearer TOKEN"
        try:
            authorize(team.store, team.name, member, member, given)
        except IdentityError:
            return f"that is not the token of {member} in team {team.name}"
        return None

    def announce(url: str) -> None:
        sys.stderr.write(f"accord mcp: serving {member} of team {team.name} at {url}\n")

    serve_http(server, *address, verify, announce)
    return 0
