"""Clean output: what a model or a teammate wrote cannot rewrite the person's terminal.

Task titles, descriptions, results, message bodies and summaries are printed for
people without escape sequences and control characters; ``--json`` keeps them
exact. The command line runs as real processes, as a person runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accord.testing.cli import accord_out as accord
from accord.text import strip_control

EVIL = "fix\x1b[2J\x1b[H the \x1b]0;pwned\x07parser\r\x9b31m\x07\x08!"
CLEAN = "fix the parser!"  # \x9b31m is an 8-bit CSI: all of it goes


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "red"),  # colours (CSI)
        ("a\x1b[2K\x1b[1Ab", "ab"),  # erase line, cursor up
        ("t\x1b]0;title\x07x", "tx"),  # window title (OSC ended by BEL)
        ("\x1b]8;;https://evil\x1b\\link\x1b]8;;\x1b\\", "link"),  # hyperlink (OSC, ST)
        ("\x1bPq#0\x1b\\ok", "ok"),  # DCS string
        ("\x1b(Bx\x1bc", "x"),  # two-character escapes, reset
        ("over\rwrite", "overwrite"),
        ("bell\x07 back\x08 del\x7f c1\x9b\x85", "bell back del c1"),
        ("lines\nand\ttabs stay", "lines\nand\ttabs stay"),
        ("é 日本 🙂", "é 日本 🙂"),
        ("lone escape\x1b", "lone escape"),
    ],
)
def test_strip_control(raw: str, shown: str) -> None:
    assert strip_control(raw) == shown


def test_titles_and_messages_print_without_control_characters(project: Path) -> None:
    accord("init", "--team", "t", cwd=project)
    accord("member", "add", "alice", cwd=project)
    added = accord("task", "add", EVIL, "-d", f"body {EVIL}", cwd=project)
    assert added == f"added #1 {CLEAN} (ready)\n"
    accord("msg", "send", "--to", "alice", f"hello {EVIL}", "--summary", EVIL, cwd=project)
    shown = {
        "task list": accord("task", "list", cwd=project),
        "task show": accord("task", "show", "1", cwd=project),
        "msg inbox": accord("msg", "inbox", "--as", "alice", cwd=project),
        "msg list": accord("msg", "list", cwd=project),
        "events": accord("events", cwd=project),
        "status": accord("status", cwd=project),
    }
    for command, out in shown.items():
        controls = [c for c in out if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0]
        assert controls == [], (command, out)
    assert CLEAN in shown["task list"] and f"body {CLEAN}" in shown["task show"]
    assert f"hello {CLEAN}" in shown["msg inbox"] and f"summary: {CLEAN}" in shown["msg inbox"]

    # Programs get the exact text.
    assert json.loads(accord("task", "show", "1", "--json", cwd=project))["title"] == EVIL
    listed = json.loads(accord("msg", "list", "--json", cwd=project))
    assert [(m["body"], m["summary"]) for m in listed] == [(f"hello {EVIL}", EVIL)]


def test_markup_in_what_members_wrote_prints_as_written(project: Path) -> None:
    """A title or summary that looks like rich markup or an emoji code is text: it
    neither breaks the board ("[/x]" used to raise MarkupError) nor restyles it."""
    accord("init", "--team", "t", cwd=project)
    accord("member", "add", "alice", cwd=project)
    title = "[/bold] fix [red]the[/red] :smile: parser"
    accord("task", "add", title, cwd=project)
    accord("msg", "send", "--to", "alice", "x", "--summary", "[/oops] :warning:", cwd=project)
    assert title in accord("task", "list", cwd=project)
    status = accord("status", cwd=project)
    assert "[/oops] :warning:" in status
