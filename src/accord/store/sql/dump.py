"""Moving a team between stores: dump and load."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from accord.errors import AlreadyExists
from accord.store.sql.seam import Connection, Seam, atomic
from accord.types import TeamDump, check_name


class DumpPart(Seam):
    """Part of ``SQLStore`` (see the package docstring).

    Moving a team between stores: dump and load.
    """

    # moving a team between stores ------------------------------------------------

    # Tables holding a team's rows, in an order that satisfies their references.
    _TEAM_TABLES = (
        "members",
        "tasks",
        "task_deps",
        "file_claims",
        "messages",
        "channels",
        "channel_subscribers",
        "message_routes",
        "transcripts",
        "usage",
        "runs",
        "spawns",
        "memories",
        "continuity",
        "deliberations",
        "deliberation_participants",
        "deliberation_positions",
        "work_topics",
        "task_attempts",
        "lessons",
        "lesson_views",
        "skills",
        "skill_uses",
        "supervisors",
        "events",  # last: its payloads name ids the rows above may have been given anew
    )
    _ORDER = {
        "members": "name",
        "tasks": "id",
        "task_deps": "task_id, blocker_id",
        "file_claims": "task_id, pattern",
        "messages": "id",
        "channels": "name",
        "channel_subscribers": "channel, member",
        "message_routes": "message_id",
        "transcripts": "member, seq",
        "usage": "id",
        "runs": "team_id",
        "spawns": "id",
        "memories": "id",
        "continuity": "member, version",
        "deliberations": "id",
        "deliberation_participants": "deliberation_id, member",
        "deliberation_positions": "deliberation_id, member, round",
        "work_topics": "subject, subject_id, topic",
        "task_attempts": "task_id, attempt",
        "lessons": "task_id, attempt, slot",
        "lesson_views": "task_id, attempt, memory_id",
        "skills": "name, version",
        "skill_uses": "id",
        "supervisors": "host",
        "events": "seq",
    }
    # Tables numbered store-wide, and the columns of theirs that point at their own ids.
    _NUMBERED = {
        "messages": ("reply_to", "route_id"),
        "usage": (),
        "spawns": (),
        "memories": ("supersedes", "superseded_by"),
    }
    # (Skills and their uses are numbered per team, like tasks, which a use names: they
    # keep their numbers in any store, and nothing of theirs is renumbered.)
    # Columns of other tables that point at those ids, by the table pointed at (a
    # work topic's ``subject_id`` only when its subject is a routed message).
    _POINTERS = {
        "message_routes": (("message_id", "messages"), ("answer_id", "messages")),
        "work_topics": (("subject_id", "messages"),),
        "deliberations": (("memory_id", "memories"), ("supersedes", "memories")),
        "lessons": (("memory_id", "memories"),),
        "lesson_views": (("memory_id", "memories"),),
    }
    # Event payload keys that carry those ids, by the word the event kind contains.
    _EVENT_IDS = {
        "message": ("messages", ("id", "ids", "reply_to", "answer")),
        "answer_judged": ("messages", ("id",)),
        "deliberation_recorded": ("memories", ("memory_id",)),
        "lesson": ("memories", ("memory_id", "memory_ids")),
        "memor": ("memories", ("id", "ids", "supersedes", "superseded_by")),
        "spawn": ("spawns", ("id",)),
        "placed": ("spawns", ("id",)),
    }

    def _rows(self, db: Connection, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = db.execute(sql, args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def dump_team(self, team: str) -> TeamDump:
        """Every row the store holds for ``team`` (its history included), read in one
        snapshot."""
        with self._read() as db:
            team_id = self._team_id(db, team)
            rows: dict[str, list[dict[str, Any]]] = {}
            team_row = self._rows(
                db,
                "SELECT description, created_at, last_seq, last_task_id, last_fence "
                "FROM teams WHERE id = ?",
                (team_id,),
            )
            rows["teams"] = team_row
            for table in self._TEAM_TABLES:
                found = self._rows(
                    db,
                    f"SELECT * FROM {table} WHERE team_id = ? ORDER BY {self._ORDER[table]}",
                    (team_id,),
                )
                for r in found:
                    del r["team_id"]
                rows[table] = found
            project = self._rows(db, "SELECT * FROM memories WHERE team_id IS NULL ORDER BY id", ())
            for r in project:
                del r["team_id"]
        return TeamDump(team, rows, project)

    @atomic
    def load_team(self, dump: TeamDump) -> dict[str, int]:
        """Add a dumped team, in one transaction; AlreadyExists if the store has a team
        of that name. Ids are kept where they are free; where another team holds them
        (messages, spawns, memories and usage records are numbered store-wide) they are
        renumbered and the team's event log follows. Project-wide memories are added
        unless an identical one is there. Returns rows written per table."""
        check_name(dump.team, "team name")
        with self._write() as db:
            if db.execute("SELECT 1 FROM teams WHERE name = ?", (dump.team,)).fetchone():
                raise AlreadyExists(
                    f"the target store already has a team named {dump.team!r}; delete it "
                    "there first, or copy into another store"
                )
            (head,) = dump.rows["teams"]
            team_id = db.execute(
                "INSERT INTO teams (name, description, created_at, last_seq, last_task_id, "
                "last_fence) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    dump.team,
                    head["description"],
                    head["created_at"],
                    head["last_seq"],
                    head["last_task_id"],
                    head["last_fence"],
                ),
            ).fetchone()[0]
            self._serialize_memory(db)  # its entries join the shared index and its counts
            maps: dict[str, dict[int, int]] = {}
            written: dict[str, int] = {}
            for table in self._TEAM_TABLES[:-1]:
                written[table] = self._load_rows(db, table, team_id, dump.rows[table], maps)
            fresh = []
            for r in dump.project_memories:
                same = db.execute(
                    "SELECT id FROM memories WHERE team_id IS NULL AND scope = ? AND type = ? "
                    "AND text = ? AND created_at = ?",
                    (r["scope"], r["type"], r["text"], r["created_at"]),
                ).fetchone()
                if same is None:
                    fresh.append(r)
                else:  # already there (copied with another team): events point to it
                    maps.setdefault("memories", {})[r["id"]] = same[0]
            written["project memories"] = self._load_rows(db, "memories", None, fresh, maps)
            # A deliberation's decision may be a project-wide memory, loaded just now.
            moved = maps.get("memories", {})
            for r in dump.rows["deliberations"]:
                for column in ("memory_id", "supersedes"):
                    if r[column] is not None and moved.get(r[column], r[column]) != r[column]:
                        db.execute(
                            f"UPDATE deliberations SET {column} = ? WHERE team_id = ? AND id = ?",
                            (moved[r[column]], team_id, r["id"]),
                        )
            events = [self._renumber_event(r, maps) for r in dump.rows["events"]]
            written["events"] = self._load_rows(db, "events", team_id, events, maps)
            return written

    def _load_rows(
        self,
        db: Connection,
        table: str,
        team_id: int | None,
        rows: list[dict[str, Any]],
        maps: dict[str, dict[int, int]],
    ) -> int:
        if not rows:
            return 0
        links = self._NUMBERED.get(table)
        mapping = maps.setdefault(table, {}) if links is not None else {}
        if links is not None:
            ids = [r["id"] for r in rows]
            taken = any(
                db.execute(
                    f"SELECT 1 FROM {table} WHERE id IN ({','.join('?' * len(chunk))}) LIMIT 1",
                    chunk,
                ).fetchone()
                for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500))
            )
        for r in rows:
            values = dict(r, team_id=team_id)
            for column, target in self._POINTERS.get(table, ()):
                if values[column] is not None and values.get("subject", "route") == "route":
                    values[column] = maps.get(target, {}).get(values[column], values[column])
            if links is not None:
                for column in links:
                    values[column] = None  # pointed again below, once every row has its id
                if taken:
                    del values["id"]
            columns = list(values)
            insert = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})"
            )
            if links is None:
                db.execute(insert, [values[c] for c in columns])
                continue
            new_id = db.execute(insert + " RETURNING id", [values[c] for c in columns]).fetchone()
            mapping[r["id"]] = new_id[0]
            if table == "memories":
                self._index(db, new_id[0], r["text"], json.loads(r["tags"]))
        if links is not None and not taken:
            self._ids_given(db, table)
        for r in rows:
            for column in links or ():
                if r[column] is not None:
                    db.execute(
                        f"UPDATE {table} SET {column} = ? WHERE id = ?",
                        (mapping.get(r[column], r[column]), mapping[r["id"]]),
                    )
        return len(rows)

    def _ids_given(self, db: Connection, table: str) -> None:
        """Rows were added to ``table`` with ids of their own: the next id the store
        hands out must come after them (SQLite's AUTOINCREMENT sees to that itself)."""

    def _renumber_event(
        self, row: dict[str, Any], maps: dict[str, dict[int, int]]
    ) -> dict[str, Any]:
        for word, (table, keys) in self._EVENT_IDS.items():
            mapping = maps.get(table)
            if word not in row["kind"] or not mapping or all(k == v for k, v in mapping.items()):
                continue
            payload = json.loads(row["payload"])
            for key in keys:
                value = payload.get(key)
                if isinstance(value, int):
                    payload[key] = mapping.get(value, value)
                elif isinstance(value, list):
                    payload[key] = [mapping.get(v, v) if isinstance(v, int) else v for v in value]
            return dict(row, payload=json.dumps(payload, separators=(",", ":")))
        return row
