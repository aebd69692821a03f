"""``accord ask``: put a question to several members; one answer comes back.

``accord ask "QUESTION" --members alice,bob`` (or ``--role reviewer``) opens a
deliberation in its own channel (``#ask-ID``): independent positions, an exchange of
up to ``--rounds`` rounds, then one synthesis, recorded as a decision memory. The
answer reaches the asker (you, the person, unless ``--as``) by mail.
``accord ask show ID`` shows where it stands, every position and the answer;
``accord ask list`` lists them.

You take part when you are among the members (``--members person,alice``):
``accord ask position ID "TEXT"`` (your own position, first), ``accord ask read ID``
(the others', once yours is in), ``accord ask reply ID "TEXT"`` and ``accord ask agree
ID`` in the exchange, and ``accord ask answer ID "TEXT"`` when the synthesis is yours
(``--agreement``, ``--dissent``). ``--as MEMBER`` acts as a member instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, plain, positive_int, reads, seconds, whole
from accord.errors import UserError

if TYPE_CHECKING:
    from accord.cli._common import Subcommands


def register(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=reads(),
        help="ask several members one question; `ask show ID`, `ask list`; take part with "
        "`ask position|read|reply|agree|answer ID`",
        description=__doc__,
    )
    p.add_argument(
        "question",
        nargs="+",
        metavar="QUESTION",
        help="the question (or show ID, position ID TEXT, ...)",
    )
    p.add_argument("--members", metavar="A,B", help="who deliberates, by name")
    p.add_argument("--role", metavar="NAME", help="or every member of this role or agent")
    p.add_argument("--rounds", type=lambda t: whole(t, "a number of rounds"), default=1)
    p.add_argument("--synthesizer", metavar="NAME", help="who writes the answer")
    p.add_argument("--supersedes", type=positive_int, metavar="MEMORY", help="decision replaced")
    p.add_argument("--deadline", type=seconds, default=600.0, metavar="SECONDS", help="per phase")
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="a topic it is about (repeatable); the team's working patterns count it by them",
    )
    p.add_argument("--agreement", default="", metavar="TEXT", help="with `ask answer`")
    p.add_argument("--dissent", default="", metavar="TEXT", help="with `ask answer`")
    p.add_argument(
        "--as", dest="as_", metavar="MEMBER", help="who asks or takes part (default: you)"
    )
    p.set_defaults(func=ask)


def ask(ctx: Context) -> int:
    words: list[str] = ctx.args.question
    if words[0] in ("show", "list"):
        return _show(ctx, words)
    if words[0] in _TAKE_PART:
        return _take_part(ctx, words)
    a = ctx.args
    members = [m.strip() for m in a.members.split(",") if m.strip()] if a.members else []
    d = ctx.team.deliberations.ask(
        " ".join(words),
        ctx.acting_as(a.as_ or ctx.me),
        members=members,
        role=a.role,
        rounds=a.rounds,
        synthesizer=a.synthesizer,
        phase_seconds=a.deadline,
        supersedes=a.supersedes,
        tags=a.tag,
    )
    if ctx.json:
        show.emit_json(d)
    else:
        people = ", ".join(p.member for p in d.participants)
        show.say(f"asked: deliberation {d.id} in {d.channel} with {people}")
    return 0


#: ``accord ask VERB ID [TEXT]``: how a participant (by default the person) takes part.
_TAKE_PART = {"position": True, "read": False, "reply": True, "agree": False, "answer": True}


def _take_part(ctx: Context, words: list[str]) -> int:
    verb = words[0]
    wants_text = _TAKE_PART[verb]
    usage = f"`accord ask {verb} ID" + (' "TEXT"`' if wants_text else "`")
    if len(words) != (3 if wants_text else 2) or not words[1].isdigit() or int(words[1]) < 1:
        raise UserError(f"give a deliberation id{' and the text' if wants_text else ''}: {usage}")
    a = ctx.args
    if verb != "answer" and (a.agreement or a.dissent):
        raise UserError("--agreement and --dissent go with `accord ask answer ID TEXT`")
    ident, text = int(words[1]), words[2] if wants_text else ""
    me = ctx.acting_as(a.as_ or ctx.me)
    service = ctx.team.deliberations
    if verb == "read":
        positions = service.read(ident, me)
        if ctx.json:
            show.emit_json(positions)
        elif not positions:
            show.say(f"no positions in deliberation {ident} yet")
        for pos in [] if ctx.json else positions:
            label = "position" if pos.round == 0 else f"round {pos.round}"
            show.say(f"[{label}] {pos.member}: {plain(pos.body)}")
        return 0
    if verb in ("position", "reply"):
        from accord.types import DeliberationPhase

        phase = DeliberationPhase.POSITIONS if verb == "position" else DeliberationPhase.EXCHANGE
        d = service.submit(ident, me, text, phase=phase)
    elif verb == "agree":
        d = service.agree(ident, me)
    else:
        d = service.synthesize(ident, me, text, agreement=a.agreement, dissent=a.dissent)
    if ctx.json:
        show.emit_json(d)
    else:
        done = {"position": "submitted", "reply": "replied", "agree": "agreed"}.get(verb)
        said = done or f"answered; recorded as decision memory {d.memory_id}"
        where = f"round {d.round}" if d.phase.value == "exchange" else d.phase.value
        show.say(f"{said}: deliberation {d.id} is now in {where}")
    return 0


def _show(ctx: Context, words: list[str]) -> int:
    service = ctx.team.deliberations
    if words[0] == "list":
        if len(words) > 1:
            raise UserError("`accord ask list` takes no more words")
        listed = service.all()
        if ctx.json:
            show.emit_json(listed)
        elif not listed:
            show.say('no deliberations yet; ask one with `accord ask "QUESTION" --members A,B`')
        else:
            show.table(
                ["id", "phase", "asker", "question"],
                [(d.id, d.phase.value, show.who(d.asker), plain(d.question)) for d in listed],
            )
        return 0
    if len(words) != 2 or not words[1].isdigit() or int(words[1]) < 1:
        raise UserError("give one deliberation id: `accord ask show ID`")
    d = service.get(int(words[1]))
    positions = service.positions(d.id)
    if ctx.json:
        from accord.types import to_json

        show.emit_json({"deliberation": to_json(d), "positions": to_json(positions)})
        return 0
    show.say(f"deliberation {d.id} ({d.channel}), {d.phase.value}: {plain(d.question)}")
    show.say(f"asked by {show.who(d.asker)} {show.when(d.created_at)}")
    for p in d.participants:
        state = " (absent)" if p.absent else " (agreed)" if p.agreed else ""
        show.say(f"  {p.member}{state}")
    for pos in positions:
        label = "position" if pos.round == 0 else f"round {pos.round}"
        show.say(f"[{label}] {pos.member}: {plain(pos.body)}")
    if d.answer is not None:
        show.say(f"answer ({d.lease_holder}): {plain(d.answer)}")
        if d.agreement:
            show.say(f"agreement: {plain(d.agreement)}")
        if d.dissent:
            show.say(f"dissent: {plain(d.dissent)}")
        if d.memory_id is not None:
            show.say(f"recorded as decision memory {d.memory_id}")
    return 0
