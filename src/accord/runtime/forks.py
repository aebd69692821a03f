"""A fork server: members started by forking a process that imported them already.

An idle member process is mostly the interpreter and its imports (pydantic and
accord's settings models above all): started fresh, each member pays for them again,
about 25 MB of PSS. Forked from one process that imported them once and moved its
objects out of the collector's reach (``gc.freeze``, so no collection dirties their
pages), the members share those pages copy-on-write. ``[run] fork_members = true``.

Isolation is unchanged. Every member is still a process of its own, so a crash takes
no other member with it, whatever team; it leads a session and process group of its
own, tethered to the supervisor by a sentinel of its own (``accord.process``); and the
supervisor, a child subreaper, adopts it, so it waits for it, kills its group and
reaps it like any child it started itself. How it goes:

1. the supervisor sends the server a request over a Unix socket: the command line,
   environment and folder, with descriptors for the log, the secrets pipe and the
   tether's read end (``SCM_RIGHTS``); the write end of the tether stays with it;
2. the server forks a go-between, which forks the member and exits at once, so the
   member is reparented to the supervisor; the server answers with the member's pid
   once the go-between is gone;
3. the member makes its session, starts its sentinel, takes its descriptors,
   environment and folder, and runs ``accord`` as ``python -m accord`` would.

The server holds no thread, no store and no secret: it is started with the
supervisor's environment without secrets, and is tethered to the supervisor like a
member.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from accord import process
from accord.credentials import FD_VARIABLE

#: What a member imports by the time it is idle (see bench/idle.py).
PRELOAD = (
    "pydantic",
    "accord.config",
    "accord.cli",
    "accord.cli.run",
    "accord.store.sqlite",
    "accord.team",
    "accord.team.wake",
    "accord.team.hooks",
    "accord.team.runs",
    "accord.team.worktrees",
    "accord.agent.loop",
    "accord.agent.lead",
    "accord.agent.launch",
    "accord.agent.mcp",
    "accord.llm.scripted",
    "concurrent.futures",
    "logging",
)
REPLY_SECONDS = 30.0  # for the server to answer a request


class ForkServer:
    """The supervisor's end: starts members through a server process of its own."""

    def __init__(self, python: str, cwd: Path, env: Mapping[str, str], log: Path) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with open(log, "ab") as out:
                self.child = process.start(
                    [python, "-m", "accord.runtime.forks", str(theirs.fileno())],
                    cwd=cwd,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(theirs.fileno(),),
                )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self._sock = mine
        self._sock.settimeout(REPLY_SECONDS)

    @property
    def pid(self) -> int:
        return self.child.pid

    def start(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: int,
        secrets: int | None = None,
    ) -> process.Child:
        """Start ``accord *argv`` as a member would be started by ``process.start``:
        output to descriptor ``log``, the secrets pipe ``secrets`` named in its
        environment. Raises OSError when the server cannot."""
        read, write = os.pipe()  # the tether: only this process holds the write end
        try:
            request = {"argv": list(argv), "cwd": str(cwd), "env": dict(env)}
            fds = [log, read] if secrets is None else [log, read, secrets]
            socket.send_fds(self._sock, [json.dumps(request).encode()], fds)
            answer = self._sock.recv(4096)
        except BaseException:
            os.close(write)
            raise
        finally:
            os.close(read)
        reply = json.loads(answer) if answer else {"error": "the fork server is gone"}
        if "pid" not in reply:
            os.close(write)
            raise OSError(f"the fork server could not start a member: {reply.get('error')}")
        return process.Child(Adopted(int(reply["pid"])), write)

    def alive(self) -> bool:
        return self.child.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        self.child.close()


class Adopted(subprocess.Popen[bytes]):
    """A process this one did not start but adopted (a subreaper's orphan), as the
    ``subprocess.Popen`` that ``process.Child`` holds: its pid, exit code, and reaping."""

    def __init__(self, pid: int) -> None:  # no Popen.__init__: nothing is started here
        self.pid = pid
        self.args = []
        self.returncode = None
        self.stdin = self.stdout = self.stderr = None
        self._child_created = False  # Popen.__del__ leaves it alone

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._reap(0)
        assert self.returncode is not None
        return self.returncode

    def _reap(self, flags: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:
            self.returncode = -signal.SIGKILL  # reaped elsewhere: gone, code unknown
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


# the server's end ------------------------------------------------------------------


def serve(fd: int) -> None:
    """Import what members use, then start one member per request until the supervisor
    closes its end."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.collect()
    gc.freeze()  # no collection touches these objects' pages again: they stay shared
    sock = socket.socket(fileno=fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
        except OSError:
            return
        if not message:
            return
        try:
            reply: dict[str, Any] = {"pid": _fork(json.loads(message), fds, sock)}
        except (OSError, ValueError, KeyError) as e:
            reply = {"error": str(e)}
        finally:
            for f in fds:
                with contextlib.suppress(OSError):
                    os.close(f)
        try:
            sock.send(json.dumps(reply).encode())
        except OSError:
            return


def _fork(request: dict[str, Any], fds: list[int], sock: socket.socket) -> int:
    if len(fds) < 2:
        raise ValueError("a request needs the log and the tether")
    read, write = os.pipe()
    between = os.fork()
    if between == 0:  # the go-between: fork the member, tell its pid, and go
        code = 1
        try:
            os.close(read)
            member = os.fork()
            if member == 0:
                os.close(write)
                _become(request, fds, sock)  # never returns
            os.write(write, str(member).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        told = pipe.read()
    os.waitpid(between, 0)  # gone: the member is the supervisor's child now
    if not told:
        raise OSError("the member could not be forked")
    return int(told)


def _become(request: dict[str, Any], fds: list[int], sock: socket.socket) -> None:
    """Turn this forked process into the member ``request`` describes; never returns."""
    code = 1
    try:
        sock.close()
        os.setsid()
        log, tether = fds[0], fds[1]
        secrets = fds[2] if len(fds) > 2 else None
        _sentinel(tether, keep=(log, secrets))
        os.close(tether)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        env = dict(request["env"])
        if secrets is not None:
            os.set_inheritable(secrets, False)
            env[FD_VARIABLE] = str(secrets)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(env)
        argv = list(request["argv"])
        sys.argv = ["accord", *argv]
        _name_process(argv)
        gc.unfreeze()
        try:
            runpy.run_module("accord", run_name="__main__", alter_sys=True)  # python -m accord
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - said in the log, then the exit code says so
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _name_process(argv: list[str]) -> None:
    """Name the process after its member (``accord alice`` in ``top`` and ``ps -o comm``):
    its command line is still the server's, which every member forked from it shares."""
    member = argv[argv.index("--member") + 1] if "--member" in argv[:-1] else "member"
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, f"accord {member}".encode()[:15], 0, 0, 0)  # PR_SET_NAME


def _sentinel(tether: int, keep: tuple[int | None, ...]) -> None:
    """Start the member's sentinel in its group: it kills the group once the tether's
    write end (the supervisor's) closes, however the supervisor ends (``accord.process``)."""
    pid = os.fork()
    if pid != 0:
        return
    try:
        for f in keep:
            if f is not None:
                os.close(f)
        null = os.open(os.devnull, os.O_RDWR)
        for n in (0, 1, 2):
            os.dup2(null, n)
        os.set_inheritable(tether, True)
        os.execv(
            process.BASH,
            [process.BASH, "-c", f"trap '' TERM INT HUP ; read -r -u {tether} _ ; kill -KILL 0"],
        )
    finally:
        os._exit(127)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
