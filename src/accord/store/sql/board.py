"""The board's tasks: adding, admitting, changing and removing them, and their dependencies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from accord.errors import CycleError, InvalidState, Reason, UnknownTask, UserError
from accord.events import EventKind
from accord.store import _ranking
from accord.store.limits import MAX_DESCRIPTION, MAX_KEY, MAX_TITLE
from accord.store.sql.seam import Connection, Seam, _cap, atomic
from accord.types import NewTask, PlannedTask, Task, TaskChanges, TaskStatus

_TASK_COLUMNS = (
    "id, title, description, status, priority, assignee, owner, fencing_token, "
    "lease_expires_at, attempts, max_attempts, result, reason, created_by, created_at, "
    "updated_at, admitted, plan_key"
)


def _checked_task(new: NewTask, max_attempts: int) -> tuple[str, int, list[int]]:
    """A new task's title, attempt cap and blockers, once its fields are checked."""
    title = new.title.strip()
    if not title:
        raise UserError("a task needs a title; give one as the first argument")
    _cap(title, MAX_TITLE, "the task title")
    _cap(new.description, MAX_DESCRIPTION, "the task description")
    if new.max_attempts is not None:
        max_attempts = new.max_attempts
    if max_attempts < 1:
        raise UserError("max_attempts must be at least 1")
    return title, max_attempts, sorted(set(new.blocked_by))


def _task(team: str, r: Sequence[Any], deps: list[tuple[int, str]]) -> Task:
    return Task(
        team=team,
        id=r[0],
        title=r[1],
        description=r[2],
        status=TaskStatus(r[3]),
        priority=r[4],
        assignee=r[5],
        owner=r[6],
        fencing_token=r[7],
        lease_expires_at=r[8],
        attempts=r[9],
        max_attempts=r[10],
        result=r[11],
        reason=r[12],
        created_by=r[13],
        created_at=r[14],
        updated_at=r[15],
        admitted=bool(r[16]),
        plan_key=r[17],
        blocked_by=tuple(b for b, _ in deps),
        waiting_on=tuple(b for b, s in deps if s != "completed"),
        dead_blockers=tuple(b for b, s in deps if s in ("failed", "cancelled")),
    )


class TasksPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    The board's tasks: adding, admitting, changing and removing them, and their dependencies.
    """

    # tasks -----------------------------------------------------------------

    def _load_tasks(
        self,
        db: Connection,
        team_id: int,
        team: str,
        where: str,
        args: Sequence[Any],
        *,
        lock: str = "",
    ) -> list[Task]:
        rows = db.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE team_id = ? AND {where} ORDER BY id{lock}",
            (team_id, *args),
        ).fetchall()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        deps: dict[int, list[tuple[int, str]]] = {}
        # Blockers with their status, for every task loaded (chunked for SQLite's limit).
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for task_id, blocker, status in db.execute(
                f"SELECT d.task_id, d.blocker_id, b.status FROM task_deps d "
                f"JOIN tasks b ON b.team_id = d.team_id AND b.id = d.blocker_id "
                f"WHERE d.team_id = ? AND d.task_id IN ({marks}) ORDER BY d.blocker_id",
                (team_id, *chunk),
            ):
                deps.setdefault(task_id, []).append((blocker, status))
        return [_task(team, r, deps.get(r[0], [])) for r in rows]

    def _task_row(
        self, db: Connection, team_id: int, team: str, task_id: int, *, lock: bool = False
    ) -> Task:
        """The task; ``lock`` (in a write that changes it) locks its row first."""
        found = self._load_tasks(
            db, team_id, team, "id = ?", (task_id,), lock=self._LOCK_ROW if lock else ""
        )
        if not found:
            raise UnknownTask(f"team {team!r} has no task #{task_id}", team=team, task_id=task_id)
        return found[0]

    def _check_members(
        self, db: Connection, team_id: int, team: str, names: Sequence[str | None]
    ) -> None:
        for name in names:
            if name is not None:
                self._member_row(db, team_id, team, name)

    def _open_edges(self, db: Connection, team_id: int) -> list[tuple[int, int]]:
        return [
            (r[0], r[1])
            for r in db.execute(
                "SELECT d.blocker_id, d.task_id FROM task_deps d "
                "JOIN tasks t ON t.team_id = d.team_id AND t.id = d.task_id "
                "WHERE d.team_id = ? AND t.status IN ('pending', 'in_progress')",
                (team_id,),
            )
        ]

    def _check_blockers(
        self, db: Connection, team_id: int, team: str, task_id: int, blockers: Sequence[int]
    ) -> None:
        for b in blockers:
            if b == task_id:
                raise CycleError(f"task #{task_id} cannot block itself", (task_id, task_id))
            self._task_row(db, team_id, team, b)
        edges = [
            (r[0], r[1])
            for r in db.execute(
                "SELECT blocker_id, task_id FROM task_deps WHERE team_id = ?", (team_id,)
            )
        ]
        cycle = _ranking.find_cycle(task_id, blockers, edges)
        if cycle is not None:
            shown = " -> ".join(f"#{i}" for i in cycle)
            raise CycleError(
                f"task #{task_id} cannot wait on #{cycle[-2]}: that would make a cycle "
                f"({shown}, where each blocks the next); remove one of those blockers",
                cycle,
            )

    @atomic
    def add_task(
        self,
        team: str,
        new: NewTask,
        *,
        max_attempts: int,
        actor: str | None = None,
        admitted: bool = True,
    ) -> Task:
        """Put a task on the board. Unadmitted tasks are never ready until admitted."""
        title, max_attempts, blockers = _checked_task(new, max_attempts)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._check_members(db, team_id, team, [new.assignee])
            for b in blockers:
                self._task_row(db, team_id, team, b)
            task_id = self._insert_task(
                db, team_id, new, title, max_attempts, blockers, actor, admitted
            )
            return self._task_row(db, team_id, team, task_id)

    @atomic
    def add_tasks(
        self,
        team: str,
        items: Sequence[PlannedTask],
        *,
        max_attempts: int,
        actor: str | None = None,
        admitted: bool = True,
    ) -> list[tuple[Task, bool]]:
        # Everything that needs no store is checked before the transaction begins.
        """Put a batch of tasks on the board in one transaction, one ``task_created``
        event each: all of them, or (on any bad item) none.

        Returns, per item in order, its task and whether it was created now; an item
        whose ``key`` the team already holds is not created and gets the existing task.
        """
        checked = [_checked_task(item.task, max_attempts) for item in items]
        keys: list[str] = []
        for position, item in enumerate(items):
            if item.key is not None:
                if not item.key.strip():
                    raise UserError(f"task {position + 1} of the batch has an empty key")
                _cap(item.key, MAX_KEY, "a task key")
                if item.key in keys:
                    raise UserError(
                        f"the key {item.key!r} is given to more than one task of the batch"
                    )
                keys.append(item.key)
            for earlier in item.after:
                if not 0 <= earlier < position:
                    raise UserError(
                        f"task {position + 1} of the batch can wait only on earlier tasks of "
                        f"the batch, not on position {earlier + 1}"
                    )
        if not items:
            return []
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            taken: dict[str, int] = {}
            for start in range(0, len(keys), 500):
                some_keys = keys[start : start + 500]
                marks = ",".join("?" * len(some_keys))
                taken.update(
                    db.execute(
                        f"SELECT plan_key, id FROM tasks WHERE team_id = ? "
                        f"AND plan_key IN ({marks})",
                        (team_id, *some_keys),
                    ).fetchall()
                )
            assignees = {i.task.assignee for i in items if i.task.assignee is not None}
            self._check_members(db, team_id, team, sorted(assignees))
            for b in sorted({b for _, _, blockers in checked for b in blockers}):
                self._task_row(db, team_id, team, b)
            ids: list[int] = []
            created: list[bool] = []
            for item, (title, attempts, blockers) in zip(items, checked, strict=True):
                if item.key is not None and item.key in taken:
                    ids.append(taken[item.key])
                    created.append(False)
                    continue
                waits = sorted(set(blockers) | {ids[p] for p in item.after})
                ids.append(
                    self._insert_task(
                        db, team_id, item.task, title, attempts, waits, actor, admitted, item.key
                    )
                )
                created.append(True)
            loaded: dict[int, Task] = {}
            unique = sorted(set(ids))
            for start in range(0, len(unique), 500):
                some_ids = unique[start : start + 500]
                marks = ",".join("?" * len(some_ids))
                for task in self._load_tasks(db, team_id, team, f"id IN ({marks})", some_ids):
                    loaded[task.id] = task
        return [(loaded[i], c) for i, c in zip(ids, created, strict=True)]

    def _insert_task(
        self,
        db: Connection,
        team_id: int,
        new: NewTask,
        title: str,
        max_attempts: int,
        blockers: Sequence[int],
        actor: str | None,
        admitted: bool,
        key: str | None = None,
    ) -> int:
        """Insert one checked task with its blockers and its event; returns its id."""
        task_id: int = db.execute(
            "UPDATE teams SET last_task_id = last_task_id + 1 WHERE id = ? RETURNING last_task_id",
            (team_id,),
        ).fetchone()[0]
        now = self.clock()
        db.execute(
            "INSERT INTO tasks (team_id, id, title, description, status, priority, assignee, "
            "max_attempts, created_by, created_at, updated_at, admitted, plan_key) "
            "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                team_id,
                task_id,
                title,
                new.description,
                new.priority,
                new.assignee,
                max_attempts,
                actor,
                now,
                now,
                int(admitted),
                key,
            ),
        )
        db.executemany(
            "INSERT INTO task_deps (team_id, task_id, blocker_id) VALUES (?, ?, ?)",
            [(team_id, task_id, b) for b in blockers],
        )
        payload: dict[str, Any] = {
            "id": task_id,
            "title": title,
            "blocked_by": list(blockers),
            "assignee": new.assignee,
            "priority": new.priority,
            "admitted": admitted,
        }
        if key is not None:
            payload["plan_key"] = key
        self._event(db, team_id, EventKind.TASK_CREATED, payload, actor)
        return task_id

    @atomic
    def admit_task(self, team: str, task_id: int, actor: str | None = None) -> Task:
        """Let a task held for its TaskCreated hook become ready."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            task = self._task_row(db, team_id, team, task_id, lock=True)
            if not task.admitted:
                db.execute(
                    "UPDATE tasks SET admitted = 1, updated_at = ? WHERE team_id = ? AND id = ?",
                    (self.clock(), team_id, task_id),
                )
                self._event(db, team_id, EventKind.TASK_ADMITTED, {"id": task_id}, actor)
            return self._task_row(db, team_id, team, task_id)

    @atomic
    def remove_task(self, team: str, task_id: int, reason: str, actor: str | None = None) -> None:
        """Delete a task that was never admitted (its TaskCreated hook refused it)."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            task = self._task_row(db, team_id, team, task_id, lock=True)
            if task.admitted:
                raise InvalidState(
                    f"task #{task_id} is on the board already",
                    team=team,
                    task_id=task_id,
                    reason=Reason.ON_BOARD,
                )
            db.execute(
                "DELETE FROM task_deps WHERE team_id = ? AND (task_id = ? OR blocker_id = ?)",
                (team_id, task_id, task_id),
            )
            db.execute("DELETE FROM tasks WHERE team_id = ? AND id = ?", (team_id, task_id))
            self._event(
                db, team_id, EventKind.TASK_REMOVED, {"id": task_id, "reason": reason}, actor
            )

    @atomic
    def get_task(self, team: str, task_id: int) -> Task:
        """UnknownTask if absent."""
        with self._read() as db:
            return self._task_row(db, self._team_id(db, team), team, task_id)

    @atomic
    def list_tasks(
        self, team: str, *, status: TaskStatus | None = None, ready: bool = False
    ) -> list[Task]:
        """Tasks by id; ``ready`` keeps only those a claim could take now."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            if ready:
                status = TaskStatus.PENDING
            where, args = ("status = ?", [status.value]) if status else ("1 = 1", [])
            tasks = self._load_tasks(db, team_id, team, where, args)
        return [t for t in tasks if t.ready] if ready else tasks

    @atomic
    def update_task(
        self, team: str, task_id: int, changes: TaskChanges, actor: str | None = None
    ) -> Task:
        """Apply changes; blockers change only while pending and never make a cycle."""
        if changes.title is not None:
            if not changes.title.strip():
                raise UserError("a task title cannot be empty")
            _cap(changes.title, MAX_TITLE, "the task title")
        _cap(changes.description, MAX_DESCRIPTION, "the task description")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            task = self._task_row(db, team_id, team, task_id, lock=True)
            if task.status.terminal:
                raise InvalidState(
                    f"task #{task_id} is {task.status.value}; a finished task cannot change"
                )
            if (changes.add_blockers or changes.remove_blockers) and (
                task.status != TaskStatus.PENDING
            ):
                raise InvalidState(
                    f"task #{task_id} is {task.status.value}; blockers change only while pending"
                )
            self._check_members(db, team_id, team, [changes.assignee])
            add = sorted(set(changes.add_blockers) - set(task.blocked_by))
            missing = sorted(set(changes.remove_blockers) - set(task.blocked_by))
            if missing:
                raise UserError(
                    f"task #{task_id} is not blocked by {', '.join(f'#{i}' for i in missing)}"
                )
            self._check_blockers(db, team_id, team, task_id, add)
            sets: list[str] = []
            args: list[Any] = []
            logged: dict[str, Any] = {"id": task_id}
            for column, value in (
                ("title", changes.title.strip() if changes.title is not None else None),
                ("description", changes.description),
                ("priority", changes.priority),
                ("assignee", changes.assignee),
            ):
                if value is not None:
                    sets.append(f"{column} = ?")
                    args.append(value)
                    logged[column] = value
            if changes.unassign:
                sets.append("assignee = NULL")
                logged["assignee"] = None
            if add:
                db.executemany(
                    "INSERT INTO task_deps (team_id, task_id, blocker_id) VALUES (?, ?, ?)",
                    [(team_id, task_id, b) for b in add],
                )
                logged["add_blockers"] = add
            if changes.remove_blockers:
                db.executemany(
                    "DELETE FROM task_deps WHERE team_id = ? AND task_id = ? AND blocker_id = ?",
                    [(team_id, task_id, b) for b in changes.remove_blockers],
                )
                logged["remove_blockers"] = sorted(set(changes.remove_blockers))
            if len(logged) == 1:
                return task
            sets.append("updated_at = ?")
            args.append(self.clock())
            db.execute(
                f"UPDATE tasks SET {', '.join(sets)} WHERE team_id = ? AND id = ?",
                (*args, team_id, task_id),
            )
            self._event(db, team_id, EventKind.TASK_UPDATED, logged, actor)
            return self._task_row(db, team_id, team, task_id)
