"""What idle members cost: CPU and memory of 50, 100 and 200 waiting member processes.

Each member is a real ``accord agent`` process of one team, started the way a
supervisor starts one (``ACCORD_TEAM``, ``ACCORD_MEMBER``, ``ACCORD_TOKEN`` in its
environment), with nothing to do: no tasks, no mail. It waits for work the normal way.
By default its model is the scripted one; ``--model anthropic`` or ``--model openai``
gives it the real SDK adapter (with a dummy key and an unreachable base URL: an idle
member never calls its model), to show what an SDK costs a member's memory.

The baseline, in the same run and the same measurement window, is as many
``python3 -c "import time; time.sleep(N)"`` processes: an interpreter that does nothing.

CPU is utime + stime of every process from ``/proc/PID/stat`` at the start and end of
the window. Memory is ``VmRSS`` from ``/proc/PID/status`` and, where readable, ``Pss``
from ``/proc/PID/smaps_rollup`` (RSS with shared pages divided among the processes that
share them, so the PSS total is what the processes take together), read at the end.

Members start in batches of ``--batch``; the next batch starts once every member of
this one has said it is idle. Every process started is killed by its PID at the end,
on error and on Ctrl+C.

    python bench/idle.py                       # 50, 100, 200 members for 60 s each
    python bench/idle.py --quick               # 10 and 50 members for 10 s
    python bench/idle.py --counts 200 --seconds 30 --model anthropic
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEAM = "bench"
TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 120.0
MODELS = ("scripted", "anthropic", "openai")


# reading /proc -----------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of stat(5)


def memory_kb(pid: int) -> tuple[int, int | None]:
    """(VmRSS, Pss) of ``pid`` in kB; Pss is None where smaps_rollup cannot be read."""
    rss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    pss: int | None = None
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


# the processes -------------------------------------------------------------------


@dataclass
class Group:
    """Processes of one kind, measured together."""

    kind: str
    processes: list[subprocess.Popen[bytes]]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]


def make_project(
    root: Path, count: int, model: str, busy_timeout: float, settings: str = ""
) -> tuple[str, dict[str, str]]:
    """A team of ``count`` members in ``root`` (``settings``: more of accord.toml): the
    store location and each member's token."""
    from accord.store import open_store
    from accord.team.roster import Roster

    (root / "accord.toml").write_text(
        f'[team]\ndefault = "bench"\n[store]\nbusy_timeout = {busy_timeout}\n{settings}'
    )
    (root / ".accord").mkdir()
    location = str(root / ".accord" / "accord.db")
    tokens: dict[str, str] = {}
    with open_store(location, create=True) as store:
        store.create_team(TEAM)
        roster = Roster(store, TEAM)
        for i in range(count):
            new = roster.add(f"m{i:03d}", model=model)
            tokens[new.member.name] = new.token
    return location, tokens


def model_name(kind: str, root: Path) -> str:
    if kind == "scripted":
        script = root / "script.json"
        script.write_text("[]")  # never played: an idle member makes no call
        return f"scripted:{script}"
    if kind == "anthropic":
        return "anthropic:claude-sonnet-4-5"
    return "openai:gpt-5-mini"


def member_env(location: str, name: str, token: str) -> dict[str, str]:
    import accord

    env = dict(os.environ)
    # The accord this script imported, also in the members (whose folder is elsewhere, so
    # a relative PYTHONPATH=src would find another copy).
    source = str(Path(accord.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    env.update(
        ACCORD_TEAM=TEAM,
        ACCORD_MEMBER=name,
        ACCORD_TOKEN=token,
        ACCORD_STORE=location,
        # Never reached: an idle member does not call its model.
        ANTHROPIC_API_KEY="bench-not-a-key",
        ANTHROPIC_BASE_URL="http://127.0.0.1:9",
        OPENAI_API_KEY="bench-not-a-key",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
    )
    return env


def idle_members(location: str) -> set[str]:
    from accord.store import open_store

    with open_store(location) as store:
        return {m.name for m in store.list_members(TEAM) if m.status == "idle"}


class Forked:
    """A member started through the fork server, as the ``subprocess.Popen`` this script
    uses (``pid``, ``poll``, ``send_signal``, ``wait``, ``kill``)."""

    def __init__(self, child: Any, server: Any = None) -> None:
        self.child = child
        self.pid: int = child.pid
        self.server = server  # the fork server's own entry keeps its socket open

    def poll(self) -> int | None:
        return self.child.poll()  # type: ignore[no-any-return]

    def send_signal(self, sig: int) -> None:
        self.child.kill(sig)

    def wait(self, timeout: float | None = None) -> int:
        if not self.child.wait(timeout):
            raise subprocess.TimeoutExpired("accord agent", timeout or 0)
        return self.child.close()  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.child.close()


def start_members(
    root: Path,
    location: str,
    tokens: dict[str, str],
    model: str,
    batch: int,
    into: Group,
    forked: bool = False,
) -> None:
    """Start every member, ``batch`` at a time, each batch once the last is idle; with
    ``forked``, through a fork server (``[run] fork_members``), itself counted in
    ``into``."""
    names = sorted(tokens)
    log = open(root / "members.log", "ab")  # noqa: SIM115 - closed with the run's folder
    server = None
    if forked:
        from accord import process
        from accord.runtime.forks import ForkServer

        process.become_subreaper()  # members forked are adopted by this process
        server = ForkServer(sys.executable, root, member_env(location, "", ""), root / "forks.log")
        into.processes.append(Forked(server.child, server))  # type: ignore[arg-type]
    for first in range(0, len(names), batch):
        wave = names[first : first + batch]
        for name in wave:
            argv = ["agent", "--member", name, "--model", model]
            env = member_env(location, name, tokens[name])
            if server is not None:
                child = server.start(argv, cwd=root, env=env, log=log.fileno())
                into.processes.append(Forked(child))  # type: ignore[arg-type]
                continue
            into.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "accord", *argv],
                    cwd=root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not set(wave) <= idle_members(location):
            dead = [p for p in into.processes if p.poll() is not None]
            if dead:
                log.flush()
                tail = (root / "members.log").read_text(errors="replace").splitlines()[-5:]
                raise SystemExit(
                    f"error: {len(dead)} member(s) exited while starting; the log's end:\n"
                    + "\n".join(tail)
                )
            if time.monotonic() > deadline:
                raise SystemExit(f"error: members did not become idle in {START_TIMEOUT:.0f} s")
            time.sleep(0.2)  # polling the store from outside, as `accord status` would
    log.close()


def start_sleepers(count: int, seconds: float, into: Group) -> None:
    for _ in range(count):
        into.processes.append(
            subprocess.Popen(
                [sys.executable, "-c", f"import time; time.sleep({seconds + 600})"],
                stdin=subprocess.DEVNULL,
            )
        )


def stop(groups: list[Group]) -> None:
    """SIGTERM every process by PID, give them 15 s, then SIGKILL what is left."""
    everyone = [p for g in groups for p in g.processes]
    for p in everyone:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 15
    for p in everyone:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# measuring -----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    kind: str
    count: int
    cpu: float  # seconds, all processes together, over the window
    window: float
    rss_kb: int
    pss_kb: int | None

    def cells(self) -> list[str]:
        pss = self.pss_kb
        return [
            str(self.count),
            self.kind,
            f"{self.cpu:.2f}",
            f"{100 * self.cpu / self.window:.2f}",
            f"{1000 * self.cpu / self.window / self.count:.2f}",
            f"{self.rss_kb / 1024:.0f}",
            f"{self.rss_kb / 1024 / self.count:.1f}",
            "-" if pss is None else f"{pss / 1024:.0f}",
            "-" if pss is None else f"{pss / 1024 / self.count:.1f}",
        ]


def measure(groups: list[Group], seconds: float) -> list[Row]:
    before = {g.kind: sum(cpu_seconds(pid) for pid in g.pids) for g in groups}
    start = time.monotonic()
    time.sleep(seconds)  # the measurement window itself
    window = time.monotonic() - start
    rows = []
    for g in groups:
        alive = [p for p in g.processes if p.poll() is None]
        if len(alive) != len(g.processes):
            raise SystemExit(f"error: {len(g.processes) - len(alive)} {g.kind} process(es) died")
        cpu = sum(cpu_seconds(pid) for pid in g.pids) - before[g.kind]
        memory = [memory_kb(pid) for pid in g.pids]
        pss = [m[1] for m in memory]
        rows.append(
            Row(
                g.kind,
                len(g.processes),
                cpu,
                window,
                sum(m[0] for m in memory),
                None if None in pss else sum(p for p in pss if p is not None),
            )
        )
    return rows


def run_cell(
    count: int,
    seconds: float,
    model_kind: str,
    batch: int,
    settle: float,
    busy_timeout: float,
    forked: bool = False,
) -> list[Row]:
    how = "forked, server included" if forked else model_kind
    members = Group(f"accord agent ({how})", [])
    sleepers = Group("sleep (baseline)", [])
    with tempfile.TemporaryDirectory(prefix="accord-idle-") as folder:
        root = Path(folder)
        try:
            model = model_name(model_kind, root)
            location, tokens = make_project(root, count, model, busy_timeout)
            start_sleepers(count, seconds, sleepers)
            start_members(root, location, tokens, model, batch, members, forked)
            time.sleep(settle)  # let start-up work (first heartbeat, imports) finish
            return measure([members, sleepers], seconds)
        finally:
            stop([members, sleepers])


HEADERS = [
    "members",
    "processes",
    "CPU s",
    "% of a core",
    "ms CPU/s each",
    "RSS MB",
    "RSS MB each",
    "PSS MB",
    "PSS MB each",
]


def table(rows: list[Row]) -> str:
    body = [HEADERS] + [r.cells() for r in rows]
    widths = [max(len(b[i]) for b in body) for i in range(len(HEADERS))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 1 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(body[0]), "  ".join("-" * w for w in widths), *map(line, body[1:])])


def machine() -> str:
    load = os.getloadavg()
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="50,100,200", help="member counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    parser.add_argument("--quick", action="store_true", help="10 and 50 members for 10 s")
    parser.add_argument("--model", choices=MODELS, default="scripted")
    parser.add_argument("--batch", type=int, default=10, help="members started at a time")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument(
        "--busy-timeout",
        type=float,
        default=5.0,
        help="the members' [store] busy_timeout (accord's default 5 s)",
    )
    parser.add_argument(
        "--start",
        choices=("fresh", "forked", "both"),
        default="fresh",
        help="members started as fresh processes, through a fork server, or both ways",
    )
    args = parser.parse_args(argv)
    try:
        counts = [int(c) for c in args.counts.split(",")]
    except ValueError:
        sys.stderr.write(f"error: --counts {args.counts!r}: give whole numbers, e.g. 50,100\n")
        return 2
    if args.quick:
        counts, args.seconds = [10, 50], 10.0
    if any(c < 1 for c in counts) or args.seconds <= 0 or args.batch < 1:
        sys.stderr.write("error: --counts, --seconds and --batch must be positive\n")
        return 2
    print(machine())
    print(
        f"model: {args.model}; window: {args.seconds:.0f} s; started {args.batch} at a time; "
        f"busy_timeout {args.busy_timeout:g} s\n"
    )
    rows: list[Row] = []
    ways = {"fresh": [False], "forked": [True], "both": [False, True]}[args.start]
    for count in counts:
        for forked in ways:
            rows += run_cell(
                count,
                args.seconds,
                args.model,
                args.batch,
                args.settle,
                args.busy_timeout,
                forked,
            )
            print(table(rows[-2:]), flush=True)
            print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
