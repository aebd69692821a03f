"""A tether: a command's whole process group dies with the process that started it.

A tool command or hook runs in a process group of its own, and its starter
kills that group when the command ends. But if the starter is killed
(``kill -9`` of the supervisor takes its members down with it), a background
grandchild such as ``sleep 300 &`` would be left to init. So the command is
started under a few lines of bash that first leave a sentinel in the group: a
subshell blocked reading a pipe whose only writer is the starter. When the
starter dies, however it dies, the kernel closes that pipe, the read returns,
and the sentinel kills the group, itself included.

This needs no privilege and no namespace support. A process that leaves the
group on purpose (``setsid``) escapes it; the sandbox is the wall for those.
Without ``/bin/bash`` the command runs untethered (its own group is still
killed when it ends).

Usage::

    with Tether() as tether:
        proc = subprocess.Popen(tether.argv(argv), pass_fds=tether.pass_fds, ...)
        tether.started()
        ... wait for proc, kill its group ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType

BASH = "/bin/bash"
# The sentinel ignores the polite signals: a starter that asks the group to end with
# SIGTERM and waits a grace period may be killed meanwhile, and the group must still go.
_SENTINEL = (
    "( trap '' TERM INT HUP ; read -r -u {fd} _ ; kill -KILL 0 ) </dev/null >/dev/null 2>&1 &"
    '\nexec {fd}<&-\nexec "$@"'
)


class Tether:
    """A pipe from the starter to a sentinel in the command's process group."""

    def __init__(self) -> None:
        self.usable = os.access(BASH, os.X_OK)
        self._read, self._write = os.pipe() if self.usable else (-1, -1)

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self._read,) if self.usable else ()

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run under the sentinel (unchanged when bash is missing)."""
        if not self.usable:
            return list(argv)
        return [BASH, "-c", _SENTINEL.format(fd=self._read), "accord", *argv]

    def started(self) -> None:
        """Call once the child is started: only it keeps the read end."""
        if self._read >= 0:
            os.close(self._read)
            self._read = -1

    def close(self) -> None:
        self.started()
        if self._write >= 0:
            os.close(self._write)
            self._write = -1

    def __enter__(self) -> Tether:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
