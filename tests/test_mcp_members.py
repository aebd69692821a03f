"""Members use MCP servers: real stdio servers written with the SDK here, and the
published ``mcp-server-time``, called by a scripted member; servers that print garbage,
exit at once or never answer give tool errors and the member goes on; a 10 MB result is
capped; permission rules judge MCP tools by name; a malformed ``.mcp.json`` is one
``error:`` line; a server dies with its member."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from accord.agent.definition import parse_definition
from accord.agent.launch import build_agent
from accord.agent.mcp import McpServers, read_mcp_json, servers_for
from accord.config import Config, parse_config
from accord.errors import ConfigError
from accord.llm.base import ChatMessage
from accord.llm.scripted import ScriptedModel, call, reply
from accord.permissions import Decision, Rules, parse_rule
from accord.team import Team
from accord.testing.cli import Result, one_error, start
from accord.types import NewTask

BIN = Path(sys.executable).parent
TIME_SERVER = str(BIN / "mcp-server-time")

SERVER = """\
from mcp.server.mcpserver import MCPServer

app = MCPServer("test")


@app.tool()
def echo(text: str) -> str:
    \"\"\"Echo the text back.\"\"\"
    return "echo: " + text


@app.tool()
def big(n: int) -> str:
    \"\"\"n characters of x.\"\"\"
    return "x" * n


@app.tool()
def add(a: int, b: int) -> int:
    \"\"\"a + b\"\"\"
    return a + b


@app.tool()
def nap(seconds: float) -> str:
    \"\"\"Sleep.\"\"\"
    import time

    time.sleep(seconds)
    return "rested"


@app.tool()
def crash() -> str:
    \"\"\"Die.\"\"\"
    import os

    os._exit(1)


@app.tool()
def walled() -> str:
    \"\"\"Whether this server runs in accord's sandbox, and where.\"\"\"
    import os

    return f"{os.path.exists('/.accord-sandbox')} {os.getcwd()}"


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:  # an HTTP server on that port
        app.run("streamable-http", port=int(sys.argv[1]))
    else:
        app.run()
"""
BROKEN = {
    "garbage": "import time\nprint('hello, I am not JSON-RPC', flush=True)\ntime.sleep(60)\n",
    "gone": "import sys\nsys.exit(3)\n",
    "silent": "import time\ntime.sleep(60)\n",
}


def write_servers(root: Path, names: tuple[str, ...] = ("time", "test")) -> None:
    """Server scripts in ``root/servers`` (inside the project: the sandbox shows it) and
    a .mcp.json naming ``names``."""
    folder = root / "servers"
    folder.mkdir(exist_ok=True)
    (folder / "test.py").write_text(SERVER)
    for name, text in BROKEN.items():
        (folder / f"{name}.py").write_text(text)
    every = {
        "time": {"command": TIME_SERVER},
        **{
            n: {"command": sys.executable, "args": [str(folder / f"{n}.py")]}
            for n in ("test", *BROKEN)
        },
    }
    (root / ".mcp.json").write_text(json.dumps({"mcpServers": {n: every[n] for n in names}}))


def agent_for(
    team: Team, repo: Path, model: ScriptedModel, definition: str, toml: str = ""
) -> tuple[Callable[[], object], Config]:
    agents = repo / ".accord" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    (agents / "user.md").write_text(definition)
    config = parse_config(toml)
    services = Team.open(team.store, team.team, config, repo)
    agent = build_agent(
        services, "alice", config, repo, model=model, definition_name="user", idle_wait=0.05
    )
    return (lambda: agent.run(once=True)), config


def results(model: ScriptedModel, turn: int) -> dict[str, tuple[str, bool]]:
    """The tool results the model read in request ``turn``, by tool name."""
    last: ChatMessage = model.requests[turn].messages[-1]
    return {r.name: (r.content, r.is_error) for r in last.tool_results}


def mcp_events(team: Team) -> list[dict[str, object]]:
    return [e.payload for e in team.log.read_events() if e.kind == "mcp_call"]


def test_a_member_calls_a_published_server_and_one_of_its_own(team: Team, repo: Path) -> None:
    write_servers(repo)
    team.board.add(NewTask("tell the time"))
    model = ScriptedModel(
        [
            reply(
                "",
                call("mcp__time__get_current_time", {"timezone": "UTC"}),
                call("mcp__test__echo", {"text": "hi"}),
                call("mcp__test__big", {"n": 10_000_000}),
                call("mcp__test__walled", {}),
            ),
            reply("", call("task_complete", {"task_id": 1, "result": "it is now"})),
            reply("Done."),
        ]
    )
    # Chosen by `tools`: one tool of time, every tool of test.
    run, _ = agent_for(
        team,
        repo,
        model,
        "---\nname: user\ntools: Read, mcp__time__get_current_time, mcp__test__*\n---\nUse them.",
    )
    assert run().reason == "idle"  # type: ignore[attr-defined]
    model.assert_complete()
    offered = {t.name: t for t in model.requests[0].tools}
    assert "mcp__time__convert_time" not in offered  # not named by the definition
    echo = offered["mcp__test__echo"]
    assert echo.schema["properties"]["text"]["type"] == "string"
    assert "mcp__time__get_current_time" in offered and "mcp__test__add" in offered
    got = results(model, 1)
    time_text, time_error = got["mcp__time__get_current_time"]
    assert not time_error and '"timezone": "UTC"' in time_text
    assert got["mcp__test__echo"] == ("echo: hi", False)
    # In the member's sandbox, in its workspace.
    assert got["mcp__test__walled"] == (f"True {repo.resolve()}", False)
    big, big_error = got["mcp__test__big"]
    assert not big_error and len(big) < 30_000 and "10,000,000 characters; cut" in big
    events = mcp_events(team)
    assert [(e["server"], e["tool"], e["error"]) for e in events] == [
        ("time", "get_current_time", None),
        ("test", "echo", None),
        ("test", "big", None),
        ("test", "walled", None),
    ]
    assert events[2]["chars"] > 29_000 and all(e["member"] == "alice" for e in events)


def test_broken_servers_give_tool_errors_and_permission_rules_apply(team: Team, repo: Path) -> None:
    write_servers(repo, ("garbage", "gone", "silent", "test"))
    team.board.add(NewTask("try everything"))
    model = ScriptedModel(
        [
            reply(
                "",
                call("mcp__garbage__anything", {}),
                call("mcp__gone__anything", {}),
                call("mcp__silent__anything", {}),
                call("mcp__test__echo", {"text": "hi"}),
                call("mcp__test__big", {"n": 3}),
                call("mcp__test__add", {"a": 2, "b": 3}),
                call("mcp__test__nap", {"seconds": 30}),
            ),
            reply("", call("mcp__test__add", {"a": 2, "b": 3})),
            reply("", call("task_complete", {"task_id": 1, "result": "tried"})),
            reply("Done."),
        ]
    )
    run, _ = agent_for(
        team,
        repo,
        model,
        "---\nname: user\nmcpServers: [garbage, gone, silent, test]\n---\nTry.",
        '[mcp]\nstart_timeout = 4\ncall_timeout = 0.5\n[permissions]\ndeny = ["mcp__test__big"]\n'
        'ask = ["mcp__test__echo"]\nask_timeout = 0.2\n',
    )
    assert run().reason == "idle"  # type: ignore[attr-defined]
    model.assert_complete()  # the member went on to complete its task
    got = results(model, 1)
    text, error = got["mcp__garbage__anything"]
    assert error and "MCP server garbage is unavailable" in text
    assert "not JSON-RPC: 'hello, I am not JSON-RPC'" in text
    text, error = got["mcp__gone__anything"]
    assert error and "before answering initialize" in text and "exited with code 3" in text
    text, error = got["mcp__silent__anything"]
    assert error and "did not answer initialize within 4 s" in text
    assert "tried again in" in text
    text, error = got["mcp__test__echo"]
    assert error and "nobody answered" in text and "mcp__test__echo" in text
    text, error = got["mcp__test__big"]
    assert error and "denied by rule mcp__test__big from accord.toml" in text
    assert got["mcp__test__add"] == ("5", False)
    # A call that hangs: the server is stopped, and then unavailable until retry_after.
    text, error = got["mcp__test__nap"]
    assert error and "MCP server test did not answer nap within 0.5 s" in text
    text, error = results(model, 2)["mcp__test__add"]
    assert error and "MCP server test is unavailable" in text
    assert [(e["server"], e["error"] is None) for e in mcp_events(team)] == [
        ("garbage", False),
        ("gone", False),
        ("silent", False),
        ("test", True),
        ("test", False),
        ("test", False),
    ]


def test_a_server_that_crashes_mid_call_is_a_tool_error(tmp_path: Path) -> None:
    write_servers(tmp_path, ("test",))
    servers = McpServers(read_mcp_json(tmp_path), tmp_path).start()
    try:
        assert servers.call("test", "add", {"a": 1, "b": 1}) == ("2", None)
        text, error = servers.call("test", "crash", {})
        assert error == text and "failed during the call of crash" in text
        assert "exited with code 1" in text
        text, error = servers.call("test", "add", {"a": 1, "b": 1})
        assert error and "MCP server test is unavailable" in text
    finally:
        servers.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_an_http_server_is_reached_by_its_url(tmp_path: Path) -> None:
    write_servers(tmp_path, ("test",))
    port = _free_port()
    http = subprocess.Popen(
        [sys.executable, str(tmp_path / "servers" / "test.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        assert _until(listening, 15)
        (tmp_path / ".mcp.json").write_text(
            json.dumps(
                {
                    "mcpServers": {
                        "web": {
                            "type": "http",
                            "url": f"http://127.0.0.1:{port}/mcp",
                            "headers": {"X-Who": "${ACCORD_NOT_SET:-alice}"},
                        }
                    }
                }
            )
        )
        servers = McpServers(read_mcp_json(tmp_path), tmp_path).start()
        try:
            assert "mcp__web__echo" in servers.tools()
            assert servers.call("web", "echo", {"text": "over http"}) == (
                "echo: over http",
                None,
            )
        finally:
            servers.close()
    finally:
        http.kill()
        http.wait()


def test_mcp_rules_match_names_as_claude_code_does() -> None:
    def verdict(rule: str, tool: str) -> Decision:
        rules = Rules((parse_rule(rule, "deny", "test"),))
        return rules.decide(tool, None).decision

    for rule in ("mcp__test", "mcp__test__*", "mcp__test__echo"):
        assert verdict(rule, "mcp__test__echo") == Decision.DENY
    assert verdict("mcp__test__echo", "mcp__test__big") == Decision.ALLOW
    assert verdict("mcp__test", "mcp__testing__echo") == Decision.ALLOW
    assert verdict("mcp__test__*", "bash") == Decision.ALLOW
    with pytest.raises(ConfigError, match="no specifier"):
        parse_rule("mcp__test__echo(x)", "deny", "test")


def test_which_servers_a_member_gets(tmp_path: Path) -> None:
    (tmp_path / ".mcp.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "a": {"command": "x", "args": ["${HOME}", "${NOPE:-d}"]},
                    "b": {"type": "http", "url": "http://127.0.0.1:1/mcp"},
                }
            }
        )
    )
    configured = read_mcp_json(tmp_path)
    assert configured["a"].args == (os.environ["HOME"], "d")
    assert configured["b"].transport == "http"
    none = parse_definition("---\nname: n\n---\n", "n.md")
    assert servers_for(none, configured, default=False) == {}
    assert set(servers_for(none, configured, default=True)) == {"a", "b"}
    named = parse_definition("---\nname: n\ntools: Read, mcp__b__go\n---\n", "n.md")
    assert named.ignored_tools == () and named.mcp_tools == ("mcp__b__go",)
    assert set(servers_for(named, configured, default=False)) == {"b"}
    unknown = parse_definition("---\nname: n\nmcpServers: [zz]\n---\n", "n.md")
    assert servers_for(unknown, configured, default=False)["zz"].transport == "missing"


@pytest.fixture
def member(cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Project ``project`` with team main and member alice; returns alice's token."""
    assert cli("init", "--team", "main").code == 0
    added = cli("member", "add", "alice", "--json")
    assert added.code == 0, added.err
    token: str = json.loads(added.out)["token"]
    return token


def test_a_malformed_mcp_json_is_one_error_naming_file_and_key(
    cli: Callable[..., Result], project: Path, member: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = cli("events", "--json").out
    (project / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"github": {"command": "gh-mcp", "args": "--stdio"}}})
    )
    model = project / "model.json"
    model.write_text(json.dumps([{"text": "Nothing to do."}]))
    monkeypatch.setenv("ACCORD_MEMBER", "alice")
    monkeypatch.setenv("ACCORD_TOKEN", member)
    r = cli("agent", "--member", "alice", "--model", f"scripted:{model}", "--once")
    one_error(r, ".mcp.json", "mcpServers.github.args", "list of strings")
    monkeypatch.delenv("ACCORD_MEMBER")
    monkeypatch.delenv("ACCORD_TOKEN")
    # `accord run` refuses before it starts anything.
    r = cli("run", "a goal", "--model", f"scripted:{model}", "--display", "plain")
    one_error(r, ".mcp.json", "mcpServers.github.args")
    assert cli("events", "--json").out == events  # the store is unchanged


def _running(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if needle.encode() in cmdline:
                found.append(int(entry.name))
    return found


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_server_dies_with_its_member(project: Path, member: str) -> None:
    write_servers(project, ("test",))
    script = str(project / "servers" / "test.py")
    model = project / "model.json"
    model.write_text(json.dumps([{"text": "Nothing to do."}]))
    # The default teammate (no definition) gets every configured server.
    agent = start(
        "agent",
        "--member",
        "alice",
        "--model",
        f"scripted:{model}",
        cwd=project,
        env={"ACCORD_MEMBER": "alice", "ACCORD_TOKEN": member, "ACCORD_TEAM": "main"},
    )
    try:
        assert _until(lambda: bool(_running(script)), 15), "the server never started"
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(5)
        assert _until(lambda: not _running(script), 10), "the server outlived its member"
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        assert agent.stdout is not None
        agent.stdout.close()
