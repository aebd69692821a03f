"""accord.process on its own: a group killed whole, grandchildren included; the head and
tail of an output kept within a limit; a group that dies with the process that started
it, even by ``kill -9`` and even while asked politely to end; and what a sentinel must
not keep open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from accord import process
from accord.process import Capture

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists() or not Path(process.BASH).exists(),
    reason="needs /proc and /bin/bash",
)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _group(pgid: int) -> list[int]:
    """Live processes of group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _read_pids(path: Path) -> list[int]:
    _until(lambda: path.exists() and len(path.read_text().split()) >= 2)
    return [int(p) for p in path.read_text().split()]


def test_closing_kills_the_whole_group_grandchildren_included(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The leader waits on a child, which left a grandchild of its own in the background.
    script = f"sh -c 'sleep 1000 & echo $! >> {pids}; wait' & echo $! >> {pids}; wait"
    with process.start(["/bin/sh", "-c", script]) as child:
        kin = _read_pids(pids)
        assert all(_alive(p) for p in kin)
        assert not child.wait(0.1)  # still running
        assert child.pid in _group(child.pid)
    assert child.returncode == -signal.SIGKILL
    _until(lambda: not any(_alive(p) for p in kin) and not _group(child.pid))


def test_a_group_is_killed_after_its_leader_exits_and_wait_leaves_it_unreaped(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 1000 & echo $! $$ > {pids}; exit 3"
    child = process.start(["/bin/sh", "-c", script])
    assert child.wait(10)
    assert child.returncode is None  # unreaped: its pid is the group's id still
    assert Path(f"/proc/{child.pid}").exists()
    left = _read_pids(pids)[0]
    assert _alive(left)  # the background sleep outlived the leader...
    assert child.close() == 3
    assert child.close() == 3  # twice does no harm
    _until(lambda: not _alive(left))  # ...until the group was closed


def test_capture_keeps_the_head_and_the_tail_and_counts_the_rest() -> None:
    text = b"".join(b"%05d\n" % i for i in range(10000))  # 60,000 bytes
    with process.start(
        ["/bin/sh", "-c", "i=0; while [ $i -lt 10000 ]; do printf '%05d\\n' $i; i=$((i+1)); done"],
        stdout=subprocess.PIPE,
    ) as child:
        assert child.popen.stdout is not None
        output = Capture(child.popen.stdout, 12, 18)
        assert child.wait(30)
    output.join(10)
    assert output.total == len(text)
    assert output.head == text[:12] == b"00000\n00001\n"
    assert output.tail == text[-18:] == b"09997\n09998\n09999\n"
    assert output.cut == len(text) - 30
    assert output.held <= 12 + 2 * 18 + 65536


def test_capture_of_a_short_output_keeps_all_of_it() -> None:
    with process.start(["/bin/sh", "-c", "echo hello"], stdout=subprocess.PIPE) as child:
        assert child.popen.stdout is not None
        output = Capture(child.popen.stdout, 3, 100)
        child.wait(10)
    output.join(10)
    assert (output.head, output.tail, output.cut, output.total) == (b"hel", b"lo\n", 0, 6)


_PARENT = textwrap.dedent(
    """
    import signal, sys, time
    from accord import process

    pids, tethered, polite = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
    # The command ignores SIGTERM, as a slow one may; a grandchild sleeps behind it.
    script = f"trap '' TERM; sleep 1000 & echo $$ $! > {pids}; wait"
    child = process.start(["/bin/sh", "-c", script], die_with_parent=tethered)
    if polite:  # asked to end, and killed during the grace: the group must still go
        while not child.wait(0.05) and len(open(pids).read().split()) < 2:
            pass
        child.kill(signal.SIGTERM)
    time.sleep(1000)
    """
)


def _parent(tmp_path: Path, tethered: bool, polite: bool = False) -> tuple[list[int], int]:
    pids = tmp_path / "pids"
    pids.write_text("")
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(pids), "1" if tethered else "0", "1" if polite else "0"]
    )
    try:
        kin = _read_pids(pids)
        time.sleep(0.2)  # the SIGTERM, if any, has landed
        assert all(_alive(p) for p in kin)
    finally:
        parent.kill()  # kill -9: nothing of the parent's runs after this
        parent.wait()
    return kin, kin[0]


@pytest.mark.parametrize("polite", [False, True], ids=["running", "during-grace"])
def test_a_group_dies_with_the_process_that_started_it(tmp_path: Path, polite: bool) -> None:
    kin, pgid = _parent(tmp_path, tethered=True, polite=polite)
    _until(lambda: not any(_alive(p) for p in kin) and not _group(pgid))


def test_without_the_tether_the_group_outlives_its_starter(tmp_path: Path) -> None:
    kin, pgid = _parent(tmp_path, tethered=False)
    try:
        time.sleep(0.5)
        assert all(_alive(p) for p in kin)  # what the tether prevents
    finally:
        os.killpg(pgid, signal.SIGKILL)


def test_the_sentinel_keeps_no_descriptor_handed_to_the_process(tmp_path: Path) -> None:
    read, write = os.pipe()  # a pipe of secrets, say
    try:
        with process.start(["/bin/sh", "-c", "exec sleep 1000"], pass_fds=(read,)) as child:
            pipe = os.readlink(f"/proc/self/fd/{read}")

            def holders() -> list[int]:
                found = []
                for pid in _group(child.pid):
                    try:
                        fds = os.listdir(f"/proc/{pid}/fd")
                    except OSError:
                        continue
                    for fd in fds:
                        try:
                            if os.readlink(f"/proc/{pid}/fd/{fd}") == pipe:
                                found.append(pid)
                        except OSError:
                            pass
                return found

            _until(lambda: len(_group(child.pid)) == 2)  # the command and its sentinel
            assert holders() == [child.pid]
    finally:
        os.close(read)
        os.close(write)


def test_end_asks_politely_then_kills_after_the_grace() -> None:
    polite = process.start(["/bin/sh", "-c", "sleep 1000"])
    stubborn = process.start(["/bin/sh", "-c", "trap '' TERM; sleep 1000 & wait"])
    time.sleep(0.2)  # the trap is set
    started = time.monotonic()
    assert process.end([polite, stubborn], grace=1.0)
    took = time.monotonic() - started
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert 1.0 <= took < 10
    _until(lambda: not _group(polite.pid) and not _group(stubborn.pid))


def test_a_program_that_cannot_start_is_an_error_and_leaks_no_descriptor(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError):
        process.start(["true"], cwd=tmp_path / "missing")
    assert len(os.listdir("/proc/self/fd")) == before


_SUBREAPER = textwrap.dedent(
    """
    import sys, time
    from accord import process

    process.become_subreaper()
    # setsid: the sleep leaves the group, so killing the group cannot reach it.
    with process.start(["/bin/sh", "-c", f"setsid sleep 1000 & echo $! > {sys.argv[1]}"]) as child:
        child.wait(10)
    while not open(sys.argv[1]).read().strip():
        time.sleep(0.01)
    escaped = int(open(sys.argv[1]).read())
    time.sleep(0.2)  # its shell is gone: it is ours now
    process.reap_orphans(keep=set())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        process.reap_orphans(keep=set())
        try:
            open(f"/proc/{escaped}/stat")
        except OSError:
            print("reaped", escaped)
            break
        time.sleep(0.05)
    """
)


def test_a_subreaper_ends_and_reaps_what_escaped_a_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "escaped"
    pid_file.write_text("")
    done = subprocess.run(
        [sys.executable, "-c", _SUBREAPER, str(pid_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    escaped = int(pid_file.read_text())
    try:
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["reaped", str(escaped)]
    finally:
        if _alive(escaped):
            os.kill(escaped, signal.SIGKILL)
