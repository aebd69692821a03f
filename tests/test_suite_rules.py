"""Rules for the suite itself, read from its source with ``ast``.

- A test module never imports another test module: what several modules use lives in
  conftest.py (fixtures, and plain functions imported ``from conftest``) or in
  ``accord.testing``, so a module can be read, moved or deleted on its own.
- No helper is written twice: two helpers whose code is the same, but for names of
  arguments and locals, annotations and docstrings, are one helper in the wrong place.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
MODULES = sorted(TESTS.glob("*.py"))


def is_test_module(name: str) -> bool:
    return name.split(".")[0].startswith("test_") or name.split(".")[0] == "tests"


def test_no_test_module_imports_another() -> None:
    found = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [f"{path.name}:{node.lineno} imports {n}" for n in names if is_test_module(n)]
    assert not found, "move what they share to conftest.py or accord.testing:\n" + "\n".join(found)


class _Shape(ast.NodeTransformer):
    """A helper's code with what does not change what it does taken out: its name, its
    docstring, annotations, and the names of its arguments and locals (numbered instead)."""

    def __init__(self) -> None:
        self.local: dict[str, str] = {}

    def rename(self, name: str) -> str:
        return self.local.setdefault(name, f"_{len(self.local)}")

    def visit_arg(self, node: ast.arg) -> ast.arg:
        return ast.arg(arg=self.rename(node.arg))

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if isinstance(node.ctx, ast.Store) or node.id in self.local:
            return ast.Name(id=self.rename(node.id), ctx=node.ctx)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.Pass()
        return self.visit(ast.Assign(targets=[node.target], value=node.value, lineno=0))


def shape(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    shaper = _Shape()
    args = shaper.visit(node.args)
    parts = [shaper.visit(d) for d in node.decorator_list] + [args]
    parts += [shaper.visit(statement) for statement in body]
    return "\n".join(ast.dump(p) for p in parts)


def test_no_helper_is_written_twice() -> None:
    places: dict[str, list[str]] = defaultdict(list)
    for path in MODULES:
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if not node.name.startswith("test_"):
                    places[shape(node)].append(f"{path.name}:{node.lineno} {node.name}")
    copies = [" = ".join(where) for where in places.values() if len(where) > 1]
    assert not copies, "one helper, written more than once:\n" + "\n".join(copies)


def test_the_shape_of_a_helper_ignores_names_and_types() -> None:
    first, second, third = ast.parse(
        "def a(path: str, n: int) -> str:\n    '''Doc.'''\n    x = path * n\n    return x\n"
        "def b(p, k):\n    y: str = p * k\n    return y\n"
        "def c(p, k):\n    return p + k\n"
    ).body
    assert isinstance(first, ast.FunctionDef) and isinstance(second, ast.FunctionDef)
    assert isinstance(third, ast.FunctionDef)
    assert shape(first) == shape(second) != shape(third)
