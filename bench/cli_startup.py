"""How long one ``accord`` command takes, start to exit, beside ``python -c pass``.

Agents and hooks call the command line all the time, mostly to read, so a read
must cost little more than starting Python does. Each command runs in a
scratch project (a team, two members, a few tasks, a message and its events),
``--runs`` times after one warm-up, and the table shows the median, the fastest
and the slowest wall time, the median CPU time (user + system: what a loaded
machine inflates least), and the median wall time minus Python's own start.

Two forms: ``python -m accord`` and the console script pip installs (the same
three lines setuptools writes, with this interpreter). Both run the code of the
checkout this file is in. Bytecode is cached in a scratch folder, as an
installed package has it (``--no-bytecode`` compiles every module each time, as
``PYTHONDONTWRITEBYTECODE`` without a cache does).

    python bench/cli_startup.py              # 20 runs of each, about a minute
    python bench/cli_startup.py --quick      # 5 runs of each
    python bench/cli_startup.py --events 20000   # on a long run's log
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
COMMANDS = [
    ["--version"],
    ["--help"],
    ["status"],
    ["task", "list"],
    ["msg", "inbox"],
    ["events"],
]
AIM_MS = 150.0
SCRIPT = """\
#!{python}
import re
import sys
from accord.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run."""
    start, spent = time.perf_counter(), cpu()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    took, used = time.perf_counter() - start, cpu() - spent
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()}")
    return took, used


def measure(argv: list[str], runs: int, env: dict[str, str], cwd: Path) -> list[float]:
    """Median wall, min wall, max wall and median CPU milliseconds of ``runs`` runs."""
    timed(argv, env, cwd)  # warm-up: fills the bytecode cache and the page cache
    wall, used = zip(*(timed(argv, env, cwd) for _ in range(runs)), strict=True)
    return [
        1000 * x for x in (statistics.median(wall), min(wall), max(wall), statistics.median(used))
    ]


LONG_LOG = """\
import sys
from accord.store import open_store
with open_store(".accord/accord.db") as s:
    for n in range(int(sys.argv[1])):
        s.append_event("bench", "model_call", {"model": "m", "tokens_in": 900, "n": n}, "alice")
        if n % 50 == 0:
            s.append_event("bench", "messages_acked", {"ids": [n]}, "alice")
"""


def scratch(folder: Path, env: dict[str, str], events: int = 0) -> None:
    def accord(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "accord", *args],
            env=env,
            cwd=folder,
            check=True,
            capture_output=True,
        )

    accord("init", "--team", "bench")
    accord("member", "add", "alice")
    accord("member", "add", "bob")
    for title in ("design the schema", "write the migration", "review the migration"):
        accord("task", "add", title)
    accord("msg", "send", "--from", "alice", "--to", "person", "the schema is ready")
    if events:  # a long run's log: model call after model call, now and then an ack
        subprocess.run(
            [sys.executable, "-c", LONG_LOG, str(events)], env=env, cwd=folder, check=True
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each (default 20)")
    parser.add_argument("--quick", action="store_true", help="5 runs of each")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile every module on every run"
    )
    parser.add_argument(
        "--events",
        type=int,
        default=0,
        metavar="N",
        help="first add N events to the scratch team's log, as a long run leaves",
    )
    args = parser.parse_args(argv)
    runs = 5 if args.quick else args.runs

    from claims import machine  # the same machine description as bench/claims.py

    with tempfile.TemporaryDirectory(prefix="accord-cli-bench-") as tmp:
        folder = Path(tmp) / "project"
        folder.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONPYCACHEPREFIX", None)
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        script = Path(tmp) / "accord"
        script.write_text(SCRIPT.format(python=sys.executable))
        script.chmod(0o755)
        scratch(folder, env, args.events)

        for line in machine(folder):
            print(line)
        print(f"code:    {SRC}")
        print(f"bytecode: {'compiled every run' if args.no_bytecode else 'cached'}")
        if args.events:
            print(f"log:     {args.events} events added to the scratch team's")
        print(f"runs:    {runs} of each, after one warm-up; milliseconds of wall time")
        print()
        base = measure([sys.executable, "-c", "pass"], runs, env, folder)
        head = (
            f"{'command':<34} {'median':>7} {'min':>7} {'max':>7} {'cpu':>7} "
            f"{'-python':>8}  aim {AIM_MS:.0f} ms"
        )
        print(head)
        print("-" * len(head))
        print(f"{'python -c pass':<34} " + " ".join(f"{x:7.1f}" for x in base))
        forms = (("python -m accord", [sys.executable, "-m", "accord"]), ("accord", [str(script)]))
        for form, prefix in forms:
            for command in COMMANDS:
                took = measure([*prefix, *command], runs, env, folder)
                mark = "ok" if took[0] <= AIM_MS else "over"
                print(
                    f"{form + ' ' + ' '.join(command):<34} "
                    + " ".join(f"{x:7.1f}" for x in took)
                    + f" {took[0] - base[0]:8.1f}  {mark}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
