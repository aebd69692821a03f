"""The named vocabulary holds: every event accord writes is an ``EventKind`` with the
payload keys of ``EVENT_PAYLOAD``.

Read from the source (``ast``): every place that writes an event (the store's
``append_event`` and ``_event``, the ``Log`` service's ``append_event``) names a kind
of the enum, and a payload written as a dict literal has the table's keys; every reader
that compares a kind names it too. Checked as written: every event of the store
conformance suite, as the store writes it, and every event of a whole scripted team
run (``accord demo``), read back from its log.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import accord
from accord.events import EVENT_PAYLOAD, EventKind, payload_problem
from accord.store import Store, open_store
from accord.store.base import Clock
from accord.store.sql import SQLStore
from accord.testing.conformance import MakeStore, StoreConformance

SRC = Path(accord.__file__).parent

# accord.testing writes kinds of its own: the conformance suite checks that the store
# logs whatever ``append_event`` is given. Nothing else is left out.
TESTING = SRC / "testing"
CONFORMANCE_KINDS = frozenset({"note", "hook_ran"})

# Only these pass a caller's kind on: the store (``append_event`` to ``_event`` to
# ``_log``) and the ``Log`` service (to the store's ``append_event``).
PASSERS = ("store" + os.sep, os.path.join("team", "log.py"))

# The writes the scan must find, at least: store/sql 37 (36 places, one of them the two
# kinds of a spawn's end), team/hooks.py 2, agent/ 6, runtime/ 7, and the 3 passers. A
# scan that finds fewer has gone blind to some writer; a new writer raises the count.
AT_LEAST = 55
# Of them, the writes whose payload is a dict literal (all but the passers and three the
# store builds before writing).
LITERAL_PAYLOADS = 49


@dataclass(frozen=True)
class Write:
    """One place in src/ that writes an event."""

    where: str  # path:line
    how: str  # "named" (EventKind.X), "literal", "f-string", "passed" (a parameter), "other"
    # (a conditional ``EventKind.A if c else EventKind.B`` is one write of each)
    kind: str  # the member's name, the literal, or the source of the expression
    payload: ast.expr | None

    def __str__(self) -> str:
        return f"{self.where} {self.how} {self.kind}"


# What writes an event: the method, and the positions of its kind and payload. The
# ``Log`` service's ``append_event`` (called on a ``.log``) takes no team: ``LOG_WRITER``.
WRITERS = {"append_event": (1, 2), "_event": (2, 3), "_log": (4, None)}
LOG_WRITER = (0, 1)


def _positions(func: ast.Attribute) -> tuple[int, int | None]:
    on = func.value
    on_log = (isinstance(on, ast.Attribute) and on.attr == "log") or (
        isinstance(on, ast.Name) and on.id == "log"
    )
    return LOG_WRITER if func.attr == "append_event" and on_log else WRITERS[func.attr]


def _argument(call: ast.Call, position: int | None, name: str) -> ast.expr | None:
    if position is not None and len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == name), None)


class _Finder(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.params: list[set[str]] = [set()]
        self.found: list[Write] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        self.params.append({a.arg for a in every})
        self.generic_visit(node)
        self.params.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in WRITERS:
            at_kind, at_payload = _positions(func)
            kind = _argument(node, at_kind, "kind")
            if kind is not None:
                payload = _argument(node, at_payload, "payload")
                arms = [kind.body, kind.orelse] if isinstance(kind, ast.IfExp) else [kind]
                self.found += [self._write(node.lineno, arm, payload) for arm in arms]
        self.generic_visit(node)

    def _write(self, line: int, kind: ast.expr, payload: ast.expr | None) -> Write:
        where = f"{self.path}:{line}"
        if (
            isinstance(kind, ast.Attribute)
            and isinstance(kind.value, ast.Name)
            and kind.value.id == "EventKind"
        ):
            return Write(where, "named", kind.attr, payload)
        if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
            return Write(where, "literal", kind.value, payload)
        if isinstance(kind, ast.JoinedStr):
            return Write(where, "f-string", ast.unparse(kind), payload)
        if isinstance(kind, ast.Name) and kind.id in self.params[-1]:
            return Write(where, "passed", kind.id, payload)
        return Write(where, "other", ast.unparse(kind), payload)


def writes() -> list[Write]:
    found: list[Write] = []
    for path in sorted(SRC.rglob("*.py")):
        if TESTING in path.parents:
            continue
        finder = _Finder(str(path.relative_to(SRC)))
        finder.visit(ast.parse(path.read_text(), str(path)))
        found += finder.found
    return found


def test_the_table_names_every_kind_once() -> None:
    assert set(EVENT_PAYLOAD) == set(EventKind)
    for kind, keys in EVENT_PAYLOAD.items():
        assert not keys.always & keys.sometimes, kind
        assert keys.always or keys.sometimes, kind


def test_the_scan_finds_the_writers() -> None:
    """A guard on the scan itself: it sees the store's writes and the runtime's."""
    found = writes()
    assert len(found) >= AT_LEAST
    kinds = {w.kind for w in found} | {EventKind[w.kind].value for w in found if w.how == "named"}
    assert {"task_claimed", "hook_run", "run_ended", "spawn_started", "spawn_refused"} <= kinds
    assert {w.where.split(os.sep)[0] for w in found} >= {"store", "team", "agent", "runtime"}


def test_every_kind_written_is_an_event_kind() -> None:
    wrong: list[str] = []
    for w in writes():
        if w.how == "named" and w.kind not in EventKind.__members__:
            wrong.append(f"{w}: no such EventKind member")
        elif w.how == "literal" and w.kind not in set(EventKind):
            wrong.append(f"{w}: not an EventKind; add it to accord/events.py with its keys")
        elif w.how == "f-string":
            wrong.append(f"{w}: an f-string hides the kind from grep; name an EventKind")
        elif w.how == "other":
            wrong.append(f"{w}: name an EventKind")
        elif w.how == "passed" and not w.where.startswith(PASSERS):
            wrong.append(f"{w}: only the store and the Log service pass a caller's kind on")
    assert wrong == []


def _kind(w: Write) -> EventKind | None:
    if w.how == "named" and w.kind in EventKind.__members__:
        return EventKind[w.kind]
    if w.how == "literal" and w.kind in set(EventKind):
        return EventKind(w.kind)
    return None


def test_every_payload_written_as_a_literal_has_the_tables_keys() -> None:
    """Each dict literal written as a payload: its keys are its kind's. A dict that
    spreads another (``{"name": name, **changed}``) has at least allowed keys; payloads
    built elsewhere are checked as written, below."""
    wrong: list[str] = []
    checked = 0
    for w in writes():
        kind = _kind(w)
        if kind is None or not isinstance(w.payload, ast.Dict):
            continue
        keys = [k.value if isinstance(k, ast.Constant) else k for k in w.payload.keys]
        spread = None in keys
        named = {k for k in keys if isinstance(k, str)}
        table = EVENT_PAYLOAD[kind]
        if spread:
            unknown = named - table.always - table.sometimes
            problem = f"unknown {', '.join(sorted(unknown))}" if unknown else None
        else:
            problem = table.problem(dict.fromkeys(named))
        checked += 1
        if problem is not None:
            wrong.append(f"{w}: {problem}")
    assert checked >= LITERAL_PAYLOADS
    assert wrong == []


def test_every_writer_names_its_kind() -> None:
    """No event kind is spelled as a string where it is written (so grep finds every
    writer of a kind by its EventKind member)."""
    spelled = [str(w) for w in writes() if w.how in ("literal", "f-string")]
    assert spelled == []


def _compared_kinds(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Each string a kind (``x.kind``, or a ``kind``) is compared with: ``== "a"`` or
    ``in ("a", "b")``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        left = node.left
        if not (isinstance(left, ast.Attribute) and left.attr == "kind") and not (
            isinstance(left, ast.Name) and left.id == "kind"
        ):
            continue
        for comparator in node.comparators:
            items = comparator.elts if isinstance(comparator, ast.Tuple | ast.Set) else [comparator]
            for item in items:
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    yield item.lineno, item.value


def test_every_reader_names_the_kinds_it_compares() -> None:
    """A reader compares an event's kind with an EventKind, never a string, so grep
    finds every reader of a kind too."""
    kinds = set(EventKind)
    spelled = []
    for path in sorted(SRC.rglob("*.py")):
        if TESTING in path.parents:
            continue
        for line, text in _compared_kinds(ast.parse(path.read_text())):
            if text in kinds:
                spelled.append(f"{path.relative_to(SRC)}:{line} {text!r}")
    assert spelled == []


# as written --------------------------------------------------------------------------


class TestEventsOfTheConformanceSuite(StoreConformance):
    """The whole conformance suite on SQLite, with every event checked as it is written."""

    @pytest.fixture
    def make_store(
        self, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
    ) -> MakeStore:
        write = SQLStore._event

        def checked(store: SQLStore, db: Any, team_id: int, kind: str, payload: Any,
                    *args: Any, **kwargs: Any) -> Any:  # fmt: skip
            if kind not in CONFORMANCE_KINDS:
                problem = payload_problem(kind, payload)
                assert problem is None, f"{problem} in {payload}"
            return write(store, db, team_id, kind, payload, *args, **kwargs)

        monkeypatch.setattr(SQLStore, "_event", checked)

        def make(*, clock: Clock) -> Store:
            return make_store(clock=clock, synchronous="normal")

        return make


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Path]:
    """The store of a whole scripted team run (``accord demo``): lead, two teammates,
    hooks, a refused completion, a finished run."""
    where = tmp_path / "demo"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    done = subprocess.run(
        [sys.executable, "-m", "accord", "demo", "--dir", str(where), "--display", "plain"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    yield where / ".accord" / "accord.db"


def test_every_event_of_a_team_run_has_its_kinds_keys(demo: Path) -> None:
    with open_store(str(demo)) as store:
        events = store.read_events("demo")
    kinds = {e.kind for e in events}
    assert {"task_claimed", "hook_run", "spawn_started", "run_ended"} <= kinds
    wrong = [f"#{e.seq} {p}" for e in events if (p := payload_problem(e.kind, e.payload))]
    assert wrong == []
