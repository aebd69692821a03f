"""Numbered schema migrations, recorded in the ``accord_migrations`` table.

Each migration is a function that receives a connection inside the migrating
transaction. New ones are appended, never edited once released: a store
records the names it has applied, and one that knows a name this code does not
was written by a newer accord and is refused rather than misread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from accord.text import terms

SqliteMigration = Callable[[sqlite3.Connection], None]

SQLITE_MIGRATIONS: list[tuple[str, SqliteMigration]] = []


def sqlite_migration(fn: SqliteMigration) -> SqliteMigration:
    SQLITE_MIGRATIONS.append((fn.__name__, fn))
    return fn


def _run(db: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it commits first, and a migration must stay in its transaction.
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement[:80]!r}")


@sqlite_migration
def m001_initial(db: sqlite3.Connection) -> None:
    _run(
        db,
        """
        CREATE TABLE teams (
            id            INTEGER PRIMARY KEY,
            name          TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 40),
            description   TEXT NOT NULL DEFAULT '',
            created_at    REAL NOT NULL,
            last_seq      INTEGER NOT NULL DEFAULT 0,   -- event counter: gap-free per team
            last_task_id  INTEGER NOT NULL DEFAULT 0,   -- task ids are per team
            last_fence    INTEGER NOT NULL DEFAULT 0    -- fencing tokens are unique per team
        );

        CREATE TABLE members (
            team_id       INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
            name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 40),
            role          TEXT NOT NULL,
            agent         TEXT,
            model         TEXT,
            status        TEXT NOT NULL,
            heartbeat_at  REAL,
            pid           INTEGER,
            host          TEXT,
            token_hash    TEXT NOT NULL,
            created_at    REAL NOT NULL,
            PRIMARY KEY (team_id, name)
        ) WITHOUT ROWID;

        CREATE TABLE tasks (
            team_id          INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
            id               INTEGER NOT NULL,
            title            TEXT NOT NULL,
            description      TEXT NOT NULL DEFAULT '',
            status           TEXT NOT NULL,
            priority         INTEGER NOT NULL DEFAULT 0,
            assignee         TEXT,
            owner            TEXT,
            fencing_token    INTEGER,
            lease_expires_at REAL,
            attempts         INTEGER NOT NULL DEFAULT 0,
            max_attempts     INTEGER NOT NULL,
            result           TEXT,
            reason           TEXT,
            created_by       TEXT,
            created_at       REAL NOT NULL,
            updated_at       REAL NOT NULL,
            admitted         INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (team_id, id)
        );
        CREATE INDEX tasks_ready ON tasks(team_id, status, priority DESC, id);
        CREATE INDEX tasks_leases ON tasks(team_id, lease_expires_at)
            WHERE status = 'in_progress';

        CREATE TABLE task_deps (
            team_id     INTEGER NOT NULL,
            task_id     INTEGER NOT NULL,
            blocker_id  INTEGER NOT NULL,
            PRIMARY KEY (team_id, task_id, blocker_id),
            FOREIGN KEY (team_id, task_id) REFERENCES tasks(team_id, id) ON DELETE CASCADE,
            FOREIGN KEY (team_id, blocker_id) REFERENCES tasks(team_id, id) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE INDEX task_deps_blocker ON task_deps(team_id, blocker_id);

        CREATE TABLE messages (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            team_id          INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
            sender           TEXT NOT NULL,
            recipient        TEXT NOT NULL,
            kind             TEXT NOT NULL,
            body             TEXT NOT NULL,
            summary          TEXT,
            request_id       TEXT,
            reply_to         INTEGER,
            idempotency_key  TEXT,
            broadcast        INTEGER NOT NULL DEFAULT 0,
            sent_at          REAL NOT NULL,
            delivered_at     REAL,
            visible_at       REAL NOT NULL,
            acked_at         REAL,
            deliveries       INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX messages_inbox ON messages(team_id, recipient, visible_at)
            WHERE acked_at IS NULL;
        CREATE INDEX messages_team ON messages(team_id, id);
        CREATE UNIQUE INDEX messages_once ON messages(team_id, sender, idempotency_key, recipient)
            WHERE idempotency_key IS NOT NULL;

        CREATE TABLE events (
            team_id  INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
            seq      INTEGER NOT NULL,
            at       REAL NOT NULL,
            actor    TEXT,
            kind     TEXT NOT NULL,
            payload  TEXT NOT NULL,
            PRIMARY KEY (team_id, seq)
        ) WITHOUT ROWID;
        """,
    )


@sqlite_migration
def m002_transcripts_and_usage(db: sqlite3.Connection) -> None:
    _run(
        db,
        """
        CREATE TABLE transcripts (
            team_id  INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
            member   TEXT NOT NULL,
            seq      INTEGER NOT NULL,
            session  INTEGER NOT NULL,
            kind     TEXT NOT NULL,
            task_id  INTEGER,
            at       REAL NOT NULL,
            body     TEXT NOT NULL,
            PRIMARY KEY (team_id, member, seq)
        ) WITHOUT ROWID;
        CREATE INDEX transcripts_session ON transcripts(team_id, member, session, seq);

        CREATE TABLE usage (
            id                  INTEGER PRIMARY KEY AUTOINCREMENT,
            team_id             INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
            member              TEXT NOT NULL,
            task_id             INTEGER,
            model               TEXT NOT NULL,
            input_tokens        INTEGER NOT NULL,
            output_tokens       INTEGER NOT NULL,
            cache_read_tokens   INTEGER NOT NULL,
            cache_write_tokens  INTEGER NOT NULL,
            cost_usd            REAL,
            latency_seconds     REAL NOT NULL,
            at                  REAL NOT NULL
        );
        CREATE INDEX usage_member ON usage(team_id, member);
        """,
    )


@sqlite_migration
def m003_claim_by_assignee(db: sqlite3.Connection) -> None:
    # A claim first looks for ready tasks assigned to the claimer, best first.
    _run(
        db,
        """
        CREATE INDEX tasks_assigned ON tasks(team_id, assignee, status, priority DESC, id)
            WHERE assignee IS NOT NULL;
        """,
    )


@sqlite_migration
def m004_runs_and_spawns(db: sqlite3.Connection) -> None:
    _run(
        db,
        """
        CREATE TABLE runs (
            team_id               INTEGER PRIMARY KEY REFERENCES teams(id) ON DELETE CASCADE,
            goal                  TEXT NOT NULL,
            lead                  TEXT NOT NULL,
            status                TEXT NOT NULL,
            summary               TEXT,
            settings              TEXT NOT NULL,
            wanted                TEXT NOT NULL,
            supervisor_token      INTEGER NOT NULL DEFAULT 0,
            supervisor_pid        INTEGER,
            supervisor_host       TEXT,
            supervisor_expires_at REAL,
            started_at            REAL NOT NULL,
            updated_at            REAL NOT NULL
        );

        CREATE TABLE spawns (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            team_id       INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
            name          TEXT NOT NULL,
            agent         TEXT,
            model         TEXT,
            host          TEXT,
            requested_by  TEXT,
            status        TEXT NOT NULL,
            reason        TEXT,
            created_at    REAL NOT NULL,
            handled_at    REAL
        );
        CREATE INDEX spawns_pending ON spawns(team_id, status);
        """,
    )


@sqlite_migration
def m005_plan_keys(db: sqlite3.Connection) -> None:
    # A task loaded from a plan file keeps the file's id for it, once per team, so
    # loading the same plan again adds nothing twice.
    _run(
        db,
        """
        ALTER TABLE tasks ADD COLUMN plan_key TEXT;
        CREATE UNIQUE INDEX tasks_plan_key ON tasks(team_id, plan_key)
            WHERE plan_key IS NOT NULL;
        """,
    )


@sqlite_migration
def m006_memory(db: sqlite3.Connection) -> None:
    _run(
        db,
        """
        CREATE TABLE memories (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            team_id        INTEGER REFERENCES teams(id) ON DELETE CASCADE,  -- NULL: project
            scope          TEXT NOT NULL,
            type           TEXT NOT NULL,
            text           TEXT NOT NULL,
            tags           TEXT NOT NULL,
            status         TEXT NOT NULL,
            author         TEXT,
            task_id        INTEGER,
            session        INTEGER,
            created_at     REAL NOT NULL,
            seen_at        REAL NOT NULL,
            count          INTEGER NOT NULL DEFAULT 1,
            supersedes     INTEGER REFERENCES memories(id),
            superseded_by  INTEGER REFERENCES memories(id)
        );
        CREATE INDEX memories_scope ON memories(team_id, scope, type, status);

        CREATE VIRTUAL TABLE memories_fts USING fts5(
            text, tags, content='memories', content_rowid='id', tokenize='porter unicode61'
        );
        CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
            INSERT INTO memories_fts(rowid, text, tags) VALUES (new.id, new.text, new.tags);
        END;
        CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, text, tags)
                VALUES ('delete', old.id, old.text, old.tags);
        END;
        CREATE TRIGGER memories_au AFTER UPDATE OF text, tags ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, text, tags)
                VALUES ('delete', old.id, old.text, old.tags);
            INSERT INTO memories_fts(rowid, text, tags) VALUES (new.id, new.text, new.tags);
        END;

        CREATE TABLE continuity (
            team_id  INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
            member   TEXT NOT NULL,
            version  INTEGER NOT NULL,
            text     TEXT NOT NULL,
            at       REAL NOT NULL,
            PRIMARY KEY (team_id, member, version)
        ) WITHOUT ROWID;
        """,
    )


@sqlite_migration
def m007_memory_index(db: sqlite3.Connection) -> None:
    # The text index holds what accord.text makes of each entry (its stemmed words, as
    # every backend indexes them) instead of FTS5's own tokenizing, so a word counts
    # the same in every store and per-word entry counts come from the index's
    # vocabulary. The ascii tokenizer only splits on the spaces between those terms.
    # A memory's text and tags never change once written; the store writes the index
    # row with the entry, and a deleted entry takes its row with it. memory_count
    # keeps the number of entries, which count(*) would find only by a full scan.
    _run(
        db,
        """
        DROP TRIGGER memories_ai;
        DROP TRIGGER memories_ad;
        DROP TRIGGER memories_au;
        DROP TABLE memories_fts;
        CREATE VIRTUAL TABLE memory_index USING fts5(text, tags, tokenize='ascii');
        CREATE VIRTUAL TABLE memory_vocab USING fts5vocab(memory_index, 'row');
        CREATE TABLE memory_count (entries INTEGER NOT NULL);
        INSERT INTO memory_count (entries) SELECT count(*) FROM memories;
        CREATE TRIGGER memories_counted AFTER INSERT ON memories BEGIN
            UPDATE memory_count SET entries = entries + 1;
        END;
        CREATE TRIGGER memories_unindex AFTER DELETE ON memories BEGIN
            DELETE FROM memory_index WHERE rowid = old.id;
            UPDATE memory_count SET entries = entries - 1;
        END;
        """,
    )
    rows = db.execute("SELECT id, text, tags FROM memories").fetchall()
    db.executemany(
        "INSERT INTO memory_index (rowid, text, tags) VALUES (?, ?, ?)",
        (
            (i, " ".join(terms(text)), " ".join(terms(" ".join(json.loads(tags)))))
            for i, text, tags in rows
        ),
    )


@sqlite_migration
def m008_memory_vectors(db: sqlite3.Connection) -> None:
    # Optional embedding vectors, one per entry and model (little-endian float32), kept
    # apart per model so that changing the model never compares vectors of two. A rowid
    # table with the key in a narrow index: counting a model's vectors, or finding a
    # few, never walks the kilobytes of the vectors themselves.
    _run(
        db,
        """
        CREATE TABLE memory_vectors (
            memory_id  INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
            model      TEXT NOT NULL,
            vector     BLOB NOT NULL,
            UNIQUE (model, memory_id)
        );
        CREATE INDEX memory_vectors_entry ON memory_vectors(memory_id);
        CREATE TRIGGER memories_unvector AFTER DELETE ON memories BEGIN
            DELETE FROM memory_vectors WHERE memory_id = old.id;
        END;
        """,
    )
