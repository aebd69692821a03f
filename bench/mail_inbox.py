"""Mail against the file inbox: messages per second, and messages lost, with 8 concurrent
senders and one receiver.

Two designs carry the same messages, each its own OS processes (multiprocessing
``spawn``):

- **accord**: the store's mailbox (SQLite, WAL). A sender calls ``send_message``; the
  receiver waits with ``accord.team.wake.wait`` as members do, then
  ``receive_messages`` and ``ack_messages``.
- **file inbox**: the design of the file-based teaching implementations of agent
  teams, written here for the benchmark: one JSON Lines file per recipient; a sender
  appends a line (open, append, close); the receiver polls once a second, reads the
  whole file, parses its lines and then truncates it ("drained on read"). As in those
  implementations there is no lock between the reader's read and its truncate and the
  writers' appends, so a line appended in between is gone, and a line caught
  half-written is unreadable.

Every message carries a unique id (``sender:n``); the receiver counts what it saw. A
message is **lost** when the receiver never saw it by the end (after the senders
finished, accord's receiver drains the mailbox until it is empty; the file receiver
polls once more), and **duplicated** when it saw it more than once.

Two loads, each design on each:

- **flat out**: every sender sends ``--messages`` messages as fast as it can.
- **paced**: every sender sends one message every ``--gap`` seconds for ``--seconds``
  seconds, so sends keep arriving while the receiver drains.

    python bench/mail_inbox.py                 # 8 senders, 500 each flat out, 10 s paced
    python bench/mail_inbox.py --quick         # 200 each, 3 s paced
    python bench/mail_inbox.py --senders 16 --gap 0.002 --sync normal
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

TEAM = "bench"
CTX = mp.get_context("spawn")
RECEIVER = "receiver"
POLL = 1.0  # the file inbox's poll interval
TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Sent:
    count: int
    started: float
    finished: float


@dataclass(frozen=True, slots=True)
class Seen:
    ids: Counter[str]
    last: float  # wall time the last new message was seen


# senders ---------------------------------------------------------------------------


def schedule(count: int, gap: float, seconds: float) -> tuple[int, float]:
    """How many messages a sender sends, and the gap between them."""
    return (count, 0.0) if gap <= 0 else (max(1, int(seconds / gap)), gap)


def accord_sender(
    path: str, sync: str, me: str, count: int, gap: float, barrier: Barrier, out: Any
) -> None:
    from accord.store import open_store
    from accord.types import OutgoingMessage

    store = open_store(path, synchronous=sync, busy_timeout=120)  # type: ignore[arg-type]
    barrier.wait(TIMEOUT)
    started = time.time()
    for n in range(count):
        store.send_message(TEAM, OutgoingMessage(me, RECEIVER, json.dumps({"id": f"{me}:{n}"})))
        if gap:
            time.sleep(gap)  # pacing the load, not waiting for anything
    out.put(Sent(count, started, time.time()))
    store.close()


def file_sender(
    path: str, sync: str, me: str, count: int, gap: float, barrier: Barrier, out: Any
) -> None:
    inbox = Path(path) / f"{RECEIVER}.jsonl"
    barrier.wait(TIMEOUT)
    started = time.time()
    for n in range(count):
        line = json.dumps({"id": f"{me}:{n}", "from": me, "text": "hello", "at": time.time()})
        with open(inbox, "a") as f:  # as the teaching implementations append: no lock
            f.write(line + "\n")
        if gap:
            time.sleep(gap)
    out.put(Sent(count, started, time.time()))


# receivers -------------------------------------------------------------------------


def accord_receiver(path: str, sync: str, barrier: Barrier, done: EventType, out: Any) -> None:
    from accord.store import open_store
    from accord.team.wake import wait

    store = open_store(path, synchronous=sync, busy_timeout=120)  # type: ignore[arg-type]
    seen: Counter[str] = Counter()
    last = 0.0
    barrier.wait(TIMEOUT)
    while True:
        finished = done.is_set()  # read before the receive: a send after it is caught next
        got = store.receive_messages(TEAM, RECEIVER, visibility_timeout=600, limit=100)
        if got:
            for m in got:
                seen[json.loads(m.body)["id"]] += 1
            last = time.time()
            store.ack_messages(TEAM, RECEIVER, [m.id for m in got])
        elif finished:
            break  # every send had committed, and the mailbox is empty
        else:
            wait(store, TEAM, RECEIVER, timeout=0.5, tasks=False)
    out.put(Seen(seen, last))
    store.close()


def file_receiver(path: str, sync: str, barrier: Barrier, done: EventType, out: Any) -> None:
    inbox = Path(path) / f"{RECEIVER}.jsonl"
    seen: Counter[str] = Counter()
    last = 0.0
    barrier.wait(TIMEOUT)
    while True:
        finished = done.is_set()
        time.sleep(POLL)  # the design: poll once a second
        # As the teaching implementations drain: read, parse each line, then truncate. A
        # line appended after the read is gone; one caught half-written does not parse.
        lines = inbox.read_text().splitlines() if inbox.exists() else []
        for line in lines:
            try:
                seen[json.loads(line)["id"]] += 1
            except (ValueError, KeyError):
                pass
            else:
                last = time.time()
        if lines:
            inbox.write_text("")
        if finished:
            break
    out.put(Seen(seen, last))


# running ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    design: str
    load: str
    senders: int
    sent: int
    send_rate: float  # messages sent per second, all senders, first start to last finish
    delivered_rate: float  # messages seen per second, first send to the last one seen
    lost: int
    duplicated: int


def run(design: str, load: str, senders: int, count: int, sync: str) -> Row:
    sender, receiver = (
        (accord_sender, accord_receiver) if design == "accord" else (file_sender, file_receiver)
    )
    gap = 0.0 if load == "flat out" else ARGS.gap
    each, pace = schedule(count, gap, ARGS.seconds)
    with tempfile.TemporaryDirectory(prefix="accord-inbox-", dir=ARGS.dir) as folder:
        path = folder
        if design == "accord":
            from accord.store import open_store

            path = os.path.join(folder, "accord.db")
            with open_store(path, create=True) as store:
                store.create_team(TEAM)
                for name in [RECEIVER, *(f"s{i}" for i in range(senders))]:
                    store.add_member(TEAM, name, token_hash="bench")
        barrier = CTX.Barrier(senders + 1)
        done = CTX.Event()
        sent_q, seen_q = CTX.Queue(), CTX.Queue()
        procs = [
            CTX.Process(
                target=sender, args=(path, sync, f"s{i}", each, pace, barrier, sent_q), daemon=True
            )
            for i in range(senders)
        ]
        procs.append(
            CTX.Process(target=receiver, args=(path, sync, barrier, done, seen_q), daemon=True)
        )
        try:
            for p in procs:
                p.start()
            reports: list[Sent] = [sent_q.get(timeout=TIMEOUT) for _ in range(senders)]
            done.set()
            seen: Seen = seen_q.get(timeout=TIMEOUT)
        finally:
            for p in procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
                    p.join()
    expected = {f"s{i}:{n}" for i in range(senders) for n in range(each)}
    total = len(expected)
    first = min(r.started for r in reports)
    last_send = max(r.finished for r in reports)
    return Row(
        design,
        load,
        senders,
        total,
        total / max(last_send - first, 1e-9),
        len(expected & seen.ids.keys()) / max(seen.last - first, 1e-9),
        len(expected - seen.ids.keys()),
        sum(c - 1 for c in seen.ids.values() if c > 1),
    )


HEADERS = ["design", "load", "senders", "sent", "sent/s", "delivered/s", "lost", "lost %", "dup"]


def table(rows: list[Row]) -> str:
    body = [HEADERS] + [
        [
            r.design,
            r.load,
            str(r.senders),
            str(r.sent),
            f"{r.send_rate:,.0f}",
            f"{r.delivered_rate:,.0f}",
            str(r.lost),
            f"{100 * r.lost / r.sent:.2f}",
            str(r.duplicated),
        ]
        for r in rows
    ]
    widths = [max(len(b[i]) for b in body) for i in range(len(HEADERS))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(body[0]), "  ".join("-" * w for w in widths), *map(line, body[1:])])


ARGS = argparse.Namespace()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--messages", type=int, default=500, help="per sender, flat out")
    parser.add_argument("--gap", type=float, default=0.005, help="seconds between paced sends")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced load")
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    parser.add_argument("--dir", default=None, help="folder for the store and inbox files")
    parser.add_argument("--quick", action="store_true", help="200 each flat out, 3 s paced")
    args = parser.parse_args(argv, namespace=ARGS)
    if args.quick:
        args.messages, args.seconds = 200, 3.0
    if args.senders < 1 or args.messages < 1 or args.gap <= 0 or args.seconds <= 0:
        sys.stderr.write("error: --senders, --messages, --gap and --seconds must be positive\n")
        return 2
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; synchronous={args.sync}; "
        f"paced: one message every {args.gap * 1000:g} ms per sender for {args.seconds:g} s\n"
    )
    rows = []
    for load_kind in ("flat out", "paced"):
        for design in ("accord", "file inbox"):
            rows.append(run(design, load_kind, args.senders, args.messages, args.sync))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
