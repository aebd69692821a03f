"""Doorbells: how a write wakes exactly the members it concerns, without anyone polling.

A waiting member holds a ``Bell``; a store rings the bells of the members a commit
concerns, after it committed, and a waiter blocks in the kernel until its bell rings or
its next deadline comes (``accord.team.wake``). Which members a commit concerns is
read off the events it wrote (``targets``): the recipients of a message, everyone
who could claim a task that became ready, and the members who wait for any change of
the team (a lead: they listen with ``watch``).

On SQLite (one machine) a bell is a Unix datagram socket bound in the team's folder
under the user's runtime folder (``Doorbells``):

- a ring is one ``sendto`` that never blocks: a few microseconds, no disk write, no
  fsync, and nothing for a waiter to read unless it is for it;
- a full socket buffer means a ring is already waiting, so a ring is dropped, never
  queued twice (rings coalesce);
- a dead waiter's socket refuses the ring (``ECONNREFUSED``) and is removed, so a
  killed member leaves nothing that slows the next ring;
- the folder is the user's own (mode 0700), so nobody else can ring or listen.

inotify on doorbell files was the other choice: it needs a write to the file system
per ring and ``ctypes`` (Python has no binding), and leaves files to clean up;
datagrams carry the same news with less work and work on any Unix.

A ring can still be lost (a socket removed by a race, a folder that cannot be made,
rings while nobody listens). That costs a waiter one recheck, never a wake-up: the
waiter looks at the store itself every ``recheck`` seconds whatever happens
(``[mailbox] recheck``), so mail is only ever late by that much, never lost.

On PostgreSQL the same ``targets`` go out as ``NOTIFY`` on the team's channel, with
the members named in the payload (``accord.store.postgres``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import select
import socket
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from accord.events import EventKind

#: A ring for everyone in the team who waits (``targets``).
EVERYONE = "*"

#: Events that make no member's wait end: nothing becomes claimable and no mail
#: arrives. Only watchers (members that wait for any change, like the lead) are rung.
QUIET = frozenset(
    {
        EventKind.MEMBER_UPDATED,
        EventKind.TASK_CLAIMED,
        EventKind.FILES_CLAIMED,
        EventKind.FILES_RELEASED,
        EventKind.MESSAGES_DELIVERED,
        EventKind.MESSAGES_ACKED,
        EventKind.MODEL_CALL,
        EventKind.USAGE_SUSPECT,
        EventKind.MEMORY_ADDED,
        EventKind.MEMORY_REINFORCED,
        EventKind.LESSON_RECORDED,
        EventKind.LESSONS_CONFIRMED,
        EventKind.MEMORY_RETIRED,
        EventKind.MEMORIES_IMPORTED,
        EventKind.CONTINUITY_WRITTEN,
        EventKind.SKILL_USED,
        EventKind.HOOK_RUN,
        EventKind.HOOK_BROKEN,
        EventKind.SANDBOX_UNAVAILABLE,
        EventKind.MCP_CALL,
        EventKind.CONTEXT_WINDOW_LEARNED,
        EventKind.CONTEXT_COMPACTED,
        EventKind.PERMISSION_ALLOWED,
        EventKind.PERMISSION_DENIED,
        EventKind.DEFINITION_UNSUPPORTED,
        EventKind.WORKTREE_MADE,
        EventKind.MEMBER_SYNCED,
        EventKind.SUPERVISOR_STARTED,
        EventKind.SPAWN_TAKEN,
        EventKind.SPAWN_STARTED,
        EventKind.HOST_JOINED,
    }
)


def targets(kind: str, payload: dict[str, object]) -> frozenset[str]:
    """Whom an event concerns: member names, ``EVERYONE``, or nobody but the watchers
    (empty). A kind not known to be quiet rings everyone: a ring too many costs one
    look at the store, a ring too few costs a recheck interval."""
    if kind in QUIET:
        return frozenset()
    if kind == EventKind.TASK_COMPLETED and payload.get("unblocked") == []:
        return frozenset()  # nothing waited behind it: nothing new to claim
    if kind == EventKind.MESSAGE_SENT and "channel" not in payload:
        to = payload.get("to")
        if isinstance(to, str) and to != EVERYONE:
            return frozenset({to})
    return frozenset({EVERYONE})


class Bell:
    """What a waiter blocks on. ``wait`` returns True when it rang (and takes every ring
    that arrived), False when ``timeout`` passed. ``deaf`` says why rings cannot reach
    it (the waiter then looks at the store on a short poll instead)."""

    @property
    def deaf(self) -> str | None:
        return None

    def wait(self, timeout: float) -> bool:
        raise NotImplementedError

    def ring(self) -> None:
        """Ring it from inside this process (a stop asked for by a signal or a thread)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop listening; nobody can ring it any more."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBell(Bell):
    """A bell rung from inside this process: by a thread that hears the rings for it
    (PostgreSQL's), or only by a stop asked for (``DeafBell``)."""

    def __init__(self) -> None:
        self._rung = threading.Event()

    def wait(self, timeout: float) -> bool:
        rung = self._rung.wait(max(0.0, timeout))
        self._rung.clear()
        return rung

    def ring(self) -> None:
        self._rung.set()


class DeafBell(EventBell):
    """A bell no write can ring (the mechanism is unavailable): waits on its own ring."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self._why = why

    @property
    def deaf(self) -> str | None:
        return self._why


class SocketBell(Bell):
    """A Unix datagram socket bound in its team's folder (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(str(path))
            self._sock.setblocking(False)
        except OSError:
            self._sock.close()
            raise

    def wait(self, timeout: float) -> bool:
        if self._take():
            return True
        try:
            readable, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
        except (OSError, ValueError):  # closed by another thread
            return False
        return bool(readable) and self._take()

    def _take(self) -> bool:
        took = False
        while True:
            try:
                self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return took
            except OSError:
                return took
            took = True

    def ring(self) -> None:
        _send(str(self.path))

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        # Leave no empty folder behind: its kind's, its team's, its store's (a folder
        # another waiter still uses is not empty, and rmdir leaves it).
        folder = self.path.parent
        for _ in range(3):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


class Doorbells:
    """The bells of one SQLite store: ``<runtime>/accord-<uid>/<store>/<team id>/``, a
    folder ``m`` of members' bells and one ``w`` of watchers', each bell named
    ``<member hash>.<pid>.<random>`` (a member may wait in several threads at once)."""

    def __init__(self, store_path: Path) -> None:
        key = hashlib.sha1(str(store_path.resolve()).encode("utf-8", "surrogatepass"))
        self.root = _runtime() / key.hexdigest()[:16]
        self._swept: set[Path] = set()  # folders whose dead bells this process removed

    def listen(self, team_id: int, member: str, *, watch: bool) -> Bell:
        folder = self.root / str(team_id) / ("w" if watch else "m")
        path = folder / f"{_hash(member)}.{os.getpid()}.{secrets.token_hex(4)}"
        if len(os.fsencode(path)) > 100:  # a Unix socket's path holds 107 bytes
            return DeafBell(f"the bell's path {path} is too long for a Unix socket")
        for _ in range(3):
            try:
                _private(folder)
                if folder not in self._swept:  # once per folder and process: cheap
                    _sweep(folder)
                    self._swept.add(folder)
                return SocketBell(path)
            except FileNotFoundError:
                continue  # another bell's close took the empty folder away meanwhile
            except OSError as e:
                return DeafBell(f"cannot make a bell in {folder}: {e.strerror or e}")
        return DeafBell(f"cannot make a bell in {folder}: it keeps disappearing")

    def ring(self, team_id: int, members: Iterable[str]) -> None:
        """Ring ``members`` (``EVERYONE`` for all) of the team, and its watchers."""
        team = self.root / str(team_id)
        wanted = set(members)
        _ring_folder(team / "w", None)
        if wanted:
            everyone = EVERYONE in wanted
            _ring_folder(team / "m", None if everyone else {_hash(m) for m in wanted})


def _ring_folder(folder: Path, hashes: set[str] | None) -> None:
    try:
        entries = os.scandir(folder)
    except OSError:
        return  # nobody of them waits (or ever waited) here
    with entries:
        for entry in entries:
            if hashes is None or entry.name.split(".", 1)[0] in hashes:
                _send(entry.path)


_sender: socket.socket | None = None
_sender_lock = threading.RLock()  # a signal handler may ring while its thread sends


def _send(path: str) -> None:
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender.setblocking(False)
        try:
            _sender.sendto(b"!", path)
        except OSError as e:
            if e.errno == errno.ECONNREFUSED:  # its waiter died: nobody will listen again
                with contextlib.suppress(OSError):
                    os.unlink(path)
            # EAGAIN/ENOBUFS: its buffer is full, so it has rings waiting already;
            # ENOENT: it stopped listening meanwhile.


def _sweep(folder: Path) -> None:
    """Remove the bells of processes that are gone (killed before they could)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            pid = entry.name.split(".")[1] if entry.name.count(".") == 2 else ""
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _hash(member: str) -> str:
    return hashlib.sha1(member.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _runtime() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    if len(base) > 40:  # leave room for the rest of a socket's path
        base = "/tmp"
    return Path(base) / f"accord-{os.getuid()}"


def _private(folder: Path) -> None:
    """Make ``folder`` under the user's own runtime folder, which nobody else may own."""
    top = _runtime()
    top.mkdir(mode=0o700, exist_ok=True)
    if top.stat().st_uid != os.getuid():
        raise OSError(errno.EPERM, f"{top} belongs to another user")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
