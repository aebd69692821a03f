"""File claim patterns: checking them, matching a path, and whether two can overlap.

A pattern is a path relative to the project root, or a glob over such paths in the
file tools' syntax (``accord.globs.glob_regex``): ``**/`` spans any number
of folders, ``**`` anything at all, ``*`` and ``?`` stay within one name, ``[...]`` is
a character class (``[!...]`` negated). A trailing ``/`` means everything below.

Two members must never hold patterns that one path could match, so claiming asks
whether two patterns *overlap*: whether some path matches both. Each pattern is read
as a small automaton over characters and the pair is searched together, so the answer
is exact for every pair of globs (``src/**/test_*.py`` overlaps ``src/api/**``), not a
guess from their prefixes. Patterns are capped in length and in wildcards, which
bounds the search.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from accord.errors import UserError
from accord.store.limits import MAX_PATTERN

# A set of characters: ``chars`` itself, or with ``negated`` every character but those.
_Chars = tuple[bool, frozenset[str]]
_ANY: _Chars = (True, frozenset())
_NOT_SLASH: _Chars = (True, frozenset("/"))
_SLASH: _Chars = (False, frozenset("/"))
# A class range wider than this counts as any character: a claim then overlaps more,
# never less.
_WIDEST_RANGE = 4096
# Wildcards a pattern may hold: they bound the search that compares two patterns.
_WILDCARDS = 20
_WILDCARD = re.compile(r"\*+|\?|\[")
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def file_pattern(text: str) -> str:
    """``text`` as a claim pattern (stripped, ``./`` and doubled slashes dropped, a
    trailing ``/`` made ``/**``), or UserError saying how to write it."""
    if not isinstance(text, str):
        raise UserError(f"a file claim is a path or glob as text, not {text!r}")
    pattern = text.strip()
    if not pattern:
        raise UserError(
            "a file claim pattern is empty; give a path or glob relative to the project "
            "root, such as 'src/api.py' or 'src/api/**'"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in pattern):
        raise UserError(
            f"the file claim pattern {text!r} contains a control character; give a plain path"
        )
    if pattern.startswith(("/", "~", "\\")) or _DRIVE.match(pattern):
        raise UserError(
            f"the file claim pattern {text!r} is absolute; give it relative to the project "
            "root, such as 'src/api/**'"
        )
    parts = pattern.split("/")
    if ".." in parts:
        raise UserError(
            f"the file claim pattern {text!r} uses '..'; claims stay inside the project: "
            "give the path from the project root, without '..'"
        )
    kept = [p for p in parts if p not in ("", ".")]
    if not kept:
        raise UserError(
            f"the file claim pattern {text!r} names the project root itself; claim paths "
            "or globs under it, such as 'src/**'"
        )
    if pattern.endswith("/"):
        kept.append("**")
    pattern = "/".join(kept)
    if len(pattern.encode("utf-8", "surrogatepass")) > MAX_PATTERN:
        raise UserError(
            f"the file claim pattern {pattern[:40]!r}... is longer than {MAX_PATTERN} bytes; "
            "claim a folder with 'folder/**' instead"
        )
    if len(_WILDCARD.findall(pattern)) > _WILDCARDS:
        raise UserError(
            f"the file claim pattern {pattern[:40]!r} has more than {_WILDCARDS} wildcards; "
            "claim a folder with 'folder/**', or several simpler patterns"
        )
    return pattern


@dataclass
class _Automaton:
    """A pattern as states and moves: ``moves[s]`` are (characters, next state),
    ``free[s]`` the states reached from ``s`` reading nothing (``reach[s]``: all of
    them, ``s`` too); ``final`` accepts."""

    moves: list[list[tuple[_Chars, int]]] = field(default_factory=list)
    free: list[list[int]] = field(default_factory=list)
    final: int = 0
    reach: list[frozenset[int]] = field(default_factory=list)  # each state's closure

    def state(self) -> int:
        self.moves.append([])
        self.free.append([])
        return len(self.moves) - 1

    def closure(self, states: frozenset[int]) -> frozenset[int]:
        seen = set(states)
        todo = list(states)
        while todo:
            for nxt in self.free[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)


@functools.lru_cache(maxsize=512)
def _automaton(pattern: str) -> _Automaton:
    a = _Automaton()
    here = a.state()
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            # (?:[^/]*/)*: nothing, or names each ended by '/'.
            inside = a.state()
            after = a.state()
            a.moves[here] += [(_NOT_SLASH, inside), (_SLASH, here)]
            a.moves[inside] += [(_NOT_SLASH, inside), (_SLASH, here)]
            a.free[here].append(after)
            here = after
            i += 3
            continue
        if pattern.startswith("**", i) or c == "*":
            width = 2 if pattern.startswith("**", i) else 1
            after = a.state()
            a.moves[here].append((_ANY if width == 2 else _NOT_SLASH, here))
            a.free[here].append(after)
            here = after
            i += width
            continue
        chars: _Chars
        if c == "?":
            chars = _NOT_SLASH
            i += 1
        elif c == "[" and (end := _class_end(pattern, i)) != -1:
            chars = _class(pattern[i + 1 : end])
            i = end + 1
        else:
            chars = (False, frozenset(c))
            i += 1
        after = a.state()
        a.moves[here].append((chars, after))
        here = after
    a.final = here
    a.reach = [a.closure(frozenset({state})) for state in range(len(a.moves))]
    return a


def _class_end(pattern: str, start: int) -> int:
    # As glob_regex: a ']' right after '[' or '[!' belongs to the class.
    first = start + 2 if pattern[start + 1 : start + 2] in ("!", "]") else start + 1
    return pattern.find("]", first)


def _class(body: str) -> _Chars:
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    chars: set[str] = set()
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = ord(body[i]), ord(body[i + 2])
            if high - low > _WIDEST_RANGE:
                return _ANY
            chars.update(chr(x) for x in range(low, high + 1))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    return (negated, frozenset(chars))


def _meet(a: _Chars, b: _Chars) -> bool:
    """Whether some character is in both sets (the alphabet is unbounded)."""
    (a_not, a_chars), (b_not, b_chars) = a, b
    if a_not and b_not:
        return True
    if a_not:
        return bool(b_chars - a_chars)
    if b_not:
        return bool(a_chars - b_chars)
    return bool(a_chars & b_chars)


def _has(chars: _Chars, c: str) -> bool:
    negated, members = chars
    return (c in members) != negated


def matches(pattern: str, path: str) -> bool:
    """Whether the relative ``path`` (``/``-separated) is one ``pattern`` names."""
    a = _automaton(pattern)
    now = a.reach[0]
    for c in path:
        now = frozenset(
            r for s in now for chars, nxt in a.moves[s] if _has(chars, c) for r in a.reach[nxt]
        )
        if not now:
            return False
    return a.final in now


@functools.lru_cache(maxsize=4096)
def overlap(first: str, second: str) -> bool:
    """Whether some path matches both patterns."""
    a, b = _automaton(first), _automaton(second)
    start = (a.reach[0], b.reach[0])
    seen = {start}
    todo = [start]
    while todo:
        here_a, here_b = todo.pop()
        if a.final in here_a and b.final in here_b:
            return True
        # Pairs of single states keep the search small: each step moves both patterns on
        # one character they can both read.
        for s in here_a:
            for chars_a, next_a in a.moves[s]:
                for t in here_b:
                    for chars_b, next_b in b.moves[t]:
                        if not _meet(chars_a, chars_b):
                            continue
                        pair = (a.reach[next_a], b.reach[next_b])
                        if pair not in seen:
                            seen.add(pair)
                            todo.append(pair)
    return False
