"""`accord store copy`: teams move between stores with their whole history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from accord.store import Store, open_store
from accord.testing.conformance import snapshot
from accord.types import MemoryType, OutgoingMessage
from conftest import Result


def _busy(cli: Callable[..., Result], store: str) -> None:
    for args in (
        ("init", "--team", "main", "--store", store),
        ("member", "add", "alice", "--store", store),
        ("member", "add", "bob", "--store", store),
        ("task", "add", "one", "--store", store),
        ("task", "add", "two", "--blocked-by", "1", "--store", store),
        ("msg", "send", "--from", "alice", "--to", "bob", "hello", "--store", store),
        ("memory", "add", "--type", "decision", "use sqlite", "--store", store),
        ("memory", "add", "--type", "decision", "use pg", "--supersedes", "1", "--store", store),
    ):
        r = cli(*args)
        assert r.code == 0, (args, r.err)


def test_copy_keeps_everything_and_changes_no_source(
    cli: Callable[..., Result], project: Path
) -> None:
    src, dst = str(project / "a.db"), str(project / "b.db")
    _busy(cli, src)
    with open_store(src) as s:
        before = snapshot(s)
    r = cli("store", "copy", "--from", src, "--to", dst)
    assert r.code == 0, r.err
    assert r.out.startswith("copied team main: ")
    with open_store(src) as s, open_store(dst) as d:
        assert snapshot(s) == before
        # Into an empty store every id is kept, so the two are indistinguishable.
        assert snapshot(d) == before
    again = cli("store", "copy", "--from", dst, "--to", str(project / "c.db"), "--json")
    assert again.code == 0
    assert json.loads(again.out)[0]["rows"]["events"] == len(before.events[0])


def test_copy_into_a_store_with_other_teams(cli: Callable[..., Result], project: Path) -> None:
    src, dst = str(project / "a.db"), str(project / "b.db")
    _busy(cli, src)
    assert cli("init", "--team", "other", "--store", dst).code == 0
    assert cli("member", "add", "zed", "--team", "other", "--store", dst).code == 0
    assert (
        cli("msg", "send", "--from", "zed", "--to", "zed", "x", "--team", "other", "--store", dst)
    ).code == 0
    r = cli("store", "copy", "--from", src, "--to", dst, "--team", "main")
    assert r.code == 0, r.err
    with open_store(dst) as d:
        assert sorted(t.name for t in d.list_teams()) == ["main", "other"]
        (moved,) = d.list_messages("main")
        assert moved.body == "hello" and moved.id != 1  # 1 is other's
        sent = [e for e in d.read_events("main") if e.kind == "message_sent"]
        assert sent[0].payload["ids"] == [moved.id]
        history = d.list_memories("main")
        assert {m.text for m in history} == {"use sqlite", "use pg"}


def test_routes_and_deliberations_point_at_their_renumbered_rows(
    cli: Callable[..., Result], project: Path
) -> None:
    """Messages and memories are numbered store-wide: copied where others hold those
    ids, a route still names its message and answer, a copy its route, and a
    deliberation its decision memory; the working patterns read the same."""
    from accord.team import Team

    src, dst = str(project / "a.db"), str(project / "b.db")
    _busy(cli, src)
    with open_store(src) as s:
        team = Team(s, "main")
        (q,) = team.routing().send("alice", "*", "which cache?", tags=["api"])
        team.mailbox.send("bob", "alice", "redis", reply_to=q.id)
        team.routing().judge(q.id, "alice")
        d = team.deliberations.ask("sqlite or pg?", "alice", members=["bob"], rounds=0)
        team.deliberations.submit(d.id, "bob", "pg")
        team.deliberations.synthesize(d.id, "bob", "pg")
        routes, patterns = s.list_routes("main"), s.work_patterns("main")
    for args in (
        ("init", "--team", "other", "--store", dst),
        ("member", "add", "zed", "--team", "other", "--store", dst),
        ("msg", "send", "--from", "zed", "--to", "zed", "x", "--team", "other", "--store", dst),
        ("memory", "add", "--type", "insight", "x", "--team", "other", "--store", dst),
    ):
        assert cli(*args).code == 0, args
    assert cli("store", "copy", "--from", src, "--to", dst, "--team", "main").code == 0
    with open_store(dst) as d_:
        (route,) = d_.list_routes("main")
        moved = {m.body: m for m in d_.list_messages("main")}
        assert route.message_id == moved["which cache?"].id != routes[0].message_id
        assert route.answer_id == moved["redis"].id and route.topics == ("api",)
        assert {m.route_id for m in d_.list_messages("main") if m.body == "which cache?"} == {
            route.message_id
        }
        assert d_.work_patterns("main") == patterns
        (copied,) = d_.list_deliberations("main")
        assert copied.memory_id is not None
        assert "sqlite or pg?" in d_.get_memory("main", copied.memory_id).text
        recorded = [e for e in d_.read_events("main") if e.kind == "deliberation_recorded"]
        assert recorded[0].payload["memory_id"] == copied.memory_id


def test_copy_refuses_and_writes_nothing(cli: Callable[..., Result], project: Path) -> None:
    src, dst = str(project / "a.db"), str(project / "b.db")
    _busy(cli, src)
    missing = cli("store", "copy", "--from", str(project / "none.db"), "--to", dst)
    assert missing.code == 2 and missing.err.startswith("error: no store at")
    unknown = cli("store", "copy", "--from", src, "--to", dst, "--team", "nope")
    assert unknown.code == 2 and "no team named 'nope'" in unknown.err
    same = cli("store", "copy", "--from", src, "--to", src)
    assert same.code == 2 and "same store" in same.err
    assert not Path(dst).exists()  # nothing was created for a refused copy
    assert cli("store", "copy", "--from", src, "--to", dst).code == 0
    with open_store(dst) as d:
        before = snapshot(d)
    twice = cli("store", "copy", "--from", src, "--to", dst)
    assert twice.code == 2 and "already has team 'main'" in twice.err
    assert len(twice.err.strip().splitlines()) == 1
    with open_store(dst) as d:
        assert snapshot(d) == before


def test_a_team_goes_to_postgresql_and_back_unchanged(
    cli: Callable[..., Result], project: Path, pg_url: str
) -> None:
    src, back = str(project / "a.db"), str(project / "back.db")
    _busy(cli, src)
    with open_store(src) as s:
        before = snapshot(s)
    there = cli("store", "copy", "--from", src, "--to", pg_url)
    assert there.code == 0, there.err
    with open_store(pg_url) as p:
        assert snapshot(p) == before
        # The ids PostgreSQL hands out next come after the copied ones.
        p.send_message("main", OutgoingMessage("bob", "alice", "after the move"))
        assert max(m.id for m in p.list_messages("main")) == 2
        _searchable(p)
    home = cli("store", "copy", "--from", pg_url, "--to", back)
    assert home.code == 0, home.err
    with open_store(back) as b:
        assert [m.body for m in b.list_messages("main")] == ["hello", "after the move"]
        assert len(b.read_events("main")) == len(before.events[0]) + 1
        _searchable(b)


def _searchable(store: Store) -> None:
    """The copied entries are in the target's text index and its counts."""
    assert store.memory_matches(["sqlite", "pg", "use"]) == (2, [1, 1, 2])
    found = store.search_memories(
        "main", ["sqlite"], scopes=["team"], types=list(MemoryType), include_superseded=True
    )
    assert [c.entry.text for c in found] == ["use sqlite"]
