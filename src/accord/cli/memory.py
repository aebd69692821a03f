"""``accord memory``: what the team remembers. Add and recall entries, follow a decision's
supersession chain, retire, list, export and import them, embed them again, and read or
write a member's continuity note."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import CHOICES, Context, group, positive_int, reads, writes
from accord.errors import NothingToDo, UserError

if TYPE_CHECKING:
    from accord.cli._common import Subcommands
    from accord.types import MemoryEntry

_TYPES = CHOICES["MemoryType"]


def register(commands: Subcommands, name: str) -> None:
    verbs = group(
        commands,
        name,
        help="what the team remembers: add, search, history, export, continuity...",
    )
    for grammar in (
        _add,
        _search,
        _show,
        _history,
        _forget,
        _list,
        _lessons,
        _export,
        _import,
        _reindex,
        _continuity,
    ):
        grammar(verbs)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _memory_line(e: MemoryEntry) -> str:
    noted = f", noted {e.count} times" if e.count > 1 else ""
    return f"[{e.id}] {e.type.value} ({e.status.value}{noted}) {_clip(e.text, 100)}"


def _add(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "add",
        parents=reads(),
        help="remember a decision, insight, observation or story",
        description="Remember something. A decision can name the decision it replaces "
        "(--supersedes); an observation noted again (the same or nearly the same text) "
        "strengthens the entry already there instead of adding another.",
    )
    p.add_argument("text")
    p.add_argument("--type", required=True, choices=_TYPES)
    p.add_argument(
        "--supersedes", type=positive_int, metavar="ID", help="the decision this one replaces"
    )
    p.add_argument(
        "--scope",
        default="team",
        metavar="SCOPE",
        help="team (default), project (every team sees it) or member:NAME",
    )
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="repeatable")
    p.set_defaults(func=memory_add)


def memory_add(ctx: Context) -> int:
    from accord.types import MemoryType, NewMemory, to_json

    a = ctx.args
    if a.scope.startswith("member:"):
        # An agent may keep entries of its own only: writing into another member's
        # scope would put words in its mouth at its next recall.
        ctx.acting_as(a.scope.removeprefix("member:"))
    entry, reinforced = ctx.team.memory.remember(
        NewMemory(
            type=MemoryType(a.type),
            text=a.text,
            tags=tuple(a.tag),
            scope=a.scope,
            author=ctx.actor,
            supersedes=a.supersedes,
        )
    )
    if ctx.json:
        out = to_json(entry)
        out["reinforced"] = reinforced
        show.say(json.dumps(out, indent=2, ensure_ascii=False))
    elif reinforced:
        show.say(f"reinforced entry {entry.id} (now noted {entry.count} times)")
    else:
        linked = f", superseding {entry.supersedes}" if entry.supersedes else ""
        show.say(f"remembered {entry.type.value} {entry.id}{linked}")
    return 0


def _search(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "search",
        parents=reads(),
        help="recall: the best entries for a query, with how each scored",
        description="Rank entries by relevance times decay, plus a boost for reinforcement, "
        "and say how each score was made. Stories are never searched (see `memory list`).",
    )
    p.add_argument("query")
    p.add_argument("--type", action="append", choices=_TYPES)
    p.add_argument("--k", type=positive_int, default=5, metavar="N", help="how many (5)")
    p.add_argument(
        "--history", action="store_true", help="include superseded decisions (scored low)"
    )
    p.add_argument("--as", dest="as_", metavar="MEMBER", help="also see this member's own entries")
    p.set_defaults(func=memory_search)


def memory_search(ctx: Context) -> int:
    from accord.types import MemoryType

    a = ctx.args
    types = [MemoryType(t) for t in a.type] if a.type else None
    if types and MemoryType.STORY in types:
        raise UserError(
            "stories are never searched; list them with `accord memory list --type story`"
        )
    member = ctx.acting_as(a.as_) if a.as_ else ctx.actor
    found = ctx.team.memory.recall(a.query, member=member, k=a.k, types=types, history=a.history)
    if ctx.json:
        show.emit_json(found)
    elif not found:
        show.say(f"nothing recalled for {a.query!r}")
    else:
        for r in found:
            show.say(f"{r.score:.3f} {_memory_line(r.entry)}")
            show.say(f"      why: {r.why}")
    return 0


def _show(verbs: Subcommands) -> None:
    p = verbs.add_parser("show", parents=reads(), help="one entry, with where it came from")
    p.add_argument("id", type=positive_int)
    p.set_defaults(func=memory_show)


def memory_show(ctx: Context) -> int:
    e = ctx.team.memory.get(ctx.args.id)
    if ctx.json:
        show.emit_json(e)
        return 0
    origin = e.author or "a person"
    if e.task_id is not None:
        origin += f", task #{e.task_id}"
    if e.session is not None:
        origin += f", session {e.session}"
    rows: list[tuple[str, object]] = [
        ("type", e.type.value),
        ("status", e.status.value),
        ("scope", e.scope),
        ("tags", ", ".join(e.tags) or "-"),
        ("written by", origin),
        ("created", show.when(e.created_at)),
        ("last seen", f"{show.when(e.seen_at)} (noted {e.count} time{'s' * (e.count != 1)})"),
    ]
    if e.supersedes is not None:
        rows.append(("supersedes", e.supersedes))
    if e.superseded_by is not None:
        rows.append(("superseded by", e.superseded_by))
    show.say(f"memory {e.id}")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        show.say(f"  {k:<{width}}  {v}")
    show.say("\n" + e.text)
    return 0


def _history(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "history", parents=reads(), help="a decision's supersession chain, and which stands"
    )
    p.add_argument("id", type=positive_int)
    p.set_defaults(func=memory_history)


def memory_history(ctx: Context) -> int:
    from accord.types import MemoryStatus, to_json

    chain = ctx.team.memory.history(ctx.args.id)
    stands = next((e.id for e in chain if e.status == MemoryStatus.ACTIVE), None)
    if ctx.json:
        out = {"v": 1, "chain": to_json(chain), "stands": stands}
        show.say(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    for e in chain:
        mark = "stands" if e.id == stands else e.status.value
        show.say(f"[{e.id}] {mark:<10} {show.when(e.created_at)}  {_clip(e.text, 90)}")
    if stands is None:
        show.say("nothing in this chain stands: its last entry was retired")
    return 0


def _forget(verbs: Subcommands) -> None:
    p = verbs.add_parser("forget", parents=reads(), help="retire an entry (kept, never recalled)")
    p.add_argument("id", type=positive_int)
    p.set_defaults(func=memory_forget)


def memory_forget(ctx: Context) -> int:
    e = ctx.team.memory.forget(ctx.args.id, ctx.actor)
    if ctx.json:
        show.emit_json(e)
    else:
        show.say(f"retired memory {e.id} (kept, never recalled again)")
    return 0


def _list(verbs: Subcommands) -> None:
    p = verbs.add_parser("list", parents=reads(), help="entries, newest first")
    p.add_argument("--type", choices=_TYPES)
    p.add_argument("--status", choices=CHOICES["MemoryStatus"])
    p.add_argument("--limit", type=positive_int, metavar="N")
    p.set_defaults(func=memory_list)


def memory_list(ctx: Context) -> int:
    from accord.types import MemoryStatus, MemoryType

    a = ctx.args
    entries = ctx.team.memory.entries(
        type=MemoryType(a.type) if a.type else None,
        status=MemoryStatus(a.status) if a.status else None,
        limit=a.limit,
    )
    if ctx.json:
        show.emit_json(entries)
        return 0
    if not entries:
        show.say("no memories; add one with `accord memory add --type TYPE TEXT`")
        return 0
    show.table(
        ["id", "type", "status", "scope", "noted", "last seen", "text"],
        [
            (
                e.id,
                e.type.value,
                e.status.value,
                e.scope,
                e.count,
                show.when(e.seen_at),
                _clip(e.text, 70),
            )
            for e in entries
        ],
    )
    return 0


def _lessons(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "lessons",
        parents=reads(),
        help="what attempts that did not succeed taught, oldest first",
    )
    p.add_argument("--task", type=positive_int, metavar="ID", help="only this task's")
    p.set_defaults(func=memory_lessons)


def memory_lessons(ctx: Context) -> int:
    lessons = ctx.team.lessons
    if ctx.args.task is not None:
        ctx.team.board.get(ctx.args.task)  # an unknown task is an error, not "none"
    found = lessons.listed(task_id=ctx.args.task)
    if ctx.json:
        show.emit_json(
            [
                {
                    "task_id": x.task_id,
                    "attempt": x.attempt,
                    "slot": x.slot,
                    "cause": x.cause.value,
                    "author": x.author,
                    "memory_id": x.memory.id,
                    "text": x.memory.text,
                    "noted": x.memory.count,
                    "evidence": x.evidence,
                    "created_at": x.created_at,
                    "confirmed_at": x.confirmed_at,
                    "strength": round(lessons.strength(x), 3),
                }
                for x in found
            ]
        )
        return 0
    if not found:
        show.say("no lessons yet: they are kept when an attempt at a task does not succeed")
        return 0
    show.table(
        ["task", "attempt", "cause", "by", "memory", "noted", "confirmed", "strength", "lesson"],
        [
            (
                f"#{x.task_id}",
                x.attempt,
                x.cause.value,
                x.author,
                x.memory.id,
                x.memory.count,
                show.when(x.confirmed_at) if x.confirmed_at else "no",
                f"{lessons.strength(x):.2f}",
                _clip(x.memory.text, 60),
            )
            for x in found
        ],
    )
    return 0


def _export(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "export", parents=writes(), help="every entry the team sees, as JSON Lines (a backup)"
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of to stdout")
    p.set_defaults(func=memory_export)


def memory_export(ctx: Context) -> int:
    from pathlib import Path

    lines = list(ctx.team.memory.export())
    if ctx.args.output is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return 0
    target = Path(ctx.args.output)
    partial = target.with_name(target.name + ".partial")
    try:
        # Written aside and renamed, so a failed export never leaves half a backup.
        partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(partial, target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {target}: {e.strerror}; choose another --output") from e
    show.say(f"exported {len(lines)} entries to {target}")
    return 0


def _import(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "import",
        parents=reads(),
        help="add the entries of an export (all or nothing unless --skip-bad)",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--skip-bad", action="store_true", help="import the good lines and report the bad ones"
    )
    p.set_defaults(func=memory_import)


def memory_import(ctx: Context) -> int:
    from pathlib import Path

    from accord.config import read_utf8

    text = read_utf8(Path(ctx.args.file), "the import file", UserError)
    imported, problems = ctx.team.memory.import_lines(
        text.splitlines(), skip_bad=ctx.args.skip_bad, actor=ctx.actor
    )
    if ctx.json:
        show.say(json.dumps({"v": 1, "imported": imported, "skipped": problems}, indent=2))
        return 0
    show.say(f"imported {imported} entries into team {ctx.team.team}")
    for problem in problems:
        show.say(f"  skipped {problem}")
    return 0


def _reindex(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "reindex",
        parents=reads(),
        help="embed the entries that have no vector from the configured model",
        description="Fill in the embedding vectors recall blends with BM25 when [memory] "
        "embeddings is hashing or minilm: for entries written before it was set, imported "
        "ones, or after changing the model. Exit 3 when every entry has one already.",
    )
    p.set_defaults(func=memory_reindex)


def memory_reindex(ctx: Context) -> int:
    memory = ctx.team.memory
    quiet = ctx.json

    def progress(done: int) -> None:
        if not quiet:
            sys.stderr.write(f"\rembedded {done} entries")
            sys.stderr.flush()

    count = memory.reindex(progress)
    if not quiet and count:
        sys.stderr.write("\n")
    model = memory.embedder.name if memory.embedder is not None else None
    if not count:
        raise NothingToDo(f"every recallable entry already has a vector from {model}")
    if quiet:
        show.say(json.dumps({"v": 1, "model": model, "embedded": count}, indent=2))
    else:
        show.say(f"embedded {count} entries with {model}")
    return 0


def _continuity(verbs: Subcommands) -> None:
    p = verbs.add_parser(
        "continuity",
        parents=reads(),
        help="a member's continuity note (--history: every version; --set: write one)",
    )
    p.add_argument("member")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--history", action="store_true", help="every version, oldest first")
    what.add_argument("--set", metavar="TEXT", help="write a new version")
    p.set_defaults(func=memory_continuity)


def memory_continuity(ctx: Context) -> int:
    from accord.types import to_json

    a = ctx.args
    memory = ctx.team.memory
    if a.set is not None:
        note = memory.write_continuity(ctx.acting_as(a.member), a.set)
        if ctx.json:
            show.emit_json(note)
        else:
            show.say(f"wrote version {note.version} of {note.member}'s continuity note")
        return 0
    if a.history:
        notes = memory.continuity_history(a.member)
        if ctx.json:
            show.emit_json(notes)
            return 0
    else:
        latest = memory.continuity(a.member)
        if ctx.json:
            show.say(json.dumps(to_json(latest), indent=2, ensure_ascii=False))
            return 0
        notes = [latest] if latest else []
    if not notes:
        show.say(f"{a.member} has no continuity note yet")
    for note in notes:
        show.say(f"── version {note.version}, written {show.when(note.at)}")
        show.say(note.text)
    return 0
