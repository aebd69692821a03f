"""The ``bash`` tool: a shell command in the member's workspace, bounded in time and output.

The command runs as ``/bin/bash -c`` in a process group of its own, with stdin
from /dev/null. When it ends, or when its timeout passes, the whole group is
killed, so nothing it started in the background outlives it holding the
output pipe; and the group is tethered (``accord.tether``), so it dies too if
the member is killed first. Output (stdout and stderr interleaved) is read through a bounded
reader that keeps only the head and the tail: a command printing gigabytes
costs a few kilobytes of memory, and the model is told how much was cut.

The environment is the agent's own plus ``ToolContext.env`` (``ACCORD_MEMBER``,
``ACCORD_TEAM``), minus every API key, member token, secret and cloud credential
(``accord.credentials``), and with a store URL's password taken out. A command
cannot act as the member through the ``accord`` CLI: the agent acts through its
own tools.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from pydantic import Field

from accord.agent.tools.base import RESULT_LIMIT, Tool, ToolArgs, ToolContext, cap
from accord.credentials import is_secret as is_secret  # re-exported for callers
from accord.credentials import scrubbed
from accord.errors import UserError
from accord.tether import Tether

# Room for the status line so Toolbox's own cap never cuts our output a second time.
OUTPUT_LIMIT = RESULT_LIMIT - 1000
_CHUNK = 65536


def command_env(
    ctx_env: Mapping[str, str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a command gets: ``base`` (os.environ) and ``ctx_env`` without
    secrets (keys, tokens, a store URL's password)."""
    source = os.environ if base is None else base
    return scrubbed({**source, **ctx_env})


class _HeadTail:
    """Keeps the first ``head`` and the last ``tail`` bytes of a pipe, counting all of it."""

    def __init__(self, pipe: IO[bytes], head: int, tail: int) -> None:
        self.head_limit = head
        self.tail_limit = tail
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe: IO[bytes]) -> None:
        with pipe:
            while chunk := pipe.read(_CHUNK):
                self.total += len(chunk)
                room = self.head_limit - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail += chunk
                    if len(self.tail) > 2 * self.tail_limit:
                        del self.tail[: len(self.tail) - self.tail_limit]

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        tail = bytes(self.tail[-self.tail_limit :]) if self.tail_limit else b""
        cut = self.total - len(self.head) - len(tail)
        if cut <= 0:
            # Everything is here; cap() still guards the character count.
            whole = bytes(self.head) + bytes(self.tail)
            return cap(whole.decode("utf-8", "replace"), OUTPUT_LIMIT)
        head_text = bytes(self.head).decode("utf-8", "replace")
        tail_text = tail.decode("utf-8", "replace")
        return (
            f"{head_text}\n[... {cut} bytes cut from the middle of {self.total} bytes of "
            f"output ...]\n{tail_text}"
        )


class BashArgs(ToolArgs):
    command: str = Field(min_length=1, description="The bash command (or script) to run.")
    timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds to allow before the command and everything it started are "
        "killed. Capped by your configured limit, which is also the default.",
    )


def bash(ctx: ToolContext, args: BashArgs) -> str:
    limit = ctx.bash_timeout if args.timeout is None else min(args.timeout, ctx.bash_timeout)
    if not ctx.workspace.is_dir():
        raise UserError(f"the workspace {ctx.workspace} is not a folder; cannot run commands")
    started = time.monotonic()
    # Tethered: if this process dies (kill -9 of the supervisor), the group dies too.
    with Tether() as tether:
        proc = subprocess.Popen(
            tether.argv(["/bin/bash", "-c", args.command]),
            cwd=ctx.workspace,
            env=command_env(ctx.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
            pass_fds=tether.pass_fds,
        )
        tether.started()
        assert proc.stdout is not None
        head = OUTPUT_LIMIT * 2 // 3
        reader = _HeadTail(proc.stdout, head, OUTPUT_LIMIT - head)
        try:
            timed_out = not _wait_unreaped(proc.pid, limit)
        finally:
            # Kill the whole group, finished or not: background children must not outlive
            # the command holding our pipe (and the model cannot see them anyway). bash is
            # not reaped yet, so its pid, the group's id, cannot have been reused.
            _kill_group(proc.pid)
            proc.wait()
    # Only a process that escaped the group (setsid) can still hold the pipe open.
    reader.join(5.0)
    seconds = time.monotonic() - started
    output = reader.text()
    if timed_out:
        status = (
            f"[timed out after {limit:g}s: the command and every process it started were killed]"
        )
    elif proc.returncode < 0:
        status = f"[killed by signal {-proc.returncode} after {seconds:.1f}s]"
    else:
        status = f"[exit code {proc.returncode}]"
    if not output.strip():
        return f"{status}\n(no output)"
    return f"{status}\n{output}"


def _wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``pid`` to exit, leaving it unreaped; True if it did."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


SHELL_TOOLS: list[Tool[Any]] = [
    Tool(
        "bash",
        "Run a bash command in your workspace and get its exit code and output (stdout and "
        "stderr together; long output is cut in the middle). stdin is empty; anything left "
        "running in the background is killed when the command ends or times out. API keys "
        "and your member token are not in the environment: act on the board, mail and "
        "memory through your own tools, not the `accord` CLI.",
        BashArgs,
        bash,
    ),
]


def die_with_parent() -> None:
    """In a child before exec (Linux): SIGKILL it when the process that started it dies,
    however that process dies. Agents use it for commands; the supervisor for members."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass
