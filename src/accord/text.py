"""The one tokenizer: how memory text is split into the words it is matched on.

Both the memory service (queries, near-duplicate tests) and every store backend
(what its text index holds) use these functions, so a word means the same thing
on both sides of the store interface and in every backend. Plain functions on
strings, importable from any layer.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z0-9_]+")
STOP_WORDS = frozenset(
    "a an and are as at be but by do does for from has have how i if in into is it its of on "
    "or so that the their then there these they this to was we were what when where which who "
    "why will with you your".split()
)


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` without the commonest ones, in order, repeats kept."""
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOP_WORDS]
