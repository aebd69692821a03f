"""Permission rules: allow, ask and deny rules for tools, in Claude Code's syntax.

A rule is ``Tool`` (every use of the tool) or ``Tool(specifier)``. Claude Code's
tool names map to accord's (``RULE_TOOLS``): ``Bash`` is ``bash``; ``Read`` covers
every tool that reads files (``read_file``, ``glob``, ``grep``, ``list_files``);
``Edit`` every tool that changes them (``edit_file`` and ``write_file``), as in
Claude Code; ``Write`` is ``write_file``; ``Glob``, ``Grep`` and ``LS`` are one
tool each. accord's own tool names (``task_complete``, ``send_message``...) work
too. MCP tools are named as Claude Code names them: ``mcp__github__create_issue`` is
that tool, ``mcp__github`` and ``mcp__github__*`` every tool of server ``github``
(they take no specifier). Claude Code tools accord does not have (``WebFetch``...)
are accepted, so a ``.claude/settings.json`` written for Claude Code reads
unchanged, and match nothing. Any other name is an error naming the rule and its
file.

Specifiers:

- ``bash``: ``Bash(npm test)`` is that command exactly; ``Bash(npm run test:*)`` is the
  prefix ``npm run test`` at a word boundary; ``*`` anywhere is any text
  (``Bash(git * main)``), and a single trailing `` *`` may also match nothing
  (``Bash(ls *)`` matches ``ls``). A compound command (``a && b``, ``a; b``, ``a | b``,
  ``$(a)``, ```a```) is split shell-aware into its simple commands: it is denied
  (or asked) if ANY part matches a deny (or ask) rule, and allowed by rule only if
  EVERY part matches an allow rule. A command that cannot be split with certainty
  (an unclosed quote or substitution) is never allowed by rule. Leading variable
  assignments (``FOO=1 git push``) are looked through by deny and ask rules, never
  by allow rules.
- path tools: a gitignore-style pattern (``**`` spans folders, ``*`` and ``?`` stay
  in one name, a pattern without ``/`` matches at any depth, a folder matched means
  everything under it, and ``dir/**`` matches ``dir`` itself too, so listing or
  searching the folder is covered) anchored as Claude Code anchors it: ``//path`` from the
  filesystem root, ``~/path`` from the home folder, ``/path`` from the project root
  (for a member in a worktree, its worktree too), ``path`` or ``./path`` from the
  member's workspace. It is matched against the path the tool would touch, made
  real (symlinks followed, ``..`` collapsed); a path outside the pattern's anchor
  does not match. Deny and ask rules also match the path as written (``..``
  collapsed, symlinks not followed), so a symlink cannot lead around them.

Order: deny beats ask beats allow, whatever the order or specificity of the rules.
No rule matches: the call is allowed, as accord always did (``Verdict.rule`` None).

This module is at the config layer: it imports nothing above accord.errors.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from accord.claude import claude_settings
from accord.errors import ConfigError
from accord.globs import glob_regex


class Decision(StrEnum):
    """What a rule says of the calls it matches."""

    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


# Claude Code's tool names and the accord tools each one's rules cover.
RULE_TOOLS: dict[str, frozenset[str]] = {
    "Bash": frozenset({"bash"}),
    "Read": frozenset({"read_file", "glob", "grep", "list_files"}),
    "Edit": frozenset({"edit_file", "write_file"}),
    "MultiEdit": frozenset({"edit_file", "write_file"}),
    "Write": frozenset({"write_file"}),
    "Glob": frozenset({"glob"}),
    "Grep": frozenset({"grep"}),
    "LS": frozenset({"list_files"}),
}
# Claude Code tools accord has no counterpart of: a rule naming one matches nothing.
CLAUDE_ONLY = frozenset(
    {
        "WebFetch",
        "WebSearch",
        "NotebookEdit",
        "NotebookRead",
        "Task",
        "Agent",
        "TodoWrite",
        "TodoRead",
        "BashOutput",
        "KillShell",
        "KillBash",
        "SlashCommand",
        "Skill",
        "ExitPlanMode",
        "PowerShell",
    }
)
# accord's own tools, by name (tests/test_permissions.py holds this to the toolbox).
ACCORD_TOOLS = frozenset(
    {
        # files and shell
        "read_file",
        "write_file",
        "edit_file",
        "list_files",
        "glob",
        "grep",
        "bash",
        # the board and mail
        "task_list",
        "task_get",
        "task_create",
        "task_update",
        "task_claim",
        "task_complete",
        "task_fail",
        "send_message",
        "list_members",
        "send_plan",
        # channels
        "channel_create",
        "channel_join",
        "channel_leave",
        "channel_post",
        "channel_read",
        # deliberations
        "position_submit",
        "positions_read",
        "exchange_reply",
        "agree",
        "synthesis_submit",
        "deliberate",
        "route_assign",
        "route_release",
        "answer_judge",
        # skills
        "use_skill",
        "write_skill",
        "revise_skill",
        "skill_review",
        # memory
        "remember",
        "recall",
        "forget",
        "write_continuity",
        # the lead
        "spawn_teammate",
        "request_shutdown",
        "approve_plan",
        "team_digest",
        "finish",
        "answer_permission",
        # other parts of issue 12
        "sync",
        "claim_files",
        "release_files",
    }
)
PATH_TOOLS = frozenset({"read_file", "write_file", "edit_file", "list_files", "glob", "grep"})
COMMAND_TOOLS = frozenset({"bash"})

_RULE = re.compile(r"\A([A-Za-z_][A-Za-z0-9_]*|mcp__[A-Za-z0-9_-]+\*?)(?:\((.*)\))?\Z", re.S)


def mcp_rule_covers(name: str, tool: str) -> bool:
    """Whether a rule naming ``name`` (``mcp__s__t``, ``mcp__s__*``, ``mcp__s``) covers the
    MCP tool ``tool`` (``mcp__s__t``), as Claude Code matches them."""
    if not tool.startswith("mcp__"):
        return False
    if name.endswith("*"):
        return tool.startswith(name[:-1])
    if name.count("__") == 1:  # mcp__server: every tool of the server
        return tool.startswith(name + "__")
    return tool == name


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as written, where it came from, and what it decides."""

    decision: Decision
    text: str
    tool: str  # as written: Claude Code's name or accord's
    specifier: str | None  # None: every use of the tool
    source: str  # ".claude/settings.json", "accord.toml", "agent definition NAME"
    tools: frozenset[str]  # the accord tools it covers (empty: a Claude Code-only tool)

    def covers(self, tool: str) -> bool:
        """Whether the rule judges calls of ``tool`` (an accord tool or an MCP tool)."""
        return tool in self.tools or (
            self.tool.startswith("mcp__") and mcp_rule_covers(self.tool, tool)
        )

    def __str__(self) -> str:
        return f"{self.text} from {self.source}"


def parse_rule(text: Any, decision: Decision | str, source: str) -> Rule:
    """One rule; ConfigError naming the rule and ``source`` when it is malformed."""
    decision = Decision(decision)
    if not isinstance(text, str):
        raise ConfigError(
            f"{source}: {decision.value} rule {text!r} is not a string; write rules as "
            '"Tool" or "Tool(specifier)"'
        )
    problem = rule_problem(text)
    if problem is not None:
        raise ConfigError(f"{source}: {decision.value} rule {text!r}: {problem}")
    m = _RULE.match(text.strip())
    assert m is not None
    name, spec = m.group(1), m.group(2)
    if spec is not None and spec.strip() in ("", "*"):
        spec = None  # Claude Code reads Tool(*) as Tool
    covered = RULE_TOOLS.get(name) or (frozenset({name}) if name in ACCORD_TOOLS else frozenset())
    return Rule(decision, text.strip(), name, spec, source, covered)


def rule_problem(text: str) -> str | None:
    """What is wrong with one rule's text (None: nothing), with how to fix it."""
    m = _RULE.match(text.strip())
    if m is None:
        return 'write "Tool" or "Tool(specifier)", e.g. "Bash(npm test:*)" or "Edit(src/**)"'
    name, spec = m.group(1), m.group(2)
    known = name in RULE_TOOLS or name in ACCORD_TOOLS or name in CLAUDE_ONLY
    if name.startswith("mcp__"):
        if name.endswith("*") and not name.endswith("__*"):
            return 'an MCP rule is "mcp__server", "mcp__server__*" or "mcp__server__tool"'
        if spec is not None and spec.strip() not in ("", "*"):
            return f"MCP tool rules take no specifier; write just {name!r}"
        return None
    if not known:
        return (
            f"unknown tool {name!r}; use a Claude Code tool name ({', '.join(RULE_TOOLS)}) "
            "or an accord tool name (bash, read_file, task_complete, ...)"
        )
    if spec is None or spec.strip() in ("", "*"):
        return None
    covered = RULE_TOOLS.get(name) or frozenset({name})
    if name in ACCORD_TOOLS and not covered <= PATH_TOOLS | COMMAND_TOOLS:
        return f"{name} takes no specifier; write just {name!r}"
    if covered <= COMMAND_TOOLS:
        star = spec.find(":*")
        if star != -1 and star != len(spec) - 2:
            return 'the prefix form ":*" goes only at the end, as in "Bash(npm run test:*)"'
    if covered <= PATH_TOOLS and "\x00" in spec:
        return "a path pattern cannot hold a NUL byte"
    return None


# bash commands ---------------------------------------------------------------

_OPERATORS = ("&&", "||", "|&", ";;", ";", "|", "&", "\n")
_ASSIGNMENT = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*=")


def _closing(s: str, i: int) -> int | None:
    """The index of the ``)`` closing a substitution whose body starts at ``i``."""
    depth, quote = 1, None
    while i < len(s):
        c = s[i]
        if quote == "'":
            quote = None if c == "'" else quote
        elif c == "\\":
            i += 1
        elif quote == '"':
            quote = None if c == '"' else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def split_command(command: str) -> tuple[list[str], bool]:
    """The simple commands of a shell command line, and whether the split is certain.

    Splits on ``&&``, ``||``, ``;``, ``|``, ``&`` and newlines outside quotes; the
    bodies of ``$(...)``, backticks and ``<(...)``/``>(...)`` are commands too (also
    inside double quotes, where the shell runs them); parentheses and braces of
    groups are dropped. Each command comes back with its words joined by single
    spaces (quotes removed). Unclosed quotes or substitutions make it uncertain.
    """
    parts: list[str] = []
    sure = True
    current: list[str] = []

    def flush() -> None:
        nonlocal sure
        text = "".join(current).strip()
        current.clear()
        if not text:
            return
        try:
            words = shlex.split(text, comments=False, posix=True)
        except ValueError:
            sure = False
            words = text.split()
        while words and words[0] in ("(", "{", "!"):
            words = words[1:]
        while words and words[-1] in (")", "}"):
            words = words[:-1]
        if words:
            parts.append(" ".join(words))

    def sub(body: str, closed: bool) -> None:
        nonlocal sure
        inner, ok = split_command(body)
        parts.extend(inner)
        sure = sure and ok and closed
        current.append("_")  # the substitution's output stands in the outer command

    i, n, quote = 0, len(command), None
    while i < n:
        c = command[i]
        if quote == "'":
            current.append(c)
            quote = None if c == "'" else quote
            i += 1
            continue
        if c == "\\":
            current.append(command[i : i + 2])
            i += 2
            continue
        if command.startswith("$(", i) or (
            quote is None and c in "<>" and command.startswith("(", i + 1)
        ):
            end = _closing(command, i + 2)
            sub(command[i + 2 : n if end is None else end], end is not None)
            i = n if end is None else end + 1
            continue
        if c == "`":
            end = command.find("`", i + 1)
            sub(command[i + 1 : n if end == -1 else end], end != -1)
            i = n if end == -1 else end + 1
            continue
        if quote == '"':
            current.append(c)
            quote = None if c == '"' else quote
            i += 1
            continue
        if c in "'\"":
            quote = c
            current.append(c)
            i += 1
            continue
        if c == "&" and (
            (current and current[-1] in "<>") or command.startswith(">", i + 1)
        ):  # a redirection (2>&1, &>file), not a separator
            current.append(c)
            i += 1
            continue
        op = next((o for o in _OPERATORS if command.startswith(o, i)), None)
        if op is not None:
            flush()
            i += len(op)
            continue
        if c in "()":
            flush()
            i += 1
            continue
        if c == "#" and (not current or current[-1].isspace()):
            end = command.find("\n", i)
            i = n if end == -1 else end  # a comment runs to the end of its line
            continue
        current.append(c)
        i += 1
    if quote is not None:
        sure = False
    flush()
    return parts, sure


_SPACED = re.compile(r"\s*(\|\||&&|\||;)\s*")


@functools.lru_cache(maxsize=512)
def _command_regex(spec: str) -> re.Pattern[str]:
    pieces = [re.escape(p) for p in spec.split("*")]
    body = ".*".join(pieces)
    if spec.endswith(" *") and spec.count("*") == 1:
        body = re.escape(spec[:-2]) + "(?: .*)?"  # `ls *` matches `ls` too
    return re.compile(body, re.S)


def command_matches(spec: str, command: str) -> bool:
    """Whether one simple command (words joined by spaces) matches a Bash specifier."""
    spec = " ".join(spec.split())
    if spec.endswith(":*"):
        prefix = spec[:-2].rstrip()
        return command == prefix or command.startswith(prefix + " ")
    if "*" in spec:
        return _command_regex(spec).fullmatch(command) is not None
    return command == spec


def _pipeline_within(spec: str, whole: str) -> bool:
    """Whether a specifier naming operators (`curl * | sh`) occurs anywhere in the whole
    command (`cd x && curl y | sh`): a deny written for a pipeline must not be dodged by
    putting something before it."""
    spec = " ".join(_SPACED.sub(r" \1 ", spec).split())
    if _SPACED.search(spec) is None or spec.endswith(":*"):
        return False
    return _command_regex(spec).search(whole) is not None


def _without_assignments(command: str) -> str:
    words = command.split(" ")
    while words and _ASSIGNMENT.match(words[0]):
        words = words[1:]
    return " ".join(words)


# paths ---------------------------------------------------------------------


def pattern_matches(pattern: str, relative: str) -> bool:
    """Whether a '/'-separated path relative to the pattern's anchor matches
    (gitignore-style: the path, or a folder above it, matches the pattern)."""
    pattern = pattern.strip().rstrip("/")
    if not pattern:
        return False
    anywhere = "/" not in pattern
    if pattern.endswith("/**"):
        # The folder itself too: listing or searching it reads what the pattern covers.
        pattern = pattern[:-3] or "**"
    regex = glob_regex(pattern)
    names = relative.split("/")
    for k in range(1, len(names) + 1):
        prefix = "/".join(names[:k])
        if regex.fullmatch(prefix):
            return True
        if anywhere and regex.fullmatch(names[k - 1]):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Anchors:
    """Where a member's path patterns start: ``workspace`` for ``path``, ``roots`` for
    ``/path`` (the project root, and the member's worktree when it has one), ``home``
    for ``~/path``."""

    workspace: Path
    roots: tuple[Path, ...]
    home: Path

    @classmethod
    def of(cls, workspace: Path, project_root: Path | None = None) -> Anchors:
        roots = [workspace.resolve()]
        if project_root is not None and project_root.resolve() not in roots:
            roots.insert(0, project_root.resolve())
        return cls(workspace.resolve(), tuple(roots), Path(os.path.expanduser("~")).resolve())


def _bases(spec: str, anchors: Anchors) -> tuple[list[Path], str]:
    if spec.startswith("//"):
        return [Path("/")], spec[2:]
    if spec == "~" or spec.startswith("~/"):
        return [anchors.home], spec[2:] or "**"
    if spec.startswith("/"):
        return list(anchors.roots), spec[1:]
    return [anchors.workspace], spec.removeprefix("./")


def path_matches(spec: str, target: Path, anchors: Anchors) -> bool:
    """Whether an absolute path matches a path rule's specifier."""
    bases, pattern = _bases(spec, anchors)
    for base in bases:
        if target == base:
            continue
        if target.is_relative_to(base):
            if pattern_matches(pattern, target.relative_to(base).as_posix()):
                return True
    return False


@dataclass(frozen=True, slots=True)
class Target:
    """What a rule is matched against: a tool call's command or path."""

    command: str | None = None
    real: Path | None = None  # the path made real (symlinks followed)
    written: Path | None = None  # the path as written, ``..`` collapsed

    @classmethod
    def path(cls, given: str, workspace: Path) -> Target:
        """The path a file tool would touch for ``given``, relative to ``workspace``."""
        p = Path(os.path.expanduser(given)) if given.startswith("~") else Path(given)
        joined = p if p.is_absolute() else workspace / p
        written = Path(os.path.normpath(joined))
        try:
            real = joined.resolve()
        except (RuntimeError, OSError):  # a symlink loop: judge by what was written
            real = written
        return cls(real=real, written=written)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A call's fate: the decision and the rule(s) that made it. ``rules`` empty: no
    rule matched, and the call is allowed (``decision`` ALLOW)."""

    decision: Decision
    rules: tuple[Rule, ...] = ()

    @property
    def rule(self) -> Rule | None:
        return self.rules[0] if self.rules else None

    def named(self) -> str:
        """The deciding rules, as a tool result names them."""
        return "; ".join(str(r) for r in self.rules)


@dataclass(frozen=True)
class Rules:
    """A member's rules, from every source, in the order deny, ask, allow."""

    rules: tuple[Rule, ...] = ()
    anchors: Anchors | None = None
    _by_tool: dict[str, tuple[Rule, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def for_tool(self, tool: str) -> tuple[Rule, ...]:
        found = self._by_tool.get(tool)
        if found is None:
            found = tuple(r for r in self.rules if r.covers(tool))
            self._by_tool[tool] = found
        return found

    def with_anchors(self, anchors: Anchors) -> Rules:
        return Rules(self.rules, anchors)

    def decide(self, tool: str, target: Target | None) -> Verdict:
        """The verdict on one call of ``tool`` (``target`` None: no command or path)."""
        rules = self.for_tool(tool)
        if not rules:
            return Verdict(Decision.ALLOW)
        if tool in COMMAND_TOOLS and target is not None and target.command is not None:
            return self._command(rules, target.command)
        for decision in (Decision.DENY, Decision.ASK, Decision.ALLOW):
            for rule in rules:
                if rule.decision == decision and self._matches(rule, tool, target, decision):
                    return Verdict(decision, (rule,))
        return Verdict(Decision.ALLOW)

    def _matches(self, rule: Rule, tool: str, target: Target | None, decision: Decision) -> bool:
        if rule.specifier is None:
            return True
        if target is None or tool not in PATH_TOOLS or target.real is None:
            return False
        anchors = self.anchors or Anchors.of(Path.cwd())
        if path_matches(rule.specifier, target.real, anchors):
            return True
        # Deny and ask also judge the path as written: a symlink must not lead around them.
        return (
            decision != Decision.ALLOW
            and target.written is not None
            and path_matches(rule.specifier, target.written, anchors)
        )

    def _command(self, rules: Sequence[Rule], command: str) -> Verdict:
        parts, sure = split_command(command)
        if not parts:
            parts = [" ".join(command.split())]
        # A deny or ask may name a whole pipeline (`Bash(curl * | sh)`): it is matched
        # against the whole command, operators spaced, as well as against each part.
        whole = " ".join(_SPACED.sub(r" \1 ", command).split())
        for decision in (Decision.DENY, Decision.ASK):
            for rule in rules:
                if rule.decision != decision:
                    continue
                if (
                    rule.specifier is None
                    or any(
                        command_matches(rule.specifier, p)
                        or command_matches(rule.specifier, _without_assignments(p))
                        for p in [*parts, whole]
                    )
                    or _pipeline_within(rule.specifier, whole)
                ):
                    return Verdict(decision, (rule,))
        allows = [r for r in rules if r.decision == Decision.ALLOW]
        if not allows or not sure:
            return Verdict(Decision.ALLOW)
        used: list[Rule] = []
        for p in parts:
            allowing = next(
                (r for r in allows if r.specifier is None or command_matches(r.specifier, p)),
                None,
            )
            if allowing is None:
                return Verdict(Decision.ALLOW)  # not every part is allowed: no rule decides
            if allowing not in used:
                used.append(allowing)
        return Verdict(Decision.ALLOW, tuple(used))


# where rules come from -------------------------------------------------------


def rules_from(entries: dict[str, Iterable[Any]] | Any, source: str) -> list[Rule]:
    """The rules of one ``permissions`` block ({"allow": [...], "ask": [...], "deny": [...]});
    other keys (Claude Code's defaultMode, additionalDirectories...) are ignored."""
    if not isinstance(entries, dict):
        raise ConfigError(f"{source}: permissions must be an object with allow, ask and deny lists")
    out: list[Rule] = []
    for decision in Decision:
        listed = entries.get(decision.value, [])
        if listed is None:
            continue
        if not isinstance(listed, list):
            raise ConfigError(f"{source}: permissions.{decision.value} must be a list of rules")
        out += [parse_rule(text, decision, source) for text in listed]
    return out


def claude_rules(root: Path) -> list[Rule]:
    """The rules of ``.claude/settings.json`` and ``.claude/settings.local.json`` under
    ``root``; ConfigError naming the file when one is unreadable or malformed."""
    out: list[Rule] = []
    for name, _path, settings in claude_settings(root):
        block = settings.get("permissions") if isinstance(settings, dict) else None
        if block is not None:
            out += rules_from(block, name)
    return out


def gather(
    root: Path,
    config_rules: dict[str, Iterable[str]] | None = None,
    *,
    definition: str | None = None,
    definition_deny: Iterable[str] = (),
    definition_ask: Iterable[str] = (),
) -> Rules:
    """Every rule for a member: Claude Code's settings files, accord.toml's
    ``[permissions]``, then its agent definition's deny and ask rules (a definition
    only narrows: it adds denies and asks, never allows)."""
    rules = claude_rules(root)
    if config_rules is not None:
        rules += rules_from(dict(config_rules), "accord.toml")
    where = f"agent definition {definition}" if definition else "the agent definition"
    rules += [parse_rule(t, Decision.DENY, where) for t in definition_deny]
    rules += [parse_rule(t, Decision.ASK, where) for t in definition_ask]
    return Rules(tuple(rules))
