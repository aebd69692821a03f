"""``accord skill``: the skills members load. List them (and where each comes from), show,
follow a skill's versions, see how each version did, write, revise, review, revert, and
export the team's own as ``.claude/skills/NAME/SKILL.md``.

Writes act as you, the person (or, run by a member, as that member with its token); the
person's own revision takes effect at once, since the person is who reviews.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord.cli import _render as show
from accord.cli._common import Context, group, plain, positive_int, reads, writes
from accord.errors import UserError

if TYPE_CHECKING:
    import argparse

    from accord.cli._common import Subcommands
    from accord.team.skills import Skill, Skills
    from accord.types import SkillVersion


def register(commands: Subcommands, name: str) -> None:
    verbs = group(
        commands,
        name,
        help="skills members load: list, show, history, stats, write, revise, approve...",
    )
    p = verbs.add_parser(
        "list", parents=reads(), help="every skill, where it comes from and what it shadows"
    )
    p.set_defaults(func=skill_list)
    p = verbs.add_parser("show", parents=reads(), help="a skill's SKILL.md (a version of it)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--version", type=positive_int, metavar="N", help="a stored version")
    p.set_defaults(func=skill_show)
    p = verbs.add_parser("history", parents=reads(), help="every version of a skill, and why")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=skill_history)
    p = verbs.add_parser("stats", parents=reads(), help="uses and success rate per skill version")
    p.add_argument("name", metavar="NAME", nargs="?")
    p.set_defaults(func=skill_stats)
    p = verbs.add_parser("write", parents=writes(), help="write a new skill of the team's own")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--description", required=True, metavar="TEXT", help="one line: what for")
    _body(p)
    p.set_defaults(func=skill_write)
    p = verbs.add_parser("revise", parents=writes(), help="a new version of a skill")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--reason", required=True, metavar="TEXT", help="the evidence for it")
    p.add_argument("--description", metavar="TEXT", help="a new one-line description")
    _body(p)
    p.set_defaults(func=skill_revise)
    for verb, helped in (
        ("approve", "let a pending revision take effect"),
        ("reject", "reject a pending revision"),
    ):
        p = verbs.add_parser(verb, parents=writes(), help=helped)
        p.add_argument("name", metavar="NAME")
        p.add_argument("version", type=positive_int, metavar="VERSION")
        p.add_argument("--reason", required=verb == "reject", default="", metavar="TEXT")
        p.set_defaults(func=skill_review, approve=verb == "approve")
    p = verbs.add_parser(
        "revert", parents=writes(), help="a new version with an earlier version's text"
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--to", required=True, type=positive_int, metavar="VERSION")
    p.set_defaults(func=skill_revert)
    p = verbs.add_parser(
        "export", parents=writes(), help="write the team's skills as .claude/skills/NAME/SKILL.md"
    )
    p.add_argument("name", metavar="NAME", nargs="?")
    p.add_argument("--dir", metavar="DIR", help="where (default: the project's .claude/skills)")
    p.set_defaults(func=skill_export)


def _body(p: argparse.ArgumentParser) -> None:
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--body", metavar="TEXT", help="the procedure, in Markdown")
    given.add_argument("--file", metavar="PATH", help="read the body from a file")


def _read_body(ctx: Context) -> str:
    a = ctx.args
    if a.body is not None:
        return str(a.body)
    try:
        return Path(a.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {a.file}: {e}; give a readable text file") from e


def _skills(ctx: Context) -> Skills:
    return ctx.team.skills


def _warn(skills: Skills) -> None:
    for w in skills.warnings:
        sys.stderr.write(f"warning: {w}\n")


def _name(ctx: Context) -> str:
    from accord.types import check_skill_name

    return check_skill_name(ctx.args.name)


def _skill_json(s: Skill) -> dict[str, Any]:
    return {
        "name": s.name,
        "description": s.description,
        "origin": s.origin.value,
        "version": s.version,
        "path": None if s.path is None else str(s.path),
        "shadows": [o.value for o in s.shadows],
        "files": list(s.files),
    }


def skill_list(ctx: Context) -> int:
    skills = _skills(ctx)
    listed = skills.available()
    pending = skills.pending()
    _warn(skills)
    if ctx.json:
        show.emit_json([_skill_json(s) for s in listed])
        return 0
    if not listed:
        show.say(
            "no skills yet; write one with `accord skill write NAME --description D --body B`, "
            "or add .claude/skills/NAME/SKILL.md"
        )
        return 0
    show.table(
        ["skill", "from", "shadows", "description"],
        [
            (s.name, s.where, ", ".join(o.value for o in s.shadows) or "-", _clip(s.description))
            for s in listed
        ],
    )
    for v in pending:
        show.say(f"pending review: {v.name} v{v.version} by {show.who(v.author)}: {v.reason}")
    return 0


def _clip(text: str, n: int = 70) -> str:
    text = plain(" ".join(text.split()))
    return text if len(text) <= n else text[: n - 1] + "…"


def skill_show(ctx: Context) -> int:
    from accord.team.skills import render_skill_file

    skills = _skills(ctx)
    name = _name(ctx)
    if ctx.args.version is not None:
        v = skills.version(name, ctx.args.version)
        if ctx.json:
            show.emit_json(v)
            return 0
        show.say(f"# {name} v{v.version} ({v.status.value}, {v.origin.value})")
        sys.stdout.write(plain(render_skill_file(skills_draft(v))))
        return 0
    s = skills.get(name)
    _warn(skills)
    if ctx.json:
        show.emit_json(dict(_skill_json(s), body=s.body))
        return 0
    show.say(f"# {name} ({s.where})")
    sys.stdout.write(plain(render_skill_file(s)))
    if s.files:
        show.say("files: " + ", ".join(s.files))
    return 0


def skills_draft(v: SkillVersion) -> Any:
    from accord.types import SkillDraft

    return SkillDraft(v.name, v.description, v.body, v.meta, v.files)


def _state(v: SkillVersion, current: int | None) -> str:
    from accord.types import SkillStatus

    if v.status == SkillStatus.ACTIVE:
        return "current" if v.version == current else "superseded"
    return v.status.value


def skill_history(ctx: Context) -> int:
    skills = _skills(ctx)
    name = _name(ctx)
    versions = skills.history(name)
    from accord.types import SkillStatus

    if ctx.json:
        show.emit_json(versions)
        return 0
    if not versions:
        s = skills.get(name)
        show.say(f"{name} has no stored versions: it is read from {s.path} (v1 until revised)")
        return 0
    current = max((v.version for v in versions if v.status == SkillStatus.ACTIVE), default=None)
    show.table(
        ["version", "state", "supersedes", "by", "when", "reason", "review"],
        [
            (
                f"v{v.version}",
                _state(v, current),
                f"v{v.supersedes}" if v.supersedes else "-",
                show.who(v.author),
                show.when(v.created_at),
                _clip(v.reason or "-", 60),
                "-"
                if v.reviewer is None
                else f"{show.who(v.reviewer)}: {_clip(v.review_reason or '-', 40)}",
            )
            for v in versions
        ],
    )
    return 0


def skill_stats(ctx: Context) -> int:
    skills = _skills(ctx)
    name = None if ctx.args.name is None else _name(ctx)
    found = skills.stats(name)
    if ctx.json:
        from accord.types import to_json

        show.emit_json([dict(to_json(s), success_rate=s.success_rate) for s in found])
        return 0
    if not found:
        show.say("no skill has been used yet")
        return 0
    show.table(
        ["skill", "version", "uses", "attempts", "succeeded", "failed", "open", "success"],
        [
            (
                s.name,
                f"v{s.version}",
                s.uses,
                s.attempts,
                s.succeeded,
                s.failed,
                s.open,
                "-" if s.success_rate is None else f"{s.success_rate:.0%}",
            )
            for s in found
        ],
    )
    return 0


def _me(ctx: Context) -> str:
    return ctx.acting_as(ctx.me)


def skill_write(ctx: Context) -> int:
    name = _name(ctx)
    body = _read_body(ctx)
    made = _skills(ctx).write(name, ctx.args.description, body, _me(ctx))
    show.say(f"wrote skill {made.name} v{made.version}")
    return 0


def skill_revise(ctx: Context) -> int:
    from accord.types import SkillStatus

    name = _name(ctx)
    body = _read_body(ctx)
    made = _skills(ctx).revise(
        name, body, ctx.args.reason, _me(ctx), description=ctx.args.description
    )
    state = "pending a review" if made.status == SkillStatus.PENDING else "current"
    show.say(f"revised skill {made.name}: v{made.version} ({state})")
    return 0


def skill_review(ctx: Context) -> int:
    name = _name(ctx)
    done = _skills(ctx).review(
        name,
        ctx.args.version,
        approve=ctx.args.approve,
        reviewer=_me(ctx),
        reason=ctx.args.reason,
    )
    verb = "approved: it is the current version" if ctx.args.approve else "rejected"
    show.say(f"skill {done.name} v{done.version} {verb}")
    return 0


def skill_revert(ctx: Context) -> int:
    from accord.types import SkillStatus

    name = _name(ctx)
    made = _skills(ctx).revert(name, ctx.args.to, _me(ctx))
    state = "pending a review" if made.status == SkillStatus.PENDING else "current"
    show.say(f"skill {made.name}: v{made.version} has v{ctx.args.to}'s text ({state})")
    return 0


def skill_export(ctx: Context) -> int:
    from accord.team.skills import PROJECT_DIR

    names = None if ctx.args.name is None else [_name(ctx)]
    directory = Path(ctx.args.dir) if ctx.args.dir else ctx.project.root / PROJECT_DIR
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} is not a folder; give --dir a folder")
    written = _skills(ctx).export(directory, names)
    if not written:
        show.say("the team has no skills of its own to export")
        return 0
    for path in written:
        show.say(f"wrote {path}")
    return 0
