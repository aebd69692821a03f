"""Tables for programs and pipes, without loading rich.

Agents and hooks read ``accord task list`` through a pipe many times a run, and
importing rich costs more than the rest of such a command. When the output is
not a terminal and every cell is plain text, ``simple_table`` writes the very
bytes rich would (``box.SIMPLE_HEAD``, ``pad_edge=False``, no title); otherwise
it answers None and the caller asks rich (markup and emoji codes off, as cells are
what members wrote). A test holds the two equal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from accord.text import strip_control

WIDTH = 400  # the console width the caller gives rich for output that is not a terminal
# What rich would measure differently (wide or combining characters, controls): such a
# table goes to rich. (Markup and emoji codes are off in the caller's console.)
_NOT_PLAIN = re.compile(r"[^ -~…]")


def simple_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str | None:
    """The table as rich prints it, or None when only rich can say."""
    if any(os.environ.get(v) for v in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")):
        return None  # rich would style or size the output as for a terminal
    columns = [list(headers), *(list(r) for r in rows)]
    if any(len(r) != len(headers) for r in columns) or not headers:
        return None
    if any(_NOT_PLAIN.search(cell) for r in columns for cell in r):
        return None
    widths = [max(len(r[i]) for r in columns) for i in range(len(headers))]
    last = len(widths) - 1
    # pad_edge=False: no padding left of the first column or right of the last.
    padded = [w + (i > 0) + (i < last) for i, w in enumerate(widths)]
    total = sum(padded) + len(padded) + 1  # one edge each side, one divider between
    if total > WIDTH or any(w == 0 for w in widths):
        return None

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            parts.append((" " if i > 0 else "") + cell.ljust(w) + (" " if i < last else ""))
        return " " + " ".join(parts) + " "

    blank = " " * total
    rule = " " + "─" * (total - 2) + " "
    out = [blank, line(headers), rule, *(line(r) for r in rows), blank]
    return "\n".join(out) + "\n"


def printable(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string stripped
    of control characters, for a view people read (``status``, the live view); what a
    model wrote cannot rewrite their terminal there either."""
    if isinstance(value, str):
        return strip_control(value)
    if isinstance(value, dict):
        return {k: printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value
