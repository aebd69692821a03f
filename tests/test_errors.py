"""The exception tree drawn in accord.errors is the tree the module defines."""

from __future__ import annotations

import inspect
import re

from accord import errors
from accord.llm import base


def test_the_drawn_tree_is_the_defined_tree() -> None:
    lines = (errors.__doc__ or "").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "AccordError")
    root = lines[start].index("AccordError")
    drawn: dict[str, str] = {}  # each class drawn, and its parent in the drawing
    parents = ["AccordError"]
    for line in lines[start + 1 :]:
        found = re.search(r"[├└]── (\w+)", line)
        if not found:
            break
        depth = (found.start(1) - root) // 4  # 1 under AccordError, 2 under that, ...
        parents[depth:] = [found.group(1)]
        drawn[found.group(1)] = parents[depth - 1]
    defined = {
        name: cls.__mro__[1].__name__
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.AccordError) and cls is not errors.AccordError
    }
    assert drawn == defined


def test_model_errors_are_in_the_one_tree_and_still_named_by_the_model_interface() -> None:
    assert base.ModelError is errors.ModelError and issubclass(base.ModelError, errors.AccordError)
    assert base.ContextTooLong is errors.ContextTooLong
    assert base.MissingKey is errors.MissingKey and issubclass(base.MissingKey, errors.UserError)
    assert issubclass(errors.UsageError, errors.UserError) and errors.UsageError.exit_code == 2
