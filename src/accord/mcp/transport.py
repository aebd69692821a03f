"""Serving a member's MCP server: over stdio, or over streamable HTTP behind a wall.

Over HTTP every request must carry ``Authorization: Bearer TOKEN``, the token of the
member the server serves, checked against the roster (its SHA-256) on each request:
anything else is answered 401 and reaches no tool. The server binds only the address
it is told, and says on stderr which port it got (port 0 picks a free one).
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

# starlette's ASGI shapes, kept loose: the wall only reads headers and writes a refusal.
Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


def serve_stdio(server: MCPServer[Any]) -> None:
    anyio.run(server.run_stdio_async)


class BearerWall:
    """An ASGI app in front of another that lets through only requests whose bearer
    token ``verify`` accepts (it returns None) and answers the rest 401 with its reason."""

    def __init__(self, app: Any, verify: Callable[[str | None], str | None]) -> None:
        self.app = app
        self.verify = verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            scheme, _, token = header.partition(" ")
            given = token.strip() if scheme.lower() == "bearer" and token.strip() else None
            problem = await anyio.to_thread.run_sync(self.verify, given)
            if problem is not None:
                body = json.dumps({"error": problem}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="accord"'),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def serve_http(
    server: MCPServer[Any],
    host: str,
    port: int,
    verify: Callable[[str | None], str | None],
    announce: Callable[[str], None],
) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until interrupted; ``announce``
    gets the URL once the socket is bound (with the port a port 0 got)."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    app = BearerWall(server.streamable_http_app(host=host), verify)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    announce(f"http://{shown}:{bound}/mcp")
    sys.stderr.flush()
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))
