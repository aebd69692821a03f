"""Driving the ``accord`` command line from a test, in-process or as a real process.

- ``Result``: what one in-process run of ``accord.cli.main`` gave: exit code, stdout,
  stderr (accord's own suite makes them with its ``cli`` fixture);
- ``ok``, ``js``, ``one_error``: what a result must look like: a clean success, its
  JSON, or a refusal that is exactly one ``error:`` line;
- ``accord``, ``accord_out``, ``start``: ``python -m accord ARGS`` as a process, the
  way a person or a member process runs it, in an environment with no ``ACCORD_*``
  setting and no model provider's key or URL unless the caller gives one;
- ``rules``, ``calls``: a rule file for the scripted model (``--model scripted:FILE``),
  so the member processes of a real run play a script offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Result",
    "accord",
    "accord_out",
    "calls",
    "clean_env",
    "js",
    "ok",
    "one_error",
    "rules",
    "start",
]

# Settings a developer's shell may hold that must not reach accord under test: its
# own (a store, a team, a member's token) and the model providers' keys and URLs.
_PRIVATE = ("ACCORD_", "ANTHROPIC_", "OPENAI_")

Where = str | os.PathLike[str]


@dataclass
class Result:
    """One in-process run of the command line: its exit code and what it printed."""

    code: int
    out: str
    err: str


def ok(r: Result) -> Result:
    """``r`` succeeded and printed nothing on stderr; returns ``r``."""
    assert r.code == 0, f"exit {r.code}; out={r.out!r} err={r.err!r}"
    assert r.err == "", f"a success printed on stderr: {r.err!r}"
    return r


def js(r: Result) -> Any:
    """The JSON that a successful ``r`` printed."""
    return json.loads(ok(r).out)


def one_error(r: Result, *expected: int | str, code: int = 2) -> str:
    """``r`` failed with exit ``code`` (2, bad input, unless told), printed nothing on stdout
    and exactly one ``error:`` line on stderr naming every needle; returns that line.

    The code may also come first among the needles: ``one_error(r, 1, "no such task")``.
    """
    needles = list(expected)
    if needles and isinstance(needles[0], int):
        code, needles = needles[0], needles[1:]
    assert r.code == code, f"exit {r.code}, wanted {code}; out={r.out!r} err={r.err!r}"
    lines = r.err.splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in r.err
    assert r.out == ""
    for needle in needles:
        assert isinstance(needle, str), f"a needle {needle!r} after the exit code"
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without accord's settings or a model provider's, plus
    ``extra``: what a process under test starts with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE)}
    env.update(extra)
    return env


def _command(args: tuple[Where, ...], cwd: Where | None) -> tuple[Where, list[str]]:
    if cwd is not None:
        return cwd, [os.fspath(a) for a in args]
    if not args:
        raise TypeError("say where to run accord: accord(folder, *args) or cwd=folder")
    return args[0], [os.fspath(a) for a in args[1:]]


def accord(
    *args: Where,
    cwd: Where | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m accord ARGS`` to its end and return what it did.

    It runs in ``cwd``, or else in the first argument: ``accord(root, "task", "list")``
    and ``accord("task", "list", cwd=root)`` are one call. ``env`` is laid over
    ``clean_env()``. ``timeout`` only stops a hang; a test asserts its own deadlines.
    """
    where, argv = _command(args, cwd)
    return subprocess.run(
        [sys.executable, "-m", "accord", *argv],
        cwd=where,
        env={**clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def accord_out(
    *args: Where,
    cwd: Where | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> str:
    """Like ``accord``, for a command that must succeed: returns its stdout."""
    done = accord(*args, cwd=cwd, env=env, timeout=timeout)
    assert done.returncode == 0, (args, done.returncode, done.stderr)
    return done.stdout


def start(
    *args: Where, cwd: Where | None = None, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``python -m accord ARGS`` (placed as ``accord`` places it) without waiting:
    stdout and stderr come together through one pipe. The caller ends and reaps it."""
    where, argv = _command(args, cwd)
    return subprocess.Popen(
        [sys.executable, "-m", "accord", *argv],
        cwd=where,
        env={**clean_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def calls(*pairs: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A scripted reply that calls each named tool with its arguments, in order."""
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def rules(path: Path, rules: list[dict[str, Any]], otherwise: str = "Done for now.") -> str:
    """Write a scripted model's rules to ``path``; returns the ``--model`` that plays them.

    Each rule is ``{"if": TEXT, "then": REPLY}`` (``"once": true`` to fire once); a
    request that no rule matches gets the text ``otherwise``.
    """
    path.write_text(json.dumps({"rules": rules, "otherwise": {"text": otherwise}}))
    return f"scripted:{path}"
