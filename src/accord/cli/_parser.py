"""The root of ``accord``'s grammar: which module holds each command, in help order.

Each command's own grammar sits beside its action in its module (``cli/task.py``
holds ``accord task add`` and the function that runs it). ``build`` asks only the
module of the command a command line names, so a read loads one command module;
``accord --version`` loads none, and ``accord --help`` (or a mistyped command) asks
every module, for the whole list.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import import_module

from accord import __version__
from accord.cli._common import Parser

# Every command and command group, in the order `accord --help` lists them, with the
# module of accord.cli that registers it (its grammar and its action).
MODULE_OF: dict[str, str] = {
    "init": "init",
    "team": "team",
    "member": "member",
    "task": "task",
    "msg": "msg",
    "channel": "channel",
    "ask": "ask",
    "route": "route",
    "chat": "chat",
    "permit": "permit",
    "deny": "permit",
    "agent": "run",
    "cost": "run",
    "run": "run",
    "resume": "run",
    "supervise": "run",
    "stop": "run",
    "watch": "run",
    "status": "run",
    "demo": "demo",
    "store": "store",
    "memory": "memory",
    "skill": "skill",
    "events": "log",
    "wait": "log",
    "plan": "plan",
    "work": "plan",
    "merge": "merge",
    "mcp": "mcp",
}


def _named(argv: Sequence[str] | None) -> str | None:
    """The command ``argv`` names (its first word that is not an option), if any."""
    if argv is None:
        return None
    for word in argv:
        if word in ("-h", "--help"):
            return None  # the root's help lists every command
        if word == "--version":
            return "--version"  # it prints and exits before any command is read
        if not word.startswith("-"):
            return word
    return None


def build(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The grammar of every command; with ``argv``, only of the command ``argv`` names.
    Building all of it costs more than a read command does (mostly argparse's gettext
    lookups and the command modules' imports), and a command needs its own. What the
    root parser says without a valid command (its help, an unknown command) comes from
    the whole grammar as ever."""
    wanted = _named(argv)
    if wanted is not None and wanted not in (*MODULE_OF, "--version"):
        wanted = None  # a mistyped command: the whole grammar, for argparse's own error
    root = Parser(
        prog="accord",
        description="Durable teams of LLM agents: a shared task board, mailboxes, a roster, "
        "an event log and hooks, all in one store.",
        epilog="Every read command takes --json. Exit codes: 0 done, 1 failure, 2 bad input, "
        "3 nothing to do.",
    )
    root.add_argument("--version", action="version", version=f"accord {__version__}")
    commands = root.add_subparsers(dest="group", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for name, module in MODULE_OF.items():
        if wanted in (None, name):
            import_module(f"accord.cli.{module}").register(commands, name)
    return root
