"""The ``bash`` tool: a shell command in the member's workspace, bounded in time and output.

The command runs as ``/bin/bash -c`` in a process group of its own, with stdin
from /dev/null. When it ends, or when its timeout passes, the whole group is
killed, so nothing it started in the background outlives it holding the
output pipe; and the group dies too if the member is killed first (``accord.process``
has the one strategy against orphans). Output (stdout and stderr interleaved) is
read through a bounded reader that keeps only the head and the tail: a command
printing gigabytes costs a few kilobytes of memory, and the model is told how much
was cut. A stop while the command runs cuts it short (the agent raises
KeyboardInterrupt; the group is killed on the way out).

The environment is the agent's own plus ``ToolContext.env`` (``ACCORD_MEMBER``,
``ACCORD_TEAM``), minus every API key, member token, secret and cloud credential
(``accord.credentials``), and with a store URL's password taken out. A command
cannot act as the member through the ``accord`` CLI: the agent acts through its
own tools.

With ``ToolContext.sandbox`` (every member's), the command runs inside bubblewrap
(``accord.sandbox``): only the workspace is writable, the store and accord's own
files are out of reach, other processes are invisible, the network is off unless
allowed. Where bubblewrap cannot run, the sandbox's policy refuses the command
(a tool error naming the fix) or runs it unsandboxed after one warning, which also
goes to the team's log as a ``sandbox_unavailable`` event.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from accord import process
from accord.agent.tools.base import RESULT_LIMIT, Tool, ToolArgs, ToolContext, cap
from accord.credentials import is_secret as is_secret  # re-exported for callers
from accord.credentials import scrubbed
from accord.errors import UserError
from accord.events import EventKind
from accord.process import Capture

# Room for the status line so Toolbox's own cap never cuts our output a second time.
OUTPUT_LIMIT = RESULT_LIMIT - 1000


def command_env(
    ctx_env: Mapping[str, str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a command gets: ``base`` (os.environ) and ``ctx_env`` without
    secrets (keys, tokens, a store URL's password)."""
    source = os.environ if base is None else base
    return scrubbed({**source, **ctx_env})


def _text(output: Capture) -> str:
    """The output as the model sees it: whole, or its head and tail and how much was cut."""
    cut = output.cut
    if cut <= 0:
        # Everything is here; cap() still guards the character count.
        return cap((output.head + output.tail).decode("utf-8", "replace"), OUTPUT_LIMIT)
    return (
        f"{output.head.decode('utf-8', 'replace')}\n[... {cut} bytes cut from the middle of "
        f"{output.total} bytes of output ...]\n{output.tail.decode('utf-8', 'replace')}"
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
    argv, env = ["/bin/bash", "-c", args.command], command_env(ctx.env)
    if ctx.sandbox is not None:
        wrapped = ctx.sandbox.wrap(argv, ctx.workspace, env)
        argv, env = wrapped.argv, wrapped.env
        if wrapped.warning is not None:  # the first time: the member's log and the team's
            sys.stderr.write(f"warning: {wrapped.warning}\n")
            if ctx.team is not None:
                ctx.team.log.append_event(
                    EventKind.SANDBOX_UNAVAILABLE,
                    {"what": "bash", "member": ctx.member, "reason": wrapped.warning},
                    ctx.member,
                )
        if wrapped.refusal is not None:
            raise UserError(wrapped.refusal)
    started = time.monotonic()
    with process.start(
        argv,
        cwd=ctx.workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as child:
        assert child.popen.stdout is not None
        head = OUTPUT_LIMIT * 2 // 3
        output = Capture(child.popen.stdout, head, OUTPUT_LIMIT - head)
        # Leaving the block kills the whole group, finished or not: background children
        # must not outlive the command holding our pipe (the model cannot see them anyway).
        # A stop (KeyboardInterrupt) while it waits leaves the block too.
        timed_out = not child.wait(limit)
        code = child.close()
    output.join(5.0)  # only a process that escaped the group (setsid) holds it open now
    seconds = time.monotonic() - started
    text = _text(output)
    if timed_out:
        status = (
            f"[timed out after {limit:g}s: the command and every process it started were killed]"
        )
    elif code < 0:
        status = f"[killed by signal {-code} after {seconds:.1f}s]"
    else:
        status = f"[exit code {code}]"
    if not text.strip():
        return f"{status}\n(no output)"
    return f"{status}\n{text}"


SHELL_TOOLS: list[Tool[Any]] = [
    Tool(
        "bash",
        "Run a bash command in your workspace and get its exit code and output (stdout and "
        "stderr together; long output is cut in the middle). stdin is empty; anything left "
        "running in the background is killed when the command ends or times out. It runs in "
        "a sandbox: only your workspace (and /tmp, private to the command) is writable, the "
        "network is off unless your definition allows it, and the team's store is out of "
        "reach. Do not commit: your changes are committed and merged when you complete your "
        "task (task_complete). API keys and your member token are not in the environment: "
        "act on the board, mail and memory through your own tools, not the `accord` CLI.",
        BashArgs,
        bash,
    ),
]
