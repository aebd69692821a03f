"""The one tokenizer: how memory text is split into the words it is matched on.

Both the memory service (queries, near-duplicate tests) and every store backend
(what its text index holds) use these functions, so a word means the same thing
on both sides of the store interface and in every backend. Plain functions on
strings, importable from any layer.

- ``words``: the lower-cased runs of letters and digits (an underscore or a
  hyphen splits them, accents are dropped), without the commonest English words;
- ``stem``: the Porter stemmer (M. F. Porter, 1980, as in his reference C
  implementation), so "deploys", "deployed" and "deploying" are one term;
- ``terms``: the stems of the words, which is what a store indexes and matches;
  ``distinct`` keeps one word per stem.

What these return is baked into every store's index: a change to them must come
with a store migration that rebuilds the memory index.

``strip_control`` is of another kind: it makes text from a model or a hook safe to
print on the person's terminal.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+")
STOP_WORDS = frozenset(
    "a an and are as at be but by do does for from has have how i if in into is it its of on "
    "or so that the their then there these they this to was we were what when where which who "
    "why will with you your".split()
)


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` without the commonest ones, in order, repeats kept."""
    if not text.isascii():
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def terms(text: str) -> list[str]:
    """The index terms of ``text``: the stems of its words, in order, repeats kept."""
    return [stem(w) for w in words(text)]


def distinct(found: list[str]) -> list[str]:
    """The first of each group of words with one stem ("test", "tests"): one term each."""
    first: dict[str, str] = {}
    for w in found:
        first.setdefault(stem(w), w)
    return list(first.values())


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """The Porter stem of a lower-case word; words that are not plain ASCII letters
    (numbers, identifiers with digits, other scripts) or longer than 64 letters are
    left as they are."""
    if not 2 < len(word) <= 64 or not (word.isascii() and word.isalpha()):
        return word
    return _Porter(word).stem()


class _Porter:
    """One word going through the five steps; ``b[:k + 1]`` is the word so far."""

    def __init__(self, word: str) -> None:
        self.b = word
        self.k = len(word) - 1
        self.j = 0

    def stem(self) -> str:
        self.step1ab()
        if self.k > 0:
            self.step1c()
            self.step2()
            self.step3()
            self.step4()
            self.step5()
        return self.b[: self.k + 1]

    # the measures ------------------------------------------------------------------------

    def cons(self, i: int) -> bool:
        c = self.b[i]
        if c in "aeiou":
            return False
        if c == "y":
            return i == 0 or not self.cons(i - 1)
        return True

    def m(self) -> int:
        """How many vowel-consonant sequences ``b[:j + 1]`` has: [C](VC)^m[V]."""
        n, i, j = 0, 0, self.j
        while i <= j and self.cons(i):
            i += 1
        while True:
            while i <= j and not self.cons(i):
                i += 1
            if i > j:
                return n
            while i <= j and self.cons(i):
                i += 1
            n += 1
            if i > j:
                return n

    def vowel_in_stem(self) -> bool:
        return any(not self.cons(i) for i in range(self.j + 1))

    def double_c(self, i: int) -> bool:
        return i >= 1 and self.b[i] == self.b[i - 1] and self.cons(i)

    def cvc(self, i: int) -> bool:
        """Consonant-vowel-consonant ending at ``i``, the last not w, x or y (-ate, -ize)."""
        if i < 2 or not self.cons(i) or self.cons(i - 1) or not self.cons(i - 2):
            return False
        return self.b[i] not in "wxy"

    def ends(self, s: str) -> bool:
        n = len(s)
        if n > self.k + 1 or self.b[self.k - n + 1 : self.k + 1] != s:
            return False
        self.j = self.k - n
        return True

    def set_to(self, s: str) -> None:
        self.b = self.b[: self.j + 1] + s + self.b[self.k + 1 :]
        self.k = self.j + len(s)

    def r(self, s: str) -> None:
        if self.m() > 0:
            self.set_to(s)

    # the steps -----------------------------------------------------------------------------

    def step1ab(self) -> None:
        """Plurals and -ed or -ing: caresses caress, ponies poni, meetings meet, feed feed."""
        b = self.b
        if b[self.k] == "s":
            if self.ends("sses"):
                self.k -= 2
            elif self.ends("ies"):
                self.set_to("i")
            elif self.k >= 1 and b[self.k - 1] != "s":
                self.k -= 1
        if self.ends("eed"):
            if self.m() > 0:
                self.k -= 1
        elif (self.ends("ed") or self.ends("ing")) and self.vowel_in_stem():
            self.k = self.j
            if self.ends("at"):
                self.set_to("ate")
            elif self.ends("bl"):
                self.set_to("ble")
            elif self.ends("iz"):
                self.set_to("ize")
            elif self.double_c(self.k):
                self.k -= 1
                if self.b[self.k] in "lsz":
                    self.k += 1
            else:
                self.j = self.k
                if self.m() == 1 and self.cvc(self.k):
                    self.set_to("e")

    def step1c(self) -> None:
        """A final y after a vowel in the stem becomes i: happy happi, sky sky."""
        if self.ends("y") and self.vowel_in_stem():
            self.b = self.b[: self.k] + "i" + self.b[self.k + 1 :]

    def _replace(self, table: tuple[tuple[str, str], ...]) -> None:
        for suffix, replacement in table:
            if self.ends(suffix):
                self.r(replacement)
                return

    def step2(self) -> None:
        """Double suffixes to single ones: -ization -ize, -ational -ate, -fulness -ful."""
        if self.k >= 1:
            self._replace(_STEP2.get(self.b[self.k - 1], ()))

    def step3(self) -> None:
        """-ic-, -full, -ness and the like: triplicate triplic, hopeful hope, goodness good."""
        self._replace(_STEP3.get(self.b[self.k], ()))

    def step4(self) -> None:
        """Drop -ant, -ence and the like when the stem is long enough: revival reviv."""
        if self.k < 1:
            return
        for suffix in _STEP4.get(self.b[self.k - 1], ()):
            if self.ends(suffix):
                if suffix == "ion" and (self.j < 0 or self.b[self.j] not in "st"):
                    return
                break
        else:
            return
        if self.m() > 1:
            self.k = self.j

    def step5(self) -> None:
        """A final -e goes if the stem is long enough, and -ll becomes -l: probate probat."""
        self.j = self.k
        if self.b[self.k] == "e":
            a = self.m()
            if a > 1 or (a == 1 and not self.cvc(self.k - 1)):
                self.k -= 1
        if self.b[self.k] == "l" and self.double_c(self.k) and self.m() > 1:
            self.k -= 1


_STEP2: dict[str, tuple[tuple[str, str], ...]] = {
    "a": (("ational", "ate"), ("tional", "tion")),
    "c": (("enci", "ence"), ("anci", "ance")),
    "e": (("izer", "ize"),),
    "l": (("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous")),
    "o": (("ization", "ize"), ("ation", "ate"), ("ator", "ate")),
    "s": (("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous")),
    "t": (("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")),
    "g": (("logi", "log"),),
}
_STEP3: dict[str, tuple[tuple[str, str], ...]] = {
    "e": (("icate", "ic"), ("ative", ""), ("alize", "al")),
    "i": (("iciti", "ic"),),
    "l": (("ical", "ic"), ("ful", "")),
    "s": (("ness", ""),),
}
_STEP4: dict[str, tuple[str, ...]] = {
    "a": ("al",),
    "c": ("ance", "ence"),
    "e": ("er",),
    "i": ("ic",),
    "l": ("able", "ible"),
    "n": ("ant", "ement", "ment", "ent"),
    "o": ("ion", "ou"),
    "s": ("ism",),
    "t": ("ate", "iti"),
    "u": ("ous",),
    "v": ("ive",),
    "z": ("ize",),
}


# Terminal escape sequences: CSI (colours, cursor moves), OSC (titles, links) and the
# other string and single-character escapes, in their 7-bit and 8-bit forms.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_control(text: str) -> str:
    """``text`` safe to print to a terminal: ANSI escapes and every C0/C1 control
    character (``\\r`` included) taken out, newlines and tabs kept."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))
