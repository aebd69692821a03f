"""An embedder with no model: feature hashing of words and character trigrams.

Each stem of the text's words (accord.text) and each trigram of each word,
with ``<`` and ``>`` marking its ends, adds a signed count to one of ``dim``
slots chosen by a CRC-32 of the feature; the vector is then made unit length.
Texts that share stems, or parts of words (a typo, a compound, "k8s" and
"k8s-cluster"), come out close. It knows nothing of meaning: paraphrases with
no word in common stay far apart. Deterministic and free of dependencies, so
the whole embedding path (storing, reindexing, blending) runs offline in tests.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

from accord.text import stem, words

WORD_WEIGHT = 1.0
TRIGRAM_WEIGHT = 0.5


class HashingEmbedder:
    """Feature hashing into ``dim`` slots (256 by default: on the labelled set 128 to
    1,024 rank alike, and a smaller vector is less to read at every recall)."""

    def __init__(self, dim: int = 256) -> None:
        if not 16 <= dim <= 1 << 16:
            raise ValueError("a hashing embedder needs 16 to 65536 dimensions")
        self.dim = dim
        self.name = f"hashing-v1-{dim}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        for word in words(text):
            self._add(vector, "w " + stem(word), WORD_WEIGHT)
            marked = f"<{word}>"
            for i in range(len(marked) - 2):
                self._add(vector, "g " + marked[i : i + 3], TRIGRAM_WEIGHT)
        norm = math.sqrt(math.fsum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    def _add(self, vector: list[float], feature: str, weight: float) -> None:
        h = zlib.crc32(feature.encode("utf-8"))
        # the top bit signs the count, so unrelated features that share a slot cancel
        # out on average instead of adding up
        vector[h % self.dim] += -weight if h >> 31 else weight
