"""Worktrees and the merge gate: each member works on a branch of its own, and "done"
means merged into the team's integration branch and checked there.

**Mode.** ``[team] isolation`` in accord.toml: ``"worktree"``, ``"shared"``, or unset,
which means worktree when the project is inside a git work tree with at least one
commit (a branch needs a commit to start from) and shared otherwise. ``"worktree"``
where that is impossible is bad input (``NotARepository``). It applies to every
member process, the lead's too. Shared mode is today's: everyone works in the
project folder, and nothing here runs. ``accord work`` (the thread pool) keeps
today's behaviour in either mode: its commands run in the project folder.

**Branches.** The team's integration branch is ``accord/<team>``; a member's is
``accord/<team>@<member>``. Not ``accord/<team>/<member>``: git keeps refs as files,
so ``accord/main`` cannot be a file and a folder at once; ``@`` is legal in a ref and
illegal in a name, so no member's branch can collide with another team's. A member's
worktree is ``<root>/.accord/worktrees/<team>/<member>`` (``.accord/`` is ignored by
git, so the person's ``git status`` stays clean).

**The integration branch** is made from the person's HEAD when ``accord run`` starts
(or when the first member worktree is made). A dirty tree does not stop the run: the
run starts from HEAD and says so, because the uncommitted changes are not in the
team's branch. The branch the run started from is remembered in git config
(``accord.<team>.base``) for ``accord merge``. The person's checkout and branch are
never touched during a run: every write here is to ``accord/...`` refs, to the
member's own worktree, or to the gate's scratch worktree.

**The gate** (``complete``), on a member's completion:

1. The member's changes are committed on its branch with plumbing (``add -A``,
   ``write-tree``, ``commit-tree -p <branch tip>``, ``update-ref NEW OLD``): the
   worktree's HEAD is never trusted, as the member could have pointed it elsewhere.
   A merge that ``sync`` left to resolve is concluded here (MERGE_HEAD becomes the
   second parent), and refused while conflict markers are left in its files.
2. The team's merge lock is taken: ``flock`` on ``<git common dir>/accord-<team>.lock``.
   The kernel drops it when its holder dies, even by ``kill -9``, with no lease to run
   out and no stale holder to break: stronger than a lease.
3. ``git merge-tree --write-tree`` merges without touching any checkout. A conflict
   refuses the completion (``MergeRefused``) with the files and their hunks as the
   conflicted tree has them, and the member is told to ``sync``, fix and complete again.
4. With TaskCompleted hooks, the merged tree is checked out in the team's scratch
   worktree (``.gate``, detached; ``checkout -f`` and ``clean -fdx`` cost less than
   adding a worktree each time) and the hooks run there; a block refuses.
5. Only then the merge commit is made and ``accord/<team>`` moves by compare-and-swap
   (``update-ref NEW OLD``: never half-updated), the task is completed in the store,
   and the member's branch fast-forwards to the merge, so it goes on from the
   integrated state. A crash between the ref and the store is at-least-once: the
   retry finds nothing new to merge and completes.

A refusal changes no ref: the claim stays with the member and nothing is half-merged.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from accord.errors import InvalidState, Reason
from accord.events import EventKind
from accord.git import (
    GitError,
    MergeBusy,
    MergeRefused,
    NotARepository,
    git,
    has_commit,
    is_ancestor,
    rev,
    toplevel,
)
from accord.types import HookEvent, Task, TaskStatus

if TYPE_CHECKING:
    from accord.team import Team

# How long a completion waits for another's merge (and its hooks) to finish.
LOCK_WAIT = 900.0
# At most this much of the conflicted files' hunks goes back to the member.
HUNKS_LIMIT = 6000
SCRATCH = ".gate"  # not a member name (names start with a letter or digit)
_MARKERS = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Synced:
    """What ``sync`` did: the member's branch tip after it, and the files left
    conflicted (empty: the integration branch is in)."""

    commit: str
    conflicts: tuple[str, ...]
    already: bool = False


class Worktrees:
    """The worktrees, branches and merge gate of one team (see the module's docstring)."""

    def __init__(self, team: Team) -> None:
        self.t = team
        self.team = team.name
        self.root = team.cwd.resolve()

    # the mode -------------------------------------------------------------------

    @cached_property
    def repo(self) -> Path | None:
        """The git work tree holding the project, or None."""
        return toplevel(self.root)

    @cached_property
    def mode(self) -> str:
        """``worktree`` or ``shared``, by ``[team] isolation`` and the project's git state;
        NotARepository where worktree is asked for and impossible."""
        asked = self.t.config.team.isolation
        if asked == "shared":
            return "shared"
        usable = self.repo is not None and has_commit(self.repo)
        if asked == "worktree" and not usable:
            raise NotARepository(
                f'[team] isolation = "worktree" needs a git repository with a commit, and '
                f'{self.root} is not in one: set [team] isolation = "shared" in accord.toml, '
                f"or run `git init` and commit",
                team=self.team,
            )
        return "worktree" if usable else "shared"

    @property
    def active(self) -> bool:
        """Whether members work in worktrees (NotARepository when that is impossible)."""
        return self.mode == "worktree"

    def _git(self) -> Path:
        assert self.repo is not None, "worktree mode without a repository"
        return self.repo

    @cached_property
    def common_dir(self) -> Path:
        """The repository's .git folder (shared by every worktree)."""
        out = git(self._git(), "rev-parse", "--git-common-dir").out
        return (self._git() / out).resolve()

    # names ----------------------------------------------------------------------

    @property
    def integration(self) -> str:
        return f"accord/{self.team}"

    def branch(self, member: str) -> str:
        return f"accord/{self.team}@{member}"

    def path(self, member: str) -> Path:
        return self.root / ".accord" / "worktrees" / self.team / member

    @property
    def scratch(self) -> Path:
        return self.root / ".accord" / "worktrees" / self.team / SCRATCH

    def _inside(self, tree: Path) -> Path:
        # The project may be a folder inside the repository: the same folder in the tree.
        return tree / self.root.relative_to(self._git().resolve())

    # the integration branch --------------------------------------------------------

    def base(self) -> str | None:
        """The branch (or commit) the team's run started from, if known."""
        done = git(self._git(), "config", "--get", f"accord.{self.team}.base", check=False)
        return done.out or None

    def start(self) -> str | None:
        """Make ``accord/<team>`` from the person's HEAD if it is not there yet (at run
        start); returns a line to say when the person's tree had uncommitted changes,
        which are not in the team's branch."""
        if not self.active or rev(self._git(), self.integration) is not None:
            return None
        repo = self._git()
        head = git(repo, "rev-parse", "HEAD").out
        named = git(repo, "symbolic-ref", "--short", "-q", "HEAD", check=False).out
        # Create only: an empty old value makes update-ref refuse if a racer (another
        # member process starting at the same moment) made it first; then it is made.
        made = git(repo, "update-ref", f"refs/heads/{self.integration}", head, "", check=False)
        if not made.ok:
            if rev(repo, self.integration) is not None:
                return None
            raise GitError(f"cannot make branch {self.integration}: {made.err}")
        git(repo, "config", f"accord.{self.team}.base", named or head)
        dirty = len(git(repo, "status", "--porcelain").out.splitlines())
        self.t.log.append_event(
            EventKind.INTEGRATION_STARTED,
            {"branch": self.integration, "base": named or head, "head": head, "dirty": dirty},
        )
        if not dirty:
            return None
        return (
            f"note: the team works from your last commit ({head[:10]}): {dirty} uncommitted "
            f"change(s) in your checkout are not in branch {self.integration}"
        )

    # a member's worktree ----------------------------------------------------------

    def workspace(self, member: str) -> Path:
        """The folder ``member`` works in: its worktree (made on first start, re-attached
        on a restart, made again on its branch if its folder was deleted by hand), or
        the project folder in shared mode."""
        if not self.active:
            return self.root
        self.start()
        path, branch, repo = self.path(member), self.branch(member), self._git()
        if self._is_worktree(path):
            self._unlock(path)  # an index.lock a killed git left behind
            return self._inside(path)
        how = "created"
        if rev(repo, branch) is not None:
            how = "recreated" if not path.exists() else "reattached"
        if path.exists() and any(path.iterdir()):
            raise GitError(
                f"{path} is there but is not {member}'s worktree; move it aside and start "
                f"{member} again"
            )
        git(repo, "worktree", "prune")  # forget a worktree whose folder was deleted by hand
        path.parent.mkdir(parents=True, exist_ok=True)
        if how == "created":
            git(repo, "worktree", "add", "-q", "-b", branch, str(path), self.integration)
        else:
            git(repo, "worktree", "add", "-q", str(path), branch)
        self.t.log.append_event(
            EventKind.WORKTREE_MADE,
            {"member": member, "path": str(path), "branch": branch, "how": how},
            member,
        )
        return self._inside(path)

    def has(self, member: str) -> bool:
        """Whether ``member`` has a branch of its own (it has worked in a worktree)."""
        return self.active and rev(self._git(), self.branch(member)) is not None

    def _is_worktree(self, path: Path) -> bool:
        if not (path / ".git").exists():
            return False
        done = git(path, "rev-parse", "--show-toplevel", check=False)
        return done.ok and Path(done.out).resolve() == path.resolve()

    def _unlock(self, tree: Path) -> None:
        gitdir = Path(git(tree, "rev-parse", "--absolute-git-dir").out)
        (gitdir / "index.lock").unlink(missing_ok=True)

    # step 1: the member's changes on its branch ---------------------------------------

    def commit_pending(self, member: str, message: str) -> str:
        """Commit whatever ``member``'s worktree holds on its branch; the branch's tip.

        The tree is the working files (``add -A``), whatever the worktree's HEAD says;
        the parent is the branch's tip, and a merge ``sync`` left open (MERGE_HEAD) is
        concluded with its commit as the second parent, refused while its conflict
        markers are still in the files.
        """
        path, branch, repo = self.path(member), self.branch(member), self._git()
        tip = rev(repo, branch)
        if tip is None or not self._is_worktree(path):
            raise GitError(f"{member} has no worktree on branch {branch}")
        gitdir = Path(git(path, "rev-parse", "--absolute-git-dir").out)
        merging = rev(path, "MERGE_HEAD") if (gitdir / "MERGE_HEAD").exists() else None
        git(path, "add", "-A")
        tree = git(path, "write-tree").out
        if merging is not None:
            changed = git(path, "diff", "--cached", "--name-only", tip).out.splitlines()
            marked = [f for f in changed if self._has_markers(path / f)]
            if marked:
                raise MergeRefused(
                    f"conflict markers are still in {', '.join(marked)}",
                    files=tuple(marked),
                    detail="Edit these files: keep what both sides need and delete the "
                    "<<<<<<<, ======= and >>>>>>> lines.",
                    team=self.team,
                    member=member,
                )
        parents = [tip] + ([merging] if merging and merging != tip else [])
        # The worktree's HEAD on the member's branch again, whatever it was pointed at:
        # the index and files are the tree just written, so nothing is lost.
        git(path, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
        if tree == git(repo, "rev-parse", f"{tip}^{{tree}}").out and len(parents) == 1:
            return tip  # nothing to commit
        argv = ["commit-tree", tree]
        for p in parents:
            argv += ["-p", p]
        new = git(repo, *argv, "-m", message).out
        git(repo, "update-ref", f"refs/heads/{branch}", new, tip)
        if merging is not None:
            git(path, "merge", "--quit")  # the merge is concluded by the commit above
        git(path, "reset", "-q")  # the index as the new tip, so `git status` reads clean
        return new

    @staticmethod
    def _has_markers(file: Path) -> bool:
        try:
            return bool(_MARKERS.search(file.read_text(errors="replace")))
        except (OSError, IsADirectoryError):
            return False

    # step 2: the team's merge lock ------------------------------------------------------

    @contextmanager
    def locked(self, wait: float = LOCK_WAIT) -> Iterator[None]:
        """Hold the team's merge lock (``flock``, released by the kernel when the holder
        dies); MergeBusy after ``wait`` seconds."""
        lock = self.common_dir / f"accord-{self.team}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise MergeBusy(
                            f"another completion of team {self.team} held its merge lock "
                            f"for {wait:.0f}s; try again",
                            team=self.team,
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing the only descriptor releases the lock

    # the gate --------------------------------------------------------------------------

    def complete(self, task_id: int, member: str, token: int, result: str | None) -> Task:
        """Complete ``member``'s task through the merge gate (see the module's docstring);
        MergeRefused or HookBlocked refuse it and leave every ref as it was."""
        board = self.t.board
        task = board.get(task_id)
        if task.status == TaskStatus.COMPLETED and task.fencing_token == token:
            return board.complete(task_id, member, token, result, checked=True)  # a retry
        task = board.check_claim(task_id, member, token)
        with board.keep_lease(task_id, member, token):
            merge = self._gate(task, member, result)
            done = board.complete(task_id, member, token, result, checked=True)
        if merge is not None:
            self._advance(member, merge)
        return done

    def _gate(self, task: Task, member: str, result: str | None) -> str | None:
        """Steps 1 to 5 up to the integration branch's move; the new merge commit, or
        None when there was nothing new to merge."""
        repo, target = self._git(), f"refs/heads/{self.integration}"
        tip = self.commit_pending(
            member, f"task #{task.id}: {task.title}\n\nby {member} (accord team {self.team})"
        )
        with self.locked():
            base = rev(repo, self.integration)
            if base is None:
                raise GitError(
                    f"the team's branch {self.integration} is gone (deleted by hand?); "
                    f"nothing was merged. Make it again from the last good commit: "
                    f"git branch {self.integration} COMMIT"
                )
            if is_ancestor(repo, tip, base):
                merged, commit = base, None  # nothing new (or a retry after a crash)
            else:
                done = git(
                    repo, "merge-tree", "--write-tree", "--name-only", base, tip, ok_codes=(0, 1)
                )
                if done.returncode == 1:
                    self._refuse(task, member, done.out)
                tree = done.out.splitlines()[0]
                commit = git(
                    repo,
                    "commit-tree",
                    tree,
                    "-p",
                    base,
                    "-p",
                    tip,
                    "-m",
                    f"accord: merge task #{task.id} ({task.title}) by {member}",
                ).out
                merged = commit
            self._check(task, member, result, merged)
            if commit is not None:
                # Compare-and-swap: the ref is the old commit or the new one, never half.
                git(repo, "update-ref", target, commit, base)
            self.t.log.append_event(
                EventKind.TASK_MERGED,
                {"id": task.id, "member": member, "commit": merged, "merged": commit is not None},
                member,
            )
        return commit

    def _refuse(self, task: Task, member: str, out: str) -> None:
        lines = out.splitlines()
        tree = lines[0]
        blank = lines.index("") if "" in lines else len(lines)
        files = list(dict.fromkeys(lines[1:blank]))
        messages = [m for m in lines[blank + 1 :] if m.startswith("CONFLICT")]
        hunks = []
        for f in files:
            shown = git(self._git(), "cat-file", "-p", f"{tree}:{f}", check=False)
            hunks.append(f"--- {f}\n{_hunks(shown.out) if shown.ok else '(not a text file)'}")
        detail = "\n".join(messages + hunks)
        if len(detail) > HUNKS_LIMIT:
            detail = detail[:HUNKS_LIMIT] + "\n[... more conflicts cut ...]"
        self.t.log.append_event(
            EventKind.MERGE_REFUSED,
            {"id": task.id, "member": member, "why": "conflict", "files": files},
            member,
        )
        raise MergeRefused(
            f"task #{task.id} conflicts with the team's branch {self.integration} in "
            f"{', '.join(files)}; it stays in progress with {member}",
            files=tuple(files),
            detail=detail,
            team=self.team,
            member=member,
            task_id=task.id,
        )

    def _check(self, task: Task, member: str, result: str | None, commit: str) -> None:
        """Step 4: the TaskCompleted hooks on ``commit``'s tree, in the scratch worktree."""
        hooks = self.t.hooks
        if not hooks.configured(HookEvent.TASK_COMPLETED):
            return
        from accord.errors import HookBlocked

        scratch = self._scratch(commit)
        fields: dict[str, object] = {
            "task_id": str(task.id),
            "task_subject": task.title,
            "task_description": task.description,
            "teammate_name": member,
            "merged_commit": commit,
        }
        if result is not None:
            fields["task_result"] = result
        outcome = hooks.run(HookEvent.TASK_COMPLETED, fields, member, cwd=self._inside(scratch))
        if outcome.blocked:
            self.t.log.append_event(
                EventKind.MERGE_REFUSED,
                {"id": task.id, "member": member, "why": "hook", "files": []},
                member,
            )
            raise HookBlocked(
                f"the TaskCompleted hook refused task #{task.id} on the merged tree; it stays "
                f"in progress with {member} and the team's branch did not move",
                outcome.feedback,
            )

    def _scratch(self, commit: str) -> Path:
        """The scratch worktree at ``commit`` (detached), made once per team; called
        under the merge lock, so nobody else is using it."""
        path, repo = self.scratch, self._git()
        if self._is_worktree(path):
            self._unlock(path)
            git(path, "checkout", "-q", "-f", "--detach", commit)
            git(path, "clean", "-q", "-fdx")
            return path
        # A holder killed while making it can leave a half-made one, still registered
        # (and locked "initializing"): forget it, whatever state it is in.
        git(repo, "worktree", "remove", "--force", "--force", str(path), check=False)
        if path.exists():
            shutil.rmtree(path)
        git(repo, "worktree", "prune")
        path.parent.mkdir(parents=True, exist_ok=True)
        git(repo, "worktree", "add", "-q", "--detach", str(path), commit)
        return path

    def _advance(self, member: str, commit: str) -> None:
        """Fast-forward the member's branch and files to the merge, so it carries on from
        the integrated state; the completion stands if this cannot be done."""
        path = self.path(member)
        try:
            git(path, "symbolic-ref", "HEAD", f"refs/heads/{self.branch(member)}")
            git(path, "reset", "-q", "--keep", commit)
        except GitError as e:
            import sys

            sys.stderr.write(f"warning: {member}'s worktree stays behind the merge: {e}\n")

    # keeping current --------------------------------------------------------------------

    def sync(self, member: str) -> Synced:
        """Bring ``accord/<team>`` into ``member``'s branch: its pending work is committed
        first, then merged (not rebased: a conflict stops once, not once per commit). A
        conflict leaves its markers in the files, for the member to edit; the next
        ``task_complete`` (or ``sync``) commits the resolution."""
        path, repo = self.path(member), self._git()
        tip = self.commit_pending(member, f"work in progress by {member} (before a sync)")
        if is_ancestor(repo, self.integration, tip):
            return Synced(tip, (), already=True)
        done = git(
            path,
            "merge",
            "--no-ff",
            "--no-edit",
            "-m",
            f"sync {self.integration} into {self.branch(member)}",
            self.integration,
            check=False,
        )
        if done.ok:
            new = rev(repo, self.branch(member)) or tip
            self.t.log.append_event(
                EventKind.MEMBER_SYNCED, {"member": member, "commit": new, "conflicts": []}, member
            )
            return Synced(new, ())
        conflicts = tuple(git(path, "diff", "--name-only", "--diff-filter=U").out.splitlines())
        if not conflicts:
            said = done.err or done.out or f"exit code {done.returncode}"
            raise GitError(f"sync could not merge {self.integration}: {said}")
        self.t.log.append_event(
            EventKind.MEMBER_SYNCED,
            {"member": member, "commit": tip, "conflicts": list(conflicts)},
            member,
        )
        return Synced(tip, conflicts)

    def moved(self, member: str, seen: str | None) -> tuple[str | None, str | None]:
        """The integration branch's tip, and a note for ``member`` when it moved since
        ``seen`` and is not in the member's branch yet (one rev-parse when it did not)."""
        if not self.active:
            return seen, None
        repo = self._git()
        tip = rev(repo, self.integration)
        if tip is None or tip == seen:
            return tip, None
        mine = rev(repo, self.branch(member))
        if mine is None or is_ancestor(repo, tip, mine):
            return tip, None
        subject = git(repo, "log", "-1", "--format=%s", tip).out
        return tip, (
            f"The team's branch {self.integration} moved under you ({subject}). Call sync to "
            f"bring it into your work before you go on."
        )

    # clean-up --------------------------------------------------------------------------

    def unmerged(self, member: str) -> str | None:
        """Why removing ``member``'s worktree would lose work (None: it would not)."""
        if not self.active:
            return None
        repo, branch, path = self._git(), self.branch(member), self.path(member)
        if rev(repo, branch) is None:
            return None
        if self._is_worktree(path) and git(path, "status", "--porcelain").out:
            return f"{member}'s worktree {path} has uncommitted changes"
        if rev(repo, self.integration) is not None:
            ahead = git(repo, "rev-list", "--count", branch, "--not", self.integration).out
        else:
            ahead = git(repo, "rev-list", "--count", branch).out
        if int(ahead or 0):
            return f"{member}'s branch {branch} has {ahead} commit(s) not in {self.integration}"
        return None

    def check_removable(self, members: list[str], force: bool) -> None:
        """InvalidState (nothing changed) when a worktree of ``members`` holds unmerged
        work and ``force`` is not given."""
        if force or not self._safe_active():
            return
        for member in members:
            why = self.unmerged(member)
            if why is not None:
                raise InvalidState(
                    f"{why}; merge it (task_complete) or pass --force to throw it away",
                    team=self.team,
                    member=member,
                    reason=Reason.UNMERGED,
                )

    def remove(self, member: str, *, record: bool = True) -> bool:
        """Remove ``member``'s worktree and branch (check ``check_removable`` first);
        whether there was one. ``record``: log it (not after the team was deleted)."""
        if not self._safe_active():
            return False
        repo, branch, path = self._git(), self.branch(member), self.path(member)
        had = rev(repo, branch) is not None or path.exists()
        if self._is_worktree(path):
            git(repo, "worktree", "remove", "--force", "--force", str(path))
        elif path.exists():
            shutil.rmtree(path)
        git(repo, "worktree", "prune")
        if rev(repo, branch) is not None:
            git(repo, "branch", "-q", "-D", branch)
        if had and record:  # not when the team (and its log) is gone already
            self.t.log.append_event(
                EventKind.WORKTREE_REMOVED, {"member": member, "branch": branch}, None
            )
        return had

    def remove_scratch(self) -> None:
        """Remove the team's scratch worktree (the team is being deleted)."""
        if not self._safe_active():
            return
        if self._is_worktree(self.scratch):
            git(self._git(), "worktree", "remove", "--force", "--force", str(self.scratch))
        git(self._git(), "worktree", "prune")

    def _safe_active(self) -> bool:
        # Clean-up in a folder that is no longer a repository has nothing to clean.
        try:
            return self.active
        except NotARepository:
            return False

    # accord merge ---------------------------------------------------------------------

    def merge_into_base(self) -> str:
        """``git merge --no-ff accord/<team>`` into the branch the run started from, in the
        person's checkout, only if it is on that branch with a clean tree; otherwise
        InvalidState saying exactly what to run. NothingToDo when all of it is in."""
        from accord.errors import NothingToDo, UserError

        repo = self._git()
        base = self.base()
        if rev(repo, self.integration) is None or base is None:
            raise UserError(f"team {self.team} has no branch {self.integration}: it never ran")
        how = f"git switch {base} && git merge --no-ff {self.integration}"
        current = git(repo, "symbolic-ref", "--short", "-q", "HEAD", check=False).out
        if current != base:
            raise InvalidState(
                f"your checkout is on {current or 'a detached HEAD'}, not {base} (where the "
                f"run started); nothing was changed. Run: {how}",
                team=self.team,
            )
        if is_ancestor(repo, self.integration, "HEAD"):
            raise NothingToDo(f"{self.integration} is merged into {base} already")
        if git(repo, "status", "--porcelain", "--untracked-files=no").out:
            raise InvalidState(
                f"your checkout of {base} has uncommitted changes; nothing was changed. "
                f"Commit or stash them, then run: git merge --no-ff {self.integration}",
                team=self.team,
            )
        mine = git(repo, "config", "user.email", check=False).out
        git(
            repo,
            "merge",
            "-q",
            "--no-ff",
            "--no-edit",
            "-m",
            f"Merge team {self.team}'s work ({self.integration})",
            self.integration,
            identity=not mine,  # the person's own name on their branch, when they have one
        )
        return git(repo, "rev-parse", "HEAD").out


def _hunks(text: str, context: int = 2) -> str:
    """The conflict regions of a file with markers, with ``context`` lines around each."""
    lines = text.splitlines()
    keep: set[int] = set()
    start: int | None = None
    for i, line in enumerate(lines):
        if line.startswith("<<<<<<<"):
            start = i
        elif line.startswith(">>>>>>>") and start is not None:
            keep.update(range(max(0, start - context), min(len(lines), i + context + 1)))
            start = None
    if not keep:
        return "(no text hunks: see the CONFLICT line above)"
    out: list[str] = []
    last = -2
    for i in sorted(keep):
        if i != last + 1:
            out.append(f"@@ line {i + 1}")
        out.append(lines[i])
        last = i
    return "\n".join(out)
