"""Skills: the team's own named procedures, one row per version, and each use of one.

A skill's versions form a chain (each revision names the version it supersedes); the
current version is the highest active one, so a pending revision changes nothing until
it is approved. Whether a revision is based on the current version is decided here,
with the write, so two revisions of one version cannot both take effect. A use records
the attempt of the task it served (the task's ``attempts`` when it was made); its
outcome is read from the task when asked, so a crash or a lost lease, which leave no
moment to write an outcome in, still count (see ``skill_uses``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from accord.errors import AlreadyExists, InvalidState, UnknownSkill, UnknownTask, UserError
from accord.events import EventKind
from accord.store.limits import MAX_DESCRIPTION, MAX_SKILL, MAX_SKILL_FILES, MAX_SUMMARY
from accord.store.sql.seam import Connection, Seam, _cap, atomic
from accord.types import (
    SKILL_DESCRIPTION_MAX,
    SkillDraft,
    SkillOrigin,
    SkillStatus,
    SkillUse,
    SkillVersion,
    check_skill_name,
)

_SKILL_COLUMNS = (
    "name, version, description, body, meta, files, status, origin, supersedes, reason, "
    "author, created_at, reviewer, reviewed_at, review_reason"
)
_USE_COLUMNS = "u.id, u.skill, u.version, u.origin, u.member, u.task_id, u.attempt, u.used_at"


def _version(r: Sequence[Any]) -> SkillVersion:
    return SkillVersion(
        name=r[0],
        version=r[1],
        description=r[2],
        body=r[3],
        meta=json.loads(r[4]),
        files=json.loads(r[5]),
        status=SkillStatus(r[6]),
        origin=SkillOrigin(r[7]),
        supersedes=r[8],
        reason=r[9],
        author=r[10],
        created_at=r[11],
        reviewer=r[12],
        reviewed_at=r[13],
        review_reason=r[14],
    )


def outcome(attempt: int | None, status: str | None, attempts: int | None) -> str:
    """The outcome of a use made in ``attempt`` of a task that is now ``status`` after
    ``attempts`` attempts (both None: no task, or the task is gone).

    A later attempt means this one failed (retried, refused, or its lease lost); at the
    same attempt, completed is a success, failed (for good) a failure, pending a failure
    (it was handed back or its lease ran out, and no one has taken it again yet); in
    progress is open. An attempt given back without spending one (the model was down)
    leaves fewer attempts than the use's: it goes on when the task is claimed again."""
    if attempt is None:
        return "none"
    if status is None or attempts is None:
        return "none"
    if attempts > attempt:
        return "failed"
    if attempts < attempt:
        return "open"
    return {
        "completed": "succeeded",
        "failed": "failed",
        "pending": "failed",
        "cancelled": "cancelled",
    }.get(status, "open")


def _draft(draft: SkillDraft) -> tuple[str, str]:
    """Check a draft's size and shape; its meta and files as JSON."""
    check_skill_name(draft.name)
    if not draft.description.strip():
        raise UserError(f"skill {draft.name!r} needs a description (one line: what it is for)")
    if len(draft.description) > SKILL_DESCRIPTION_MAX:
        raise UserError(
            f"the description of skill {draft.name!r} is {len(draft.description)} characters; "
            f"a skill's description may have {SKILL_DESCRIPTION_MAX}"
        )
    _cap(draft.description, MAX_DESCRIPTION, "the skill's description")
    if not draft.body.strip():
        raise UserError(f"skill {draft.name!r} needs a body (the procedure itself)")
    _cap(draft.body, MAX_SKILL, "the skill's body")
    for path in draft.files:
        parts = path.split("/")
        if (
            not path
            or path.startswith("/")
            or "\\" in path
            or any(p in ("", ".", "..") for p in parts)
        ):
            raise UserError(
                f"{path!r} is not a file path inside skill {draft.name!r}'s folder; use a "
                "relative path like 'reference.md' or 'scripts/check.sh'"
            )
    meta = json.dumps(draft.meta, separators=(",", ":"), sort_keys=True, default=str)
    files = json.dumps(draft.files, separators=(",", ":"), sort_keys=True)
    _cap(meta, MAX_SKILL, "the skill's front matter")
    _cap(files, MAX_SKILL_FILES, "the skill's files")
    return meta, files


class SkillsPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    Skills: the team's own named procedures, versioned, and each use of one.
    """

    def _skill_rows(self, db: Connection, team_id: int, name: str) -> list[SkillVersion]:
        return [
            _version(r)
            for r in db.execute(
                f"SELECT {_SKILL_COLUMNS} FROM skills WHERE team_id = ? AND name = ? "
                "ORDER BY version",
                (team_id, name),
            )
        ]

    def _insert_skill(
        self,
        db: Connection,
        team_id: int,
        draft: SkillDraft,
        version: int,
        *,
        status: SkillStatus,
        origin: SkillOrigin,
        supersedes: int | None,
        reason: str | None,
        author: str,
        now: float,
    ) -> SkillVersion:
        meta, files = _draft(draft)
        db.execute(
            "INSERT INTO skills (team_id, name, version, description, body, meta, files, "
            "status, origin, supersedes, reason, author, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                team_id,
                draft.name,
                version,
                draft.description,
                draft.body,
                meta,
                files,
                status.value,
                origin.value,
                supersedes,
                reason,
                author,
                now,
            ),
        )
        return SkillVersion(
            draft.name,
            version,
            draft.description,
            draft.body,
            json.loads(meta),
            json.loads(files),
            status,
            origin,
            supersedes,
            reason,
            author,
            now,
        )

    @atomic
    def write_skill(self, team: str, draft: SkillDraft, author: str) -> SkillVersion:
        """Add a new skill of the team's own as its version 1, active at once, written by
        ``author`` (a member or the person); AlreadyExists if the team has that name."""
        _draft(draft)
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._mail_address(db, team_id, team, author, lock=self._KEY_SHARE)
            if db.execute(
                "SELECT 1 FROM skills WHERE team_id = ? AND name = ?", (team_id, draft.name)
            ).fetchone():
                raise AlreadyExists(
                    f"team {team!r} already has a skill named {draft.name!r}", team=team
                )
            made = self._insert_skill(
                db,
                team_id,
                draft,
                1,
                status=SkillStatus.ACTIVE,
                origin=SkillOrigin.STORE,
                supersedes=None,
                reason=None,
                author=author,
                now=self.clock(),
            )
            self._event(
                db,
                team_id,
                EventKind.SKILL_WRITTEN,
                {"name": draft.name, "version": 1, "author": author},
                author,
            )
        return made

    @atomic
    def revise_skill(
        self,
        team: str,
        draft: SkillDraft,
        author: str,
        *,
        reason: str,
        based_on: int | None,
        pending: bool = False,
        seed: SkillDraft | None = None,
        seed_origin: SkillOrigin | None = None,
    ) -> SkillVersion:
        """Add the next version of ``draft.name``, superseding ``based_on``, the current
        version its writer read (InvalidState if another version took effect since),
        active at once or, with ``pending``, waiting for a review. ``reason`` names the
        evidence for the change (required). A skill the store does not have yet is one
        read from a file: ``seed`` (with ``seed_origin``, project or user) is its text,
        recorded first as version 1 (``based_on`` is then None); without a seed,
        UnknownSkill."""
        _draft(draft)
        if not reason.strip():
            raise UserError(
                f"a revision of skill {draft.name!r} needs a reason naming its evidence "
                "(the task or failure that showed the old text was wrong)"
            )
        _cap(reason, MAX_SUMMARY * 4, "the revision's reason")
        if seed is not None:
            _draft(seed)
            if seed.name != draft.name:
                raise UserError(f"the seed of skill {draft.name!r} is skill {seed.name!r}")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._mail_address(db, team_id, team, author, lock=self._KEY_SHARE)
            rows = self._skill_rows(db, team_id, draft.name)
            now = self.clock()
            seeded = False
            if not rows:
                if seed is None or seed_origin is None or seed_origin == SkillOrigin.STORE:
                    raise UnknownSkill(
                        f"team {team!r} has no skill named {draft.name!r} in its store",
                        team=team,
                    )
                if based_on is not None:
                    raise InvalidState(
                        f"skill {draft.name!r} has no version {based_on} in the store",
                        team=team,
                    )
                rows = [
                    self._insert_skill(
                        db,
                        team_id,
                        seed,
                        1,
                        status=SkillStatus.ACTIVE,
                        origin=seed_origin,
                        supersedes=None,
                        reason=f"the {seed_origin.value} file's text",
                        author=author,
                        now=now,
                    )
                ]
                based_on = 1
                seeded = True
            current = max((r.version for r in rows if r.status == SkillStatus.ACTIVE), default=None)
            if based_on != current:
                raise InvalidState(
                    f"skill {draft.name!r} changed since it was read: its current version is "
                    f"v{current}, not v{based_on}; read it again and revise that",
                    team=team,
                )
            version = rows[-1].version + 1
            status = SkillStatus.PENDING if pending else SkillStatus.ACTIVE
            made = self._insert_skill(
                db,
                team_id,
                draft,
                version,
                status=status,
                origin=SkillOrigin.STORE,
                supersedes=current,
                reason=reason,
                author=author,
                now=now,
            )
            payload: dict[str, Any] = {
                "name": draft.name,
                "version": version,
                "supersedes": current,
                "status": status.value,
                "author": author,
                "reason": reason,
            }
            if seeded:
                payload["seeded"] = seed_origin.value if seed_origin else None
            self._event(db, team_id, EventKind.SKILL_REVISED, payload, author)
        return made

    @atomic
    def review_skill(
        self, team: str, name: str, version: int, *, approve: bool, reviewer: str, reason: str
    ) -> SkillVersion:
        """Approve (it becomes the current version) or reject a pending version.
        InvalidState if it is not pending, or, to approve, if the version it revised is
        no longer the current one (it would undo what took effect since)."""
        check_skill_name(name)
        _cap(reason, MAX_SUMMARY * 4, "the review's reason")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._mail_address(db, team_id, team, reviewer, lock=self._KEY_SHARE)
            rows = self._skill_rows(db, team_id, name)
            found = [r for r in rows if r.version == version]
            if not found:
                raise UnknownSkill(
                    f"team {team!r} has no version {version} of skill {name!r}"
                    + (f" (versions: 1-{rows[-1].version})" if rows else ""),
                    team=team,
                )
            (row,) = found
            if row.status != SkillStatus.PENDING:
                raise InvalidState(
                    f"version {version} of skill {name!r} is {row.status.value}, not pending "
                    "a review",
                    team=team,
                )
            current = max((r.version for r in rows if r.status == SkillStatus.ACTIVE), default=None)
            if approve and row.supersedes != current:
                raise InvalidState(
                    f"version {version} of skill {name!r} revised v{row.supersedes}, but the "
                    f"current version is now v{current}: reject it and revise v{current}",
                    team=team,
                )
            status = SkillStatus.ACTIVE if approve else SkillStatus.REJECTED
            now = self.clock()
            db.execute(
                "UPDATE skills SET status = ?, reviewer = ?, reviewed_at = ?, review_reason = ? "
                "WHERE team_id = ? AND name = ? AND version = ?",
                (status.value, reviewer, now, reason, team_id, name, version),
            )
            self._event(
                db,
                team_id,
                EventKind.SKILL_REVIEWED,
                {
                    "name": name,
                    "version": version,
                    "approved": approve,
                    "by": reviewer,
                    "reason": reason,
                },
                reviewer,
            )
        return SkillVersion(
            row.name,
            row.version,
            row.description,
            row.body,
            row.meta,
            row.files,
            status,
            row.origin,
            row.supersedes,
            row.reason,
            row.author,
            row.created_at,
            reviewer,
            now,
            reason,
        )

    def skill_versions(
        self, team: str, name: str | None = None, *, current: bool = False
    ) -> list[SkillVersion]:
        """Every version of the team's skills (of ``name`` only, when given), by name and
        version; with ``current``, only each skill's current version (its highest
        active one). An unknown name has none."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            if name is not None and not current:
                return self._skill_rows(db, team_id, name)
            where = "s.team_id = ?"
            args: list[Any] = [team_id]
            if name is not None:
                where += " AND s.name = ?"
                args.append(name)
            if current:
                where += (
                    " AND s.status = 'active' AND s.version = (SELECT MAX(o.version) FROM "
                    "skills o WHERE o.team_id = s.team_id AND o.name = s.name "
                    "AND o.status = 'active')"
                )
            columns = ", ".join(f"s.{c.strip()}" for c in _SKILL_COLUMNS.split(","))
            return [
                _version(r)
                for r in db.execute(
                    f"SELECT {columns} FROM skills s WHERE {where} ORDER BY s.name, s.version",
                    args,
                )
            ]

    @atomic
    def use_skill(
        self,
        team: str,
        name: str,
        version: int,
        origin: SkillOrigin,
        member: str,
        task_id: int | None,
    ) -> SkillUse:
        """Record that ``member`` loaded ``version`` of skill ``name`` (from ``origin``)
        for its current attempt of ``task_id`` (None: outside a task). A member that
        loaded this skill before in the same attempt keeps that version: the use is
        recorded with it, and the returned use says which. A store version must exist."""
        check_skill_name(name)
        with self._write() as db:
            # The team's turn: uses are numbered per team, in the order they are written.
            team_id = self._team_id(db, team, lock=True)
            self._member_row(db, team_id, team, member, lock=self._KEY_SHARE)
            attempt: int | None = None
            if task_id is not None:
                row = db.execute(
                    "SELECT attempts FROM tasks WHERE team_id = ? AND id = ?", (team_id, task_id)
                ).fetchone()
                if row is None:
                    raise UnknownTask(
                        f"team {team!r} has no task #{task_id}", team=team, task_id=task_id
                    )
                attempt = row[0]
                earlier = db.execute(
                    "SELECT version, origin FROM skill_uses WHERE team_id = ? AND task_id = ? "
                    "AND member = ? AND skill = ? AND attempt = ? ORDER BY id LIMIT 1",
                    (team_id, task_id, member, name, attempt),
                ).fetchone()
                if earlier is not None:
                    version, origin = earlier[0], SkillOrigin(earlier[1])
            if (
                origin == SkillOrigin.STORE
                and not db.execute(
                    "SELECT 1 FROM skills WHERE team_id = ? AND name = ? AND version = ?",
                    (team_id, name, version),
                ).fetchone()
            ):
                raise UnknownSkill(
                    f"team {team!r} has no version {version} of skill {name!r}", team=team
                )
            use_id = (
                db.execute(
                    "SELECT COALESCE(MAX(id), 0) FROM skill_uses WHERE team_id = ?", (team_id,)
                ).fetchone()[0]
                + 1
            )
            now = self.clock()
            db.execute(
                "INSERT INTO skill_uses (team_id, id, skill, version, origin, member, task_id, "
                "attempt, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (team_id, use_id, name, version, origin.value, member, task_id, attempt, now),
            )
            self._event(
                db,
                team_id,
                EventKind.SKILL_USED,
                {
                    "name": name,
                    "version": version,
                    "origin": origin.value,
                    "member": member,
                    "task_id": task_id,
                    "attempt": attempt,
                },
                member,
            )
        return SkillUse(
            use_id,
            name,
            version,
            origin,
            member,
            task_id,
            attempt,
            now,
            "none" if task_id is None else "open",
        )

    def skill_uses(
        self, team: str, name: str | None = None, *, task_id: int | None = None
    ) -> list[SkillUse]:
        """Every recorded use (of skill ``name`` only, for task ``task_id`` only, when
        given), oldest first, each with its attempt's outcome as the board shows it now
        (see ``outcome``)."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            where = "u.team_id = ?"
            args: list[Any] = [team_id]
            if name is not None:
                where += " AND u.skill = ?"
                args.append(name)
            if task_id is not None:
                where += " AND u.task_id = ?"
                args.append(task_id)
            return [
                SkillUse(
                    r[0],
                    r[1],
                    r[2],
                    SkillOrigin(r[3]),
                    r[4],
                    r[5],
                    r[6],
                    r[7],
                    outcome(r[6], r[8], r[9]),
                )
                for r in db.execute(
                    f"SELECT {_USE_COLUMNS}, t.status, t.attempts FROM skill_uses u "
                    "LEFT JOIN tasks t ON t.team_id = u.team_id AND t.id = u.task_id "
                    f"WHERE {where} ORDER BY u.id",
                    args,
                )
            ]
