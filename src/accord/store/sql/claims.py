"""Claims on the board's tasks: leases, fencing tokens, heartbeats, completion and failure."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from accord.errors import (
    ClaimError,
    FileClaimed,
    InvalidState,
    NotClaimHolder,
    NotFound,
    Reason,
    StaleToken,
    UserError,
)
from accord.events import EventKind
from accord.store import _globs, _ranking
from accord.store.bells import targets
from accord.store.limits import MAX_FILE_CLAIMS, MAX_RESULT
from accord.store.sql.board import TasksPart
from accord.store.sql.seam import _READY, Conflict, Connection, StaleTeamId, _cap, atomic
from accord.types import Claim, FileClaim, Task, TaskAttempt, TaskStatus

#: What an operation refuses with when a cached team id no longer names its team (its
#: rows are gone, or another team's); then the id is rechecked. Errors of the database
#: itself are not among them: after one, the transaction may run nothing more.
_REFUSALS = (NotFound, InvalidState, ClaimError)


def _live_file_claim(c: str) -> str:
    """That the file claim ``c`` (a table or alias) still holds: its task in progress
    with the same owner and fencing token, its lease not yet ended (the parameter is
    now)."""
    return (
        f"EXISTS (SELECT 1 FROM tasks t WHERE t.team_id = {c}.team_id AND t.id = {c}.task_id "
        f"AND t.status = 'in_progress' AND t.owner = {c}.member "
        f"AND t.fencing_token = {c}.token AND t.lease_expires_at >= ?)"
    )


class BoardPart(TasksPart):
    """Part of ``SQLStore`` (see the package docstring).

    Claims on the board's tasks: leases, fencing tokens, heartbeats, completion and failure.
    """

    def _lock_counters(self, db: Connection, team_id: int) -> None:
        """Wait for the team's counters: every earlier write that touched them is in."""
        if self._LOCK_ROW:
            db.execute("SELECT 1 FROM teams WHERE id = ?" + self._LOCK_ROW, (team_id,))

    def _end_attempt(
        self, db: Connection, team_id: int, task_id: int, attempt: int, outcome: str, now: float
    ) -> None:
        """Record how the attempt ended (``task_attempts``; one that already ended keeps
        its outcome)."""
        db.execute(
            "UPDATE task_attempts SET ended_at = ?, outcome = ? WHERE team_id = ? "
            "AND task_id = ? AND attempt = ? AND outcome IS NULL",
            (now, outcome, team_id, task_id, attempt),
        )

    def _expire(self, db: Connection, team_id: int) -> list[int]:
        now = self.clock()
        query = (
            "SELECT id, owner, attempts, max_attempts, fencing_token FROM tasks "
            "WHERE team_id = ? AND status = 'in_progress' AND lease_expires_at < ?"
        )
        expired = db.execute(query, (team_id, now)).fetchall()
        if expired and self._LOCK_ROW:
            # Lock them, and read them again as they are now (another write may have
            # finished one meanwhile).
            expired = db.execute(query + " ORDER BY id" + self._LOCK_ROW, (team_id, now)).fetchall()
        # Every row first, every event after: a write holds no counter while it waits.
        for task_id, owner, attempts, max_attempts, _ in expired:
            self._end_attempt(db, team_id, task_id, attempts, "lease_lost", now)
            if attempts >= max_attempts:
                reason = (
                    f"lease expired on attempt {attempts} of {max_attempts} (held by {owner}); "
                    "no attempts left"
                )
                db.execute(
                    "UPDATE tasks SET status = 'failed', reason = ?, lease_expires_at = NULL, "
                    "updated_at = ? WHERE team_id = ? AND id = ?",
                    (reason, now, team_id, task_id),
                )
            else:
                db.execute(
                    "UPDATE tasks SET status = 'pending', owner = NULL, lease_expires_at = NULL, "
                    "updated_at = ? WHERE team_id = ? AND id = ?",
                    (now, team_id, task_id),
                )
        for task_id, owner, attempts, max_attempts, token in expired:
            self._event(
                db,
                team_id,
                EventKind.LEASE_EXPIRED,
                {
                    "id": task_id,
                    "owner": owner,
                    "token": token,
                    "attempts": attempts,
                    "status": "failed" if attempts >= max_attempts else "pending",
                },
                None,
            )
        return [r[0] for r in expired]

    @atomic
    def expire_leases(self, team: str) -> list[Task]:
        """Return tasks whose lease ended to pending (or failed, out of attempts)."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            ids = self._expire(db, team_id)
            return [self._task_row(db, team_id, team, i) for i in ids]

    @atomic
    def claim_task(
        self,
        team: str,
        member: str,
        *,
        lease_seconds: float,
        task_id: int | None = None,
    ) -> Claim | None:
        """Atomically take the best ready task (or the named one) under a lease.

        Best means: assigned to ``member`` first, then higher priority, then more
        work waiting behind it, then older. Returns None when nothing is ready.
        """
        if lease_seconds <= 0:
            raise UserError("a lease must be longer than 0 seconds")
        try:
            return self._claim(team, member, lease_seconds, task_id)
        except StaleTeamId:
            return self._claim(team, member, lease_seconds, task_id)

    def _claim(
        self, team: str, member: str, lease_seconds: float, task_id: int | None
    ) -> Claim | None:
        with self._write() as db:
            # No turn: a claim locks the task it takes (the named one, or the one it
            # picks) and queues only for the counters, so claims run side by side.
            team_id = self._known_team_id(db, team)
            try:
                task, swept = self._claim_target(db, team_id, team, member, task_id)
            except _REFUSALS:
                if self._team_gone(db, team, team_id):
                    raise StaleTeamId(team) from None
                raise
            if task is None:
                if self._team_gone(db, team, team_id):
                    raise StaleTeamId(team)
                return None
            # One counter update numbers both the fencing token and the claim's event;
            # naming the team in it confirms a cached id. After a sweep, whose events a
            # backend may number at commit, the claim's event is numbered after them.
            both = "" if swept else ", last_seq = last_seq + 1"
            counted = db.execute(
                f"UPDATE teams SET last_fence = last_fence + 1{both} "
                "WHERE id = ? AND name = ? RETURNING last_fence, last_seq",
                (team_id, team),
            ).fetchone()
            if counted is None:
                self._forget_team(team)
                raise StaleTeamId(team)
            token, seq = counted
            now = self.clock()
            expires = now + lease_seconds
            self._execute_late(
                db,
                "UPDATE tasks SET status = 'in_progress', owner = ?, fencing_token = ?, "
                "lease_expires_at = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE team_id = ? AND id = ?",
                (member, token, expires, now, team_id, task.id),
            )
            # A released attempt (no attempt spent) is taken over by this one.
            self._execute_late(
                db,
                "INSERT INTO task_attempts (team_id, task_id, attempt, member, started_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (team_id, task_id, attempt) DO UPDATE SET "
                "member = excluded.member, started_at = excluded.started_at, ended_at = NULL, "
                "outcome = NULL",
                (team_id, task.id, task.attempts + 1, member, now),
            )
            payload = {"id": task.id, "owner": member, "token": token, "lease_expires_at": expires}
            if swept:
                self._event(db, team_id, EventKind.TASK_CLAIMED, payload, member)
            else:
                self._ring_later(db, team_id, targets(EventKind.TASK_CLAIMED, payload))
                self._execute_late(
                    db,
                    "INSERT INTO events (team_id, seq, at, actor, kind, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        team_id,
                        seq,
                        now,
                        member,
                        EventKind.TASK_CLAIMED.value,
                        json.dumps(payload, separators=(",", ":")),
                    ),
                )
        claimed = dataclasses.replace(
            task,
            status=TaskStatus.IN_PROGRESS,
            owner=member,
            fencing_token=token,
            lease_expires_at=expires,
            attempts=task.attempts + 1,
            updated_at=now,
        )
        return Claim(claimed, token, expires)

    def _claim_target(
        self, db: Connection, team_id: int, team: str, member: str, task_id: int | None
    ) -> tuple[Task | None, bool]:
        """What a claim by ``member`` takes (the named task, or the best ready one), once
        leases that ran out are swept; None when nothing is ready. And whether any lease
        was swept."""
        # The member is checked, and the team's earliest lease read, in one statement:
        # leases are swept only when one has ended, not on every claim.
        row = db.execute(
            "SELECT (SELECT min(lease_expires_at) FROM tasks WHERE team_id = ? "
            "AND status = 'in_progress') "
            f"FROM members WHERE team_id = ? AND name = ?{self._KEY_SHARE}",
            (team_id, team_id, member),
        ).fetchone()
        if row is None:
            raise self._unknown_member(db, team_id, team, member)
        if task_id is not None and self._LOCK_ROW:
            db.execute(
                "SELECT 1 FROM tasks WHERE team_id = ? AND id = ?" + self._LOCK_ROW,
                (team_id, task_id),
            )
        swept = row[0] is not None and row[0] < self.clock() and bool(self._expire(db, team_id))
        if task_id is not None:
            return self._claimable(db, team_id, team, task_id, member), swept
        return self._pick(db, team_id, team, member), swept

    def _pick(self, db: Connection, team_id: int, team: str, member: str) -> Task | None:
        """The ready task a claim by ``member`` takes, locked for this claim."""
        best = self._best_ready(db, team_id, member)
        if best is None:
            return None
        task = self._task_row(db, team_id, team, best)
        if not task.ready or task.assignee not in (None, member):
            # Only where claims run side by side: a blocker was added to the task between
            # the pick's snapshot and its lock. Rare; the whole claim runs again.
            raise Conflict(f"task #{best} changed while it was being claimed")
        return task

    def _best_ready(self, db: Connection, team_id: int, member: str) -> int | None:
        """The task a claim by ``member`` takes: see ``_ranking.pick_best`` for the order.

        The best (assigned, priority) group is found by walking an index to the first
        ready task, so a claim costs the same on a board of ten tasks or ten thousand;
        dependency edges are read only when some task of that group has open work
        waiting on it, which is the only case where they change the answer. Where
        claims run side by side, the first ready task is the first one no other claim
        holds, and it stays locked for this one.
        """
        top = db.execute(
            f"SELECT t.id, t.priority FROM tasks t WHERE t.team_id = ? AND t.assignee = ? "
            f"AND t.status = 'pending' AND t.admitted = 1 AND {_READY} "
            f"ORDER BY t.priority DESC, t.id LIMIT 1{self._SKIP_LOCKED}",
            (team_id, member),
        ).fetchone()
        assigned = top is not None
        if top is None:
            top = db.execute(
                f"SELECT t.id, t.priority FROM tasks t WHERE t.team_id = ? "
                f"AND t.status = 'pending' AND t.assignee IS NULL AND t.admitted = 1 "
                f"AND {_READY} ORDER BY t.priority DESC, t.id LIMIT 1{self._SKIP_LOCKED}",
                (team_id,),
            ).fetchone()
        if top is None:
            return None
        best: int = top[0]
        whose = "t.assignee = ?" if assigned else "t.assignee IS NULL"
        # The blockers of open tasks come first, as a table of their own, so that no
        # backend starts from the tasks (a young PostgreSQL table has no statistics, and
        # its planner would otherwise pair every pending task with every open one).
        weighted = [
            r[0]
            for r in db.execute(
                f"SELECT t.id FROM (SELECT DISTINCT w.blocker_id AS id FROM task_deps w "
                f"CROSS JOIN tasks o ON o.team_id = w.team_id AND o.id = w.task_id "
                f"WHERE w.team_id = ? AND o.status IN ('pending', 'in_progress')) x "
                f"CROSS JOIN tasks t ON t.team_id = ? AND t.id = x.id "
                f"WHERE t.status = 'pending' AND t.admitted = 1 AND t.priority = ? "
                f"AND {whose} AND {_READY}",
                (team_id, team_id, top[1], member) if assigned else (team_id, team_id, top[1]),
            )
        ]
        if not weighted:
            return best
        group = [(i, top[1], assigned) for i in {best, *weighted}]
        chosen = _ranking.pick_best(group, self._open_edges(db, team_id))
        if chosen != best and self._SKIP_LOCKED:
            # Another claim may hold the better one; then this claim keeps the one it has.
            held = db.execute(
                "SELECT 1 FROM tasks t WHERE t.team_id = ? AND t.id = ? "
                "AND t.status = 'pending'" + self._SKIP_LOCKED,
                (team_id, chosen),
            ).fetchone()
            if held is None:
                return best
        return chosen

    def _claimable(
        self, db: Connection, team_id: int, team: str, task_id: int, member: str
    ) -> Task:
        task = self._task_row(db, team_id, team, task_id)
        if task.status != TaskStatus.PENDING:
            held = f", held by {task.owner}" if task.status == TaskStatus.IN_PROGRESS else ""
            raise InvalidState(
                f"task #{task_id} is {task.status.value}{held}; it cannot be claimed"
            )
        if not task.admitted:
            raise InvalidState(f"task #{task_id} is waiting for its TaskCreated hook")
        if task.assignee is not None and task.assignee != member:
            raise InvalidState(
                f"task #{task_id} is assigned to {task.assignee}; only they can claim it",
                team=team,
                task_id=task_id,
                member=member,
                reason=Reason.ASSIGNED,
            )
        if task.dead_blockers:
            dead = ", ".join(f"#{i}" for i in task.dead_blockers)
            raise InvalidState(
                f"task #{task_id} can never become ready: blocker {dead} failed or was cancelled"
            )
        if task.waiting_on:
            raise InvalidState(
                f"task #{task_id} is not ready: it waits on "
                f"{', '.join(f'#{i}' for i in task.waiting_on)}"
            )
        return task

    def _held(
        self, db: Connection, team_id: int, team: str, task_id: int, member: str, token: int
    ) -> Task:
        """The task if ``member`` holds it under ``token``; else the precise reason why not."""
        task = self._task_row(db, team_id, team, task_id, lock=True)
        if task_id in self._expire(db, team_id):
            task = self._task_row(db, team_id, team, task_id)
        return self._check_held(task, member, token)

    @staticmethod
    def _check_held(task: Task, member: str, token: int) -> Task:
        task_id = task.id
        if task.status == TaskStatus.IN_PROGRESS:
            if task.owner != member:
                raise NotClaimHolder(
                    f"task #{task_id} is held by {task.owner}, not {member}; "
                    "only the holder may act on it",
                    team=task.team,
                    task_id=task_id,
                    member=member,
                )
            if task.fencing_token == token:
                return task
            raise StaleToken(
                f"token {token} is not the current claim on task #{task_id} "
                f"(the current one is {task.fencing_token})",
                team=task.team,
                task_id=task_id,
                member=member,
                reason=Reason.WRONG_TOKEN,
            )
        if task.fencing_token is None:
            raise NotClaimHolder(
                f"task #{task_id} is {task.status.value} and nobody has claimed it",
                team=task.team,
                task_id=task_id,
                member=member,
                reason=Reason.UNCLAIMED,
            )
        if task.fencing_token == token and task.owner in (member, None):
            if task.status == TaskStatus.PENDING:
                why = "its lease expired and it went back to pending; claim it again"
            elif task.status == TaskStatus.FAILED and task.reason and "lease" in task.reason:
                why = "its lease expired and it failed for good"
            else:
                why = f"it is now {task.status.value}"
            raise StaleToken(
                f"your claim on task #{task_id} (token {token}) was lost: {why}",
                team=task.team,
                task_id=task_id,
                member=member,
                reason=Reason.CLAIM_LOST,
            )
        raise StaleToken(
            f"token {token} does not hold task #{task_id} (it is {task.status.value}"
            + (f", last held by {task.owner}" if task.owner else "")
            + ")",
            team=task.team,
            task_id=task_id,
            member=member,
        )

    @atomic
    def heartbeat_task(
        self, team: str, task_id: int, member: str, token: int, *, lease_seconds: float
    ) -> Claim:
        """Extend a lease; StaleToken or NotClaimHolder if the claim is not current."""
        if lease_seconds <= 0:
            raise UserError("a lease must be longer than 0 seconds")
        with self._write() as db:
            team_id = self._team_id(db, team)
            task = self._held(db, team_id, team, task_id, member, token)
            expires = self.clock() + lease_seconds
            db.execute(
                "UPDATE tasks SET lease_expires_at = ? WHERE team_id = ? AND id = ?",
                (expires, team_id, task_id),
            )
        return Claim(dataclasses.replace(task, lease_expires_at=expires), token, expires)

    @atomic
    def check_claim(self, team: str, task_id: int, member: str, token: int) -> Task:
        """Raise unless ``member`` holds ``task_id`` under ``token`` right now."""
        with self._write() as db:
            team_id = self._team_id(db, team)
            return self._held(db, team_id, team, task_id, member, token)

    @atomic
    def complete_task(
        self, team: str, task_id: int, member: str, token: int, result: str | None = None
    ) -> Task:
        """Complete a held task. Repeating the same completion returns the task unchanged."""
        _cap(result, MAX_RESULT, "the task result")
        try:
            return self._complete(team, task_id, member, token, result)
        except StaleTeamId:
            return self._complete(team, task_id, member, token, result)

    def _complete(
        self, team: str, task_id: int, member: str, token: int, result: str | None
    ) -> Task:
        with self._write() as db:
            team_id = self._known_team_id(db, team)
            try:
                current = self._task_row(db, team_id, team, task_id, lock=True)
            except _REFUSALS:
                if self._team_gone(db, team, team_id):
                    raise StaleTeamId(team) from None
                raise
            if (
                current.status == TaskStatus.COMPLETED
                and current.fencing_token == token
                and current.owner == member
            ):
                if self._team_gone(db, team, team_id):
                    raise StaleTeamId(team)
                return current  # the same completion again: deduplicated, not redone
            # Only this task's own lease matters here; others are swept by the next
            # claim that finds one ended.
            lease = current.lease_expires_at
            if lease is not None and lease < self.clock() and task_id in self._expire(db, team_id):
                current = self._task_row(db, team_id, team, task_id)
            try:
                self._check_held(current, member, token)
            except _REFUSALS:
                if self._team_gone(db, team, team_id):
                    raise StaleTeamId(team) from None
                raise
            now = self.clock()
            db.execute(
                "UPDATE tasks SET status = 'completed', result = ?, lease_expires_at = NULL, "
                "updated_at = ? WHERE team_id = ? AND id = ?",
                (result, now, team_id, task_id),
            )
            self._end_attempt(db, team_id, task_id, current.attempts, "completed", now)
            # What this completion unblocked is read once earlier completions are in.
            self._lock_counters(db, team_id)
            unblocked = [
                r[0]
                for r in db.execute(
                    "SELECT t.id FROM task_deps d CROSS JOIN tasks t "
                    "ON t.team_id = d.team_id AND t.id = d.task_id "
                    "WHERE d.team_id = ? AND d.blocker_id = ? AND t.status = 'pending' "
                    "AND NOT EXISTS (SELECT 1 FROM task_deps d2 CROSS JOIN tasks b "
                    "  ON b.team_id = d2.team_id AND b.id = d2.blocker_id "
                    "  WHERE d2.team_id = t.team_id AND d2.task_id = t.id "
                    "  AND b.status != 'completed') ORDER BY t.id",
                    (team_id, task_id),
                )
            ]
            # The event's counter names the team, which confirms a cached id.
            payload = {"id": task_id, "owner": member, "token": token, "unblocked": unblocked}
            logged = self._log(
                db,
                team_id,
                now,
                member,
                EventKind.TASK_COMPLETED,
                json.dumps(payload, separators=(",", ":")),
                wanted=False,
            )
            self._ring_later(db, team_id, targets(EventKind.TASK_COMPLETED, payload))
            if logged is not None and logged[1] != team:
                self._forget_team(team)
                raise StaleTeamId(team)
            return dataclasses.replace(
                current,
                status=TaskStatus.COMPLETED,
                result=result,
                lease_expires_at=None,
                updated_at=now,
            )

    @atomic
    def fail_task(
        self,
        team: str,
        task_id: int,
        member: str,
        token: int,
        reason: str,
        *,
        retry: bool = False,
    ) -> Task:
        """Fail a held task, or with ``retry`` put it back to pending while attempts remain."""
        if not reason.strip():
            raise UserError("failing a task needs a reason; pass --reason TEXT")
        _cap(reason, MAX_RESULT, "the failure reason")
        with self._write() as db:
            team_id = self._team_id(db, team)
            task = self._held(db, team_id, team, task_id, member, token)
            again = retry and task.attempts < task.max_attempts
            now = self.clock()
            self._end_attempt(
                db, team_id, task_id, task.attempts, "retried" if again else "failed", now
            )
            if again:
                db.execute(
                    "UPDATE tasks SET status = 'pending', owner = NULL, lease_expires_at = NULL, "
                    "reason = ?, updated_at = ? WHERE team_id = ? AND id = ?",
                    (reason, now, team_id, task_id),
                )
            else:
                db.execute(
                    "UPDATE tasks SET status = 'failed', lease_expires_at = NULL, reason = ?, "
                    "updated_at = ? WHERE team_id = ? AND id = ?",
                    (reason, now, team_id, task_id),
                )
            self._event(
                db,
                team_id,
                EventKind.TASK_FAILED,
                {
                    "id": task_id,
                    "owner": member,
                    "token": token,
                    "reason": reason,
                    "status": "pending" if again else "failed",
                },
                member,
            )
            return dataclasses.replace(
                task,
                status=TaskStatus.PENDING if again else TaskStatus.FAILED,
                owner=None if again else task.owner,
                lease_expires_at=None,
                reason=reason,
                updated_at=now,
            )

    @atomic
    def release_task(self, team: str, task_id: int, member: str, token: int, reason: str) -> Task:
        """Give a held task back to pending without using up an attempt: its holder
        could not work for a reason that is not the task's (the model was unreachable).
        Writes ``task_failed`` with status pending and ``attempt_kept``."""
        if not reason.strip():
            raise UserError("releasing a task needs a reason")
        _cap(reason, MAX_RESULT, "the release reason")
        with self._write() as db:
            team_id = self._team_id(db, team)
            task = self._held(db, team_id, team, task_id, member, token)
            now = self.clock()
            attempts = max(task.attempts - 1, 0)
            self._end_attempt(db, team_id, task_id, task.attempts, "released", now)
            db.execute(
                "UPDATE tasks SET status = 'pending', owner = NULL, lease_expires_at = NULL, "
                "attempts = ?, reason = ?, updated_at = ? WHERE team_id = ? AND id = ?",
                (attempts, reason, now, team_id, task_id),
            )
            self._event(
                db,
                team_id,
                EventKind.TASK_FAILED,
                {
                    "id": task_id,
                    "owner": member,
                    "token": token,
                    "reason": reason,
                    "status": "pending",
                    "attempt_kept": True,
                },
                member,
            )
            return dataclasses.replace(
                task,
                status=TaskStatus.PENDING,
                owner=None,
                lease_expires_at=None,
                attempts=attempts,
                reason=reason,
                updated_at=now,
            )

    @atomic
    def cancel_task(self, team: str, task_id: int, reason: str, actor: str | None = None) -> Task:
        """Cancel a task that is not finished; its holder's token goes stale."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            task = self._task_row(db, team_id, team, task_id, lock=True)
            if task.status.terminal:
                raise InvalidState(f"task #{task_id} is already {task.status.value}")
            now = self.clock()
            db.execute(
                "UPDATE tasks SET status = 'cancelled', lease_expires_at = NULL, reason = ?, "
                "updated_at = ? WHERE team_id = ? AND id = ?",
                (reason, now, team_id, task_id),
            )
            if task.status == TaskStatus.IN_PROGRESS:
                self._end_attempt(db, team_id, task_id, task.attempts, "cancelled", now)
            self._event(
                db,
                team_id,
                EventKind.TASK_CANCELLED,
                {"id": task_id, "reason": reason, "owner": task.owner},
                actor,
            )
            return dataclasses.replace(
                task,
                status=TaskStatus.CANCELLED,
                lease_expires_at=None,
                reason=reason,
                updated_at=now,
            )

    @atomic
    def task_attempts(self, team: str, task_id: int) -> list[TaskAttempt]:
        """Every attempt at the task, first first: who held it, and how it ended."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            self._task_row(db, team_id, team, task_id)
            rows = db.execute(
                "SELECT attempt, member, started_at, ended_at, outcome FROM task_attempts "
                "WHERE team_id = ? AND task_id = ? ORDER BY attempt",
                (team_id, task_id),
            ).fetchall()
        return [TaskAttempt(team, task_id, *r) for r in rows]

    # advisory file claims ---------------------------------------------------------

    @atomic
    def claim_files(
        self, team: str, task_id: int, member: str, token: int, patterns: Sequence[str]
    ) -> list[FileClaim]:
        """Claim paths or globs (relative to the project root) for a task ``member``
        holds under ``token``; returns every live file claim of that task.

        StaleToken or NotClaimHolder if the task claim is not current (as for every
        claim operation); UserError for a pattern that is empty, absolute or uses
        ``..``; FileClaimed, naming the holder and its task, if another member's live
        claim overlaps one (some path matches both). Claiming a pattern this task holds
        already changes nothing; a member's own claims, on any task, never block it.
        The claims last as long as the task claim: completing, failing, releasing or
        cancelling the task, or its lease running out, ends them, with no event of
        their own (``release_files`` gives some up sooner). Writes ``files_claimed``
        with the patterns it added.
        """
        wanted = list(dict.fromkeys(_globs.file_pattern(p) for p in patterns))
        if not wanted:
            raise UserError("claiming files needs at least one path or glob, such as 'src/api/**'")
        with self._write() as db:
            # The team's turn: two claims never both see the other's paths as free.
            team_id = self._team_id(db, team, lock=True)
            self._held(db, team_id, team, task_id, member, token)
            now = self.clock()
            # Claims whose task claim ended are swept here, so the table holds little more
            # than the claims that count.
            db.execute(
                "DELETE FROM file_claims WHERE team_id = ? AND NOT "
                + _live_file_claim("file_claims"),
                (team_id, now),
            )
            live = self._file_claims(db, team_id, team, now)
            for pattern in wanted:
                for other in live:
                    if other.member != member and _globs.overlap(pattern, other.pattern):
                        same = "" if other.pattern == pattern else f" (it claimed {other.pattern})"
                        raise FileClaimed(
                            f"{pattern} is claimed by {other.member} for task "
                            f"#{other.task_id}{same}",
                            pattern=other.pattern,
                            team=team,
                            member=other.member,
                            task_id=other.task_id,
                        )
            held = {c.pattern for c in live if c.task_id == task_id}
            fresh = [p for p in wanted if p not in held]
            if len(held) + len(fresh) > MAX_FILE_CLAIMS:
                raise UserError(
                    f"a task may hold at most {MAX_FILE_CLAIMS} file claim patterns (task "
                    f"#{task_id} has {len(held)}); claim folders with 'folder/**' instead"
                )
            if fresh:
                db.executemany(
                    "INSERT INTO file_claims (team_id, task_id, pattern, member, token, "
                    "claimed_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(team_id, task_id, p, member, token, now) for p in fresh],
                )
                self._event(
                    db,
                    team_id,
                    EventKind.FILES_CLAIMED,
                    {"task_id": task_id, "member": member, "token": token, "patterns": fresh},
                    member,
                )
            return self._file_claims(db, team_id, team, now, task_id=task_id)

    @atomic
    def release_files(
        self,
        team: str,
        task_id: int,
        member: str,
        token: int,
        patterns: Sequence[str] | None = None,
    ) -> list[FileClaim]:
        """Give up file claims of a task ``member`` holds under ``token`` before the task
        ends: the ``patterns`` given (as claimed), or every one with None. Returns the
        task's file claims that remain. StaleToken or NotClaimHolder if the task claim is
        not current; UserError, listing what the task holds, for a pattern it does not
        hold. Writes ``files_released`` with the patterns released (none: no event)."""
        wanted = None if patterns is None else [_globs.file_pattern(p) for p in patterns]
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._held(db, team_id, team, task_id, member, token)
            now = self.clock()
            held = [c.pattern for c in self._file_claims(db, team_id, team, now, task_id=task_id)]
            gone = held if wanted is None else list(dict.fromkeys(wanted))
            missing = [p for p in gone if p not in held]
            if missing:
                holds = ", ".join(held) if held else "none"
                raise UserError(
                    f"task #{task_id} holds no file claim {', '.join(missing)} (it holds: "
                    f"{holds}); release patterns as they were claimed"
                )
            if gone:
                db.executemany(
                    "DELETE FROM file_claims WHERE team_id = ? AND task_id = ? AND pattern = ?",
                    [(team_id, task_id, p) for p in gone],
                )
                self._event(
                    db,
                    team_id,
                    EventKind.FILES_RELEASED,
                    {"task_id": task_id, "member": member, "token": token, "patterns": gone},
                    member,
                )
            return self._file_claims(db, team_id, team, now, task_id=task_id)

    def file_claims(self, team: str, *, task_id: int | None = None) -> list[FileClaim]:
        """The team's live file claims (of one task, with ``task_id``), by task and
        pattern; a claim whose task claim ended is not among them."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            if task_id is not None:
                self._task_row(db, team_id, team, task_id)  # UnknownTask
            return self._file_claims(db, team_id, team, self.clock(), task_id=task_id)

    def file_holder(self, team: str, path: str, member: str) -> FileClaim | None:
        """The live file claim of a member other than ``member`` whose pattern matches
        ``path`` (relative to the project root, '/'-separated), or None: nobody else
        holds it. When several match, the one of the lowest task id."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            claims = self._file_claims(db, team_id, team, self.clock())
        path = path.strip("/")
        for claim in claims:
            if claim.member != member and _globs.matches(claim.pattern, path):
                return claim
        return None

    def _file_claims(
        self, db: Connection, team_id: int, team: str, now: float, task_id: int | None = None
    ) -> list[FileClaim]:
        which = " AND c.task_id = ?" if task_id is not None else ""
        rows = db.execute(
            f"SELECT c.task_id, c.member, c.pattern, c.claimed_at FROM file_claims c "
            f"WHERE c.team_id = ?{which} AND {_live_file_claim('c')} ORDER BY c.task_id, c.pattern",
            (team_id, task_id, now) if task_id is not None else (team_id, now),
        ).fetchall()
        return [FileClaim(team, r[0], r[1], r[2], r[3]) for r in rows]
