"""Memory: each type's lifecycle, decay on a fake clock, reinforcement (also from eight
real processes at once), the similarity threshold, import and export, and the
``accord memory`` commands with their errors.

Everything refused must leave the store exactly as it was: the service tests
compare the conformance suite's snapshot, the command-line tests every row of
the SQLite file.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import pytest

from accord.config import InsightDecay, MemoryConfig, ObservationDecay
from accord.errors import UserError
from accord.memory import DAY, REINFORCE_BOOST, SUPERSEDED_FACTOR, Memory, similar
from accord.store import Store, open_store
from accord.store.base import MAX_MEMORY
from accord.testing import FakeClock
from accord.testing.cli import js, ok, one_error
from accord.testing.conformance import snapshot
from accord.types import MemoryEntry, MemoryStatus, MemoryType, NewMemory
from conftest import Cli, dump, note, refusals, store_path
from conftest import reaped as reaping

TEAM = "main"
CTX = mp.get_context("spawn")
DEADLINE = 60.0

DEC, INS, OBS, STO = (
    MemoryType.DECISION,
    MemoryType.INSIGHT,
    MemoryType.OBSERVATION,
    MemoryType.STORY,
)


@pytest.fixture
def memory(store: Store, clock: FakeClock) -> Memory:
    """The memory of team main (members alice, bob, carol), on the fake clock."""
    return Memory(store, TEAM, clock=clock)


def recalled_ids(memory: Memory, query: str, **kw: Any) -> list[int]:
    return [r.entry.id for r in memory.recall(query, **kw)]


# each type's lifecycle -----------------------------------------------------------


def test_decision_lifecycle(memory: Memory, clock: FakeClock) -> None:
    first = note(memory, DEC, "store the board in postgres", author="alice")
    assert recalled_ids(memory, "where is the board stored") == [first.id]
    clock.advance(DAY)
    second = note(memory, DEC, "store the board in sqlite", supersedes=first.id)
    assert memory.get(first.id).status == MemoryStatus.SUPERSEDED
    # The superseded decision is left out of recall, unless history is asked for.
    assert recalled_ids(memory, "board store") == [second.id]
    with_history = memory.recall("board store", history=True)
    assert [r.entry.id for r in with_history] == [second.id, first.id]
    assert with_history[1].decay == SUPERSEDED_FACTOR
    third = note(memory, DEC, "store the board in duckdb", supersedes=second.id)
    chain = [first.id, second.id, third.id]
    for member in chain:
        assert [e.id for e in memory.history(member)] == chain
    memory.forget(third.id)
    assert memory.get(third.id).status == MemoryStatus.RETIRED  # kept
    assert recalled_ids(memory, "board store") == []
    assert [e.status for e in memory.history(first.id)] == [
        MemoryStatus.SUPERSEDED,
        MemoryStatus.SUPERSEDED,
        MemoryStatus.RETIRED,
    ]


def test_insight_lifecycle(memory: Memory, clock: FakeClock) -> None:
    entry = note(memory, INS, "review small pull requests the same day", tags=("review",))
    (hit,) = memory.recall("pull requests review")
    assert hit.entry == entry and hit.decay == 1.0
    clock.advance(180 * DAY)
    (hit,) = memory.recall("pull requests review")
    assert hit.decay == pytest.approx(0.8)  # one half-life: halfway down to the 0.6 floor
    again, reinforced = memory.remember(NewMemory(INS, entry.text))
    assert not reinforced and again.id != entry.id  # only observations are reinforced
    memory.forget(entry.id)
    memory.forget(again.id)
    assert memory.recall("pull requests review") == []
    assert memory.get(entry.id).text == entry.text


def test_observation_lifecycle(memory: Memory, clock: FakeClock) -> None:
    entry = note(memory, OBS, "the integration tests time out when the runner is busy")
    clock.advance(10 * DAY)
    again, reinforced = memory.remember(NewMemory(OBS, entry.text))
    assert reinforced and again.id == entry.id and again.count == 2
    assert again.seen_at == clock() and again.created_at == entry.created_at
    (hit,) = memory.recall("integration tests time out")
    assert hit.boost > 0 and "noted 2 times" in hit.why
    memory.forget(entry.id)
    assert memory.recall("integration tests") == []
    fresh, reinforced = memory.remember(NewMemory(OBS, entry.text))
    assert not reinforced and fresh.id != entry.id  # a retired entry is not strengthened


def test_story_is_never_recalled_but_listed_by_type(memory: Memory) -> None:
    story = note(memory, STO, "how the first release went wrong: the cache was cold")
    insight = note(memory, INS, "warm the cache before a release")
    assert recalled_ids(memory, "the first release went wrong the cache was cold") == [insight.id]
    assert memory.recall(story.text, types=[STO]) == []
    assert memory.stories() == [story]
    assert memory.get(story.id) == story
    assert memory.store.list_memories(TEAM, type=STO) == [story]
    memory.forget(story.id)
    assert memory.stories()[0].status == MemoryStatus.RETIRED


# decay ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "days", "expected"),
    [
        (OBS, 0, 1.0),
        (OBS, 30, 0.3 + 0.7 * 0.5),
        (OBS, 60, 0.3 + 0.7 * 0.25),
        (OBS, 90, 0.3 + 0.7 * 0.125),
        (INS, 0, 1.0),
        (INS, 180, 0.6 + 0.4 * 0.5),
        (INS, 360, 0.6 + 0.4 * 0.25),
        (DEC, 0, 1.0),
        (DEC, 10_000, 1.0),
    ],
)
def test_decay_at_known_ages(
    memory: Memory, clock: FakeClock, kind: MemoryType, days: float, expected: float
) -> None:
    entry = note(memory, kind, "deploys happen on tuesdays")
    clock.advance(days * DAY)
    value, why = memory.decay(memory.get(entry.id))
    assert value == pytest.approx(expected)
    (hit,) = memory.recall("deploys tuesdays")
    assert hit.decay == pytest.approx(expected) and hit.score == pytest.approx(expected)
    assert why in hit.why


def test_observation_fades_from_when_it_was_last_seen(memory: Memory, clock: FakeClock) -> None:
    entry = note(memory, OBS, "the nightly build breaks after dependency bumps")
    clock.advance(60 * DAY)
    memory.remember(NewMemory(OBS, entry.text))  # seen again: the fading starts over
    clock.advance(30 * DAY)
    value, why = memory.decay(memory.get(entry.id))
    assert value == pytest.approx(0.65)  # 30 days since last seen, not 90 since created
    assert "30.0 d since last seen" in why


@pytest.mark.parametrize(("kind", "floor"), [(OBS, 0.3), (INS, 0.6)])
def test_floors_are_never_crossed(
    memory: Memory, clock: FakeClock, kind: MemoryType, floor: float
) -> None:
    entry = note(memory, kind, "keep migrations numbered")
    last = 1.0
    for _ in range(12):
        clock.advance(365 * DAY)
        value, _ = memory.decay(memory.get(entry.id))
        assert floor <= value <= last
        last = value
    assert last == pytest.approx(floor, abs=1e-6)


def test_superseded_decision_is_recalled_only_with_history(memory: Memory) -> None:
    old = note(memory, DEC, "ship on fridays")
    new = note(memory, DEC, "never ship on fridays", supersedes=old.id)
    assert memory.decay(memory.get(old.id)) == (SUPERSEDED_FACTOR, "superseded decision")
    assert recalled_ids(memory, "ship fridays") == [new.id]
    hits = memory.recall("ship fridays", history=True)
    assert [(h.entry.id, h.decay) for h in hits] == [(new.id, 1.0), (old.id, SUPERSEDED_FACTOR)]
    assert "superseded decision" in hits[1].why


def test_half_lives_and_floors_come_from_config(store: Store, clock: FakeClock) -> None:
    config = MemoryConfig(
        observation=ObservationDecay(half_life_days=1, floor=0.5),
        insight=InsightDecay(half_life_days=1, floor=1.0),  # a floor of 1: never fades
    )
    memory = Memory(store, TEAM, config, clock=clock)
    seen = note(memory, OBS, "quick to fade")
    kept = note(memory, INS, "never fades")
    clock.advance(DAY)
    assert memory.decay(memory.get(seen.id))[0] == pytest.approx(0.75)
    assert memory.decay(memory.get(kept.id))[0] == 1.0


# recall --------------------------------------------------------------------------


def test_recall_explains_relevance_decay_and_reinforcement(
    memory: Memory, clock: FakeClock
) -> None:
    entry = note(memory, OBS, "flaky tests usually mean a shared temp folder")
    for _ in range(3):
        memory.remember(NewMemory(OBS, entry.text))
    other = note(memory, INS, "a shared folder needs a lock")
    clock.advance(30 * DAY)
    hits = memory.recall("flaky tests shared temp folder")
    top = hits[0]
    assert top.entry.id == entry.id and top.entry.count == 4
    assert top.boost == pytest.approx(REINFORCE_BOOST * math.log(4))
    assert top.score == pytest.approx(top.relevance * top.decay + top.boost)
    assert top.relevance == 1.0  # normalised to the best match
    for word in ("relevance", "bm25", "decay", "half-life 30 d", "floor 0.3", "noted 4 times"):
        assert word in top.why, word
    assert top.why.endswith(f"= {top.score:.3f}")
    (second,) = [h for h in hits if h.entry.id == other.id]
    assert second.relevance < 1.0 and second.boost == 0 and "noted" not in second.why


def test_recall_writes_nothing(memory: Memory, store: Store) -> None:
    note(memory, DEC, "use tabs in makefiles")
    note(memory, OBS, "makefiles break with spaces")
    before = snapshot(store)
    for _ in range(3):
        hits = memory.recall("makefiles tabs spaces", member="alice", history=True)
        assert len(hits) == 2
    assert memory.recall("") == [] and memory.recall("the of and") == []
    assert snapshot(store) == before
    # Passing recalled text back in is the caller's choice; recall itself stores nothing.
    assert len(store.list_memories(TEAM)) == 2


def test_recall_sees_member_scope_only_as_that_member(memory: Memory) -> None:
    mine = note(memory, INS, "alice prefers small commits", scope="member:alice")
    shared = note(memory, INS, "small commits review faster", scope="project")
    assert recalled_ids(memory, "small commits") == [shared.id]
    assert set(recalled_ids(memory, "small commits", member="alice")) == {mine.id, shared.id}
    assert recalled_ids(memory, "small commits", member="bob") == [shared.id]
    with pytest.raises(UserError, match="k of 1 or more"):
        memory.recall("small commits", k=0)
    assert len(memory.recall("small commits", member="alice", k=1)) == 1


# reinforcement and the similarity threshold -------------------------------------------


def _jaccard_pair(shared: int, extra: int) -> tuple[str, str]:
    """Two texts whose word sets overlap in ``shared`` words, the second with ``extra`` more."""
    base = [f"w{i}x" for i in range(shared)]
    more = [f"v{i}y" for i in range(extra)]
    return " ".join(base), " ".join(base + more)


@pytest.mark.parametrize(
    ("shared", "extra", "same"),
    [
        (16, 4, True),  # exactly 0.8: the threshold is inclusive
        (20, 4, True),  # 0.833, just above
        (19, 5, False),  # 0.792, just below
        (24, 6, True),  # 0.8
        (24, 7, False),  # 0.774
    ],
)
def test_similarity_threshold(memory: Memory, shared: int, extra: int, same: bool) -> None:
    a, b = _jaccard_pair(shared, extra)
    assert similar(a, b, 0.8) is same
    first = note(memory, OBS, a)
    entry, reinforced = memory.remember(NewMemory(OBS, b))
    assert reinforced is same
    assert (entry.id == first.id) is same
    assert len(memory.store.list_memories(TEAM)) == (1 if same else 2)


def test_similarity_ignores_case_punctuation_and_common_words(memory: Memory) -> None:
    assert similar("The build is slow.", "build slow", 0.8)
    assert similar("", "  ", 0.8) and not similar("", "x", 0.8)
    first = note(memory, OBS, "The cache is cold after a deploy.")
    entry, reinforced = memory.remember(NewMemory(OBS, "cache cold after deploy"))
    assert reinforced and entry.id == first.id
    # The same words in another scope, or as another type, are another entry.
    assert not memory.remember(NewMemory(OBS, first.text, scope="project"))[1]
    assert not memory.remember(NewMemory(INS, first.text))[1]


def test_similarity_comes_from_config(store: Store, clock: FakeClock) -> None:
    strict = Memory(store, TEAM, MemoryConfig(similarity=1.0), clock=clock)
    a, b = _jaccard_pair(20, 1)  # 0.95
    first = note(strict, OBS, a)
    assert not strict.remember(NewMemory(OBS, b))[1]
    assert strict.remember(NewMemory(OBS, a.upper()))[0].id == first.id  # same words: 1.0


EXACT = "the integration tests time out when the ci runner is under load"
VARIANT = "The integration tests time out when the CI runner is under heavy load!"


def reinforce_worker(
    path: str, times: int, go: MpEvent, ready: Queue[int], out: Queue[Any]
) -> None:
    """Note the observation ``times`` times, alternating its two wordings."""
    store = open_store(path, synchronous="normal", busy_timeout=DEADLINE)
    memory = Memory(store, TEAM)
    ready.put(1)
    go.wait(DEADLINE)
    got = []
    for i in range(times):
        entry, reinforced = memory.remember(NewMemory(OBS, EXACT if i % 2 else VARIANT))
        got.append((entry.id, reinforced))
    out.put(got)
    store.close()


def _take(source: Queue[Any], procs: list[BaseProcess], what: str) -> Any:
    """The next item from ``source``, failing fast if a process died instead."""
    limit = time.monotonic() + DEADLINE
    while time.monotonic() < limit:
        try:
            return source.get(timeout=0.05)
        except queue.Empty:
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:
                pytest.fail(f"waiting for {what}: a writer exited with {failed}")
    pytest.fail(f"timed out after {DEADLINE:g}s waiting for {what}")


@pytest.fixture
def reaped() -> Iterator[list[BaseProcess]]:
    with reaping() as procs:
        yield procs


def test_concurrent_writers_reinforce_one_entry(location: str, reaped: list[BaseProcess]) -> None:
    assert similar(EXACT, VARIANT, MemoryConfig().similarity)
    path = location
    with open_store(path, create=True) as setup:
        setup.create_team(TEAM)
    workers, times = 8, 20
    go, ready, out = CTX.Event(), CTX.Queue(), CTX.Queue()
    for _ in range(workers):
        p = CTX.Process(target=reinforce_worker, args=(path, times, go, ready, out), daemon=True)
        reaped.append(p)
        p.start()
    for _ in range(workers):
        _take(ready, reaped, "a writer to start")
    go.set()  # all at once, each with its own connection
    results: list[list[tuple[int, bool]]] = [
        _take(out, reaped, "a writer's results") for _ in range(workers)
    ]
    for p in reaped:
        p.join(DEADLINE)
        assert p.exitcode == 0
    flat = [r for got in results for r in got]
    assert len(flat) == workers * times
    assert len({entry_id for entry_id, _ in flat}) == 1
    assert sum(1 for _, reinforced in flat if not reinforced) == 1
    with open_store(path) as check:
        (entry,) = check.list_memories(TEAM)
        assert entry.count == workers * times == 160
        assert entry.text in (EXACT, VARIANT.strip())
        kinds = [e.kind for e in check.read_events(TEAM)]
        assert kinds.count("memory_added") == 1 and kinds.count("memory_reinforced") == 159


# bad input -----------------------------------------------------------------------


def test_empty_or_enormous_text_is_refused(memory: Memory, store: Store) -> None:
    before = snapshot(store)
    for kind in MemoryType:
        with pytest.raises(UserError, match="needs text"):
            memory.remember(NewMemory(kind, "  \n "))
        with pytest.raises(UserError, match=f"longer than {MAX_MEMORY} bytes"):
            memory.remember(NewMemory(kind, "x" * (MAX_MEMORY + 1)))
    with pytest.raises(UserError, match="capped at 400 words"):
        memory.write_continuity("alice", "word " * 401)
    with pytest.raises(UserError, match="cannot be empty"):
        memory.write_continuity("alice", " ")
    assert snapshot(store) == before
    assert note(memory, INS, "x" * MAX_MEMORY).text == "x" * MAX_MEMORY


def test_unknown_scope_is_refused(memory: Memory, store: Store) -> None:
    before = snapshot(store)
    for scope in ("galaxy", "members:alice", "member:", "member:dave", "Project"):
        with pytest.raises(UserError):
            memory.remember(NewMemory(INS, "somewhere", scope=scope))
    assert snapshot(store) == before


def test_supersession_errors_name_what_stands(memory: Memory, store: Store) -> None:
    one = note(memory, DEC, "one")
    two = note(memory, DEC, "two", supersedes=one.id)
    fact = note(memory, INS, "a fact")
    before = snapshot(store)
    with pytest.raises(UserError, match="no memory 99"):
        note(memory, DEC, "x", supersedes=99)
    with pytest.raises(UserError, match="insight, not a decision"):
        note(memory, DEC, "x", supersedes=fact.id)
    with pytest.raises(
        UserError, match=f"already superseded; the decision that stands is {two.id}"
    ):
        note(memory, DEC, "x", supersedes=one.id)
    with pytest.raises(UserError, match="only a decision can supersede"):
        note(memory, OBS, "x", supersedes=two.id)
    assert snapshot(store) == before


def test_a_chain_whose_last_decision_is_retired_stands_nowhere_and_goes_on(
    memory: Memory, store: Store
) -> None:
    one = note(memory, DEC, "deploy with fabric scripts")
    two = note(memory, DEC, "deploy with ansible playbooks", supersedes=one.id)
    memory.forget(two.id)
    # Nothing stands: the old wording finds nothing, even though it matches best.
    assert memory.recall("deploy fabric scripts") == []
    assert memory.recall("ansible playbooks") == []
    hits = memory.recall("deploy fabric scripts", history=True)
    assert [h.entry.id for h in hits] == [one.id]
    assert [e.id for e in memory.history(one.id)] == [one.id, two.id]
    assert [e.id for e in memory.history(two.id)] == [one.id, two.id]
    before = snapshot(store)
    with pytest.raises(UserError, match=f"nothing in its chain stands.*supersede {two.id}"):
        note(memory, DEC, "deploy with nix", supersedes=one.id)
    assert snapshot(store) == before
    # Superseding the retired last one carries the chain on; the old wording now leads
    # to the decision that stands, through both links.
    three = note(memory, DEC, "deploy with nix flakes", supersedes=two.id)
    assert memory.get(two.id).status == MemoryStatus.RETIRED
    assert [e.id for e in memory.history(one.id)] == [one.id, two.id, three.id]
    found = memory.recall("deploy fabric scripts")
    assert [h.entry.id for h in found] == [three.id]
    assert f"found through superseded decision {one.id}" in found[0].why


# export and import ---------------------------------------------------------------


def _fill(memory: Memory, clock: FakeClock) -> dict[str, MemoryEntry]:
    a = note(memory, DEC, "deploy with blue green", tags=("ops",), author="alice", task_id=4)
    clock.advance(DAY)
    b = note(memory, DEC, "deploy with canaries", supersedes=a.id, author="bob")
    c = note(memory, DEC, "deploy straight to prod", supersedes=b.id)
    memory.forget(c.id)
    seen = note(memory, OBS, "the canary stage hides slow queries")
    for _ in range(4):
        clock.advance(DAY)
        memory.remember(NewMemory(OBS, seen.text))
    insight = note(memory, INS, "measure before tuning", scope="member:alice", session=3)
    story = note(memory, STO, "the week the database filled up")
    shared = note(memory, INS, "every team writes tests first", scope="project")
    return {e.text: memory.get(e.id) for e in (a, b, c, seen, insight, story, shared)}


def test_export_import_round_trip_into_another_team(
    memory: Memory, clock: FakeClock, make_store: Callable[..., Store]
) -> None:
    made = _fill(memory, clock)
    lines = list(memory.export())
    assert [json.loads(line)["v"] for line in lines] == [1] * len(made)
    # Another project's store, so the project-wide entry is not there twice.
    elsewhere = make_store("elsewhere.db", clock=clock)
    elsewhere.create_team("other")
    elsewhere.add_member("other", "alice", token_hash="h")
    target = Memory(elsewhere, "other", clock=clock)
    assert target.import_lines(lines) == (len(made), [])
    got = {e.text: e for e in elsewhere.list_memories("other")}
    assert got.keys() == made.keys()
    ids = {made[t].id: got[t].id for t in made}
    for text, old in made.items():
        new = got[text]
        assert (new.type, new.status, new.count, new.scope, new.tags) == (
            old.type,
            old.status,
            old.count,
            old.scope,
            old.tags,
        )
        assert (new.created_at, new.seen_at) == (old.created_at, old.seen_at)
        assert (new.author, new.task_id, new.session) == (old.author, old.task_id, old.session)
        assert new.supersedes == (ids[old.supersedes] if old.supersedes else None)
        assert new.superseded_by == (ids[old.superseded_by] if old.superseded_by else None)
    chain = target.history(got["deploy with canaries"].id)
    assert [e.text for e in chain] == [
        "deploy with blue green",
        "deploy with canaries",
        "deploy straight to prod",
    ]

    # Exporting the copy gives the same lines but for ids and team.
    def plain(line: str) -> dict[str, Any]:
        data = json.loads(line)
        for key in ("id", "team", "supersedes", "superseded_by"):
            data.pop(key)
        return data

    assert [plain(x) for x in target.export()] == [plain(x) for x in lines]


def _exported(memory: Memory, clock: FakeClock) -> list[str]:
    _fill(memory, clock)
    return list(memory.export())


def test_import_with_bad_lines_imports_nothing_and_names_them(
    memory: Memory, clock: FakeClock, store: Store
) -> None:
    lines = _exported(memory, clock)
    store.create_team("other")
    store.add_member("other", "alice", token_hash="h")
    target = Memory(store, "other", clock=clock)
    bad = [
        lines[0],
        "{not json",
        lines[1],
        json.dumps({"v": 1, "id": 900, "type": "insight", "created_at": 1}),  # no text
        json.dumps({**json.loads(lines[2]), "type": "rumour"}),
        "",
        json.dumps({**json.loads(lines[3]), "v": 99}),
        *lines[4:],
    ]
    before = snapshot(store)
    with pytest.raises(UserError) as info:
        target.import_lines(bad)
    message = str(info.value)
    assert "4 bad line(s), nothing imported" in message and "--skip-bad" in message
    for where in ("line 2:", "line 4: no 'text' field", "line 5:"):
        assert where in message
    assert snapshot(store) == before
    count, problems = target.import_lines(bad, skip_bad=True)
    assert count == len(lines) - 2
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 4", "line 5", "line 7"]
    assert "format version 99" in problems[3]
    assert len(store.list_memories("other")) == count + 1  # and the project entry of main


def test_import_names_lines_with_an_unknown_scope_or_member(memory: Memory, store: Store) -> None:
    lines = [
        json.dumps({"v": 1, "id": 1, "type": "insight", "text": "fine", "created_at": 5}),
        json.dumps(
            {"v": 1, "id": 2, "type": "insight", "text": "x", "created_at": 5, "scope": "galaxy"}
        ),
        json.dumps(
            {
                "v": 1,
                "id": 3,
                "type": "insight",
                "text": "y",
                "created_at": 5,
                "scope": "member:zed",
            }
        ),
    ]
    before = snapshot(store)
    with pytest.raises(UserError, match="line 2: unknown scope 'galaxy'") as info:
        memory.import_lines(lines)
    assert "line 3: scope 'member:zed' names no member of team 'main'" in str(info.value)
    assert snapshot(store) == before
    # With --skip-bad the lines naming a scope or member this team lacks are skipped and
    # named, and so is a decision that one of them superseded; the rest is imported.
    decisions = [
        {"v": 1, "id": 4, "type": "decision", "text": "old", "created_at": 5},
        {"v": 1, "id": 5, "type": "decision", "text": "older", "created_at": 4},
    ]
    decisions[0].update(status="superseded", superseded_by=6)
    decisions[1].update(status="superseded", superseded_by=4)
    newest = {"v": 1, "id": 6, "type": "decision", "text": "zed's", "created_at": 6}
    newest.update(scope="member:zed", supersedes=4)
    more = [*lines, *map(json.dumps, [*decisions, newest])]
    count, problems = memory.import_lines(more, skip_bad=True)
    assert count == 1
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in (2, 3, 4, 5, 6)]
    assert problems[2] == "line 4: superseded by entry 6, which is not imported"
    assert problems[3] == "line 5: superseded by entry 4, which is not imported"
    assert [e.text for e in memory.store.list_memories(TEAM)] == ["fine"]


@pytest.mark.parametrize(
    "links",
    [
        [{"superseded_by": 2}, {"superseded_by": 1}],
        [{"supersedes": 2}, {"supersedes": 1}],
        [{"superseded_by": 1}, {}],
        [{"superseded_by": 2, "supersedes": 3}, {"superseded_by": 3}, {}],
    ],
    ids=["superseded-by", "supersedes", "itself", "three"],
)
def test_import_refuses_a_supersession_loop(
    memory: Memory, store: Store, links: list[dict[str, int]]
) -> None:
    lines = [
        json.dumps({"v": 1, "id": i, "type": "decision", "text": f"d{i}", "created_at": 5, **link})
        for i, link in enumerate(links, start=1)
    ]
    before = snapshot(store)
    with pytest.raises(UserError, match="loop"):
        memory.import_lines(lines)
    with pytest.raises(UserError, match="loop"):
        memory.import_lines(lines, skip_bad=True)
    assert snapshot(store) == before


def test_import_records_who_imported(memory: Memory, store: Store) -> None:
    line = json.dumps({"v": 1, "id": 7, "type": "insight", "text": "one", "created_at": 5})
    memory.import_lines([line], actor="alice")
    memory.import_lines([line])
    events = [e for e in store.read_events(TEAM) if e.kind == "memories_imported"]
    assert [(e.actor, e.payload) for e in events] == [("alice", {"count": 1}), (None, {"count": 1})]


def test_import_refuses_a_repeated_id(memory: Memory, store: Store) -> None:
    line = {"v": 1, "id": 7, "type": "insight", "text": "one", "created_at": 5}
    lines = [json.dumps(line), json.dumps({**line, "text": "two"})]
    before = snapshot(store)
    with pytest.raises(UserError, match="line 2: id 7 is used by line 1"):
        memory.import_lines(lines)
    assert snapshot(store) == before


# continuity ----------------------------------------------------------------------


def test_continuity_notes(memory: Memory, clock: FakeClock) -> None:
    assert memory.continuity("alice") is None
    first = memory.write_continuity("alice", "I was fixing the flaky test; bob reviews fast.")
    clock.advance(60)
    second = memory.write_continuity("alice", "word " * 400)  # the cap is inclusive
    assert memory.continuity("alice") == second
    assert memory.continuity_history("alice") == [first, second]
    assert (first.version, second.version) == (1, 2)
    assert memory.continuity("bob") is None


# the command line -----------------------------------------------------------------


@dataclass
class Mem:
    project: Path
    tokens: dict[str, str]


@pytest.fixture
def mem(cli: Cli, project: Path) -> Mem:
    ok(cli("init", "--team", "main"))
    tokens = {n: js(cli("member", "add", n, "--json"))["token"] for n in ("alice", "bob")}
    return Mem(project, tokens)


def add(cli: Cli, kind: str, text: str, *more: str) -> dict[str, Any]:
    out: dict[str, Any] = js(cli("memory", "add", "--type", kind, text, "--json", *more))
    return out


def test_cli_add_each_type_and_reinforce(cli: Cli, mem: Mem) -> None:
    r = ok(cli("memory", "add", "--type", "decision", "use sqlite for the store"))
    assert r.out == "remembered decision 1\n"
    r = ok(cli("memory", "add", "--type", "decision", "use duckdb", "--supersedes", "1"))
    assert r.out == "remembered decision 2, superseding 1\n"
    made = add(cli, "insight", "review the same day", "--tag", "review", "--tag", "habit")
    assert made["tags"] == ["habit", "review"] and made["reinforced"] is False
    assert made["v"] == 1 and made["author"] is None
    ok(cli("memory", "add", "--type", "observation", "ci is slow on mondays"))
    r = ok(cli("memory", "add", "--type", "observation", "CI is slow on Mondays."))
    assert r.out == "reinforced entry 4 (now noted 2 times)\n"
    again = add(cli, "observation", "ci is slow on mondays")
    assert again["reinforced"] is True and again["count"] == 3 and again["id"] == 4
    assert add(cli, "story", "the first deploy")["type"] == "story"
    assert add(cli, "insight", "everyone sees this", "--scope", "project")["team"] is None
    assert add(cli, "insight", "mine", "--scope", "member:alice")["scope"] == "member:alice"


def test_cli_search_shows_score_and_why(cli: Cli, mem: Mem) -> None:
    add(cli, "decision", "store the board in postgres")
    add(cli, "decision", "store the board in sqlite", "--supersedes", "1")
    add(cli, "observation", "the board query is slow")
    add(cli, "story", "the board was once a spreadsheet")
    add(cli, "insight", "alice indexes the board", "--scope", "member:alice")
    r = ok(cli("memory", "search", "board store"))
    lines = r.out.splitlines()
    assert lines[0].startswith("1.000 [2] decision (active) store the board in sqlite")
    assert lines[1].strip().startswith("why: relevance 1.00")
    assert "decay 1.00" in lines[1]
    assert "[1]" not in r.out and "spreadsheet" not in r.out and "alice" not in r.out
    hits = js(cli("memory", "search", "board store", "--json", "--history"))
    assert [h["entry"]["id"] for h in hits][:2] == [2, 1]  # 3 matches "board" only
    old = hits[1]
    assert old["decay"] == 0.1 and "superseded decision" in old["why"]
    assert {"score", "relevance", "decay", "boost", "why"} <= old.keys()
    assert len(js(cli("memory", "search", "board", "--k", "1", "--json"))) == 1
    typed = js(cli("memory", "search", "board", "--type", "observation", "--json"))
    assert [h["entry"]["id"] for h in typed] == [3]
    as_alice = js(cli("memory", "search", "indexes board", "--as", "alice", "--json"))
    assert 5 in [h["entry"]["id"] for h in as_alice]
    assert 5 not in [h["entry"]["id"] for h in js(cli("memory", "search", "indexes", "--json"))]
    assert ok(cli("memory", "search", "zebra")).out == "nothing recalled for 'zebra'\n"
    assert js(cli("memory", "search", "zebra", "--json")) == []


def test_cli_show_history_forget_list(cli: Cli, mem: Mem) -> None:
    add(cli, "decision", "tabs", "--tag", "style")
    add(cli, "decision", "spaces", "--supersedes", "1")
    add(cli, "decision", "four spaces", "--supersedes", "2")
    add(cli, "story", "the great tab war")
    shown = ok(cli("memory", "show", "2")).out
    assert shown.startswith("memory 2\n")
    for part in ("decision", "superseded", "supersedes     1", "superseded by  3", "\nspaces"):
        assert part in shown, part
    assert js(cli("memory", "show", "1", "--json"))["tags"] == ["style"]
    history = ok(cli("memory", "history", "2")).out.splitlines()
    assert [line.split()[0:2] for line in history] == [
        ["[1]", "superseded"],
        ["[2]", "superseded"],
        ["[3]", "stands"],
    ]
    data = js(cli("memory", "history", "1", "--json"))
    assert data["stands"] == 3 and [e["id"] for e in data["chain"]] == [1, 2, 3]
    r = ok(cli("memory", "forget", "3"))
    assert r.out == "retired memory 3 (kept, never recalled again)\n"
    assert js(cli("memory", "forget", "3", "--json"))["status"] == "retired"
    history = ok(cli("memory", "history", "3")).out.splitlines()
    assert [line.split()[1] for line in history[:3]] == ["superseded", "superseded", "retired"]
    assert history[3] == "nothing in this chain stands: its last entry was retired"
    assert js(cli("memory", "history", "3", "--json"))["stands"] is None
    listed = js(cli("memory", "list", "--json"))
    assert [e["id"] for e in listed] == [4, 3, 2, 1]
    assert [e["id"] for e in js(cli("memory", "list", "--type", "story", "--json"))] == [4]
    superseded = js(cli("memory", "list", "--status", "superseded", "--json"))
    assert [e["id"] for e in superseded] == [2, 1]
    assert len(js(cli("memory", "list", "--limit", "1", "--json"))) == 1
    table = ok(cli("memory", "list")).out
    assert "the great tab war" in table and "retired" in table


def test_cli_list_empty(cli: Cli, mem: Mem) -> None:
    assert "no memories" in ok(cli("memory", "list")).out
    assert js(cli("memory", "list", "--json")) == []


def test_cli_export_and_import(cli: Cli, mem: Mem) -> None:
    add(cli, "decision", "old way")
    add(cli, "decision", "new way", "--supersedes", "1")
    add(cli, "observation", "builds are slow")
    add(cli, "observation", "builds are slow")
    add(cli, "insight", "alice's", "--scope", "member:alice")
    out = ok(cli("memory", "export")).out
    lines = out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [1, 2, 3, 4]
    target = mem.project / "backup.jsonl"
    r = ok(cli("memory", "export", "--output", str(target)))
    assert r.out == f"exported 4 entries to {target}\n"
    assert target.read_text(encoding="utf-8") == out
    ok(cli("team", "create", "other"))
    ok(cli("member", "add", "alice", "--team", "other"))
    r = ok(cli("memory", "import", str(target), "--team", "other"))
    assert r.out == "imported 4 entries into team other\n"
    copied = js(cli("memory", "list", "--team", "other", "--json"))
    assert [(e["type"], e["status"], e["count"]) for e in reversed(copied)] == [
        ("decision", "superseded", 1),
        ("decision", "active", 1),
        ("observation", "active", 2),
        ("insight", "active", 1),
    ]
    chain = js(cli("memory", "history", str(copied[-1]["id"]), "--team", "other", "--json"))
    assert [e["text"] for e in chain["chain"]] == ["old way", "new way"]
    assert chain["stands"] == copied[-2]["id"]


def test_cli_import_bad_lines(cli: Cli, mem: Mem) -> None:
    add(cli, "insight", "keep")
    good = ok(cli("memory", "export")).out.splitlines()[0]
    path = mem.project / "bad.jsonl"
    other = json.dumps({**json.loads(good), "id": 2, "text": "also good"})
    path.write_text("\n".join([good, "nonsense", other, '{"v": 1}']) + "\n", encoding="utf-8")
    refusals(cli, mem.project, [(["memory", "import", str(path)], "line 2:")])
    err = one_error(cli("memory", "import", str(path)), 2, "2 bad line(s), nothing imported")
    assert "line 4: no 'text' field" in err
    r = ok(cli("memory", "import", str(path), "--skip-bad"))
    assert r.out.splitlines()[0] == "imported 2 entries into team main"
    assert r.out.splitlines()[1].startswith("  skipped line 2:")
    assert r.out.splitlines()[2].startswith("  skipped line 4:")
    assert len(js(cli("memory", "list", "--json"))) == 3
    report = js(cli("memory", "import", str(path), "--skip-bad", "--json"))
    assert report["imported"] == 2 and [p[:6] for p in report["skipped"]] == ["line 2", "line 4"]


def test_cli_continuity(cli: Cli, mem: Mem) -> None:
    assert ok(cli("memory", "continuity", "alice")).out == "alice has no continuity note yet\n"
    assert js(cli("memory", "continuity", "alice", "--json")) is None
    assert js(cli("memory", "continuity", "alice", "--history", "--json")) == []
    r = ok(cli("memory", "continuity", "alice", "--set", "I was halfway through #3."))
    assert r.out == "wrote version 1 of alice's continuity note\n"
    assert js(cli("memory", "continuity", "alice", "--set", "Done with #3.", "--json"))["version"]
    shown = ok(cli("memory", "continuity", "alice")).out.splitlines()
    assert shown[0].startswith("── version 2, written") and shown[1] == "Done with #3."
    notes = js(cli("memory", "continuity", "alice", "--history", "--json"))
    assert [n["text"] for n in notes] == ["I was halfway through #3.", "Done with #3."]
    assert "halfway" in ok(cli("memory", "continuity", "alice", "--history")).out


def test_cli_memory_errors_change_nothing(cli: Cli, mem: Mem) -> None:
    add(cli, "decision", "one")
    add(cli, "decision", "two", "--supersedes", "1")
    add(cli, "insight", "a fact")
    add(cli, "story", "a story")
    missing = str(mem.project / "missing.jsonl")
    looped = mem.project / "loop.jsonl"
    looped.write_text(
        "\n".join(
            json.dumps(
                {
                    "v": 1,
                    "id": i,
                    "type": "decision",
                    "text": f"d{i}",
                    "created_at": 1,
                    "superseded_by": 3 - i,
                }
            )
            for i in (1, 2)
        ),
        encoding="utf-8",
    )
    stranger = mem.project / "stranger.jsonl"
    stranger.write_text(
        json.dumps(
            {
                "v": 1,
                "id": 1,
                "type": "insight",
                "text": "x",
                "created_at": 1,
                "scope": "member:zed",
            }
        ),
        encoding="utf-8",
    )
    m = ["memory"]
    refusals(
        cli,
        mem.project,
        [
            ([*m, "add", "--type", "insight", ""], "needs text"),
            ([*m, "add", "--type", "insight", " \n "], "needs text"),
            ([*m, "add", "--type", "insight", "x" * (MAX_MEMORY + 1)], "longer than"),
            ([*m, "add", "--type", "rumour", "x"], "invalid choice"),
            ([*m, "add", "x"], "--type"),
            ([*m, "add", "--type", "insight", "x", "--scope", "galaxy"], "unknown memory scope"),
            ([*m, "add", "--type", "insight", "x", "--scope", "member:zed"], "zed"),
            ([*m, "add", "--type", "insight", "x", "--tag", "Bad Tag"], "tag"),
            ([*m, "add", "--type", "decision", "x", "--supersedes", "99"], "no memory 99"),
            ([*m, "add", "--type", "decision", "x", "--supersedes", "1"], "stands is 2"),
            ([*m, "add", "--type", "decision", "x", "--supersedes", "3"], "not a decision"),
            ([*m, "add", "--type", "insight", "x", "--supersedes", "2"], "only a decision"),
            ([*m, "add", "--type", "decision", "x", "--supersedes", "0"], "must be 1 or more"),
            ([*m, "search", "fact", "--type", "story"], "stories are never searched"),
            ([*m, "search", "fact", "--as", "zed"], "zed"),
            ([*m, "search", "fact", "--k", "0"], "must be 1 or more"),
            ([*m, "show", "99"], "no memory 99"),
            ([*m, "show", "x"], "whole number"),
            ([*m, "history", "99"], "no memory 99"),
            ([*m, "forget", "99"], "no memory 99"),
            ([*m, "list", "--status", "gone"], "invalid choice"),
            ([*m, "import", missing], "cannot read"),
            ([*m, "import", str(looped)], "loop"),
            ([*m, "import", str(looped), "--skip-bad"], "loop"),
            ([*m, "import", str(stranger)], "zed"),
            ([*m, "export", "--output", str(mem.project)], "cannot write"),
            ([*m, "continuity", "zed"], "zed"),
            ([*m, "continuity", "alice", "--set", ""], "cannot be empty"),
            ([*m, "continuity", "alice", "--set", "w " * 401], "capped at 400 words"),
            ([*m, "continuity", "alice", "--set", "x", "--history"], "not allowed with"),
            ([*m, "add", "--type", "insight", "x", "--team", "nope"], "nope"),
        ],
    )
    assert not list(mem.project.glob("*.partial"))


def test_cli_acts_as_the_verified_member(
    cli: Cli, mem: Mem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCORD_MEMBER", "alice")
    monkeypatch.setenv("ACCORD_TOKEN", mem.tokens["alice"])
    made = add(cli, "insight", "alice wrote this")
    assert made["author"] == "alice"
    assert add(cli, "insight", "only mine", "--scope", "member:alice")["author"] == "alice"
    ok(cli("memory", "continuity", "alice", "--set", "mine"))
    # Without --as an agent's search sees its own entries.
    found = js(cli("memory", "search", "only mine", "--json"))
    assert [h["entry"]["text"] for h in found] == ["only mine"]
    forgotten = js(cli("memory", "forget", str(made["id"]), "--json"))
    assert forgotten["status"] == "retired"
    events = js(cli("events", "--json"))
    assert events[-1]["kind"] == "memory_retired" and events[-1]["actor"] == "alice"
    exported = mem.project / "alice.jsonl"
    ok(cli("memory", "export", "--output", str(exported)))
    ok(cli("memory", "import", str(exported)))
    events = js(cli("events", "--json"))
    assert events[-1]["kind"] == "memories_imported" and events[-1]["actor"] == "alice"
    refusals(
        cli,
        mem.project,
        [
            (
                ["memory", "add", "--type", "insight", "x", "--scope", "member:bob"],
                "cannot act as bob",
            ),
            (["memory", "continuity", "bob", "--set", "words in bob's mouth"], "cannot act as bob"),
            (["memory", "search", "mine", "--as", "bob"], "cannot act as bob"),
        ],
    )
    monkeypatch.setenv("ACCORD_TOKEN", mem.tokens["bob"])
    refusals(
        cli,
        mem.project,
        [(["memory", "add", "--type", "insight", "x"], "ACCORD_TOKEN is not alice's token")],
    )


def test_cli_person_may_write_any_member_scope(cli: Cli, mem: Mem) -> None:
    assert add(cli, "insight", "for bob", "--scope", "member:bob")["author"] is None
    ok(cli("memory", "continuity", "bob", "--set", "written for bob by a person"))
    rows = dump(store_path(mem.project))
    assert len(rows["memories"]) == 1 and len(rows["continuity"]) == 1
