"""The person's seat: a full-screen terminal app to watch, follow and steer a team.

``accord watch`` opens it from any terminal (and from another machine, with the same
PostgreSQL store); ``accord run`` and ``accord resume`` open it on a terminal while
their supervisor runs. It only reads the store and sends the person's mail, so
closing it never stops the team. Textual (and the app's own modules) load only when
the app opens: ``accord status`` and the other commands never pay for them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accord.config import Project
    from accord.team import Team
    from accord.types import RunStatus

#: Seconds the app waits, once the run it opened with has ended, before it closes.
CLOSE_AFTER_END = 3.0


def watch_in_app(project: Project, team: Team, *, until_run_ends: bool = False) -> int:
    """Run the app in this terminal until the person closes it (or, ``until_run_ends``,
    until the run it saw running has ended)."""
    from accord.tui.app import Seat

    Seat(project.store_location, team.name, until_run_ends=until_run_ends).run()
    return 0


def supervise_in_app(
    project: Project, team: Team, host: str | None = None, slots: int | None = None
) -> RunStatus:
    """Run the supervisor here and the app beside it, in a process of its own that owns
    the terminal: the supervisor keeps its signals and its main thread, and the app is a
    viewer like any other. When the person closes the app the team goes on, and this
    terminal says how to stop it or open the view again; when the run ends the app
    closes by itself."""
    from accord.runtime.supervisor import Supervisor

    logs = project.root / ".accord" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    said = open(logs / f"supervisor-{team.name}.log", "a", encoding="utf-8")  # noqa: SIM115
    env = {**os.environ, "ACCORD_STORE": project.store_location}
    app = subprocess.Popen(
        [sys.executable, "-m", "accord", "watch", "--team", team.name, "--until-run-ends"],
        env=env,
        cwd=project.root,
    )
    viewing = True

    def say(line: str) -> None:
        nonlocal viewing
        said.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        said.flush()
        if viewing and app.poll() is not None:
            viewing = False
            sys.stdout.write(
                f"the view is closed; the team goes on (Ctrl+C stops it; `accord watch "
                f"--team {team.name}` opens the view again)\n"
            )
        if not viewing:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    try:
        return Supervisor(project, team, say=say, host=host, slots=slots, keep=[app.pid]).run()
    finally:
        # The app closes by itself once it saw the run end; one that never saw it run
        # (the run ended before it first looked) is told to close.
        for ask, wait in (
            (None, CLOSE_AFTER_END + 1),
            (signal.SIGUSR1, 5.0),
            (signal.SIGTERM, None),
        ):
            if ask is not None:
                app.send_signal(ask)
            try:
                app.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        said.close()
