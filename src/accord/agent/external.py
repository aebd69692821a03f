"""Any coding agent as a teammate: ``runtime: command`` in an agent definition.

The definition names a program instead of a model::

    ---
    name: claude-coder
    runtime: command
    command: claude -p --mcp-config {mcp} --output-format json --permission-mode acceptEdits
    ---
    You write careful, tested Python.

The supervisor starts the member as ever (``accord agent``, heartbeats, restarts,
stop, no orphans); its runtime is then an ``ExternalAgent``. For each piece of work
(a ready task it may take, or mail that waited) it starts the program once, in the
member's workspace, with:

- a prompt: the definition's instructions, the member's identity, and the task (or
  the mail) with the steps to take through accord's tools; on stdin, or where the
  command line says ``{prompt}`` or ``{prompt_file}``;
- ``{mcp}``: a private MCP configuration (Claude Code's ``.mcp.json`` format) naming
  accord's MCP server for this member (``accord mcp --team T --as NAME``) with the
  member's token in a private file, so the program claims, messages and completes
  through the server, and completion goes through the merge gate and the hooks.
  Codex takes no configuration file: ``{codex_mcp}`` stands for the same server as
  its ``-c mcp_servers.accord.…`` overrides.

What the program prints is kept in the member's transcript (and streamed to the live
channel while it runs); what it cost is recorded from its JSON result where it says
(``total_cost_usd``, ``usage``: ``claude -p --output-format json``), and otherwise the
run is recorded as an unpriced call, never as free. A program that cannot be found is
refused when the run starts (``check_command``), and makes the member ``failed``
rather than a crash loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord import credentials
from accord.agent import context
from accord.agent.loop import Outcome, record_stopped
from accord.errors import AccordError, UserError
from accord.team.board import LeaseKeeper
from accord.types import (
    MemberStatus,
    Message,
    MessageKind,
    Task,
    TranscriptEntry,
    TranscriptKind,
    UsageRecord,
)

if TYPE_CHECKING:
    from accord.agent.definition import AgentDefinition
    from accord.config import Config
    from accord.team import Team

#: Characters of a program's output kept in the transcript (the rest is cut, and said).
OUTPUT_LIMIT = 100_000
#: Runs of the program on one task that end without the member holding or finishing it,
#: before this member leaves the task to others.
TRIES = 2
LIVE_EVERY = 0.25
FINISH_WAIT = 3.0  # seconds a running program gets to end by itself when the member stops


def program_of(definition: AgentDefinition) -> str:
    """The program a ``runtime: command`` definition runs (its command line's first word)."""
    words = shlex.split(definition.command or "")
    if not words:
        raise UserError(f"agent definition {definition.name!r}: its command is empty")
    return words[0]


def check_command(definition: AgentDefinition) -> None:
    """UserError, naming the definition and its file, when its program is not there."""
    program = program_of(definition)
    if shutil.which(program) is None:
        where = f" ({definition.source})" if definition.source else ""
        raise UserError(
            f"agent definition {definition.name!r}{where} runs `{program}`, which is not "
            "installed or not on PATH: install it, or fix `command` in the definition"
        )


class ExternalAgent:
    """A member played by an external program through accord's MCP server."""

    def __init__(
        self,
        services: Team,
        member: str,
        definition: AgentDefinition,
        workspace: Path,
        config: Config,
        *,
        token: str,
        idle_wait: float = 30.0,
    ) -> None:
        self.services = services
        self.member = member
        self.definition = definition
        self.workspace = workspace
        self.config = config
        self.token = token
        self.idle_wait = idle_wait
        self.program = program_of(definition)
        self.tries: dict[int, int] = {}
        self._stop = threading.Event()
        self._child: subprocess.Popen[str] | None = None
        self._keeper: LeaseKeeper | None = None
        self._shown = MemberStatus.WORKING  # the status last written

    # lifecycle --------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: object) -> None:
            self.request_stop()

        signal.signal(signal.SIGTERM, handler)

    def request_stop(self) -> None:
        """Stop: the program running gets ``FINISH_WAIT`` seconds to end on its own (a
        team stops as soon as its lead finishes, often while a program that just
        completed its task is still printing its result), then is stopped."""
        self._stop.set()
        self.services.nudge(self.member)  # a wait in progress ends now
        threading.Timer(FINISH_WAIT, self._kill_child).start()

    def run(self, *, once: bool = False) -> Outcome:
        host = os.environ.get("ACCORD_HOST") or socket.gethostname()
        roster = self.services.roster
        roster.update(self.member, status=MemberStatus.WORKING, pid=os.getpid(), host=host)
        self._keeper = LeaseKeeper(
            self.services.board,
            self.member,
            list,  # its claims are the MCP server's, which keeps their leases
            every=self.config.agent.heartbeat_seconds,
            also=lambda: roster.heartbeat(self.member),
        ).start()
        outcome = Outcome("signal", "stopped by a signal")
        try:
            while not self._stop.is_set():
                result = self._step(once)
                if result is not None:
                    outcome = result
                    break
        except KeyboardInterrupt:
            outcome = Outcome("signal", "interrupted")
        finally:
            self._kill_child()
            self._keeper.close(timeout=5)
            record_stopped(self.services, self.member, outcome)
        return outcome

    # one pass ---------------------------------------------------------------------

    def _step(self, once: bool) -> Outcome | None:
        mail = self.services.mailbox.inbox(self.member)
        for request in [m for m in mail if m.kind == MessageKind.SHUTDOWN_REQUEST]:
            self.services.mailbox.send(
                self.member,
                request.sender,
                "approved: shutting down",
                kind=MessageKind.SHUTDOWN_RESPONSE,
                reply_to=request.id,
            )
            self.services.mailbox.ack(self.member, [request.id])
            return Outcome("shutdown", f"approved shutdown request {request.id}")
        task = self._next_task()
        if task is None and not mail:
            if once:
                return Outcome("idle", "nothing left to do")
            self._status(MemberStatus.IDLE)
            self.services.wait(
                self.member,
                self.idle_wait,
                stop=self._stop.is_set,
                tasks=self.definition.self_claim,
            )
            return None
        over = self.services.runs.over_budget(self.member)
        if over is not None:
            return Outcome("budget", over)
        self._status(MemberStatus.WORKING)
        self._work(task, mail)
        return None

    def _status(self, status: MemberStatus) -> None:
        if status != self._shown:
            with contextlib.suppress(AccordError):
                self.services.roster.update(self.member, status=status)
                self._shown = status

    def _next_task(self) -> Task | None:
        """The task this member should do next: one it holds, else the first ready one
        assigned to it, else (if it claims by itself) the first ready one for anyone."""
        tasks = self.services.board.list()
        mine = [t for t in tasks if t.owner == self.member and t.status.value == "in_progress"]
        ready = [
            t
            for t in tasks
            if t.ready
            and self.tries.get(t.id, 0) < TRIES
            and (t.assignee == self.member or (t.assignee is None and self.definition.self_claim))
        ]
        ready.sort(key=lambda t: (t.assignee != self.member, -t.priority, t.id))
        chosen = mine or ready
        return chosen[0] if chosen else None

    # a run of the program -------------------------------------------------------------

    def _work(self, task: Task | None, mail: list[Message]) -> None:
        session = self.services.log.last_session(self.member) + 1
        prompt = self._prompt(task, mail)
        task_id = task.id if task is not None else None
        why = f"task #{task_id}" if task_id else "new messages"
        self._append(
            [
                self._entry(
                    session, TranscriptKind.SESSION, {"event": "start", "why": why}, task_id
                ),
                self._entry(
                    session, TranscriptKind.MESSAGE, {"role": "user", "text": prompt}, task_id
                ),
            ],
            ack=[m.id for m in mail],
        )
        if task_id is not None:
            self.tries[task_id] = self.tries.get(task_id, 0) + 1
        started = time.monotonic()
        code, out, err = self._run_program(prompt, session, task_id)
        seconds = time.monotonic() - started
        result = _json_result(out)
        text = str(result.get("result")) if result and result.get("result") else out
        cut = max(0, len(text) - OUTPUT_LIMIT)
        entries = [
            self._entry(
                session,
                TranscriptKind.MESSAGE,
                {"role": "assistant", "text": text[:OUTPUT_LIMIT] or "(no output)"},
                task_id,
            ),
            self._entry(
                session,
                TranscriptKind.NOTE,
                {
                    "text": f"`{self.program}` "
                    + (f"exited {code}" if code is not None else "was stopped with the member")
                    + f" after {seconds:.1f}s"
                    + (f"; its output was cut by {cut:,} characters" if cut else "")
                    + (f"; stderr: {err.strip()[-500:]}" if code and err.strip() else "")
                },
                task_id,
            ),
        ]
        self._append(entries, usage=self._usage(result, task_id, seconds))
        if task_id is not None:
            self._after(task_id, code)

    def _after(self, task_id: int, code: int | None) -> None:
        """Tell the lead when the program left its task neither done nor held."""
        with contextlib.suppress(AccordError):
            task = self.services.board.get(task_id)
            if task.status.value in ("completed", "failed", "cancelled"):
                return
            if task.owner == self.member and code == 0:
                return  # it holds it still, and will be run again on it
            run = self.services.runs.get()
            if run is None or run.lead == self.member:
                return
            self.services.mailbox.send(
                self.member,
                run.lead,
                f"`{self.program}` ended (exit {code}) without finishing task #{task_id}"
                + ("; I leave it to others" if self.tries.get(task_id, 0) >= TRIES else ""),
                summary=f"task #{task_id} not finished",
            )

    def _prompt(self, task: Task | None, mail: list[Message]) -> str:
        team = self.services.team
        parts = [
            self.definition.prompt.strip(),
            f"You are {self.member}, a member of the team {team}. You work with the team "
            "only through the MCP server named `accord`: its tools TaskList, TaskGet, "
            "TaskUpdate, TaskCreate, SendMessage, read_mail, ack_mail and team_digest. Your "
            "plain text is not seen by anyone; tell teammates what they need with "
            "SendMessage.",
        ]
        if task is not None:
            parts.append(
                f"# Your task #{task.id}: {task.title}\n\n{task.description}\n\n"
                f"Steps: claim it with TaskUpdate {{taskId: {task.id}, status: "
                f'"in_progress"}} (if you do not hold it already), do it in the current '
                "folder and check your work, then complete it with TaskUpdate {taskId: "
                f'{task.id}, status: "completed", result: "what you did and where"}}. If the '
                "completion is refused, its feedback says what to fix: fix it and complete "
                "again. If you cannot do it, call task_fail with the reason."
            )
        if mail:
            parts.append(
                "You have new messages:\n\n" + "\n\n".join(context.mail_text(m) for m in mail)
            )
        return "\n\n".join(p for p in parts if p)

    def _run_program(
        self, prompt: str, session: int, task_id: int | None
    ) -> tuple[int | None, str, str]:
        """Run the program once: its exit code (None when stopped), stdout and stderr."""
        run_dir = self.services.cwd / ".accord" / "run" / self.services.team
        run_dir.mkdir(parents=True, exist_ok=True)
        stem = run_dir / f"{self.member}-{os.getpid()}"
        token_file = stem.with_suffix(".token")
        config_file = stem.with_suffix(".mcp.json")
        prompt_file = stem.with_suffix(".prompt.md")
        _private(token_file, self.token)
        _private(prompt_file, prompt)
        server = {
            "command": sys.executable,
            "args": [
                "-m",
                "accord",
                "mcp",
                "--team",
                self.services.team,
                "--as",
                self.member,
                "--token-file",
                str(token_file),
            ],
            "env": {"ACCORD_STORE": self.services.location},
        }
        _private(config_file, json.dumps({"mcpServers": {"accord": server}}, indent=2))
        places = {
            "{mcp}": str(config_file),
            "{prompt}": prompt,
            "{prompt_file}": str(prompt_file),
            "{member}": self.member,
            "{team}": self.services.team,
        }
        words = shlex.split(self.definition.command or "")
        on_stdin = not any(p in w for w in words for p in ("{prompt}", "{prompt_file}"))
        args: list[str] = []
        for word in words:
            if word == "{codex_mcp}":  # Codex takes no config file: -c overrides instead
                args += _codex_overrides(server)
            else:
                args.append(_fill(word, places))
        # The program is trusted as the person is (it runs outside accord's sandbox): it
        # gets the model keys handed to this member, never the member's token, which
        # only the MCP server reads, from its private file.
        env = {**os.environ, **credentials.held()}
        for name in ("ACCORD_TOKEN", "ACCORD_MEMBER", "ACCORD_STORE", "ACCORD_TEAM"):
            env.pop(name, None)
        try:
            child = subprocess.Popen(
                args,
                cwd=self.workspace,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its whole group is stopped with the member
            )
        except OSError as e:
            return 127, "", f"cannot start `{self.program}`: {e}"
        self._child = child
        out: list[str] = []
        err: list[str] = []
        readers = [
            threading.Thread(target=self._read, args=(child.stdout, out, session), daemon=True),
            threading.Thread(target=self._read, args=(child.stderr, err, None), daemon=True),
        ]
        for r in readers:
            r.start()
        try:
            assert child.stdin is not None
            if on_stdin:
                with contextlib.suppress(BrokenPipeError):
                    child.stdin.write(prompt)
            child.stdin.close()
        except OSError:
            pass
        code = child.wait()
        for r in readers:
            r.join(timeout=5)
        self._child = None
        with contextlib.suppress(AccordError):
            self.services.log.clear_live(self.member)
        for f in (token_file, config_file, prompt_file):
            f.unlink(missing_ok=True)
        return (None if self._stop.is_set() else code), "".join(out), "".join(err)

    def _read(self, stream: Any, into: list[str], session: int | None) -> None:
        """Collect a stream; stdout also goes to the live channel, at a bounded rate."""
        sent = 0.0
        size = 0
        for chunk in iter(stream.readline, ""):
            if size < 4 * OUTPUT_LIMIT:
                into.append(chunk)
                size += len(chunk)
            if session is not None and time.monotonic() - sent >= LIVE_EVERY:
                sent = time.monotonic()
                with contextlib.suppress(AccordError):
                    tail = "".join(into)[-4000:]
                    self.services.log.publish_live(self.member, session, tail)

    def _kill_child(self) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)

    # records --------------------------------------------------------------------

    def _usage(
        self, result: dict[str, Any] | None, task_id: int | None, seconds: float
    ) -> UsageRecord:
        """One usage row for the run: the program's own figures where it gave them
        (``claude -p --output-format json``), else tokens unknown and cost unpriced."""
        usage = (result or {}).get("usage") or {}
        cost = (result or {}).get("total_cost_usd")

        def count(key: str) -> int:
            value = usage.get(key) if isinstance(usage, dict) else None
            return int(value) if isinstance(value, int | float) and value >= 0 else 0

        return UsageRecord(
            member=self.member,
            model=f"command:{Path(self.program).name}",
            input_tokens=count("input_tokens"),
            output_tokens=count("output_tokens"),
            cache_read_tokens=count("cache_read_input_tokens"),
            cache_write_tokens=count("cache_creation_input_tokens"),
            cost_usd=float(cost) if isinstance(cost, int | float) and cost >= 0 else None,
            task_id=task_id,
            latency_seconds=seconds,
        )

    def _entry(
        self, session: int, kind: TranscriptKind, body: dict[str, Any], task_id: int | None
    ) -> TranscriptEntry:
        return TranscriptEntry(self.member, session, kind, body, task_id)

    def _append(
        self,
        entries: list[TranscriptEntry],
        *,
        ack: list[int] | None = None,
        usage: UsageRecord | None = None,
    ) -> None:
        self.services.log.append_transcript(entries, ack=ack or (), usage=usage)


def _codex_overrides(server: dict[str, Any]) -> list[str]:
    """accord's MCP server as Codex's ``-c`` overrides (TOML values)."""
    env = ", ".join(f"{k} = {json.dumps(v)}" for k, v in server["env"].items())
    return [
        "-c",
        f"mcp_servers.accord.command={json.dumps(server['command'])}",
        "-c",
        f"mcp_servers.accord.args={json.dumps(server['args'])}",
        "-c",
        f"mcp_servers.accord.env={{{env}}}",
    ]


def _fill(word: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        word = word.replace(key, value)
    return word


def _private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _json_result(out: str) -> dict[str, Any] | None:
    """The program's JSON result, when its output is one JSON object (or its last line
    is: stream-json), as ``claude -p --output-format json`` prints it."""
    for candidate in (out.strip(), out.strip().rsplit("\n", 1)[-1]):
        if candidate.startswith("{"):
            try:
                data = json.loads(candidate)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict):
                return data
    return None
