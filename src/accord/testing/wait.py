"""Waiting on what a test can observe, instead of sleeping: a condition, a process.

- ``until(check)`` polls ``check`` until it is true, or fails when its deadline passes;
- ``alive(pid)`` says whether a process is running (a zombie is dead already).

``alive`` is ``accord.process.alive`` (Linux: it reads ``/proc``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from accord.process import alive

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
