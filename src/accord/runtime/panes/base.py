"""The interface every pane backend keeps: open a layout for a team, add a pane that
runs a command under a title, retitle it, list what is there, close it, and say how a
person attaches.

A pane runs only commands that accord builds itself, as an argument list: a name in
one has passed ``check_name`` first, and a backend quotes every word (nothing a model
wrote becomes a shell command). Each pane carries a ``key`` (``member:alice``,
``board``, ``chat``) so a layout found again (a second ``accord watch --tmux``) is
kept up rather than doubled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PaneSpec:
    """What one pane runs: ``argv`` in ``cwd`` with ``env`` added, shown as ``title``."""

    key: str
    title: str
    argv: Sequence[str]
    cwd: str
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pane:
    """A pane as the multiplexer reports it."""

    id: str
    key: str
    title: str
    dead: bool


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a team's panes live: a window of the person's own session (``session``
    False), or a session of its own that accord started."""

    name: str  # the window's name, or the session's
    target: str  # the backend's handle on the window that holds the panes
    session: bool


class Multiplexer(ABC):
    """A terminal multiplexer seen as a place for a team's panes."""

    name: str

    @abstractmethod
    def installed(self) -> bool:
        """The multiplexer can be run here (a version this backend supports)."""

    @abstractmethod
    def inside(self) -> bool:
        """This process runs inside one of the multiplexer's sessions."""

    @abstractmethod
    def open(self, name: str, *, here: bool, cwd: str) -> Layout:
        """The layout called ``name``: a new window in the current session when ``here``,
        else a detached session of that name; an existing one of that name is reused."""

    @abstractmethod
    def add(self, layout: Layout, spec: PaneSpec) -> str:
        """Start ``spec`` in a new pane of ``layout``; returns the pane's id."""

    @abstractmethod
    def retitle(self, pane: str, title: str) -> None:
        """Show ``title`` on the pane ``pane``."""

    @abstractmethod
    def panes(self, layout: Layout) -> list[Pane] | None:
        """The panes of ``layout``, or None when it is gone (the person closed it)."""

    @abstractmethod
    def close(self, layout: Layout) -> None:
        """Close the layout: its panes' viewers end; the team does not."""

    @abstractmethod
    def attach_hint(self, layout: Layout) -> str:
        """The command a person types to see ``layout``."""

    @abstractmethod
    def close_hint(self, layout: Layout) -> str:
        """The command a person types to close ``layout``."""
