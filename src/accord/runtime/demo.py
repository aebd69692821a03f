"""``accord demo``: a whole team run, offline, in a scratch git repository.

The demo writes a tiny Python project (nothing in it yet but a README), an
``accord.toml`` whose TaskCompleted hook runs the repository's tests, and rule
scripts for the scripted model; then it runs a real team on them, with a
supervisor and one process per member, exactly as ``accord run`` would:

- the lead plans three tasks (the third waits on the other two) and spawns
  alice and bob;
- alice writes ``greet.py``, bob writes ``farewell.py``, each with its tests;
- bob then writes ``main.py``, whose first version reads the wrong argument;
  his own test catches it, the hook refuses the completion (exit 2) and its
  feedback comes back to him as the tool result; he fixes the line and
  completes again;
- the lead sees three completed tasks and finishes.

Each member works in a git worktree of its own and every completion goes through
the merge gate (the hook runs on the merged tree); at the end the demo merges the
team's branch into the scratch repository's checkout, as ``accord merge`` would.

No reply comes from a model: the scripts answer by what each member was just
told (see ``RuleModel``), so the run is the same every time, needs no key and
no network, and takes a few seconds. The team stays in the folder afterwards
for ``accord status`` and ``accord cost``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accord.config import CONFIG_NAME, STATE_DIR, STORE_NAME, Project
from accord.errors import AccordError, UserError
from accord.events import EventKind
from accord.runtime.project import set_up_store
from accord.runtime.team_run import prepare_run
from accord.store import open_store
from accord.team import Team
from accord.types import Event, RunStatus, TaskStatus, TranscriptKind

NOTICE = (
    "accord demo: every model reply in this run is scripted (no model, no API key, "
    "no network); the team, its processes, hooks and store are real."
)
TEAM = "demo"
GOAL = (
    "Give this repository a command line that greets a person and says goodbye, "
    "with tests that pass."
)
LIMIT = 90.0  # seconds before a demo that has not finished is stopped

Supervise = Callable[[Project, Team], RunStatus]


# the scratch folder ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Folder:
    """Where the demo runs; a temporary folder is the demo's own, to remove if it fails."""

    root: Path
    temporary: bool


def scratch_folder(given: str | None) -> Folder:
    """A new temporary folder, or ``given`` if it is new or empty; never a folder in use."""
    if given is None:
        return Folder(Path(tempfile.mkdtemp(prefix="accord-demo-")).resolve(), True)
    root = Path(given).expanduser().resolve()
    if "@" in str(root):
        # The scripts are named scripted:PATH, and '@' there would start a base URL.
        raise UserError(f"{root} has an '@' in its path; give the demo a folder without one")
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file; give the demo a new or empty folder")
    if root.is_dir() and any(root.iterdir()):
        raise UserError(
            f"{root} is not empty and the demo would write over it; give a new or empty "
            "folder, or leave out --dir for a temporary one"
        )
    root.mkdir(parents=True, exist_ok=True)
    return Folder(root, False)


# the project -----------------------------------------------------------------

README = """\
# greet

A tiny project for `accord demo`: a team of scripted agents writes `greet.py`,
`farewell.py` and a command line, `main.py`, each with its `unittest` tests.
`accord.toml` makes the tests the judge of every task: a TaskCompleted hook runs
them, and a failing run refuses the completion.
"""

GITIGNORE = "__pycache__/\n"


def config_text(python: str) -> str:
    # Exit 2 is what blocks: unittest exits 1 on a failure, so map any failure to 2.
    hook = f"{shlex.quote(python)} -m unittest -q || exit 2"
    return f"""\
# accord.toml of the accord demo: the repository's tests gate every task.

[team]
default = "{TEAM}"

[hooks]
timeout = 60
# A task is done only when the tests pass; the failures go back to the teammate.
TaskCompleted = {json.dumps(hook)}

[run]
# Small, so that a demo that goes wrong says so quickly.
max_restarts = 1
restart_backoff = 0.5
grace = 5
silent_after = 30
"""


GREET_PY = '''\
"""Greetings."""


def greet(name: str) -> str:
    """greet("Ada") == "Hello, Ada!"."""
    return f"Hello, {name}!"
'''

TEST_GREET_PY = """\
import unittest

from greet import greet


class GreetTest(unittest.TestCase):
    def test_says_hello_by_name(self) -> None:
        self.assertEqual(greet("Ada"), "Hello, Ada!")


if __name__ == "__main__":
    unittest.main()
"""

FAREWELL_PY = '''\
"""Goodbyes."""


def farewell(name: str) -> str:
    """farewell("Ada") == "Goodbye, Ada."."""
    return f"Goodbye, {name}."
'''

TEST_FAREWELL_PY = """\
import unittest

from farewell import farewell


class FarewellTest(unittest.TestCase):
    def test_says_goodbye_by_name(self) -> None:
        self.assertEqual(farewell("Ada"), "Goodbye, Ada.")


if __name__ == "__main__":
    unittest.main()
"""

# The first version reads args[1], as if it got sys.argv with the program name in it.
BUG = "args[1] if len(args) > 1"
FIX = "args[0] if args"

MAIN_PY = f'''\
"""The command line: `python3 main.py NAME` greets NAME, then says goodbye."""

import sys

from farewell import farewell
from greet import greet


def main(args: list[str]) -> str:
    """What to print for the command-line arguments (without the program name)."""
    name = {BUG} else "world"
    return f"{{greet(name)}}\\n{{farewell(name)}}"


if __name__ == "__main__":
    print(main(sys.argv[1:]))
'''

TEST_MAIN_PY = """\
import unittest

from main import main


class MainTest(unittest.TestCase):
    def test_greets_the_name_given(self) -> None:
        self.assertEqual(main(["Ada"]), "Hello, Ada!\\nGoodbye, Ada.")

    def test_greets_the_world_by_default(self) -> None:
        self.assertEqual(main([]), "Hello, world!\\nGoodbye, world.")


if __name__ == "__main__":
    unittest.main()
"""


# the scripts -----------------------------------------------------------------


def _calls(*pairs: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "arguments": arguments} for name, arguments in pairs]


def _write(path: str, content: str) -> tuple[str, dict[str, Any]]:
    return ("write_file", {"path": path, "content": content})


def _complete(task_id: int, result: str) -> tuple[str, dict[str, Any]]:
    return ("task_complete", {"task_id": task_id, "result": result})


TASKS: list[dict[str, Any]] = [
    {
        "title": "Write greet(name) in greet.py",
        "description": 'greet("Ada") returns "Hello, Ada!". Test it in test_greet.py.',
        "assignee": "alice",
    },
    {
        "title": "Write farewell(name) in farewell.py",
        "description": 'farewell("Ada") returns "Goodbye, Ada.". Test it in test_farewell.py.',
        "assignee": "bob",
    },
    {
        "title": "Write the command line in main.py",
        "description": "`python3 main.py Ada` prints the greeting, then the farewell; with no "
        "name it greets the world. Test it in test_main.py.",
        "blocked_by": [1, 2],
        "assignee": "bob",
    },
]

# The lead: plan on its first wake; finish when its digest counts three completed tasks.
LEAD_SCRIPT: dict[str, Any] = {
    "rules": [
        {
            "if": "# First wake",
            "once": True,
            "then": {
                "text": "Two functions in parallel, then the command line that needs both.",
                "tool_calls": _calls(
                    (
                        "spawn_teammate",
                        {
                            "name": "alice",
                            "instructions": "You write greet.py. Take the tasks assigned to you.",
                        },
                    ),
                    (
                        "spawn_teammate",
                        {
                            "name": "bob",
                            "instructions": "You write farewell.py, then the command line. "
                            "Take the tasks assigned to you.",
                        },
                    ),
                    *[("task_create", task) for task in TASKS],
                ),
            },
        },
        {
            "if": "# Board\n3 completed",
            "once": True,
            "then": {
                "text": "All three tasks are completed and the tests pass.",
                "tool_calls": _calls(
                    ("request_shutdown", {"member": "alice"}),
                    ("request_shutdown", {"member": "bob"}),
                    (
                        "finish",
                        {
                            "summary": "greet.py, farewell.py and main.py are written and "
                            "their tests pass; the tests caught one bug in main.py, which "
                            "bob fixed."
                        },
                    ),
                ),
            },
        },
    ],
    "otherwise": {"text": "Waiting for the team."},
}

# Both teammates: one rule per task opening, and one for the hook's refusal.
MATE_SCRIPT: dict[str, Any] = {
    "rules": [
        {
            "if": "hook feedback",
            "once": True,
            "then": {
                "text": "The test caught it: main() gets the arguments without the program "
                "name, so the name is args[0]. Fixing that line.",
                "tool_calls": _calls(
                    ("edit_file", {"path": "main.py", "old_text": BUG, "new_text": FIX}),
                    _complete(3, "main.py prints the greeting and the farewell; tests pass"),
                ),
            },
        },
        {
            "if": "# Your task #1",
            "then": {
                "tool_calls": _calls(
                    _write("greet.py", GREET_PY),
                    _write("test_greet.py", TEST_GREET_PY),
                    _complete(1, "greet() is in greet.py, tested in test_greet.py"),
                )
            },
        },
        {
            "if": "# Your task #2",
            "then": {
                "tool_calls": _calls(
                    _write("farewell.py", FAREWELL_PY),
                    _write("test_farewell.py", TEST_FAREWELL_PY),
                    _complete(2, "farewell() is in farewell.py, tested in test_farewell.py"),
                )
            },
        },
        {
            "if": "# Your task #3",
            "then": {
                "tool_calls": _calls(
                    _write("main.py", MAIN_PY),
                    _write("test_main.py", TEST_MAIN_PY),
                    _complete(3, "main.py prints the greeting and the farewell"),
                )
            },
        },
    ],
    "otherwise": {"text": "Nothing more for me to do right now."},
}


# setting up and running ------------------------------------------------------


def set_up(root: Path, python: str = sys.executable) -> Project:
    """Write the project, its config and the scripts into ``root``; make it a git repository."""
    (root / "README.md").write_text(README, encoding="utf-8")
    (root / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    (root / CONFIG_NAME).write_text(config_text(python), encoding="utf-8")
    _git(root)
    # The demo's own store, named: never ACCORD_STORE's, nor a project's above the folder.
    project, _ = set_up_store(root, str(root / STATE_DIR / STORE_NAME))
    scripts = root / STATE_DIR / "demo"
    scripts.mkdir()
    (scripts / "lead.json").write_text(json.dumps(LEAD_SCRIPT, indent=1), encoding="utf-8")
    (scripts / "teammate.json").write_text(json.dumps(MATE_SCRIPT, indent=1), encoding="utf-8")
    return project


def _git(root: Path) -> None:
    """Make ``root`` a git repository with one commit; without git it stays a plain folder."""
    git = shutil.which("git")
    if git is None:
        return
    # A person's own git settings (signing, hooks) must not stop or slow the demo.
    quiet: dict[str, Any] = {"cwd": root, "capture_output": True, "timeout": 30}
    try:
        subprocess.run([git, "init", "-q"], check=True, **quiet)
        subprocess.run([git, "add", "-A"], check=True, **quiet)
        subprocess.run(
            [
                git,
                "-c",
                "user.name=accord demo",
                "-c",
                "user.email=demo@accord.invalid",
                "-c",
                "commit.gpgsign=false",
                "commit",
                "-q",
                "--no-verify",
                "-m",
                "A tiny project for the accord demo",
            ],
            check=True,
            **quiet,
        )
    except (OSError, subprocess.SubprocessError):
        return


@dataclass(frozen=True, slots=True)
class Report:
    """How the demo went, for the closing lines."""

    root: Path
    seconds: float
    summary: str
    tasks_done: int
    tasks: int
    refused: int  # completions the tests hook refused
    allowed: int
    calls: int
    merged: str | None = None  # "accord/demo into master": the team's branch, merged


def run(
    folder: Folder, supervise: Supervise, *, keep: bool = False, limit: float = LIMIT
) -> Report:
    """Set the demo up in ``folder`` and run its team to the end with ``supervise``.

    A run that does not finish (stopped, or over ``limit`` seconds) is an error; a
    temporary folder is removed then, unless ``keep``.
    """
    started = time.monotonic()
    project = set_up(folder.root)
    scripts = folder.root / STATE_DIR / "demo"
    over = threading.Event()

    def stop_it() -> None:
        over.set()
        with open_store(project.store_location) as store:
            runs = Team(store, TEAM).runs
            now = runs.get()
            if now is not None and now.status == RunStatus.RUNNING:
                runs.update(status=RunStatus.STOPPING)

    with open_store(project.store_location) as store:
        team = Team.open(store, TEAM, project.config, project.root)
        prepare_run(
            team,
            project,
            GOAL,
            model=f"scripted:{scripts / 'lead.json'}",
            teammate_model=f"scripted:{scripts / 'teammate.json'}",
        )
        timer = threading.Timer(limit, stop_it)
        timer.daemon = True
        timer.start()
        try:
            final = supervise(project, team)
        finally:
            timer.cancel()
        merged = None
        if final == RunStatus.FINISHED and team.worktrees.active:
            # The members worked in worktrees and their work is on accord/<team>; the
            # demo's repository is its own, so it merges that into its checkout, as the
            # person would with `accord merge`.
            team.worktrees.merge_into_base()
            merged = f"{team.worktrees.integration} into {team.worktrees.base()}"
        report = _report(team, folder.root, time.monotonic() - started, merged)
    if final == RunStatus.FINISHED:
        return report
    why = f"ran out of time ({limit:g}s)" if over.is_set() else "was stopped"
    if folder.temporary and not keep:
        shutil.rmtree(folder.root, ignore_errors=True)
        where = "its folder was removed; run `accord demo --keep` to keep it and look"
    else:
        where = f"its logs are in {folder.root / STATE_DIR / 'logs'}"
    raise AccordError(
        f"the demo {why} before the lead finished, with {report.tasks_done} of "
        f"{report.tasks} tasks completed; {where}"
    )


def _report(team: Team, root: Path, seconds: float, merged: str | None = None) -> Report:
    run_ = team.runs.get()
    tasks = team.board.list()
    hooks = [e for e in team.log.read_events() if e.kind == EventKind.HOOK_RUN]
    return Report(
        root=root,
        seconds=seconds,
        summary=(run_.summary or "") if run_ is not None else "",
        tasks_done=sum(1 for t in tasks if t.status == TaskStatus.COMPLETED),
        tasks=len(tasks),
        refused=sum(1 for e in hooks if e.payload.get("blocked")),
        allowed=sum(1 for e in hooks if e.payload.get("exit_code") == 0),
        calls=team.runs.usage_totals()[0].calls,
        merged=merged,
    )


class Narrator:
    """The team's events told as the demo's story, one line each, for people."""

    FILLER = frozenset({LEAD_SCRIPT["otherwise"]["text"], MATE_SCRIPT["otherwise"]["text"]})

    def __init__(self, team: Team, say: Callable[[str], None]) -> None:
        self.services = team
        self.team = team.name
        self.say = say
        self.started = time.time()
        self.read: dict[str, int] = {}  # transcript seq read up to, per member

    def __call__(self, e: Event) -> None:
        line = self.line(e)
        if line is not None:
            self.say(line)

    def line(self, e: Event) -> str | None:
        p = e.payload
        who = e.actor or "accord"
        text: str | None = None
        if e.kind == EventKind.MODEL_CALL and e.actor:
            text = self._reply(e.actor)
        elif e.kind == EventKind.TASK_CREATED:
            after = ", ".join(f"#{b}" for b in p.get("blocked_by") or [])
            whom = f"for {p['assignee']}" if p.get("assignee") else ""
            note = ", ".join(x for x in (whom, f"after {after}" if after else "") if x)
            text = f"put #{p.get('id')} on the board: {p.get('title')}" + (
                f" ({note})" if note else ""
            )
        elif e.kind == EventKind.TASK_CLAIMED:
            text = f"claimed #{p.get('id')}"
        elif e.kind == EventKind.HOOK_RUN and p.get("event") == "TaskCompleted":
            who = "tests"
            if p.get("blocked"):
                text = f"REFUSED #{p.get('task_id')} of {p.get('teammate_name')}: " + _failure(
                    str(p.get("stderr") or "")
                )
            else:
                text = f"passed: #{p.get('task_id')} may complete"
        elif e.kind == EventKind.TASK_COMPLETED:
            text = f"completed #{p.get('id')}: {self._result(int(p.get('id', 0)))}"
            if p.get("unblocked"):
                text += "; now ready: " + ", ".join(f"#{i}" for i in p["unblocked"])
        elif e.kind == EventKind.RUN_UPDATED and p.get("status") == RunStatus.FINISHED.value:
            text = "finished the run"
        elif e.kind in (EventKind.MEMBER_CRASHED, EventKind.MEMBER_RESTARTED):
            text = f"{p.get('name')} {e.kind.removeprefix('member_')}"
        elif e.kind == EventKind.MEMBER_STOPPED:
            who, text = str(p.get("name")), f"stopped ({p.get('reason')})"
        if text is None:
            return None
        return f"{max(0.0, e.at - self.started):5.1f}s  {who:<6} {text}"

    def _reply(self, member: str) -> str | None:
        """What the member's (scripted) model said and did in the call an event reports.

        Each call saves one assistant turn, in order, so the next unread one is its turn
        (the transcript may be further on by now: the member did not wait for us).
        """
        said: list[str] = []
        for entry in self.services.log.read_transcript(member, since=self.read.get(member, 0)):
            self.read[member] = entry.seq
            body = entry.body
            if entry.kind != TranscriptKind.MESSAGE or body.get("role") != "assistant":
                continue
            text = str(body.get("text") or "").strip()
            if text and text not in self.FILLER:
                said.append(f'"{text}"')
            for c in body.get("tool_calls") or []:
                act = _ACTS.get(str(c.get("name")))
                if act is not None:
                    try:
                        said.append(act.format_map(c.get("arguments") or {}))
                    except (KeyError, TypeError, ValueError):
                        said.append(str(c.get("name")))
            break
        return "; ".join(said) or None

    def _result(self, task_id: int) -> str:
        try:
            return self.services.board.get(task_id).result or ""
        except AccordError:
            return ""


# How the narrator tells a tool call; calls that events show already are left out.
_ACTS = {
    "write_file": "wrote {path}",
    "edit_file": "edited {path}",
    "spawn_teammate": "spawned {name}",
    "request_shutdown": "asked {member} to stop",
}


def _failure(output: str) -> str:
    """The line of a unittest run that says what failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    said = [line for line in lines if "Error:" in line] or [
        line for line in lines if line.startswith(("FAIL:", "ERROR:"))
    ]
    return (said or lines or ["the tests failed"])[0][:160]


def closing(report: Report) -> list[str]:
    """What to print when the demo finished: what happened, and where to look next."""
    where = shlex.quote(str(report.root))
    return [
        f"demo finished in {report.seconds:.1f}s: {report.tasks_done} of {report.tasks} tasks "
        f"completed; the tests refused {report.refused} completion(s) and passed "
        f"{report.allowed}; {report.calls} scripted model calls",
        f"the lead's summary: {report.summary}",
        *(
            [f"each member worked in its own git worktree; the demo merged {report.merged}"]
            if report.merged
            else []
        ),
        f"the team stays in {report.root}; look at it with:",
        f"  cd {where} && accord status",
        f"  cd {where} && accord cost",
    ]
