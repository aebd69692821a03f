"""The argument grammar of ``accord``: noun groups, each verb with its own help."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any, NoReturn

from accord import __version__
from accord.errors import UsageError

# The values of the enums in accord.types that options take. Written out because
# argparse reads choices while the parser is built, and building it must not cost the
# import of every type (`--version`, `--help`); a test keeps them equal to the enums.
CHOICES: dict[str, tuple[str, ...]] = {
    "MemberStatus": ("starting", "working", "idle", "stopping", "stopped", "crashed", "failed"),
    "TaskStatus": ("pending", "in_progress", "completed", "failed", "cancelled"),
    "MessageKind": (
        "text",
        "shutdown_request",
        "shutdown_response",
        "plan_approval_request",
        "plan_approval_response",
        "idle_notification",
        "task_assignment",
    ),
    "MemoryType": ("decision", "insight", "observation", "story"),
    "MemoryStatus": ("active", "superseded", "retired"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see `{self.prog} --help`")


_RUN_EXITS = (
    "Exit codes: 0 the goal is finished; 1 the team stopped without finishing (stopped by a "
    "person, budget spent, model error, crashed, stalled: `accord status` says which); 2 bad "
    "input, nothing started; 130 interrupted by Ctrl+C."
)


def _common(read: bool = False) -> _Parser:
    p = _Parser(add_help=False)
    p.add_argument(
        "--team",
        metavar="NAME",
        help="team to act on (else ACCORD_TEAM, the default in accord.toml, or the only team)",
    )
    p.add_argument(
        "--store",
        metavar="PATH",
        help="store to use (else ACCORD_STORE, or .accord/accord.db found by walking up)",
    )
    if read:
        p.add_argument("--json", action="store_true", help="print JSON for programs")
    return p


INT64_MAX = 2**63 - 1  # the largest id or number a store column holds


def _whole(text: str, what: str = "a whole number") -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: numbers fit in 64 bits")
    return value


def _int64(text: str) -> int:
    return _whole(text)


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _seq(text: str) -> int:
    value = _whole(text, "an event number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}: give a finite number")
    return value


def _usd(text: str) -> float:
    value = _finite(text, "an amount of USD")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 USD")
    return value


def _host(text: str) -> str:
    from accord.types import NAME_PATTERN

    if not NAME_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a host name: use 1-40 lowercase letters, digits, - and _"
        )
    return text


def _placement(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        type=_host,
        metavar="NAME",
        help="the name this supervisor serves (default: this machine's name)",
    )
    p.add_argument(
        "--slots",
        type=_positive_int,
        metavar="N",
        help="run at most N members on this host (default: [run] slots, else no limit)",
    )


def _seconds(text: str) -> float:
    value = _finite(text, "a number of seconds")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _task_id(text: str) -> int:
    value = _whole(text.lstrip("#"), "a task id (a number)")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a task id (ids start at 1)")
    return value


# Every command and command group, in the order `accord --help` lists them.
_NAMES = (
    "init",
    "team",
    "member",
    "task",
    "msg",
    "agent",
    "cost",
    "run",
    "resume",
    "supervise",
    "stop",
    "watch",
    "status",
    "demo",
    "store",
    "memory",
    "events",
    "wait",
    "plan",
    "work",
)


class _Skipped:
    """Stands for the parser of a command the command line does not name: whatever is
    asked of it (verbs, options, defaults) it takes and forgets."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


def _group_named(argv: Sequence[str] | None) -> str | None:
    """The command group ``argv`` names (its first word that is not an option), if any."""
    if argv is None:
        return None
    for word in argv:
        if word in ("-h", "--help"):
            return None  # the root's help lists every command
        if word == "--version":
            return "--version"  # it prints and exits before any command is read
        if not word.startswith("-"):
            return word
    return None


def _verbs(groups: Any, wanted: str | None, name: str, **kwargs: Any) -> Any:
    """A command group: its verbs only when it is the one named, or when all are wanted."""
    if wanted not in (None, name):
        return _Skipped()
    return groups.add_parser(name, **kwargs).add_subparsers(
        dest="verb", metavar="VERB", parser_class=_Parser, required=True
    )


def _command(groups: Any, wanted: str | None, name: str, **kwargs: Any) -> Any:
    """A command without verbs: its options only when it is the one named, or all are."""
    if wanted not in (None, name):
        return _Skipped()
    return groups.add_parser(name, **kwargs)


def build(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The grammar of every command; with ``argv``, only of the command ``argv`` names.
    Building all of it costs more than a read command does (mostly argparse's gettext
    lookups), and a command needs its own. What the root parser says without a valid
    command (its help, an unknown command) comes from the whole grammar as ever."""
    wanted = _group_named(argv)
    if wanted is not None and wanted not in (*_NAMES, "--version"):
        wanted = None  # a mistyped command: the whole grammar, for argparse's own error
    root = _Parser(
        prog="accord",
        description="Durable teams of LLM agents: a shared task board, mailboxes, a roster, "
        "an event log and hooks, all in one store.",
        epilog="Every read command takes --json. Exit codes: 0 done, 1 failure, 2 bad input, "
        "3 nothing to do.",
    )
    root.add_argument("--version", action="version", version=f"accord {__version__}")
    groups = root.add_subparsers(dest="group", metavar="COMMAND", parser_class=_Parser)
    groups.required = True
    read, write = _common(read=True), _common()

    p = _command(
        groups,
        wanted,
        "init",
        help="create .accord/ and a commented accord.toml here",
        description="Create .accord/ (the store) and a commented accord.toml "
        "in the current folder.",
    )
    p.add_argument("--team", metavar="NAME", help="also create a team with this name")
    p.add_argument("--store", metavar="PATH", help="create the store here instead")
    p.set_defaults(cmd="init")

    # team ------------------------------------------------------------------
    g = _verbs(groups, wanted, "team", help="create, list, show and delete teams")
    p = g.add_parser("create", parents=[read], help="create a team")
    p.add_argument("name")
    p.add_argument("--description", default="", metavar="TEXT")
    p.set_defaults(cmd="team_create")
    p = g.add_parser("list", parents=[read], help="list teams")
    p.set_defaults(cmd="team_list")
    p = g.add_parser("show", parents=[read], help="show a team: members, board counts, mail")
    p.add_argument("name", nargs="?")
    p.set_defaults(cmd="team_show")
    p = g.add_parser("delete", parents=[write], help="delete a team and everything in it")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="delete even while members are live")
    p.set_defaults(cmd="team_delete")

    # member ----------------------------------------------------------------
    g = _verbs(groups, wanted, "member", help="add, list, show and remove members")
    p = g.add_parser("add", parents=[read], help="add a member; prints its secret token once")
    p.add_argument("name")
    p.add_argument("--role", choices=["lead", "teammate"], default="teammate")
    p.add_argument("--agent", metavar="DEFINITION", help="agent definition name")
    p.add_argument("--model", metavar="PROVIDER:MODEL")
    p.set_defaults(cmd="member_add")
    p = g.add_parser("list", parents=[read], help="list members with status and heartbeat")
    p.set_defaults(cmd="member_list")
    p = g.add_parser("show", parents=[read], help="show one member")
    p.add_argument("name")
    p.set_defaults(cmd="member_show")
    p = g.add_parser(
        "remove", parents=[write], help="remove a member; its tasks go back to pending"
    )
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="remove even while it looks live")
    p.set_defaults(cmd="member_remove")
    p = g.add_parser("token", parents=[read], help="issue a new secret token for a member")
    p.add_argument("name")
    p.add_argument(
        "--rotate", action="store_true", required=True, help="required: the old token stops working"
    )
    p.set_defaults(cmd="member_token")
    p = g.add_parser("transcript", parents=[read], help="a member's saved conversation")
    p.add_argument("name")
    p.add_argument("--session", type=_positive_int, help="only this session (default: all)")
    p.add_argument("--last", type=_positive_int, metavar="N", help="only the last N entries")
    p.set_defaults(cmd="member_transcript")
    p = g.add_parser("heartbeat", parents=[write], help="record that a member is alive")
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--status", choices=CHOICES["MemberStatus"])
    p.add_argument("--pid", type=_positive_int)
    p.add_argument("--host")
    p.set_defaults(cmd="member_heartbeat")

    # task ------------------------------------------------------------------
    g = _verbs(groups, wanted, "task", help="the task board: add, claim, complete...")
    p = g.add_parser("add", parents=[read], help="put a task on the board")
    p.add_argument("title")
    p.add_argument("--description", "-d", default="", metavar="TEXT")
    p.add_argument(
        "--blocked-by",
        type=_task_id,
        action="append",
        default=[],
        metavar="ID",
        help="a task that must complete first (repeatable)",
    )
    p.add_argument("--assign", metavar="MEMBER", help="only this member may claim it")
    p.add_argument("--priority", type=_int64, default=0, help="higher is claimed first")
    p.add_argument(
        "--max-attempts",
        type=_positive_int,
        metavar="N",
        help="claims before it fails for good (default from accord.toml)",
    )
    p.set_defaults(cmd="task_add")
    p = g.add_parser("list", parents=[read], help="list tasks")
    p.add_argument("--status", choices=CHOICES["TaskStatus"])
    p.add_argument("--ready", action="store_true", help="only tasks a claim could take now")
    p.set_defaults(cmd="task_list")
    p = g.add_parser("show", parents=[read], help="show one task with its blockers")
    p.add_argument("id", type=_task_id)
    p.set_defaults(cmd="task_show")
    p = g.add_parser("update", parents=[read], help="change a task")
    p.add_argument("id", type=_task_id)
    p.add_argument("--title")
    p.add_argument("--description", "-d", metavar="TEXT")
    p.add_argument("--add-blocker", type=_task_id, action="append", default=[], metavar="ID")
    p.add_argument("--remove-blocker", type=_task_id, action="append", default=[], metavar="ID")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--assign", metavar="MEMBER")
    who.add_argument("--unassign", action="store_true")
    p.add_argument("--priority", type=_int64)
    p.set_defaults(cmd="task_update")
    p = g.add_parser(
        "claim",
        parents=[read],
        help="take the best ready task (or --id) under a lease",
    )
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--id", type=_task_id, help="claim this task instead of the best one")
    p.add_argument(
        "--lease", type=_seconds, metavar="SECONDS", help="lease length (default from accord.toml)"
    )
    p.set_defaults(cmd="task_claim")
    p = g.add_parser("heartbeat", parents=[read], help="extend a claim's lease")
    p.add_argument("id", type=_task_id)
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--token", type=_int64, required=True, help="the fencing token of the claim")
    p.add_argument("--lease", type=_seconds, metavar="SECONDS")
    p.set_defaults(cmd="task_heartbeat")
    p = g.add_parser(
        "complete",
        parents=[read],
        help="complete a held task (TaskCompleted hooks must allow it)",
    )
    p.add_argument("id", type=_task_id)
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--token", type=_int64, required=True)
    p.add_argument("--result", metavar="TEXT")
    p.set_defaults(cmd="task_complete")
    p = g.add_parser("fail", parents=[read], help="fail a held task")
    p.add_argument("id", type=_task_id)
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--token", type=_int64, required=True)
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.add_argument("--retry", action="store_true", help="put it back to pending if attempts remain")
    p.set_defaults(cmd="task_fail")
    p = g.add_parser("cancel", parents=[read], help="cancel an unfinished task")
    p.add_argument("id", type=_task_id)
    p.add_argument("--reason", default="cancelled", metavar="TEXT")
    p.set_defaults(cmd="task_cancel")

    # msg -------------------------------------------------------------------
    g = _verbs(groups, wanted, "msg", help="mailboxes: send, inbox, ack, list")
    p = g.add_parser("send", parents=[read], help="send a message")
    p.add_argument("text")
    p.add_argument(
        "--from",
        dest="sender",
        metavar="MEMBER",
        help="who sends it (default: you, the person; an agent: itself)",
    )
    p.add_argument(
        "--to",
        dest="recipient",
        metavar="MEMBER",
        required=True,
        help="a member, or '*' for everyone but the sender",
    )
    p.add_argument("--summary", metavar="TEXT", help="5-10 words shown in lists")
    p.add_argument("--kind", choices=CHOICES["MessageKind"], default="text")
    p.add_argument("--reply-to", type=_positive_int, metavar="ID")
    p.add_argument(
        "--key", metavar="IDEMPOTENCY_KEY", help="sending again with the same key sends nothing new"
    )
    p.set_defaults(cmd="msg_send")
    p = g.add_parser(
        "inbox",
        parents=[read],
        help="deliver unacknowledged messages (they come again until acked)",
    )
    p.add_argument(
        "--as", dest="as_", metavar="MEMBER", help="whose inbox (default: yours, the person's)"
    )
    p.add_argument("--limit", type=_positive_int)
    p.set_defaults(cmd="msg_inbox")
    p = g.add_parser("ack", parents=[read], help="acknowledge delivered messages")
    p.add_argument("ids", type=_positive_int, nargs="+", metavar="ID")
    p.add_argument(
        "--as", dest="as_", metavar="MEMBER", help="whose messages (default: yours, the person's)"
    )
    p.set_defaults(cmd="msg_ack")
    p = g.add_parser("list", parents=[read], help="message history, for people")
    p.add_argument("--member", metavar="MEMBER", help="only messages to or from this member")
    p.add_argument("--unacked", action="store_true")
    p.add_argument("--limit", type=_positive_int, default=50)
    p.set_defaults(cmd="msg_list")

    # agent runtime -----------------------------------------------------------
    p = _command(
        groups,
        wanted,
        "agent",
        parents=[write],
        help="run one member as an agent process (its token in ACCORD_TOKEN)",
        description="Run a member's agent loop: read mail, call the model, use tools, work "
        "tasks, until shut down. Agent processes carry ACCORD_MEMBER and ACCORD_TOKEN.",
    )
    p.add_argument("--member", required=True, metavar="NAME")
    p.add_argument("--model", metavar="PROVIDER:MODEL", help="override the member's model")
    p.add_argument("--agent", metavar="DEFINITION", help="override the member's definition")
    p.add_argument(
        "--workspace", metavar="DIR", help="folder the tools work in (default: the project folder)"
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="stop when there is nothing left to do instead of waiting",
    )
    p.set_defaults(cmd="agent")
    p = _command(
        groups,
        wanted,
        "cost",
        parents=[read],
        help="tokens and USD spent, per member, task or model",
    )
    p.add_argument("--by", choices=["member", "task", "model"], default="member")
    p.set_defaults(cmd="cost")

    # team runs ---------------------------------------------------------------
    p = _command(
        groups,
        wanted,
        "run",
        parents=[write],
        help="a lead and teammates work on a goal until it is done",
        description="Start a supervisor, which starts the lead; the lead plans tasks and "
        "spawns teammates. Ctrl+C stops the team (resumable with `accord resume`); twice "
        "forces it.",
        epilog=_RUN_EXITS,
    )
    p.add_argument("goal", help="what the team should do, in plain language")
    p.add_argument("--model", metavar="PROVIDER:MODEL", help="the lead's model")
    p.add_argument(
        "--teammate-model",
        metavar="PROVIDER:MODEL",
        help="default model of the teammates the lead spawns",
    )
    p.add_argument("--max-teammates", type=_positive_int, metavar="N")
    p.add_argument(
        "--budget", type=_usd, metavar="USD", help="stop the team when it has spent this much"
    )
    p.add_argument(
        "--delegate", action="store_true", help="the lead only coordinates: no file or shell tools"
    )
    p.add_argument(
        "--display",
        choices=["live", "plain", "events"],
        help="live view (default on a terminal), the run as a story one step a line "
        "(plain), or every raw event (events)",
    )
    _placement(p)
    p.set_defaults(cmd="run")
    p = _command(
        groups,
        wanted,
        "resume",
        parents=[write],
        help="bring back a stopped or crashed team run",
        description="Bring the team back: its members, transcripts, claims and mail. "
        "Members that crashed too often, failed on their configuration or stopped over "
        "budget come back too (fix the cause first), and the lead is woken to carry on.",
        epilog=_RUN_EXITS,
    )
    p.add_argument("--display", choices=["live", "plain", "events"])
    p.add_argument(
        "--budget", type=_usd, metavar="USD", help="raise the team's budget (after a budget stop)"
    )
    _placement(p)
    p.set_defaults(cmd="resume")
    p = _command(
        groups,
        wanted,
        "supervise",
        parents=[write],
        help="serve one host of a team: run the members placed here (for teams on many machines)",
        description="Start the members a team run places on this host, watch and restart "
        "them, and stop them when the run stops. Run `accord run` on one machine and "
        "`accord supervise --host NAME` on others, all with the same store (a postgresql:// "
        "URL); a member whose host is lost is started again elsewhere unless the lead "
        "pinned it there. Waits for the team to run; Ctrl+C stops it.",
    )
    _placement(p)
    p.add_argument("--once", action="store_true", help="return when the current (or next) run ends")
    p.set_defaults(cmd="supervise")
    p = _command(
        groups,
        wanted,
        "stop",
        parents=[write],
        help="stop the team (resumable), or ask one member to shut down",
    )
    p.add_argument("member", nargs="?")
    p.set_defaults(cmd="stop")
    p = _command(
        groups,
        wanted,
        "watch",
        parents=[write],
        help="the live view of a team, from any terminal (Ctrl+C closes it; the team goes on)",
    )
    p.set_defaults(cmd="watch")
    p = _command(
        groups, wanted, "status", parents=[read], help="the team's run, members and board, once"
    )
    p.set_defaults(cmd="status")
    p = _command(
        groups,
        wanted,
        "demo",
        help="watch a whole team work, offline: scripted replies, no model or key needed",
        description="Run a complete team in a scratch git repository with the scripted model: "
        "a lead plans three tasks, two teammates write code, the repository's tests refuse one "
        "completion and the teammate fixes it. No model, no key, no network; a few seconds.",
    )
    p.add_argument(
        "--dir", metavar="DIR", help="run in this new or empty folder (default: a temporary one)"
    )
    p.add_argument("--keep", action="store_true", help="keep the folder even if the demo fails")
    p.add_argument(
        "--display",
        choices=["live", "plain"],
        help="live view (default on a terminal) or one line per event",
    )
    p.set_defaults(cmd="demo")

    # store -----------------------------------------------------------------
    g = _verbs(
        groups, wanted, "store", help="the store itself: copy teams between SQLite and PostgreSQL"
    )
    p = g.add_parser(
        "copy",
        help="copy teams, with their whole history, from one store to another",
        description="Copy every team (or those named with --team) from one store to "
        "another: a SQLite path or a postgresql:// URL on either side. The target must not "
        "have a team of the same name; a new SQLite file is created. Each team is copied "
        "in one transaction and read back to check it. The source is left as it is.",
    )
    p.add_argument("--from", dest="source", required=True, metavar="STORE")
    p.add_argument("--to", dest="target", required=True, metavar="STORE")
    p.add_argument("--team", action="append", default=[], metavar="NAME", dest="teams")
    p.add_argument("--json", action="store_true", help="print JSON for programs")
    p.set_defaults(cmd="store_copy")

    # memory ----------------------------------------------------------------
    g = _verbs(
        groups,
        wanted,
        "memory",
        help="what the team remembers: add, search, history, export, continuity...",
    )
    p = g.add_parser(
        "add",
        parents=[read],
        help="remember a decision, insight, observation or story",
        description="Remember something. A decision can name the decision it replaces "
        "(--supersedes); an observation noted again (the same or nearly the same text) "
        "strengthens the entry already there instead of adding another.",
    )
    p.add_argument("text")
    p.add_argument("--type", required=True, choices=CHOICES["MemoryType"])
    p.add_argument(
        "--supersedes", type=_positive_int, metavar="ID", help="the decision this one replaces"
    )
    p.add_argument(
        "--scope",
        default="team",
        metavar="SCOPE",
        help="team (default), project (every team sees it) or member:NAME",
    )
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="repeatable")
    p.set_defaults(cmd="memory_add")
    p = g.add_parser(
        "search",
        parents=[read],
        help="recall: the best entries for a query, with how each scored",
        description="Rank entries by relevance times decay, plus a boost for reinforcement, "
        "and say how each score was made. Stories are never searched (see `memory list`).",
    )
    p.add_argument("query")
    p.add_argument("--type", action="append", choices=CHOICES["MemoryType"])
    p.add_argument("--k", type=_positive_int, default=5, metavar="N", help="how many (5)")
    p.add_argument(
        "--history", action="store_true", help="include superseded decisions (scored low)"
    )
    p.add_argument("--as", dest="as_", metavar="MEMBER", help="also see this member's own entries")
    p.set_defaults(cmd="memory_search")
    p = g.add_parser("show", parents=[read], help="one entry, with where it came from")
    p.add_argument("id", type=_positive_int)
    p.set_defaults(cmd="memory_show")
    p = g.add_parser(
        "history", parents=[read], help="a decision's supersession chain, and which stands"
    )
    p.add_argument("id", type=_positive_int)
    p.set_defaults(cmd="memory_history")
    p = g.add_parser("forget", parents=[read], help="retire an entry (kept, never recalled)")
    p.add_argument("id", type=_positive_int)
    p.set_defaults(cmd="memory_forget")
    p = g.add_parser("list", parents=[read], help="entries, newest first")
    p.add_argument("--type", choices=CHOICES["MemoryType"])
    p.add_argument("--status", choices=CHOICES["MemoryStatus"])
    p.add_argument("--limit", type=_positive_int, metavar="N")
    p.set_defaults(cmd="memory_list")
    p = g.add_parser(
        "export", parents=[write], help="every entry the team sees, as JSON Lines (a backup)"
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of to stdout")
    p.set_defaults(cmd="memory_export")
    p = g.add_parser(
        "import",
        parents=[read],
        help="add the entries of an export (all or nothing unless --skip-bad)",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--skip-bad", action="store_true", help="import the good lines and report the bad ones"
    )
    p.set_defaults(cmd="memory_import")
    p = g.add_parser(
        "reindex",
        parents=[read],
        help="embed the entries that have no vector from the configured model",
        description="Fill in the embedding vectors recall blends with BM25 when [memory] "
        "embeddings is hashing or minilm: for entries written before it was set, imported "
        "ones, or after changing the model. Exit 3 when every entry has one already.",
    )
    p.set_defaults(cmd="memory_reindex")
    p = g.add_parser(
        "continuity",
        parents=[read],
        help="a member's continuity note (--history: every version; --set: write one)",
    )
    p.add_argument("member")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--history", action="store_true", help="every version, oldest first")
    what.add_argument("--set", metavar="TEXT", help="write a new version")
    p.set_defaults(cmd="memory_continuity")

    # events, wait ----------------------------------------------------------
    p = _command(groups, wanted, "events", parents=[read], help="the team's event log")
    p.add_argument("--since", type=_seq, default=0, metavar="SEQ")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument("--limit", type=_positive_int)
    p.set_defaults(cmd="events")
    p = _command(
        groups, wanted, "wait", parents=[read], help="block until a member has mail or a ready task"
    )
    p.add_argument("--as", dest="as_", metavar="MEMBER", required=True)
    p.add_argument("--timeout", type=_seconds, default=60.0, metavar="SECONDS")
    p.set_defaults(cmd="wait")

    # plan files, workers -----------------------------------------------------
    g = _verbs(
        groups, wanted, "plan", help="put a plan file's tasks on the board, checked whole first"
    )
    p = g.add_parser(
        "load",
        parents=[read],
        help="load a TOML plan of tasks with ids and blockers (again: adds only new ones)",
        description="Check the whole plan (TOML, keys, ids, blockers, cycles) and then put "
        "every task on the board in one transaction. Tasks loaded before (by id) are left "
        "as they are, so loading a plan again adds only the tasks that are new.",
    )
    p.add_argument("file", metavar="FILE.toml")
    p.set_defaults(cmd="plan_load")
    p = _command(
        groups,
        wanted,
        "work",
        parents=[write],
        help="N workers run a command (or an agent) once per ready task",
        description="Start N workers (members PREFIX-1..PREFIX-N) that claim ready tasks and "
        "run `/bin/sh -c CMD` for each in the project folder, with ACCORD_TASK_ID, "
        "ACCORD_TASK_TITLE, ACCORD_TASK_DESCRIPTION, ACCORD_TASK_KEY and ACCORD_TEAM set and "
        "the task as JSON on stdin. Exit 0 completes the task (TaskCompleted hooks apply); "
        "another exit fails the attempt with the output's tail as the reason. Stops when "
        "nothing is left; exit 0 if every task completed, 1 otherwise. Ctrl+C puts running "
        "tasks back; started again, it carries on.",
    )
    p.add_argument(
        "--workers", type=_positive_int, default=1, metavar="N", help="tasks run at once (1)"
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--command", metavar="CMD", help="shell command to run once per task")
    what.add_argument(
        "--agent", metavar="DEFINITION", help="run an agent with this definition per task"
    )
    p.add_argument("--model", metavar="PROVIDER:MODEL", help="the agents' model (with --agent)")
    p.add_argument(
        "--lease",
        type=_seconds,
        metavar="SECONDS",
        help="claim lease, kept alive while a task runs (default from accord.toml)",
    )
    p.add_argument(
        "--as-prefix",
        default="worker",
        metavar="PREFIX",
        help="workers are members PREFIX-1..PREFIX-N (default: worker)",
    )
    p.set_defaults(cmd="work")
    return root
