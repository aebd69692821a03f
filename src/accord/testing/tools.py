"""Checks on a tool's result, for tests that drive tools through a Toolbox."""

from __future__ import annotations

from accord.llm.base import ToolResult


def ok(result: ToolResult) -> str:
    """The result's text; fails the test if the tool call was an error."""
    assert not result.is_error, result.content
    return result.content


def refused(result: ToolResult, *fragments: str) -> str:
    """The error's text; fails the test unless the call was refused saying every fragment."""
    assert result.is_error, result.content
    for fragment in fragments:
        assert fragment in result.content, result.content
    return result.content
