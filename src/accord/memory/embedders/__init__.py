"""Optional embedders for recall, chosen by ``[memory] embeddings`` in accord.toml.

- ``none`` (the default): no model, no vectors; recall is BM25 alone.
- ``hashing``: feature hashing of words and character trigrams (``hashing.py``),
  no dependency; close for texts that share words or parts of words.
- ``minilm``: the all-MiniLM-L6-v2 sentence model run locally (``minilm.py``),
  behind the ``embed`` extra; close for texts that mean the same thing.
"""

from __future__ import annotations

from accord.memory.embedders.base import Embedder, cosines, pack, unpack

__all__ = ["KINDS", "Embedder", "cosines", "open_embedder", "pack", "unpack"]

KINDS = ("none", "hashing", "minilm")


def open_embedder(kind: str) -> Embedder | None:
    """The embedder ``kind`` names (None for ``none``); cheap to make, since a model
    loads at its first text, once per process. Raises ``UserError`` when ``minilm``
    is asked for and not installed."""
    if kind == "none":
        return None
    if kind == "hashing":
        from accord.memory.embedders.hashing import HashingEmbedder

        return HashingEmbedder()
    if kind == "minilm":
        from accord.memory.embedders.minilm import MiniLMEmbedder

        return MiniLMEmbedder()
    raise ValueError(f"unknown embeddings {kind!r}; use one of {', '.join(KINDS)}")
