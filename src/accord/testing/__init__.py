"""Fakes for testing accord and code built on it, none of which touches the network.

- ``FakeClock``: a clock that moves only when told (pass it as a store's ``clock``);
- ``ScriptedModel``, ``reply``, ``call``: a model that plays back scripted replies;
- ``FakeAnthropic``, ``FakeOpenAI``: local HTTP servers the real SDKs talk to, playing
  a queue of replies, or rules (``on(...)``, ``otherwise()``) when several member
  processes share one server;
- ``accord.testing.conformance``: the suite every store backend must pass;
- ``accord.testing.cli``: the command line driven from a test, in-process results
  (``ok``, ``js``, ``one_error``) and ``python -m accord`` as a process;
- ``accord.testing.wait``: ``until`` a condition holds, whether a process is ``alive``.

Kept in the package, not only in accord's own tests, so projects that build on
accord can test against the same fakes. Nothing here touches the network.
"""

from __future__ import annotations

import threading

from accord.llm.scripted import Reply, ScriptedModel, call, reply
from accord.testing.fake_llm import FakeAnthropic, FakeOpenAI

__all__ = [
    "FakeAnthropic",
    "FakeClock",
    "FakeOpenAI",
    "Reply",
    "ScriptedModel",
    "call",
    "reply",
]


class FakeClock:
    """A clock that moves only when told: pass it as a store's ``clock``."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds
            return self._now
