"""Waiting on what a test can observe, instead of sleeping: a condition, a process.

- ``until(check)`` polls ``check`` until it is true, or fails when its deadline passes;
- ``alive(pid)`` says whether a process is running (a zombie is dead already).

Linux only: ``alive`` reads ``/proc``, as accord's own process code does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["alive", "until"]


def until(check: Callable[[], object], timeout: float = 60.0, interval: float = 0.02) -> None:
    """Return once ``check()`` is true; raise ``AssertionError`` after ``timeout`` seconds.

    The deadline is generous by default because a loaded machine starts processes
    slowly; a test that promises speed passes its own ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs: it exists and is not a zombie (``None`` never runs)."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name, which may itself hold ")" or spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
