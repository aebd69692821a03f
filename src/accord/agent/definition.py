"""Agent definitions: Markdown files with YAML front matter, the body being the system prompt.

They are read from ``.accord/agents/*.md`` and ``.claude/agents/*.md`` (accord's
own win when both define a name), so a user's existing Claude Code subagents
work as teammates. Claude Code's tool names (Read, Edit, Bash...) map to
accord's; tools accord does not have are listed in ``ignored_tools`` rather than
failing the whole definition, and ``unsupported()`` names them and every field
accord does not act on, for a warning (``disallowedTools`` is honoured). Model
aliases (sonnet, opus, haiku) map to Anthropic models; ``inherit`` means the
lead's model (``inherits_model``), and no model means the team's default.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.errors import ConfigError, UserError
from accord.types import check_name

SEARCH_DIRS = (".accord/agents", ".claude/agents")

CLAUDE_TOOL_NAMES = {
    "Read": "read_file",
    "Write": "write_file",
    "Edit": "edit_file",
    "MultiEdit": "edit_file",
    "Glob": "glob",
    "Grep": "grep",
    "LS": "list_files",
    "Bash": "bash",
}
MODEL_ALIASES = {
    "sonnet": "anthropic:claude-sonnet-4-5",
    "opus": "anthropic:claude-opus-4-1",
    "haiku": "anthropic:claude-haiku-4-5",
}
_FRONT = re.compile(r"\A---[ \t]*\r?\n(?:(.*?)\r?\n)?---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.S)
# Front matter accord acts on; ``color`` only paints a pane in Claude Code, so dropping it
# loses nothing. Every other key (Claude Code's permissionMode,
# hooks, memory, effort...) is not supported and is reported by ``unsupported``.
_KNOWN_KEYS = {
    "name",
    "description",
    "tools",
    "disallowedTools",
    "model",
    "self_claim",
    "max_turns",
    "plan_required",
    "network",
    "color",
    "ask",
    "mcpServers",
    "routes",
    "runtime",
    "command",
    "skills",
}


@dataclass(frozen=True, slots=True)
class AgentDefinition:
    """What a member is: its prompt, its tools, its model and how it works."""

    name: str
    description: str = ""
    prompt: str = ""
    tools: tuple[str, ...] | None = None  # None: every tool
    model: str | None = None
    inherits_model: bool = False  # ``model: inherit``: the lead's model, before any default
    self_claim: bool = True
    max_turns: int = 200
    plan_required: bool = False
    network: bool = False  # its bash commands may reach the network from the sandbox
    source: str | None = None
    ignored_tools: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # Permission rules the definition adds (it narrows, never widens): patterns among
    # ``disallowedTools`` ("Bash(git push:*)") deny, and ``ask`` entries ask.
    deny_rules: tuple[str, ...] = ()
    ask_rules: tuple[str, ...] = ()
    # MCP servers the member may use (Claude Code's ``mcpServers``): names of servers
    # configured in .mcp.json or accord.toml, and servers defined here, by name.
    mcp_servers: tuple[str, ...] = ()
    mcp_inline: dict[str, dict[str, Any]] = field(default_factory=dict)
    # MCP tools its ``tools`` names (``mcp__github__search_issues``, ``mcp__github__*``,
    # ``mcp__github``): their servers start for it, and it gets those tools only (all of
    # a server's tools when ``mcpServers`` names that server).
    mcp_tools: tuple[str, ...] = ()
    # ``runtime: command``: an external program (``command``) plays the member, through
    # accord's MCP server, instead of accord's loop and a model.
    runtime: str = "model"
    command: str | None = None
    # ``routes:``: routing rules (``[[routing.rules]]``'s keys) this definition adds; a
    # rule without ``to`` or ``role`` routes to the member the definition plays.
    routes: tuple[dict[str, Any], ...] = ()
    # ``skills:``: the skills the member may use (None: every skill there is).
    skills: tuple[str, ...] | None = None

    def unsupported(self) -> str | None:
        """One line naming the tools and fields of this definition that accord ignores,
        or None when it supports all of it."""
        parts = []
        if self.ignored_tools:
            parts.append("tools " + ", ".join(self.ignored_tools))
        if self.extra:
            parts.append("fields " + ", ".join(sorted(self.extra)))
        if not parts:
            return None
        where = f" ({self.source})" if self.source else ""
        return (
            f"agent definition {self.name!r}{where}: accord does not support "
            f"{' and '.join(parts)}; they are ignored"
        )


DEFAULT = AgentDefinition(
    name="teammate",
    description="A general-purpose teammate.",
    prompt=(
        "You are a careful software engineer working as part of a team. Claim a task, do it "
        "completely, check your work (run the tests), and complete the task with a short "
        "result saying what you did and where. Tell teammates what they need to know with "
        "send_message; your plain text is not seen by anyone."
    ),
)


def parse_definition(text: str, source: str, fallback_name: str | None = None) -> AgentDefinition:
    """Parse one definition file's text; errors name the file."""
    m = _FRONT.match(text)
    if m is None:
        front: dict[str, Any] = {}
        body = text
    else:
        import yaml  # here: a member without a definition file never needs it

        try:
            loaded = yaml.safe_load(m.group(1) or "")
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 2}" if mark is not None else ""
            raise ConfigError(f"{source}{where}: the front matter is not valid YAML") from e
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: the front matter must be `key: value` lines")
        front, body = loaded, m.group(2)
    name = str(front.get("name") or fallback_name or "")
    try:
        check_name(name, "agent definition name")
    except UserError as e:
        raise ConfigError(f"{source}: {e}") from e
    tools, ignored = _tools(front.get("tools"), source)
    # MCP tools (mcp__SERVER__TOOL, mcp__SERVER__*, mcp__SERVER) name servers to start.
    mcp_tools = tuple(n for n in ignored if n.startswith("mcp__"))
    ignored = tuple(n for n in ignored if not n.startswith("mcp__"))
    _check_mcp_names(mcp_tools, source, "tools")
    patterns, plain = _patterns(front.get("disallowedTools"), source, "disallowedTools")
    asks, _ = _patterns(front.get("ask"), source, "ask", every=True)
    denied, denied_unknown = _tools(plain, source, "disallowedTools")
    # A disallowed MCP tool is a deny rule: the server may still start for its other tools.
    mcp_denied = tuple(n for n in denied_unknown if n.startswith("mcp__"))
    _check_mcp_names(mcp_denied, source, "disallowedTools")
    denied_unknown = tuple(n for n in denied_unknown if not n.startswith("mcp__"))
    patterns += tuple(n for n in mcp_denied if n not in patterns)
    if denied:
        # A tool the user took away stays away, whatever the allowlist says.
        from accord.agent.tools import all_tools

        everything = tuple(t.name for t in all_tools()) if tools is None else tools
        tools = tuple(t for t in everything if t not in denied)
    ignored += tuple(n for n in denied_unknown if n not in ignored)
    servers, inline = _mcp_servers(front.get("mcpServers"), source)
    runtime, command = _runtime(front, source)
    model = front.get("model")
    inherits = model is not None and str(model) == "inherit"
    if model is not None:
        model = str(model)
        model = None if inherits else MODEL_ALIASES.get(model, model)
        if model and ":" not in model:
            # A bare id as Claude Code accepts it: claude-* is Anthropic's, gpt-*/o* OpenAI's.
            if model.startswith("claude-"):
                model = f"anthropic:{model}"
            elif model.startswith(("gpt-", "o1", "o3", "o4")):
                model = f"openai:{model}"
    return AgentDefinition(
        name=name,
        description=str(front.get("description") or ""),
        prompt=body.strip(),
        tools=tools,
        model=model,
        inherits_model=inherits,
        self_claim=_bool(front.get("self_claim", True), "self_claim", source),
        max_turns=_int(front.get("max_turns", 200), "max_turns", source),
        plan_required=_bool(front.get("plan_required", False), "plan_required", source),
        network=_bool(front.get("network", False), "network", source),
        source=source,
        ignored_tools=ignored,
        extra={k: v for k, v in front.items() if k not in _KNOWN_KEYS},
        deny_rules=patterns,
        ask_rules=asks,
        mcp_servers=servers,
        mcp_inline=inline,
        mcp_tools=mcp_tools,
        runtime=runtime,
        command=command,
        routes=_routes(front.get("routes"), source),
        skills=_skills(front.get("skills"), source),
    )


def _skills(value: Any, source: str) -> tuple[str, ...] | None:
    """``skills:`` as a list of skill names (or one comma-separated string)."""
    if value is None:
        return None
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value]
    else:
        raise ConfigError(f"{source}: skills must be a list of skill names")
    from accord.types import check_skill_name

    for n in names:
        try:
            check_skill_name(n)
        except UserError as e:
            raise ConfigError(f"{source}: skills: {e}") from e
    return tuple(dict.fromkeys(names))


def _routes(value: Any, source: str) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ConfigError(f"{source}: `routes` must be a list of rules, like `- keyword: deploy`")
    return tuple(dict(r) for r in value)


def _mcp_servers(value: Any, source: str) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """``mcpServers`` as Claude Code writes it: a list of server names, or of one-key
    mappings ``{name: {command, args, env} | {url}}`` defining a server here, or one such
    mapping whole."""
    if value is None:
        return (), {}
    items: list[Any] = list(value.items()) if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise ConfigError(f"{source}: mcpServers must be a list of server names or definitions")
    names: list[str] = []
    inline: dict[str, dict[str, Any]] = {}
    for item in items:
        pairs = [item] if isinstance(item, tuple) else None
        if isinstance(item, str):
            names.append(item)
            continue
        if isinstance(item, dict):
            pairs = list(item.items())
        if not pairs or not all(isinstance(k, str) and isinstance(v, dict) for k, v in pairs):
            raise ConfigError(
                f"{source}: mcpServers entries are server names or {{name: {{command: ...}}}}"
            )
        for key, spec in pairs:
            names.append(key)
            inline[key] = dict(spec)
    return tuple(dict.fromkeys(names)), inline


def _check_mcp_names(names: tuple[str, ...], source: str, key: str) -> None:
    from accord.permissions import rule_problem

    for n in names:
        problem = rule_problem(n)
        if problem is not None:
            raise ConfigError(f"{source}: {key} entry {n!r}: {problem}")


def _runtime(front: dict[str, Any], source: str) -> tuple[str, str | None]:
    runtime = str(front.get("runtime", "model"))
    command = front.get("command")
    if runtime not in ("model", "command"):
        raise ConfigError(f"{source}: runtime must be model or command, not {runtime!r}")
    if command is not None and not isinstance(command, str | list):
        raise ConfigError(f"{source}: command must be a command line (a string)")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    if runtime == "command" and not (command or "").strip():
        raise ConfigError(f"{source}: runtime: command needs a command line in `command`")
    return runtime, command


def _patterns(
    value: Any, source: str, key: str, *, every: bool = False
) -> tuple[tuple[str, ...], Any]:
    """The permission rules among ``value`` (entries with a specifier; with ``every``,
    all of them), checked, and the rest as given."""
    if value is None:
        return (), None
    if isinstance(value, str):
        # "Bash(a, b)" must not split inside its parentheses.
        items = [v.strip() for v in re.split(r",(?![^(]*\))", value) if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise ConfigError(f"{source}: {key} must be a comma-separated string or a list of names")
    from accord.permissions import rule_problem

    rules = [v for v in items if every or "(" in v]
    for rule in rules:
        problem = rule_problem(rule)
        if problem is not None:
            raise ConfigError(f"{source}: {key} rule {rule!r}: {problem}")
    rest = [v for v in items if v not in rules]
    return tuple(rules), (rest if rest else None)


def _tools(
    value: Any, source: str, key: str = "tools"
) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    if value is None:
        return None, ()
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value]
    else:
        raise ConfigError(f"{source}: {key} must be a comma-separated string or a list of names")
    from accord.agent.tools import all_tools

    ours = {t.name for t in all_tools()}
    kept: list[str] = []
    ignored: list[str] = []
    for n in names:
        mapped = CLAUDE_TOOL_NAMES.get(n, n)
        if mapped in ours:
            if mapped not in kept:
                kept.append(mapped)
        else:
            ignored.append(n)
    return tuple(kept), tuple(ignored)


def _bool(value: Any, key: str, source: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{source}: {key} must be true or false")


def _int(value: Any, key: str, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ConfigError(f"{source}: {key} must be a whole number above 0")


def load_definitions(
    root: Path, errors: list[ConfigError] | None = None
) -> dict[str, AgentDefinition]:
    """Every definition under ``root``, accord's own folder winning over .claude's.

    A file that does not parse is skipped (and added to ``errors`` when given), so
    one broken subagent file never hides the others.
    """
    found: dict[str, AgentDefinition] = {}
    for folder in reversed(SEARCH_DIRS):
        directory = root / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.md")):
            try:
                d = parse_definition(path.read_text(encoding="utf-8"), str(path), path.stem)
            except (ConfigError, OSError, UnicodeDecodeError) as e:
                if errors is not None:
                    errors.append(e if isinstance(e, ConfigError) else ConfigError(f"{path}: {e}"))
                continue
            found[d.name] = d
    return found


_warned: set[tuple[str, str | None]] = set()


def first_warning(definition: AgentDefinition) -> str | None:
    """``definition.unsupported()`` the first time this process asks about it, else None,
    so a member warns once however often it rebuilds its definition."""
    key = (definition.name, definition.source)
    if key in _warned:
        return None
    _warned.add(key)
    return definition.unsupported()


def find_definition(root: Path, name: str | None) -> AgentDefinition:
    """The named definition, or the built-in default teammate when ``name`` is None."""
    if name is None:
        return DEFAULT
    check_name(name, "agent definition name")
    errors: list[ConfigError] = []
    found = load_definitions(root, errors)
    if name in found:
        return found[name]
    for folder in SEARCH_DIRS:
        if (root / folder / f"{name}.md").is_file():
            for e in errors:
                if f"{folder}/{name}.md" in str(e):
                    raise e
    known = ", ".join(sorted(found)) or "none"
    raise UserError(
        f"no agent definition named {name!r} in .accord/agents/ or .claude/agents/ "
        f"(found: {known}); add {name}.md there"
    )


def routes_by_definition(root: Path) -> dict[str, Sequence[dict[str, Any]]]:
    """The ``routes:`` of every definition under ``root`` that has some, by its name
    (what ``Team.routing`` takes); a definition that does not parse adds none."""
    return {d.name: d.routes for d in load_definitions(root).values() if d.routes}
