"""A fast command line: what each kind of command loads, and that loading less changes
no output. How fast it is lives in bench/cli_startup.py; these tests hold the import
graph that makes it so (a change that pulls pydantic or rich back into a read fails
here, whatever the machine's speed).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord._where import _DEFAULTS, _settings, remember, where
from accord.cli._parser import MODULE_OF
from accord.cli._plain import simple_table
from accord.config import Config, locate
from accord.testing.cli import accord_out
from conftest import heavy, loaded


@pytest.fixture
def team(project: Path) -> Path:
    for args in (
        ("init", "--team", "t"),
        ("member", "add", "alice"),
        ("task", "add", "write the parser"),
        ("msg", "send", "--to", "alice", "hello"),
    ):
        accord_out(project, *args, timeout=60)
    return project


COMMAND_MODULES = {f"accord.cli.{m}" for m in MODULE_OF.values()}


def test_version_and_help_load_nothing_heavy(team: Path) -> None:
    """Help lists every command, so it loads every command module (each holds its grammar
    beside its action); none of them may pull in pydantic, rich, the store or a model."""
    for args in (["--help"], ["task", "--help"], ["run", "--help"], ["nonsense"]):
        modules = loaded(*args, cwd=team, code=("0", "2"))
        assert heavy(modules) == set(), args
        assert not any(
            m == "accord.store" or m.startswith(("accord.store.", "accord.llm")) for m in modules
        ), args
    every = loaded("--help", cwd=team)
    assert COMMAND_MODULES <= every and "accord.types" not in every
    version = loaded("--version", cwd=team)
    assert "accord.types" not in version and not COMMAND_MODULES & version


def test_a_command_loads_only_its_own_module(team: Path) -> None:
    assert COMMAND_MODULES & loaded("task", "list", cwd=team) == {"accord.cli.task"}
    assert COMMAND_MODULES & loaded("status", cwd=team) == {"accord.cli.run"}


@pytest.mark.parametrize(
    "args",
    [
        ("task", "list"),
        ("task", "list", "--json"),
        ("msg", "inbox"),
        ("msg", "inbox", "--as", "alice"),
        ("events",),
        ("status", "--json"),
    ],
)
def test_reads_load_neither_pydantic_nor_rich(team: Path, args: tuple[str, ...]) -> None:
    assert heavy(loaded(*args, cwd=team)) == set()


def test_status_for_people_loads_no_validator(team: Path) -> None:
    modules = loaded("status", cwd=team)
    assert not any(m == "pydantic" or m.startswith(("pydantic.", "accord.config")) for m in modules)


def test_reads_still_validate_what_they_use(team: Path) -> None:
    """A bad value among the settings a read uses gets config's own error, line and all."""
    (team / "accord.toml").write_text('[store]\nsynchronous = "sometimes"\n')
    done = subprocess.run(
        [sys.executable, "-m", "accord", "task", "list"],
        cwd=team,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "accord.toml:2: store.synchronous" in done.stderr


def test_option_choices_are_the_enums() -> None:
    import accord.types
    from accord.cli._common import CHOICES

    for name, values in CHOICES.items():
        assert values == tuple(m.value for m in getattr(accord.types, name)), name


def test_a_project_without_accord_toml_has_configs_defaults() -> None:
    assert _settings(Config()) == _DEFAULTS


CONFIGS = [
    "",
    '[team]\ndefault = "alpha"\n',
    '[store]\npath = "elsewhere/x.db"\nsynchronous = "normal"\nbusy_timeout = 2\n',
    '[store]\npath = "postgresql://u@h:5432/db"\n[mailbox]\nvisibility_timeout = 5.5\n',
    '[board]\nlease_seconds = 30\n[hooks]\nTaskCompleted = "true"\n[team]\ndefault = "b"\n',
    "[mailbox]\nvisibility_timeout = true\n",
]


@pytest.mark.parametrize("text", CONFIGS)
def test_the_quick_read_agrees_with_config(tmp_path: Path, text: str) -> None:
    (tmp_path / ".accord").mkdir()
    (tmp_path / "accord.toml").write_text(text)
    if text:
        assert where(tmp_path) is None  # not validated yet: config decides
    remember(tmp_path)
    quick, full = where(tmp_path), locate(tmp_path)
    assert quick is not None
    assert quick.root == full.root and quick.store_location == full.store_location
    assert (quick.synchronous, quick.busy_timeout) == (
        full.config.store.synchronous,
        full.config.store.busy_timeout,
    )
    assert quick.default_team == full.config.team.default
    assert quick.visibility_timeout == full.config.mailbox.visibility_timeout


@pytest.mark.parametrize(
    "text",
    [
        "[stor]\n",  # unknown section
        '[store]\nsynchronous = "sometimes"\n',
        "[store]\nbusy_timeout = 0\n",
        "[store]\nbusy_timeout = nan\n",
        '[team]\ndefault = "Not A Name"\n',
        "[mailbox]\nvisbility = 3\n",
        "[board]\nlease_seconds = -1\n",  # a section no read uses is checked all the same
        "store = 3\n",
        "not toml ===\n",
    ],
)
def test_the_quick_read_leaves_doubtful_files_to_config(tmp_path: Path, text: str) -> None:
    (tmp_path / ".accord").mkdir()
    (tmp_path / "accord.toml").write_text(text)
    remember(tmp_path)  # an invalid file is never noted as checked
    assert not (tmp_path / ".accord" / "config-checked").exists()
    assert where(tmp_path) is None


def test_a_changed_accord_toml_is_validated_again(tmp_path: Path) -> None:
    (tmp_path / ".accord").mkdir()
    config = tmp_path / "accord.toml"
    config.write_text('[team]\ndefault = "a"\n')
    remember(tmp_path)
    assert where(tmp_path) is not None
    config.write_text('[team]\ndefault = "a"\n[board]\nlease_seconds = -1\n')
    assert where(tmp_path) is None  # config.locate reports the bad lease, as ever


def test_a_note_from_other_rules_is_not_trusted_and_is_replaced(tmp_path: Path) -> None:
    (tmp_path / ".accord").mkdir()
    (tmp_path / "accord.toml").write_text('[team]\ndefault = "a"\n')
    remember(tmp_path)
    note = tmp_path / ".accord" / "config-checked"
    head, rest = note.read_bytes().split(b"\n", 1)
    note.write_bytes(b"accord 0.0.0 1 1\n" + rest)  # noted by another accord
    assert where(tmp_path) is None
    remember(tmp_path)
    assert note.read_bytes().split(b"\n", 1)[0] == head
    assert where(tmp_path) is not None


def rich_table(headers: list[str], rows: list[list[str]]) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(*headers, box=box.SIMPLE_HEAD, title=None, title_justify="left", pad_edge=False)
    for row in rows:
        t.add_row(*row)
    out = io.StringIO()
    Console(file=out, soft_wrap=False, width=400, markup=False, emoji=False).print(t)
    return out.getvalue()


cell = st.text(alphabet=st.sampled_from(list(" -#/()abcXYZ019…[:é日\t")), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.lists(cell.filter(bool), min_size=n, max_size=n),
            st.lists(st.lists(cell, min_size=n, max_size=n), max_size=4),
        )
    )
)
def test_plain_tables_are_the_bytes_rich_prints(table: tuple[list[str], list[list[str]]]) -> None:
    headers, rows = table
    plain = simple_table(headers, rows)
    if plain is not None:
        assert plain == rich_table(headers, rows)


def test_plain_tables_cover_long_cells_and_fall_back_past_the_width() -> None:
    rows = [["x" * 300, "y" * 95]]
    assert simple_table(["a", "b"], rows) == rich_table(["a", "b"], rows)
    assert simple_table(["a", "b"], [["x" * 300, "y" * 96]]) is None
    assert simple_table(["a"], [["[/bold] x :smile:"]]) == rich_table(
        ["a"], [["[/bold] x :smile:"]]
    )
    assert simple_table(["a"], [["日本"]]) is None  # two columns wide each: rich measures
    assert json.dumps(simple_table(["id"], [["#1"]])) == json.dumps(rich_table(["id"], [["#1"]]))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_grammar_of_one_command_is_the_whole_grammar_of_it() -> None:
    """Built for one command line, the parser helps, parses and refuses as the whole does."""
    from accord.cli._parser import build
    from accord.errors import UsageError

    whole = build()
    assert build(["--help"]).format_help() == whole.format_help()
    assert build(["nonsense"]).format_help() == whole.format_help()
    assert build(["--help", "--version"]).format_help() == whole.format_help()
    for name, group in _subcommands(whole).items():
        mine = _subcommands(build([name, "--json"]))[name]
        assert mine.format_help() == group.format_help(), name
        for verb, parser in _subcommands(group).items():
            theirs = _subcommands(_subcommands(build(["--team", "x", name, verb]))[name])[verb]
            assert theirs.format_help() == parser.format_help(), (name, verb)
    argv = ["task", "add", "t", "--priority", "3", "--blocked-by", "#2"]
    assert build(argv).parse_args(argv) == whole.parse_args(argv)
    for bad in (["task", "add"], ["task", "claim", "--as", "a", "--lease", "inf"], ["tsak"]):
        with pytest.raises(UsageError) as lazy:
            build(bad).parse_args(bad)
        with pytest.raises(UsageError) as full:
            whole.parse_args(bad)
        assert str(lazy.value) == str(full.value)


# An idle member's process ----------------------------------------------------------

# What a member does not need while it waits for work, and which would cost every one of
# 200 member processes its memory: the model SDKs (made at the first call), the MCP
# client and asyncio with ssl (started with the first MCP server), yaml (read with a
# definition file), the PostgreSQL driver on SQLite, and the person's views.
IDLE_MEMBER_NEVER_LOADS = (
    "anthropic",
    "openai",
    "httpx",
    "mcp",
    "asyncio",
    "ssl",
    "yaml",
    "psycopg",
    "rich",
    "textual",
)


@pytest.mark.parametrize("model", ["scripted", "anthropic:claude-sonnet-4-5", "openai:gpt-5-mini"])
def test_an_idle_member_loads_no_sdk_nor_anything_it_does_not_use(
    project: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """A member with nothing to do passes once through its loop (``--once``: the same
    start-up and the same wait as a waiting member) and stops, having loaded none of them."""
    accord_out(project, "init", "--team", "t", timeout=60)
    accord_out(project, "member", "add", "alice", timeout=60)
    if model == "scripted":
        (project / "script.json").write_text("[]")
        model = f"scripted:{project / 'script.json'}"
    # Never used: an idle member makes no call.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-not-a-key")
    monkeypatch.setenv("OPENAI_API_KEY", "test-not-a-key")
    modules = loaded("agent", "--member", "alice", "--model", model, "--once", cwd=project)
    assert "accord.agent.loop" in modules  # it did run the member
    unwanted = {m for m in modules if m.split(".")[0] in IDLE_MEMBER_NEVER_LOADS}
    assert unwanted == set()
