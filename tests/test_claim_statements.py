"""A claim-and-complete cycle: how many statements it runs, and the cached team id it
uses, which must never act on a team that was deleted and created again."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.errors import UnknownTeam
from accord.store import open_store
from accord.store.sqlite import SQLiteStore
from accord.types import NewTask, TaskStatus


def _team(store: SQLiteStore, name: str, tasks: int) -> None:
    store.create_team(name)
    store.add_member(name, "w0", token_hash="x")
    for i in range(tasks):
        store.add_task(name, NewTask(title=f"{name} {i}"), max_attempts=3)


def test_a_cycle_runs_at_most_21_statements(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "a.db"), create=True) as store:
        assert isinstance(store, SQLiteStore)
        _team(store, "t", 3)
        seen: list[str] = []
        for n in range(3):
            if n == 1:  # after the first cycle has cached the team's id
                store._db.set_trace_callback(seen.append)
            claim = store.claim_task("t", "w0", lease_seconds=60)
            assert claim is not None
            store.complete_task("t", claim.task.id, "w0", claim.fencing_token, "ok")
        store._db.set_trace_callback(None)
    assert len(seen) / 2 <= 21, seen


def test_a_recreated_team_is_never_confused_with_the_old(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    with open_store(path, create=True) as a, open_store(path) as b:
        _team(a, "t", 2)
        first = a.claim_task("t", "w0", lease_seconds=60)
        assert first is not None  # a has cached t's id
        # Another process deletes t; SQLite gives its id to the next team, "u", whose
        # member has the same name; then t is created again under a new id.
        b.delete_team("t")
        _team(b, "u", 1)
        _team(b, "t", 1)
        second = a.claim_task("t", "w0", lease_seconds=60)
        assert second is not None and second.task.title == "t 0"
        a.complete_task("t", second.task.id, "w0", second.fencing_token, "ok")
        assert [x.status for x in b.list_tasks("t")] == [TaskStatus.COMPLETED]
        assert [x.status for x in b.list_tasks("u")] == [TaskStatus.PENDING]
        # And a team deleted for good is an unknown team, not an empty board.
        b.delete_team("t")
        with pytest.raises(UnknownTeam, match="no team named 't'"):
            a.claim_task("t", "w0", lease_seconds=60)
