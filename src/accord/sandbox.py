"""The wall around a command: a bubblewrap (``bwrap``) sandbox for bash tool calls and hooks.

``Sandbox`` builds the bwrap command line for one command, in an order where a later
mount wins over an earlier one:

1. a tmpfs root with every top-level folder of the machine bound read-only (symlinks
   kept as symlinks), a fresh ``/dev``, a ``/proc`` of the command's own PID namespace
   (no other process's ``/proc/PID/environ``), a private ``/tmp``, and the marker
   ``/.accord-sandbox``; the root is remounted read-only last, so the marker can be
   neither removed nor faked away, even by root (every capability is dropped);
2. the project's root, read-only (again: test projects live under ``/tmp``);
3. ``<root>/.accord`` hidden behind an empty tmpfs (the store, the notes, the
   worktrees), the store's own folder too when it is elsewhere and holds no work,
   for a PostgreSQL store its Unix-socket folders, the sockets that carry a person's
   powers (``/run/user``, ``SSH_AUTH_SOCK``, docker's), and the ``[sandbox] hide``
   paths;
4. the ``[sandbox] writable`` paths, then the writable folder itself (the member's
   worktree, which lives under the hidden ``.accord``, so it is bound after it);
5. in the root and the writable folder: ``accord.toml``, ``.mcp.json`` and ``.claude/`` read-only (a
   missing ``.claude/`` is an empty tmpfs, so nothing written there outlives the
   command) and ``.accord/`` hidden; the store file and its journals shown as empty
   and unwritable. A missing ``accord.toml`` in a writable folder is not guarded: the
   mount point would be left behind as an empty file (``accord init`` always makes one).

A ``postgresql://`` store over TCP is out of reach because the network namespace is
private (unless the network is allowed); one on a Unix socket is hidden only because
``/run/postgresql`` and ``/var/run/postgresql`` are: a socket elsewhere needs
``[sandbox] hide``. In worktree mode the project's ``.git`` is read-only with the rest
of the root, so a member cannot move the person's branches: commits happen outside,
at ``task_complete``.

Whether bwrap can run is probed once per process (``available``). Where it cannot,
``Sandbox.wrap`` refuses a teammate's command under ``[sandbox] required = true`` and
otherwise runs it as it is, with one warning per process for its caller to print and
log (the ``sandbox_unavailable`` event). The person's own commands are never refused.

A plain module of the ground floor: importable from any layer.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from accord.location import parse_location

if TYPE_CHECKING:
    from accord.config import SandboxConfig

# Exists only inside a sandbox, on a read-only root: the CLI's proof it runs in one.
MARKER = Path("/.accord-sandbox")
# Set inside too, for programs that only look at the environment.
ENV_FLAG = "ACCORD_SANDBOX"
# Overrides where bwrap is (a test points it at nothing to play "missing").
BWRAP_VARIABLE = "ACCORD_BWRAP"
JOURNALS = ("", "-wal", "-shm", "-journal")
POSTGRES_SOCKETS = ("/run/postgresql", "/var/run/postgresql")
# Unix sockets stay connectable on a read-only mount, so the ones that hand out a
# person's powers are hidden always: per-user agents (ssh, gpg, the session bus) and
# container engines (a way to root). ``SSH_AUTH_SOCK`` is hidden too, wherever it is.
ALWAYS_HIDDEN = (
    "/run/user",
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd",
    "/run/podman",
)
# Top-level entries the sandbox makes anew rather than binding.
_OWN = {"dev", "proc", "tmp", MARKER.name}
_INSTALL = (
    "install bubblewrap (`sudo apt-get install bubblewrap`, or ./install.sh) or set "
    "`[sandbox] required = false` in accord.toml to run them unsandboxed"
)


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether bwrap runs here; ``why`` it does not, in a few words."""

    ok: bool
    why: str = ""


@dataclass(frozen=True, slots=True)
class Wrapped:
    """A command as it will run (argv and environment), or ``refusal``: why it may not
    run at all; and a warning to print and log the first time either happens."""

    argv: list[str]
    env: dict[str, str]
    sandboxed: bool
    warning: str | None = None
    refusal: str | None = None


def bwrap_path() -> str | None:
    """The bwrap to run: ``ACCORD_BWRAP`` when set, else the one on PATH."""
    chosen = os.environ.get(BWRAP_VARIABLE)
    if chosen:
        return chosen
    return shutil.which("bwrap")


def available() -> Availability:
    """Whether bwrap is installed and the kernel lets it make namespaces (probed once per
    bwrap path and process)."""
    return _probe(bwrap_path())


@functools.cache
def _probe(path: str | None) -> Availability:
    if path is None or not os.access(path, os.X_OK):
        return Availability(False, "bubblewrap (bwrap) is not installed")
    argv = [path, *_system(), "--remount-ro", "/", *_namespaces(False), "--", "/bin/true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Availability(False, f"bubblewrap cannot start: {e}")
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        said = lines[-1] if lines else f"exit {done.returncode}"
        return Availability(False, f"bubblewrap is refused here ({said}; no user namespaces?)")
    return Availability(True)


def inside() -> bool:
    """True in a process that runs inside an accord sandbox. The marker cannot be removed
    from within, so unsetting the variable does not hide it."""
    return os.environ.get(ENV_FLAG) == "1" or MARKER.exists()


# What was said already in this process: (bwrap path, a teammate's or not, refused or not).
_warned: set[tuple[str | None, bool, bool]] = set()


@dataclass(frozen=True, slots=True)
class Sandbox:
    """The sandbox of one member or hook run: ``root`` readable, ``workdir`` writable,
    the store and accord's own files out of reach.

    ``teammate`` says whose commands these are: a teammate's are refused where bwrap is
    unavailable and ``required`` is true; the person's (hooks run by the person's own
    command) run unsandboxed then, with one warning.
    """

    root: Path
    workdir: Path
    store: str
    network: bool = False
    hide: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    required: bool = True
    teammate: bool = True

    @classmethod
    def for_project(
        cls,
        root: Path,
        workdir: Path,
        store: str,
        settings: SandboxConfig | None = None,
        *,
        network: bool = False,
        teammate: bool = True,
    ) -> Sandbox:
        """The sandbox for a project's settings (``[sandbox]``); ``network`` is what the
        agent definition allows, added to the settings'."""
        from accord.config import SandboxConfig

        s = settings if settings is not None else SandboxConfig()
        return cls(
            root=Path(os.path.realpath(root)),
            workdir=Path(os.path.realpath(workdir)),
            store=store,
            network=s.network or network,
            hide=tuple(_expanded(p) for p in s.hide),
            writable=tuple(_expanded(p) for p in s.writable),
            required=s.required,
            teammate=teammate,
        )

    def within(self, workdir: Path) -> Sandbox:
        """The same sandbox writing another folder (a hook's run in a scratch tree)."""
        return replace(self, workdir=Path(os.path.realpath(workdir)))

    def options(self, cwd: Path) -> list[str]:
        """bwrap's options (without the program and ``--``) for a command run in ``cwd``."""
        root, work = self.root, self.workdir
        args = _system()
        args += ["--ro-bind", str(root), str(root)]
        args += _hidden(root / ".accord")
        store = parse_location(self.store)
        store_file = None if store.is_url else Path(os.path.realpath(self.store))
        if store_file is not None:
            folder = store_file.parent
            # The whole folder is the surest wall (no journal can be made there), but only
            # when it holds no work and is not inside a folder bound writable later.
            open_ = (work, *self.writable)
            if not (
                _at_or_above(folder, root)
                or any(_at_or_above(folder, p) or _at_or_above(p, folder) for p in open_)
            ):
                args += _hidden(folder)
        if store.is_postgres:
            seen: set[str] = set()
            for socket_dir in POSTGRES_SOCKETS:
                real = os.path.realpath(socket_dir)
                if real not in seen and os.path.isdir(real):
                    seen.add(real)
                    args += ["--tmpfs", real]
        agent = os.environ.get("SSH_AUTH_SOCK")
        always = (*ALWAYS_HIDDEN, *([agent] if agent else []))
        for path in dict.fromkeys((*(Path(os.path.realpath(p)) for p in always), *self.hide)):
            if not any(_at_or_above(path, p) for p in (root, work)):
                args += _hidden(path)
        for path in self.writable:
            if path.exists():
                args += ["--bind", str(path), str(path)]
        args += ["--bind", str(work), str(work)]
        # Again in the writable folder (when it is the root, its bind undid the hiding);
        # the root's .accord is not hidden again: the member's worktree lives in it.
        for folder in dict.fromkeys((root, work)):
            args += _settings(folder)
        if not (work / ".claude").exists():
            # Nothing to bind read-only, so an empty tmpfs: whatever a command writes there
            # (hooks, permission rules) is gone when it ends. The folder it needs stays
            # behind, empty, which neither git nor Claude Code minds.
            args += ["--tmpfs", str(work / ".claude")]
        args += _hidden(work / ".accord")
        if store_file is not None:
            for suffix in JOURNALS:
                path = Path(f"{store_file}{suffix}")
                if path.exists():
                    args += ["--ro-bind", "/dev/null", str(path)]
        args += ["--remount-ro", "/"]
        args += _namespaces(self.network)
        args += ["--chdir", os.path.realpath(cwd)]
        return args

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The command's environment inside: ``env`` (already scrubbed of secrets) without
        the store's location, and with ``ACCORD_SANDBOX=1``."""
        inner = {k: v for k, v in env.items() if k != "ACCORD_STORE"}
        inner[ENV_FLAG] = "1"
        return inner

    def wrap(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Wrapped:
        """``argv`` run in the sandbox; where bwrap cannot run, ``argv`` as it is, or, for
        a teammate when the sandbox is required, ``refusal`` set (the caller refuses).
        ``warning`` says either, the first time in this process, for the caller to print
        and log."""
        path = bwrap_path()
        state = _probe(path)
        if state.ok and path is not None:
            return Wrapped([path, *self.options(cwd), "--", *argv], self.environment(env), True)
        refusal = None
        if self.teammate and self.required:
            refusal = f"{state.why}: teammates' commands run only in its sandbox; {_INSTALL}"
            said = refusal
        elif self.teammate:
            said = (
                f"{state.why}: teammates' commands run WITHOUT a sandbox ([sandbox] "
                "required = false); install bubblewrap to wall them in"
            )
        else:
            said = (
                f"{state.why}: the person's hooks run WITHOUT a sandbox (never refused for "
                "it); install bubblewrap to wall them in"
            )
        key = (path, self.teammate, refusal is not None)
        warning = None if key in _warned else said
        _warned.add(key)
        return Wrapped(list(argv), dict(env), False, warning, refusal)


def _expanded(text: str) -> Path:
    return Path(os.path.realpath(os.path.expanduser(text)))


def _at_or_above(folder: Path, path: Path) -> bool:
    """``folder`` is ``path`` or one of its parents."""
    return folder == path or folder in path.parents


def _hidden(path: Path) -> list[str]:
    """Options that make ``path`` invisible: an empty tmpfs over a folder, an empty
    unwritable file over a file."""
    if path.is_dir():
        return ["--tmpfs", str(path)]
    if path.exists():
        return ["--ro-bind", "/dev/null", str(path)]
    return []


def _settings(folder: Path) -> list[str]:
    """accord's and Claude Code's settings in ``folder`` (hooks, agent definitions),
    read-only."""
    args: list[str] = []
    for name in ("accord.toml", ".mcp.json", ".claude"):
        path = folder / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _system() -> list[str]:
    """The machine, read-only, on a tmpfs root that holds the marker."""
    args = ["--tmpfs", "/"]
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        if entry.name in _OWN:
            continue
        path = f"/{entry.name}"
        if entry.is_symlink():
            args += ["--symlink", os.readlink(path), path]
        elif entry.is_dir() or entry.is_file():
            args += ["--ro-bind", path, path]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", str(MARKER)]
    return args + _installation()


def _installation() -> list[str]:
    """accord's own Python and package, read-only, where the private ``/tmp`` would hide
    them (a clone or a virtual environment under ``/tmp``): a command must still find
    ``accord`` (to be refused clearly) and the interpreter its hooks name."""
    tmp = Path(os.path.realpath("/tmp"))
    own = (sys.prefix, sys.exec_prefix, sys.base_prefix, str(Path(__file__).parents[1]))
    found = [Path(os.path.realpath(p)) for p in own]
    under = [p for p in dict.fromkeys(found) if tmp in p.parents and p.is_dir()]
    return [a for p in under for a in ("--ro-bind", str(p), str(p))]


def _namespaces(network: bool) -> list[str]:
    args = ["--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if not network:
        args.append("--unshare-net")
    return args + ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
