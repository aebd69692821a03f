"""The one way accord runs ``git``: an argv in, a checked result out.

Every call runs with ``-c core.hooksPath=/dev/null`` (a project's own git hooks must
not run inside the merge gate, which commits for members), in an environment
without ``GIT_DIR``, ``GIT_WORK_TREE`` or ``GIT_INDEX_FILE`` (a variable inherited
from a person's shell or a hook would point git at another repository), and with
an author and committer set, so that commits work where no git identity is
configured at all (CI has none). A failure is a ``GitError`` carrying git's stderr.
The errors of git, the worktrees and the merge gate (``GitError``, ``NotARepository``,
``MergeRefused``, ``MergeBusy``) are in ``accord.errors``'s tree and importable here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from accord.errors import GitError, MergeBusy, MergeRefused, NotARepository

__all__ = [
    "Done",
    "GitError",
    "MergeBusy",
    "MergeRefused",
    "NotARepository",
    "git",
    "has_commit",
    "is_ancestor",
    "rev",
    "toplevel",
]

# What accord's own commits (the gate's, sync's) are signed with, whoever runs them.
IDENTITY = {
    "GIT_AUTHOR_NAME": "accord",
    "GIT_AUTHOR_EMAIL": "accord@localhost",
    "GIT_COMMITTER_NAME": "accord",
    "GIT_COMMITTER_EMAIL": "accord@localhost",
}
# Variables that would point git somewhere else than the folder it is given.
_DROPPED = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
)


@dataclass(frozen=True, slots=True)
class Done:
    """A finished git command: its exit code and output (stdout stripped of its last
    newline)."""

    returncode: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def environment(extra: Mapping[str, str] | None = None, *, identity: bool = True) -> dict[str, str]:
    """The environment git runs in: this process's, less the variables that would
    redirect it, plus accord's identity (unless ``identity`` is False) and ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"  # git's messages are parsed in places: no translations
    if identity:
        env.update(IDENTITY)
    if extra:
        env.update(extra)
    return env


def git(
    cwd: Path,
    *args: str,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    identity: bool = True,
    ok_codes: Sequence[int] = (0,),
) -> Done:
    """Run ``git ARGS`` in ``cwd``; a code outside ``ok_codes`` raises GitError when
    ``check`` (the default)."""
    argv = ["git", "-c", "core.hooksPath=/dev/null", "-c", "core.quotePath=false", *args]
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            env=environment(env, identity=identity),
            check=False,
        )
    except FileNotFoundError as e:
        if not Path(cwd).is_dir():
            raise GitError(f"cannot run git in {cwd}: no such folder") from None
        raise GitError("git is not installed (no `git` on PATH)") from e
    result = Done(done.returncode, done.stdout.removesuffix("\n"), done.stderr.strip())
    if check and done.returncode not in ok_codes:
        said = result.err or result.out or f"exit code {done.returncode}"
        raise GitError(
            f"git {' '.join(args[:3])} failed in {cwd}: {said.splitlines()[-1] if said else ''}",
            returncode=done.returncode,
            stderr=result.err,
        )
    return result


def toplevel(path: Path) -> Path | None:
    """The work tree holding ``path``, or None where it is in none (or git is missing)."""
    try:
        done = git(path, "rev-parse", "--show-toplevel", check=False)
    except GitError:
        return None
    return Path(done.out) if done.ok and done.out else None


def has_commit(path: Path) -> bool:
    """Whether the repository at ``path`` has a commit at HEAD."""
    return git(path, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False).ok


def rev(cwd: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or None when it names none."""
    done = git(cwd, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
    return done.out if done.ok and done.out else None


def is_ancestor(cwd: Path, older: str, newer: str) -> bool:
    """Whether ``older`` is ``newer`` or one of its ancestors."""
    return git(cwd, "merge-base", "--is-ancestor", older, newer, check=False).returncode == 0
