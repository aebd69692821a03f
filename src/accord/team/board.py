"""The task board of one team: tasks, claims under leases, and the hooks that gate them.

The atomic parts (which task a claim takes, whether a token is current) are the
store's; this layer adds what must happen around them without holding the
write lock: the TaskCreated hook before a task becomes claimable, and the
TaskCompleted hook before a completion is recorded. While a completion hook
runs (a test suite can take minutes) the claim's lease is kept alive, so a
slow check never costs the member its task. ``LeaseKeeper`` keeps leases alive
for everyone (this, ``accord work``'s commands, an agent's claims) at the one
cadence, ``heartbeat_period``.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from accord.errors import AccordError, ClaimError, HookBlocked
from accord.types import (
    Claim,
    FileClaim,
    HookEvent,
    NewTask,
    PlannedTask,
    Task,
    TaskAttempt,
    TaskChanges,
    TaskStatus,
)

if TYPE_CHECKING:
    # The settings' validator (pydantic) and the hooks load only when asked for, so a
    # read of the board (`accord task list`) starts fast.
    from accord.config import BoardConfig
    from accord.store.base import BoardStore
    from accord.team.hooks import HookRunner


@dataclass(frozen=True, slots=True)
class Placed:
    """What became of one task of ``Board.add_many``: ``created`` now (or its key was
    on the board already), or ``refused`` with the reason, and removed."""

    task: Task
    created: bool
    refused: str | None = None


class Board:
    """Tasks of one team, with claims, leases and hook gates."""

    def __init__(
        self,
        store: BoardStore,
        team: str,
        settings: BoardConfig | None = None,
        hooks: HookRunner | None = None,
    ) -> None:
        self.store = store
        self.team = team
        self._settings = settings
        self.hooks = hooks

    @property
    def settings(self) -> BoardConfig:
        """Leases and attempts: the project's, or the defaults."""
        if self._settings is None:
            from accord.config import BoardConfig

            self._settings = BoardConfig()
        return self._settings

    # creating and changing ---------------------------------------------------

    def add(self, new: NewTask, actor: str | None = None) -> Task:
        """Create a task. With a TaskCreated hook the task is held (never claimable)
        until the hook allows it; if the hook blocks, the task is removed."""
        gated = self.hooks is not None and self.hooks.configured(HookEvent.TASK_CREATED)
        task = self.store.add_task(
            self.team,
            new,
            max_attempts=self.settings.max_attempts,
            actor=actor,
            admitted=not gated,
        )
        if not gated or self.hooks is None:
            return task
        outcome = self.hooks.run(HookEvent.TASK_CREATED, _fields(task, actor), actor)
        if outcome.blocked:
            self.store.remove_task(self.team, task.id, "TaskCreated hook blocked it", actor)
            raise HookBlocked(
                f"the TaskCreated hook refused task #{task.id} ({task.title!r}); it was removed",
                outcome.feedback,
            )
        return self.store.admit_task(self.team, task.id, actor)

    def add_many(
        self, items: Sequence[PlannedTask], actor: str | None = None
    ) -> builtins.list[Placed]:
        """Create a batch of tasks in one transaction (see ``Store.add_tasks``).

        With a TaskCreated hook every new task is held until the hook has run for
        it, in batch order; a refused task is removed, and so is every task of the
        batch waiting on it, which could otherwise start without its blocker. A
        task whose key was on the board already but still waits for its hook (a
        load that died half way) gets its hook run now.
        """
        gated = self.hooks is not None and self.hooks.configured(HookEvent.TASK_CREATED)
        added = self.store.add_tasks(
            self.team,
            items,
            max_attempts=self.settings.max_attempts,
            actor=actor,
            admitted=not gated,
        )
        placed: builtins.list[Placed] = []
        refused: set[int] = set()
        for position, (item, (task, created)) in enumerate(zip(items, added, strict=True)):
            if task.admitted:
                placed.append(Placed(task, created))
                continue
            dead = [p for p in item.after if p in refused]
            if dead:
                why = f"its blocker #{added[dead[0]][0].id} was refused by the TaskCreated hook"
                self.store.remove_task(self.team, task.id, why, actor)
                refused.add(position)
                placed.append(Placed(task, created, refused=why))
                continue
            if self.hooks is not None and gated:
                outcome = self.hooks.run(HookEvent.TASK_CREATED, _fields(task, actor), actor)
                if outcome.blocked:
                    self.store.remove_task(self.team, task.id, "TaskCreated hook blocked it", actor)
                    refused.add(position)
                    placed.append(Placed(task, created, refused=outcome.feedback))
                    continue
            placed.append(Placed(self.store.admit_task(self.team, task.id, actor), created))
        return placed

    def update(self, task_id: int, changes: TaskChanges, actor: str | None = None) -> Task:
        return self.store.update_task(self.team, task_id, changes, actor)

    def cancel(self, task_id: int, reason: str = "cancelled", actor: str | None = None) -> Task:
        return self.store.cancel_task(self.team, task_id, reason, actor)

    # reading -----------------------------------------------------------------

    def get(self, task_id: int) -> Task:
        return self.store.get_task(self.team, task_id)

    def list(self, status: TaskStatus | None = None, ready: bool = False) -> builtins.list[Task]:
        return self.store.list_tasks(self.team, status=status, ready=ready)

    # claims ------------------------------------------------------------------

    def claim(
        self, member: str, task_id: int | None = None, lease_seconds: float | None = None
    ) -> Claim | None:
        lease = lease_seconds or self.settings.lease_seconds
        return self.store.claim_task(self.team, member, lease_seconds=lease, task_id=task_id)

    def heartbeat(
        self, task_id: int, member: str, token: int, lease_seconds: float | None = None
    ) -> Claim:
        lease = lease_seconds or self.settings.lease_seconds
        return self.store.heartbeat_task(self.team, task_id, member, token, lease_seconds=lease)

    def check_claim(self, task_id: int, member: str, token: int) -> Task:
        """The task, if ``member`` holds it under ``token`` (ClaimError otherwise)."""
        return self.store.check_claim(self.team, task_id, member, token)

    def complete(
        self,
        task_id: int,
        member: str,
        token: int,
        result: str | None = None,
        *,
        checked: bool = False,
    ) -> Task:
        """Complete a held task once every TaskCompleted hook allows it.

        A blocked completion raises HookBlocked with the hook's feedback and the
        task stays in progress with the same holder and token. ``checked``: the hooks
        ran already, on the merged tree (the merge gate, ``Team.complete``).
        """
        gated = self.hooks is not None and self.hooks.configured(HookEvent.TASK_COMPLETED)
        if gated and not checked and self.hooks is not None:
            task = self.store.get_task(self.team, task_id)
            if task.status == TaskStatus.COMPLETED and task.fencing_token == token:
                # The same completion again (a retry after a lost reply): already done,
                # and its hooks already passed.
                return self.store.complete_task(self.team, task_id, member, token, result)
            task = self.store.check_claim(self.team, task_id, member, token)
            with self.keep_lease(task_id, member, token):
                fields = _fields(task, member)
                if result is not None:
                    fields["task_result"] = result
                outcome = self.hooks.run(HookEvent.TASK_COMPLETED, fields, member)
            if outcome.blocked:
                raise HookBlocked(
                    f"the TaskCompleted hook refused to complete task #{task_id}; it stays in "
                    f"progress with {member}",
                    outcome.feedback,
                )
        return self.store.complete_task(self.team, task_id, member, token, result)

    def attempts(self, task_id: int) -> builtins.list[TaskAttempt]:
        """Every attempt at the task: who held it, and how it ended."""
        return self.store.task_attempts(self.team, task_id)

    def fail(self, task_id: int, member: str, token: int, reason: str, retry: bool = False) -> Task:
        return self.store.fail_task(self.team, task_id, member, token, reason, retry=retry)

    def release(self, task_id: int, member: str, token: int, reason: str) -> Task:
        """Give a held task back to pending without spending an attempt (an outage)."""
        return self.store.release_task(self.team, task_id, member, token, reason)

    def expire_leases(self) -> builtins.list[Task]:
        return self.store.expire_leases(self.team)

    # advisory file claims ----------------------------------------------------

    def claim_files(
        self, task_id: int, member: str, token: int, patterns: Sequence[str]
    ) -> builtins.list[FileClaim]:
        """Claim paths or globs, relative to the project root, for a task ``member``
        holds under ``token``; every live file claim of the task comes back. The claims
        end with the task claim (see ``Store.claim_files``); FileClaimed names the
        member that holds an overlapping one."""
        return self.store.claim_files(self.team, task_id, member, token, patterns)

    def release_files(
        self, task_id: int, member: str, token: int, patterns: Sequence[str] | None = None
    ) -> builtins.list[FileClaim]:
        """Give up some file claims of a held task (all with None) before it ends; the
        task's remaining ones come back."""
        return self.store.release_files(self.team, task_id, member, token, patterns)

    def file_holder(self, path: str, member: str) -> FileClaim | None:
        """Who else holds ``path`` (relative to the project root), if anyone: the
        check accord's file tools make before ``member`` writes it."""
        return self.store.file_holder(self.team, path, member)

    def file_claims(self, task_id: int | None = None) -> builtins.list[FileClaim]:
        """The team's live file claims (of one task, with ``task_id``)."""
        return self.store.file_claims(self.team, task_id=task_id)

    @contextmanager
    def keep_lease(self, task_id: int, member: str, token: int) -> Iterator[LeaseKeeper]:
        """Heartbeat one claim from a thread while the ``with`` block runs (a hook, a
        command); a refused heartbeat is in the keeper's ``lost``."""
        keeper = LeaseKeeper(self, member, lambda: [(task_id, token)]).start()
        try:
            yield keeper
        finally:
            keeper.close()


def heartbeat_period(lease_seconds: float, every: float | None = None) -> float:
    """The one heartbeat cadence: three beats a lease, so that two may fail in a row
    and the lease still holds (sooner if ``every`` says so), never more than twenty a
    second."""
    period = lease_seconds / 3 if every is None else min(every, lease_seconds / 3)
    return max(period, 0.05)


class LeaseKeeper:
    """Heartbeats a member's claims from a thread of its own while open, at
    ``heartbeat_period`` of the board's lease.

    ``claims`` says which claims (task id, fencing token) to keep at each beat, and
    ``also`` is called at each beat too (a member's own heartbeat). A claim whose
    heartbeat is refused (ClaimError: its lease ran out, it was cancelled or taken
    over) is lost: it is not beaten again, and the first loss is in ``lost`` for the
    holder to act on. Any other error is tried again at the next beat.
    """

    def __init__(
        self,
        board: Board,
        member: str,
        claims: Callable[[], Iterable[tuple[int, int]]],
        *,
        every: float | None = None,
        also: Callable[[], object] | None = None,
    ) -> None:
        self.board = board
        self.member = member
        self.claims = claims
        self.also = also
        self.period = heartbeat_period(board.settings.lease_seconds, every)
        self.lost: ClaimError | None = None
        self._gone: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{member}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def close(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _beat(self) -> None:
        while not self._stop.wait(self.period):
            if self.also is not None:
                with suppress(AccordError):
                    self.also()
            for claim in list(self.claims()):
                if claim in self._gone:
                    continue
                try:
                    self.board.heartbeat(claim[0], self.member, claim[1])
                except ClaimError as e:
                    self._gone.add(claim)
                    self.lost = self.lost or e
                except AccordError:
                    continue


def _fields(task: Task, member: str | None) -> dict[str, object]:
    return {
        "task_id": str(task.id),
        "task_subject": task.title,
        "task_description": task.description,
        "teammate_name": member,
    }
