"""Agent definitions: Claude Code subagent files work as teammates; bad files fail in one line.

A definition is Markdown with YAML front matter, read from ``.accord/agents/``
and ``.claude/agents/``. Every error is a ``ConfigError`` (a ``UserError``)
whose one-line message names the file it comes from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.agent.definition import (
    DEFAULT,
    MODEL_ALIASES,
    find_definition,
    load_definitions,
    parse_definition,
)
from accord.errors import ConfigError, UserError

# A subagent file as Claude Code writes it with `/agents`, byte for byte in shape.
CLAUDE_REVIEWER = """\
---
name: code-reviewer
description: Expert code review specialist. Use immediately after writing or modifying code.
tools: Read, Grep, Glob, Bash
model: sonnet
---

You are a senior code reviewer ensuring high standards of code quality and security.

When invoked:
1. Run git diff to see recent changes
2. Focus on modified files
"""


def write(root: Path, folder: str, name: str, text: str) -> Path:
    path = root / folder / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(text: str, source: str = "/proj/.claude/agents/x.md") -> str:
    """Parse ``text`` expecting a ConfigError; its one-line message, checked to name the file."""
    with pytest.raises(ConfigError) as info:
        parse_definition(text, source, "x")
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert "\n" not in message
    assert message.startswith(source), message
    return message


# a real Claude Code subagent ------------------------------------------------


def test_a_claude_code_subagent_file_works_as_a_teammate(tmp_path: Path) -> None:
    path = write(tmp_path, ".claude/agents", "code-reviewer", CLAUDE_REVIEWER)
    d = find_definition(tmp_path, "code-reviewer")
    assert d.name == "code-reviewer"
    assert d.description.startswith("Expert code review specialist.")
    assert d.tools == ("read_file", "grep", "glob", "bash")
    assert d.ignored_tools == ()
    assert d.model == "anthropic:claude-sonnet-4-5" == MODEL_ALIASES["sonnet"]
    assert d.prompt.startswith("You are a senior code reviewer")
    assert d.prompt.endswith("2. Focus on modified files")  # stripped, nothing of the header
    assert "---" not in d.prompt
    assert d.source == str(path)
    # accord's own keys take their defaults when a Claude file does not set them.
    assert (d.self_claim, d.max_turns, d.plan_required) == (True, 200, False)
    assert d.extra == {}


def test_windows_line_endings_parse_the_same(tmp_path: Path) -> None:
    crlf = parse_definition(CLAUDE_REVIEWER.replace("\n", "\r\n"), "crlf.md")
    lf = parse_definition(CLAUDE_REVIEWER, "lf.md")
    assert (crlf.name, crlf.tools, crlf.model) == (lf.name, lf.tools, lf.model)
    assert crlf.prompt.replace("\r\n", "\n") == lf.prompt


def test_tools_as_a_yaml_list_map_the_same_way() -> None:
    d = parse_definition(
        "---\nname: writer\ntools:\n  - Read\n  - Write\n  - Edit\n  - MultiEdit\n  - LS\n---\nx",
        "writer.md",
    )
    # MultiEdit and Edit are both edit_file: listed once.
    assert d.tools == ("read_file", "write_file", "edit_file", "list_files")


def test_accord_tool_names_are_accepted_as_they_are() -> None:
    d = parse_definition("---\nname: a\ntools: read_file, task_list, Bash\n---\n", "a.md")
    assert d.tools == ("read_file", "task_list", "bash")


def test_claude_tools_accord_lacks_are_ignored_not_fatal() -> None:
    d = parse_definition(
        "---\nname: web\ntools: Read, WebFetch, WebSearch, mcp__github__create_issue\n---\nx",
        "web.md",
    )
    assert d.tools == ("read_file",)
    assert d.ignored_tools == ("WebFetch", "WebSearch")
    # An MCP tool is no longer ignored: it names a server the member uses (agent.mcp).
    assert d.mcp_tools == ("mcp__github__create_issue",)


def test_disallowed_mcp_tools_become_deny_rules() -> None:
    d = parse_definition(
        "---\nname: a\nmcpServers: [github]\ndisallowedTools: mcp__github__delete_repo\n---\n",
        "a.md",
    )
    assert d.deny_rules == ("mcp__github__delete_repo",) and d.ignored_tools == ()


def test_no_tools_key_means_every_tool() -> None:
    d = parse_definition("---\nname: all\n---\nbody", "all.md")
    assert d.tools is None and d.ignored_tools == ()


@pytest.mark.parametrize(
    ("written", "model"),
    [
        ("sonnet", "anthropic:claude-sonnet-4-5"),
        ("opus", "anthropic:claude-opus-4-1"),
        ("haiku", "anthropic:claude-haiku-4-5"),
        ("inherit", None),
        ("openai:gpt-5-mini", "openai:gpt-5-mini"),
        ("openai:qwen3@http://localhost:11434/v1", "openai:qwen3@http://localhost:11434/v1"),
    ],
)
def test_model_aliases_and_inherit(written: str, model: str | None) -> None:
    d = parse_definition(f"---\nname: m\nmodel: {written}\n---\n", "m.md")
    assert d.model == model


def test_no_model_means_the_teams_default() -> None:
    assert parse_definition("---\nname: m\n---\n", "m.md").model is None


def test_accords_own_keys() -> None:
    d = parse_definition(
        "---\nname: planner\nself_claim: false\nmax_turns: 12\nplan_required: true\n"
        "color: blue\ncustom_key: 7\n---\nPlan first.",
        "planner.md",
    )
    assert (d.self_claim, d.max_turns, d.plan_required) == (False, 12, True)
    assert d.prompt == "Plan first."
    # Claude Code's known keys (color) are not "extra"; truly unknown ones are kept there.
    assert d.extra == {"custom_key": 7}


# where definitions come from ------------------------------------------------


def test_accords_folder_wins_over_claudes_for_the_same_name(tmp_path: Path) -> None:
    write(tmp_path, ".claude/agents", "reviewer", "---\nname: reviewer\n---\nclaude's")
    write(tmp_path, ".accord/agents", "reviewer", "---\nname: reviewer\n---\naccord's")
    write(tmp_path, ".claude/agents", "tester", "---\nname: tester\n---\nonly claude's")
    found = load_definitions(tmp_path)
    assert set(found) == {"reviewer", "tester"}
    assert found["reviewer"].prompt == "accord's"
    assert found["reviewer"].source == str(tmp_path / ".accord/agents/reviewer.md")
    assert find_definition(tmp_path, "tester").prompt == "only claude's"


def test_the_name_in_the_front_matter_wins_over_the_file_name(tmp_path: Path) -> None:
    write(tmp_path, ".accord/agents", "some-file", "---\nname: real-name\n---\nx")
    assert set(load_definitions(tmp_path)) == {"real-name"}


def test_a_file_with_no_front_matter_is_named_after_its_stem(tmp_path: Path) -> None:
    write(tmp_path, ".accord/agents", "plain-writer", "You write plain prose.\n")
    d = find_definition(tmp_path, "plain-writer")
    assert d.name == "plain-writer"
    assert d.prompt == "You write plain prose."
    assert d.tools is None and d.model is None


def test_front_matter_without_a_name_uses_the_stem(tmp_path: Path) -> None:
    write(tmp_path, ".claude/agents", "nameless", "---\ndescription: no name\n---\nbody")
    assert find_definition(tmp_path, "nameless").description == "no name"


def test_non_markdown_files_and_missing_folders_are_ignored(tmp_path: Path) -> None:
    assert load_definitions(tmp_path) == {}
    write(tmp_path, ".accord/agents", "a", "---\nname: a\n---\n")
    (tmp_path / ".accord/agents/notes.txt").write_text("not a definition")
    assert set(load_definitions(tmp_path)) == {"a"}


def test_no_name_gives_the_default_teammate(tmp_path: Path) -> None:
    assert find_definition(tmp_path, None) is DEFAULT


def test_an_unknown_name_lists_the_ones_found(tmp_path: Path) -> None:
    write(tmp_path, ".accord/agents", "planner", "---\nname: planner\n---\n")
    write(tmp_path, ".claude/agents", "code-reviewer", CLAUDE_REVIEWER)
    with pytest.raises(UserError) as info:
        find_definition(tmp_path, "tester")
    message = str(info.value)
    assert "\n" not in message
    assert "'tester'" in message
    assert "code-reviewer, planner" in message
    assert "tester.md" in message  # says how to fix it


def test_an_unknown_name_with_no_definitions_says_none(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"found: none"):
        find_definition(tmp_path, "tester")


def test_an_invalid_name_to_find_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        find_definition(tmp_path, "../escape")


# bad files: one line, naming the file ---------------------------------------


def test_invalid_yaml_names_the_file_and_line() -> None:
    message = config_error("---\nname: x\ndescription: [never closed\n---\nbody\n")
    assert message.startswith("/proj/.claude/agents/x.md:3:"), message
    assert "YAML" in message


def test_a_yaml_error_further_down_names_its_own_line() -> None:
    message = config_error("---\nname: x\ntools: Read\n  oops: indented: twice\n---\nbody\n")
    assert message.startswith("/proj/.claude/agents/x.md:4:"), message


def test_front_matter_that_is_a_list_is_refused() -> None:
    message = config_error("---\n- name\n- tools\n---\nbody\n")
    assert "key: value" in message


def test_an_invalid_name_is_refused() -> None:
    message = config_error("---\nname: Bad Name\n---\n")
    assert "Bad Name" in message


@pytest.mark.parametrize("value", ["0", "-3", '"x"', "2.5", "true"])
def test_max_turns_must_be_a_whole_number_above_zero(value: str) -> None:
    message = config_error(f"---\nname: x\nmax_turns: {value}\n---\n")
    assert "max_turns" in message


@pytest.mark.parametrize("key", ["self_claim", "plan_required"])
def test_flags_must_be_true_or_false(key: str) -> None:
    message = config_error(f'---\nname: x\n{key}: "yes"\n---\n')
    assert key in message and "true or false" in message


def test_tools_of_the_wrong_type_are_refused() -> None:
    assert "tools" in config_error("---\nname: x\ntools: 3\n---\n")
    assert "tools" in config_error("---\nname: x\ntools: {Read: true}\n---\n")


def test_a_bad_file_on_disk_is_named_by_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, ".accord/agents", "broken", "---\nname: broken\nmax_turns: 0\n---\n")
    with pytest.raises(ConfigError) as info:
        find_definition(tmp_path, "broken")
    assert str(info.value).startswith(str(path))
    errors: list[ConfigError] = []
    assert load_definitions(tmp_path, errors) == {}
    assert len(errors) == 1 and str(errors[0]).startswith(str(path))


def test_one_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    write(tmp_path, ".accord/agents", "planner", "---\nname: planner\n---\nplan")
    write(tmp_path, ".claude/agents", "other", "---\nname: other\ndescription: a: b\n---\n")
    assert find_definition(tmp_path, "planner").prompt == "plan"


def test_empty_front_matter_is_no_front_matter() -> None:
    d = parse_definition("---\n---\nThe prompt.\n", "e.md", "e")
    assert d.prompt == "The prompt."


# what accord does not support is said, once ------------------------------------------

CLAUDE_RESEARCHER = """\
---
name: researcher
description: Looks things up.
tools: Read, WebFetch, TodoWrite, mcp__github__search_issues, Bash
disallowedTools: Bash
permissionMode: acceptEdits
mcpServers: [github]
color: blue
---
Look things up.
"""


def test_unsupported_tools_and_fields_are_named_in_one_warning() -> None:
    d = parse_definition(CLAUDE_RESEARCHER, "/p/.claude/agents/researcher.md")
    warning = d.unsupported()
    assert warning is not None and "\n" not in warning
    assert warning.startswith("agent definition 'researcher' (/p/.claude/agents/researcher.md)")
    for name in ("WebFetch", "TodoWrite"):
        assert name in warning
    assert "mcp__github" not in warning  # MCP tools are supported (agent.mcp)
    assert "fields permissionMode" in warning
    assert "color" not in warning and "Bash" not in warning and "Read" not in warning
    assert parse_definition(CLAUDE_REVIEWER, "/p/x.md").unsupported() is None


def test_disallowed_tools_are_taken_away() -> None:
    d = parse_definition(CLAUDE_RESEARCHER, "/p/x.md")
    assert d.tools == ("read_file",)
    everything_but = parse_definition("---\ndisallowedTools: [Bash, Write]\n---\nx", "/p/y.md", "y")
    assert everything_but.tools is not None
    assert "bash" not in everything_but.tools and "write_file" not in everything_but.tools
    assert "read_file" in everything_but.tools


def test_a_warning_is_given_once_per_definition_per_process() -> None:
    from accord.agent.definition import first_warning

    d = parse_definition(CLAUDE_RESEARCHER, "/p/once/researcher.md")
    assert first_warning(d) == d.unsupported()
    assert first_warning(d) is None
    assert first_warning(parse_definition(CLAUDE_REVIEWER, "/p/once/r.md")) is None
