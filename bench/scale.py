"""Scale: 200 scripted members doing short tasks, beside the same work done by 10.

Each member is a real ``accord agent`` process of one team, started the way a
supervisor starts one and left to become idle. Then ``--tasks`` tasks (1,000) go on the
board at once, and the members claim and do them the normal way. A task is two turns
of a scripted model whose every call takes ``--delay`` seconds (50 ms, a simulated
server): the first answers with one tool call (``task_complete``), the second, seeing
its result, ends the turn. The run ends when every task is completed.

The baseline is the same work, in the same run, done by 10 members.

| column | meaning |
| --- | --- |
| wall s | from the tasks going on the board to the last one completed |
| turns | model calls made (the store's usage rows) |
| turns/s | turns / wall s |
| bound turns/s | what the model's delay alone allows: members / delay |
| CPU s | CPU seconds of every member process over the run (start-up excluded) |
| ms CPU/turn | framework CPU per turn: CPU s / turns (the model's delay is a sleep, no CPU) |

    python bench/scale.py                      # 10 and 200 members, 1,000 tasks
    python bench/scale.py --quick              # 5 and 40 members, 200 tasks
    python bench/scale.py --counts 10,50,200 --tasks 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from idle import Group, cpu_seconds, machine, start_members, stop
from idle import make_project as make_team

TEAM = "bench"
RUN_TIMEOUT = 900.0


def make_project(root: Path, count: int, tasks: int, delay: float) -> tuple[str, dict[str, str]]:
    """A team of ``count`` members whose model is a rules script for ``tasks`` tasks."""
    rules = [
        {
            "if": f"Your task #{i}:",
            "then": {
                "tool_calls": [
                    {"name": "task_complete", "arguments": {"task_id": i, "result": "ok"}}
                ]
            },
        }
        for i in range(1, tasks + 1)
    ]
    script = root / "model.json"
    script.write_text(json.dumps({"rules": rules, "otherwise": {"text": "Done."}, "delay": delay}))
    return make_team(
        root, count, f"scripted:{script}", 60, settings="[learning]\nenabled = false\n"
    )


def run_cell(count: int, tasks: int, delay: float, batch: int) -> dict[str, float]:
    from accord.store import open_store
    from accord.types import NewTask, PlannedTask, TaskStatus

    members = Group("accord agent", [])
    with tempfile.TemporaryDirectory(prefix="accord-scale-") as folder:
        root = Path(folder)
        try:
            location, tokens = make_project(root, count, tasks, delay)
            model = f"scripted:{root / 'model.json'}"
            start_members(root, location, tokens, model, batch, members)
            time.sleep(2.0)  # start-up work (first heartbeat, imports) done
            before = sum(cpu_seconds(pid) for pid in members.pids)
            with open_store(location) as store:
                began = time.monotonic()
                store.add_tasks(
                    TEAM,
                    [PlannedTask(NewTask(f"task {i}")) for i in range(1, tasks + 1)],
                    max_attempts=3,
                )
                while True:
                    done = len(store.list_tasks(TEAM, status=TaskStatus.COMPLETED))
                    if done >= tasks:
                        break
                    dead = [p for p in members.processes if p.poll() is not None]
                    if dead:
                        raise SystemExit(f"error: {len(dead)} member(s) exited mid-run")
                    if time.monotonic() - began > RUN_TIMEOUT:
                        raise SystemExit(f"error: {done} of {tasks} done in {RUN_TIMEOUT:.0f} s")
                    time.sleep(0.2)  # polling from outside, as `accord status` would
                wall = time.monotonic() - began
                used = sum(cpu_seconds(pid) for pid in members.pids) - before
                turns = store.usage_totals(TEAM)[0].calls
        finally:
            stop([members])
    return {"members": count, "wall": wall, "turns": turns, "cpu": used, "delay": delay}


def table(rows: list[dict[str, float]]) -> str:
    headers = ["members", "wall s", "turns", "turns/s", "bound turns/s", "CPU s", "ms CPU/turn"]
    body = [headers] + [
        [
            f"{r['members']:.0f}",
            f"{r['wall']:.1f}",
            f"{r['turns']:.0f}",
            f"{r['turns'] / r['wall']:.1f}",
            f"{r['members'] / r['delay']:.0f}",
            f"{r['cpu']:.1f}",
            f"{1000 * r['cpu'] / r['turns']:.1f}",
        ]
        for r in rows
    ]
    widths = [max(len(b[i]) for b in body) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="10,200", help="member counts (10,200)")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per cell (1000)")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per model call")
    parser.add_argument("--batch", type=int, default=10, help="members started at a time")
    parser.add_argument("--quick", action="store_true", help="5 and 40 members, 200 tasks")
    args = parser.parse_args(argv)
    counts = [5, 40] if args.quick else [int(c) for c in args.counts.split(",")]
    tasks = 200 if args.quick else args.tasks
    print(machine())
    print(f"run: {tasks} tasks of two turns each, {args.delay * 1000:g} ms per model call")
    print()
    rows = []
    for count in counts:
        rows.append(run_cell(count, tasks, args.delay, args.batch))
        print(table(rows), flush=True)
        print()
    base, *rest = rows
    for r in rest:
        ratio = (r["cpu"] / r["turns"]) / (base["cpu"] / base["turns"])
        speed = (r["turns"] / r["wall"]) / (base["turns"] / base["wall"])
        print(
            f"{r['members']:.0f} members beside {base['members']:.0f}: {speed:.1f}x the turns/s, "
            f"{ratio:.2f}x the framework CPU per turn"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
