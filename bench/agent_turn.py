"""Framework time per agent turn (everything but the model call), and one idle agent's cost.

Turns: one member works N tasks with the scripted model, each task two model
calls (``task_complete``, then a closing text reply), so 2N turns. A turn is
one pass of the loop that makes a model call: taking in mail, finding or
claiming work, building the request, saving the reply, running the tools,
saving their results, recording usage. The model's ``complete`` is wrapped
to time what is spent inside it; framework time is the pass's wall time minus
that. The first turns (imports, caches) are discarded as warm-up.

The baseline is one store write transaction (``store.append_event``) on the
same file with the same ``synchronous`` setting, so a turn reads as "this many
transactions' worth". The SQL each turn runs is counted through sqlite3's
trace callback, in a separate pass so the counting does not cost the timing.

Idle: ``python -m accord agent`` against a store with no tasks, so it waits
for work. After it settles, its CPU time over a few seconds of idling is read
from /proc/PID/stat and its memory from /proc/PID/status (VmRSS, VmHWM); then
SIGTERM, which it must answer by exiting 0 with its member marked stopped.
Bare ``python`` is the memory floor. Provider SDK rows load the real SDK
(a dummy key, a closed local port) but never call it: there is no work.

    python bench/agent_turn.py                  # 200 tasks, FULL and NORMAL, idle 3 s
    python bench/agent_turn.py --quick          # 50 tasks, FULL only, idle 1 s, scripted only
    python bench/agent_turn.py --profile        # also cProfile the turns and print the top
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accord.agent.launch import build_agent
from accord.agent.loop import Agent
from accord.config import Config, parse_config
from accord.llm.base import Model, ModelRequest, ModelResponse
from accord.llm.scripted import ScriptedModel, call, reply
from accord.store import Store, open_store
from accord.team import TeamServices
from accord.types import MemberRole, NewTask

TEAM = "bench"
MEMBER = "worker"
AIM_MS = 5.0
WARMUP_TASKS = 10
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


# turns ----------------------------------------------------------------------------------


class TimedModel(Model):
    """Delegates to another model and adds up the time spent inside its ``complete``."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_window = inner.context_window
        self.inside = 0.0
        self.calls = 0

    def complete(self, request: ModelRequest) -> ModelResponse:
        t0 = time.perf_counter()
        try:
            return self.inner.complete(request)
        finally:
            self.inside += time.perf_counter() - t0
            self.calls += 1


@dataclass
class TurnRun:
    framework_ms: list[float]
    model_ms: list[float]
    statements: Counter[str]
    store_calls: Counter[str]
    turns_counted: int


def make_store(folder: Path, sync: str, tasks: int) -> Store:
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(str(folder / "accord.db"), create=True, synchronous=sync)  # type: ignore[arg-type]
    store.create_team(TEAM)
    store.add_member(TEAM, "lead", token_hash="x", role=MemberRole.LEAD)
    store.add_member(TEAM, MEMBER, token_hash="x")
    for i in range(tasks):
        store.add_task(TEAM, NewTask(f"task {i}", "do the thing, then complete it"), max_attempts=3)
    return store


def scripted_for(agent_ref: list[Agent], tasks: int) -> ScriptedModel:
    """Two steps per task: complete the task the member holds, then end the turn."""

    def complete_held(request: ModelRequest) -> Any:
        conv = agent_ref[0].conversation
        assert conv is not None and conv.task_id is not None
        return reply("", call("task_complete", {"task_id": conv.task_id, "result": "done"}))

    steps: list[Any] = []
    for _ in range(tasks):
        steps += [complete_held, reply("Completed.")]
    return ScriptedModel(steps, name="scripted:bench")


def kind_of(sql: str) -> str:
    word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    if word == "BEGIN":
        return "BEGIN IMMEDIATE" if "IMMEDIATE" in sql.upper() else "BEGIN (read)"
    return word


def run_turns(
    folder: Path,
    sync: str,
    tasks: int,
    *,
    trace: bool = False,
    profile: cProfile.Profile | None = None,
    cache_specs: bool = False,
) -> TurnRun:
    total = tasks + WARMUP_TASKS
    store = make_store(folder, sync, total)
    config = Config() if sync == "full" else parse_config('[store]\nsynchronous = "normal"\n')
    services = TeamServices.open(store, TEAM, config, folder)
    ref: list[Agent] = []
    timed = TimedModel(scripted_for(ref, total))
    agent = build_agent(services, MEMBER, config, folder, model=timed, idle_wait=0.01)
    ref.append(agent)
    if cache_specs:
        # What-if, in this process only: the tool schemas built once instead of every turn.
        specs = agent.toolbox.specs()
        agent.toolbox.specs = lambda: list(specs)  # type: ignore[method-assign]

    statements: Counter[str] = Counter()
    store_calls: Counter[str] = Counter()
    db = getattr(store, "_db", None)  # private, for the statement count only
    if trace:
        if db is not None:
            db.set_trace_callback(lambda sql: statements.update([kind_of(sql)]))
        count_calls(store, store_calls)

    framework: list[float] = []
    model: list[float] = []
    inner_step: Callable[[bool], Any] = agent._step

    def step(once: bool) -> Any:
        before_inside, before_calls = timed.inside, timed.calls
        t0 = time.perf_counter()
        if profile is not None:
            profile.enable()
        try:
            return inner_step(once)
        finally:
            if profile is not None:
                profile.disable()
            wall = time.perf_counter() - t0
            if timed.calls - before_calls == 1:
                spent = timed.inside - before_inside
                framework.append((wall - spent) * 1000)
                model.append(spent * 1000)

    agent._step = step  # type: ignore[method-assign]
    outcome = agent.run(once=True)
    if outcome.reason != "idle":
        raise SystemExit(f"the agent stopped early: {outcome}")
    done = sum(1 for t in store.list_tasks(TEAM) if t.status == "completed")
    if done != total:
        raise SystemExit(f"only {done} of {total} tasks completed")
    if db is not None:
        db.set_trace_callback(None)
    store.close()
    warm = 2 * WARMUP_TASKS
    return TurnRun(framework[warm:], model[warm:], statements, store_calls, len(framework) - warm)


def count_calls(store: Store, counts: Counter[str]) -> None:
    """Count calls to the store's public methods (every holder shares this one object)."""
    api = {n for n in dir(Store) if not n.startswith("_") and callable(getattr(Store, n))}
    for name in sorted(api - {"close", "clock"}):
        method = getattr(store, name)

        def counted(*a: Any, _m: Any = method, _n: str = name, **kw: Any) -> Any:
            counts[_n] += 1
            return _m(*a, **kw)

        setattr(store, name, counted)


def specs_cost(folder: Path) -> float:
    """Milliseconds for one ``Toolbox.specs()`` of the default definition (every tool)."""
    store = make_store(folder, "normal", 0)
    agent = build_agent(
        TeamServices.open(store, TEAM, Config(), folder),
        MEMBER,
        Config(),
        folder,
        model=ScriptedModel(),
    )
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        agent.toolbox.specs()
        times.append((time.perf_counter() - t0) * 1000)
    store.close()
    return statistics.median(times[5:])


def write_baseline(folder: Path, sync: str, n: int) -> list[float]:
    """Milliseconds of one ``append_event`` (one IMMEDIATE transaction) on a fresh store."""
    store = make_store(folder, sync, 0)
    times: list[float] = []
    payload = {"member": MEMBER, "note": "baseline"}
    for i in range(n + 20):
        t0 = time.perf_counter()
        store.append_event(TEAM, "bench", payload, MEMBER)
        if i >= 20:
            times.append((time.perf_counter() - t0) * 1000)
    store.close()
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# idle process ------------------------------------------------------------------------


@dataclass
class Idle:
    label: str
    rss_mb: float
    hwm_mb: float
    cpu_pct: float | None
    stop_s: float | None
    exit_code: int | None
    status: str


def proc_status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def kb_to_mb(value: str) -> float:
    return int(value.split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) state".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACCORD_", "ANTHROPIC_", "OPENAI_"))
    }
    env.update(extra)
    return env


def idle_agent(folder: Path, label: str, model: str, env: dict[str, str], idle_s: float) -> Idle:
    db = folder / "accord.db"
    store = make_store(folder, "full", 0)
    (folder / "EMPTY.json").write_text("[]")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "accord",
            "agent",
            "--store",
            str(db),
            "--team",
            TEAM,
            "--member",
            MEMBER,
            "--model",
            model,
        ],  # fmt: skip
        cwd=folder,
        env=clean_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while store.get_member(TEAM, MEMBER).pid != proc.pid:
            if proc.poll() is not None:
                raise SystemExit(f"{label}: the agent exited early: {proc.communicate()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: the agent did not start in {START_TIMEOUT:.0f} s")
            time.sleep(0.02)
        time.sleep(0.5)  # let its first pass (claim attempt, idle hook) finish
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(idle_s)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        status = proc_status(proc.pid)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=STOP_TIMEOUT)
        stop_s = time.monotonic() - sent
        member = store.get_member(TEAM, MEMBER).status.value
        if proc.returncode != 0:
            member += f" (stderr: {err.strip()[-200:]!r})"
        return Idle(
            label,
            kb_to_mb(status["VmRSS"]),
            kb_to_mb(status["VmHWM"]),
            100 * (c1 - c0) / (t1 - t0),
            stop_s,
            proc.returncode,
            member,
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        store.close()


def bare_python() -> Idle:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.stdout.write('up\\n'); sys.stdout.flush(); sys.stdin.read()",
        ],  # fmt: skip
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.readline()
        status = proc_status(proc.pid)
        proc.stdin.close()
        proc.wait(timeout=STOP_TIMEOUT)
        return Idle(
            "bare python (floor)",
            kb_to_mb(status["VmRSS"]),
            kb_to_mb(status["VmHWM"]),
            None,
            None,
            None,
            "-",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# report ---------------------------------------------------------------------------------


def filesystem(folder: Path) -> str:
    best, kind = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if str(folder.resolve()).startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def print_profile(profile: cProfile.Profile, turns: int, top: int) -> None:
    for order, restrict, what in (
        ("tottime", (), "own time, everything"),
        ("cumulative", ("accord",), "cumulative time, accord's functions"),
    ):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats(order).print_stats(*restrict, top)
        print(f"cProfile of {turns} turns, top {top} by {what} (seconds are totals):")
        lines = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        for line in lines[start:]:
            if line.strip():
                print("  " + shorten(line.rstrip())[:160])
        print()


def shorten(line: str) -> str:
    for prefix in (str(Path(__file__).resolve().parents[1] / "src") + "/", sys.prefix):
        line = line.replace(prefix, "")
    return line.replace("lib/python3.11/site-packages/", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks to work (2 turns each)")
    parser.add_argument("--quick", action="store_true", help="50 tasks, FULL, 1 s idle")
    parser.add_argument("--sync", default=None, help="synchronous modes (default full,normal)")
    parser.add_argument("--idle", type=float, default=None, help="seconds of idling to measure")
    parser.add_argument("--profile", action="store_true", help="cProfile the turns")
    parser.add_argument("--dir", default=None, help="folder for the stores (default: tmp)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    tasks = 50 if args.quick else args.tasks
    syncs = (args.sync or ("full" if args.quick else "full,normal")).split(",")
    idle_s = args.idle if args.idle is not None else (1.0 if args.quick else 3.0)

    with tempfile.TemporaryDirectory(prefix="accord-turn-", dir=args.dir) as tmp:
        root = Path(tmp)
        print(f"python:  {platform.python_version()} on {platform.system()} {platform.machine()}")
        print(f"cpus:    {os.cpu_count()}; store on {filesystem(root)} ({root})")
        print(f"run:     {tasks} tasks = {2 * tasks} turns (+{WARMUP_TASKS} warm-up tasks)")
        print()
        figures: dict[str, Any] = {"tasks": tasks, "turns": {}, "idle": []}
        header = (
            f"{'case':<22}{'turns':>6}{'framework ms':>14}{'p90 ms':>8}{'p99 ms':>8}"
            f"{'model ms':>10}{'write txn ms':>14}{'p99 ms':>8}{'turn/txn':>10}"
            f"  aim < {AIM_MS:g} ms"
        )
        print(header)
        print("-" * len(header))
        worst = 0.0
        cases = [(sync, sync, False) for sync in syncs]
        cases += [(f"{sync}, specs cached*", sync, True) for sync in syncs]
        baselines: dict[str, tuple[float, float]] = {}
        for label, sync, cached in cases:
            turn = run_turns(root / f"turns-{label}", sync, tasks, cache_specs=cached)
            if sync not in baselines:
                base = write_baseline(root / f"write-{sync}", sync, 500)
                baselines[sync] = statistics.median(base), pct(base, 99)
            bmed, bp99 = baselines[sync]
            med, p99 = statistics.median(turn.framework_ms), pct(turn.framework_ms, 99)
            if not cached:
                worst = max(worst, med, p99)
            verdict = "met" if p99 < AIM_MS else ("median met" if med < AIM_MS else "MISSED")
            print(
                f"{label:<22}{turn.turns_counted:>6}{med:>14.3f}"
                f"{pct(turn.framework_ms, 90):>8.2f}{p99:>8.2f}"
                f"{statistics.median(turn.model_ms):>10.3f}{bmed:>14.3f}{bp99:>9.3f}"
                f"{med / bmed:>10.1f}  {verdict}"
            )
            figures["turns"][label] = {
                "turns": turn.turns_counted,
                "framework_median_ms": med,
                "framework_p90_ms": pct(turn.framework_ms, 90),
                "framework_p99_ms": p99,
                "model_median_ms": statistics.median(turn.model_ms),
                "write_txn_median_ms": bmed,
                "write_txn_p99_ms": bp99,
            }
        build = specs_cost(root / "specs")
        print(
            "* what-if, not accord as shipped: Toolbox.specs() answered from a list built once; "
            f"building it costs {build:.2f} ms (median) and happens on every turn today"
        )
        figures["toolbox_specs_ms"] = build
        print("model ms: time inside the scripted model's complete (not framework time)")
        print()

        counted = run_turns(root / "trace", syncs[0], tasks, trace=True)
        turns_total = counted.turns_counted + 2 * WARMUP_TASKS
        per = {k: v / turns_total for k, v in counted.statements.most_common()}
        print(f"SQL per turn ({syncs[0]}, averaged over {turns_total} turns):")
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
        calls = {k: v / turns_total for k, v in counted.store_calls.most_common()}
        print("store calls per turn:")
        print("  " + ", ".join(f"{k} {v:.2f}" for k, v in calls.items()))
        figures["sql_per_turn"] = per
        figures["store_calls_per_turn"] = calls
        print()

        if args.profile or worst >= AIM_MS:
            if not args.profile:
                print(f"p99 {worst:.2f} ms is over the aim of {AIM_MS:g} ms: profiling")
            profile = cProfile.Profile()
            run_turns(root / "profile", syncs[0], tasks, profile=profile)
            print_profile(profile, 2 * (tasks + WARMUP_TASKS), 18)

        rows = [bare_python()]
        specs: list[tuple[str, str, dict[str, str]]] = [
            ("agent, scripted model", "scripted:EMPTY.json", {}),
        ]
        if not args.quick:
            specs += [
                (
                    "agent, anthropic SDK",
                    "anthropic:claude-sonnet-4-5",
                    {
                        "ANTHROPIC_API_KEY": "dummy-never-sent",
                        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
                    },
                ),
                ("agent, openai SDK (local)", "openai:qwen3@http://127.0.0.1:9/v1", {}),
            ]
        for n, (label, model, env) in enumerate(specs):
            rows.append(idle_agent(root / f"idle-{n}", label, model, env, idle_s))
        header = (
            f"{'idle process':<28}{'RSS MB':>8}{'peak MB':>9}{'CPU %':>7}"
            f"{'stop s':>8}{'exit':>6}  member after"
        )
        print(f"idle: {idle_s:g} s of waiting for work, then SIGTERM")
        print(header)
        print("-" * len(header))
        for r in rows:
            cpu = "-" if r.cpu_pct is None else f"{r.cpu_pct:.2f}"
            stop = "-" if r.stop_s is None else f"{r.stop_s:.2f}"
            code = "-" if r.exit_code is None else str(r.exit_code)
            print(
                f"{r.label:<28}{r.rss_mb:>8.1f}{r.hwm_mb:>9.1f}{cpu:>7}{stop:>8}{code:>6}"
                f"  {r.status}"
            )
            figures["idle"].append(r.__dict__)
        print("stop s: from SIGTERM to exit; CPU %: of one core while idle")
        if args.json:
            print(json.dumps(figures, indent=2))
    bad = [r for r in rows[1:] if r.exit_code != 0 or r.status != "stopped"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
