"""Typed memory and continuity notes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, cast

from accord.errors import UnknownMemory, UnknownTask, UserError
from accord.events import EventKind
from accord.store.limits import MAX_CONTINUITY, MAX_MEMORY
from accord.store.sql.seam import Connection, MemorySearch, Seam, _cap, atomic
from accord.text import terms as text_terms
from accord.types import (
    Candidate,
    ContinuityNote,
    Lesson,
    LessonCause,
    MemoryEntry,
    MemoryStatus,
    MemoryType,
    NewLesson,
    NewMemory,
    check_name,
)


def _terms(words: Sequence[str]) -> list[str]:
    """The distinct index terms of ``words``, split and stemmed by the one tokenizer."""
    return list(dict.fromkeys(t for w in words for t in text_terms(w)))


def _width(scope: str) -> int:
    """How many see a scope: a member, its team, or every team of the project."""
    return {"project": 2, "team": 1}.get(scope, 0)


class MemoryPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    Typed memory and continuity notes.
    """

    # memory ----------------------------------------------------------------

    _MEMORY_COLUMNS = (
        "m.id, m.team_id, m.scope, m.type, m.text, m.tags, m.status, m.author, m.task_id, "
        "m.session, m.created_at, m.seen_at, m.count, m.supersedes, m.superseded_by"
    )

    def _memory(self, team: str, r: Sequence[Any]) -> MemoryEntry:
        return MemoryEntry(
            id=r[0],
            team=team if r[1] is not None else None,
            scope=r[2],
            type=MemoryType(r[3]),
            text=r[4],
            tags=tuple(json.loads(r[5])),
            status=MemoryStatus(r[6]),
            author=r[7],
            task_id=r[8],
            session=r[9],
            created_at=r[10],
            seen_at=r[11],
            count=r[12],
            supersedes=r[13],
            superseded_by=r[14],
        )

    def _scope_owner(self, db: Connection, team_id: int, team: str, scope: str) -> int | None:
        """The team_id a scope's entries carry (None for project); checks the scope."""
        if scope == "project":
            return None
        if scope == "team":
            return team_id
        if scope.startswith("member:"):
            self._member_row(db, team_id, team, scope.removeprefix("member:"))
            return team_id
        raise UserError(f"unknown memory scope {scope!r}; use team, project or member:NAME")

    @staticmethod
    def _visible(team_id: int, scopes: Sequence[str] | None) -> tuple[str, list[Any]]:
        if scopes is None:
            return "(m.team_id = ? OR m.team_id IS NULL)", [team_id]
        parts: list[str] = []
        args: list[Any] = []
        for scope in scopes:
            if scope == "project":
                parts.append("m.team_id IS NULL")
            else:
                parts.append("(m.team_id = ? AND m.scope = ?)")
                args += [team_id, scope]
        return "(" + (" OR ".join(parts) or "1 = 0") + ")", args

    def _memory_row(self, db: Connection, team_id: int, team: str, memory_id: int) -> MemoryEntry:
        r = db.execute(
            f"SELECT {self._MEMORY_COLUMNS} FROM memories m WHERE m.id = ? "
            "AND (m.team_id = ? OR m.team_id IS NULL)",
            (memory_id, team_id),
        ).fetchone()
        if r is None:
            raise UnknownMemory(
                f"no memory {memory_id} in team {team!r} or the project",
                team=team,
                memory_id=memory_id,
            )
        return self._memory(team, r)

    def _standing(self, db: Connection, team_id: int, team: str, entry: MemoryEntry) -> MemoryEntry:
        seen = {entry.id}
        while entry.superseded_by is not None and entry.superseded_by not in seen:
            seen.add(entry.superseded_by)
            entry = self._memory_row(db, team_id, team, entry.superseded_by)
        return entry

    def _insert_memory(
        self,
        db: Connection,
        owner: int | None,
        scope: str,
        kind: str,
        text: str,
        tags: list[str],
        status: str,
        author: str | None,
        task_id: int | None,
        session: int | None,
        created_at: float,
        seen_at: float,
        count: int,
        supersedes: int | None,
    ) -> int:
        """Insert one memory row (and index it for search); returns its id."""
        tags_json = json.dumps(tags)
        memory_id: int = db.execute(
            "INSERT INTO memories (team_id, scope, type, text, tags, status, author, task_id, "
            "session, created_at, seen_at, count, supersedes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                owner,
                scope,
                kind,
                text,
                tags_json,
                status,
                author,
                task_id,
                session,
                created_at,
                seen_at,
                count,
                supersedes,
            ),
        ).fetchone()[0]
        self._index(db, memory_id, text, tags)
        return memory_id

    @atomic
    def add_memory(
        self,
        team: str,
        new: NewMemory,
        *,
        same: Callable[[str, str], bool] | None = None,
        candidates: Sequence[str] = (),
    ) -> tuple[MemoryEntry, bool]:
        """Store an entry, or reinforce one already there; returns it and whether it was
        reinforced.

        With ``same`` (a judge of two texts) an active entry of the same type and scope
        that it judges the same, among those with identical text or the ten that best
        match the words ``candidates`` (as ``search_memories`` ranks them), gains one to
        its count and a new ``seen_at`` instead. Decided inside the write transaction,
        so concurrent writers of one observation leave one entry with the right count.
        ``supersedes`` links a new decision to the decision it replaces, one that no
        other decision replaced yet: an active one becomes superseded, a retired one
        stays retired (so a chain whose last decision was retired can go on).
        """
        text = new.text.strip()
        if not text:
            raise UserError("a memory needs text; say what should be remembered")
        _cap(text, MAX_MEMORY, "a memory")
        for tag in new.tags:
            check_name(tag, "tag")
        kind = MemoryType(new.type)
        if new.supersedes is not None and kind != MemoryType.DECISION:
            raise UserError("only a decision can supersede; make it --type decision")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._serialize_memory(db)
            owner = self._scope_owner(db, team_id, team, new.scope)
            now = self.clock()
            old: MemoryEntry | None = None
            if new.supersedes is not None:
                old = self._memory_row(db, team_id, team, new.supersedes)
                if old.type != MemoryType.DECISION:
                    article = "an" if old.type.value[0] in "aeiou" else "a"
                    raise UserError(
                        f"memory {old.id} is {article} {old.type.value}, not a decision; only a "
                        "decision can be superseded"
                    )
                if old.superseded_by is not None:
                    stands = self._standing(db, team_id, team, old)
                    if stands.status == MemoryStatus.ACTIVE:
                        raise UserError(
                            f"memory {old.id} is already superseded; the decision that stands "
                            f"is {stands.id} ({stands.text[:60]!r}): supersede that one"
                        )
                    # The chain ends in a retired decision: nothing stands, and the way on
                    # is to supersede that last one (a retired decision may be).
                    raise UserError(
                        f"memory {old.id} is already superseded, and nothing in its chain "
                        f"stands: the last, {stands.id} ({stands.text[:60]!r}), was retired; "
                        f"supersede {stands.id} to carry the chain on"
                    )
                if _width(new.scope) < _width(old.scope):
                    raise UserError(
                        f"memory {old.id} is a {old.scope} decision; a {new.scope} decision "
                        "cannot replace it for everyone who sees it: use --scope "
                        f"{old.scope} or wider"
                    )
            if same is not None and old is None:
                found = self._same(db, owner, new.scope, kind, text, same, candidates)
                if found is not None:
                    db.execute(
                        "UPDATE memories SET count = count + 1, seen_at = ? WHERE id = ?",
                        (now, found),
                    )
                    self._event(db, team_id, EventKind.MEMORY_REINFORCED, {"id": found}, new.author)
                    return self._memory_row(db, team_id, team, found), True
            memory_id = self._insert_memory(
                db,
                owner,
                new.scope,
                kind.value,
                text,
                sorted(set(new.tags)),
                "active",
                new.author,
                new.task_id,
                new.session,
                now,
                now,
                1,
                new.supersedes,
            )
            if old is not None:
                # A retired decision stays retired: it was let go before it was replaced.
                db.execute(
                    "UPDATE memories SET superseded_by = ?, status = CASE status "
                    "WHEN 'active' THEN 'superseded' ELSE status END WHERE id = ?",
                    (memory_id, old.id),
                )
            self._event(
                db,
                team_id,
                EventKind.MEMORY_ADDED,
                {
                    "id": memory_id,
                    "type": kind.value,
                    "scope": new.scope,
                    "supersedes": new.supersedes,
                },
                new.author,
            )
            return self._memory_row(db, team_id, team, memory_id), False

    def _same(
        self,
        db: Connection,
        owner: int | None,
        scope: str,
        kind: MemoryType,
        text: str,
        same: Callable[[str, str], bool],
        candidates: Sequence[str],
        lessons_of: int | None = None,
    ) -> int | None:
        """An active entry judged the same as ``text`` (``lessons_of``: only the lessons
        of that team)."""
        where = "m.status = 'active' AND m.type = ? AND m.scope = ? AND " + (
            "m.team_id IS NULL" if owner is None else "m.team_id = ?"
        )
        args: tuple[object, ...] = (
            (kind.value, scope) if owner is None else (kind.value, scope, owner)
        )
        if lessons_of is not None:
            where += " AND m.id IN (SELECT l.memory_id FROM lessons l WHERE l.team_id = ?)"
            args = (*args, lessons_of)
        exact = db.execute(
            f"SELECT m.id FROM memories m WHERE {where} AND m.text = ? LIMIT 1", (*args, text)
        ).fetchone()
        if exact is not None:
            found: int = exact[0]
            return found
        terms = _terms(candidates)
        if not terms:
            return None
        for row in self._search(db, MemorySearch(terms, (), where, args, 10)):
            if same(row[4], text):
                return int(row[0])
        return None

    # lessons ---------------------------------------------------------------

    _LESSON_COLUMNS = (
        "l.task_id, l.attempt, l.slot, l.cause, l.author, l.evidence, l.created_at, l.confirmed_at"
    )

    def _lesson(self, team: str, r: Sequence[Any]) -> Lesson:
        return Lesson(
            r[0], r[1], r[2], LessonCause(r[3]), r[4], r[5], r[6], r[7], self._memory(team, r[8:])
        )

    @atomic
    def record_lesson(
        self,
        team: str,
        new: NewLesson,
        *,
        same: Callable[[str, str], bool],
        candidates: Sequence[str] = (),
    ) -> tuple[Lesson, bool]:
        """Record what an attempt taught, once per attempt and slot (the same slot again
        returns the lesson already there); returns it and whether its text reinforced an
        active lesson that ``same`` judges the same (as ``add_memory`` does for
        observations, among lessons only) instead of adding an ``insight`` memory."""
        text = new.text.strip()
        if not text:
            raise UserError("a lesson needs text: what was tried, what happened, what to do")
        _cap(text, MAX_MEMORY, "a lesson")
        _cap(new.evidence, MAX_MEMORY, "a lesson's evidence")
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._serialize_memory(db)
            if (
                db.execute(
                    "SELECT 1 FROM tasks WHERE team_id = ? AND id = ?", (team_id, new.task_id)
                ).fetchone()
                is None
            ):
                raise UnknownTask(
                    f"team {team!r} has no task #{new.task_id}", team=team, task_id=new.task_id
                )
            there = db.execute(
                f"SELECT {self._LESSON_COLUMNS}, {self._MEMORY_COLUMNS} FROM lessons l "
                "JOIN memories m ON m.id = l.memory_id WHERE l.team_id = ? AND l.task_id = ? "
                "AND l.attempt = ? AND l.slot = ?",
                (team_id, new.task_id, new.attempt, new.slot),
            ).fetchone()
            if there is not None:
                return self._lesson(team, there), False
            owner = self._scope_owner(db, team_id, team, new.scope)
            now = self.clock()
            found = self._same(
                db, owner, new.scope, MemoryType.INSIGHT, text, same, candidates, team_id
            )
            if found is not None:
                db.execute(
                    "UPDATE memories SET count = count + 1, seen_at = ? WHERE id = ?",
                    (now, found),
                )
                memory_id = found
            else:
                memory_id = self._insert_memory(
                    db,
                    owner,
                    new.scope,
                    MemoryType.INSIGHT.value,
                    text,
                    ["lesson"],
                    "active",
                    new.author,
                    new.task_id,
                    None,
                    now,
                    now,
                    1,
                    None,
                )
            db.execute(
                "INSERT INTO lessons (team_id, task_id, attempt, slot, cause, memory_id, author, "
                "evidence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    team_id,
                    new.task_id,
                    new.attempt,
                    new.slot,
                    new.cause.value,
                    memory_id,
                    new.author,
                    new.evidence,
                    now,
                ),
            )
            if found is None:
                self._event(
                    db,
                    team_id,
                    EventKind.MEMORY_ADDED,
                    {"id": memory_id, "type": "insight", "scope": new.scope, "supersedes": None},
                    new.author,
                )
            else:
                self._event(db, team_id, EventKind.MEMORY_REINFORCED, {"id": found}, new.author)
            self._event(
                db,
                team_id,
                EventKind.LESSON_RECORDED,
                {
                    "task_id": new.task_id,
                    "attempt": new.attempt,
                    "slot": new.slot,
                    "cause": new.cause.value,
                    "memory_id": memory_id,
                    "reinforced": found is not None,
                },
                new.author,
            )
            row = Lesson(
                new.task_id,
                new.attempt,
                new.slot,
                new.cause,
                new.author,
                new.evidence,
                now,
                None,
                self._memory_row(db, team_id, team, memory_id),
            )
            return row, found is not None

    @atomic
    def lessons(
        self,
        team: str,
        *,
        task_id: int | None = None,
        memory_ids: Sequence[int] | None = None,
    ) -> list[Lesson]:
        """Lessons of the team, oldest first: of one task, or pointing at these memories."""
        where, args = "", cast(tuple[int, ...], ())
        if task_id is not None:
            where, args = " AND l.task_id = ?", (task_id,)
        if memory_ids is not None:
            if not memory_ids:
                return []
            where += f" AND l.memory_id IN ({', '.join('?' * len(memory_ids))})"
            args = (*args, *memory_ids)
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows = db.execute(
                f"SELECT {self._LESSON_COLUMNS}, {self._MEMORY_COLUMNS} FROM lessons l "
                f"JOIN memories m ON m.id = l.memory_id WHERE l.team_id = ?{where} "
                "ORDER BY l.created_at, l.task_id, l.attempt, l.slot",
                (team_id, *args),
            ).fetchall()
        return [self._lesson(team, r) for r in rows]

    @atomic
    def lessons_shown(
        self, team: str, task_id: int, attempt: int, memory_ids: Sequence[int]
    ) -> None:
        """Note that this attempt was shown these lessons' memories (again: no change)."""
        if not memory_ids:
            return
        with self._write() as db:
            team_id = self._team_id(db, team)
            for memory_id in dict.fromkeys(memory_ids):
                db.execute(
                    "INSERT INTO lesson_views (team_id, task_id, attempt, memory_id) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (team_id, task_id, attempt, memory_id),
                )

    @atomic
    def confirm_lessons(self, team: str, task_id: int, attempt: int) -> list[int]:
        """The attempt succeeded: the lessons it was shown that were not confirmed yet are
        now, and their memories count as seen now. Returns those memories' ids."""
        with self._write() as db:
            team_id = self._team_id(db, team)
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT v.memory_id FROM lesson_views v WHERE v.team_id = ? "
                    "AND v.task_id = ? AND v.attempt = ? AND EXISTS (SELECT 1 FROM lessons l "
                    "WHERE l.team_id = v.team_id AND l.memory_id = v.memory_id "
                    "AND l.confirmed_at IS NULL) ORDER BY v.memory_id",
                    (team_id, task_id, attempt),
                )
            ]
            if not ids:
                return []
            now = self.clock()
            marks = ", ".join("?" * len(ids))
            db.execute(
                f"UPDATE lessons SET confirmed_at = ? WHERE team_id = ? AND memory_id IN ({marks}) "
                "AND confirmed_at IS NULL",
                (now, team_id, *ids),
            )
            db.execute(f"UPDATE memories SET seen_at = ? WHERE id IN ({marks})", (now, *ids))
            self._event(
                db,
                team_id,
                EventKind.LESSONS_CONFIRMED,
                {"task_id": task_id, "attempt": attempt, "memory_ids": ids},
                None,
            )
            return ids

    @atomic
    def get_memory(self, team: str, memory_id: int) -> MemoryEntry:
        """An entry the team can see (its own, or project-wide); UserError if none."""
        with self._read() as db:
            return self._memory_row(db, self._team_id(db, team), team, memory_id)

    @atomic
    def list_memories(
        self,
        team: str,
        *,
        type: MemoryType | None = None,
        status: MemoryStatus | None = None,
        scopes: Sequence[str] | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[MemoryEntry]:
        """Entries the team can see, newest first (only those of ``ids``, if given;
        an id the team cannot see is left out)."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            where, args = self._visible(team_id, scopes)
            if ids is not None:
                among, arg = self._among("m.id", ids)
                where += f" AND {among}"
                args.append(arg)
            if type is not None:
                where += " AND m.type = ?"
                args.append(type.value)
            if status is not None:
                where += " AND m.status = ?"
                args.append(status.value)
            rows = db.execute(
                f"SELECT {self._MEMORY_COLUMNS} FROM memories m WHERE {where} "
                "ORDER BY m.id DESC LIMIT ?",
                (*args, self._NO_LIMIT if limit is None else limit),
            ).fetchall()
        return [self._memory(team, r) for r in rows]

    @atomic
    def search_memories(
        self,
        team: str,
        words: Sequence[str],
        *,
        must: Sequence[str] = (),
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool = False,
        limit: int = 50,
    ) -> list[Candidate]:
        """Active entries in ``scopes`` of ``types`` that contain any of ``must`` (or, if
        ``must`` is empty, any of ``words``), best first, at most ``limit``.

        Each is scored by BM25 over all of ``words`` (a word in the text weighs 1.0, in
        the tags 0.5; the relevance is higher for a better match), so ``must`` only
        narrows which entries are ranked, never how. Words are plain text, split again
        by ``accord.text``: nothing in them is query syntax. ``include_superseded``
        adds superseded decisions.
        """
        required = _terms(must)
        scored = _terms([*words, *must])
        if not scored or not types or limit < 1:
            return []
        with self._read() as db:
            team_id = self._team_id(db, team)
            where, args = self._visible(team_id, scopes)
            states = "('active', 'superseded')" if include_superseded else "('active')"
            marks = ",".join("?" * len(types))
            rows = self._search(
                db,
                MemorySearch(
                    scored,
                    required,
                    f"{where} AND m.status IN {states} AND m.type IN ({marks})",
                    (*args, *[t.value for t in types]),
                    limit,
                ),
            )
        return [Candidate(self._memory(team, r[:15]), float(r[15])) for r in rows]

    @atomic
    def memory_matches(self, words: Sequence[str]) -> tuple[int, list[int]]:
        """How many entries the store holds, and how many contain each word: cheap counts
        that let recall choose which words an entry must contain to be ranked."""
        with self._read() as db:
            counted = db.execute("SELECT entries FROM memory_count").fetchone()
            total: int = counted[0] if counted else 0
            docs: dict[str, int] = {}
            for term in _terms(words):
                row = db.execute("SELECT doc FROM memory_vocab WHERE term = ?", (term,)).fetchone()
                docs[term] = row[0] if row else 0
        # A word the tokenizer splits ("foo-bar") is in at most as many entries as its
        # rarest part.
        return total, [min((docs[t] for t in _terms([w])), default=0) for w in words]

    @atomic
    def set_memory_vectors(
        self, team: str, model: str, vectors: Sequence[tuple[int, bytes]]
    ) -> None:
        """Keep each ``(memory_id, vector)`` as the entry's vector from ``model``,
        replacing the one there. Vectors are derived data, like the text index: no
        event is written. UserError if the team cannot see an entry."""
        with self._write() as db:
            team_id = self._team_id(db, team)
            for memory_id, vector in vectors:
                self._memory_row(db, team_id, team, memory_id)
                db.execute(
                    "INSERT INTO memory_vectors (model, memory_id, vector) VALUES (?, ?, ?) "
                    "ON CONFLICT (model, memory_id) DO UPDATE SET vector = excluded.vector",
                    (model, memory_id, bytes(vector)),
                )

    def _vectors_where(
        self,
        team_id: int,
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool,
    ) -> tuple[str, list[Any]]:
        """The entries (m) whose vectors (v) ``search_memories`` would consider."""
        where, args = self._visible(team_id, scopes)
        states = "('active', 'superseded')" if include_superseded else "('active')"
        marks = ",".join("?" * len(types))
        return (
            f"{where} AND m.status IN {states} AND m.type IN ({marks})",
            [*args, *[t.value for t in types]],
        )

    @atomic
    def memory_vectors(
        self,
        team: str,
        model: str,
        *,
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool = False,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, bytes]]:
        """The ``(memory_id, vector)`` pairs from ``model`` of the entries that
        ``search_memories`` would consider (only those of ``ids``, if given), by id,
        at most ``limit``."""
        if not types:
            return []
        with self._read() as db:
            team_id = self._team_id(db, team)
            where, args = self._vectors_where(team_id, scopes, types, include_superseded)
            if ids is not None:
                # on the vectors' key, so asking for a few never scans a model's every one
                among, arg = self._among("v.memory_id", ids)
                where += f" AND {among}"
                args.append(arg)
            rows = db.execute(
                "SELECT v.memory_id, v.vector FROM memory_vectors v "
                "JOIN memories m ON m.id = v.memory_id "
                f"WHERE v.model = ? AND {where} ORDER BY v.memory_id LIMIT ?",
                (model, *args, self._NO_LIMIT if limit is None else limit),
            ).fetchall()
        return [(int(i), bytes(v)) for i, v in rows]

    @atomic
    def count_memory_vectors(
        self,
        team: str,
        model: str,
        *,
        scopes: Sequence[str],
        types: Sequence[MemoryType],
        include_superseded: bool = False,
        up_to: int,
    ) -> int:
        """How many vectors ``memory_vectors`` would return, counting no further than
        ``up_to``: whether they are few enough to compare a query with every one."""
        if not types:
            return 0
        with self._read() as db:
            team_id = self._team_id(db, team)
            where, args = self._vectors_where(team_id, scopes, types, include_superseded)
            count: int = db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM memory_vectors v "
                "JOIN memories m ON m.id = v.memory_id "
                f"WHERE v.model = ? AND {where} LIMIT ?) AS found",
                (model, *args, up_to),
            ).fetchone()[0]
        return count

    @atomic
    def memories_without_vector(
        self, team: str, model: str, *, after: int = 0, limit: int
    ) -> list[MemoryEntry]:
        """Up to ``limit`` entries the team can see that recall may return (not stories,
        not retired) and that have no vector from ``model`` yet, by id from above
        ``after``."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            # +m.team_id: walk the entries in id order from `after` rather than through
            # the scope index, so each batch of a long reindex starts where the last ended
            rows = db.execute(
                f"SELECT {self._MEMORY_COLUMNS} FROM memories m "
                "WHERE m.id > ? AND (+m.team_id = ? OR +m.team_id IS NULL) "
                "AND m.type != 'story' AND m.status != 'retired' AND NOT EXISTS "
                "(SELECT 1 FROM memory_vectors v WHERE v.model = ? AND v.memory_id = m.id) "
                "ORDER BY m.id LIMIT ?",
                (after, team_id, model, limit),
            ).fetchall()
        return [self._memory(team, r) for r in rows]

    @atomic
    def retire_memory(self, team: str, memory_id: int, actor: str | None = None) -> MemoryEntry:
        """Mark an entry retired (kept, never recalled again)."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._serialize_memory(db)
            entry = self._memory_row(db, team_id, team, memory_id)
            if entry.status != MemoryStatus.RETIRED:
                db.execute("UPDATE memories SET status = 'retired' WHERE id = ?", (memory_id,))
                self._event(db, team_id, EventKind.MEMORY_RETIRED, {"id": memory_id}, actor)
            return dataclasses.replace(entry, status=MemoryStatus.RETIRED)

    @atomic
    def import_memories(
        self, team: str, entries: Sequence[MemoryEntry], actor: str | None = None
    ) -> list[MemoryEntry]:
        """Add exported entries in one transaction, keeping their times, counts, status
        and supersession links (renumbered); all or nothing. ``actor`` (None for a
        person) is recorded in the event."""
        with self._write() as db:
            team_id = self._team_id(db, team, lock=True)
            self._serialize_memory(db)
            new_ids: dict[int, int] = {}
            for e in entries:
                owner = self._scope_owner(db, team_id, team, e.scope)
                _cap(e.text, MAX_MEMORY, "a memory")
                new_ids[e.id] = self._insert_memory(
                    db,
                    owner,
                    e.scope,
                    e.type.value,
                    e.text,
                    sorted(set(e.tags)),
                    e.status.value,
                    e.author,
                    e.task_id,
                    e.session,
                    e.created_at,
                    e.seen_at,
                    e.count,
                    None,
                )
            for e in entries:
                links = (
                    new_ids.get(e.supersedes) if e.supersedes else None,
                    new_ids.get(e.superseded_by) if e.superseded_by else None,
                )
                if any(links):
                    db.execute(
                        "UPDATE memories SET supersedes = ?, superseded_by = ? WHERE id = ?",
                        (*links, new_ids[e.id]),
                    )
            self._event(db, team_id, EventKind.MEMORIES_IMPORTED, {"count": len(entries)}, actor)
            return [self._memory_row(db, team_id, team, i) for i in new_ids.values()]

    @atomic
    def set_continuity(self, team: str, member: str, text: str) -> ContinuityNote:
        """Write a new version of a member's continuity note."""
        text = text.strip()
        if not text:
            raise UserError("a continuity note cannot be empty")
        _cap(text, MAX_CONTINUITY, "a continuity note")
        with self._write() as db:
            team_id = self._team_id(db, team)
            self._member_row(db, team_id, team, member, lock=self._LOCK_ROW)
            version = db.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM continuity WHERE team_id = ? "
                "AND member = ?",
                (team_id, member),
            ).fetchone()[0]
            now = self.clock()
            db.execute(
                "INSERT INTO continuity (team_id, member, version, text, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (team_id, member, version, text, now),
            )
            self._event(
                db,
                team_id,
                EventKind.CONTINUITY_WRITTEN,
                {"member": member, "version": version},
                member,
            )
            return ContinuityNote(member, version, text, now)

    @atomic
    def continuity(self, team: str, member: str, *, history: bool = False) -> list[ContinuityNote]:
        """The member's latest note (or every version, oldest first with ``history``)."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            self._member_row(db, team_id, team, member)
            rows = db.execute(
                "SELECT version, text, at FROM continuity WHERE team_id = ? AND member = ? "
                f"ORDER BY version {'ASC' if history else 'DESC LIMIT 1'}",
                (team_id, member),
            ).fetchall()
        return [ContinuityNote(member, v, t, a) for v, t, a in rows]
