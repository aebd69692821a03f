"""Hooks: the project's own commands, run at TaskCreated, TaskCompleted and TeammateIdle.

A hook gets a JSON payload on stdin with the field names Claude Code uses.
Exit 0 allows the action; exit 2 blocks it and its stderr is the feedback;
any other exit is logged and does not block. A hook may also answer as Claude
Code's do, with JSON on stdout: ``{"decision": "block", "reason": ...}`` blocks
like exit 2, and ``{"continue": false, "stopReason": ...}`` asks the teammate to
stop (TaskCompleted, TeammateIdle; TaskCreated ignores it, as Claude Code does).

A hook that outlives its timeout has its whole process group killed and blocks,
unless configured with ``on_timeout = "allow"``; its stdin payload is written
with that timeout already running, so a hook that never reads it cannot hang
anything. A hook that cannot run at all (exit 126: not executable, 127: program
missing, or no such file) is an error, never a silent pass: it is logged as a
``hook_broken`` event, printed to stderr, and blocks unless ``on_broken =
"warn"`` (by default it blocks TaskCompleted and warns for the others).

Output is read through bounded buffers, so a hook that prints megabytes costs
memory in proportion to the limit, not to the output, and what is kept has its
terminal control characters taken out before anyone sees it. A hook's
environment holds no model key, member token or store password
(``accord.credentials``), and it runs in a process group tethered to the process
that runs it (``accord.process``): nothing it starts outlives that process.

Hooks run inside the bubblewrap sandbox (``accord.sandbox``) whenever it can run:
the folder they run in is writable, the rest of the project read-only, the store
and accord's own files out of reach (so a hook cannot call the ``accord`` CLI on
the store either). Where bubblewrap cannot run, a teammate's hook (``for_teammate``,
set by the member's own process) is refused under ``[sandbox] required = true``,
as a hook that cannot run; the person's hooks, run by the person's commands, run
unsandboxed after one warning and a ``sandbox_unavailable`` event.

Hooks come only from accord.toml and from Claude Code's ``.claude/settings.json``
and ``.claude/settings.local.json`` (run after accord.toml's, in that order),
files no agent tool may write: nothing from a task, a message or a model ever
becomes a command here. Every run is written to the team's event log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from accord import process
from accord.claude import claude_settings
from accord.config import HookCommand, HooksConfig, SandboxConfig
from accord.credentials import scrubbed
from accord.errors import ConfigError
from accord.events import EventKind
from accord.process import Capture
from accord.sandbox import Sandbox
from accord.text import strip_control
from accord.types import HookEvent, MemberRole, MessageKind, OutgoingMessage

if TYPE_CHECKING:
    from accord.store.base import Store

# Exit codes of a shell that could not run the program.
_BROKEN_EXITS = {126: "not executable", 127: "program not found"}


@dataclass(frozen=True, slots=True)
class Hook:
    """One configured hook command, from accord.toml or a Claude Code settings file."""

    command: str | list[str]
    source: str
    timeout: float | None = None
    on_timeout: Literal["block", "allow"] = "block"
    on_broken: Literal["block", "warn"] | None = None

    @classmethod
    def from_config(cls, hook: HookCommand) -> Hook:
        return cls(hook.command, "accord.toml", hook.timeout, hook.on_timeout, hook.on_broken)


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
    source: str = "accord.toml"
    stop: str | None = None  # a Claude Code ``continue: false``: why the teammate should stop


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """The verdict of every hook for one event: blocked, with the blocking feedback;
    ``stop`` when a hook asked the teammate to stop (``continue: false``)."""

    blocked: bool
    feedback: str
    runs: tuple[HookRun, ...]
    stop: str | None = None


def _tail_text(output: Capture, timeout: float) -> str:
    """The last bytes a hook printed, saying how many came before."""
    output.join(timeout)
    text = output.tail.decode("utf-8", "replace")
    if output.cut > 0:
        text = f"[{output.cut} earlier bytes cut]\n" + text
    return text


class HookRunner:
    """Runs the configured hooks of one team and logs every run."""

    def __init__(
        self,
        config: HooksConfig,
        store: Store,
        team: str,
        cwd: Path,
        sandbox: SandboxConfig | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.team = team
        self.cwd = cwd
        self.sandbox = sandbox if sandbox is not None else SandboxConfig()
        # Set by a member's process: its hooks are a teammate's, refused without a sandbox
        # when one is required. The person's commands leave it False: never refused.
        self.for_teammate = False
        # Where hooks run when a run names no folder: a member's own worktree, set by its
        # process, so that no hook it runs writes the person's checkout. The settings
        # files are still read from the project's root (``cwd``), never from a worktree.
        self.workdir: Path | None = None
        self._claude: dict[HookEvent, list[Hook]] | None = None
        # The latest verdict whole: the board keeps only whether it blocked, and a member's
        # tool must tell its model about a hook that could not run and was skipped.
        self.last: HookOutcome | None = None

    def hooks(self, event: HookEvent) -> list[Hook]:
        """Every hook for ``event``: accord.toml's, then Claude Code's settings files'."""
        if self._claude is None:
            self._claude = claude_hooks(self.cwd)
        own = [Hook.from_config(h) for h in self.config.commands(event)]
        return own + self._claude.get(event, [])

    def configured(self, event: HookEvent) -> bool:
        return bool(self.hooks(event))

    def run(
        self,
        event: HookEvent,
        fields: dict[str, Any],
        actor: str | None,
        *,
        cwd: Path | None = None,
    ) -> HookOutcome:
        """Run every hook for ``event`` in order; the first that blocks stops the rest.

        ``cwd`` is where they run (default: the member's worktree in a member's process
        when isolated, else the project's root); the merge gate runs the TaskCompleted
        hooks in a scratch tree of the merged result.
        """
        where = cwd or self.workdir or self.cwd
        payload = {
            "hook_event_name": event.value,
            "team_name": self.team,
            "cwd": str(where),
            "session_id": f"{self.team}:{actor or 'person'}",
            "permission_mode": "default",
        }
        payload.update(fields)
        runs: list[HookRun] = []
        stop: str | None = None
        for hook in self.hooks(event):
            run = self._run_one(event, hook, payload, where, actor)
            runs.append(run)
            self.store.append_event(
                self.team,
                EventKind.HOOK_RUN,
                {
                    "event": run.event,
                    "command": run.command,
                    "source": run.source,
                    "exit_code": run.exit_code,
                    "timed_out": run.timed_out,
                    "seconds": round(run.seconds, 3),
                    "blocked": run.blocked,
                    "output_bytes": run.output_bytes,
                    "stderr": run.stderr[-2000:],
                    "error": run.error,
                    "stop": run.stop,
                    "task_id": fields.get("task_id"),
                    "teammate_name": fields.get("teammate_name"),
                },
                actor,
            )
            if run.error is not None:
                self._report_broken(run, fields, actor)
            stop = stop or run.stop
            if run.blocked:
                break
        last = runs[-1] if runs else None
        blocked = last is not None and last.blocked
        if stop is not None and actor is not None:
            self._ask_to_stop(event, actor, stop)
        self.last = HookOutcome(
            blocked, _feedback(last) if last and blocked else "", tuple(runs), stop
        )
        return self.last

    def _ask_to_stop(self, event: HookEvent, member: str, reason: str) -> None:
        """Claude Code's ``continue: false``: the teammate stops, here through the same
        shutdown request the lead would send (whose inbox gets the answer), so it
        leaves its work in order."""
        members = self.store.list_members(self.team)
        if member not in {m.name for m in members}:
            return  # not a member (a person, a removed member): nobody to stop
        leads = [m.name for m in members if m.role == MemberRole.LEAD]
        self.store.send_message(
            self.team,
            OutgoingMessage(
                sender=leads[0] if leads else member,
                recipient=member,
                body=f"the {event.value} hook asks you to stop: {reason}",
                kind=MessageKind.SHUTDOWN_REQUEST,
            ),
        )

    def _report_broken(self, run: HookRun, fields: dict[str, Any], actor: str | None) -> None:
        self.store.append_event(
            self.team,
            EventKind.HOOK_BROKEN,
            {
                "event": run.event,
                "command": run.command,
                "source": run.source,
                "error": run.error,
                "blocked": run.blocked,
                "task_id": fields.get("task_id"),
            },
            actor,
        )
        if run.blocked:
            return  # the refusal says it: the CLI's error line, the member's tool result
        # The person running a command sees this on stderr; a member, in its log.
        sys.stderr.write(
            f"warning: the {run.event} hook `{run.command}` ({run.source}) cannot run: "
            f'{run.error}; it did not block (on_broken = "warn")\n'
        )

    def _run_one(
        self,
        event: HookEvent,
        hook: Hook,
        payload: dict[str, Any],
        cwd: Path,
        actor: str | None = None,
    ) -> HookRun:
        shown = strip_control(
            hook.command if isinstance(hook.command, str) else " ".join(hook.command)
        )
        argv = ["/bin/sh", "-c", hook.command] if isinstance(hook.command, str) else hook.command
        timeout = hook.timeout or self.config.timeout
        limit = self.config.output_limit
        broken_blocks = (
            hook.on_broken
            or self.config.on_broken
            or ("block" if event == HookEvent.TASK_COMPLETED else "warn")
        ) == "block"
        env = scrubbed(os.environ)
        env["ACCORD_TEAM"] = self.team
        env["ACCORD_HOOK_EVENT"] = event.value
        env["CLAUDE_PROJECT_DIR"] = str(cwd)
        started = time.monotonic()
        argv, env, refusal = self._walled(
            argv, cwd, env, shell=isinstance(hook.command, str), actor=actor
        )
        if refusal is not None:  # no sandbox where one is required: it cannot run
            why = refusal
            return HookRun(
                event.value, shown, None, False, 0.0, "", why, 0, broken_blocks, why, hook.source
            )
        try:
            child = process.start(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
            )
        except OSError as e:
            why = f"cannot start: {e.strerror or e}"
            return HookRun(
                event.value,
                shown,
                None,
                False,
                0.0,
                "",
                why,
                0,
                broken_blocks,
                why,
                hook.source,
            )
        with child:
            popen = child.popen
            assert popen.stdin and popen.stdout and popen.stderr
            out, err = Capture(popen.stdout, 0, limit), Capture(popen.stderr, 0, limit)
            # Written by a thread, so the timeout holds however big the payload is and
            # whether or not the hook ever reads it.
            writer = threading.Thread(
                target=_write_all, args=(popen.stdin, json.dumps(payload).encode()), daemon=True
            )
            writer.start()
            timed_out = not child.wait(timeout)
            # Kill the whole group: a hook's children must not outlive it holding our pipes.
            returncode = child.close()
        writer.join(2.0)
        seconds = time.monotonic() - started
        stdout, stderr = strip_control(_tail_text(out, 2.0)), strip_control(_tail_text(err, 2.0))
        code = None if timed_out else returncode
        error: str | None = None
        stop: str | None = None
        if timed_out:
            blocked = hook.on_timeout == "block"
            stderr = (stderr.rstrip("\n") + "\n" if stderr.strip() else "") + (
                f"hook timed out after {timeout:g}s and was killed"
            )
        elif code in _BROKEN_EXITS:
            blocked = broken_blocks
            error = f"exit {code}: {_BROKEN_EXITS[code]}" + (
                f" ({stderr.strip().splitlines()[-1]})" if stderr.strip() else ""
            )
        else:
            blocked = code == 2
            answer = _json_answer(stdout) if code == 0 else {}
            if answer.get("decision") == "block":
                blocked = True
                reason = answer.get("reason")
                stderr = str(reason) if reason else stderr
            if answer.get("continue") is False and event != HookEvent.TASK_CREATED:
                reason = answer.get("stopReason")
                stop = str(reason) if reason else f"the {event.value} hook asked to stop"
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
            error,
            hook.source,
            stop,
        )

    def _walled(
        self, argv: list[str], cwd: Path, env: dict[str, str], *, shell: bool, actor: str | None
    ) -> tuple[list[str], dict[str, str], str | None]:
        """The hook's command in the sandbox writing ``cwd``, or as it is where bubblewrap
        cannot run; and why it may not run at all (a teammate's hook, sandbox required)."""
        wall = Sandbox.for_project(
            self.cwd, cwd, self.store.location, self.sandbox, teammate=self.for_teammate
        )
        # A program run through a shell inside, so one that is missing or not executable
        # still says so as exit 127 or 126, not as bwrap's own failure to exec it.
        inner = argv if shell else ["/bin/sh", "-c", 'exec "$0" "$@"', *argv]
        wrapped = wall.wrap(inner, cwd, env)
        if wrapped.warning is not None:
            sys.stderr.write(f"warning: {wrapped.warning}\n")
            self.store.append_event(
                self.team,
                EventKind.SANDBOX_UNAVAILABLE,
                {"what": "hook", "member": actor, "reason": wrapped.warning},
                actor,
            )
        return (wrapped.argv if wrapped.sandboxed else argv), wrapped.env, wrapped.refusal


def claude_hooks(root: Path) -> dict[HookEvent, list[Hook]]:
    """The TaskCreated, TaskCompleted and TeammateIdle hooks of Claude Code's settings
    files under ``root``, in Claude Code's shape::

        {"hooks": {"TaskCompleted": [{"matcher": "", "hooks":
            [{"type": "command", "command": "npm test", "timeout": 60}]}]}}

    These events take no matcher (Claude Code runs them on every occurrence), so
    one is ignored. Other events and hook types are not accord's to run.
    """
    found: dict[HookEvent, list[Hook]] = {}
    for name, path, settings in claude_settings(root):
        hooks = settings.get("hooks") if isinstance(settings, dict) else None
        if hooks is None:
            continue
        if not isinstance(hooks, dict):
            raise ConfigError(f"{path}: hooks must be an object of events; fix it")
        for event in HookEvent:
            groups = hooks.get(event.value, [])
            if not isinstance(groups, list):
                raise ConfigError(f"{path}: hooks.{event.value} must be a list; fix it")
            for group in groups:
                entries = group.get("hooks") if isinstance(group, dict) else None
                if not isinstance(entries, list):
                    raise ConfigError(
                        f'{path}: each hooks.{event.value} entry needs a "hooks" list; fix it'
                    )
                for entry in entries:
                    hook = _claude_hook(entry, path, name, event)
                    if hook is not None:
                        found.setdefault(event, []).append(hook)
    return found


def _claude_hook(entry: Any, path: Path, name: str, event: HookEvent) -> Hook | None:
    if not isinstance(entry, dict) or entry.get("type", "command") != "command":
        return None  # prompt and agent hooks are Claude Code's own
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"{path}: a hooks.{event.value} command must be a non-empty string")
    timeout = entry.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ConfigError(f"{path}: hooks.{event.value} timeout must be a positive number")
    # As in Claude Code, a timed-out hook is an error that does not block.
    return Hook(command, name, float(timeout) if timeout else None, "allow")


def _write_all(pipe: IO[bytes], data: bytes) -> None:
    try:
        with pipe:
            pipe.write(data)
    except (BrokenPipeError, ValueError, OSError):
        pass  # a hook that does not read its payload is fine


def _json_answer(stdout: str) -> dict[str, Any]:
    """Claude Code's JSON answer on stdout, if that is what the hook printed."""
    text = stdout.strip()
    if not text.startswith("{"):
        return {}
    try:
        answer = json.loads(text)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _feedback(run: HookRun) -> str:
    if run.error is not None:
        detail = run.stderr.strip()
        return (
            f"the {run.event} hook `{run.command}` ({run.source}) cannot run: {run.error}"
            + (f"\n{detail}" if detail and detail not in run.error else "")
            + '\nfix the hook (or set on_broken = "warn" in accord.toml)'
        )
    text = run.stderr.strip() or run.stdout.strip()
    return text or f"the {run.event} hook `{run.command}` exited {run.exit_code} with no output"
