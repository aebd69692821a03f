"""Display backends: a terminal multiplexer showing a team as panes, one per member.

``base.Multiplexer`` is the small interface the command line uses; ``tmux.Tmux`` is
the one backend so far. Another multiplexer (zellij, WezTerm) is a module beside it,
picked by ``backend``, with nothing else changed.
"""

from __future__ import annotations

from accord.runtime.panes.base import Layout, Multiplexer, Pane, PaneSpec


def backend(name: str = "tmux") -> Multiplexer:
    """The multiplexer called ``name``."""
    if name == "tmux":
        from accord.runtime.panes.tmux import Tmux

        return Tmux()
    raise ValueError(f"no pane backend called {name!r}")


__all__ = ["Layout", "Multiplexer", "Pane", "PaneSpec", "backend"]
