"""The product's layering, read from its source with ``ast`` (ARCHITECTURE.md draws it).

- An import only points down: ground < store < services (team, memory, llm) < agent <
  runtime < cli. ``accord.testing`` may import anything; nothing in the product imports it.
- Only ``store/`` speaks SQL: no ``sqlite3`` or ``psycopg`` import outside ``store/``
  (and ``testing/``, which makes throwaway databases).
- One way in above the store: ``agent/``, ``runtime/`` and ``cli/`` call services, never a
  method of ``accord.store.base.Store`` on a store (``store.m(...)``, ``self.store.m(...)``,
  ``x.store.m(...)``), but for ``close``: whoever opens a store closes it.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

from accord.store import base

SRC = Path(base.__file__).resolve().parents[1]  # src/accord
GROUND = (
    "types",
    "events",
    "errors",
    "location",
    "process",
    "text",
    "credentials",
    "_where",
    "git",
    "sandbox",
    "globs",
    "claude",
)
RANK = {
    **dict.fromkeys(GROUND, 0),
    "config": 0,
    "permissions": 0,  # rules and their matching, read by config and the agent
    "store": 1,
    "team": 2,
    "memory": 2,
    "llm": 2,
    "agent": 3,
    "runtime": 4,
    "cli": 5,
    "tui": 5,  # a front door beside the command line, which opens it
    "mcp": 5,  # a front door for MCP clients, which `accord mcp` opens
    # the package's exports and ``python -m accord`` stand above every layer
    "__init__": 6,
    "__main__": 6,
}
ABOVE_SERVICES = ("agent", "runtime", "cli", "tui", "mcp")


def modules() -> Iterator[tuple[str, Path, ast.Module]]:
    """Each product module (not ``accord.testing``), as its part of accord, path and tree."""
    for path in sorted(SRC.rglob("*.py")):
        part = path.relative_to(SRC).parts[0].removesuffix(".py")
        if part != "testing":
            yield part, path, ast.parse(path.read_text(), str(path))


def imported(path: Path, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every module ``tree`` imports (TYPE_CHECKING too), by line, as a dotted name."""
    package = ["accord", *path.relative_to(SRC).parts[:-1]]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            stem = package[: len(package) + 1 - node.level] if node.level else []
            module = ".".join([*stem, *([node.module] if node.module else [])])
            if module == "accord":
                # ``from accord import process``: a submodule; ``__version__``: the package
                for alias in node.names:
                    sub = alias.name in RANK or (SRC / alias.name).is_dir()
                    yield node.lineno, f"accord.{alias.name}" if sub else "accord"
            else:
                yield node.lineno, module


def part_of(module: str) -> str | None:
    bits = module.split(".")
    if bits[0] != "accord":
        return None
    return bits[1] if len(bits) > 1 else "version"  # ``accord`` alone: its version


def test_imports_point_down() -> None:
    bad = []
    for me, path, tree in modules():
        assert me in RANK, f"{path}: name accord.{me}'s layer in RANK (and ARCHITECTURE.md)"
        for line, module in imported(path, tree):
            part = part_of(module)
            where = f"{path.relative_to(SRC)}:{line} imports {module}"
            if part == "testing":
                bad.append(f"{where}: the product never imports accord.testing")
            elif part in RANK and RANK[part] > RANK[me]:
                bad.append(f"{where}, a layer above {me}")
    assert not bad, "an import only points down (ARCHITECTURE.md):\n" + "\n".join(bad)


def test_only_the_store_speaks_sql() -> None:
    bad = [
        f"{path.relative_to(SRC)}:{line} imports {module}"
        for me, path, tree in modules()
        if me != "store"
        for line, module in imported(path, tree)
        if module.split(".")[0] in ("sqlite3", "psycopg")
    ]
    assert not bad, "only store/ speaks SQL to accord's data:\n" + "\n".join(bad)


def store_methods() -> set[str]:
    """What a store does: every method its protocols (``Store`` and its parts) declare."""
    names = {name for name, _ in inspect.getmembers(base.Store, inspect.isfunction)}
    return {n for n in names if not n.startswith("_")} - {"close"}


def on_a_store(receiver: ast.expr) -> bool:
    # ``store``, ``self.store``, ``ctx.store``, ``team.roster.store``, ...
    if isinstance(receiver, ast.Name):
        return receiver.id == "store"
    return isinstance(receiver, ast.Attribute) and receiver.attr == "store"


def direct_store_calls() -> list[str]:
    methods = store_methods()
    found = []
    for me, path, tree in modules():
        if me not in ABOVE_SERVICES:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in methods
                and on_a_store(node.func.value)
            ):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {ast.unparse(node.func)}")
    return sorted(found)


def test_store_methods_are_read_from_the_protocols() -> None:
    # The rule below is only as good as this list: it must hold the store's operations.
    methods = store_methods()
    assert {"get_team", "claim_task", "send_message", "read_events", "get_run"} <= methods
    assert "close" not in methods


def test_one_way_in_above_the_store() -> None:
    found = direct_store_calls()
    assert not found, (
        f"{len(found)} direct store calls above the services; call the team's services "
        "(accord.team.Team) instead:\n" + "\n".join(found)
    )
