"""tmux 3.x as a pane backend, driven through its command line.

Which server: ``ACCORD_TMUX_SOCKET`` (a socket path, for ``tmux -S``) when set, so a
test or a person keeps accord's panes on a private server; otherwise tmux's own
choice, which inside tmux is the server named in ``$TMUX``.

Each pane shows its title in its top border (``pane-border-status top``), keeps its
last lines when its command ends (``remain-on-exit on``), and carries its key in the
pane option ``@accord-key``. A pane's command is an argument list quoted word by word
with ``shlex.quote``; what a pane needs in its environment (the store's location,
which may hold a password) goes in with ``-e``, not on its command line.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

from accord.errors import DisplayError
from accord.runtime.panes.base import Layout, Multiplexer, Pane, PaneSpec

SOCKET_ENV = "ACCORD_TMUX_SOCKET"
KEY_OPTION = "@accord-key"
# A pane that stays in a detached session's window needs room to be read: tmux's
# default of 80x24 fits about four panes.
DETACHED_SIZE = ("200", "50")
_FIELD = "\t"  # between the fields of a list-panes line (titles may hold spaces)


def version() -> tuple[int, int] | None:
    """The installed tmux's version (3, 3), or None when there is none."""
    if shutil.which("tmux") is None:
        return None
    try:
        done = subprocess.run(
            ["tmux", "-V"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return None
    found = re.search(r"(\d+)\.(\d+)", done.stdout)
    return (int(found[1]), int(found[2])) if found else None


class Tmux(Multiplexer):
    """A team's panes in tmux: a window of the person's session, or a session of its own."""

    name = "tmux"

    def __init__(self, socket: str | None = None) -> None:
        self.socket = socket if socket is not None else os.environ.get(SOCKET_ENV) or None
        # The shell a window or session accord made starts with, by window: it goes
        # once a pane of accord's is there (a pane of the person's never does).
        self._placeholders: dict[str, str] = {}

    # what there is ------------------------------------------------------------------

    def installed(self) -> bool:
        found = version()
        return found is not None and found >= (3, 0)

    def inside(self) -> bool:
        here = os.environ.get("TMUX", "")
        if not here:
            return False
        # A private server (ACCORD_TMUX_SOCKET) is another server than the one we sit in,
        # unless it is that one.
        return self.socket is None or here.split(",")[0] == self.socket

    # the layout ---------------------------------------------------------------------

    def open(self, name: str, *, here: bool, cwd: str) -> Layout:
        made = ""
        found: str | None = None
        if here:
            pane = os.environ.get("TMUX_PANE")
            session = self._tmux("display-message", "-p", *(["-t", pane] if pane else []),
                                 "#{session_id}")  # fmt: skip
            found = self._window(session, name)
            if found is None:
                made = self._tmux(
                    "new-window", "-t", f"{session}:", "-n", name, "-c", cwd,
                    "-P", "-F", f"#{{window_id}}{_FIELD}#{{pane_id}}",
                )  # fmt: skip
            layout = Layout(name, found or made.split(_FIELD)[0], session=False)
        else:
            if self._quiet("has-session", "-t", f"={name}"):
                found = self._tmux("display-message", "-p", "-t", f"={name}:", "#{window_id}")
            else:
                width, height = DETACHED_SIZE
                made = self._tmux(
                    "new-session", "-d", "-s", name, "-n", name, "-x", width, "-y", height,
                    "-c", cwd, "-P", "-F", f"#{{window_id}}{_FIELD}#{{pane_id}}",
                )  # fmt: skip
            layout = Layout(name, found or made.split(_FIELD)[0], session=True)
        if made:
            self._placeholders[layout.target] = made.split(_FIELD)[1]
        for option, value in (
            ("pane-border-status", "top"),
            ("pane-border-format", " #{pane_title} "),
            ("remain-on-exit", "on"),
        ):
            self._tmux("set-option", "-w", "-t", layout.target, option, value)
        return layout

    def add(self, layout: Layout, spec: PaneSpec) -> str:
        env = [word for k, v in spec.env.items() for word in ("-e", f"{k}={v}")]
        command = shlex.join(spec.argv)
        self._tmux("select-layout", "-t", layout.target, "tiled")
        pane = self._tmux(
            "split-window", "-d", "-t", layout.target, "-c", spec.cwd, *env,
            "-P", "-F", "#{pane_id}", command,
        )  # fmt: skip
        self._tmux("set-option", "-p", "-t", pane, KEY_OPTION, spec.key)
        self.retitle(pane, spec.title)
        placeholder = self._placeholders.pop(layout.target, None)
        if placeholder is not None:
            self._quiet("kill-pane", "-t", placeholder)
        self._tmux("select-layout", "-t", layout.target, "tiled")
        return pane

    def retitle(self, pane: str, title: str) -> None:
        self._tmux("select-pane", "-t", pane, "-T", title)

    def panes(self, layout: Layout) -> list[Pane] | None:
        fields = _FIELD.join(("#{pane_id}", f"#{{{KEY_OPTION}}}", "#{pane_dead}", "#{pane_title}"))
        done = self._call("list-panes", "-t", layout.target, "-F", fields)
        if done.returncode != 0:
            return None  # the window or the session was closed
        found = []
        for line in done.stdout.splitlines():
            pane, key, dead, title = (line.split(_FIELD, 3) + ["", "", ""])[:4]
            found.append(Pane(pane, key, title, dead == "1"))
        return found

    def close(self, layout: Layout) -> None:
        if layout.session:
            self._quiet("kill-session", "-t", f"={layout.name}")
        else:
            self._quiet("kill-window", "-t", layout.target)

    def attach_hint(self, layout: Layout) -> str:
        return f"{self._command()} attach -t {shlex.quote(layout.name)}"

    def close_hint(self, layout: Layout) -> str:
        if layout.session:
            return f"{self._command()} kill-session -t {shlex.quote(layout.name)}"
        return f"{self._command()} kill-window -t {shlex.quote(layout.target)}"

    # talking to tmux ----------------------------------------------------------------

    def _base(self) -> list[str]:
        return ["tmux", *(["-S", self.socket] if self.socket else [])]

    def _command(self) -> str:
        return shlex.join(self._base())

    def _call(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [*self._base(), *args], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DisplayError(f"tmux {args[0]} could not run: {e}") from None

    def _tmux(self, *args: str) -> str:
        done = self._call(*args)
        if done.returncode != 0:
            said = " ".join(done.stderr.split()) or f"exit {done.returncode}"
            raise DisplayError(f"tmux {args[0]} failed: {said}")
        return done.stdout.strip()

    def _quiet(self, *args: str) -> bool:
        return self._call(*args).returncode == 0

    def _window(self, session: str, name: str) -> str | None:
        listed = self._tmux("list-windows", "-t", session, "-F", f"#{{window_id}}{_FIELD}#W")
        for line in listed.splitlines():
            window, _, called = line.partition(_FIELD)
            if called == name:
                return window
        return None
