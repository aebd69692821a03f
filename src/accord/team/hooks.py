"""Hooks: the project's own commands, run at TaskCreated, TaskCompleted and TeammateIdle.

A hook gets a JSON payload on stdin with the field names Claude Code uses.
Exit 0 allows the action; exit 2 blocks it and its stderr is the feedback;
any other exit is logged and does not block. A hook that outlives its timeout
has its whole process group killed and blocks, unless configured with
``on_timeout = "allow"``. Output is read through bounded buffers, so a hook that
prints megabytes costs memory in proportion to the limit, not to the output.

Hooks come only from accord.toml: nothing from a task, a message or a model
ever becomes a command here. Every run is written to the team's event log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from accord.config import HookCommand, HooksConfig
from accord.store.base import Store
from accord.types import HookEvent

# Variables a hook never inherits: the member's secret and model keys.
_SCRUB = ("ACCORD_TOKEN",)


@dataclass(frozen=True, slots=True)
class HookRun:
    """What one hook command did."""

    event: str
    command: str
    exit_code: int | None
    timed_out: bool
    seconds: float
    stdout: str
    stderr: str
    output_bytes: int
    blocked: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """The verdict of every hook for one event: blocked, with the blocking feedback."""

    blocked: bool
    feedback: str
    runs: tuple[HookRun, ...]


class _Tail:
    """Keeps the last ``limit`` bytes read from a pipe, counting everything."""

    def __init__(self, pipe: IO[bytes], limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.total = 0
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe: IO[bytes]) -> None:
        with pipe:
            while chunk := pipe.read(65536):
                self.total += len(chunk)
                self.data += chunk
                if len(self.data) > 2 * self.limit:
                    del self.data[: len(self.data) - self.limit]

    def text(self, timeout: float) -> str:
        self._thread.join(timeout)
        kept = bytes(self.data[-self.limit :])
        text = kept.decode("utf-8", "replace")
        if self.total > len(kept):
            text = f"[{self.total - len(kept)} earlier bytes cut]\n" + text
        return text


class HookRunner:
    """Runs the configured hooks of one team and logs every run."""

    def __init__(self, config: HooksConfig, store: Store, team: str, cwd: Path) -> None:
        self.config = config
        self.store = store
        self.team = team
        self.cwd = cwd

    def configured(self, event: HookEvent) -> bool:
        return bool(self.config.commands(event))

    def run(self, event: HookEvent, fields: dict[str, Any], actor: str | None) -> HookOutcome:
        """Run every hook for ``event`` in order; the first that blocks stops the rest."""
        payload = {"hook_event_name": event.value, "team_name": self.team, "cwd": str(self.cwd)}
        payload.update(fields)
        runs: list[HookRun] = []
        for hook in self.config.commands(event):
            run = self._run_one(event, hook, payload)
            runs.append(run)
            self.store.append_event(
                self.team,
                "hook_run",
                {
                    "event": run.event,
                    "command": run.command,
                    "exit_code": run.exit_code,
                    "timed_out": run.timed_out,
                    "seconds": round(run.seconds, 3),
                    "blocked": run.blocked,
                    "output_bytes": run.output_bytes,
                    "stderr": run.stderr[-2000:],
                    "error": run.error,
                    "task_id": fields.get("task_id"),
                    "teammate_name": fields.get("teammate_name"),
                },
                actor,
            )
            if run.blocked:
                return HookOutcome(True, _feedback(run), tuple(runs))
        return HookOutcome(False, "", tuple(runs))

    def _run_one(self, event: HookEvent, hook: HookCommand, payload: dict[str, Any]) -> HookRun:
        shown = hook.command if isinstance(hook.command, str) else " ".join(hook.command)
        argv = ["/bin/sh", "-c", hook.command] if isinstance(hook.command, str) else hook.command
        timeout = hook.timeout or self.config.timeout
        limit = self.config.output_limit
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env["ACCORD_TEAM"] = self.team
        env["ACCORD_HOOK_EVENT"] = event.value
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            return HookRun(
                event.value, shown, None, False, 0.0, "", "", 0, False, f"cannot start: {e}"
            )
        assert proc.stdin and proc.stdout and proc.stderr
        out, err = _Tail(proc.stdout, limit), _Tail(proc.stderr, limit)
        try:
            proc.stdin.write(json.dumps(payload).encode())
        except BrokenPipeError:
            pass  # a hook that does not read its payload is fine
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        # Kill the whole group: a hook's children must not outlive it holding our pipes.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        seconds = time.monotonic() - started
        stdout, stderr = out.text(2.0), err.text(2.0)
        code = None if timed_out else proc.returncode
        if timed_out:
            blocked = hook.on_timeout == "block"
            stderr = (stderr.rstrip("\n") + "\n" if stderr.strip() else "") + (
                f"hook timed out after {timeout:g}s and was killed"
            )
        else:
            blocked = code == 2
        return HookRun(
            event.value,
            shown,
            code,
            timed_out,
            seconds,
            stdout,
            stderr,
            out.total + err.total,
            blocked,
        )


def _feedback(run: HookRun) -> str:
    text = run.stderr.strip() or run.stdout.strip()
    return text or f"the {run.event} hook `{run.command}` exited {run.exit_code} with no output"
