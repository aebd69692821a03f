"""What streaming model output costs: store writes and time per model call, and the wake-ups
of an idle teammate while a neighbour streams.

Part 1, a long reply (``--words`` words, default 1,600: about 2,000 tokens, which the fake
server streams as 400 deltas of four words, ``--pace`` seconds apart, default 10 ms, so
the reply takes about 4 s as a model's would) through the real ``openai`` SDK and the fake
server, the way an agent makes it:

- plain: ``stream = false``, one whole reply (the same-run baseline);
- streamed: ``stream = true``, deltas to a listener that does nothing;
- streamed + live: with the agent's ``LivePublisher`` writing the text so far to a
  SQLite store at most every 0.25 s (what a member does);
- a write per delta: the same publisher with no throttle, what "a commit per token"
  would cost.

Added time is the median call's time minus plain's median: for the paced reply it is
what a viewer gains (the first words after milliseconds instead of at the end) set
against what the call costs more. The same table with ``--pace 0`` shows the pure
overhead of parsing events and writing.

Part 2, an idle member blocked in ``wake.wait()`` for ``--idle`` seconds (default 5), on
SQLite and (when a server is found) PostgreSQL, counting how often it re-runs its real
query (``pending_work``): alone; beside a neighbour publishing its live output every
``--every`` seconds (default 0.05: a busy team of a dozen streaming members); and beside
a neighbour making an ordinary write to the store as often (what live output would cost
the waiter if it moved the change marker).

    python bench/stream.py
    python bench/stream.py --quick        # 3 calls a row, 2 s of waiting
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

TEAM = "bench"
CTX = mp.get_context("spawn")


# part 1: one long reply ------------------------------------------------------------


def reply_rows(folder: Path, words: int, pace: float, calls: int) -> list[tuple[str, float, float]]:
    """(row, median seconds per call, store writes per call) for each way of calling."""
    from accord.agent.live import LivePublisher
    from accord.llm.base import ChatMessage, ModelRequest, StreamListener
    from accord.llm.openai import OpenAIModel
    from accord.store import open_store
    from accord.team.log import Log
    from accord.testing.fake_llm import FakeOpenAI

    text = " ".join(["word"] * words)
    request = ModelRequest("You are terse.", (ChatMessage("user", "write"),))
    store = open_store(str(folder / f"reply-{pace:g}.db"), create=True)
    store.create_team(TEAM)
    store.add_member(TEAM, "alice", token_hash="bench")
    log = Log(store, TEAM)
    rows: list[tuple[str, float, float]] = []
    with FakeOpenAI() as fake:
        fake.event_delay = pace
        fake.otherwise().say(text, usage={"prompt_tokens": 20, "completion_tokens": words})
        for label, streaming, every in (
            ("plain (stream = false)", False, None),
            ("streamed, no listener", True, None),
            ("streamed + live, every 0.25 s", True, 0.25),
            ("streamed + live, a write per delta", True, 0.0),
        ):
            model = OpenAIModel("gpt-5-mini", api_key="k", base_url=fake.base_url, stream=streaming)
            if not streaming:
                # A whole reply comes as fast as the server writes it; a paced stream's
                # plain twin waits as long as the model took to write it all.
                fake.event_delay = 0.0
            times: list[float] = []
            writes: list[int] = []
            for _ in range(calls):
                listener: StreamListener = StreamListener()
                publisher = None
                if every is not None:
                    publisher = LivePublisher(log, "alice", 1, every=every)
                    listener = publisher
                start = time.perf_counter()
                response = model.stream(request, listener)
                if publisher is not None:
                    publisher.clear()
                if not streaming:
                    time.sleep(pace * (words // 4))  # the model's writing time, unseen
                times.append(time.perf_counter() - start)
                assert response.message.text == text
                writes.append(publisher.writes + 1 if publisher and publisher.writes else 0)
            fake.event_delay = pace
            model.close()
            rows.append((label, statistics.median(times), statistics.median(writes)))
    store.close()
    return rows


# part 2: an idle waiter beside a streaming neighbour -------------------------------


def waiter(location: str, seconds: float, conn: Connection) -> None:
    """Wait with nothing to do; report how many times the real query ran."""
    from accord.store import open_store
    from accord.team.wake import wait

    store = open_store(location)
    looks = [0]
    real = store.pending_work

    def counted(team: str, member: str) -> Any:
        looks[0] += 1
        return real(team, member)

    store.pending_work = counted  # type: ignore[method-assign]
    conn.send("ready")
    conn.recv()
    wake = wait(store, TEAM, "waiter", timeout=seconds)
    conn.send((wake.reason, looks[0]))
    store.close()


def neighbour(location: str, kind: str, every: float, seconds: float, conn: Connection) -> None:
    """Publish live output (or make an ordinary write) every ``every`` seconds."""
    from accord.store import open_store

    store = open_store(location)
    conn.send("ready")
    conn.recv()
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        if kind == "live":
            store.set_live(TEAM, "streamer", 1, "word " * n, ())
        else:
            store.update_member(TEAM, "streamer", heartbeat=True)
        time.sleep(every)  # pacing the load, not synchronising anything
    if kind == "live":
        store.clear_live(TEAM, "streamer")
    conn.send(n)
    store.close()


def looks_per_second(location: str, kind: str, every: float, seconds: float) -> float:
    w_parent, w_child = CTX.Pipe()
    n_parent, n_child = CTX.Pipe()
    procs = [CTX.Process(target=waiter, args=(location, seconds, w_child), daemon=True)]
    if kind != "alone":
        procs.append(
            CTX.Process(
                target=neighbour, args=(location, kind, every, seconds, n_child), daemon=True
            )
        )
    try:
        for p in procs:
            p.start()
        assert w_parent.recv() == "ready"
        if kind != "alone":
            assert n_parent.recv() == "ready"
            n_parent.send("go")
        w_parent.send("go")
        reason, looks = w_parent.recv()
        if reason != "timeout":
            raise SystemExit(f"error: the idle waiter woke for {reason!r}")
    finally:
        for p in procs:
            p.join(seconds + 10)
            if p.is_alive():
                p.kill()
                p.join()
    return float(looks) / seconds


def setup(location: str) -> None:
    from accord.store import open_store

    with open_store(location, create=True) as store:
        store.create_team(TEAM)
        for name in ("waiter", "streamer"):
            store.add_member(TEAM, name, token_hash="bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=1600, help="words in the reply (1600)")
    parser.add_argument("--pace", type=float, default=0.01, help="seconds between deltas")
    parser.add_argument("--calls", type=int, default=5, help="calls per row (5)")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of waiting (5)")
    parser.add_argument("--every", type=float, default=0.05, help="neighbour's write gap")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--quick", action="store_true", help="3 calls a row, 2 s of waiting")
    parser.add_argument("--dir", default=None, help="folder for the databases (default: tmp)")
    args = parser.parse_args(argv)
    calls = 3 if args.quick else args.calls
    idle = 2.0 if args.quick else args.idle

    from claims import machine  # the same machine description as bench/claims.py

    with tempfile.TemporaryDirectory(prefix="accord-bench-", dir=args.dir) as tmp:
        folder = Path(tmp)
        for line in machine(folder):
            print(line)
        deltas = (args.words + 3) // 4
        print(
            f"run:     a reply of {args.words} words (~{args.words * 5 // 4} tokens) in {deltas} "
            f"deltas; median of {calls} calls; the real openai SDK and the fake server"
        )
        for pace in (0.0, args.pace):
            print()
            paced = f"deltas {pace * 1000:g} ms apart" if pace else "deltas as fast as they go"
            header = f"{'model call, ' + paced:<42}{'s/call':>9}{'added ms':>10}{'writes':>8}"
            print(header)
            print("-" * len(header))
            rows = reply_rows(folder, args.words, pace, calls)
            base = rows[0][1]
            for label, seconds, writes in rows:
                print(f"{label:<42}{seconds:>9.3f}{(seconds - base) * 1000:>10.1f}{writes:>8g}")
        print()
        print(
            f"idle waiter: looks (pending_work queries) per second over {idle:g} s; "
            f"the neighbour writes every {args.every * 1000:g} ms"
        )
        header = f"{'backend':<10}{'alone':>8}{'live neighbour':>16}{'store-write neighbour':>23}"
        print(header)
        print("-" * len(header))
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        for backend in backends:
            if backend == "sqlite":
                location, release = str(folder / "wait.db"), None
            else:
                from accord.testing import pg

                url, why = pg.find_server(None)
                if url is None:
                    print(f"{'postgres':<10}  skipped: {why}")
                    continue
                database = pg.Throwaway(url, prefix="accord_bench")
                release = database
                location = database.schema()[1]
            try:
                setup(location)
                cells = [looks_per_second(location, k, args.every, idle)
                         for k in ("alone", "live", "store")]  # fmt: skip
            finally:
                if release is not None:
                    release.close()
            print(f"{backend:<10}{cells[0]:>8.1f}{cells[1]:>16.1f}{cells[2]:>23.1f}", flush=True)
        print()
        print("writes: store writes per reply (live rows and the clear); added ms: against plain")
    return 0


if __name__ == "__main__":
    sys.exit(main())
