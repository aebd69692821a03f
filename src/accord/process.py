"""The processes accord starts: tool commands, hooks, ``accord work`` commands, members.

Every one of them is started by :func:`start` and ended by :meth:`Child.close`
(or :func:`end` for many at once, politely); :class:`Capture` keeps the head and
the tail of what one prints, within a limit; a supervisor calls
:func:`become_subreaper` and :func:`reap_orphans`.

The one strategy against orphans
--------------------------------
A process accord starts must not outlive the reason it was started: not when
it ends, not when its starter is killed with ``kill -9``, and neither may
anything it forked into the background (``sleep 300 &``). One rule holds at
every level (supervisor -> member -> bash command or hook):

1. **A group of its own, killed whole.** It leads a process group (a session)
   of its own, and it is ended by killing that whole group, never the leader
   alone: what it left running goes with it. The leader is reaped only after
   the group is killed, so its pid, the group's id, cannot have been reused.
   A group in its own session also keeps a terminal's Ctrl+C for accord, which
   decides what to end.
2. **Tethered to its starter.** It is started under a few lines of bash that
   first leave a sentinel in the group: a subshell blocked reading a pipe whose
   only writer is the starter. When the starter dies, however it dies, the
   kernel closes that pipe, the read returns, and the sentinel kills the group,
   itself included. The sentinel ignores the polite signals, so a group asked
   to end with SIGTERM whose starter is killed during the grace still goes.
   Dying with the starter is therefore transitive: ``kill -9`` of the
   supervisor ends every member's group, and each member's end ends its
   commands' and hooks' groups.

Why not the alternatives: ``PR_SET_PDEATHSIG`` signals only the direct child,
not what it forked; it fires when the *thread* that started the child ends,
not the process; and it is Linux's alone. A PID namespace needs privilege or
user namespaces, which containers often refuse. A watchdog process polls, and
is one more thing to kill. The tether needs no privilege, no namespace and no
polling, and costs one idle bash per process.

What escapes: a process that leaves its group on purpose (``setsid``, a
daemon). The sandbox is the wall for those. Under a supervisor, which makes
itself a child subreaper, such a process is reparented to the supervisor when
its member dies, and :func:`reap_orphans` ends it, and reaps the sentinels a
dead member leaves. Without ``/bin/bash`` a process runs untethered (its own
group is still killed when it ends).

Waiting stays interruptible: a KeyboardInterrupt (Ctrl+C, or a stop an agent
turns into one) raised while :meth:`Child.wait` sleeps leaves the ``with``
block, whose exit kills the group. That is how a stop cuts a command short.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

BASH = "/bin/bash"
# {closes}: the other descriptors handed to the process, which the sentinel must not
# keep open (a pipe of secrets, say). It ignores the polite signals (see the docstring).
_SENTINEL = (
    "( trap '' TERM INT HUP ;{closes} read -r -u {fd} _ ; kill -KILL 0 ) "
    "</dev/null >/dev/null 2>&1 &"
    '\nexec {fd}<&-\nexec "$@"'
)
_CHUNK = 65536


class Child:
    """A process :func:`start` started: the leader of a process group of its own.

    Use it as a context manager, or call :meth:`close`: either way the whole
    group is killed and the leader reaped, finished or not.
    """

    def __init__(self, popen: subprocess.Popen[bytes], tether: int) -> None:
        self.popen = popen
        self._tether = tether  # the write end of the sentinel's pipe; -1: untethered

    @property
    def pid(self) -> int:
        """The leader's pid, which is also the group's id."""
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The leader's exit code once reaped (negative: killed by that signal)."""
        return self.popen.returncode

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: for ever) for the leader to exit; True
        if it has. It is left unreaped, so the group can still be killed safely."""
        if self.popen.returncode is not None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    return True
            except ChildProcessError:
                return True  # reaped already
            pause = delay
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                pause = min(pause, remaining)
            time.sleep(pause)  # where a KeyboardInterrupt lands
            delay = min(delay * 2, 0.05)

    def poll(self) -> int | None:
        """The leader's exit code if it has ended (reaping it), else None."""
        return self.popen.poll()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole group (SIGTERM asks it to end; the sentinel stays)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def close(self) -> int:
        """Kill the whole group, finished or not, reap the leader and let go of the
        tether; the leader's exit code. Calling it again does no harm."""
        # Unreaped, the leader's pid cannot be reused; reaped, the sentinel still holds
        # the group until the tether is let go.
        if self.popen.returncode is None or self._tether >= 0:
            self.kill()
        code = self.popen.wait()
        if self._tether >= 0:
            os.close(self._tether)
            self._tether = -1
        return code

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start(
    argv: Sequence[str],
    *,
    pass_fds: Sequence[int] = (),
    die_with_parent: bool = True,
    **options: Any,
) -> Child:
    """Start ``argv`` as the leader of a new session and process group; with
    ``die_with_parent`` (the rule), tethered to this process. ``options`` are
    ``subprocess.Popen``'s (``cwd``, ``env``, ``stdin``, ``stdout``, ``stderr``), bytes
    mode. Raises OSError if it cannot start (tethered, a missing program is the
    shell's exit 127 instead)."""
    read, write = os.pipe() if die_with_parent and os.access(BASH, os.X_OK) else (-1, -1)
    command = list(argv)
    fds = tuple(pass_fds)
    if read >= 0:
        closes = "".join(f" exec {fd}<&- ;" for fd in fds)
        sentinel = _SENTINEL.format(fd=read, closes=closes)
        command = [BASH, "-c", sentinel, "accord", *command]
        fds = (*fds, read)
    try:
        popen: subprocess.Popen[bytes] = subprocess.Popen(
            command, start_new_session=True, pass_fds=fds, **options
        )
    except BaseException:
        if write >= 0:
            os.close(write)
        raise
    finally:
        if read >= 0:
            os.close(read)  # only the child's sentinel keeps the read end
    return Child(popen, write)


def end(children: Collection[Child], grace: float | None) -> bool:
    """End several groups: SIGTERM to each, up to ``grace`` seconds for their leaders
    to exit, then kill what is left and reap them all (``grace`` None: kill at once).
    False if Ctrl+C cut the grace short."""
    patient = True
    if grace is not None:
        for child in children:
            child.kill(signal.SIGTERM)
        deadline = time.monotonic() + grace
        try:
            while time.monotonic() < deadline and any(c.poll() is None for c in children):
                time.sleep(0.05)
        except KeyboardInterrupt:
            patient = False
    for child in children:
        child.close()
    return patient


class Capture:
    """Reads a pipe to its end from a thread, keeping the first ``head`` and the last
    ``tail`` bytes and counting all of it: a process printing gigabytes costs a few
    kilobytes."""

    def __init__(self, pipe: IO[bytes], head: int, tail: int) -> None:
        self.head_limit = head
        self.tail_limit = tail
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe: IO[bytes]) -> None:
        with pipe:
            while chunk := pipe.read(_CHUNK):
                self.total += len(chunk)
                room = self.head_limit - len(self._head)
                if room > 0:
                    self._head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self._tail += chunk
                    if len(self._tail) > 2 * self.tail_limit:
                        del self._tail[: len(self._tail) - self.tail_limit]

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the pipe's end: only a process that escaped the
        group can hold it open once the group is killed."""
        self._thread.join(timeout)

    @property
    def held(self) -> int:
        """Bytes held in memory now (at most ``head + 2 * tail`` plus one read)."""
        return len(self._head) + len(self._tail)

    @property
    def head(self) -> bytes:
        return bytes(self._head)

    @property
    def tail(self) -> bytes:
        """The last ``tail`` bytes that did not fit in the head."""
        return bytes(self._tail[-self.tail_limit :]) if self.tail_limit else b""

    @property
    def cut(self) -> int:
        """How many bytes from the middle were not kept."""
        return self.total - len(self._head) - len(self.tail)


def become_subreaper() -> None:
    """Have orphans of our descendants reparented to us rather than to init, so that
    :func:`reap_orphans` can end them (Linux; elsewhere it does nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(36, 1, 0, 0, 0)  # CHILD_SUBREAPER


def reap_orphans(keep: Collection[int]) -> None:
    """Kill the group of each child of ours not in ``keep`` (our own children): as a
    subreaper, those are what dead descendants left behind. Then reap what has ended."""
    me = os.getpid()
    strays: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in keep:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) != me:
            continue
        pid = int(entry.name)
        strays.append(pid)
        if fields[0] != "Z":
            try:
                if int(fields[2]) == os.getpgrp():  # never our own group: just the stray
                    raise PermissionError
                os.killpg(int(fields[2]), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    for pid in strays:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


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
