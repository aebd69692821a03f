"""What a deliberation costs: model calls and tokens of a three-member deliberation
beside three separate direct answers to the same question.

One process, SQLite, members run in-process (``Agent.run(once=True)``, the loop a
member process runs) on the package's scripted model, whose token counts are its
estimates from the text of each request and reply (four characters a token): the
system prompt, the tools' schemas, the mail and the transcript so far, as a real
model would be billed for them, with no prompt cache. Both runs answer with texts of
the same length, so the difference is the deliberation's own: each member's three
turns (position, reply, and the synthesizer's answer) and the mail that carries the
phases, against one turn per member.

    python bench/deliberate.py                 # 3 members, 1 exchange round
    python bench/deliberate.py --members 5 --rounds 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accord.llm.scripted import Reply
    from accord.team import Team

QUESTION = "Should the cache live in SQLite, Redis or PostgreSQL? Say why, in a paragraph."
ANSWER = (
    "SQLite: the cache is local to one host, its entries are small and short-lived, and the "
    "store already runs SQLite in WAL mode, so it adds no server, no network hop and no new "
    "failure mode; Redis would be faster under contention we do not have, PostgreSQL only "
    "pays off once several hosts share the cache. Revisit when a second host needs it."
)
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace")


def team(folder: Path, members: list[str]) -> Team:
    from accord.config import Config
    from accord.store import open_store
    from accord.team import Team
    from accord.types import MemberRole

    folder.mkdir()
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    store = open_store(str(folder / "accord.db"), create=True)
    store.create_team("main")
    store.add_member("main", "lead", token_hash="x", role=MemberRole.LEAD)
    for m in members:
        store.add_member("main", m, token_hash="x")
    return Team.open(store, "main", Config(), folder)


def turn(services: Team, member: str, folder: Path, rules: list[tuple[str, Reply]]) -> None:
    """One working session of ``member``: it reads its mail and acts on the rules."""
    from accord.agent.launch import build_agent
    from accord.config import Config
    from accord.llm.scripted import Reply, RuleModel

    model = RuleModel([(needle, step, True) for needle, step in rules], Reply("Done."))
    build_agent(services, member, Config(), folder, model=model, idle_wait=0.01).run(once=True)


def deliberation(folder: Path, members: list[str], rounds: int) -> tuple[int, int, int]:
    from accord.llm.scripted import Reply, call

    services = team(folder, members)
    d = services.deliberations.ask(
        QUESTION, "lead", members=members, rounds=rounds, synthesizer=members[0]
    )
    ident = {"deliberation_id": d.id}
    answer = call(
        "synthesis_submit",
        {**ident, "answer": ANSWER, "agreement": ANSWER[:120], "dissent": ANSWER[120:240]},
    )
    scripts: dict[str, list[tuple[str, Reply]]] = {}
    for m in members:
        position = call("position_submit", {**ident, "position": f"{m}: {ANSWER}"})
        script = [("Write your own position", Reply("", (position,)))]
        for r in range(1, rounds + 1):
            reply = call("exchange_reply", {**ident, "reply": f"{m}, round {r}: {ANSWER}"})
            script.append((f"exchange round {r} of {rounds}: reply", Reply("", (reply,))))
        if m == members[0]:
            script.append((f"{m} writes the one answer", Reply("", (answer,))))
        scripts[m] = script
    # Like member processes woken by mail: whoever has unread mail takes a turn.
    while any(services.store.pending_work("main", m).mail for m in members):
        for m in members:
            if services.store.pending_work("main", m).mail:
                turn(services, m, folder, scripts[m])
    done = services.deliberations.get(d.id)
    assert done.answer == ANSWER and done.memory_id is not None, done
    return totals(services)


def direct(folder: Path, members: list[str]) -> tuple[int, int, int]:
    from accord.llm.scripted import Reply, call

    services = team(folder, members)
    for m in members:
        (asked, *_) = services.mailbox.send("lead", m, QUESTION)
        answer = call("send_message", {"to": "lead", "message": ANSWER, "reply_to": asked.id})
        turn(services, m, folder, [("Should the cache live", Reply("", (answer,)))])
    assert len(services.mailbox.inbox("lead")) == len(members)
    return totals(services)


def totals(services: Team) -> tuple[int, int, int]:
    (t,) = services.store.usage_totals("main")
    services.store.close()
    return t.calls, t.input_tokens, t.output_tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=3, help="participants (2-7)")
    parser.add_argument("--rounds", type=int, default=1, help="exchange rounds (0-10)")
    args = parser.parse_args(argv)
    members = list(NAMES[: max(2, min(args.members, len(NAMES)))])
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            f"deliberation ({len(members)} members, {args.rounds} round)": deliberation(
                Path(tmp) / "d", members, args.rounds
            ),
            f"{len(members)} direct answers": direct(Path(tmp) / "a", members),
        }
    (dc, di, do), (ac, ai, ao) = rows.values()
    print(f"question: {len(QUESTION)} characters; each answer, position or reply: ~{len(ANSWER)}")
    print("tokens: the scripted model's estimates (4 characters a token), no prompt cache")
    print()
    header = f"{'run':<36}{'calls':>7}{'input tok':>11}{'output tok':>12}"
    print(header)
    print("-" * len(header))
    for name, (c, i, o) in rows.items():
        print(f"{name:<36}{c:>7}{i:>11,}{o:>12,}")
    print(f"{'ratio (deliberation / direct)':<36}{dc / ac:>7.1f}{di / ai:>11.1f}{do / ao:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
