"""``accord chat [MEMBER]``: the person's conversation with a member, a line at a time.

It prints the last messages between the person and the member (the run's lead unless
told), then each new one as it is sent, while every line typed is sent to the member
as a message from the person. End it with Ctrl+D or Ctrl+C. The lead's pane of
``--display tmux`` runs it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from accord.cli import _render as show
from accord.cli._common import Context, positive_int, writes
from accord.errors import UserError

if TYPE_CHECKING:
    from accord.cli._common import Subcommands
    from accord.team import Team
    from accord.team.mailbox import Mailbox
    from accord.types import Message

POLL = 0.1  # how often it looks at the store's change marker for new messages
HISTORY = 200  # the newest messages to or from the person it looks through each time


def register(commands: Subcommands, name: str) -> None:
    p = commands.add_parser(
        name,
        parents=writes(),
        help="talk with a member (default: the lead), a line at a time",
        description="Print the messages between you and a member (the run's lead unless "
        "you name one), then new ones as they come; every line you type is sent to it. "
        "Ctrl+D or Ctrl+C ends the conversation (the team goes on).",
    )
    p.add_argument("member", nargs="?", help="whom to talk with (default: the run's lead)")
    p.add_argument(
        "--last",
        type=positive_int,
        default=10,
        metavar="N",
        help="how many earlier messages to show first (default 10)",
    )
    p.set_defaults(func=chat_cmd)


def chat_cmd(ctx: Context) -> int:
    from accord.store import open_store
    from accord.team import Team
    from accord.team.mailbox import Mailbox
    from accord.types import PERSON, MemberRole

    team = ctx.reading
    member = ctx.args.member
    if member is None:
        run = team.runs.get()
        leads = [m.name for m in team.roster.list() if m.role == MemberRole.LEAD]
        member = run.lead if run is not None else (leads[0] if leads else None)
        if member is None:
            raise UserError(
                f"team {team.name} has no lead to talk with: name a member (`accord chat NAME`)"
            )
    if member == PERSON:
        raise UserError("you cannot chat with yourself: name a member (`accord chat NAME`)")
    team.roster.get(member)  # UnknownMember, before anything is shown
    ctx.acting_as(PERSON)  # an agent never speaks as the person
    show.say_now(
        f"talking with {member} of team {team.name}: type a line and Enter to send it; "
        "Ctrl+D or Ctrl+C to leave"
    )
    seen = _show_new(ctx.mailbox, member, 0, last=ctx.args.last)
    reader = open_store(ctx.where.store_location)
    stop = threading.Event()
    printer = threading.Thread(
        target=_print_new,
        args=(Team(reader, team.name), Mailbox(reader, team.name, ctx.where), member, seen, stop),
        name="chat-printer",
        daemon=True,
    )
    printer.start()
    try:
        for line in sys.stdin:
            text = line.rstrip("\n")
            if text.strip():
                ctx.mailbox.send(PERSON, member, text)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        printer.join(timeout=2)
        reader.close()
    return 0


def _conversation(mailbox: Mailbox, member: str, after: int) -> list[Message]:
    from accord.types import PERSON

    return [
        m
        for m in mailbox.history(PERSON, limit=HISTORY)
        if m.id > after and {m.sender, m.recipient} == {PERSON, member}
    ]


def _show_new(mailbox: Mailbox, member: str, after: int, last: int | None = None) -> int:
    """Print the conversation's messages after id ``after`` (only the ``last`` of them);
    returns the newest id shown."""
    new = _conversation(mailbox, member, after)
    for m in new[-last:] if last else new:
        _say(m)
    return new[-1].id if new else after


def _print_new(team: Team, mailbox: Mailbox, member: str, seen: int, stop: threading.Event) -> None:
    """Print each new message of the conversation, reading only when the store changed."""
    marker: int | None = None
    while not stop.is_set():
        moved = team.log.change_marker()
        if moved != marker:
            marker = moved
            seen = _show_new(mailbox, member, seen)
        stop.wait(POLL)


def _say(m: Message) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(m.sent_at))
    kind = "" if m.kind == "text" else f" <{m.kind.value}>"
    first, *rest = escaped(m.body).split("\n")
    show.say(f"{stamp} {show.who(m.sender)}{kind}: {first}")
    for line in rest:
        show.say(f"{'':>9}{line}")
    sys.stdout.flush()


def escaped(text: str) -> str:
    """``text`` with every control character but newline and tab shown as an escape
    (``\\x1b``), so a message can neither rewrite the terminal nor hide that it tried."""
    out = []
    for ch in text.replace("\r\n", "\n"):
        code = ord(ch)
        if ch in "\n\t" or not (code < 0x20 or 0x7F <= code < 0xA0):
            out.append(ch)
        else:
            out.append(f"\\x{code:02x}")
    return "".join(out)
