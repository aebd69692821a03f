"""Memory that compounds: typed entries, supersession, reinforcement, decay, recall, continuity.

- A **decision** can be superseded, explicitly, by a new decision naming it; the old
  one is kept and linked both ways. An active decision does not fade; a superseded
  one is left out of recall unless history is asked for.
- An **insight** changes how the team works; it fades slowly.
- An **observation** is a pattern noticed; noting it again (the same text, or text
  similar enough: a token-set Jaccard of ``[memory] similarity``, 0.8 by default)
  strengthens the entry already there. It fades faster, from when it was last
  seen, never below its floor.
- A **story** is context that never drives recall: fetched by id or by type only.

``recall`` ranks by relevance times the type's decay, plus a small boost for
reinforcement, and says how it got each score. Relevance is full-text BM25
normalised to the best match; with an embedder configured (``[memory]
embeddings``, see ``accord.memory.embedders``) it is the blend
``(1 - EMBEDDING_SHARE) * bm25 + EMBEDDING_SHARE * cosine``, and the entries whose
vectors lie nearest the query's join the BM25 matches, so an entry that says
the same thing in other words can be found. Recalled text is never written back
as a new memory.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from accord.config import MemoryConfig
from accord.errors import UserError
from accord.memory.embedders import Embedder, cosines, open_embedder, pack
from accord.text import distinct, words
from accord.types import (
    NAME_PATTERN,
    ContinuityNote,
    MemoryEntry,
    MemoryStatus,
    MemoryType,
    NewMemory,
    to_json,
)

if TYPE_CHECKING:
    from accord.store.base import Store

DAY = 86400.0
REINFORCE_BOOST = 0.05
SUPERSEDED_FACTOR = 0.1
EXPORT_VERSION = 1
MATCH_BUDGET = 4000  # entries a recall ranks at most, unless its rarest word is in more
LINEAGE = 0.8  # share of a superseded decision's relevance passed to the one that stands
EMBEDDING_SHARE = 0.5  # the cosine's share of relevance when an embedder is configured
VECTOR_SCAN = 2000  # up to this many vectors, recall compares the query with every one
MIN_COSINE = 0.3  # how near a vector must be to join the matches without a shared word
REINDEX_BATCH = 64


def similar(a: str, b: str, threshold: float) -> bool:
    """Near-duplicate test for observations: Jaccard similarity of their word sets."""
    sa, sb = set(words(a)), set(words(b))
    if not sa or not sb:
        return a.strip().lower() == b.strip().lower()
    return len(sa & sb) / len(sa | sb) >= threshold


@dataclass(frozen=True, slots=True)
class Recalled:
    """An entry recall returned, its score, and how the score was made."""

    entry: MemoryEntry
    score: float
    relevance: float
    decay: float
    boost: float
    why: str


@dataclass(slots=True)
class _Hit:
    """A candidate entry: its BM25 relevance (normalised to the best match), its cosine
    with the query (None without a vector), and the superseded decision it was
    found through, if any."""

    entry: MemoryEntry
    bm25: float
    cosine: float | None = None
    via: MemoryEntry | None = None
    factor: float = 1.0

    def relevance(self, embedded: bool) -> float:
        if not embedded:
            return self.bm25 * self.factor
        cosine = max(0.0, self.cosine or 0.0)
        return ((1 - EMBEDDING_SHARE) * self.bm25 + EMBEDDING_SHARE * cosine) * self.factor

    def passed_to(self, standing: MemoryEntry) -> _Hit:
        return _Hit(standing, self.bm25, self.cosine, self.entry, self.factor * LINEAGE)

    def explain(self, best: float, embedder: Embedder | None) -> str:
        parts = (
            f"bm25 {self.bm25 * best:.3g} of best {best:.3g}" if self.bm25 else "no word matched"
        )
        if embedder is not None:
            cosine = "no vector" if self.cosine is None else f"{self.cosine:.2f}"
            parts = (
                f"{1 - EMBEDDING_SHARE:g} x bm25 {self.bm25:.2f} ({parts}) + "
                f"{EMBEDDING_SHARE:g} x cosine {cosine} ({embedder.name})"
            )
        if self.via is not None:
            parts += f"; found through superseded decision {self.via.id}, x {LINEAGE:g}"
        return parts


class Memory:
    """The memories of one team, as a member (or a person, ``member=None``) sees them."""

    def __init__(
        self,
        store: Store,
        team: str,
        config: MemoryConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        match_budget: int | None = MATCH_BUDGET,
        embedder: Embedder | None = None,
    ) -> None:
        self.store = store
        self.team = team
        self.config = config or MemoryConfig()
        self.clock = clock
        # None ranks every entry holding any query word: exact, for measuring against
        self.match_budget = match_budget
        # UserError here, before any work, when the configured model is not installed
        self.embedder = embedder or open_embedder(self.config.embeddings)

    def scopes(self, member: str | None) -> list[str]:
        return ["team", "project"] + ([f"member:{member}"] if member else [])

    # writing -------------------------------------------------------------------

    def remember(self, new: NewMemory) -> tuple[MemoryEntry, bool]:
        """Store ``new`` (an observation may reinforce one already there), and its vector
        when an embedder is configured."""
        if new.type == MemoryType.OBSERVATION:
            threshold = self.config.similarity
            entry, reinforced = self.store.add_memory(
                self.team,
                new,
                same=lambda a, b: similar(a, b, threshold),
                candidates=distinct(words(new.text)),
            )
        else:
            entry, reinforced = self.store.add_memory(self.team, new)
        if self.embedder is not None and not reinforced and entry.type != MemoryType.STORY:
            # A second transaction: a crash between the two leaves an entry without a
            # vector, which recall scores by BM25 alone and `reindex` fills in.
            (vector,) = self.embedder.embed([entry.text])
            self.store.set_memory_vectors(self.team, self.embedder.name, [(entry.id, pack(vector))])
        return entry, reinforced

    def reindex(self, progress: Callable[[int], None] | None = None) -> int:
        """Embed every recallable entry that has no vector from the configured model;
        returns how many. ``progress`` hears the running count after each batch."""
        if self.embedder is None:
            raise UserError(
                'no embeddings are configured: set [memory] embeddings = "hashing" or '
                '"minilm" in accord.toml first'
            )
        done = last = 0
        while batch := self.store.memories_without_vector(
            self.team, self.embedder.name, after=last, limit=REINDEX_BATCH
        ):
            last = batch[-1].id
            vectors = self.embedder.embed([e.text for e in batch])
            self.store.set_memory_vectors(
                self.team,
                self.embedder.name,
                [(e.id, pack(v)) for e, v in zip(batch, vectors, strict=True)],
            )
            done += len(batch)
            if progress is not None:
                progress(done)
        return done

    def forget(self, memory_id: int, actor: str | None = None) -> MemoryEntry:
        return self.store.retire_memory(self.team, memory_id, actor)

    # reading -------------------------------------------------------------------

    def get(self, memory_id: int) -> MemoryEntry:
        return self.store.get_memory(self.team, memory_id)

    def history(self, memory_id: int) -> list[MemoryEntry]:
        """The supersession chain through ``memory_id``, oldest first."""
        entry = self.get(memory_id)
        chain = [entry]
        seen = {entry.id}
        back = entry
        while back.supersedes is not None and back.supersedes not in seen:
            back = self.get(back.supersedes)
            seen.add(back.id)
            chain.insert(0, back)
        forward = entry
        while forward.superseded_by is not None and forward.superseded_by not in seen:
            forward = self.get(forward.superseded_by)
            seen.add(forward.id)
            chain.append(forward)
        return chain

    def decay(self, entry: MemoryEntry, now: float | None = None) -> tuple[float, str]:
        """The entry's decay factor and its explanation."""
        if entry.type == MemoryType.DECISION:
            if entry.status == MemoryStatus.SUPERSEDED:
                return SUPERSEDED_FACTOR, "superseded decision"
            return 1.0, "an active decision does not fade"
        policy = getattr(self.config, entry.type.value)
        age_days = max(0.0, ((now or self.clock()) - entry.seen_at) / DAY)
        fade = 0.5 ** (age_days / policy.half_life_days)
        value = policy.floor + (1 - policy.floor) * fade
        return value, (
            f"{entry.type.value}, {age_days:.1f} d since last seen, half-life "
            f"{policy.half_life_days:g} d, floor {policy.floor:g}"
        )

    def recall(
        self,
        query: str,
        *,
        member: str | None = None,
        k: int = 5,
        types: Sequence[MemoryType] | None = None,
        history: bool = False,
    ) -> list[Recalled]:
        """The ``k`` entries that best answer ``query``, with why each scored as it did."""
        if k < 1:
            raise UserError("recall needs k of 1 or more")
        wanted = [t for t in (types or list(MemoryType)) if t != MemoryType.STORY]
        asked = distinct(words(query))
        if not asked or not wanted:
            return []
        scopes = self.scopes(member)
        limit = max(4 * k, 50)
        found = self.store.search_memories(
            self.team,
            asked,
            must=self._must(asked),
            scopes=scopes,
            types=wanted,
            include_superseded=True,
            limit=limit,
        )
        best = max((c.relevance for c in found), default=0.0) or 1.0
        hits = {c.entry.id: _Hit(c.entry, c.relevance / best) for c in found}
        if self.embedder is not None:
            self._add_cosines(query, hits, scopes, wanted, limit)
        if not history:
            hits = self._to_standing(hits)
        now = self.clock()
        out: list[Recalled] = []
        for h in hits.values():
            relevance = h.relevance(self.embedder is not None)
            factor, how = self.decay(h.entry, now)
            boost = REINFORCE_BOOST * math.log(h.entry.count) if h.entry.count > 1 else 0.0
            score = relevance * factor + boost
            why = (
                f"relevance {relevance:.2f} ({h.explain(best, self.embedder)}) x decay "
                f"{factor:.2f} ({how})"
                + (f" + {boost:.2f} for being noted {h.entry.count} times" if boost else "")
                + f" = {score:.3f}"
            )
            out.append(Recalled(h.entry, score, relevance, factor, boost, why))
        out.sort(key=lambda r: (-r.score, -r.entry.seen_at, r.entry.id))
        return out[:k]

    def _add_cosines(
        self,
        query: str,
        hits: dict[int, _Hit],
        scopes: Sequence[str],
        wanted: Sequence[MemoryType],
        limit: int,
    ) -> None:
        """Give each hit its cosine with the query and, when the vectors are few enough
        to compare them all, add the nearest entries the words did not find."""
        assert self.embedder is not None
        (q,) = self.embedder.embed([query])
        model = self.embedder.name
        few = (
            self.store.count_memory_vectors(
                self.team,
                model,
                scopes=scopes,
                types=wanted,
                include_superseded=True,
                up_to=VECTOR_SCAN + 1,
            )
            <= VECTOR_SCAN
        )
        pairs: list[tuple[int, bytes]] = []
        if few or hits:
            pairs = self.store.memory_vectors(
                self.team,
                model,
                scopes=scopes,
                types=wanted,
                include_superseded=True,
                ids=None if few else list(hits),
            )
        near = dict(zip((i for i, _ in pairs), cosines(q, [v for _, v in pairs]), strict=True))
        for memory_id, hit in hits.items():
            hit.cosine = near.get(memory_id)
        new = sorted(
            (i for i, c in near.items() if i not in hits and c >= MIN_COSINE),
            key=lambda i: -near[i],
        )[:limit]
        if new:
            for entry in self.store.list_memories(self.team, scopes=scopes, ids=new):
                hits[entry.id] = _Hit(entry, 0.0, near[entry.id])

    def _to_standing(self, hits: dict[int, _Hit]) -> dict[int, _Hit]:
        """A superseded decision that matches leads to the decision that stands (with
        LINEAGE of its relevance), so a question in the old wording still finds the
        answer in force; the superseded one itself is left out, and so is a chain
        whose last decision was retired."""
        best: dict[int, _Hit] = {}
        for h in hits.values():
            target = h
            if h.entry.status == MemoryStatus.SUPERSEDED:
                standing = self._standing(h.entry)
                if standing is None:
                    continue
                target = h.passed_to(standing)
            seen = best.get(target.entry.id)
            if seen is None or target.relevance(True) > seen.relevance(True):
                best[target.entry.id] = target
        return best

    def _standing(self, entry: MemoryEntry) -> MemoryEntry | None:
        seen = {entry.id}
        while entry.superseded_by is not None and entry.superseded_by not in seen:
            seen.add(entry.superseded_by)
            entry = self.get(entry.superseded_by)
        return entry if entry.status == MemoryStatus.ACTIVE else None

    def _must(self, asked: list[str]) -> list[str]:
        """The words an entry must contain to be ranked: the query's rarest words, as
        many as keep the entries to rank within MATCH_BUDGET (at least one word).

        Ranking costs time for every entry that matches, and a word found in a large
        share of the store ("test", "deploy") would make a recall rank thousands. Such
        words still weigh in the score of every entry the rarer words find; they only
        stop making entries match on their own. BM25 gives a common word little
        weight, so the entries they would have added rarely belong in the top k.
        """
        budget = self.match_budget
        if len(asked) < 2 or budget is None:
            return []
        _, counts = self.store.memory_matches(asked)
        if sum(counts) <= budget:
            return []
        must: list[str] = []
        spent = 0
        for n, word in sorted(zip(counts, asked, strict=True)):
            if must and spent + n > budget:
                break
            must.append(word)
            spent += n
        return must

    def entries(
        self,
        *,
        type: MemoryType | None = None,
        status: MemoryStatus | None = None,
        limit: int | None = None,
    ) -> list[MemoryEntry]:
        """Entries the team can see, newest first, of one type or status if given."""
        return self.store.list_memories(self.team, type=type, status=status, limit=limit)

    def stories(self, limit: int | None = None) -> list[MemoryEntry]:
        return self.store.list_memories(self.team, type=MemoryType.STORY, limit=limit)

    # continuity ----------------------------------------------------------------

    def write_continuity(self, member: str, text: str) -> ContinuityNote:
        count = len(text.split())
        cap = self.config.continuity_words
        if count > cap:
            raise UserError(
                f"a continuity note is capped at {cap} words (this one has {count}); keep what "
                "the next session needs first: what you were doing, what is open, what you "
                "know about working with the team"
            )
        return self.store.set_continuity(self.team, member, text)

    def continuity(self, member: str) -> ContinuityNote | None:
        notes = self.store.continuity(self.team, member)
        return notes[0] if notes else None

    def continuity_history(self, member: str) -> list[ContinuityNote]:
        return self.store.continuity(self.team, member, history=True)

    # export and import ---------------------------------------------------------

    def export(self) -> Iterable[str]:
        """JSON Lines, oldest first, one entry a line, with the format version."""
        for entry in reversed(self.store.list_memories(self.team)):
            data = to_json(entry)
            data["v"] = EXPORT_VERSION
            yield json.dumps(data, ensure_ascii=False)

    def import_lines(
        self, lines: Iterable[str], *, skip_bad: bool = False, actor: str | None = None
    ) -> tuple[int, list[str]]:
        """Import JSON Lines; all or nothing unless ``skip_bad``. Returns (imported, problems).

        A line is bad when it is not a valid entry, repeats an id, names a member this
        team does not have (``member:NAME``), or is a decision superseded by a bad
        line's entry (it would be left superseded by nothing). ``actor`` (None for a
        person) is recorded in the event. With an embedder configured, the new entries
        get their vectors.
        """
        entries: list[MemoryEntry] = []
        problems: list[str] = []
        first_line: dict[int, int] = {}
        members = {m.name for m in self.store.list_members(self.team)}
        dropped: set[int] = set()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = _entry(json.loads(line))
            except KeyError as e:
                problems.append(f"line {number}: no {e.args[0]!r} field")
                continue
            except (ValueError, TypeError) as e:
                problems.append(f"line {number}: {e}")
                continue
            if entry.id in first_line:
                # Links name ids: a repeated one would tie them to the wrong entry.
                problems.append(
                    f"line {number}: id {entry.id} is used by line {first_line[entry.id]}"
                )
                continue
            first_line[entry.id] = number
            owner = entry.scope.removeprefix("member:")
            if entry.scope.startswith("member:") and owner not in members:
                problems.append(
                    f"line {number}: scope {entry.scope!r} names no member of team "
                    f"{self.team!r}; add the member first (accord member add {owner})"
                    if NAME_PATTERN.fullmatch(owner)
                    else f"line {number}: scope {entry.scope!r} does not name a member"
                )
                dropped.add(entry.id)
                continue
            entries.append(entry)
        while True:
            orphans = [o for o in entries if o.superseded_by in dropped and o.id not in dropped]
            if not orphans:
                break
            for orphan in orphans:
                problems.append(
                    f"line {first_line[orphan.id]}: superseded by entry {orphan.superseded_by}, "
                    "which is not imported"
                )
                dropped.add(orphan.id)
            entries = [kept for kept in entries if kept.id not in dropped]
        if problems and not skip_bad:
            raise UserError(
                f"{len(problems)} bad line(s), nothing imported ({'; '.join(problems[:3])}); "
                "fix them, or pass --skip-bad to import the rest"
            )
        _check_links(entries)
        self.store.import_memories(self.team, entries, actor=actor)
        if self.embedder is not None and entries:
            self.reindex()
        return len(entries), sorted(problems, key=_line_number)


def _line_number(problem: str) -> int:
    return int(problem.split(":", 1)[0].removeprefix("line "))


def _entry(data: object) -> MemoryEntry:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("v") != EXPORT_VERSION:
        raise ValueError(f"format version {data.get('v')!r}, expected {EXPORT_VERSION}")
    text = data["text"]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    scope = str(data.get("scope", "team"))
    if scope not in ("team", "project") and not scope.startswith("member:"):
        raise ValueError(f"unknown scope {scope!r}; use team, project or member:NAME")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(
        isinstance(t, str) and NAME_PATTERN.fullmatch(t) for t in tags
    ):
        raise ValueError("tags must be a list of names ([a-z0-9][a-z0-9_-]*)")
    count = data.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError("count must be a whole number of 1 or more")
    kind = MemoryType(data["type"])
    status = MemoryStatus(data.get("status", "active"))
    if status == MemoryStatus.SUPERSEDED and (
        kind != MemoryType.DECISION or data.get("superseded_by") is None
    ):
        raise ValueError("only a decision with a superseded_by can be superseded")
    return MemoryEntry(
        id=int(data["id"]),
        team=None,
        scope=scope,
        type=kind,
        text=text,
        tags=tuple(tags),
        status=status,
        author=data.get("author"),
        task_id=data.get("task_id"),
        session=data.get("session"),
        created_at=float(data["created_at"]),
        seen_at=float(data.get("seen_at") or data["created_at"]),
        count=count,
        supersedes=data.get("supersedes"),
        superseded_by=data.get("superseded_by"),
    )


def _check_links(entries: Sequence[MemoryEntry]) -> None:
    """Refuse a supersession chain that loops (it could never have been written)."""
    # Either side of a link is enough to follow it: an older -> newer edge per link.
    newer: dict[int, set[int]] = {}
    for e in entries:
        if e.superseded_by is not None:
            newer.setdefault(e.id, set()).add(e.superseded_by)
        if e.supersedes is not None:
            newer.setdefault(e.supersedes, set()).add(e.id)
    done: set[int] = set()
    for start in newer:
        path: set[int] = set()
        stack: list[tuple[int, bool]] = [(start, True)]
        while stack:
            node, entering = stack.pop()
            if not entering:
                path.discard(node)
                done.add(node)
                continue
            if node in path:
                raise UserError(f"the import's supersession links loop through entry {node}")
            if node in done:
                continue
            path.add(node)
            stack.append((node, False))
            stack.extend((n, True) for n in newer.get(node, ()))
