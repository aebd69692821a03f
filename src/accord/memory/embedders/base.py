"""What an embedder is, and how its vectors are kept and compared.

An embedder turns texts into vectors whose cosine says how alike the texts
mean, so recall can find an entry that says the same thing in other words.
Vectors are stored unit length, as little-endian float32 bytes, under the
embedder's ``name``: a store keeps the vectors of each model apart, and one
made by another model (or another size of the same) is never compared.
"""

from __future__ import annotations

import importlib
import math
import operator
import sys
from array import array
from collections.abc import Sequence
from typing import Any, Protocol


class Embedder(Protocol):
    """A model from texts to vectors of ``dim`` floats (plain floats, no numpy)."""

    @property
    def name(self) -> str:
        """Names the model and its size; vectors are stored and compared per name."""
        ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...


def pack(vector: Sequence[float]) -> bytes:
    """The vector at unit length as little-endian float32 (a zero vector stays zero)."""
    norm = math.sqrt(math.fsum(x * x for x in vector)) or 1.0
    out = array("f", (x / norm for x in vector))
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def unpack(blob: bytes) -> array[float]:
    out = array("f")
    out.frombytes(blob)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def cosines(query: Sequence[float], blobs: Sequence[bytes]) -> list[float]:
    """The cosine of the query with each packed vector (all unit length, so a dot).

    numpy does it in one product when it is installed (the ``embed`` extra brings
    it); plain Python gives the same numbers, a few hundred times slower."""
    if not blobs:
        return []
    q = unpack(pack(query))
    if any(len(b) != 4 * len(q) for b in blobs):
        raise ValueError(f"a stored vector does not have the query's {len(q)} dimensions")
    try:
        np: Any = importlib.import_module("numpy")
    except ImportError:
        return [sum(map(operator.mul, unpack(blob), q)) for blob in blobs]
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), len(q))
    product = matrix.astype(np.float64) @ np.asarray(q, dtype=np.float64)
    return [float(x) for x in product]
