"""Scheduling: the makespan of a random DAG of tasks run by simulated members, against
the lower bound ``max(critical path, total work / members)``.

A discrete-event simulation drives the real store (SQLite): every idle member calls
``claim_task``, so the store's claim order picks; time is simulated, so each task
completes after its simulated duration, in that order, and every idle member tries
to claim again at each completion. The store never sees the durations (nor does it in
a real run).

    python bench/schedule.py                      # 500 tasks, 16 members, 3 seeds, 4 shapes
    python bench/schedule.py --seeds 5 --shapes layered
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import tempfile
from pathlib import Path

TEAM = "sched"


def dag(shape: str, n: int, seed: int) -> tuple[list[tuple[int, ...]], list[float]]:
    """Blockers (as indexes of earlier tasks) and durations of ``n`` tasks.

    layered: 10 layers, each task blocked by 1-3 tasks of the layer before;
    random: each task blocked by 0-3 earlier tasks, chosen anywhere before it;
    chains: a few long chains beside many independent short tasks (where picking
    the long chains first matters most); fans: two long chains beside four tasks that
    each block 60 others, so more tasks wait behind a fan's root than behind a chain's
    head, though the chain is the longer path."""
    rng = random.Random(seed)
    blockers: list[tuple[int, ...]] = []
    if shape == "layered":
        width = n // 10
        for i in range(n):
            layer = i // width
            if layer == 0:
                blockers.append(())
                continue
            before = range((layer - 1) * width, layer * width)
            blockers.append(tuple(sorted(rng.sample(before, rng.randint(1, 3)))))
    elif shape == "random":
        for i in range(n):
            k = min(i, rng.randint(0, 3))
            blockers.append(tuple(sorted(rng.sample(range(i), k))))
    elif shape == "chains":
        chains, length = 4, 40
        for i in range(n):
            if i < chains * length and i % length:
                blockers.append((i - 1,))
            else:
                blockers.append(())
    else:  # fans: wide fans of short work beside long chains, which counts mislead on
        length, fan = 40, 60
        for i in range(n):
            if i < 2 * length and i % length:
                blockers.append((i - 1,))  # two chains of 40
            elif 2 * length <= i < 2 * length + 4:
                blockers.append(())  # four fan roots
            elif 2 * length + 4 <= i < 2 * length + 4 + 4 * fan:
                blockers.append((2 * length + (i - 2 * length - 4) // fan,))
            else:
                blockers.append(())
    durations = [rng.uniform(1.0, 10.0) for _ in range(n)]
    return blockers, durations


def lower_bound(blockers: list[tuple[int, ...]], durations: list[float], members: int) -> float:
    finish: list[float] = []
    for i, bs in enumerate(blockers):
        finish.append(max((finish[b] for b in bs), default=0.0) + durations[i])
    return max(max(finish), sum(durations) / members)


def simulate(shape: str, n: int, members: int, seed: int, folder: Path) -> tuple[float, float]:
    """The makespan the store's claim order reaches, and the lower bound."""
    from accord.store import open_store
    from accord.types import NewTask

    blockers, durations = dag(shape, n, seed)
    path = str(folder / f"{shape}-{seed}.db")
    now = [0.0]
    with open_store(path, create=True, synchronous="off", clock=lambda: now[0]) as store:  # type: ignore[arg-type]
        store.create_team(TEAM)
        names = [f"m{i}" for i in range(members)]
        for name in names:
            store.add_member(TEAM, name, token_hash="bench")
        ids: dict[int, int] = {}
        # Added in a random order that keeps blockers first, so a task's age says
        # nothing about its place in the graph.
        rng = random.Random(seed + 1)
        ready = [i for i, bs in enumerate(blockers) if not bs]
        waiting = {i: len(bs) for i, bs in enumerate(blockers)}
        children: dict[int, list[int]] = {}
        for i, bs in enumerate(blockers):
            for b in bs:
                children.setdefault(b, []).append(i)
        while ready:
            i = ready.pop(rng.randrange(len(ready)))
            task = store.add_task(
                TEAM,
                NewTask(title=f"t{i}", blocked_by=tuple(ids[b] for b in blockers[i])),
                max_attempts=1,
            )
            ids[i] = task.id
            for c in children.get(i, ()):
                waiting[c] -= 1
                if not waiting[c]:
                    ready.append(c)
        index = {task_id: i for i, task_id in ids.items()}
        running: list[tuple[float, str, int, int]] = []
        idle = list(names)
        done = 0
        while done < n:
            still: list[str] = []
            for name in idle:
                claim = store.claim_task(TEAM, name, lease_seconds=1e9)
                if claim is None:
                    still.append(name)
                    continue
                end = now[0] + durations[index[claim.task.id]]
                heapq.heappush(running, (end, name, claim.task.id, claim.fencing_token))
            idle = still
            end, name, task_id, token = heapq.heappop(running)
            now[0] = end
            store.complete_task(TEAM, task_id, name, token, "ok")
            idle.append(name)
            done += 1
    return now[0], lower_bound(blockers, durations, members)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shapes", default="layered,random,chains,fans")
    args = parser.parse_args(argv)
    print(f"{args.tasks} tasks, {args.members} members; durations uniform 1-10 (simulated)")
    header = f"{'shape':<9}{'seed':>5}{'makespan':>10}{'bound':>9}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="accord-sched-") as folder:
        for shape in args.shapes.split(","):
            for seed in range(args.seeds):
                span, bound = simulate(shape, args.tasks, args.members, seed, Path(folder))
                worst = max(worst, span / bound)
                print(
                    f"{shape:<9}{seed:>5}{span:>10.1f}{bound:>9.1f}{span / bound:>7.3f}", flush=True
                )
    verdict = "meets" if worst <= 1.05 else "misses"
    print(f"worst ratio {worst:.3f} ({verdict} the aim of <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
