"""Tools: files confined to the workspace, bash bounded in time and output and
stripped of secrets, team tools bound to their member, and the Toolbox turning
every fault into an error result the model can read."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from accord.agent.tools import (
    CHANNEL_TOOLS,
    CLAIM_TOOLS,
    DELIBERATION_TOOLS,
    FILE_TOOLS,
    MEMORY_TOOLS,
    SHELL_TOOLS,
    SKILL_TOOLS,
    TEAM_TOOLS,
    all_tools,
)
from accord.agent.tools.base import RESULT_LIMIT, Tool, ToolArgs, Toolbox, ToolContext
from accord.agent.tools.files import glob_regex
from accord.agent.tools.shell import _text, command_env, is_secret
from accord.config import Config, parse_config
from accord.errors import UserError
from accord.llm.base import ToolCall, ToolResult
from accord.process import Capture
from accord.store import Store
from accord.team import Team
from accord.testing.tools import ok, refused
from accord.types import TaskStatus

Call = Callable[..., ToolResult]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("top secret\n")
    return folder


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return ToolContext(workspace=ws, member="alice", bash_timeout=20.0)


def caller(box: Toolbox, ctx: ToolContext) -> Call:
    def call(name: str, **arguments: Any) -> ToolResult:
        return box.execute(ctx, ToolCall("call-1", name, arguments))

    return call


@pytest.fixture
def call(ctx: ToolContext) -> Call:
    return caller(Toolbox(all_tools()), ctx)


# the set of tools ------------------------------------------------------------


def test_all_tools_have_unique_names_strict_schemas_and_read_only_marks() -> None:
    tools = all_tools()
    names = [t.name for t in tools]
    assert len(names) == len(set(names))
    every = (
        *FILE_TOOLS,
        *SHELL_TOOLS,
        *TEAM_TOOLS,
        *CHANNEL_TOOLS,
        *DELIBERATION_TOOLS,
        *CLAIM_TOOLS,
        *MEMORY_TOOLS,
        *SKILL_TOOLS,
    )
    assert names == [t.name for t in every]
    for tool in tools:
        schema = tool.spec().schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert "$defs" not in schema, tool.name
    read_only = {t.name for t in tools if t.read_only}
    assert read_only == {
        "read_file",
        "list_files",
        "glob",
        "grep",
        "task_list",
        "task_get",
        "list_members",
        "channel_read",
        "recall",
        "use_skill",  # it records the use, and changes nothing a plan would
    }


# read_file -------------------------------------------------------------------


def test_read_file_numbers_lines_and_says_how_many(ws: Path, call: Call) -> None:
    (ws / "a.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = ok(call("read_file", path="a.txt"))
    assert out.splitlines()[0] == "[a.txt: lines 1-10 of 10]"
    assert "     1\tline 1" in out and "    10\tline 10" in out

    out = ok(call("read_file", path="a.txt", start_line=3, end_line=4))
    assert out.splitlines() == ["[a.txt: lines 3-4 of 10]", "     3\tline 3", "     4\tline 4"]

    out = ok(call("read_file", path="a.txt", start_line=9))
    assert out.splitlines()[0] == "[a.txt: lines 9-10 of 10]"

    refused(call("read_file", path="a.txt", start_line=11), "past the end", "10 lines")
    refused(call("read_file", path="a.txt", start_line=5, end_line=2), "before start_line")
    refused(call("read_file", path="a.txt", start_line=0), "start_line")


def test_read_file_says_when_more_lines_remain(ws: Path, call: Call) -> None:
    (ws / "big.txt").write_text("x\n" * 2500)
    out = ok(call("read_file", path="big.txt"))
    assert out.splitlines()[0] == "[big.txt: lines 1-2000 of 2500]"
    assert "start_line=2001" in out


def test_read_file_refuses_binary_missing_and_folders(ws: Path, call: Call) -> None:
    (ws / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    refused(call("read_file", path="img.png"), "binary file")
    refused(call("read_file", path="nope.txt"), "does not exist")
    (ws / "sub").mkdir()
    refused(call("read_file", path="sub"), "is a folder", "list_files")
    (ws / "empty.txt").write_text("")
    assert "empty" in ok(call("read_file", path="empty.txt"))


# write_file and edit_file ----------------------------------------------------------


def test_write_file_creates_parents_and_overwrites(ws: Path, call: Call) -> None:
    out = ok(call("write_file", path="deep/er/new.py", content="print(1)\nprint(2)\n"))
    assert out.startswith("created deep/er/new.py (2 lines")
    assert (ws / "deep/er/new.py").read_text() == "print(1)\nprint(2)\n"
    assert ok(call("write_file", path="deep/er/new.py", content="x")).startswith("overwrote")
    assert (ws / "deep/er/new.py").read_text() == "x"
    refused(call("write_file", path="deep", content="x"), "is a folder")


def test_edit_file_replaces_exactly_once(ws: Path, call: Call) -> None:
    (ws / "m.py").write_text("a = 1\nb = 2\nc = 3\n")
    out = ok(call("edit_file", path="m.py", old_text="b = 2", new_text="b = 20"))
    assert "line 2" in out
    assert (ws / "m.py").read_text() == "a = 1\nb = 20\nc = 3\n"


def test_edit_file_refuses_absent_and_ambiguous_text(ws: Path, call: Call) -> None:
    (ws / "m.py").write_text("x = 1\nx = 1\nx = 1\n")
    refused(
        call("edit_file", path="m.py", old_text="y = 2", new_text="z"), "not found", "read_file"
    )
    refused(
        call("edit_file", path="m.py", old_text="x = 1", new_text="x = 2"),
        "occurs 3 times",
        "replace_all",
    )
    assert (ws / "m.py").read_text() == "x = 1\nx = 1\nx = 1\n"
    out = ok(call("edit_file", path="m.py", old_text="x = 1", new_text="x = 2", replace_all=True))
    assert "3 occurrences" in out
    assert (ws / "m.py").read_text() == "x = 2\nx = 2\nx = 2\n"
    refused(call("edit_file", path="m.py", old_text="", new_text="q"), "old_text")
    refused(call("edit_file", path="m.py", old_text="x", new_text="x"), "the same")
    refused(call("edit_file", path="gone.py", old_text="a", new_text="b"), "write_file")


def test_edit_file_keeps_crlf_line_endings(ws: Path, call: Call) -> None:
    (ws / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    ok(call("edit_file", path="w.txt", old_text="two", new_text="2"))
    assert (ws / "w.txt").read_bytes() == b"one\r\n2\r\n"


def test_edit_file_refuses_binary(ws: Path, call: Call) -> None:
    (ws / "b.bin").write_bytes(b"abc\x00def")
    refused(call("edit_file", path="b.bin", old_text="abc", new_text="x"), "binary")
    assert (ws / "b.bin").read_bytes() == b"abc\x00def"


# list_files, glob, grep ----------------------------------------------------------------


@pytest.fixture
def tree(ws: Path) -> Path:
    for rel in ("README.md", "src/app.py", "src/pkg/mod.py", "src/pkg/deep/x.py", "docs/a.md"):
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(f"# {rel}\nTODO: something\n")
    (ws / ".git/objects").mkdir(parents=True)
    (ws / ".git/config.py").write_text("TODO hidden\n")
    return ws


def test_list_files_by_depth_skipping_git(tree: Path, call: Call) -> None:
    out = ok(call("list_files")).splitlines()
    assert out[0].startswith("[.:")
    assert set(out[1:]) == {"README.md", "docs/", "docs/a.md", "src/", "src/app.py", "src/pkg/"}
    shallow = ok(call("list_files", path="src", depth=1)).splitlines()[1:]
    assert shallow == ["app.py", "pkg/"]
    deep = ok(call("list_files", depth=5))
    assert "src/pkg/deep/x.py" in deep and ".git" not in deep


def test_glob_matches_at_any_depth_and_skips_git(tree: Path, call: Call) -> None:
    assert ok(call("glob", pattern="**/*.py")).splitlines() == [
        "src/app.py",
        "src/pkg/deep/x.py",
        "src/pkg/mod.py",
    ]
    assert ok(call("glob", pattern="*.md")).splitlines() == ["README.md"]
    assert ok(call("glob", pattern="*.py", path="src/pkg")).splitlines() == ["src/pkg/mod.py"]
    assert "no files match" in ok(call("glob", pattern="**/*.rs"))
    refused(call("glob", pattern="../**/*"), "without '..'")
    refused(call("glob", pattern="/etc/*"), "relative")


def test_glob_regex_semantics() -> None:
    assert glob_regex("**/*.py").match("a.py")
    assert glob_regex("**/*.py").match("a/b/c.py")
    assert not glob_regex("*.py").match("a/b.py")
    assert glob_regex("src/**").match("src/a/b")
    assert glob_regex("file[0-9].txt").match("file3.txt")
    assert not glob_regex("file[!0-9].txt").match("file3.txt")


def test_grep_reports_file_line_text_with_filters(tree: Path, call: Call) -> None:
    out = ok(call("grep", pattern="TODO"))
    lines = out.splitlines()
    assert "src/app.py:2:TODO: something" in lines
    assert len(lines) == 5 and not any(line.startswith(".git") for line in lines)
    only_py = ok(call("grep", pattern="todo", ignore_case=True, glob="*.py")).splitlines()
    assert {line.split(":")[0] for line in only_py} == {
        "src/app.py",
        "src/pkg/mod.py",
        "src/pkg/deep/x.py",
    }
    under = ok(call("grep", pattern=r"^# ", path="src/pkg", glob="deep/*.py"))
    assert under == "src/pkg/deep/x.py:1:# src/pkg/deep/x.py"
    assert ok(call("grep", pattern="TODO", path="README.md")) == "README.md:2:TODO: something"
    assert "no matches" in ok(call("grep", pattern="nothing-like-this"))
    refused(call("grep", pattern="(unclosed"), "not a valid regular expression")


def test_grep_caps_matches_with_a_note_and_skips_binary(ws: Path, call: Call) -> None:
    (ws / "many.txt").write_text("hit\n" * 500)
    (ws / "blob.bin").write_bytes(b"hit\x00hit\n")
    out = ok(call("grep", pattern="hit", max_matches=50)).splitlines()
    assert len(out) == 51 and all(line.startswith("many.txt:") for line in out[:50])
    assert "stopped at 50" in out[-1]
    assert "stopped" in ok(call("grep", pattern="hit")).splitlines()[-1]  # default cap 200


# confinement to the workspace -----------------------------------------------------


@pytest.fixture
def links(ws: Path, outside: Path) -> Path:
    (ws / "link_dir").symlink_to(outside)
    (ws / "link_file").symlink_to(outside / "secret.txt")
    (ws / "dangling").symlink_to(outside / "not-yet.txt")
    return ws


ESCAPES = [
    "../outside/secret.txt",
    "sub/../../outside/secret.txt",
    "/etc/passwd",
    "link_dir/secret.txt",
    "link_file",
    "~/.bashrc",
]


@pytest.mark.parametrize("path", ESCAPES)
@pytest.mark.usefixtures("links")
def test_every_file_tool_refuses_paths_outside_the_workspace(call: Call, path: str) -> None:
    refused(call("read_file", path=path), "outside your workspace")
    refused(call("edit_file", path=path, old_text="top", new_text="x"), "outside your workspace")
    refused(call("write_file", path=path, content="pwned"), "outside your workspace")
    refused(call("list_files", path=path), "outside your workspace")
    refused(call("grep", pattern="secret", path=path), "outside your workspace")
    refused(call("glob", pattern="*", path=path), "outside your workspace")


@pytest.mark.usefixtures("links")
def test_writes_through_links_or_new_paths_never_land_outside(
    call: Call, ws: Path, outside: Path
) -> None:
    refused(call("write_file", path="link_file", content="pwned"), "resolves to")
    refused(call("write_file", path="link_dir/new.txt", content="pwned"), "outside")
    refused(call("write_file", path="dangling", content="pwned"), "outside")
    refused(call("write_file", path="new/../../outside/made.txt", content="pwned"), "outside")
    refused(call("edit_file", path="link_file", old_text="top", new_text="x"), "outside")
    assert (outside / "secret.txt").read_text() == "top secret\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert not (ws / "new").exists()


@pytest.mark.usefixtures("links")
def test_walks_do_not_reach_outside_through_links(call: Call, ws: Path) -> None:
    (ws / "inside.txt").write_text("secret inside\n")
    assert ok(call("grep", pattern="secret")) == "inside.txt:1:secret inside"
    assert ok(call("glob", pattern="**/*.txt")).splitlines() == ["inside.txt"]
    listing = ok(call("list_files", depth=5))
    assert "link_dir -> " in listing and "link_dir/secret.txt" not in listing


def test_links_that_stay_inside_work(ws: Path, call: Call) -> None:
    (ws / "real").mkdir()
    (ws / "real/f.txt").write_text("hello\n")
    (ws / "alias").symlink_to(ws / "real")
    assert "hello" in ok(call("read_file", path="alias/f.txt"))
    ok(call("write_file", path="alias/g.txt", content="via link\n"))
    assert (ws / "real/g.txt").read_text() == "via link\n"
    assert "hello" in ok(call("read_file", path=str(ws / "real/f.txt")))  # absolute, inside


def test_symlink_loops_and_fifos_are_refused_not_hung_on(ws: Path, call: Call) -> None:
    (ws / "a").symlink_to(ws / "b")
    (ws / "b").symlink_to(ws / "a")
    os.mkfifo(ws / "pipe")
    (ws / "ok.txt").write_text("fine\n")
    refused(call("read_file", path="a/x"), "cannot be resolved")
    refused(call("read_file", path="pipe"), "not a regular file")
    refused(call("write_file", path="pipe", content="x"), "not a regular file")
    refused(call("edit_file", path="pipe", old_text="a", new_text="b"), "not a regular file")
    assert ok(call("grep", pattern="fine")) == "ok.txt:1:fine"
    assert ok(call("glob", pattern="**/*")).splitlines() == ["ok.txt"]


# bash ---------------------------------------------------------------------------------


def test_bash_runs_in_the_workspace_with_exit_code_and_interleaved_output(
    ws: Path, call: Call
) -> None:
    out = ok(call("bash", command="pwd; echo out; echo err >&2; exit 3"))
    lines = out.splitlines()
    assert lines[0] == "[exit code 3]"
    assert lines[1:] == [str(ws.resolve()), "out", "err"] or lines[1:] == [str(ws), "out", "err"]
    assert ok(call("bash", command="true")) == "[exit code 0]\n(no output)"


def test_bash_stdin_is_empty(call: Call) -> None:
    started = time.monotonic()
    out = ok(call("bash", command="cat; read x || echo no-input"))
    assert "no-input" in out and time.monotonic() - started < 5


def _group_alive(pgid: int) -> list[int]:
    """Processes in group ``pgid`` that are not zombies (a container's PID 1 may not reap)."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            alive.append(int(entry))
    return alive


def _wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_bash_timeout_kills_the_whole_group(ctx: ToolContext, call: Call) -> None:
    ctx.bash_timeout = 1.0  # the model's longer timeout is capped by the context's
    started = time.monotonic()
    result = call("bash", command="echo $$; sleep 1000 & sleep 1000", timeout=600)
    took = time.monotonic() - started
    out = ok(result)
    assert out.startswith("[timed out after 1s")
    assert "killed" in out
    assert took < 10
    pgid = int(out.splitlines()[1])  # bash is the group leader: its pid is the group id
    assert _wait_until(lambda: not _group_alive(pgid)), _group_alive(pgid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_bash_kills_background_children_when_the_command_ends(call: Call) -> None:
    started = time.monotonic()
    out = ok(call("bash", command="echo $$; sleep 1000 &"))
    assert time.monotonic() - started < 10
    assert out.startswith("[exit code 0]")
    pgid = int(out.splitlines()[1])
    assert _wait_until(lambda: not _group_alive(pgid)), _group_alive(pgid)


def test_bash_caps_megabytes_of_output_and_says_how_much_was_cut(call: Call) -> None:
    command = "echo START; head -c 8000000 /dev/zero | tr '\\0' 'a'; echo; echo END"
    out = ok(call("bash", command=command))
    assert len(out) <= RESULT_LIMIT
    assert out.startswith("[exit code 0]\nSTART\n")
    assert out.rstrip().endswith("END")
    assert "bytes cut from the middle of 8000011 bytes of output" in out


def test_bash_output_reader_keeps_bounded_memory() -> None:
    read_fd, write_fd = os.pipe()
    reader = Capture(os.fdopen(read_fd, "rb"), 1000, 500)
    chunk = b"z" * 65536

    def write() -> None:
        with os.fdopen(write_fd, "wb") as w:
            for _ in range(300):  # about 20 MB
                w.write(chunk)
                assert reader.held <= 1000 + 2 * 500 + len(chunk)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(30)
    reader.join(30)
    assert reader.total == 300 * 65536
    assert len(reader.head) == 1000 and len(reader.tail) == 500
    assert f"{300 * 65536 - 1500} bytes cut" in _text(reader)


def test_bash_environment_has_no_secrets_not_even_the_members_token(
    ctx: ToolContext, call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = {
        "ANTHROPIC_API_KEY": "sk-ant-fake",
        "OPENAI_API_KEY": "sk-openai-fake",
        "SOME_VENDOR_API_KEY": "vendor-fake",
        "GITHUB_TOKEN": "ghp-fake",
        "DB_SECRET": "db-fake",
        "AWS_ACCESS_KEY_ID": "AKIAFAKE",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-fake",
        "AWS_SESSION_TOKEN": "aws-session-fake",
        "ACCORD_TOKEN": "acc_the_supervisors_token",
    }
    for key, value in planted.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    ctx.env = {
        "ACCORD_MEMBER": "alice",
        "ACCORD_TOKEN": "acc_alices_own",
        "ACCORD_TEAM": "main",
        "ACCORD_STORE": "postgresql://alice:pg-password-fake@db.example:5432/team",
    }
    out = ok(call("bash", command="env"))
    for key, value in planted.items():
        assert value not in out, key
    assert "ANTHROPIC_API_KEY" not in out and "AWS_ACCESS_KEY_ID" not in out
    # Not even the member's own token: the agent acts through its tools, not the CLI.
    assert "acc_alices_own" not in out and "ACCORD_TOKEN" not in out
    assert "ACCORD_MEMBER=alice" in out and "ACCORD_TEAM=main" in out
    assert "ACCORD_STORE=postgresql://alice@db.example:5432/team" in out
    assert "pg-password-fake" not in out
    assert "HARMLESS_SETTING=kept" in out
    assert "PATH=" in out


def test_secret_names() -> None:
    for name in ("ANTHROPIC_API_KEY", "openai_api_key", "HF_TOKEN", "X_SECRET", "AWS_PROFILE"):
        assert is_secret(name), name
    for name in ("PATH", "HOME", "ACCORD_MEMBER", "TOKENIZERS_PARALLELISM", "AWS_REGION"):
        assert not is_secret(name), name
    for name in ("ANTHROPIC_AUTH_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "GH_TOKEN"):
        assert is_secret(name), name
    env = command_env({"ACCORD_TOKEN": "mine"}, {"ACCORD_TOKEN": "theirs", "LANG": "C"})
    assert env == {"LANG": "C"}


# the toolbox -------------------------------------------------------------------------


def test_a_tool_outside_the_allowlist_is_refused_with_a_message(ctx: ToolContext) -> None:
    box = Toolbox(all_tools(), allow=["read_file", "grep"])
    assert box.names() == ["read_file", "grep"]
    assert [s.name for s in box.specs()] == ["read_file", "grep"]
    result = box.execute(ctx, ToolCall("c9", "bash", {"command": "touch /tmp/x"}))
    assert result.is_error and result.call_id == "c9" and result.name == "bash"
    assert "not available" in result.content and "read_file, grep" in result.content
    with pytest.raises(UserError, match="unknown tool"):
        Toolbox(all_tools(), allow=["read_file", "rm_rf"])


def test_malformed_arguments_go_back_to_the_model(ctx: ToolContext, call: Call) -> None:
    box = Toolbox(all_tools())
    for raw in ('{"path": "a.txt"', "[1, 2]", "not json"):
        parsed = ToolCall.parse("c1", "read_file", raw)
        assert parsed.arguments is None
        result = box.execute(ctx, parsed)
        assert result.is_error and "not a JSON object" in result.content
        assert raw[:5] in result.content


def test_schema_invalid_arguments_name_the_field(call: Call) -> None:
    refused(call("read_file"), "invalid arguments for read_file", "path", "Field required")
    refused(call("read_file", path=42), "path")
    refused(call("read_file", path="a.txt", start_line="first"), "start_line")
    refused(call("read_file", path="a.txt", mode="rb"), "mode", "Extra inputs")
    refused(call("bash", command="true", timeout=-1), "timeout")


class _Nothing(ToolArgs):
    pass


def test_a_tool_that_raises_becomes_an_error_result(ctx: ToolContext) -> None:
    def broken(_: ToolContext, __: BaseModel) -> str:
        raise RuntimeError("the tool has a bug")

    def gone(_: ToolContext, __: BaseModel) -> str:
        raise FileNotFoundError(2, "No such file", "x")

    box = Toolbox([Tool("broken", "d", _Nothing, broken), Tool("gone", "d", _Nothing, gone)])
    result = box.execute(ctx, ToolCall("c1", "broken", {}))
    assert result.is_error and "RuntimeError: the tool has a bug" in result.content
    result = box.execute(ctx, ToolCall("c2", "gone", {}))
    assert result.is_error and "FileNotFoundError" in result.content


# team tools -------------------------------------------------------------------------


def services(store: Store, ws: Path, config: Config | None = None) -> Team:
    return Team.open(store, "main", config or Config(), ws)


@pytest.fixture
def team(store: Store, ws: Path) -> Team:
    return services(store, ws)


def member(ws: Path, name: str, team: Team) -> tuple[ToolContext, Call]:
    ctx = ToolContext(workspace=ws, member=name, team=team)
    return ctx, caller(Toolbox(all_tools()), ctx)


def test_team_tools_create_list_and_get_tasks(team: Team, ws: Path) -> None:
    _, alice = member(ws, "alice", team)
    assert "created task #1" in ok(alice("task_create", title="design", priority=5))
    out = ok(alice("task_create", title="build", description="make it", blocked_by=[1]))
    assert "created task #2" in out
    assert team.board.get(2).created_by == "alice"
    listing = ok(alice("task_list"))
    assert listing.splitlines() == [
        '{"id": 1, "title": "design", "status": "pending", "ready": true, "priority": 5}',
        '{"id": 2, "title": "build", "status": "pending", "ready": false, "priority": 0, '
        '"blocked_by": [1], "waiting_on": [1]}',
    ]
    refused(alice("task_update", task_id=1, add_blockers=[2]), "cycle")
    ready = ok(alice("task_list", ready_only=True))
    assert '"design"' in ready and '"build"' not in ready
    assert ok(alice("task_list", status="completed")) == "no completed tasks on the board"
    full = ok(alice("task_get", task_id=2))
    assert '"description": "make it"' in full
    refused(alice("task_get", task_id=99), "#99")
    refused(alice("task_list", status="done"), "status")

    out = ok(alice("task_update", task_id=2, priority=9, assignee="bob", remove_blockers=[1]))
    assert '"assignee": "bob"' in out and team.board.get(2).blocked_by == ()
    refused(alice("task_update", task_id=1, add_blockers=[1]), "itself")
    refused(alice("task_update", task_id=1, assignee="../../etc"), "not a valid member name")


def test_task_claim_is_by_the_member_and_hides_the_token(team: Team, ws: Path) -> None:
    ctx, alice = member(ws, "alice", team)
    ok(alice("task_create", title="one"))
    out = ok(alice("task_claim"))
    assert "you claimed task #1" in out
    task = team.board.get(1)
    assert task.owner == "alice" and task.status == TaskStatus.IN_PROGRESS
    assert ctx.claims[1].token == task.fencing_token
    assert "token" not in out and "fencing" not in out
    assert "fencing" not in ok(alice("task_get", task_id=1))
    assert "you already hold task #1" in ok(alice("task_claim", task_id=1))
    assert ok(alice("task_claim")) == "no task is ready to claim right now"
    refused(alice("task_claim", task_id=1, member="bob"), "Extra inputs")


def test_complete_needs_a_claim_and_uses_the_members_own(team: Team, ws: Path) -> None:
    actx, alice = member(ws, "alice", team)
    bctx, bob = member(ws, "bob", team)
    ok(alice("task_create", title="one"))
    refused(alice("task_complete", task_id=1, result="done"), "claim it with task_claim")
    ok(alice("task_claim", task_id=1))
    refused(bob("task_complete", task_id=1, result="mine now"), "held by alice", "task_claim")
    # Even with alice's token planted in bob's context, the store sees bob, not alice.
    bctx.claims[1] = actx.claims[1]
    refused(
        bob("task_complete", task_id=1, result="mine now"), "held by alice", "claim on it is gone"
    )
    assert team.board.get(1).status == TaskStatus.IN_PROGRESS
    assert 1 not in bctx.claims

    assert ok(alice("task_complete", task_id=1, result="it works")) == "task #1 is completed"
    done = team.board.get(1)
    assert done.status == TaskStatus.COMPLETED and done.result == "it works"
    assert done.owner == "alice" and actx.claims == {}


def test_task_fail_and_a_lost_claim(team: Team, ws: Path) -> None:
    ctx, alice = member(ws, "alice", team)
    ok(alice("task_create", title="one"))
    ok(alice("task_create", title="two"))
    ok(alice("task_claim", task_id=1))
    refused(alice("task_fail", task_id=2, reason="x"), "claim it with task_claim")
    assert "task #1 is failed: cannot be done" == ok(
        alice("task_fail", task_id=1, reason="cannot be done")
    )
    assert team.board.get(1).reason == "cannot be done" and 1 not in ctx.claims

    ok(alice("task_claim", task_id=2))
    team.board.cancel(2, "plans changed", actor="carol")
    lost = refused(alice("task_complete", task_id=2, result="done"), "was lost", "cancelled")
    assert "stop working on it" in lost and "`accord" not in lost
    assert ctx.claims == {}


def test_a_blocking_completion_hook_comes_back_as_the_tool_result(store: Store, ws: Path) -> None:
    config = parse_config(
        "[hooks]\nTaskCompleted = \"echo '3 tests failed: fix test_parse' >&2; exit 2\"\n"
    )
    team = services(store, ws, config)
    ctx, alice = member(ws, "alice", team)
    ok(alice("task_create", title="parser"))
    ok(alice("task_claim"))
    out = refused(
        alice("task_complete", task_id=1, result="done"),
        "TaskCompleted hook refused",
        "3 tests failed: fix test_parse",
        "call task_complete again",
    )
    assert out.index("call task_complete again") < out.index("3 tests failed")
    task = team.board.get(1)
    assert task.status == TaskStatus.IN_PROGRESS and task.owner == "alice"
    assert 1 in ctx.claims  # still held: the member fixes things and tries again


def test_send_message_is_always_from_the_member(team: Team, ws: Path) -> None:
    _, alice = member(ws, "alice", team)
    assert ok(alice("send_message", to="bob", message="hi", summary="greeting")).startswith(
        "sent to bob (message #"
    )
    mail = team.mailbox.inbox("bob")
    assert [(m.sender, m.body, m.summary) for m in mail] == [("alice", "hi", "greeting")]
    assert "2 members (bob, carol)" in ok(alice("send_message", to="*", message="all"))
    assert [m.sender for m in team.mailbox.inbox("carol")] == ["alice"]
    refused(alice("send_message", to="bob", message="x", sender="carol"), "Extra inputs")
    refused(alice("send_message", to="mallory", message="x"), "mallory")
    refused(alice("send_message", to="../bob", message="x"), "not a valid member name")
    refused(alice("send_message", to="alice", message="x"), "yourself")


def test_list_members_marks_the_caller(team: Team, ws: Path) -> None:
    _, bob = member(ws, "bob", team)
    out = ok(bob("list_members"))
    assert '"name": "alice"' in out and '"name": "carol"' in out
    assert '{"name": "bob", "role": "teammate", "status": "stopped", "you": true}' in out
    assert out.count('"you"') == 1 and "token" not in out


def test_team_tools_without_a_team_say_so(call: Call) -> None:
    refused(call("task_list"), "without a team")
