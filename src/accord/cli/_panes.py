"""A team in tmux panes (``--display tmux``, ``accord watch --tmux``).

One pane per member follows its transcript (``accord member transcript NAME
--follow``), one shows the board (``accord task list --follow``) and one holds the
person's conversation with the lead (``accord chat``). Inside tmux the panes open in a
new window of the current session; outside, in a detached session of their own, and
the person is told how to attach. Every pane is a viewer of the store: closing a
pane, the window or the session stops nothing.

A keeper keeps the layout current: a pane for each teammate as it spawns, a pane's
title marked ``(stopped)``, ``(crashed)`` or ``(failed)`` when its member stops. It
reads the roster only when the store's change marker moved. Beside a supervisor
(``--display tmux``) the keeper is a process of its own, started before the
supervisor runs and not its child: a supervisor ends every child of its own that is
not a member (``process.reap_orphans``), and a tmux command run from a thread of it
would be one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.errors import DisplayError, UserError
from accord.types import MemberRole, MemberStatus, RunStatus, check_name

if TYPE_CHECKING:
    from accord.config import Project
    from accord.runtime.panes import Layout, Multiplexer, PaneSpec
    from accord.team import Team

NO_TMUX = (
    "panes in tmux need tmux 3.x, and none is installed: install it (apt-get install tmux), "
    "or use the app (--display tui)"
)
MARKS = {
    MemberStatus.STOPPED: "stopped",
    MemberStatus.CRASHED: "crashed",
    MemberStatus.FAILED: "failed",
}
BOARD, CHAT = "board", "chat"
POLL = 0.2  # how often the keeper looks at the change marker
RECHECK = 2.0  # how often it looks at the layout when nothing changed (was it closed?)
SETTLE = 30.0  # how long after its run ended a watch waits for the members to stop
LIVE = (MemberStatus.STARTING, MemberStatus.WORKING, MemberStatus.IDLE, MemberStatus.STOPPING)


def need_tmux() -> Multiplexer:
    """The tmux backend, or a UserError before anything starts when there is none."""
    from accord.runtime.panes import backend

    mux = backend("tmux")
    if not mux.installed():
        raise UserError(NO_TMUX)
    return mux


def layout_name(team: str, here: bool) -> str:
    """A window ``accord:TEAM`` in the person's session, or a session ``accord-TEAM``
    (tmux allows no ``:`` in a session's name)."""
    return f"accord:{team}" if here else f"accord-{team}"


class Keeper:
    """Keeps one team's layout current: the chat, the board, a pane per member."""

    def __init__(self, mux: Multiplexer, layout: Layout, project: Project, team: str) -> None:
        self.mux = mux
        self.layout = layout
        self.cwd = str(project.root)
        self.team = check_name(team, "team name")
        self.env = {"ACCORD_STORE": project.store_location}
        if os.environ.get("PYTHONPATH"):  # the panes run the very accord this one is
            self.env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        self.added: set[str] | None = None  # keys of the panes made (or found) so far

    def _spec(self, key: str, title: str, *words: str) -> PaneSpec:
        from accord.runtime.panes import PaneSpec

        argv = [sys.executable, "-m", "accord", *words, "--team", self.team]
        return PaneSpec(key, title, argv, self.cwd, self.env)

    def sync(self, team: Team) -> bool:
        """Add what is missing and retitle what changed; False once the layout is gone.
        A pane the person closed is not made again."""
        panes = self.mux.panes(self.layout)
        if panes is None:
            return False
        shown = {p.key: p for p in panes if p.key}
        if self.added is None:
            self.added = set(shown)
        lead = _lead_of(team)
        wanted: list[tuple[str, str, tuple[str, ...]]] = []
        if lead is not None:
            lead = check_name(lead, "member name")
            wanted.append((CHAT, f"chat with {lead}", ("chat", lead)))
        wanted.append((BOARD, "board", ("task", "list", "--follow")))
        for m in team.roster.list():
            name = check_name(m.name, "member name")
            # A member that never ran is "stopped" too, but has not stopped: no mark.
            ran = m.status != MemberStatus.STOPPED or m.heartbeat_at is not None
            mark = MARKS.get(m.status) if ran else None
            title = f"{name} ({mark})" if mark else name
            wanted.append((f"member:{name}", title, ("member", "transcript", name, "--follow")))
        try:
            for key, title, words in wanted:
                if key not in self.added:
                    self.mux.add(self.layout, self._spec(key, title, *words))
                    self.added.add(key)
                elif key in shown and shown[key].title != title:
                    self.mux.retitle(shown[key].id, title)
        except DisplayError:
            if self.mux.panes(self.layout) is None:
                return False  # closed while we looked: that is no error
            raise
        return True


def _lead_of(team: Team) -> str | None:
    run = team.runs.get()
    if run is not None:
        return run.lead
    return next((m.name for m in team.roster.list() if m.role == MemberRole.LEAD), None)


def _open(mux: Multiplexer, project: Project, team: Team) -> tuple[Layout, Keeper, bool]:
    here = mux.inside()
    layout = mux.open(layout_name(team.name, here), here=here, cwd=str(project.root))
    keeper = Keeper(mux, layout, project, team.name)
    keeper.sync(team)
    return layout, keeper, here


def _tell(mux: Multiplexer, layout: Layout, here: bool) -> None:
    if here:
        show.say_now(f"the team's panes are in window {layout.name} of this tmux session")
    else:
        show.say_now(f"attach with: {mux.attach_hint(layout)}")
    show.say_now(f"close them with: {mux.close_hint(layout)} (the team goes on)")


def _keep(keeper: Keeper, project: Project, team: str, done: Callable[[Team], bool]) -> bool:
    """Keep the layout current until ``done`` says so (True) or it is closed (False),
    on a connection of its own; a last look after ``done`` marks who stopped."""
    from accord.store import open_store
    from accord.team import Team

    reader = open_store(project.store_location)
    seen = Team(reader, team)
    marker: int | None = None
    looked = 0.0
    try:
        while True:
            now = time.monotonic()
            moved = seen.log.change_marker()
            if moved != marker or now - looked >= RECHECK:
                marker, looked = moved, now
                over = done(seen)
                if not keeper.sync(seen):
                    return False
                if over:
                    return True
            time.sleep(POLL)
    finally:
        reader.close()


class _RunEnd:
    """Whether the run is over: it finished or stopped, and its members have stopped
    too (so their panes show it), or SETTLE seconds have passed since it ended."""

    def __init__(self) -> None:
        self.since: float | None = None

    def __call__(self, team: Team) -> bool:
        run = team.runs.get()
        if run is not None and run.status in (RunStatus.RUNNING, RunStatus.STOPPING):
            self.since = None
            return False
        if self.since is None:
            self.since = time.monotonic()
        live = any(m.status in LIVE for m in team.roster.list())
        return not live or time.monotonic() - self.since > SETTLE


def watch_in_panes(project: Project, team: Team, keep_for: int | None = None) -> int:
    """``accord watch --tmux``: make (or find) the team's layout and keep it current
    while its run goes on, or until Ctrl+C. ``keep_for``: the keeper beside a
    supervisor, which keeps it current while that process lives, and says nothing."""
    from accord.process import alive

    mux = need_tmux()
    try:
        layout, keeper, here = _open(mux, project, team)
        if keep_for is not None:
            _keep(keeper, project, team.name, lambda _: not alive(keep_for))
            return 0
        _tell(mux, layout, here)
        run = team.runs.get()
        if run is None or run.status not in (RunStatus.RUNNING, RunStatus.STOPPING):
            show.say_now("no run is going on: the panes follow the members as they are")
            return 0
        if _keep(keeper, project, team.name, _RunEnd()):
            show.say_now(f"team {team.name}'s run ended; the panes stay until closed")
        else:
            show.say_now("the panes were closed; the team goes on")
    except KeyboardInterrupt:
        pass
    except DisplayError as e:
        if keep_for is None:
            raise
        sys.stderr.write(f"error: {e}\n")  # the keeper's log: the run goes on regardless
        return 1
    return 0


def supervise_in_panes(
    project: Project, team: Team, host: str | None = None, slots: int | None = None
) -> RunStatus:
    """``--display tmux``: the team's layout made (or its session started) and kept
    current by a keeper process, while the supervisor runs here and tells the run as
    a story, one step a line. Closing the panes never stops the team."""
    from accord.runtime.supervisor import Supervisor

    mux = need_tmux()
    layout, _, here = _open(mux, project, team)
    _tell(mux, layout, here)
    _start_keeper(project, team.name)
    supervisor = Supervisor(
        project,
        team,
        say=show.say_now,
        on_event=show.Story(team, show.say_now),
        host=host,
        slots=slots,
    )
    return supervisor.run()


def _start_keeper(project: Project, team: str) -> None:
    """Start ``accord watch --tmux --keep-for PID`` as a process that is not ours (its
    shell ends at once, so init adopts it), writing to ``.accord/logs/panes.log``."""
    logs = project.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "accord", "watch", "--tmux", "--team", check_name(team, "team name"),
        "--keep-for", str(os.getpid()),
    ]  # fmt: skip
    env = {**os.environ, "ACCORD_STORE": project.store_location}
    with open(logs / "panes.log", "ab") as log:
        subprocess.run(
            ["/bin/sh", "-c", '"$@" &', "sh", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=project.root,
            env=env,
            start_new_session=True,
            check=True,
            timeout=30,
        )
