"""MCP servers a member uses: their configuration, their processes, and their tools.

Servers are configured as Claude Code configures them: ``.mcp.json`` at the project
root (``{"mcpServers": {NAME: {"command", "args", "env"} | {"type": "http", "url",
"headers"}}}``, read unchanged, ``${VAR}`` and ``${VAR:-default}`` expanded), then
``[mcp.servers.NAME]`` in accord.toml (a name there wins), then the servers an agent
definition defines inline. A member gets the servers its definition names
(``mcpServers``, or ``mcp__SERVER__TOOL`` entries in ``tools``); the default teammate
gets every configured server; a definition naming none gets none.

Each member holds its servers' sessions on one background thread running an event
loop (the SDK is async, the agent loop is not). A stdio server is a child of the
member, started in the member's workspace, inside the member's sandbox (with the
network on: a server is the person's chosen program, usually there to reach a
service), in a process group of its own tethered to the member as ``accord.process``
tethers every child: it dies with the member, however the member dies, and is
started again when the member restarts. An HTTP server is reached by its URL.

The model sees each tool as ``mcp__SERVER__TOOL`` with the server's input schema.
A server that fails to start, hangs or crashes is marked down: a call of its tools
returns a tool error saying what happened, the member goes on, and the server is
tried again only after ``[mcp] retry_after`` seconds. Each call writes one
``mcp_call`` event.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord import credentials, process
from accord.agent.tools.base import RESULT_LIMIT, Tool, ToolArgs, ToolContext, cap
from accord.claude import read_json
from accord.errors import AccordError, ConfigError
from accord.events import EventKind

if TYPE_CHECKING:
    import asyncio

    from accord.agent.definition import AgentDefinition
    from accord.config import Config
    from accord.sandbox import Sandbox

MCP_JSON = ".mcp.json"
PREFIX = "mcp__"
# A line longer than this from a stdio server is not a message: the server is broken.
LINE_LIMIT = 64 * 1024 * 1024
# Room for the note so Toolbox's own cap never cuts the result a second time.
OUTPUT_LIMIT = RESULT_LIMIT - 1000
_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# What a stdio server inherits of the member's environment (the SDK's choice, too):
# never the member's token or a model key, only what a program needs to run.
_INHERITED = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TZ")


# configuration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One MCP server as configured: a stdio ``command`` or an ``url``; ``source`` is
    where it was read (``.mcp.json``, ``accord.toml``, an agent definition)."""

    name: str
    source: str
    transport: str = "stdio"  # stdio, http, sse, or missing (configured nowhere)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _expand(text: str, where: str) -> str:
    def one(m: re.Match[str]) -> str:
        value = credentials.get(m.group(1))
        if value is not None:
            return value
        if m.group(2) is not None:
            return m.group(2)
        raise ConfigError(
            f"{where} names ${{{m.group(1)}}}, which is not set; set it, or write "
            f"${{{m.group(1)}:-default}}"
        )

    return _VAR.sub(one, text)


def spec_from(name: str, raw: Any, source: str, key: str) -> ServerSpec:
    """One server's entry, checked; ConfigError naming ``source`` and ``key``."""
    if not _NAME.match(name):
        raise ConfigError(
            f"{source}: {key}: {name!r} is not a server name; use letters, digits, - and _"
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {key} must be an object with command or url")
    known = {"type", "command", "args", "env", "url", "headers"}
    extra = sorted(k for k in raw if k not in known)
    if extra:
        raise ConfigError(f"{source}: {key}.{extra[0]}: unknown key; use {', '.join(known)}")
    kind = raw.get("type")
    if kind is not None and kind not in ("stdio", "http", "sse", "streamable-http"):
        raise ConfigError(f"{source}: {key}.type must be stdio, http or sse, not {kind!r}")

    def text(k: str) -> str | None:
        v = raw.get(k)
        if v is not None and not isinstance(v, str):
            raise ConfigError(f"{source}: {key}.{k} must be a string")
        return None if v is None else _expand(v, f"{source}: {key}.{k}")

    def strings(k: str) -> list[str]:
        v = raw.get(k, [])
        if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
            raise ConfigError(f"{source}: {key}.{k} must be a list of strings")
        return [_expand(a, f"{source}: {key}.{k}") for a in v]

    def table(k: str) -> dict[str, str]:
        v = raw.get(k, {})
        if not isinstance(v, dict) or not all(isinstance(a, str) for a in v.values()):
            raise ConfigError(f"{source}: {key}.{k} must be an object of strings")
        return {str(a): _expand(b, f"{source}: {key}.{k}.{a}") for a, b in v.items()}

    command, url = text("command"), text("url")
    if (command is None) == (url is None):
        raise ConfigError(
            f"{source}: {key} needs a command (a stdio server) or a url (an HTTP server)"
        )
    transport = "stdio" if command is not None else ("sse" if kind == "sse" else "http")
    return ServerSpec(
        name,
        source,
        transport,
        command=command,
        args=tuple(strings("args")),
        env=table("env"),
        url=url,
        headers=table("headers"),
    )


def read_mcp_json(root: Path) -> dict[str, ServerSpec]:
    """The servers of ``root/.mcp.json`` (none when it is missing); ConfigError naming
    the file and the key when it is malformed."""
    path = root / MCP_JSON
    data = read_json(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: the top level must be {{"mcpServers": {{...}}}}')
    servers = data.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{path}: mcpServers must be an object of servers by name")
    return {n: spec_from(n, s, str(path), f"mcpServers.{n}") for n, s in servers.items()}


def configured_servers(root: Path, config: Config) -> dict[str, ServerSpec]:
    """Every server of the project: .mcp.json's, then accord.toml's (which win)."""
    found = read_mcp_json(root)
    for name, server in config.mcp.servers.items():
        raw = server.model_dump(exclude_none=True)
        found[name] = spec_from(name, raw, "accord.toml", f"mcp.servers.{name}")
    return found


def servers_for(
    definition: AgentDefinition, configured: Mapping[str, ServerSpec], *, default: bool
) -> dict[str, ServerSpec]:
    """The servers a member with ``definition`` uses (``default``: it is the default
    teammate, which gets them all); a server configured nowhere is kept as ``missing``."""
    if default:
        return dict(configured)
    where = definition.source or f"agent definition {definition.name}"
    wanted = list(definition.mcp_servers)
    for entry in definition.mcp_tools:
        server = _server_of(entry)
        if server not in wanted:
            wanted.append(server)
    chosen: dict[str, ServerSpec] = {}
    for name in wanted:
        if name in definition.mcp_inline:
            chosen[name] = spec_from(name, definition.mcp_inline[name], where, f"mcpServers.{name}")
        elif name in configured:
            chosen[name] = configured[name]
        else:
            # Claude Code's user-level servers are not the project's: the member starts,
            # and a call of the server's tools says what is missing.
            chosen[name] = ServerSpec(name, where, "missing")
    return chosen


def _server_of(entry: str) -> str:
    """``mcp__github__search`` / ``mcp__github__*`` / ``mcp__github`` -> ``github``."""
    return entry[len(PREFIX) :].split("__", 1)[0]


def tool_filter(definition: AgentDefinition, *, default: bool) -> Callable[[str], bool]:
    """Which ``mcp__s__t`` names the member gets: every tool of a server its
    ``mcpServers`` names, else those its ``tools`` entries name."""
    from accord.permissions import mcp_rule_covers

    whole = set(definition.mcp_servers)
    entries = definition.mcp_tools

    def allowed(name: str) -> bool:
        if default or _server_of(name) in whole:
            return True
        return any(mcp_rule_covers(e, name) for e in entries)

    return allowed


def tool_name(server: str, tool: str) -> str:
    """What the model calls a server's tool: ``mcp__server__tool``, with characters a
    model API refuses made ``_`` (as Claude Code does)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{PREFIX}{server}__{tool}")[:128]


# a stdio server's process ----------------------------------------------------------


@dataclass
class _Watch:
    """What a stdio server did that an error message should say."""

    pid: int | None = None
    returncode: int | None = None  # when it exited by itself
    reaped: bool = False
    garbage: str | None = None
    stderr: bytearray = field(default_factory=bytearray)

    def said(self) -> str:
        parts = []
        if self.returncode is not None:
            parts.append(f"it exited with code {self.returncode}")
        if self.garbage is not None:
            parts.append(f"it printed something that is not JSON-RPC: {self.garbage!r}")
        tail = self.stderr.decode("utf-8", "replace").strip().splitlines()
        if tail:
            parts.append(f"its stderr ends: {tail[-1][:300]!r}")
        return "; ".join(parts)


@asynccontextmanager
async def _stdio(
    argv: list[str], cwd: Path, env: dict[str, str], watch: _Watch
) -> AsyncIterator[Any]:
    """A stdio transport like the SDK's, but the server is tethered to this process
    (``accord.process``): its whole group dies when the member does."""
    import anyio
    import mcp_types
    from mcp.shared.message import SessionMessage

    read, write = os.pipe()
    sentinel = process._SENTINEL.format(fd=read, closes="")
    try:
        proc = await anyio.open_process(
            [process.BASH, "-c", sentinel, "accord", *argv],
            cwd=cwd,
            env=env,
            start_new_session=True,
            pass_fds=(read,),
        )
    except BaseException:
        os.close(write)
        raise
    finally:
        os.close(read)
    watch.pid = proc.pid
    incoming_w, incoming_r = anyio.create_memory_object_stream[Any](0)
    outgoing_w, outgoing_r = anyio.create_memory_object_stream[Any](0)

    async def stdout() -> None:
        assert proc.stdout is not None
        buffer = bytearray()
        async with incoming_w:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                async for chunk in proc.stdout:
                    buffer += chunk
                    while (end := buffer.find(b"\n")) >= 0:
                        line = bytes(buffer[:end]).strip()
                        del buffer[: end + 1]
                        if not line:
                            continue
                        try:
                            message = mcp_types.jsonrpc_message_adapter.validate_json(
                                line, by_name=False
                            )
                        except ValueError:
                            if watch.garbage is None:
                                watch.garbage = line[:200].decode("utf-8", "replace")
                            continue
                        await incoming_w.send(SessionMessage(message))
                    if len(buffer) > LINE_LIMIT:
                        watch.garbage = f"a line of more than {LINE_LIMIT} bytes"
                        break
            with anyio.move_on_after(1):
                watch.returncode = await proc.wait()

    async def stderr() -> None:
        assert proc.stderr is not None
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            async for chunk in proc.stderr:
                watch.stderr += chunk
                del watch.stderr[:-4096]

    async def stdin() -> None:
        assert proc.stdin is not None
        async with outgoing_r:
            try:
                async for message in outgoing_r:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await proc.stdin.send((data + "\n").encode())
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                await incoming_w.aclose()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(stdout)
        tasks.start_soon(stderr)
        tasks.start_soon(stdin)
        try:
            yield incoming_r, outgoing_w
        finally:
            with anyio.CancelScope(shield=True):
                assert proc.stdin is not None
                with suppress(Exception):
                    await proc.stdin.aclose()
                with anyio.move_on_after(0.5):
                    await proc.wait()
                # The whole group: the server, what it started, and the sentinel.
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                os.close(write)
                with anyio.move_on_after(2):
                    await proc.wait()
                    watch.reaped = True
                # Else asyncio closes it when collected, after the loop is gone, and warns.
                transport = getattr(getattr(proc, "_process", None), "_transport", None)
                with suppress(Exception):
                    transport.close()  # type: ignore[union-attr]
            tasks.cancel_scope.cancel()


# the member's servers --------------------------------------------------------------


@dataclass
class _Server:
    spec: ServerSpec
    state: str = "new"  # new, starting, up, down
    error: str = ""
    down_at: float = 0.0
    tools: list[Any] = field(default_factory=list)
    client: Any = None
    stop: Any = None  # an anyio.Event, made on the loop
    ready: threading.Event = field(default_factory=threading.Event)
    task: Future[None] | None = None
    watch: _Watch = field(default_factory=_Watch)


@dataclass(frozen=True, slots=True)
class McpSettings:
    """``[mcp]``'s timeouts."""

    start_timeout: float = 10.0
    call_timeout: float = 120.0
    retry_after: float = 60.0


class McpServers:
    """One member's MCP servers: started together on a thread of their own, asked for
    their tools, called, and stopped with the member (``close``)."""

    def __init__(
        self,
        specs: Mapping[str, ServerSpec],
        workspace: Path,
        *,
        settings: McpSettings = McpSettings(),
        sandbox: Sandbox | None = None,
        allowed: Callable[[str], bool] = lambda name: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workspace = workspace
        self.settings = settings
        self.sandbox = sandbox
        self.allowed = allowed
        self.clock = clock
        self.servers = {name: _Server(spec) for name, spec in specs.items()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._tools: dict[str, Tool[Any]] | None = None
        self.warnings: list[str] = []  # said once each, for the member's log
        self._closing = False

    # lifecycle --------------------------------------------------------------------

    def start(self) -> McpServers:
        """Start every server, not waiting for any (``tools`` waits)."""
        for server in self.servers.values():
            self._start(server)
        return self

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        import asyncio  # here, not at start-up: a member with no MCP server never needs it

        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="accord-mcp", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    def _start(self, server: _Server) -> None:
        import asyncio

        loop = self._ensure_loop()
        server.state, server.error = "starting", ""
        server.ready.clear()
        server.watch = _Watch()
        server.task = asyncio.run_coroutine_threadsafe(self._serve(server), loop)
        self._tools = None

    def close(self) -> None:
        """Stop every server and the thread; a stdio server's whole group is killed."""
        loop = self._loop
        if loop is None:
            return
        self._closing = True
        for server in self.servers.values():
            self._stop(server)
        for server in self.servers.values():
            if server.task is not None:
                with suppress(Exception):
                    server.task.result(timeout=5)
        for server in self.servers.values():
            if server.watch.pid is not None and not server.watch.reaped:
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(server.watch.pid, signal.SIGKILL)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        with suppress(RuntimeError):
            loop.close()
        self._loop = None

    def _stop(self, server: _Server) -> None:
        loop, stop = self._loop, server.stop
        if loop is not None and stop is not None:
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    async def _serve(self, server: _Server) -> None:
        """Hold one server's session from start to stop (one task: the SDK's contexts
        are entered and left in the same task)."""
        import anyio
        from mcp import Client
        from mcp_types import Implementation

        server.stop = anyio.Event()
        timeout = self.settings.start_timeout
        error = ""
        try:
            with anyio.move_on_after(timeout) as starting:
                async with Client(
                    self._transport(server),
                    mode="legacy",
                    cache=None,
                    client_info=Implementation(name="accord", version="1"),
                ) as client:
                    tools: list[Any] = []
                    cursor = None
                    while True:
                        listed = await client.list_tools(cursor=cursor)
                        tools += listed.tools
                        cursor = listed.next_cursor
                        if cursor is None:
                            break
                    starting.deadline = math.inf
                    server.client, server.tools, server.state = client, tools, "up"
                    self._tools = None
                    server.ready.set()
                    await server.stop.wait()
            if starting.cancelled_caught:
                error = f"did not answer initialize within {timeout:g} s"
        except Exception as e:  # the SDK raises many kinds; every one marks it down
            error = _describe(e)
            if server.state != "up" and error.lower().startswith("connection closed"):
                error = "closed the connection before answering initialize"
        finally:
            server.client = None
            if self._closing:
                server.state = "down"
            elif server.state != "down":
                said = server.watch.said()
                if error:
                    error = f"{error}{'; ' + said if said else ''}"
                self._down(server, error or "stopped")

    def _down(self, server: _Server, error: str) -> None:
        if server.state == "down":
            return
        server.state, server.error, server.down_at = "down", error, self.clock()
        self._tools = None
        server.ready.set()
        line = f"warning: MCP server {server.spec.name} is down: {error}"
        if line not in self.warnings and server.spec.transport != "missing":
            self.warnings.append(line)
            sys.stderr.write(line + "\n")
        self._stop(server)

    def _transport(self, server: _Server) -> Any:
        spec = server.spec
        if spec.transport == "missing":
            raise _Refused(
                f"it is not configured: add it to {MCP_JSON} or accord.toml [mcp.servers]"
            )
        if spec.transport == "stdio":
            assert spec.command is not None
            argv = [spec.command, *spec.args]
            env = {k: os.environ[k] for k in _INHERITED if k in os.environ} | spec.env
            if self.sandbox is not None:
                # Its own wall: the member's, with the network on (see the docstring).
                wrapped = replace(self.sandbox, network=True).wrap(argv, self.workspace, env)
                if wrapped.refusal is not None:
                    raise _Refused(wrapped.refusal)
                argv, env = wrapped.argv, wrapped.env
            return _stdio(argv, self.workspace, env, server.watch)
        from mcp.shared._httpx_utils import create_mcp_http_client

        assert spec.url is not None
        if spec.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(spec.url, headers=spec.headers or None)
        from mcp.client.streamable_http import streamable_http_client

        http = create_mcp_http_client(headers=spec.headers or None)
        return streamable_http_client(spec.url, http_client=http)

    # what the model sees ------------------------------------------------------------

    def _due(self, server: _Server) -> bool:
        return server.state == "down" and (
            self.clock() - server.down_at >= self.settings.retry_after
        )

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every starting server to be up or down (at most ``timeout``)."""
        limit = self.settings.start_timeout + 2 if timeout is None else timeout
        deadline = time.monotonic() + limit
        for server in self.servers.values():
            if server.state == "starting":
                server.ready.wait(max(0.0, deadline - time.monotonic()))

    def tools(self) -> dict[str, Tool[Any]]:
        """The tools of the servers that are up, by the name the model calls them;
        for a server that is down, the tools it had (or, never up, none)."""
        for server in self.servers.values():
            if self._due(server):
                self._start(server)
        self.wait()
        if self._tools is None:
            found: dict[str, Tool[Any]] = {}
            for server in self.servers.values():
                for t in server.tools:
                    name = tool_name(server.spec.name, t.name)
                    if self.allowed(name):
                        found[name] = _tool(self, server.spec.name, t)
            self._tools = found
        return dict(self._tools)

    def stand_in(self, name: str) -> Tool[Any] | None:
        """For ``mcp__SERVER__TOOL`` of one of our servers that has no such tool now (it
        is down, or never came up): a tool whose call says why (None: not ours)."""
        if not name.startswith(PREFIX):
            return None
        server = self.servers.get(_server_of(name))
        if server is None:
            return None
        tool = name[len(PREFIX) + len(server.spec.name) + 2 :]
        return _tool(self, server.spec.name, _Listed(tool or name))

    def _down_error(self, server: _Server) -> str:
        wait = self.settings.retry_after - (self.clock() - server.down_at)
        again = f"; it is tried again in {wait:.0f} s" if wait > 0 else ""
        return (
            f"MCP server {server.spec.name} is unavailable: {server.error}{again}. Carry "
            "on without it"
        )

    # a call -------------------------------------------------------------------------

    def call(
        self, server_name: str, tool: str, arguments: dict[str, Any]
    ) -> tuple[str, str | None]:
        """Call one tool: (the text for the model, None) or (the text, the error)."""
        server = self.servers[server_name]
        if self._due(server):
            self._start(server)
        if server.state == "starting":
            server.ready.wait(self.settings.start_timeout + 2)
        if server.state != "up" or self._loop is None:
            error = self._down_error(server)
            return error, error
        if not any(t.name == tool for t in server.tools):
            error = f"MCP server {server_name} has no tool {tool!r}"
            return error, error
        timeout = self.settings.call_timeout
        import asyncio

        future = asyncio.run_coroutine_threadsafe(
            self._call(server, tool, arguments, timeout), self._loop
        )
        try:
            result = future.result(timeout + 5)
        except (TimeoutError, FutureTimeout):
            future.cancel()
            result = TimeoutError()
        except Exception as e:
            result = e
        if isinstance(result, TimeoutError):
            self._down(server, f"did not answer a call of {tool} within {timeout:g} s")
            error = f"MCP server {server_name} did not answer {tool} within {timeout:g} s"
            return error + "; it is stopped and tried again later", error
        if isinstance(result, BaseException):
            from mcp.shared.exceptions import MCPError
            from mcp_types import CONNECTION_CLOSED

            if isinstance(result, MCPError) and result.code != CONNECTION_CLOSED:
                said = f"MCP server {server_name} refused the call of {tool}: {result}"
                return said, said
            # Closed: give its exit a moment to be seen, so the error can say how it ended.
            deadline = time.monotonic() + 0.5
            while server.watch.returncode is None and time.monotonic() < deadline:
                time.sleep(0.01)
            said = server.watch.said()
            why = _describe(result) + (f"; {said}" if said else "")
            self._down(server, f"failed during a call of {tool}: {why}")
            error = f"MCP server {server_name} failed during the call of {tool}: {why}"
            return error, error
        return _result_text(result)

    async def _call(
        self, server: _Server, tool: str, arguments: dict[str, Any], timeout: float
    ) -> Any:
        import anyio

        client = server.client
        if client is None:
            raise ConnectionError("the server went down")
        try:
            with anyio.fail_after(timeout):
                return await client.call_tool(tool, arguments)
        except Exception as e:
            return e


@dataclass(frozen=True, slots=True)
class _Listed:
    """A stand-in for a tool a server that is down did not list."""

    name: str
    description: str = "(its MCP server is unavailable)"
    input_schema: dict[str, Any] | None = None
    annotations: Any = None


class _Refused(Exception):
    """The sandbox refuses the server (bubblewrap missing and required)."""


def _describe(error: BaseException) -> str:
    """One line for an error, looking inside exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and error.filename:
        return f"cannot start it: {text}"
    return text.splitlines()[0][:500]


def _result_text(result: Any) -> tuple[str, str | None]:
    """A CallToolResult as text: text content joined, other content described."""
    parts: list[str] = []
    for item in result.content or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)
        elif kind in ("image", "audio"):
            size = len(getattr(item, "data", "") or "") * 3 // 4
            parts.append(f"[{kind}: {getattr(item, 'mime_type', '?')}, about {size:,} bytes]")
        elif kind == "resource_link":
            parts.append(f"[resource link: {item.uri} {getattr(item, 'name', '')}]".strip())
        elif kind == "resource":
            inner = item.resource
            text = getattr(inner, "text", None)
            parts.append(text if text is not None else f"[resource {inner.uri}: binary]")
        else:
            parts.append(f"[{kind or type(item).__name__} content]")
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, indent=1))
    text = "\n".join(parts) or "(no content)"
    total = len(text)
    if total > OUTPUT_LIMIT:
        text = cap(text, OUTPUT_LIMIT) + f"\n[the MCP result was {total:,} characters; cut]"
    error = text[:500] if result.is_error else None
    return text, error


# tools ---------------------------------------------------------------------------


class McpArgs(ToolArgs):
    """A server's arguments, passed on whole: the server checks them against its schema."""

    model_config = {"extra": "allow"}


@dataclass(frozen=True)
class McpTool(Tool[McpArgs]):
    """A server's tool: its schema is the server's, not a pydantic model's."""

    schema: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> Any:
        from accord.llm.base import ToolSpec

        return ToolSpec(self.name, self.description, self.schema)


def _tool(servers: McpServers, server: str, listed: Any) -> McpTool:
    name = tool_name(server, listed.name)
    schema = dict(listed.input_schema or {"type": "object", "properties": {}})
    schema.pop("title", None)
    annotations = getattr(listed, "annotations", None)

    def run(ctx: ToolContext, args: McpArgs) -> str:
        started = time.monotonic()
        text, error = servers.call(server, listed.name, dict(args.model_extra or {}))
        if ctx.team is not None:
            ctx.team.log.append_event(
                EventKind.MCP_CALL,
                {
                    "member": ctx.member,
                    "server": server,
                    "tool": listed.name,
                    "seconds": round(time.monotonic() - started, 3),
                    "error": error,
                    "chars": len(text),
                },
                ctx.member,
            )
        if error is not None:
            raise McpCallFailed(text)
        return text

    return McpTool(
        name,
        (listed.description or f"{listed.name} of MCP server {server}")[:4000],
        McpArgs,
        run,
        read_only=bool(annotations is not None and annotations.read_only_hint),
        schema=schema,
    )


class McpCallFailed(AccordError):
    """A call that came back as an error: the model reads the text as a tool error."""
