"""The one tokenizer (accord.text), the memory index built from it, and the match
budget that keeps recall fast on a large store."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from accord.memory import Memory
from accord.store import open_store
from accord.store.migrations import ACCORD_MIGRATIONS, MIGRATIONS, Schema, render
from accord.store.postgres import _Translating
from accord.testing import FakeClock
from accord.testing.recall_set import ENTRIES, QUERIES
from accord.text import STOP_WORDS, distinct, stem, terms, words
from accord.types import MemoryType, NewMemory

# Porter's own examples (the 1980 paper and his reference vocabulary), step by step.
PORTER = {
    "caresses": "caress",
    "ponies": "poni",
    "ties": "ti",
    "caress": "caress",
    "cats": "cat",
    "feed": "feed",
    "agreed": "agre",
    "plastered": "plaster",
    "bled": "bled",
    "motoring": "motor",
    "sing": "sing",
    "conflated": "conflat",
    "troubled": "troubl",
    "sized": "size",
    "hopping": "hop",
    "tanned": "tan",
    "falling": "fall",
    "hissing": "hiss",
    "fizzed": "fizz",
    "failing": "fail",
    "filing": "file",
    "happy": "happi",
    "sky": "sky",
    "relational": "relat",
    "conditional": "condit",
    "rational": "ration",
    "valenci": "valenc",
    "digitizer": "digit",
    "vietnamization": "vietnam",
    "predication": "predic",
    "operator": "oper",
    "feudalism": "feudal",
    "decisiveness": "decis",
    "hopefulness": "hope",
    "callousness": "callous",
    "formaliti": "formal",
    "sensitiviti": "sensit",
    "sensibiliti": "sensibl",
    "triplicate": "triplic",
    "formative": "form",
    "formalize": "formal",
    "electriciti": "electr",
    "electrical": "electr",
    "hopeful": "hope",
    "goodness": "good",
    "revival": "reviv",
    "allowance": "allow",
    "inference": "infer",
    "airliner": "airlin",
    "gyroscopic": "gyroscop",
    "adjustable": "adjust",
    "defensible": "defens",
    "irritant": "irrit",
    "replacement": "replac",
    "adjustment": "adjust",
    "dependent": "depend",
    "adoption": "adopt",
    "communism": "commun",
    "activate": "activ",
    "effective": "effect",
    "bowdlerize": "bowdler",
    "probate": "probat",
    "rate": "rate",
    "cease": "ceas",
    "controll": "control",
    "roll": "roll",
    "generalizations": "gener",
    "oscillators": "oscil",
}


@pytest.mark.parametrize(("word", "want"), sorted(PORTER.items()))
def test_porter_stems(word: str, want: str) -> None:
    assert stem(word) == want


def test_stems_agree_with_sqlite_fts5_porter() -> None:
    # The index used to be FTS5's own porter tokenizer: the same stems keep recall
    # finding what it found before the index held accord.text's terms.
    vocabulary = sorted(
        {w for e in ENTRIES for w in words(e.text)}
        | {w for q in QUERIES for w in words(q.text)}
        | set(PORTER)
    )
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter ascii')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", enumerate(vocabulary))
    theirs = dict(db.execute("SELECT doc, term FROM v").fetchall())
    assert len(vocabulary) > 500
    assert [stem(w) for w in vocabulary] == [theirs[i] for i in range(len(vocabulary))]


def test_words_split_fold_and_drop_the_commonest() -> None:
    assert words("The CI build is Slow, again!") == ["ci", "build", "slow", "again"]
    assert words("test_refund_webhook OOM-killed x86_64 p95") == [
        "test",
        "refund",
        "webhook",
        "oom",
        "killed",
        "x86",
        "64",
        "p95",
    ]
    # Accents go, other scripts stay whole words.
    assert words("Café crème, naïve Zoë") == ["cafe", "creme", "naive", "zoe"]
    assert words("東京 deploy Ünïcode") == ["東京", "deploy", "unicode"]
    assert words("") == [] and words(" -- ... ") == [] and words("the of and a") == []
    assert "the" in STOP_WORDS
    assert terms("Deploying deploys, deployed") == ["deploi", "deploi", "deploi"]
    assert distinct(["tests", "test", "deploy", "tested"]) == ["tests", "deploy"]
    # Operators and quotes are never part of a word.
    assert words('"a" OR b* NEAR(c, d) {text}: e') == ["b", "near", "c", "d", "text", "e"]


def test_long_or_odd_words_are_left_alone() -> None:
    long = "y" * 5000
    assert stem(long) == long  # no recursion through 5,000 y's
    assert stem("x86") == "x86" and stem("42") == "42" and stem("東京") == "東京"
    assert stem("is") == "is"


_BEFORE_M007 = [
    (1, "team", "decision", "Deploys go out on Tuesdays", ["release"]),
    (None, "project", "insight", "Caching the deployed bundle saved minutes", []),
    (1, "team", "observation", "Flaky tests after every deploy", ["ci"]),
]


def _store_before_m007(location: str) -> None:
    """A store as accord wrote it before the memory index held accord.text's terms:
    FTS5's porter tokens on SQLite, plain words in memory_terms on PostgreSQL."""
    if location.startswith("postgresql://"):
        conn = psycopg.connect(location, autocommit=True)
        conn.execute("BEGIN")
        conn.execute(render(ACCORD_MIGRATIONS, "postgres"))
        schema = Schema("postgres", _Translating(conn))
    else:
        lite = sqlite3.connect(location, isolation_level=None)
        lite.execute(ACCORD_MIGRATIONS)
        lite.execute("BEGIN")
        schema = Schema("sqlite", lite)
    db = schema.db
    for name, fn in MIGRATIONS:
        if name.startswith("m007"):
            break
        fn(schema)
        db.execute("INSERT INTO accord_migrations VALUES (?, 0)", (name,))
    db.execute("INSERT INTO teams (id, name, created_at) VALUES (1, 'old', 0)")
    for team_id, scope, kind, text, tags in _BEFORE_M007:
        (memory_id,) = db.execute(
            "INSERT INTO memories (team_id, scope, type, text, tags, status, created_at, "
            "seen_at) VALUES (?, ?, ?, ?, ?, 'active', 0, 0) RETURNING id",
            (team_id, scope, kind, text, json.dumps(tags)),
        ).fetchone()
        if schema.dialect == "postgres":  # as m006's PostgreSQL store indexed an entry
            fields = (words(text), words(json.dumps(tags)))
            for field, found in enumerate(fields):
                for word, n in Counter(found).items():
                    db.execute(
                        "INSERT INTO memory_terms (memory_id, field, term, tf) VALUES (?, ?, ?, ?)",
                        (memory_id, field, word, n),
                    )
            db.execute(
                "INSERT INTO memory_lengths VALUES (?, ?, ?)",
                (memory_id, len(fields[0]), len(fields[1])),
            )
    db.execute("COMMIT")
    if schema.dialect == "postgres":
        conn.close()
    else:
        lite.close()


def test_a_store_from_before_the_index_change_is_reindexed(fresh_location: str) -> None:
    _store_before_m007(fresh_location)
    store = open_store(fresh_location)
    try:
        assert store.memory_matches(["deploying", "release", "tuesday"]) == (3, [3, 1, 1])
        memory = Memory(store, "old")
        found = memory.recall("when do we deploy a release", k=5)
        assert [r.entry.text for r in found][0] == "Deploys go out on Tuesdays"
        assert len(found) == 3
        added, _ = memory.remember(NewMemory(MemoryType.INSIGHT, "Deploy freezes in December"))
        assert store.memory_matches(["deploy", "december"]) == (4, [4, 1])
        assert added.id == 4
    finally:
        store.close()


def test_the_match_budget_ranks_only_entries_with_the_rarer_words(tmp_path: Path) -> None:
    clock = FakeClock()
    store = open_store(str(tmp_path / "s.db"), create=True, synchronous="normal", clock=clock)
    store.create_team("t")
    try:
        budget = Memory(store, "t", clock=clock, match_budget=10)
        every = Memory(store, "t", clock=clock, match_budget=None)
        for n in range(30):
            budget.remember(NewMemory(MemoryType.INSIGHT, f"the deploy script, variant {n}"))
        rare = budget.remember(NewMemory(MemoryType.INSIGHT, "the deploy needs the vault token"))[0]
        only_rare = budget.remember(
            NewMemory(MemoryType.INSIGHT, "rotate the vault key every quarter, before the audit")
        )[0]
        asked = ["deploy", "vault"]
        assert store.memory_matches(asked)[1] == [31, 2]
        assert budget._must(asked) == ["vault"]
        assert every._must(asked) == []
        narrowed = budget.recall("deploy vault", k=10)
        assert [r.entry.id for r in narrowed] == [rare.id, only_rare.id]
        exact = every.recall("deploy vault", k=10)
        assert [r.entry.id for r in exact][:2] == [rare.id, only_rare.id] and len(exact) == 10
        # The scores are the same BM25 either way: the budget chooses what is ranked.
        assert [r.relevance for r in narrowed] == [r.relevance for r in exact[:2]]
        # One word, or words whose entries fit the budget, match on every word.
        assert len(budget.recall("deploy", k=50)) == 31
        assert budget._must(["vault", "token"]) == []
    finally:
        store.close()
