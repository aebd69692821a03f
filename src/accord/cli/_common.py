"""What every command module of the command line shares: the parser class, the common
options (``--team``, ``--store``, ``--json``), the number parsers, and ``Context``.

A command module (``cli/team.py``, ``cli/task.py``, ...) holds each command's grammar
beside its action: a ``register(commands, name)`` that adds the parser of ``name``,
bound with ``set_defaults(func=...)`` to the function that runs it. Everything here
loads with ``accord --help``, so it imports nothing heavy at its top: a read command
must not pay for config's validator (pydantic), rich, the hooks or memory before it
can start.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from accord.errors import UsageError

if TYPE_CHECKING:
    from accord._where import Where
    from accord.config import Project
    from accord.store import Store
    from accord.team import Team
    from accord.team.mailbox import Mailbox


class Parser(argparse.ArgumentParser):
    """An argparse parser whose mistakes are a ``UsageError`` (one ``error:`` line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see `{self.prog} --help`")


if TYPE_CHECKING:
    # What a command module adds its parsers to: the root's commands, or a group's verbs.
    Subcommands = argparse._SubParsersAction[Parser]


# The values of the enums in accord.types that options take. Written out because
# `accord --help` builds every command's grammar, and must not pay for importing every
# type to do so; a test keeps them equal to the enums.
CHOICES: dict[str, tuple[str, ...]] = {
    "MemberRole": ("lead", "teammate"),
    "MemberStatus": ("starting", "working", "idle", "stopping", "stopped", "crashed", "failed"),
    "TaskStatus": ("pending", "in_progress", "completed", "failed", "cancelled"),
    "MessageKind": (
        "text",
        "shutdown_request",
        "shutdown_response",
        "plan_approval_request",
        "plan_approval_response",
        "idle_notification",
        "task_assignment",
        "permission_request",
        "permission_response",
        "interrupt",
    ),
    "MemoryType": ("decision", "insight", "observation", "story"),
    "MemoryStatus": ("active", "superseded", "retired"),
}


def plain(text: str) -> str:
    """What a model or a teammate wrote, for people: without the escape sequences and
    control characters that would rewrite their terminal (JSON keeps it exact)."""
    from accord.text import strip_control

    return strip_control(text)


def group(commands: Subcommands, name: str, **kwargs: Any) -> Subcommands:
    """A command group (``accord task``): the parser of ``name``, whose verbs are required."""
    return commands.add_parser(name, **kwargs).add_subparsers(
        dest="verb", metavar="VERB", parser_class=Parser, required=True
    )


@cache
def _options(read: bool) -> Parser:
    p = Parser(add_help=False)
    p.add_argument(
        "--team",
        metavar="NAME",
        help="team to act on (else ACCORD_TEAM, the default in accord.toml, or the only team)",
    )
    p.add_argument(
        "--store",
        metavar="PATH",
        help="store to use (else ACCORD_STORE, or .accord/accord.db found by walking up)",
    )
    if read:
        p.add_argument("--json", action="store_true", help="print JSON for programs")
    return p


def reads() -> list[Parser]:
    """The parents of a command that reads or prints a result: --team, --store, --json."""
    return [_options(True)]


def writes() -> list[Parser]:
    """The parents of a command without JSON output: --team and --store."""
    return [_options(False)]


# numbers ------------------------------------------------------------------

INT64_MAX = 2**63 - 1  # the largest id or number a store column holds


def whole(text: str, what: str = "a whole number") -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: numbers fit in 64 bits")
    return value


def int64(text: str) -> int:
    return whole(text)


def positive_int(text: str) -> int:
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}: give a finite number")
    return value


def seconds(text: str) -> float:
    value = finite(text, "a number of seconds")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def task_id(text: str) -> int:
    value = whole(text.lstrip("#"), "a task id (a number)")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a task id (ids start at 1)")
    return value


# the context of one command ------------------------------------------------


def refuse_in_sandbox() -> None:
    """A command run inside a member's sandbox never reaches the store: a member acts
    only through its own tools, as itself (the marker, not the variable, decides)."""
    from accord import sandbox

    if sandbox.inside():
        from accord.cli._advice import IN_SANDBOX
        from accord.errors import UserError

        raise UserError(IN_SANDBOX)


class Context:
    """What a command needs, opened only when first asked for."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    @property
    def json(self) -> bool:
        """The command was asked for JSON (``--json``)."""
        return bool(getattr(self.args, "json", False))

    @cached_property
    def project(self) -> Project:
        from pathlib import Path

        from accord.config import locate

        refuse_in_sandbox()
        return locate(Path.cwd(), getattr(self.args, "store", None))

    @cached_property
    def where(self) -> Where:
        """The store and default team, without validating all of accord.toml when it can."""
        from pathlib import Path

        from accord._where import Where, where

        refuse_in_sandbox()
        found = where(Path.cwd(), getattr(self.args, "store", None))
        if found is not None:
            return found
        p = self.project
        return Where(
            p.root,
            p.store_location,
            p.config.store.synchronous,
            p.config.store.busy_timeout,
            p.config.team.default,
            p.config.mailbox.visibility_timeout,
            p.config.mailbox.recheck,
        )

    @cached_property
    def store(self) -> Store:
        from accord.store import open_store

        refuse_in_sandbox()
        w = self.where
        return open_store(w.store_location, synchronous=w.synchronous, busy_timeout=w.busy_timeout)

    @cached_property
    def team_name(self) -> str:
        from accord.team import pick_team

        return pick_team(
            self.store,
            getattr(self.args, "team", None),
            os.environ.get("ACCORD_TEAM"),
            self.where.default_team,
        )

    @cached_property
    def team(self) -> Team:
        """The team the command means, wired to the project's settings and hooks."""
        from accord.team import Team

        return Team.open(self.store, self.team_name, self.project.config, self.project.root)

    @cached_property
    def reading(self) -> Team:
        """The team the command means, bound without the project's settings: enough for
        a read, which then loads neither accord.toml's validator nor the hooks."""
        from accord.team import Team

        return Team(self.store, self.team_name)

    @cached_property
    def mailbox(self) -> Mailbox:
        from accord.team.mailbox import Mailbox

        return Mailbox(self.store, self.team_name, self.where)

    @cached_property
    def actor(self) -> str | None:
        """The verified member this process acts for, or None for a person."""
        from accord import credentials
        from accord.team.roster import acting_member

        return acting_member(
            self.store,
            self.team_name,
            os.environ.get("ACCORD_MEMBER"),
            credentials.get("ACCORD_TOKEN"),
        )

    def acting_as(self, name: str) -> str:
        """Check this caller may act as ``name`` (its token, when it is an agent)."""
        from accord import credentials
        from accord.team.roster import may_act_as

        may_act_as(
            self.store,
            self.team_name,
            name,
            os.environ.get("ACCORD_MEMBER"),
            credentials.get("ACCORD_TOKEN"),
        )
        return name

    @property
    def me(self) -> str:
        """Who "you" are when a command is not told: the agent running it, else the person."""
        from accord.types import PERSON

        return os.environ.get("ACCORD_MEMBER") or PERSON

    def done(self) -> None:
        """The command succeeded: if it validated accord.toml, note the text as checked,
        so later reads may skip the validator while the file stays as it is."""
        project = self.__dict__.get("project")
        if project is not None and project.config_path is not None:
            from accord._where import remember

            remember(project.root)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()


Command = Callable[[Context], int]
