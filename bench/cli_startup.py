"""How long one ``accord`` command takes, start to exit, beside ``python -c pass``.

Agents and hooks call the command line all the time, mostly to read, so a read
must cost little more than starting Python does. Each command runs in a
scratch project (a team, two members, a few tasks, a message and its events),
``--runs`` times after one warm-up, and the table shows the median, the fastest
and the slowest wall time, and the median minus Python's own start.

Two forms: ``python -m accord`` and the console script pip installs (the same
three lines setuptools writes, with this interpreter). Both run the code of the
checkout this file is in. Bytecode is cached in a scratch folder, as an
installed package has it (``--no-bytecode`` compiles every module each time, as
``PYTHONDONTWRITEBYTECODE`` without a cache does).

    python bench/cli_startup.py              # 20 runs of each, about a minute
    python bench/cli_startup.py --quick      # 5 runs of each
"""

from __future__ import annotations

import argparse
import os
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


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()}")
    return took


def measure(argv: list[str], runs: int, env: dict[str, str], cwd: Path) -> list[float]:
    timed(argv, env, cwd)  # warm-up: fills the bytecode cache and the page cache
    return [timed(argv, env, cwd) for _ in range(runs)]


def scratch(folder: Path, env: dict[str, str]) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each (default 20)")
    parser.add_argument("--quick", action="store_true", help="5 runs of each")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile every module on every run"
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
        scratch(folder, env)

        for line in machine(folder):
            print(line)
        print(f"code:    {SRC}")
        print(f"bytecode: {'compiled every run' if args.no_bytecode else 'cached'}")
        print(f"runs:    {runs} of each, after one warm-up; milliseconds of wall time")
        print()
        base = measure([sys.executable, "-c", "pass"], runs, env, folder)
        base_ms = statistics.median(base) * 1000
        head = f"{'command':<36} {'median':>7} {'min':>7} {'max':>7} {'-python':>8}  aim"
        print(head)
        print("-" * len(head))
        print(
            f"{'python -c pass':<36} {base_ms:7.1f} {min(base) * 1000:7.1f} "
            f"{max(base) * 1000:7.1f} {'':>8}"
        )
        for form, prefix in (
            ("python -m accord", [sys.executable, "-m", "accord"]),
            ("accord", [str(script)]),
        ):
            for command in COMMANDS:
                took = measure([*prefix, *command], runs, env, folder)
                median = statistics.median(took) * 1000
                label = f"{form} {' '.join(command)}"
                mark = "ok" if median <= AIM_MS else f"over {AIM_MS:.0f}"
                print(
                    f"{label:<36} {median:7.1f} {min(took) * 1000:7.1f} "
                    f"{max(took) * 1000:7.1f} {median - base_ms:8.1f}  {mark}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
