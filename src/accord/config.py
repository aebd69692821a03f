"""accord.toml: the committable definition of a project's teams, store, board and hooks.

The file is read with ``tomllib`` and validated with pydantic; unknown keys are
errors (a typo must not silently turn a setting off), and every error names the
line it comes from. The project is found like git finds ``.git``: walk up from
the working directory to the first folder holding ``.accord/`` or ``accord.toml``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from accord import credentials

# The names and the walk up to a project live with the read path that needs no pydantic.
from accord._where import CONFIG_NAME as CONFIG_NAME
from accord._where import STATE_DIR as STATE_DIR
from accord._where import STORE_NAME as STORE_NAME
from accord._where import absolute
from accord._where import find_root as find_root
from accord.errors import ConfigError, InvalidName, StoreNotFound, UserError
from accord.types import HookEvent, check_name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    path: str | None = None
    synchronous: Literal["full", "normal"] = "full"
    busy_timeout: Annotated[float, Field(gt=0, le=600)] = 5.0


class MemberSpec(_Strict):
    name: str
    agent: str | None = None
    model: str | None = None

    @field_validator("name", "agent")
    @classmethod
    def _names(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v, "name")


class TeamConfig(_Strict):
    default: str | None = None
    members: list[MemberSpec] = []
    # "worktree": each member works in a git worktree of its own and completions reach
    # the team's integration branch through the merge gate; "shared": every member works
    # in the project folder. Unset: worktree in a git repository, else shared.
    isolation: Literal["worktree", "shared"] | None = None

    @field_validator("default")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        try:
            return None if v is None else check_name(v, "team name")
        except InvalidName as e:
            raise ValueError(str(e)) from None  # so the error names the line like the rest


class BoardConfig(_Strict):
    lease_seconds: Annotated[float, Field(gt=0, le=86400)] = 300.0
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 3


class MailboxConfig(_Strict):
    visibility_timeout: Annotated[float, Field(gt=0, le=86400)] = 60.0
    # A waiting member is woken by a ring; it also looks at the store itself this often,
    # so a lost ring makes mail late by this much at most (never lost).
    recheck: Annotated[float, Field(ge=0.01, le=3600)] = 5.0


class HookCommand(_Strict):
    command: str | list[str]
    timeout: Annotated[float, Field(gt=0, le=86400)] | None = None
    on_timeout: Literal["block", "allow"] = "block"
    # A hook that cannot run (not executable, program missing): block the action or
    # only warn. Unset: the section's setting, else block for TaskCompleted only.
    on_broken: Literal["block", "warn"] | None = None

    @field_validator("command")
    @classmethod
    def _not_empty(cls, v: str | list[str]) -> str | list[str]:
        if not v or (isinstance(v, list) and not all(isinstance(a, str) and a for a in v)):
            raise ValueError("a hook command must be a non-empty string or list of strings")
        return v


def _hook_list(value: Any) -> Any:
    # Accept `TaskCompleted = "cmd"`, `= ["cmd", "cmd2"]`, or `[[hooks.TaskCompleted]]` tables.
    if isinstance(value, str):
        return [{"command": value}]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [{"command": v} if isinstance(v, str) else v for v in value]
    return value


class HooksConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    timeout: Annotated[float, Field(gt=0, le=86400)] = 120.0
    on_broken: Literal["block", "warn"] | None = None
    output_limit: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    TaskCreated: list[HookCommand] = []
    TaskCompleted: list[HookCommand] = []
    TeammateIdle: list[HookCommand] = []

    @field_validator("TaskCreated", "TaskCompleted", "TeammateIdle", mode="before")
    @classmethod
    def _normalise(cls, v: Any) -> Any:
        return _hook_list(v)

    def commands(self, event: HookEvent) -> list[HookCommand]:
        hooks: list[HookCommand] = getattr(self, event.value)
        return hooks


class SecretsConfig(_Strict):
    # Variables that never reach tool commands or hooks, besides the known keys.
    variables: list[str] = []


class SandboxConfig(_Strict):
    # Teammates' commands and hooks run only inside the sandbox: where bubblewrap is
    # missing or refused, they are refused (true) or run unsandboxed after one warning
    # (false). The person's own commands are never refused for it.
    required: bool = True
    # Commands in the sandbox reach the network (an agent definition may also allow it).
    network: bool = False
    # More paths the sandbox hides (made empty), and more it lets commands write.
    hide: list[str] = []
    writable: list[str] = []


class PermissionsConfig(_Strict):
    # Rules in Claude Code's syntax ("Bash(git commit:*)", "Edit(src/**)", "Read(~/.ssh/**)"),
    # added to .claude/settings.json's; deny beats ask beats allow.
    allow: list[str] = []
    ask: list[str] = []
    deny: list[str] = []
    # Who answers an ask: the person (`accord permit ID` / `accord deny ID`) or the lead.
    ask_to: Literal["person", "lead"] = "person"
    # Seconds an ask waits for its answer; unanswered, it is a deny.
    ask_timeout: Annotated[float, Field(gt=0, le=86400)] = 600.0

    @field_validator("allow", "ask", "deny")
    @classmethod
    def _rules(cls, rules: list[str]) -> list[str]:
        # A malformed rule must not silently protect nothing: say which, and how to write it.
        from accord.permissions import rule_problem

        for rule in rules:
            problem = rule_problem(rule)
            if problem is not None:
                raise ValueError(f"rule {rule!r}: {problem}")
        return rules


class McpServerConfig(_Strict):
    """``[mcp.servers.NAME]``: one MCP server, with the keys of ``.mcp.json`` (a stdio
    server's ``command``, ``args``, ``env``; an HTTP server's ``type``, ``url``, ``headers``)."""

    type: Literal["stdio", "http", "sse"] | None = None
    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    url: str | None = None
    headers: dict[str, str] = {}

    @model_validator(mode="after")
    def _one_kind(self) -> McpServerConfig:
        if self.command is None and self.url is None:
            raise ValueError("an MCP server needs a command (stdio) or a url (http)")
        if self.command is not None and self.url is not None:
            raise ValueError("an MCP server has a command (stdio) or a url (http), not both")
        return self


class McpConfig(_Strict):
    # Seconds a server has to answer initialize, and each tool call; a server that
    # failed is tried again after retry_after seconds, not on every call.
    start_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    call_timeout: Annotated[float, Field(gt=0, le=86400)] = 120.0
    retry_after: Annotated[float, Field(ge=0, le=86400)] = 60.0
    servers: dict[str, McpServerConfig] = {}


class AgentConfig(_Strict):
    model: str | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] = 8192
    model_timeout: Annotated[float, Field(gt=0, le=3600)] = 600.0
    max_retries: Annotated[int, Field(ge=0, le=20)] = 4
    bash_timeout: Annotated[float, Field(gt=0, le=86400)] = 120.0
    heartbeat_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    base_urls: dict[str, str] = {}


class RunConfig(_Strict):
    max_restarts: Annotated[int, Field(ge=0, le=100)] = 3
    restart_backoff: Annotated[float, Field(gt=0, le=3600)] = 1.0
    grace: Annotated[float, Field(gt=0, le=3600)] = 20.0
    silent_after: Annotated[float, Field(gt=0, le=86400)] = 120.0
    supervisor_lease: Annotated[float, Field(ge=1, le=3600)] = 15.0
    slots: Annotated[int, Field(ge=1, le=10000)] | None = None
    # Start members by forking a process that imported them once (Linux): each still a
    # process of its own, sharing those pages; about half the memory per idle member.
    fork_members: bool = False


class InsightDecay(_Strict):
    half_life_days: Annotated[float, Field(gt=0)] = 180.0
    floor: Annotated[float, Field(ge=0, le=1)] = 0.6


class ObservationDecay(_Strict):
    half_life_days: Annotated[float, Field(gt=0)] = 30.0
    floor: Annotated[float, Field(ge=0, le=1)] = 0.3


class MemoryConfig(_Strict):
    # Decisions have no setting: an active one never fades, a superseded one is x0.1.
    insight: InsightDecay = InsightDecay()
    observation: ObservationDecay = ObservationDecay()
    similarity: Annotated[float, Field(gt=0, le=1)] = 0.8
    continuity_words: Annotated[int, Field(ge=20, le=2000)] = 400
    # An embedding model to blend with BM25 in recall: none, hashing (built in), or
    # minilm (a local model behind the embed extra).
    embeddings: Literal["none", "hashing", "minilm"] = "none"


class RoutingRule(_Strict):
    """One ``[[routing.rules]]`` entry (or one of an agent definition's ``routes:``).

    It matches a message when every condition it gives holds: ``match_role`` (the
    sender's agent definition, or ``lead``/``teammate``/``person``), ``tags`` (all given
    with the message), ``keyword`` (in the text, any case), ``pattern`` (a regular
    expression found in the text), ``channel`` (posted there). It names its owner: ``to``
    one member, or ``role`` the least busy member with that agent definition.
    """

    match_role: str | None = None
    tags: list[str] = []
    keyword: Annotated[str, Field(min_length=1)] | None = None
    pattern: str | None = None
    channel: str | None = None
    to: str | None = None
    role: str | None = None
    #: Among the members of ``role``: the least busy (the default), or the one whose
    #: history on the message's topics is best (see ``accord team patterns``).
    prefer: Literal["least_busy", "history"] | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"pattern {value!r} is not a regular expression: {e}") from e
        return value

    @model_validator(mode="after")
    def _one_owner(self) -> RoutingRule:
        if (self.to is None) == (self.role is None):
            raise ValueError("a routing rule names its owner with one of `to` or `role`")
        if self.prefer is not None and self.to is not None:
            raise ValueError("`prefer` orders the members of a `role`; a rule with `to` has one")
        return self


class RoutingConfig(_Strict):
    """``[routing]``: rules in file order (then agent definitions' ``routes:``, by member
    name; the first that matches wins), the fallback when none does, and the lease an
    owner holds a routed message under."""

    fallback: Literal["lead", "least_busy"] = "lead"
    #: How members of equal standing are ordered (a rule's ``role``, and the fallback's
    #: candidates): least busy first, or best history on the message's topics first.
    prefer: Literal["least_busy", "history"] = "least_busy"
    lease_seconds: Annotated[float, Field(gt=0, le=86400)] = 600.0
    rules: list[RoutingRule] = []


class LearningConfig(_Strict):
    """``[learning]``: lessons recorded when an attempt does not succeed and shown to the
    next one, and how the team's skills change."""

    enabled: bool = True
    #: Characters of lessons put into the context of a task's next attempt (its own
    #: lessons first, then those of similar tasks).
    lesson_chars: Annotated[int, Field(ge=0, le=100_000)] = 1500
    #: The model for a reflection call when the member that failed is gone
    #: (PROVIDER:MODEL; default: that member's own model). "none": no reflection call,
    #: the lesson is built from the evidence alone.
    reflection_model: str | None = None
    #: An unconfirmed lesson's strength halves every this many days since it was last
    #: noted; one at a quarter is no longer shown. A confirmed lesson does not fade.
    lesson_half_life_days: Annotated[float, Field(gt=0)] = 14.0
    #: Who approves a revision of a skill before it takes effect.
    skill_review: Literal["lead", "person", "none"] = "none"
    #: Characters a skill's body may have; longer is refused on writing and cut on reading.
    skill_chars: Annotated[int, Field(ge=200, le=1_000_000)] = 20_000


class Budget(_Strict):
    usd: Annotated[float, Field(ge=0)] | None = None
    tokens: Annotated[int, Field(ge=0)] | None = None


class BudgetsConfig(_Strict):
    team: Budget = Budget()
    member: Budget = Budget()
    members: dict[str, Budget] = {}

    def for_member(self, name: str) -> Budget:
        return self.members.get(name, self.member)


_PROVIDERS = ("anthropic", "openai", "scripted")  # as accord.llm.registry knows them


class PriceConfig(_Strict):
    input: Annotated[float, Field(ge=0)]
    output: Annotated[float, Field(ge=0)]
    cache_read: Annotated[float, Field(ge=0)] | None = None
    cache_write: Annotated[float, Field(ge=0)] | None = None


class ModelSettings(_Strict):
    """``[models."openai:qwen3"]``: what accord cannot know about a model by its name,
    such as the context window a local server was started with, or that it cannot
    stream its replies (``stream = false``: each call waits for the whole reply, and
    views show it once it is saved)."""

    context_window: Annotated[int, Field(ge=1024)] | None = None
    stream: bool = True


class Config(_Strict):
    """The validated contents of accord.toml (every section optional)."""

    team: TeamConfig = TeamConfig()
    store: StoreConfig = StoreConfig()
    board: BoardConfig = BoardConfig()
    mailbox: MailboxConfig = MailboxConfig()
    hooks: HooksConfig = HooksConfig()
    secrets: SecretsConfig = SecretsConfig()
    sandbox: SandboxConfig = SandboxConfig()
    permissions: PermissionsConfig = PermissionsConfig()
    agent: AgentConfig = AgentConfig()
    run: RunConfig = RunConfig()
    memory: MemoryConfig = MemoryConfig()
    budgets: BudgetsConfig = BudgetsConfig()
    mcp: McpConfig = McpConfig()
    routing: RoutingConfig = RoutingConfig()
    learning: LearningConfig = LearningConfig()
    prices: dict[str, PriceConfig] = {}
    models: dict[str, ModelSettings] = {}

    @model_validator(mode="after")
    def _heartbeats_fit_the_silence(self) -> Config:
        # A member that beats less often than the supervisor's patience is killed as hung.
        beat, silent = self.agent.heartbeat_seconds, self.run.silent_after
        if silent <= 2 * beat:
            raise ValueError(
                f"[run] silent_after ({silent:g}s) must be more than twice [agent] "
                f"heartbeat_seconds ({beat:g}s), or every member is killed as hung"
            )
        return self

    @field_validator("prices", "models")
    @classmethod
    def _model_names(cls, tables: dict[str, Any]) -> dict[str, Any]:
        # A misspelt model name would make its table silently apply to nothing.
        for name in tables:
            provider, colon, model = name.partition(":")
            if not colon or not model or provider not in _PROVIDERS:
                raise ValueError(
                    f"{name!r} is not a model name: write PROVIDER:MODEL, with PROVIDER one "
                    f"of {', '.join(_PROVIDERS)}"
                )
        return tables


@dataclass(frozen=True, slots=True)
class Project:
    """Where a project lives: its root, its config, and the store it uses."""

    root: Path
    config: Config
    config_path: Path | None
    store_location: str

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR


def read_utf8(path: Path, what: str, error: type[UserError] = ConfigError) -> str:
    """A text file's contents; ``error`` naming the file (and line) if unreadable."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not UTF-8 text; save {what} as UTF-8") from e


def load_config(path: Path) -> Config:
    """Read and validate one accord.toml; errors name the file and line."""
    return parse_config(read_utf8(path, "the config"), str(path))


def parse_config(text: str, origin: str = CONFIG_NAME) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin} is not valid TOML: {e}; fix that line") from e
    except RecursionError:
        raise ConfigError(
            f"{origin} nests tables or arrays too deeply to read; flatten it"
        ) from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        line = _line_of(text, loc)
        where = f"{origin}:{line}" if line else origin
        key = ".".join(p for p in loc if not p.isdigit()) or "(top level)"
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unknown setting (check its spelling against the commented accord.toml)"
        raise ConfigError(f"{where}: {key}: {msg}") from e
    credentials.declare(config.secrets.variables)
    return config


def _line_of(text: str, loc: tuple[str, ...]) -> int | None:
    """Best-effort line number of the key at ``loc`` (section path then key)."""
    names = [p for p in loc if not p.isdigit()]
    if not names:
        return None
    table: list[str] = []
    best: int | None = None
    header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    keyline = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        m = header.match(line)
        if m:
            table = [p.strip().strip("\"'") for p in m.group(1).split(".")]
            if table == names:
                best = best or number
            continue
        k = keyline.match(line)
        if k and table + [k.group(1).strip("\"'")] == names[: len(table) + 1]:
            if len(table) + 1 == len(names):
                return number
            best = best or number
    return best


def locate(
    cwd: Path | None = None, store: str | None = None, *, must_exist: bool = True
) -> Project:
    """Find the project and its store: ``store`` argument, then ACCORD_STORE, then walk up."""
    cwd = cwd or Path.cwd()
    root = find_root(cwd)
    config_path = root / CONFIG_NAME if root and (root / CONFIG_NAME).is_file() else None
    config = load_config(config_path) if config_path else Config()
    explicit = store or credentials.get("ACCORD_STORE")
    if explicit:
        location = absolute(explicit)
        return Project(root or cwd.resolve(), config, config_path, location)
    if root is None:
        if must_exist:
            raise StoreNotFound(
                f"no accord project in {cwd.resolve()} or any folder above it; "
                "run `accord init` here, or pass --store PATH"
            )
        return Project(cwd.resolve(), config, None, str(cwd.resolve() / STATE_DIR / STORE_NAME))
    if config.store.path:
        p = config.store.path
        location = absolute(p, root)
    else:
        location = str(root / STATE_DIR / STORE_NAME)
    return Project(root, config, config_path, location)


CONFIG_TEMPLATE = """\
# accord.toml: this project's team settings. Commit it; the store (.accord/) stays local.
# Every section and key is optional; the values shown are the defaults.

[team]
# Team used when neither --team nor ACCORD_TEAM is given.
# default = "main"
#
# Teammates `accord run` starts with the lead (the lead can spawn more):
# [[team.members]]
# name = "reviewer"
# agent = "reviewer"          # .accord/agents/reviewer.md or .claude/agents/reviewer.md
# model = "anthropic:claude-sonnet-4-5"
#
# "worktree": each member works in a git worktree of its own, on branch
# accord/TEAM@MEMBER, and a completed task reaches the integration branch accord/TEAM
# only through the merge gate (merged, then checked by the TaskCompleted hooks).
# "shared": every member works in the project folder. Default: worktree in a git
# repository, else shared.
# isolation = "worktree"

[store]
# Where the store lives, relative to this file; or a PostgreSQL database,
# "postgresql://USER@HOST:PORT/DATABASE" (keep its password out of this file: put it in
# ~/.pgpass, or give the whole URL in ACCORD_STORE instead).
# path = ".accord/accord.db"
# "full" survives power loss; "normal" is faster and may lose the last commits on power loss
# (never corrupts, and a killed process loses nothing either way). On PostgreSQL "normal"
# is synchronous_commit = off: a crash of the server may lose the last commits.
synchronous = "full"
# Seconds to wait for another writer before giving up with a clear error.
busy_timeout = 5.0

[board]
# A claim's lease: a member that stops heartbeating for this long loses its task.
lease_seconds = 300
# Claims a task may have before it fails for good.
max_attempts = 3

[mailbox]
# Seconds before a delivered but unacknowledged message is delivered again.
visibility_timeout = 60
# A waiting member wakes when rung; it also looks itself this often (seconds), so a
# lost ring makes mail late by at most this, never lost.
recheck = 5

[hooks]
# Shell commands run at TaskCreated, TaskCompleted and TeammateIdle. Each gets a JSON
# payload on stdin. Exit 0 allows the action, exit 2 blocks it (stderr is the feedback),
# any other exit is logged and does not block. A hook that outlives its timeout blocks,
# unless on_timeout = "allow". A hook that cannot run (exit 126: not executable, 127:
# program missing) is reported as an error; on_broken = "block" or "warn" says whether it
# also blocks (default: it blocks TaskCompleted and only warns for the others; a hook
# may set its own). Hooks in .claude/settings.json and .claude/settings.local.json run
# too, after these, as Claude Code runs them.
timeout = 120
# on_broken = "block"
# TaskCompleted = "pytest -q"
#
# [[hooks.TaskCreated]]
# command = "./scripts/check-task.sh"
# timeout = 30

[secrets]
# Tool commands and hooks never see model API keys, member tokens, cloud credentials
# (AWS_*, GH_TOKEN, HF_TOKEN...), any *_KEY, *_TOKEN, *_SECRET or *_PASSWORD variable,
# nor a store URL's password. Name more variables to keep from them here.
# variables = ["DEPLOY_HOOK_URL"]

[sandbox]
# Teammates' bash commands and hooks run in a bubblewrap sandbox: their worktree is
# writable, the rest of the project read-only, the store, .accord/ and secrets out of
# sight, other processes invisible. Where bubblewrap is missing or refused, required =
# true refuses teammates' commands; false runs them unsandboxed after one warning.
required = true
network = false            # an agent definition may allow it with `network: true`
# hide = ["~/.ssh"]         # more paths commands cannot see
# writable = ["~/.cache"]   # more paths commands may write

[permissions]
# Allow, ask and deny rules for tools in Claude Code's syntax, added to those of
# .claude/settings.json; deny beats ask beats allow. An ask pauses the tool call until
# the person answers (`accord permit ID`, `accord deny ID`) or ask_timeout passes (deny).
# allow = ["Bash(npm test:*)"]
# ask = ["Bash(git push:*)"]
# deny = ["Read(~/.ssh/**)", "Edit(migrations/**)"]
ask_to = "person"          # or "lead"
ask_timeout = 600

[agent]
# Model for members whose definition names none: PROVIDER:MODEL, e.g.
# "anthropic:claude-sonnet-4-5", "openai:gpt-5-mini", "openai:qwen3@http://localhost:11434/v1".
# model = "anthropic:claude-sonnet-4-5"
max_tokens = 8192          # per model reply
model_timeout = 600        # seconds for one model call
max_retries = 4            # on 429, 5xx, timeouts and dropped connections
bash_timeout = 120         # seconds for one bash tool call
heartbeat_seconds = 10

[run]
# How the supervisor treats members: restarts after a crash (with backoff doubling from
# restart_backoff seconds), seconds a stopping member gets before it is killed, and how
# long a member may go without a heartbeat before it counts as hung (a member just
# started gets 10 seconds more for its first).
max_restarts = 3
restart_backoff = 1.0
grace = 20
silent_after = 120
# A supervisor renews its lease every fraction of a second; one silent for
# supervisor_lease seconds is lost, and its members are started again elsewhere (unless
# pinned to its host). slots caps how many members `accord run` starts on its own host,
# so the rest go to `accord supervise --host NAME` on other machines (default: no cap).
supervisor_lease = 15
# slots = 4
# Start members by forking a process that imported accord once (Linux): each member is
# still a process of its own, with about a third of the memory (PSS) of a fresh one.
fork_members = false

[memory]
# What the team remembers (`accord memory --help`). Noting an observation whose words
# overlap an active one's by `similarity` or more (Jaccard of the word sets) strengthens
# that entry instead of adding another. Insights and observations fade toward their floor,
# halving the distance every half_life_days (an observation counts from when it was last
# seen); an active decision does not fade.
similarity = 0.8
continuity_words = 400     # cap of a member's continuity note
insight = { half_life_days = 180, floor = 0.6 }
observation = { half_life_days = 30, floor = 0.3 }

[learning]
# When an attempt at a task does not succeed (a hook refuses it, it fails, its member
# dies or loses the lease, the merge is refused, the budget stops it) a lesson is kept
# and shown to the next attempt, within lesson_chars. A member still alive writes it
# itself; otherwise a short reflection call does (reflection_model, default the
# member's model; "none" for none), or a plain lesson is built from the evidence.
enabled = true
lesson_chars = 1500
lesson_half_life_days = 14 # an unconfirmed lesson fades; one that led to a success does not
# reflection_model = "anthropic:claude-haiku-4-5"
# A revision of a skill takes effect for the next task; "lead" or "person" must
# approve it first when named here.
skill_review = "none"
skill_chars = 20000        # cap of a skill's body

[budgets]
# Checked before every model call. A member over budget stops, keeps its transcript and
# work, and the lead is told.
# team = { usd = 20.0 }
# member = { usd = 5.0, tokens = 2000000 }
# members.alice = { usd = 1.0 }

[mcp]
# MCP servers members may use, besides those of .mcp.json (a name here wins). An agent
# definition picks its servers (mcpServers, or mcp__SERVER__TOOL in tools); the default
# teammate gets them all.
start_timeout = 10         # seconds a server has to answer initialize
call_timeout = 120         # seconds for one tool call
retry_after = 60           # a server that failed is tried again after this long
# [mcp.servers.time]
# command = "uvx"
# args = ["mcp-server-time"]
# env = { TZ = "UTC" }
# [mcp.servers.docs]
# type = "http"
# url = "https://example.com/mcp"
# headers = { Authorization = "Bearer ${DOCS_TOKEN}" }

# [models."openai:qwen3@http://localhost:11434/v1"]
# What accord cannot tell from a model's name. context_window: the window the server was
# started with (local servers: default 32768). stream: replies stream as the model writes
# them, so views show a member's text live; false for a server that cannot stream (each
# call then waits for the whole reply).
# context_window = 32768
# stream = true

# [prices."openai:qwen3@http://localhost:11434/v1"]
# Price a model accord has no price for (USD per million tokens); unpriced calls are
# counted apart, never as free.
# input = 0.0
# output = 0.0
"""
