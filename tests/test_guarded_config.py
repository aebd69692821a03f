"""Promise 9 and the text people read: no agent tool writes the files hooks come from,
and what a hook prints reaches people without terminal control characters."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.agent.tools import all_tools
from accord.agent.tools.base import Toolbox, ToolContext
from accord.credentials import scrubbed, without_password
from accord.llm.base import ToolCall, ToolResult
from accord.text import strip_control


def run(ws: Path, name: str, **arguments: object) -> ToolResult:
    ctx = ToolContext(workspace=ws, member="alice", bash_timeout=20.0)
    return Toolbox(all_tools()).execute(ctx, ToolCall("c1", name, dict(arguments)))


@pytest.mark.parametrize(
    "path",
    [
        "accord.toml",
        ".claude/settings.json",
        ".claude/settings.local.json",
        ".mcp.json",  # its servers run as the members
        "sub/accord.toml",
        "innocent.txt",  # a symlink to accord.toml
    ],
)
def test_no_file_tool_writes_or_edits_where_hooks_come_from(tmp_path: Path, path: str) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / "sub").mkdir()
    for name in (
        "accord.toml",
        ".claude/settings.json",
        ".claude/settings.local.json",
        ".mcp.json",
    ):
        (tmp_path / name).write_text('{"hooks": {}}\n')
    (tmp_path / "sub" / "accord.toml").write_text("x = 1\n")
    (tmp_path / "innocent.txt").symlink_to(tmp_path / "accord.toml")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    wrote = run(tmp_path, "write_file", path=path, content='TaskCompleted = "true"\n')
    edited = run(tmp_path, "edit_file", path=path, old_text="{", new_text="[")
    for result in (wrote, edited):
        assert result.is_error and "no agent may change it" in result.content, result.content
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    # Reading them is fine, and so is writing any other file.
    assert not run(tmp_path, "read_file", path=path).is_error
    assert not run(tmp_path, "write_file", path="notes/settings.json", content="{}").is_error


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mred\x1b[0m plain", "red plain"),
        ("50%\r100%\r\nnext\tcol", "50%100%\nnext\tcol"),
        ("\x1b]0;evil title\x07after", "after"),
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("bell\x07 nul\x00 del\x7f c1\x9b2J\x85end", "bell nul del c1end"),
        ("\x1bcreset, \x1b(Bcharset", "reset, charset"),
        ("ünïcödé ✓ kept", "ünïcödé ✓ kept"),
    ],
)
def test_strip_control(raw: str, clean: str) -> None:
    assert strip_control(raw) == clean


def test_a_store_url_reaches_tools_without_its_password() -> None:
    url = "postgresql://alice:s3cret@db.example:5432/team?sslmode=require"
    assert without_password(url) == "postgresql://alice@db.example:5432/team?sslmode=require"
    assert without_password("postgresql://alice@db/team") == "postgresql://alice@db/team"
    assert without_password("/home/a/.accord/accord.db") == "/home/a/.accord/accord.db"
    env = scrubbed({"ACCORD_STORE": url, "PGPASSWORD": "pw", "LANG": "C"})
    assert env == {
        "ACCORD_STORE": "postgresql://alice@db.example:5432/team?sslmode=require",
        "LANG": "C",
    }


def test_a_silence_limit_shorter_than_two_heartbeats_is_refused() -> None:
    from accord.config import parse_config
    from accord.errors import ConfigError

    # Every member would be killed as hung between two of its own heartbeats.
    with pytest.raises(ConfigError, match="silent_after .* more than twice"):
        parse_config("[run]\nsilent_after = 5\n")  # heartbeat_seconds defaults to 10
    assert parse_config("[run]\nsilent_after = 5\n[agent]\nheartbeat_seconds = 2\n")


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (".accord/accord.db", "accord's own state"),
        (".accord/accord.db-wal", "accord's own state"),
        (".accord/logs/alice.log", "accord's own state"),
        (".accord/new-file", "accord's own state"),
        ("db-link", "accord's own state"),  # a symlink into .accord/
        (".accord/agents/coder.md", "agent definition"),
        (".claude/agents/coder.md", "agent definition"),
    ],
)
def test_no_file_tool_writes_accords_own_state_or_definitions(
    tmp_path: Path, path: str, says: str
) -> None:
    for name in (
        ".accord/accord.db",
        ".accord/logs/alice.log",
        ".accord/agents/coder.md",
        ".claude/agents/coder.md",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("---\nname: coder\n---\nbody {\n")
    (tmp_path / "db-link").symlink_to(tmp_path / ".accord" / "accord.db")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    wrote = run(tmp_path, "write_file", path=path, content="x\n")
    assert wrote.is_error and says in wrote.content, wrote.content
    if (tmp_path / path).exists():
        edited = run(tmp_path, "edit_file", path=path, old_text="{", new_text="[")
        assert edited.is_error and says in edited.content, edited.content
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not (tmp_path / ".accord" / "new-file").exists()
    # Reading is fine, and so is a folder that only shares a name with them.
    assert not run(tmp_path, "write_file", path="docs/agents/coder.md", content="x").is_error
    assert not run(tmp_path, "write_file", path="my.accord/notes.txt", content="x").is_error


def test_no_file_tool_writes_the_store_where_the_project_keeps_it(tmp_path: Path) -> None:
    """A store kept outside .accord/ (``store = "data/team.db"``) is refused all the same."""
    from accord.store import open_store
    from accord.team import Team

    (tmp_path / "data").mkdir()
    store = open_store(str(tmp_path / "data" / "team.db"), create=True)
    try:
        ctx = ToolContext(workspace=tmp_path, member="alice", team=Team(store, "main"))
        box = Toolbox(all_tools())
        for name in ("data/team.db", "data/team.db-wal"):
            result = box.execute(ctx, ToolCall("c1", "write_file", {"path": name, "content": ""}))
            assert result.is_error and "accord's own state" in result.content, result.content
        other = box.execute(ctx, ToolCall("c2", "write_file", {"path": "data/x.db", "content": ""}))
        assert not other.is_error, other.content
    finally:
        store.close()
