"""Plan files: a board's worth of tasks in one TOML file, checked whole before any is written.

A plan names its tasks with its own ids, and blockers by those ids::

    [[task]]
    id = "setup"
    title = "Create the package layout"

    [[task]]
    id = "parse"
    title = "Parse the input format"
    description = "Accept both the old and the new header."
    blocked_by = ["setup"]
    priority = 2           # higher is claimed first
    assignee = "alice"     # only alice may claim it
    max_attempts = 5       # claims before it fails for good (default from accord.toml)

``parse_plan`` is pure: TOML errors, unknown keys, bad or duplicate ids, unknown
blockers and cycles are refused with one line that names the file and line.
``load_plan`` then puts the tasks on the board in one transaction, each task
after its blockers. A file id becomes the task's ``plan_key``, unique in the team,
so loading the same plan again adds only the tasks that are not there yet.
"""

from __future__ import annotations

import heapq
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from accord.config import read_utf8
from accord.errors import Reason, UserError
from accord.store.limits import MAX_DESCRIPTION, MAX_TITLE
from accord.types import NAME_PATTERN, NewTask, PlannedTask, Task

if TYPE_CHECKING:
    from accord.team import Team

KEYS = ("id", "title", "description", "blocked_by", "priority", "assignee", "max_attempts")
_HEADER = re.compile(r"^\s*\[\[\s*task\s*\]\]\s*(#.*)?$")
_TABLE = re.compile(r"^\s*\[")
_AT_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_ID_RULE = "use 1-40 characters from a-z, 0-9, '-' and '_', starting with a letter or digit"


@dataclass(frozen=True, slots=True)
class PlanTask:
    """One task as the plan file gives it."""

    id: str
    title: str
    description: str = ""
    blocked_by: tuple[str, ...] = ()
    priority: int = 0
    assignee: str | None = None
    max_attempts: int | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A checked plan: its tasks ordered so that each comes after its blockers."""

    origin: str
    tasks: tuple[PlanTask, ...]

    def planned(self) -> list[PlannedTask]:
        """The batch for ``Board.add_many``: blockers by position, file ids as keys."""
        position = {t.id: i for i, t in enumerate(self.tasks)}
        return [
            PlannedTask(
                NewTask(
                    title=t.title,
                    description=t.description,
                    assignee=t.assignee,
                    priority=t.priority,
                    max_attempts=t.max_attempts,
                ),
                after=tuple(position[b] for b in t.blocked_by),
                key=t.id,
            )
            for t in self.tasks
        ]


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """What loading did with one task of the plan."""

    item: PlanTask
    task: Task
    outcome: Literal["added", "existing", "refused"]
    note: str | None = None


@dataclass(frozen=True, slots=True)
class PlanLoad:
    """The result of loading a plan into a team, in plan order."""

    team: str
    origin: str
    entries: tuple[PlanEntry, ...]

    def count(self, outcome: str) -> int:
        return sum(1 for e in self.entries if e.outcome == outcome)


# reading -------------------------------------------------------------------------


def read_plan(path: Path) -> Plan:
    """Read and check a plan file; UserError naming the file and line if it is wrong."""
    return parse_plan(read_utf8(path, "the plan", UserError), str(path))


def parse_plan(text: str, origin: str = "plan.toml") -> Plan:
    """Check a whole plan; nothing about it is left for the store to refuse but members."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = _AT_LINE.search(message)
        where = f"{origin}:{found.group(1)}" if found else origin
        message = _AT_LINE.sub("", message)
        raise UserError(f"{where}: not valid TOML: {message}; fix that line") from e
    except RecursionError:
        raise UserError(f"{origin} nests tables or arrays too deeply to read; flatten it") from None
    lines = _Lines(text)
    for key in raw:
        if key != "task":
            raise UserError(
                f"{lines.where(origin, None, key)}: unknown key {key!r}; a plan holds only "
                "[[task]] tables"
            )
    tables = raw.get("task")
    if tables is None:
        raise UserError(f"{origin}: the plan has no tasks; add [[task]] tables with id and title")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise UserError(
            f"{lines.where(origin, None, 'task')}: tasks must be [[task]] tables "
            '(each with id = "..." and title = "...")'
        )
    if not tables:
        raise UserError(f"{origin}: the plan has no tasks; add [[task]] tables with id and title")
    lines.expect(len(tables))
    tasks = [_task(origin, lines, i, t) for i, t in enumerate(tables)]
    _check_graph(origin, lines, tasks)
    return Plan(origin, tuple(_ordered(tasks)))


def _task(origin: str, lines: _Lines, index: int, raw: dict[str, Any]) -> PlanTask:
    task_id = raw.get("id")
    label = f"task {index + 1}" + (f" ({task_id!r})" if isinstance(task_id, str) else "")

    def bad(key: str | None, what: str) -> UserError:
        return UserError(f"{lines.where(origin, index, key)}: {label}: {what}")

    for key in raw:
        if key not in KEYS:
            raise bad(key, f"unknown key {key!r}; a task takes {', '.join(KEYS)}")
    if task_id is None:
        raise bad(None, 'it has no id; give it one, such as id = "setup"')
    if not isinstance(task_id, str) or NAME_PATTERN.fullmatch(task_id) is None:
        raise bad("id", f"{task_id!r} is not a valid id: {_ID_RULE}")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise bad("title", 'it needs a title, such as title = "Parse the input"')
    if len(title.strip().encode()) > MAX_TITLE:
        raise bad("title", f"the title is longer than {MAX_TITLE} bytes; shorten it")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise bad("description", "the description must be a string")
    if len(description.encode()) > MAX_DESCRIPTION:
        raise bad("description", f"the description is longer than {MAX_DESCRIPTION} bytes")
    blocked_by = raw.get("blocked_by", [])
    if not isinstance(blocked_by, list) or not all(isinstance(b, str) for b in blocked_by):
        raise bad("blocked_by", 'blocked_by must be a list of task ids, such as ["setup"]')
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise bad("priority", "priority must be a whole number (higher is claimed first)")
    assignee = raw.get("assignee")
    if assignee is not None and (
        not isinstance(assignee, str) or NAME_PATTERN.fullmatch(assignee) is None
    ):
        raise bad("assignee", f"{assignee!r} is not a valid member name: {_ID_RULE}")
    attempts = raw.get("max_attempts")
    if attempts is not None and (
        not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 1000
    ):
        raise bad("max_attempts", "max_attempts must be a whole number from 1 to 1000")
    return PlanTask(
        id=task_id,
        title=title.strip(),
        description=description,
        blocked_by=tuple(dict.fromkeys(blocked_by)),
        priority=priority,
        assignee=assignee,
        max_attempts=attempts,
        line=lines.header(index),
    )


def _check_graph(origin: str, lines: _Lines, tasks: list[PlanTask]) -> None:
    def where(t: PlanTask) -> str:
        return f"{origin}:{t.line}" if t.line else origin

    seen: dict[str, PlanTask] = {}
    for t in tasks:
        if t.id in seen:
            first = seen[t.id]
            also = f" (first at line {first.line})" if first.line else ""
            raise UserError(f"{where(t)}: duplicate task id {t.id!r}{also}; ids must be unique")
        seen[t.id] = t
    for index, t in enumerate(tasks):
        for b in t.blocked_by:
            if b not in seen:
                raise UserError(
                    f"{lines.where(origin, index, 'blocked_by')}: task {t.id!r} is blocked by "
                    f"{b!r}, which is not in this plan"
                )
            if b == t.id:
                raise UserError(
                    f"{lines.where(origin, index, 'blocked_by')}: task {t.id!r} is blocked by "
                    "itself, so it could never start; remove it from its own blocked_by"
                )
    cycle = _find_cycle(tasks)
    if cycle is not None:
        start = seen[cycle[0]]
        shown = " -> ".join(cycle)
        raise UserError(
            f"{where(start)}: tasks {shown} form a cycle (each blocks the next), so none of "
            "them could ever start; remove one of those blockers"
        )


def _find_cycle(tasks: list[PlanTask]) -> list[str] | None:
    """A dependency cycle as ids, each blocking the next, first id repeated at the end."""
    blocks: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for b in t.blocked_by:
            blocks[b].append(t.id)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in blocks:
        if root in state:
            continue
        path = [root]
        state[root] = 1
        pending = [iter(blocks[root])]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                pending.pop()
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                pending.append(iter(blocks[nxt]))
    return None


def _ordered(tasks: list[PlanTask]) -> list[PlanTask]:
    """Blockers first; otherwise the file's order."""
    index = {t.id: i for i, t in enumerate(tasks)}
    waiting = {t.id: len(t.blocked_by) for t in tasks}
    dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for b in t.blocked_by:
            dependents[b].append(t.id)
    ready = [i for i, t in enumerate(tasks) if not t.blocked_by]
    heapq.heapify(ready)
    out: list[PlanTask] = []
    while ready:
        t = tasks[heapq.heappop(ready)]
        out.append(t)
        for d in dependents[t.id]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(ready, index[d])
    return out


class _Lines:
    """Best-effort line numbers of [[task]] tables and their keys, for error messages."""

    def __init__(self, text: str) -> None:
        self.text = text.splitlines()
        self.headers = [n for n, line in enumerate(self.text, 1) if _HEADER.match(line)]

    def expect(self, count: int) -> None:
        # Tasks written as an inline array have no headers: give no line rather than a wrong one.
        if len(self.headers) != count:
            self.headers = []

    def header(self, index: int | None) -> int | None:
        if index is None or index >= len(self.headers):
            return None
        return self.headers[index]

    def where(self, origin: str, index: int | None, key: str | None) -> str:
        line = self._key_line(index, key) if key else None
        line = line or self.header(index)
        return f"{origin}:{line}" if line else origin

    def _key_line(self, index: int | None, key: str) -> int | None:
        name = re.escape(key)
        pattern = re.compile(rf"^\s*[\"']?{name}[\"']?\s*=")
        if index is None:
            # A top-level key, or a table of that name, anywhere in the file.
            pattern = re.compile(rf"^\s*(\[+\s*[\"']?{name}[\"']?\s*[.\]]|[\"']?{name}[\"']?\s*=)")
            start, end = 1, len(self.text) + 1
        else:
            head = self.header(index)
            if head is None:
                return None
            start, end = head + 1, len(self.text) + 1
        for number in range(start, end):
            line = self.text[number - 1]
            if index is not None and _TABLE.match(line):
                return None
            if pattern.match(line):
                return number
        return None


# loading -------------------------------------------------------------------------


def load_plan(team: Team, plan: Plan, actor: str | None = None) -> PlanLoad:
    """Put the plan's tasks on the board in one transaction; tasks already loaded
    (by id) are left as they are. TaskCreated hooks run for each new task."""
    members = {m.name for m in team.roster.list()}
    for t in plan.tasks:
        if t.assignee is not None and t.assignee not in members:
            where = f"{plan.origin}:{t.line}" if t.line else plan.origin
            raise UserError(
                f"{where}: task {t.id!r} is assigned to {t.assignee!r}, who is not a member of "
                f"team {team.name!r}",
                team=team.name,
                member=t.assignee,
                reason=Reason.NOT_A_MEMBER,
            )
    placed = team.board.add_many(plan.planned(), actor)
    entries: list[PlanEntry] = []
    refused: set[str] = set()
    for item, p in zip(plan.tasks, placed, strict=True):
        if p.refused is not None:
            refused.add(item.id)
            dead = [b for b in item.blocked_by if b in refused]
            why = f"its blocker {dead[0]!r} was refused by the TaskCreated hook" if dead else None
            entries.append(PlanEntry(item, p.task, "refused", why or p.refused))
        elif p.created:
            entries.append(PlanEntry(item, p.task, "added"))
        else:
            note = None
            if p.task.title != item.title:
                note = f"loaded before with the title {p.task.title!r}; left as it is"
            entries.append(PlanEntry(item, p.task, "existing", note))
    return PlanLoad(team.name, plan.origin, tuple(entries))
