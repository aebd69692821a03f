"""Time from a crashed member to its replacement working again.

A real run (supervisor, lead and one teammate as processes, scripted models)
is started; the teammate, mid task, is killed with SIGKILL; we time how long
until a new process for it reports itself working. With the default restart
backoff (1 s) most of that is the deliberate wait; the rest is noticing the
death and starting a Python process. The baseline, measured in the same run,
is a bare `python -c pass` start.

    python3 bench/restart.py [--backoff SECONDS] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from accord.store import open_store

MARK = "4244.5"


def once(root: Path, backoff: float) -> float:
    (root / ".accord").mkdir(parents=True)
    (root / "accord.toml").write_text(f"[run]\nrestart_backoff = {backoff}\ngrace = 3\n")
    lead = {
        "rules": [
            {
                "if": "# First wake",
                "once": True,
                "then": {
                    "tool_calls": [
                        {
                            "name": "spawn_teammate",
                            "arguments": {"name": "alice", "instructions": "go"},
                        },
                        {
                            "name": "task_create",
                            "arguments": {"title": "long", "assignee": "alice"},
                        },
                    ]
                },
            }
        ],
        "otherwise": {"text": "Waiting."},
    }
    mate = {
        "rules": [
            {
                "if": "Your task #1",
                "then": {
                    "tool_calls": [{"name": "bash", "arguments": {"command": f"exec sleep {MARK}"}}]
                },
            }
        ],
        "otherwise": {"text": "ok"},
    }
    (root / "lead.json").write_text(json.dumps(lead))
    (root / "mate.json").write_text(json.dumps(mate))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    sup = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "accord",
            "run",
            "bench",
            "--model",
            f"scripted:{root}/lead.json",
            "--teammate-model",
            f"scripted:{root}/mate.json",
            "--display",
            "plain",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = str(root / ".accord" / "accord.db")
    try:
        pid = wait_for(db, lambda m: m.status == "working" and m.pid is not None)
        time.sleep(0.3)  # let it reach its tool call
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_for(db, lambda m: m.status == "working" and m.pid not in (None, pid))
        return time.monotonic() - killed
    finally:
        sup.send_signal(signal.SIGINT)
        try:
            sup.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sup.kill()


def wait_for(db: str, check: object, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(db).exists():
            with open_store(db) as s:
                if s.list_teams():
                    try:
                        m = s.get_member("main", "alice")
                    except Exception:  # noqa: BLE001 - not spawned yet
                        m = None
                    if m is not None and check(m):  # type: ignore[operator]
                        return int(m.pid or 0)
        time.sleep(0.01)
    raise SystemExit("timed out waiting for alice")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backoff", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    starts = []
    for _ in range(5):
        t = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        starts.append(time.monotonic() - t)
    rows = []
    for backoff in sorted({args.backoff, 0.05}):
        times = []
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                times.append(once(Path(tmp), backoff))
        rows.append((backoff, statistics.median(times), max(times)))
    print(f"{'restart backoff s':>18} {'crash to working s (median)':>28} {'max s':>7}")
    for backoff, median, worst in rows:
        print(f"{backoff:>18.2f} {median:>28.3f} {worst:>7.3f}")
    print(f"baseline: a bare python start takes {statistics.median(starts):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
