"""Tools: typed definitions, their JSON schemas, and running a model's call safely.

A tool is a name, a description, a pydantic model of its arguments (the JSON
schema the model sees is generated from it) and a function. ``Toolbox`` holds
the tools one member may use (its agent definition's allowlist) and turns every
call into a ``ToolResult``: arguments that do not validate, a tool that is not
allowed, a call the member's permission rules deny (``agent.gate``: checked here,
the one place every call passes, before the tool runs), and a tool that raises all
come back to the model as error results with a message it can act on, and the loop
goes on.

Every tool runs with a ``ToolContext`` bound to one member: its workspace root,
its team services, its own name. The model never chooses who it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from accord.errors import AccordError, HookBlocked
from accord.llm.base import ToolCall, ToolResult, ToolSpec
from accord.sandbox import Sandbox
from accord.team import Team
from accord.types import LessonCause

if TYPE_CHECKING:
    from accord.agent.gate import Gate

A = TypeVar("A", bound=BaseModel)

# Results longer than this are cut, with a note saying how much, before the model sees them.
RESULT_LIMIT = 30_000


@dataclass
class HeldClaim:
    """A claim the member holds: the token stays here, never in the model's hands."""

    task_id: int
    token: int


@dataclass(frozen=True)
class Setback:
    """An attempt at a task that did not succeed, noted by the tool that saw it (a
    refused completion, a failed task) for the loop to ask for its lesson."""

    task_id: int
    attempt: int
    cause: LessonCause
    evidence: str


@dataclass
class ToolContext:
    """What tools may touch, bound to one member.

    ``workspace`` is where the member works: its own git worktree in worktree mode,
    the project folder in shared mode. ``project_root`` is the project itself (its
    accord.toml, its agent definitions), which the lead's tools read; unset, the
    workspace is the project.
    """

    workspace: Path
    member: str
    team: Team | None = None
    env: dict[str, str] = field(default_factory=dict)
    claims: dict[int, HeldClaim] = field(default_factory=dict)
    bash_timeout: float = 120.0
    wrote_continuity: bool = False  # set by write_continuity during a session
    # The member's permission rules and who answers its asks (None: no rules, all run).
    permissions: Gate | None = None
    # The wall bash commands run in (None: unsandboxed, for a context made by hand).
    sandbox: Sandbox | None = None
    project_root: Path | None = None
    # Setbacks seen by this turn's tools, for the loop (``accord.agent.learning``).
    setbacks: list[Setback] = field(default_factory=list)
    # The skills its agent definition lets it use (None: every skill), and the task its
    # session works on (a skill's use is recorded against that task's attempt).
    skills: tuple[str, ...] | None = None
    task_id: int | None = None

    @property
    def root(self) -> Path:
        """The project's folder (not the member's worktree)."""
        return self.project_root if self.project_root is not None else self.workspace


class ToolArgs(BaseModel):
    """Base of every tool's arguments: unknown fields are errors the model can see."""

    model_config = {"extra": "forbid"}


@dataclass(frozen=True)
class Tool(Generic[A]):
    """A typed tool: ``run(context, args) -> text``."""

    name: str
    description: str
    args: type[A]
    run: Callable[[ToolContext, A], str]
    read_only: bool = False

    def spec(self) -> ToolSpec:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(self.name, self.description, schema)


class ToolSource(Protocol):
    """Tools that come and go while a member runs (its MCP servers': ``agent.mcp``)."""

    def tools(self) -> dict[str, Tool[Any]]:
        """The tools now, by name."""
        ...

    def stand_in(self, name: str) -> Tool[Any] | None:
        """For a name of this source that is no tool now (its server is down), a tool
        whose call says why (None: not one of its names)."""
        ...


class Toolbox:
    """The tools one member may use, by name; with ``source``, also the tools it has."""

    def __init__(
        self,
        tools: Iterable[Tool[Any]],
        allow: Iterable[str] | None = None,
        source: ToolSource | None = None,
    ) -> None:
        self._specs: list[ToolSpec] | None = None
        self.source = source
        everything = {t.name: t for t in tools}
        if allow is None:
            self.tools = everything
        else:
            allowed = list(allow)
            unknown = [n for n in allowed if n not in everything]
            if unknown:
                from accord.errors import UserError

                raise UserError(
                    f"unknown tool(s) {', '.join(unknown)}; known tools: "
                    f"{', '.join(sorted(everything))}"
                )
            self.tools = {n: everything[n] for n in allowed}

    def specs(self) -> list[ToolSpec]:
        # Schemas are generated once: pydantic's schema generation costs milliseconds.
        if self._specs is None:
            self._specs = [t.spec() for t in self.tools.values()]
        more = [t.spec() for t in self.source.tools().values()] if self.source else []
        return list(self._specs) + more

    def names(self) -> list[str]:
        return list(self.tools) + (list(self.source.tools()) if self.source else [])

    def execute(self, ctx: ToolContext, call: ToolCall) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None and self.source is not None:
            tool = self.source.tools().get(call.name) or self.source.stand_in(call.name)
        if tool is None:
            return ToolResult(
                call.id,
                call.name,
                f"tool {call.name!r} is not available to you; your tools are: "
                f"{', '.join(self.names()) or 'none'}",
                is_error=True,
            )
        if call.arguments is None:
            return ToolResult(
                call.id,
                call.name,
                f"the arguments for {call.name} were not a JSON object: "
                f"{call.raw_arguments[:500]!r}; send a JSON object matching the tool's schema",
                is_error=True,
            )
        try:
            args = tool.args.model_validate(call.arguments)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in e.errors()
            )
            return ToolResult(
                call.id, call.name, f"invalid arguments for {call.name}: {problems}", True
            )
        if ctx.permissions is not None:
            # Every call passes the rules here, before it runs: deny, ask, allow.
            try:
                refused = ctx.permissions.check(ctx, tool.name, args)
            except AccordError as e:
                from accord.agent.tools._advice import worded

                refused = f"the permission check failed, so {call.name} did not run: {worded(e)}"
            if refused is not None:
                return ToolResult(call.id, call.name, refused, True)
        try:
            text = tool.run(ctx, args)
        except HookBlocked as e:
            return ToolResult(call.id, call.name, f"{e}\nhook feedback:\n{e.feedback}", True)
        except AccordError as e:
            from accord.agent.tools._advice import worded

            return ToolResult(call.id, call.name, worded(e), True)
        except OSError as e:
            return ToolResult(call.id, call.name, f"{type(e).__name__}: {e}", True)
        except Exception as e:  # a bug in a tool must not end the member's loop
            return ToolResult(
                call.id, call.name, f"{call.name} failed: {type(e).__name__}: {e}", True
            )
        return ToolResult(call.id, call.name, cap(text))


def cap(text: str, limit: int = RESULT_LIMIT) -> str:
    """Cut ``text`` to ``limit`` characters, keeping head and tail, saying how much went."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[-tail:]}"


def dumps(value: Any) -> str:
    """JSON for tool results: compact, readable, stable."""
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)
