"""The conformance suite every store backend must pass.

``StoreConformance`` holds one test per promise of DESIGN.md and per method of
``accord.store.base.Store``, written against the interface only, so a feature
built above ``store/`` behaves the same on every backend. A backend's test
module subclasses it and provides one fixture, ``make_store``::

    import pytest
    from accord.store import Store, open_store
    from accord.store.base import Clock
    from accord.testing.conformance import MakeStore, StoreConformance

    class TestPostgresStore(StoreConformance):
        @pytest.fixture
        def make_store(self, empty_database_url: str) -> Iterator[MakeStore]:
            opened: list[Store] = []

            def make(*, clock: Clock) -> Store:
                opened.append(open_store(empty_database_url, clock=clock))
                return opened[-1]

            yield make
            for store in opened:
                store.close()

``make_store(clock=FakeClock())`` must return an opened ``Store`` using that
clock. The first call in a test gives a fresh, empty store; every later call in
the same test gives *another connection to the same store* (for SQLite, the
same file), so the suite can check what one connection sees of another's
commits. The fixture closes every store it opened when the test ends, and
``close`` must be harmless on a store that is closed already.
``tests/test_store_conformance.py`` does this for SQLite on top of the
``make_store`` fixture of ``tests/conftest.py``.

The suite moves time only with ``FakeClock``; it never sleeps for time to pass
(it polls, with a deadline, only for a change marker to move: a server's
notification may take a moment) and never needs a network beyond the store's
own server. It needs pytest, so import it from tests only.

What the suite pins beyond the docstrings of ``Store``, because services above
the store rely on it:

- event kinds (``task_claimed``, ``message_sent``, ...) are the same on every
  backend, one event per change; a heartbeat (of a member or of a task) is
  liveness, not a change of state, and writes no event;
- a refused operation raises the error class named in ``accord.errors`` and
  leaves teams, members, tasks, messages, events, memories and continuity notes
  exactly as they were;
- deleting a team deletes its memories (team and member scopes) and continuity
  notes; project memories stay, and their supersession links into the deleted
  entries are cleared.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pytest

from accord.errors import (
    AlreadyExists,
    ClaimError,
    CycleError,
    InvalidName,
    InvalidState,
    NotClaimHolder,
    Reason,
    StaleToken,
    UnknownMember,
    UnknownMemory,
    UnknownMessage,
    UnknownTask,
    UnknownTeam,
    UserError,
)
from accord.store.base import (
    MAX_BODY,
    MAX_CONTINUITY,
    MAX_DESCRIPTION,
    MAX_KEY,
    MAX_MEMORY,
    MAX_PAYLOAD,
    MAX_RESULT,
    MAX_SUMMARY,
    MAX_TITLE,
    Clock,
    Store,
)
from accord.testing import FakeClock
from accord.testing.conformance_bells import BellConformance
from accord.testing.conformance_channels import ChannelConformance
from accord.testing.conformance_deliberations import DeliberationConformance
from accord.testing.conformance_files import FileClaimConformance
from accord.testing.conformance_lessons import LessonConformance
from accord.testing.conformance_live import LiveOutputConformance
from accord.testing.conformance_routes import RouteConformance
from accord.testing.conformance_runs import RunConformance
from accord.testing.conformance_skills import SkillConformance
from accord.types import (
    BROADCAST,
    Channel,
    Claim,
    ContinuityNote,
    Event,
    Member,
    MemberRole,
    MemberStatus,
    MemoryEntry,
    MemoryStatus,
    MemoryType,
    Message,
    MessageKind,
    NewMemory,
    NewTask,
    OutgoingMessage,
    PlannedTask,
    Route,
    SkillUse,
    SkillVersion,
    Task,
    TaskChanges,
    TaskStatus,
    Team,
    UsageRecord,
)

__all__ = ["MakeStore", "Snapshot", "StoreConformance", "refused", "snapshot"]

TEAM = "main"
MEMBERS = ("alice", "bob", "carol")
LEASE = 60.0
VISIBILITY = 30.0
ATTEMPTS = 3

BAD_NAMES = ("../x", "A B", "", "a" * 41, "-lead", "Alice", "a/b", "a.b")

E = TypeVar("E", bound=BaseException)


class MakeStore(Protocol):
    """Opens a connection to the test's store (see the module docstring)."""

    def __call__(self, *, clock: Clock) -> Store: ...


# Observing the store ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a store holds, as its read methods return it."""

    teams: tuple[Team, ...]
    members: tuple[tuple[Member, ...], ...]
    tasks: tuple[tuple[Task, ...], ...]
    messages: tuple[tuple[Message, ...], ...]
    events: tuple[tuple[Event, ...], ...]
    memories: tuple[tuple[MemoryEntry, ...], ...] = ()
    continuity: tuple[tuple[ContinuityNote, ...], ...] = ()
    channels: tuple[tuple[Channel, ...], ...] = ()
    routes: tuple[tuple[Route, ...], ...] = ()
    skills: tuple[tuple[SkillVersion, ...], ...] = ()
    skill_uses: tuple[tuple[SkillUse, ...], ...] = ()


def snapshot(store: Store) -> Snapshot:
    """Read every team's members, tasks, messages, events, memories (its own and the
    project's) and every version of its members' continuity notes (reads change nothing)."""
    teams = tuple(store.list_teams())
    members = tuple(tuple(store.list_members(t.name)) for t in teams)
    return Snapshot(
        teams=teams,
        members=members,
        tasks=tuple(tuple(store.list_tasks(t.name)) for t in teams),
        messages=tuple(tuple(store.list_messages(t.name, limit=1_000_000)) for t in teams),
        events=tuple(tuple(store.read_events(t.name)) for t in teams),
        memories=tuple(tuple(store.list_memories(t.name)) for t in teams),
        continuity=tuple(
            tuple(n for m in ms for n in store.continuity(t.name, m.name, history=True))
            for t, ms in zip(teams, members, strict=True)
        ),
        channels=tuple(tuple(store.list_channels(t.name)) for t in teams),
        routes=tuple(tuple(store.list_routes(t.name)) for t in teams),
        skills=tuple(tuple(store.skill_versions(t.name)) for t in teams),
        skill_uses=tuple(tuple(store.skill_uses(t.name)) for t in teams),
    )


@contextmanager
def refused(store: Store, error: type[E]) -> Iterator[pytest.ExceptionInfo[E]]:
    """Expect ``error`` from the block, and the store unchanged by it."""
    before = snapshot(store)
    with pytest.raises(error) as info:
        yield info
    after = snapshot(store)
    assert after == before, f"a refused operation ({info.value!r}) changed the store"


def last_seq(store: Store, team: str = TEAM) -> int:
    events = store.read_events(team)
    return events[-1].seq if events else 0


@contextmanager
def logs(store: Store, *kinds: str, team: str = TEAM) -> Iterator[list[Event]]:
    """Expect the block to append exactly these event kinds to ``team``'s log, in order.

    The list it yields is filled with the new events when the block ends.
    """
    since = last_seq(store, team)
    written: list[Event] = []
    yield written
    written.extend(store.read_events(team, since=since))
    assert [e.kind for e in written] == list(kinds)
    assert [e.seq for e in written] == list(range(since + 1, since + 1 + len(kinds)))


def _moved(store: Store, marker: int, within: float = 5.0) -> int:
    """The store's change marker once it differs from ``marker``.

    At once on SQLite; a server's notification can take a moment to arrive, and
    ``wait`` only needs the marker to move soon after a commit, never to miss one.
    """
    deadline = time.monotonic() + within
    while (seen := store.change_marker()) == marker:
        assert time.monotonic() < deadline, f"the change marker did not move in {within:g}s"
        time.sleep(0.002)
    return seen


def _text(sender: str, recipient: str, body: str = "hello", **kw: Any) -> OutgoingMessage:
    return OutgoingMessage(sender=sender, recipient=recipient, body=body, **kw)


def _add(store: Store, title: str = "task", team: str = TEAM, **kw: Any) -> Task:
    admitted = kw.pop("admitted", True)
    actor = kw.pop("actor", None)
    max_attempts = kw.pop("max_attempts", ATTEMPTS)
    return store.add_task(
        team, NewTask(title, **kw), max_attempts=max_attempts, actor=actor, admitted=admitted
    )


def _plan(
    title: str, *, after: tuple[int, ...] = (), key: str | None = None, **kw: Any
) -> PlannedTask:
    return PlannedTask(NewTask(title, **kw), after=after, key=key)


def _batch(store: Store, *items: PlannedTask, **kw: Any) -> list[tuple[Task, bool]]:
    kw.setdefault("max_attempts", ATTEMPTS)
    return store.add_tasks(TEAM, list(items), **kw)


def _claim(store: Store, member: str, task_id: int | None = None, lease: float = LEASE) -> Claim:
    claim = store.claim_task(TEAM, member, lease_seconds=lease, task_id=task_id)
    assert claim is not None, f"{member} found nothing to claim"
    return claim


def _finish(store: Store, task_id: int, member: str = "carol") -> Task:
    claim = _claim(store, member, task_id)
    return store.complete_task(TEAM, task_id, member, claim.fencing_token)


# The world the refusal cases act on ------------------------------------------------


@dataclass(frozen=True, slots=True)
class World:
    """A team with a bit of everything, for checking that refusals change nothing."""

    done: int  # completed by alice under done_token
    done_token: int
    held: int  # in progress with alice under held_token, lease still running
    held_token: int
    expired: int  # in progress with bob under expired_token, lease ended, not yet swept
    expired_token: int
    blocked: int  # pending, waits on held
    chain: tuple[int, int, int]  # pending: chain[0] blocks chain[1] blocks chain[2]
    assigned: int  # pending, ready, assigned to bob
    unadmitted: int
    cancelled: int  # claimed by carol under cancelled_token, then cancelled
    cancelled_token: int
    to_bob: int  # text alice -> bob, delivered to bob
    request: int  # shutdown_request alice -> bob
    to_alice: int  # text carol -> alice


def build_world(store: Store, clock: FakeClock) -> World:
    for name in MEMBERS:
        store.add_member(TEAM, name, token_hash=f"hash-{name}")
    store.create_team("solo")
    store.add_member("solo", "only", token_hash="hash-only")
    done = _add(store, "done").id
    done_token = _claim(store, "alice", done).fencing_token
    store.complete_task(TEAM, done, "alice", done_token, "ok")
    held = _add(store, "held").id
    held_token = _claim(store, "alice", held, lease=1000).fencing_token
    expired = _add(store, "expired").id
    expired_token = _claim(store, "bob", expired, lease=10).fencing_token
    blocked = _add(store, "blocked", blocked_by=(held,)).id
    a = _add(store, "chain a").id
    b = _add(store, "chain b", blocked_by=(a,)).id
    c = _add(store, "chain c", blocked_by=(b,)).id
    assigned = _add(store, "for bob", assignee="bob").id
    unadmitted = _add(store, "held for its hook", admitted=False).id
    cancelled = _add(store, "cancelled").id
    cancelled_token = _claim(store, "carol", cancelled).fencing_token
    store.cancel_task(TEAM, cancelled, "not needed")
    to_bob = store.send_message(TEAM, _text("alice", "bob"))[0].id
    request = store.send_message(
        TEAM, _text("alice", "bob", "please stop", kind=MessageKind.SHUTDOWN_REQUEST)
    )[0].id
    to_alice = store.send_message(TEAM, _text("carol", "alice"))[0].id
    store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
    clock.advance(100)
    return World(
        done=done,
        done_token=done_token,
        held=held,
        held_token=held_token,
        expired=expired,
        expired_token=expired_token,
        blocked=blocked,
        chain=(a, b, c),
        assigned=assigned,
        unadmitted=unadmitted,
        cancelled=cancelled,
        cancelled_token=cancelled_token,
        to_bob=to_bob,
        request=request,
        to_alice=to_alice,
    )


Action = Callable[[Store, World], object]


def _msg(store: Store, **kw: Any) -> object:
    fields: dict[str, Any] = {"sender": "alice", "recipient": "bob", "body": "hi"}
    fields.update(kw)
    return store.send_message(TEAM, OutgoingMessage(**fields))


def _bad_inputs() -> list[tuple[str, Action, type[BaseException]]]:
    s = TaskChanges
    cases: list[tuple[str, Action, type[BaseException]]] = [
        # teams
        ("team-taken", lambda st, w: st.create_team(TEAM), AlreadyExists),
        (
            "team-description-cap",
            lambda st, w: st.create_team("x", "d" * (MAX_DESCRIPTION + 1)),
            UserError,
        ),
        ("team-delete-unknown", lambda st, w: st.delete_team("nope"), UnknownTeam),
        # members
        ("member-taken", lambda st, w: st.add_member(TEAM, "alice", token_hash="h"), AlreadyExists),
        (
            "member-unknown-team",
            lambda st, w: st.add_member("nope", "dave", token_hash="h"),
            UnknownTeam,
        ),
        (
            "member-bad-agent",
            lambda st, w: st.add_member(TEAM, "dave", token_hash="h", agent="../x"),
            InvalidName,
        ),
        (
            "member-update-unknown",
            lambda st, w: st.update_member(TEAM, "dave", status=MemberStatus.IDLE),
            UnknownMember,
        ),
        (
            "member-update-bad-agent",
            lambda st, w: st.update_member(TEAM, "alice", agent="A B"),
            InvalidName,
        ),
        ("member-remove-unknown", lambda st, w: st.remove_member(TEAM, "dave"), UnknownMember),
        # tasks
        ("task-empty-title", lambda st, w: _add(st, ""), UserError),
        ("task-blank-title", lambda st, w: _add(st, "   "), UserError),
        ("task-title-cap", lambda st, w: _add(st, "t" * (MAX_TITLE + 1)), UserError),
        (
            "task-description-cap",
            lambda st, w: _add(st, description="d" * (MAX_DESCRIPTION + 1)),
            UserError,
        ),
        ("task-unknown-blocker", lambda st, w: _add(st, blocked_by=(w.held, 999)), UnknownTask),
        ("task-unknown-assignee", lambda st, w: _add(st, assignee="dave"), UnknownMember),
        ("task-zero-attempts", lambda st, w: _add(st, max_attempts=0), UserError),
        # a batch is all or nothing: a bad last item leaves the good ones unwritten too
        ("batch-bad-title", lambda st, w: _batch(st, _plan("a"), _plan("")), UserError),
        (
            "batch-unknown-assignee",
            lambda st, w: _batch(st, _plan("a"), _plan("b", assignee="dave")),
            UnknownMember,
        ),
        (
            "batch-unknown-blocker",
            lambda st, w: _batch(st, _plan("a"), _plan("b", blocked_by=(w.held, 999))),
            UnknownTask,
        ),
        (
            "batch-waits-on-a-later-item",
            lambda st, w: _batch(st, _plan("a", after=(1,)), _plan("b")),
            UserError,
        ),
        (
            "batch-waits-on-itself",
            lambda st, w: _batch(st, _plan("a"), _plan("b", after=(1,))),
            UserError,
        ),
        (
            "batch-duplicate-key",
            lambda st, w: _batch(st, _plan("a", key="k"), _plan("b", key="k")),
            UserError,
        ),
        ("batch-empty-key", lambda st, w: _batch(st, _plan("a", key=" ")), UserError),
        (
            "batch-key-cap",
            lambda st, w: _batch(st, _plan("a", key="k" * (MAX_KEY + 1))),
            UserError,
        ),
        (
            "batch-unknown-team",
            lambda st, w: st.add_tasks("nope", [_plan("a")], max_attempts=ATTEMPTS),
            UnknownTeam,
        ),
        (
            "task-new-zero-attempts",
            lambda st, w: st.add_task(TEAM, NewTask("t", max_attempts=0), max_attempts=3),
            UserError,
        ),
        (
            "task-new-negative-attempts",
            lambda st, w: st.add_task(TEAM, NewTask("t", max_attempts=-1), max_attempts=3),
            UserError,
        ),
        ("task-unknown-team", lambda st, w: _add(st, team="nope"), UnknownTeam),
        ("admit-unknown", lambda st, w: st.admit_task(TEAM, 999), UnknownTask),
        ("remove-admitted", lambda st, w: st.remove_task(TEAM, w.chain[0], "no"), InvalidState),
        ("remove-unknown", lambda st, w: st.remove_task(TEAM, 999, "no"), UnknownTask),
        (
            "update-self-block",
            lambda st, w: st.update_task(TEAM, w.chain[0], s(add_blockers=(w.chain[0],))),
            CycleError,
        ),
        (
            "update-cycle",
            lambda st, w: st.update_task(TEAM, w.chain[0], s(add_blockers=(w.chain[2],))),
            CycleError,
        ),
        (
            "update-unknown-blocker",
            lambda st, w: st.update_task(TEAM, w.chain[0], s(add_blockers=(999,))),
            UnknownTask,
        ),
        (
            "update-blockers-in-progress",
            lambda st, w: st.update_task(TEAM, w.held, s(add_blockers=(w.chain[0],))),
            InvalidState,
        ),
        (
            "update-finished",
            lambda st, w: st.update_task(TEAM, w.done, s(title="again")),
            InvalidState,
        ),
        (
            "update-cancelled",
            lambda st, w: st.update_task(TEAM, w.cancelled, s(priority=3)),
            InvalidState,
        ),
        (
            "update-empty-title",
            lambda st, w: st.update_task(TEAM, w.chain[0], s(title=" ")),
            UserError,
        ),
        (
            "update-title-cap",
            lambda st, w: st.update_task(TEAM, w.chain[0], s(title="t" * (MAX_TITLE + 1))),
            UserError,
        ),
        (
            "update-remove-absent-blocker",
            lambda st, w: st.update_task(TEAM, w.chain[0], s(remove_blockers=(w.done,))),
            UserError,
        ),
        (
            "update-unknown-assignee",
            lambda st, w: st.update_task(TEAM, w.chain[0], s(assignee="dave")),
            UnknownMember,
        ),
        (
            "update-unknown-task",
            lambda st, w: st.update_task(TEAM, 999, s(priority=1)),
            UnknownTask,
        ),
        # claims
        (
            "claim-unknown-member",
            lambda st, w: st.claim_task(TEAM, "dave", lease_seconds=LEASE),
            UnknownMember,
        ),
        (
            "claim-zero-lease",
            lambda st, w: st.claim_task(TEAM, "alice", lease_seconds=0),
            UserError,
        ),
        ("claim-unknown-task", lambda st, w: _claim(st, "alice", 999), UnknownTask),
        ("claim-blocked", lambda st, w: _claim(st, "carol", w.blocked), InvalidState),
        ("claim-waiting-on-chain", lambda st, w: _claim(st, "carol", w.chain[2]), InvalidState),
        ("claim-held", lambda st, w: _claim(st, "bob", w.held), InvalidState),
        ("claim-assigned-to-other", lambda st, w: _claim(st, "carol", w.assigned), InvalidState),
        ("claim-unadmitted", lambda st, w: _claim(st, "carol", w.unadmitted), InvalidState),
        ("claim-cancelled", lambda st, w: _claim(st, "carol", w.cancelled), InvalidState),
        ("claim-completed", lambda st, w: _claim(st, "carol", w.done), InvalidState),
        (
            "heartbeat-stale",
            lambda st, w: st.heartbeat_task(
                TEAM, w.held, "alice", w.held_token - 1, lease_seconds=LEASE
            ),
            StaleToken,
        ),
        (
            "heartbeat-not-holder",
            lambda st, w: st.heartbeat_task(TEAM, w.held, "bob", w.held_token, lease_seconds=LEASE),
            NotClaimHolder,
        ),
        (
            "heartbeat-zero-lease",
            lambda st, w: st.heartbeat_task(TEAM, w.held, "alice", w.held_token, lease_seconds=0),
            UserError,
        ),
        (
            "heartbeat-expired",
            lambda st, w: st.heartbeat_task(
                TEAM, w.expired, "bob", w.expired_token, lease_seconds=LEASE
            ),
            StaleToken,
        ),
        (
            "heartbeat-cancelled",
            lambda st, w: st.heartbeat_task(
                TEAM, w.cancelled, "carol", w.cancelled_token, lease_seconds=LEASE
            ),
            StaleToken,
        ),
        (
            "heartbeat-unknown-task",
            lambda st, w: st.heartbeat_task(TEAM, 999, "alice", 1, lease_seconds=LEASE),
            UnknownTask,
        ),
        (
            "check-not-holder",
            lambda st, w: st.check_claim(TEAM, w.held, "carol", w.held_token),
            NotClaimHolder,
        ),
        (
            "check-expired",
            lambda st, w: st.check_claim(TEAM, w.expired, "bob", w.expired_token),
            StaleToken,
        ),
        (
            "complete-not-holder",
            lambda st, w: st.complete_task(TEAM, w.held, "bob", w.held_token),
            NotClaimHolder,
        ),
        (
            "complete-stale",
            lambda st, w: st.complete_task(TEAM, w.held, "alice", w.done_token),
            StaleToken,
        ),
        (
            "complete-expired",
            lambda st, w: st.complete_task(TEAM, w.expired, "bob", w.expired_token),
            StaleToken,
        ),
        (
            "complete-cancelled",
            lambda st, w: st.complete_task(TEAM, w.cancelled, "carol", w.cancelled_token),
            StaleToken,
        ),
        (
            "complete-result-cap",
            lambda st, w: st.complete_task(
                TEAM, w.held, "alice", w.held_token, "r" * (MAX_RESULT + 1)
            ),
            UserError,
        ),
        (
            "complete-never-claimed",
            lambda st, w: st.complete_task(TEAM, w.chain[0], "alice", w.held_token),
            ClaimError,
        ),
        (
            "fail-empty-reason",
            lambda st, w: st.fail_task(TEAM, w.held, "alice", w.held_token, " "),
            UserError,
        ),
        (
            "fail-reason-cap",
            lambda st, w: st.fail_task(TEAM, w.held, "alice", w.held_token, "r" * (MAX_RESULT + 1)),
            UserError,
        ),
        (
            "fail-stale",
            lambda st, w: st.fail_task(TEAM, w.held, "alice", w.held_token + 1000, "x"),
            StaleToken,
        ),
        (
            "fail-not-holder",
            lambda st, w: st.fail_task(TEAM, w.held, "carol", w.held_token, "x"),
            NotClaimHolder,
        ),
        (
            "fail-expired",
            lambda st, w: st.fail_task(TEAM, w.expired, "bob", w.expired_token, "x", retry=True),
            StaleToken,
        ),
        ("cancel-completed", lambda st, w: st.cancel_task(TEAM, w.done, "no"), InvalidState),
        ("cancel-cancelled", lambda st, w: st.cancel_task(TEAM, w.cancelled, "no"), InvalidState),
        ("cancel-unknown", lambda st, w: st.cancel_task(TEAM, 999, "no"), UnknownTask),
        # mail
        ("send-unknown-recipient", lambda st, w: _msg(st, recipient="dave"), UnknownMember),
        ("send-unknown-sender", lambda st, w: _msg(st, sender="dave"), UnknownMember),
        ("send-bad-recipient-name", lambda st, w: _msg(st, recipient="../x"), UnknownMember),
        (
            "send-unknown-team",
            lambda st, w: st.send_message("nope", _text("alice", "bob")),
            UnknownTeam,
        ),
        ("send-empty-body", lambda st, w: _msg(st, body=""), UserError),
        ("send-blank-body", lambda st, w: _msg(st, body=" \n"), UserError),
        ("send-body-cap", lambda st, w: _msg(st, body="b" * (MAX_BODY + 1)), UserError),
        ("send-summary-cap", lambda st, w: _msg(st, summary="s" * (MAX_SUMMARY + 1)), UserError),
        ("send-key-cap", lambda st, w: _msg(st, idempotency_key="k" * (MAX_KEY + 1)), UserError),
        (
            "send-response-unasked",
            lambda st, w: _msg(st, kind=MessageKind.SHUTDOWN_RESPONSE),
            UserError,
        ),
        (
            "send-response-to-text",
            lambda st, w: _msg(
                st,
                sender="bob",
                recipient="alice",
                kind=MessageKind.SHUTDOWN_RESPONSE,
                reply_to=w.to_bob,
            ),
            UserError,
        ),
        (
            "send-response-wrong-kind",
            lambda st, w: _msg(
                st,
                sender="bob",
                recipient="alice",
                kind=MessageKind.PLAN_APPROVAL_RESPONSE,
                reply_to=w.request,
            ),
            UserError,
        ),
        (
            "send-response-not-addressee",
            lambda st, w: _msg(
                st,
                sender="carol",
                recipient="alice",
                kind=MessageKind.SHUTDOWN_RESPONSE,
                reply_to=w.request,
            ),
            UserError,
        ),
        ("send-reply-to-unknown", lambda st, w: _msg(st, reply_to=9999), UnknownMessage),
        (
            "send-request-reply-to-unknown",
            lambda st, w: _msg(st, kind=MessageKind.PLAN_APPROVAL_REQUEST, reply_to=9999),
            UnknownMessage,
        ),
        (
            "broadcast-alone",
            lambda st, w: st.send_message("solo", _text("only", BROADCAST)),
            InvalidState,
        ),
        (
            "receive-unknown-member",
            lambda st, w: st.receive_messages(TEAM, "dave", visibility_timeout=VISIBILITY),
            UnknownMember,
        ),
        (
            "receive-zero-timeout",
            lambda st, w: st.receive_messages(TEAM, "bob", visibility_timeout=0),
            UserError,
        ),
        ("ack-others", lambda st, w: st.ack_messages(TEAM, "alice", [w.to_bob]), UnknownMessage),
        (
            "ack-mixed",
            lambda st, w: st.ack_messages(TEAM, "bob", [w.to_bob, w.to_alice]),
            UnknownMessage,
        ),
        (
            "ack-missing",
            lambda st, w: st.ack_messages(TEAM, "bob", [w.to_bob, 9999]),
            UnknownMessage,
        ),
        (
            "ack-other-team",
            lambda st, w: st.ack_messages("solo", "only", [w.to_bob]),
            UnknownMessage,
        ),
        (
            "ack-unknown-member",
            lambda st, w: st.ack_messages(TEAM, "dave", [w.to_bob]),
            UnknownMember,
        ),
        # events
        (
            "event-payload-cap",
            lambda st, w: st.append_event(TEAM, "note", {"x": "p" * MAX_PAYLOAD}),
            UserError,
        ),
        ("event-unknown-team", lambda st, w: st.append_event("nope", "note", {}), UnknownTeam),
    ]
    return cases


BAD_INPUTS = _bad_inputs()


# The suite --------------------------------------------------------------------------


class StoreConformance(
    BellConformance,
    RunConformance,
    FileClaimConformance,
    LiveOutputConformance,
    ChannelConformance,
    DeliberationConformance,
    RouteConformance,
    LessonConformance,
    SkillConformance,
):
    """Every promise of the store, as tests; subclass it and provide ``make_store``."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store(self, make_store: MakeStore, clock: FakeClock) -> Store:
        """A store with team ``main`` and members alice, bob and carol."""
        store = make_store(clock=clock)
        store.create_team(TEAM)
        for name in MEMBERS:
            store.add_member(TEAM, name, token_hash=f"hash-{name}")
        return store

    # bad input changes nothing ----------------------------------------------------

    @pytest.mark.parametrize(
        ("action", "error"), [(a, e) for _, a, e in BAD_INPUTS], ids=[n for n, _, _ in BAD_INPUTS]
    )
    def test_bad_input_changes_nothing(
        self, make_store: MakeStore, action: Action, error: type[BaseException]
    ) -> None:
        clock = FakeClock()
        store = make_store(clock=clock)
        store.create_team(TEAM)
        world = build_world(store, clock)
        with refused(store, error):
            action(store, world)
        # And through a second connection, in case the first only cached the change.
        other = make_store(clock=clock)
        assert snapshot(other) == snapshot(store)

    # the interface ----------------------------------------------------------------

    def test_implements_every_store_method(self, make_store: MakeStore) -> None:
        """A backend leaves no part of the seam unwritten, and every operation of every
        part says its contract: ``Store`` is written once, in its parts."""
        store = make_store(clock=FakeClock())
        assert isinstance(store, Store)
        assert not inspect.isabstract(type(store)), type(store).__abstractmethods__
        parts = [c for c in Store.__mro__ if c.__module__.startswith(Store.__module__)]
        assert len(parts) >= 8  # the seam, teams, tasks, claims, mail, log, runs, memory, dump
        unsaid = [
            f"{part.__name__}.{name}"
            for part in parts
            for name, member in vars(part).items()
            if inspect.isfunction(member) and not name.startswith("_")
            if not inspect.getdoc(member)
        ]
        assert unsaid == []

    def test_refusals_carry_what_they_are_about(self, store: Store) -> None:
        """A refusal says what was wrong in neutral words, and carries its fields for a
        front door to word advice from (the command line names a command, a tool a tool)."""
        with pytest.raises(UnknownTeam) as team:
            store.get_task("nope", 1)
        with pytest.raises(UnknownTask) as task:
            store.get_task(TEAM, 99)
        with pytest.raises(UnknownMessage) as message:
            store.ack_messages(TEAM, "alice", [98, 99])
        with pytest.raises(UnknownMemory) as memory:
            store.get_memory(TEAM, 99)
        added = store.add_task(TEAM, NewTask("one"), max_attempts=3)
        with pytest.raises(NotClaimHolder) as unclaimed:
            store.complete_task(TEAM, added.id, "alice", 1)
        with pytest.raises(InvalidState) as never_run:
            store.claim_supervisor(TEAM, 1, "h", 30)
        claim = store.claim_task(TEAM, "alice", lease_seconds=60)
        assert claim is not None
        with pytest.raises(StaleToken) as stale:
            store.complete_task(TEAM, claim.task.id, "alice", claim.fencing_token + 1)
        assert team.value.team == "nope"
        assert (stale.value.team, stale.value.task_id, stale.value.member) == (
            TEAM,
            claim.task.id,
            "alice",
        )
        assert (task.value.team, task.value.task_id) == (TEAM, 99)
        assert (message.value.member, message.value.message_ids) == ("alice", (98, 99))
        assert memory.value.memory_id == 99
        assert unclaimed.value.reason == Reason.UNCLAIMED
        assert (unclaimed.value.team, unclaimed.value.task_id, unclaimed.value.member) == (
            TEAM,
            added.id,
            "alice",
        )
        assert never_run.value.reason == Reason.NEVER_RUN
        refusals = [team, task, message, memory, unclaimed, never_run, stale]
        assert not [str(r.value) for r in refusals if "`accord" in str(r.value)]

    # teams ------------------------------------------------------------------------

    def test_new_store_is_empty(self, make_store: MakeStore) -> None:
        store = make_store(clock=FakeClock())
        assert store.list_teams() == []
        with pytest.raises(UnknownTeam):
            store.get_team(TEAM)

    def test_create_get_list_teams(self, make_store: MakeStore, clock: FakeClock) -> None:
        store = make_store(clock=clock)
        zeta = store.create_team("zeta", "the last", actor="lead")
        clock.advance(1)
        alpha = store.create_team("alpha")
        assert zeta.name == "zeta" and zeta.description == "the last"
        assert zeta.created_at == clock() - 1 and alpha.created_at == clock()
        assert alpha.description == ""
        assert alpha.id != zeta.id
        assert store.get_team("zeta") == zeta
        assert store.list_teams() == [alpha, zeta]  # by name
        events = store.read_events("zeta")
        assert [(e.seq, e.kind, e.actor, e.team) for e in events] == [
            (1, "team_created", "lead", "zeta")
        ]

    def test_team_names(self, make_store: MakeStore) -> None:
        store = make_store(clock=FakeClock())
        for good in ("a", "0", "a" * 40, "team-1_x", "9lives"):
            assert store.create_team(good).name == good
        for bad in BAD_NAMES:
            with refused(store, InvalidName):
                store.create_team(bad)

    def test_duplicate_team(self, store: Store) -> None:
        with refused(store, AlreadyExists):
            store.create_team(TEAM, "again")

    def test_unknown_team_everywhere(self, store: Store) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.get_team("nope"),
            lambda: store.list_members("nope"),
            lambda: store.get_member("nope", "alice"),
            lambda: store.list_tasks("nope"),
            lambda: store.get_task("nope", 1),
            lambda: store.claim_task("nope", "alice", lease_seconds=LEASE),
            lambda: store.expire_leases("nope"),
            lambda: store.receive_messages("nope", "alice", visibility_timeout=VISIBILITY),
            lambda: store.list_messages("nope"),
            lambda: store.get_message("nope", 1),
            lambda: store.read_events("nope"),
            lambda: store.pending_work("nope", "alice"),
        ]
        for call in calls:
            with refused(store, UnknownTeam):
                call()

    def test_delete_team_removes_everything_in_it(self, store: Store, clock: FakeClock) -> None:
        store.create_team("other")
        store.add_member("other", "alice", token_hash="h")
        kept = snapshot(store)
        first = _add(store, "first")
        second = _add(store, "second", blocked_by=(first.id,))
        _claim(store, "alice", first.id)
        store.send_message(TEAM, _text("alice", "bob"))
        store.send_message(TEAM, _text("bob", BROADCAST))
        store.delete_team(TEAM)
        with pytest.raises(UnknownTeam):
            store.get_team(TEAM)
        assert [t.name for t in store.list_teams()] == ["other"]
        # The other team is untouched.
        after = snapshot(store)
        other = [t.name for t in kept.teams].index("other")
        assert after.members[0] == kept.members[other]
        assert after.events[0] == kept.events[other]
        # A team made again under the same name starts empty, its log from seq 1.
        store.create_team(TEAM)
        assert store.list_members(TEAM) == []
        assert store.list_tasks(TEAM) == []
        assert store.list_messages(TEAM) == []
        assert [(e.seq, e.kind) for e in store.read_events(TEAM)] == [(1, "team_created")]
        with pytest.raises(UnknownTask):
            store.get_task(TEAM, second.id)

    # members ----------------------------------------------------------------------

    def test_add_get_list_members(self, make_store: MakeStore, clock: FakeClock) -> None:
        store = make_store(clock=clock)
        store.create_team(TEAM)
        with logs(store, "member_added"):
            lead = store.add_member(
                TEAM,
                "zed",
                token_hash="secret-hash",
                role=MemberRole.LEAD,
                agent="planner",
                model="some-model",
                actor="me",
            )
        bee = store.add_member(TEAM, "bee", token_hash="other-hash")
        assert lead.team == TEAM and lead.name == "zed"
        assert lead.role == MemberRole.LEAD and bee.role == MemberRole.TEAMMATE
        assert (lead.agent, lead.model) == ("planner", "some-model")
        assert (bee.agent, bee.model) == (None, None)
        assert lead.status == MemberStatus.STOPPED
        assert lead.heartbeat_at is None and lead.pid is None and lead.host is None
        assert lead.created_at == clock()
        assert lead.token_hash == "secret-hash"
        assert store.get_member(TEAM, "zed") == lead
        assert store.list_members(TEAM) == [bee, lead]  # by name

    def test_member_names(self, store: Store) -> None:
        assert store.add_member(TEAM, "a" * 40, token_hash="h").name == "a" * 40
        for bad in BAD_NAMES:
            with refused(store, InvalidName):
                store.add_member(TEAM, bad, token_hash="h")

    def test_duplicate_member_and_same_name_in_another_team(self, store: Store) -> None:
        with refused(store, AlreadyExists):
            store.add_member(TEAM, "alice", token_hash="h")
        store.create_team("other")
        assert store.add_member("other", "alice", token_hash="h").team == "other"

    def test_unknown_member(self, store: Store) -> None:
        for call in (
            lambda: store.get_member(TEAM, "dave"),
            lambda: store.update_member(TEAM, "dave", heartbeat=True),
            lambda: store.remove_member(TEAM, "dave"),
            lambda: store.claim_task(TEAM, "dave", lease_seconds=LEASE),
            lambda: store.receive_messages(TEAM, "dave", visibility_timeout=VISIBILITY),
            lambda: store.ack_messages(TEAM, "dave", [1]),
            lambda: store.send_message(TEAM, _text("dave", "alice")),
            lambda: store.send_message(TEAM, _text("alice", "dave")),
        ):
            with refused(store, UnknownMember):
                call()

    def test_update_member(self, store: Store, clock: FakeClock) -> None:
        with logs(store, "member_updated"):
            m = store.update_member(
                TEAM, "alice", status=MemberStatus.WORKING, pid=4242, host="box", actor="lead"
            )
        assert (m.status, m.pid, m.host) == (MemberStatus.WORKING, 4242, "box")
        assert store.get_member(TEAM, "alice") == m
        with logs(store, "member_updated"):
            m = store.update_member(TEAM, "alice", agent="reviewer", model="m2")
        assert (m.agent, m.model, m.pid) == ("reviewer", "m2", 4242)
        with logs(store, "member_updated"):
            m = store.update_member(TEAM, "alice", pid=None, host=None, agent=None)
        assert (m.pid, m.host, m.agent, m.model) == (None, None, None, "m2")
        with logs(store, "member_updated"):
            m = store.update_member(TEAM, "alice", token_hash="rotated")
        assert m.token_hash == "rotated"
        assert store.get_member(TEAM, "bob").token_hash == "hash-bob"

    def test_member_heartbeat_is_not_logged(self, store: Store, clock: FakeClock) -> None:
        clock.advance(5)
        with logs(store):
            m = store.update_member(TEAM, "bob", heartbeat=True)
        assert m.heartbeat_at == clock()
        with logs(store):  # the same status again is no change either
            store.update_member(TEAM, "bob", status=MemberStatus.STOPPED)
        with logs(store):
            assert store.update_member(TEAM, "bob") == m

    def test_remove_member_releases_its_tasks(self, store: Store) -> None:
        held = _add(store, "held by bob")
        other = _add(store, "held by alice")
        assigned = _add(store, "for bob", assignee="bob")
        claim = _claim(store, "bob", held.id)
        _claim(store, "alice", other.id)
        store.send_message(TEAM, _text("bob", "alice"))
        with logs(store, "member_removed"):
            released = store.remove_member(TEAM, "bob", actor="lead")
        assert released == [held.id]
        with pytest.raises(UnknownMember):
            store.get_member(TEAM, "bob")
        assert [m.name for m in store.list_members(TEAM)] == ["alice", "carol"]
        task = store.get_task(TEAM, held.id)
        assert task.status == TaskStatus.PENDING and task.owner is None and task.ready
        assert store.get_task(TEAM, other.id).status == TaskStatus.IN_PROGRESS
        # Bob's old token is worthless and the released and reassignable work is claimable.
        with refused(store, ClaimError):
            store.complete_task(TEAM, held.id, "bob", claim.fencing_token)
        assert store.get_task(TEAM, assigned.id).assignee is None
        got = {_claim(store, "carol").task.id, _claim(store, "carol").task.id}
        assert got == {held.id, assigned.id}
        # Mail already sent by bob stays readable.
        assert [m.sender for m in store.list_messages(TEAM, member="alice")] == ["bob"]

    # tasks ------------------------------------------------------------------------

    def test_add_and_get_task(self, store: Store, clock: FakeClock) -> None:
        with logs(store, "task_created") as events:
            t = store.add_task(
                TEAM,
                NewTask("  Write docs  ", "all of them", priority=4, assignee="bob"),
                max_attempts=5,
                actor="alice",
            )
        assert events[0].payload["id"] == t.id and events[0].actor == "alice"
        assert t.team == TEAM and t.id == 1
        assert t.title == "Write docs" and t.description == "all of them"
        assert t.status == TaskStatus.PENDING and t.priority == 4 and t.assignee == "bob"
        assert t.owner is None and t.fencing_token is None and t.lease_expires_at is None
        assert t.attempts == 0 and t.max_attempts == 5
        assert t.result is None and t.reason is None
        assert t.created_by == "alice" and t.created_at == t.updated_at == clock()
        assert t.blocked_by == t.waiting_on == t.dead_blockers == ()
        assert t.admitted and t.ready
        assert store.get_task(TEAM, t.id) == t
        own = store.add_task(TEAM, NewTask("own cap", max_attempts=2), max_attempts=5)
        assert own.id == 2 and own.max_attempts == 2
        with refused(store, UnknownTask):
            store.get_task(TEAM, 3)

    def test_task_ids_are_per_team(self, store: Store) -> None:
        store.create_team("other")
        assert [_add(store).id for _ in range(3)] == [1, 2, 3]
        assert _add(store, team="other").id == 1
        with pytest.raises(UnknownTask):
            store.get_task("other", 2)

    def test_add_tasks_puts_a_batch_on_the_board(self, store: Store, clock: FakeClock) -> None:
        before = _add(store, "already there")
        with logs(store, "task_created", "task_created", "task_created") as events:
            added = _batch(
                store,
                _plan("first", key="first", priority=2, description="d"),
                _plan("second", key="second", after=(0,), blocked_by=(before.id,)),
                _plan("third", after=(0, 1), assignee="bob", max_attempts=7),
                actor="lead",
            )
        assert [created for _, created in added] == [True, True, True]
        first, second, third = (task for task, _ in added)
        assert [first.id, second.id, third.id] == [before.id + 1, before.id + 2, before.id + 3]
        assert [e.payload["id"] for e in events] == [first.id, second.id, third.id]
        assert all(e.actor == "lead" for e in events)
        assert events[0].payload["plan_key"] == "first" and "plan_key" not in events[2].payload
        assert events[1].payload["blocked_by"] == [before.id, first.id]
        assert (first.plan_key, second.plan_key, third.plan_key) == ("first", "second", None)
        assert first.priority == 2 and first.description == "d" and first.ready
        assert second.blocked_by == (before.id, first.id) and not second.ready
        assert third.blocked_by == (first.id, second.id) and third.assignee == "bob"
        assert third.max_attempts == 7 and first.max_attempts == ATTEMPTS
        assert first.created_by == "lead" and first.created_at == clock()
        assert [store.get_task(TEAM, t.id) for t, _ in added] == [first, second, third]
        with logs(store):
            assert _batch(store) == []

    def test_add_tasks_adds_a_taken_key_once(self, store: Store) -> None:
        (a, _), (b, _) = _batch(store, _plan("a", key="a"), _plan("b", key="b", after=(0,)))
        _finish(store, a.id)
        with logs(store, "task_created") as events:
            again = _batch(
                store,
                _plan("a renamed", key="a"),
                _plan("c", key="c", after=(0,)),
                _plan("b", key="b"),
            )
        assert [created for _, created in again] == [False, True, False]
        assert again[0][0] == store.get_task(TEAM, a.id) and again[0][0].title == "a"
        assert again[2][0] == store.get_task(TEAM, b.id)
        c = again[1][0]
        assert events[0].payload["id"] == c.id and c.blocked_by == (a.id,) and c.ready
        # Keys are per team.
        store.create_team("other")
        (elsewhere, created), *_ = store.add_tasks(
            "other", [_plan("a", key="a")], max_attempts=ATTEMPTS
        )
        assert created and elsewhere.plan_key == "a" and elsewhere.id == 1

    def test_add_tasks_unadmitted_are_held(self, store: Store) -> None:
        with logs(store, "task_created", "task_created") as events:
            added = _batch(store, _plan("a"), _plan("b", after=(0,)), admitted=False)
        assert all(e.payload["admitted"] is False for e in events)
        assert [t.admitted for t, _ in added] == [False, False]
        assert store.claim_task(TEAM, "alice", lease_seconds=LEASE) is None
        store.admit_task(TEAM, added[0][0].id)
        assert _claim(store, "alice").task.id == added[0][0].id

    def test_add_tasks_is_all_or_nothing(self, make_store: MakeStore, clock: FakeClock) -> None:
        store = make_store(clock=clock)
        store.create_team(TEAM)
        store.add_member(TEAM, "alice", token_hash="h")
        with refused(store, UnknownMember):
            _batch(store, _plan("a", key="a"), _plan("b", after=(0,), assignee="dave"))
        other = make_store(clock=clock)
        assert other.list_tasks(TEAM) == [] and other.read_events(TEAM)[-1].kind != "task_created"
        # Nothing was used up either: the next task still gets id 1, its key is free.
        (a, created), *_ = _batch(store, _plan("a", key="a"))
        assert created and a.id == 1

    def test_blockers_and_readiness(self, store: Store) -> None:
        a = _add(store, "a")
        b = _add(store, "b")
        c = _add(store, "c", blocked_by=(b.id, a.id, a.id))
        assert c.blocked_by == (a.id, b.id) and c.waiting_on == (a.id, b.id)
        assert not c.ready and c.status == TaskStatus.PENDING
        assert [t.id for t in store.list_tasks(TEAM, ready=True)] == [a.id, b.id]
        _finish(store, a.id)
        c = store.get_task(TEAM, c.id)
        assert c.waiting_on == (b.id,) and not c.ready
        with refused(store, InvalidState):
            _claim(store, "bob", c.id)
        with logs(store, "task_claimed", "task_completed") as events:
            _finish(store, b.id)
        assert events[1].payload["id"] == b.id
        c = store.get_task(TEAM, c.id)
        assert c.waiting_on == () and c.ready and c.blocked_by == (a.id, b.id)
        assert [t.id for t in store.list_tasks(TEAM, ready=True)] == [c.id]
        assert _claim(store, "bob").task.id == c.id

    def test_list_tasks_filters(self, store: Store) -> None:
        a = _add(store, "a")
        b = _add(store, "b", blocked_by=(a.id,))
        c = _add(store, "c")
        d = _add(store, "d", admitted=False)
        _claim(store, "alice", c.id)
        assert [t.id for t in store.list_tasks(TEAM)] == [a.id, b.id, c.id, d.id]
        assert [t.id for t in store.list_tasks(TEAM, status=TaskStatus.PENDING)] == [
            a.id,
            b.id,
            d.id,
        ]
        assert [t.id for t in store.list_tasks(TEAM, status=TaskStatus.IN_PROGRESS)] == [c.id]
        assert store.list_tasks(TEAM, status=TaskStatus.COMPLETED) == []
        assert [t.id for t in store.list_tasks(TEAM, ready=True)] == [a.id]

    def test_update_task(self, store: Store) -> None:
        a = _add(store, "a")
        b = _add(store, "b")
        t = _add(store, "t", blocked_by=(a.id,))
        with logs(store, "task_updated"):
            t = store.update_task(
                TEAM,
                t.id,
                TaskChanges(
                    title="new title",
                    description="new text",
                    priority=7,
                    assignee="carol",
                    add_blockers=(b.id,),
                    remove_blockers=(a.id,),
                ),
                actor="lead",
            )
        assert (t.title, t.description, t.priority, t.assignee) == (
            "new title",
            "new text",
            7,
            "carol",
        )
        assert t.blocked_by == (b.id,)
        with logs(store, "task_updated"):
            t = store.update_task(TEAM, t.id, TaskChanges(unassign=True))
        assert t.assignee is None
        with logs(store):  # nothing asked, nothing changed, nothing logged
            assert store.update_task(TEAM, t.id, TaskChanges()) == t
        with logs(store):  # a blocker it already has is no change either
            assert store.update_task(TEAM, t.id, TaskChanges(add_blockers=(b.id,))) == t
        assert store.get_task(TEAM, t.id) == t

    def test_running_task_can_change_but_not_its_blockers(self, store: Store) -> None:
        a = _add(store, "a")
        t = _add(store, "t")
        claim = _claim(store, "alice", t.id)
        with logs(store, "task_updated"):
            changed = store.update_task(TEAM, t.id, TaskChanges(priority=3, title="renamed"))
        assert changed.status == TaskStatus.IN_PROGRESS and changed.priority == 3
        assert changed.fencing_token == claim.fencing_token
        with refused(store, InvalidState):
            store.update_task(TEAM, t.id, TaskChanges(add_blockers=(a.id,)))

    # cycles -------------------------------------------------------------------------

    def test_self_block_is_a_cycle(self, store: Store) -> None:
        t = _add(store)
        with refused(store, CycleError) as info:
            store.update_task(TEAM, t.id, TaskChanges(add_blockers=(t.id,)))
        assert info.value.cycle == (t.id, t.id)

    def test_cycle_is_refused_and_named(self, store: Store) -> None:
        a = _add(store, "a")
        b = _add(store, "b", blocked_by=(a.id,))
        c = _add(store, "c", blocked_by=(b.id,))
        d = _add(store, "d", blocked_by=(c.id,))
        with refused(store, CycleError) as info:
            store.update_task(TEAM, a.id, TaskChanges(add_blockers=(c.id,)))
        cycle = info.value.cycle
        # (x, ..., x), each blocking the next, over the edges there are plus the new one.
        assert cycle[0] == cycle[-1] and set(cycle) == {a.id, b.id, c.id}
        edges = {(a.id, b.id), (b.id, c.id), (c.id, d.id), (c.id, a.id)}
        assert all((x, y) in edges for x, y in zip(cycle, cycle[1:], strict=False))
        for task_id in set(cycle):
            assert str(task_id) in str(info.value)
        # Through several new blockers at once, and through a finished blocker too.
        with refused(store, CycleError):
            store.update_task(TEAM, a.id, TaskChanges(add_blockers=(d.id,)))
        e = _add(store, "e")
        with refused(store, CycleError):
            store.update_task(TEAM, a.id, TaskChanges(add_blockers=(e.id, d.id)))
        # A diamond is no cycle.
        store.update_task(TEAM, d.id, TaskChanges(add_blockers=(a.id, e.id)))
        assert store.get_task(TEAM, d.id).blocked_by == (a.id, c.id, e.id)

    # claims -------------------------------------------------------------------------

    def test_claim_takes_a_ready_task_under_a_lease(self, store: Store, clock: FakeClock) -> None:
        t = _add(store)
        with logs(store, "task_claimed") as events:
            claim = _claim(store, "alice")
        assert events[0].payload["id"] == t.id and events[0].actor == "alice"
        assert claim.task.id == t.id
        assert claim.lease_expires_at == clock() + LEASE
        task = claim.task
        assert task.status == TaskStatus.IN_PROGRESS and task.owner == "alice"
        assert task.fencing_token == claim.fencing_token
        assert task.lease_expires_at == claim.lease_expires_at
        assert task.attempts == 1 and not task.ready
        assert store.get_task(TEAM, t.id) == task
        with logs(store):
            assert store.claim_task(TEAM, "bob", lease_seconds=LEASE) is None
        with refused(store, InvalidState):
            _claim(store, "bob", t.id)

    def test_claim_when_nothing_is_ready(self, store: Store) -> None:
        assert store.claim_task(TEAM, "alice", lease_seconds=LEASE) is None
        a = _add(store)
        _add(store, blocked_by=(a.id,))
        _add(store, admitted=False)
        _add(store, assignee="bob")
        _claim(store, "alice", a.id)
        assert store.claim_task(TEAM, "alice", lease_seconds=LEASE) is None

    def test_claim_prefers_tasks_assigned_to_the_claimer(self, store: Store) -> None:
        urgent = _add(store, "urgent", priority=9)
        mine = _add(store, "mine", assignee="alice")
        assert _claim(store, "alice").task.id == mine.id
        assert _claim(store, "bob").task.id == urgent.id

    def test_claim_prefers_higher_priority(self, store: Store) -> None:
        low = _add(store, "low", priority=-1)
        normal = _add(store, "normal")
        high = _add(store, "high", priority=5)
        _add(store, "behind low", blocked_by=(low.id,))
        order = [_claim(store, "alice").task.id for _ in range(3)]
        assert order == [high.id, normal.id, low.id]

    def test_claim_prefers_more_work_waiting_behind(self, store: Store) -> None:
        fan = _add(store, "two wait on me directly")
        chain = _add(store, "three wait on me through a chain")
        lone = _add(store, "nothing waits on me")
        _add(store, "x", blocked_by=(fan.id,))
        _add(store, "y", blocked_by=(fan.id,))
        c1 = _add(store, "c1", blocked_by=(chain.id,))
        c2 = _add(store, "c2", blocked_by=(c1.id,))
        _add(store, "c3", blocked_by=(c2.id,))
        order = [_claim(store, "alice").task.id for _ in range(3)]
        assert order == [chain.id, fan.id, lone.id]

    def test_claim_counts_only_unfinished_work_waiting(self, store: Store) -> None:
        first = _add(store, "first")
        second = _add(store, "second")
        gone = _add(store, "cancelled dependent", blocked_by=(second.id,))
        store.cancel_task(TEAM, gone.id, "no")
        assert _claim(store, "alice").task.id == first.id

    def test_claim_prefers_older_on_a_tie(self, store: Store) -> None:
        ids = [_add(store, f"t{i}", priority=1).id for i in range(4)]
        assert [_claim(store, "alice").task.id for _ in ids] == ids

    def test_claim_ranks_every_tied_candidate(self, store: Store) -> None:
        # The task with work behind it is the newest of many equals: it still comes first.
        ids = [_add(store, f"t{i}").id for i in range(70)]
        _add(store, "behind the newest", blocked_by=(ids[-1],))
        assert _claim(store, "alice").task.id == ids[-1]

    def test_assigned_task_is_only_for_its_assignee(self, store: Store) -> None:
        t = _add(store, "for bob", assignee="bob")
        assert store.claim_task(TEAM, "alice", lease_seconds=LEASE) is None
        assert store.pending_work(TEAM, "alice").ready_tasks == 0
        assert store.pending_work(TEAM, "bob").ready_tasks == 1
        with refused(store, InvalidState):
            _claim(store, "alice", t.id)
        assert _claim(store, "bob").task.id == t.id

    def test_claim_named_task(self, store: Store) -> None:
        first = _add(store, "first", priority=9)
        second = _add(store, "second")
        assert _claim(store, "alice", second.id).task.id == second.id
        assert _claim(store, "bob", first.id).task.id == first.id

    def test_claim_named_task_precise_errors(self, store: Store) -> None:
        a = _add(store, "a")
        b = _add(store, "b", blocked_by=(a.id,))
        dead = _add(store, "dead blocker")
        c = _add(store, "c", blocked_by=(dead.id,))
        store.cancel_task(TEAM, dead.id, "no")
        hidden = _add(store, "hidden", admitted=False)
        _claim(store, "alice", a.id)
        for task_id, member, error in (
            (a.id, "bob", InvalidState),  # held
            (b.id, "bob", InvalidState),  # waits on a
            (c.id, "bob", InvalidState),  # blocker cancelled
            (dead.id, "bob", InvalidState),  # cancelled
            (hidden.id, "bob", InvalidState),  # not admitted
            (999, "bob", UnknownTask),
            (b.id, "dave", UnknownMember),
        ):
            with refused(store, error):
                _claim(store, member, task_id)

    def test_fencing_tokens_are_unique_and_increasing(self, store: Store, clock: FakeClock) -> None:
        tokens: list[int] = []
        tasks = [_add(store, f"t{i}", max_attempts=10).id for i in range(4)]
        for task_id in tasks:
            tokens.append(_claim(store, "alice", task_id, lease=5).fencing_token)
        clock.advance(10)
        store.expire_leases(TEAM)
        for _ in tasks:
            claim = _claim(store, "bob")
            tokens.append(claim.fencing_token)
            store.fail_task(TEAM, claim.task.id, "bob", claim.fencing_token, "again", retry=True)
        tokens.append(_claim(store, "carol").fencing_token)
        assert tokens == sorted(set(tokens)), "tokens must be unique and increasing"

    def test_heartbeat_extends_the_lease(self, store: Store, clock: FakeClock) -> None:
        t = _add(store)
        claim = _claim(store, "alice", lease=10)
        clock.advance(8)
        with logs(store):  # liveness, not a change of state
            beat = store.heartbeat_task(TEAM, t.id, "alice", claim.fencing_token, lease_seconds=10)
        assert beat.fencing_token == claim.fencing_token
        assert beat.lease_expires_at == clock() + 10
        assert beat.task.lease_expires_at == beat.lease_expires_at
        assert store.get_task(TEAM, t.id).lease_expires_at == beat.lease_expires_at
        clock.advance(8)  # past the first lease, within the second
        assert store.expire_leases(TEAM) == []
        assert store.check_claim(TEAM, t.id, "alice", claim.fencing_token).owner == "alice"
        done = store.complete_task(TEAM, t.id, "alice", claim.fencing_token, "ok")
        assert done.status == TaskStatus.COMPLETED

    def test_claim_bound_actions_need_the_current_token(self, store: Store) -> None:
        t = _add(store)
        claim = _claim(store, "alice")
        token = claim.fencing_token
        acts: list[Callable[[str, int], object]] = [
            lambda m, k: store.heartbeat_task(TEAM, t.id, m, k, lease_seconds=LEASE),
            lambda m, k: store.check_claim(TEAM, t.id, m, k),
            lambda m, k: store.complete_task(TEAM, t.id, m, k),
            lambda m, k: store.fail_task(TEAM, t.id, m, k, "no"),
        ]
        for act in acts:
            with refused(store, StaleToken):
                act("alice", token + 1)
            with refused(store, StaleToken):
                act("alice", token - 1)
            with refused(store, NotClaimHolder):
                act("bob", token)
            with refused(store, NotClaimHolder):
                act("bob", token + 1)
        assert store.check_claim(TEAM, t.id, "alice", token) == store.get_task(TEAM, t.id)

    def test_never_claimed_task_refuses_any_token(self, store: Store) -> None:
        t = _add(store)
        with refused(store, ClaimError):
            store.heartbeat_task(TEAM, t.id, "alice", 1, lease_seconds=LEASE)
        with refused(store, ClaimError):
            store.complete_task(TEAM, t.id, "alice", 1)
        with refused(store, UnknownTask):
            store.complete_task(TEAM, 999, "alice", 1)

    def test_complete(self, store: Store) -> None:
        t = _add(store)
        claim = _claim(store, "alice")
        with logs(store, "task_completed") as events:
            done = store.complete_task(TEAM, t.id, "alice", claim.fencing_token, "all good")
        assert events[0].payload["id"] == t.id and events[0].actor == "alice"
        assert done.status == TaskStatus.COMPLETED and done.result == "all good"
        assert done.owner == "alice" and done.lease_expires_at is None
        assert store.get_task(TEAM, t.id) == done
        with refused(store, InvalidState):
            store.cancel_task(TEAM, t.id, "too late")

    def test_repeated_completion_is_deduplicated(self, store: Store, clock: FakeClock) -> None:
        t = _add(store)
        claim = _claim(store, "alice")
        done = store.complete_task(TEAM, t.id, "alice", claim.fencing_token, "first")
        clock.advance(1)
        with logs(store):
            again = store.complete_task(TEAM, t.id, "alice", claim.fencing_token, "second")
        assert again == done and again.result == "first"
        # A different token, or somebody else, is not the same completion.
        with refused(store, ClaimError):
            store.complete_task(TEAM, t.id, "bob", claim.fencing_token)
        with refused(store, StaleToken):
            store.complete_task(TEAM, t.id, "alice", claim.fencing_token + 1)
        with refused(store, StaleToken):
            store.heartbeat_task(TEAM, t.id, "alice", claim.fencing_token, lease_seconds=LEASE)
        with refused(store, StaleToken):
            store.fail_task(TEAM, t.id, "alice", claim.fencing_token, "no")

    def test_fail_without_retry_is_final(self, store: Store) -> None:
        t = _add(store)
        after = _add(store, "after", blocked_by=(t.id,))
        claim = _claim(store, "alice")
        with logs(store, "task_failed") as events:
            failed = store.fail_task(TEAM, t.id, "alice", claim.fencing_token, "broken")
        assert events[0].payload["id"] == t.id
        assert failed.status == TaskStatus.FAILED and failed.reason == "broken"
        assert failed.lease_expires_at is None
        assert store.claim_task(TEAM, "alice", lease_seconds=LEASE) is None
        after = store.get_task(TEAM, after.id)
        assert after.dead_blockers == (t.id,) and after.waiting_on == (t.id,) and not after.ready

    def test_fail_with_retry_until_attempts_run_out(self, store: Store) -> None:
        t = _add(store, max_attempts=2)
        first = _claim(store, "alice")
        with logs(store, "task_failed"):
            again = store.fail_task(TEAM, t.id, "alice", first.fencing_token, "flaky", retry=True)
        assert again.status == TaskStatus.PENDING and again.owner is None and again.ready
        assert again.attempts == 1 and again.reason == "flaky"
        with refused(store, StaleToken):
            store.complete_task(TEAM, t.id, "alice", first.fencing_token)
        second = _claim(store, "bob")
        assert second.task.attempts == 2 and second.fencing_token > first.fencing_token
        last = store.fail_task(TEAM, t.id, "bob", second.fencing_token, "flaky", retry=True)
        assert last.status == TaskStatus.FAILED and last.attempts == 2

    def test_usage_rows_log_their_call_and_a_suspect_count_with_them(self, store: Store) -> None:
        priced = store.record_usage(TEAM, UsageRecord("alice", "m", 10, 5, cost_usd=0.25))
        unpriced = store.record_usage(
            TEAM, UsageRecord("alice", "m", 7, 3, suspect="negative input tokens")
        )
        assert priced.id and unpriced.id > priced.id
        total = store.usage_totals(TEAM)[0]
        assert total.tokens == 25
        kinds = [(e.kind, e.payload.get("why")) for e in store.read_events(TEAM)[-3:]]
        # The suspect row's mark is logged with it, right after its model_call.
        assert kinds == [
            ("model_call", None),
            ("model_call", None),
            ("usage_suspect", "negative input tokens"),
        ]
        suspect = store.read_events(TEAM)[-1].payload
        assert suspect["recorded"]["input_tokens"] == 7

    def test_release_gives_the_task_back_without_using_an_attempt(self, store: Store) -> None:
        t = _add(store, max_attempts=1)
        first = _claim(store, "alice")
        with logs(store, "task_failed") as events:
            back = store.release_task(TEAM, t.id, "alice", first.fencing_token, "model down")
        assert events[0].payload["status"] == "pending" and events[0].payload["attempt_kept"]
        assert back.status == TaskStatus.PENDING and back.owner is None and back.ready
        assert back.attempts == 0 and back.reason == "model down"
        assert store.get_task(TEAM, t.id) == back
        with refused(store, StaleToken):
            store.release_task(TEAM, t.id, "alice", first.fencing_token, "again")
        # Its one attempt is still there: a claim and a failure with retry make it final.
        second = _claim(store, "bob")
        assert second.task.attempts == 1
        with refused(store, UserError):
            store.release_task(TEAM, t.id, "bob", second.fencing_token, " ")
        last = store.fail_task(TEAM, t.id, "bob", second.fencing_token, "broken", retry=True)
        assert last.status == TaskStatus.FAILED

    def test_cancel(self, store: Store) -> None:
        pending = _add(store, "pending")
        running = _add(store, "running")
        after = _add(store, "after", blocked_by=(running.id,))
        claim = _claim(store, "alice", running.id)
        with logs(store, "task_cancelled") as events:
            cancelled = store.cancel_task(TEAM, running.id, "plan changed", actor="lead")
        assert events[0].payload["id"] == running.id and events[0].actor == "lead"
        assert cancelled.status == TaskStatus.CANCELLED and cancelled.reason == "plan changed"
        assert cancelled.lease_expires_at is None
        # The holder's token went stale.
        with refused(store, StaleToken):
            store.heartbeat_task(TEAM, running.id, "alice", claim.fencing_token, lease_seconds=1)
        with refused(store, StaleToken):
            store.complete_task(TEAM, running.id, "alice", claim.fencing_token)
        with refused(store, StaleToken):
            store.fail_task(TEAM, running.id, "alice", claim.fencing_token, "x")
        assert store.get_task(TEAM, after.id).dead_blockers == (running.id,)
        assert store.cancel_task(TEAM, pending.id, "no").status == TaskStatus.CANCELLED
        with refused(store, InvalidState):
            store.cancel_task(TEAM, pending.id, "twice")
        assert store.claim_task(TEAM, "bob", lease_seconds=LEASE) is None

    # leases -------------------------------------------------------------------------

    def test_lease_expiry_returns_the_task_then_fails_it(
        self, store: Store, clock: FakeClock
    ) -> None:
        t = _add(store, max_attempts=2)
        first = _claim(store, "alice", lease=10)
        clock.advance(10)  # the lease runs to its end, inclusive
        assert store.expire_leases(TEAM) == []
        clock.advance(1)
        with logs(store, "lease_expired") as events:
            expired = store.expire_leases(TEAM)
        assert events[0].payload["id"] == t.id
        assert [x.id for x in expired] == [t.id]
        back = expired[0]
        assert back.status == TaskStatus.PENDING and back.owner is None and back.attempts == 1
        assert back.lease_expires_at is None and back.ready
        assert store.get_task(TEAM, t.id) == back
        with refused(store, StaleToken):
            store.heartbeat_task(TEAM, t.id, "alice", first.fencing_token, lease_seconds=10)
        second = _claim(store, "bob", lease=10)
        assert second.task.attempts == 2
        clock.advance(11)
        failed = store.expire_leases(TEAM)
        assert [x.status for x in failed] == [TaskStatus.FAILED]
        assert failed[0].attempts == 2 and failed[0].reason
        assert store.claim_task(TEAM, "carol", lease_seconds=LEASE) is None
        with refused(store, StaleToken):
            store.complete_task(TEAM, t.id, "bob", second.fencing_token)
        assert store.expire_leases(TEAM) == []

    def test_claim_sweeps_ended_leases(self, store: Store, clock: FakeClock) -> None:
        t = _add(store)
        old = _claim(store, "alice", lease=10)
        clock.advance(11)
        assert store.pending_work(TEAM, "bob").ready_tasks >= 1
        with logs(store, "lease_expired", "task_claimed"):
            new = _claim(store, "bob")
        assert new.task.id == t.id and new.task.attempts == 2
        assert new.fencing_token > old.fencing_token
        with refused(store, NotClaimHolder):  # lost, and somebody else holds it now
            store.complete_task(TEAM, t.id, "alice", old.fencing_token)
        # The late holder is refused even though no sweep ran in between.
        u = _add(store)
        late = _claim(store, "alice", u.id, lease=10)
        clock.advance(11)
        with refused(store, StaleToken):
            store.complete_task(TEAM, u.id, "alice", late.fencing_token)
        assert store.get_task(TEAM, u.id).status == TaskStatus.IN_PROGRESS  # not yet swept

    def test_expiry_leaves_live_leases_alone(self, store: Store, clock: FakeClock) -> None:
        short = _add(store, "short")
        long = _add(store, "long")
        _claim(store, "alice", short.id, lease=10)
        kept = _claim(store, "bob", long.id, lease=100)
        clock.advance(50)
        assert [t.id for t in store.expire_leases(TEAM)] == [short.id]
        assert store.get_task(TEAM, long.id) == kept.task

    # admission --------------------------------------------------------------------

    def test_unadmitted_task_is_never_claimable(self, store: Store) -> None:
        t = _add(store, "gated", admitted=False)
        assert not t.admitted and not t.ready and t.status == TaskStatus.PENDING
        assert store.claim_task(TEAM, "alice", lease_seconds=LEASE) is None
        with refused(store, InvalidState):
            _claim(store, "alice", t.id)
        assert store.list_tasks(TEAM, ready=True) == []
        assert store.pending_work(TEAM, "alice").ready_tasks == 0
        with logs(store, "task_admitted"):
            admitted = store.admit_task(TEAM, t.id, actor="hook")
        assert admitted.admitted and admitted.ready
        with logs(store):
            assert store.admit_task(TEAM, t.id) == admitted
        with refused(store, InvalidState):
            store.remove_task(TEAM, t.id, "too late")
        assert _claim(store, "alice").task.id == t.id

    def test_remove_unadmitted_task(self, store: Store) -> None:
        t = _add(store, "refused by its hook", admitted=False)
        with logs(store, "task_removed") as events:
            store.remove_task(TEAM, t.id, "hook said no", actor="hook")
        assert events[0].payload["id"] == t.id
        with pytest.raises(UnknownTask):
            store.get_task(TEAM, t.id)
        assert store.list_tasks(TEAM) == []

    # mail ---------------------------------------------------------------------------

    def test_send_to_a_member(self, store: Store, clock: FakeClock) -> None:
        with logs(store, "message_sent") as events:
            sent = store.send_message(TEAM, _text("alice", "bob", "hi bob", summary="greeting"))
        assert events[0].actor == "alice"
        assert len(sent) == 1
        m = sent[0]
        assert (m.team, m.sender, m.recipient, m.kind) == (TEAM, "alice", "bob", MessageKind.TEXT)
        assert (m.body, m.summary) == ("hi bob", "greeting")
        assert m.request_id is None and m.reply_to is None and m.idempotency_key is None
        assert m.sent_at == clock() and m.delivered_at is None and m.acked_at is None
        assert m.deliveries == 0 and not m.broadcast
        assert store.get_message(TEAM, m.id) == m
        with pytest.raises(UnknownMessage):
            store.get_message(TEAM, m.id + 1000)
        assert store.pending_work(TEAM, "bob").mail == 1
        assert store.pending_work(TEAM, "alice").mail == 0

    def test_broadcast_reaches_everyone_but_the_sender(self, store: Store) -> None:
        with logs(store, "message_sent"):
            sent = store.send_message(TEAM, _text("bob", BROADCAST, "all hands"))
        assert sorted(m.recipient for m in sent) == ["alice", "carol"]
        assert all(m.broadcast and m.sender == "bob" and m.body == "all hands" for m in sent)
        assert len({m.id for m in sent}) == 2
        for name in ("alice", "carol"):
            got = store.receive_messages(TEAM, name, visibility_timeout=VISIBILITY)
            assert [m.body for m in got] == ["all hands"]
        assert store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY) == []

    def test_unknown_recipient_writes_nothing(self, store: Store) -> None:
        with refused(store, UnknownMember):
            store.send_message(TEAM, _text("alice", "dave"))
        store.create_team("other")
        store.add_member("other", "dave", token_hash="h")
        with refused(store, UnknownMember):  # a member of another team is unknown here
            store.send_message(TEAM, _text("alice", "dave"))

    def test_idempotency_key_sends_once(self, store: Store, clock: FakeClock) -> None:
        first = store.send_message(TEAM, _text("alice", "bob", "once", idempotency_key="k1"))
        assert first[0].idempotency_key == "k1"
        clock.advance(1)
        with logs(store):
            again = store.send_message(TEAM, _text("alice", "bob", "once", idempotency_key="k1"))
        assert again == first
        with logs(store):  # even when the retry differs, the original stands
            other = store.send_message(TEAM, _text("alice", "carol", "twice", idempotency_key="k1"))
        assert other == first
        # The key belongs to its sender.
        bobs = store.send_message(TEAM, _text("bob", "alice", "mine", idempotency_key="k1"))
        assert bobs[0].id != first[0].id
        everyone = store.send_message(TEAM, _text("carol", BROADCAST, "all", idempotency_key="b"))
        with logs(store):
            assert (
                store.send_message(TEAM, _text("carol", BROADCAST, "all", idempotency_key="b"))
                == everyone
            )
        assert len(store.list_messages(TEAM)) == 4
        got = store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
        assert [m.body for m in got] == ["once", "all"]

    def test_fifo_per_sender_and_recipient(self, store: Store, clock: FakeClock) -> None:
        sent: list[Message] = []
        for i in range(6):
            sender = ("alice", "carol")[i % 2]
            sent += store.send_message(TEAM, _text(sender, "bob", f"{sender} {i}"))
            clock.advance(0.001)
        got: list[Message] = []
        for _ in range(3):
            got += store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY, limit=2)
        assert [m.id for m in got] == [m.id for m in sent]
        assert store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY) == []

    def test_receive_hides_then_redelivers_until_acked(
        self, store: Store, clock: FakeClock
    ) -> None:
        m = store.send_message(TEAM, _text("alice", "bob"))[0]
        clock.advance(2)
        delivered_at = clock()
        with logs(store, "messages_delivered"):
            got = store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
        assert [x.id for x in got] == [m.id]
        assert got[0].deliveries == 1 and got[0].delivered_at == delivered_at
        assert got[0].acked_at is None
        with logs(store):  # nothing visible, nothing delivered, nothing logged
            assert store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY) == []
        assert store.pending_work(TEAM, "bob").mail == 0
        clock.advance(VISIBILITY - 1)
        assert store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY) == []
        clock.advance(1)
        assert store.pending_work(TEAM, "bob").mail == 1
        again = store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
        assert [x.id for x in again] == [m.id]
        assert again[0].deliveries == 2 and again[0].delivered_at == delivered_at
        clock.advance(VISIBILITY)
        third = store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
        assert third[0].deliveries == 3
        with logs(store, "messages_acked"):
            assert store.ack_messages(TEAM, "bob", [m.id]) == [m.id]
        clock.advance(VISIBILITY * 10)
        assert store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY) == []
        assert store.get_message(TEAM, m.id).acked_at == clock() - VISIBILITY * 10
        assert store.pending_work(TEAM, "bob").mail == 0

    def test_receive_limit_hides_only_what_it_returns(self, store: Store, clock: FakeClock) -> None:
        ids = [store.send_message(TEAM, _text("alice", "bob", str(i)))[0].id for i in range(3)]
        first = store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY, limit=1)
        assert [m.id for m in first] == ids[:1]
        assert store.pending_work(TEAM, "bob").mail == 2
        rest = store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
        assert [m.id for m in rest] == ids[1:]

    def test_ack(self, store: Store) -> None:
        to_bob = [store.send_message(TEAM, _text("alice", "bob", str(i)))[0].id for i in range(3)]
        to_carol = store.send_message(TEAM, _text("alice", "carol"))[0].id
        store.receive_messages(TEAM, "bob", visibility_timeout=VISIBILITY)
        with refused(store, UnknownMessage):
            store.ack_messages(TEAM, "alice", to_bob)  # the sender cannot ack
        with refused(store, UnknownMessage):
            store.ack_messages(TEAM, "bob", [*to_bob, to_carol])
        # Acking a message never received is allowed: it was seen some other way.
        with logs(store, "messages_acked"):
            assert store.ack_messages(TEAM, "bob", [to_bob[1], to_bob[0], to_bob[1]]) == to_bob[:2]
        with logs(store):  # acking again is a no-op
            assert store.ack_messages(TEAM, "bob", to_bob[:2]) == []
        with logs(store):
            assert store.ack_messages(TEAM, "bob", []) == []
        with logs(store, "messages_acked"):
            assert store.ack_messages(TEAM, "bob", to_bob) == [to_bob[2]]
        assert [m.id for m in store.list_messages(TEAM, unacked=True)] == [to_carol]
        assert store.get_message(TEAM, to_carol).acked_at is None

    def test_requests_and_responses(self, store: Store) -> None:
        req = store.send_message(
            TEAM, _text("alice", "bob", "may I stop?", kind=MessageKind.SHUTDOWN_REQUEST)
        )[0]
        plan = store.send_message(
            TEAM, _text("alice", "bob", "my plan", kind=MessageKind.PLAN_APPROVAL_REQUEST)
        )[0]
        assert req.request_id and plan.request_id and req.request_id != plan.request_id
        with refused(store, UserError):
            store.send_message(
                TEAM, _text("bob", "alice", "yes", kind=MessageKind.SHUTDOWN_RESPONSE)
            )
        with refused(store, UserError):  # the wrong kind of answer
            store.send_message(
                TEAM,
                _text(
                    "bob", "alice", "ok", kind=MessageKind.PLAN_APPROVAL_RESPONSE, reply_to=req.id
                ),
            )
        with refused(store, UserError):  # only the addressee answers
            store.send_message(
                TEAM,
                _text("carol", "alice", "yes", kind=MessageKind.SHUTDOWN_RESPONSE, reply_to=req.id),
            )
        answer = store.send_message(
            TEAM,
            _text("bob", "alice", "yes", kind=MessageKind.SHUTDOWN_RESPONSE, reply_to=req.id),
        )[0]
        assert answer.reply_to == req.id and answer.request_id == req.request_id
        approval = store.send_message(
            TEAM,
            _text("bob", "alice", "ok", kind=MessageKind.PLAN_APPROVAL_RESPONSE, reply_to=plan.id),
        )[0]
        assert approval.request_id == plan.request_id
        text = store.send_message(TEAM, _text("alice", "bob", "fyi", reply_to=answer.id))[0]
        assert text.reply_to == answer.id and text.kind == MessageKind.TEXT
        asked = store.send_message(
            TEAM, _text("alice", BROADCAST, "stop", kind=MessageKind.SHUTDOWN_REQUEST)
        )
        assert len({m.request_id for m in asked}) == 1 and asked[0].request_id
        for m in asked:
            reply = _text(
                m.recipient, "alice", "ok", kind=MessageKind.SHUTDOWN_RESPONSE, reply_to=m.id
            )
            assert store.send_message(TEAM, reply)[0].request_id == m.request_id

    def test_list_messages(self, store: Store) -> None:
        a = store.send_message(TEAM, _text("alice", "bob", "1"))[0]
        b = store.send_message(TEAM, _text("bob", "carol", "2"))[0]
        c = store.send_message(TEAM, _text("carol", "alice", "3"))[0]
        assert [m.id for m in store.list_messages(TEAM)] == [a.id, b.id, c.id]
        assert [m.id for m in store.list_messages(TEAM, limit=2)] == [b.id, c.id]
        assert [m.id for m in store.list_messages(TEAM, member="alice")] == [a.id, c.id]
        store.ack_messages(TEAM, "carol", [b.id])
        assert [m.id for m in store.list_messages(TEAM, unacked=True)] == [a.id, c.id]
        assert [m.id for m in store.list_messages(TEAM, member="carol", unacked=True)] == [c.id]
        with refused(store, UnknownMember):
            store.list_messages(TEAM, member="dave")

    def test_mail_is_per_team(self, store: Store) -> None:
        store.create_team("other")
        store.add_member("other", "alice", token_hash="h")
        store.add_member("other", "bob", token_hash="h")
        here = store.send_message(TEAM, _text("alice", "bob"))[0]
        assert store.receive_messages("other", "bob", visibility_timeout=VISIBILITY) == []
        with refused(store, UnknownMessage):
            store.get_message("other", here.id)
        with refused(store, UnknownMessage):
            store.ack_messages("other", "bob", [here.id])
        assert store.list_messages("other") == []

    # events -------------------------------------------------------------------------

    def test_each_team_log_starts_at_one_and_has_no_gaps(self, store: Store) -> None:
        store.create_team("other")
        assert [(e.seq, e.kind) for e in store.read_events("other")] == [(1, "team_created")]
        events = store.read_events(TEAM)
        assert [e.kind for e in events] == ["team_created"] + ["member_added"] * 3
        t = _add(store)
        claim = _claim(store, "alice")
        store.send_message(TEAM, _text("alice", BROADCAST))
        store.complete_task(TEAM, t.id, "alice", claim.fencing_token)
        events = store.read_events(TEAM)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert all(e.team == TEAM for e in events)
        assert [e.seq for e in store.read_events("other")] == [1]

    def test_append_and_read_events(self, store: Store, clock: FakeClock) -> None:
        seq = last_seq(store)
        clock.advance(3)
        payload: dict[str, Any] = {"hook": "TaskCreated", "exit": 0, "nested": {"a": [1, None]}}
        event = store.append_event(TEAM, "hook_ran", payload, actor="alice")
        assert (event.team, event.seq, event.kind, event.actor) == (
            TEAM,
            seq + 1,
            "hook_ran",
            "alice",
        )
        assert event.at == clock() and event.payload == payload
        assert store.read_events(TEAM, since=seq) == [event]
        more = [store.append_event(TEAM, "note", {"i": i}) for i in range(5)]
        assert store.read_events(TEAM, since=seq, limit=2) == [event, more[0]]
        assert store.read_events(TEAM, since=event.seq, limit=100) == more
        assert store.read_events(TEAM, since=more[-1].seq) == []
        assert json.loads(json.dumps(store.read_events(TEAM)[-1].payload)) == {"i": 4}

    def test_event_time_and_actor(self, store: Store, clock: FakeClock) -> None:
        clock.advance(7)
        t = _add(store, actor="lead")
        event = store.read_events(TEAM)[-1]
        assert (event.kind, event.at, event.actor, event.payload["id"]) == (
            "task_created",
            clock(),
            "lead",
            t.id,
        )

    # connections ----------------------------------------------------------------------

    def test_closing_keeps_what_was_committed(
        self, make_store: MakeStore, clock: FakeClock
    ) -> None:
        with make_store(clock=clock) as first:
            first.create_team(TEAM)
        first.close()  # closing twice is harmless (the fixture closes it once more)
        second = make_store(clock=clock)
        assert [t.name for t in second.list_teams()] == [TEAM]

    def test_second_connection_sees_commits(self, make_store: MakeStore, clock: FakeClock) -> None:
        one = make_store(clock=clock)
        one.create_team(TEAM)
        two = make_store(clock=clock)
        assert [t.name for t in two.list_teams()] == [TEAM]
        two.add_member(TEAM, "alice", token_hash="h")
        two.add_member(TEAM, "bob", token_hash="h")
        t = _add(one)
        claim = _claim(two, "alice")
        assert claim.task.id == t.id
        assert one.get_task(TEAM, t.id).owner == "alice"
        assert one.claim_task(TEAM, "bob", lease_seconds=LEASE) is None
        with refused(one, InvalidState):
            one.claim_task(TEAM, "bob", lease_seconds=LEASE, task_id=t.id)
        one.complete_task(TEAM, t.id, "alice", claim.fencing_token)
        assert two.get_task(TEAM, t.id).status == TaskStatus.COMPLETED
        events = two.read_events(TEAM)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))

    def test_connections_claim_different_tasks(
        self, make_store: MakeStore, clock: FakeClock
    ) -> None:
        one = make_store(clock=clock)
        one.create_team(TEAM)
        for name in MEMBERS:
            one.add_member(TEAM, name, token_hash="h")
        two = make_store(clock=clock)
        ids = {_add(one, f"t{i}").id for i in range(4)}
        claims = [
            _claim(one, "alice"),
            _claim(two, "bob"),
            _claim(one, "carol"),
            _claim(two, "alice"),
        ]
        assert {c.task.id for c in claims} == ids
        assert len({c.fencing_token for c in claims}) == 4
        assert two.claim_task(TEAM, "bob", lease_seconds=LEASE) is None

    def test_change_marker_moves_when_another_connection_commits(
        self, make_store: MakeStore, clock: FakeClock
    ) -> None:
        watcher = make_store(clock=clock)
        writer = make_store(clock=clock)
        marker = watcher.change_marker()
        assert watcher.change_marker() == marker  # stable while nobody writes
        watcher.list_teams()
        assert watcher.change_marker() == marker  # reading is not writing
        writer.create_team(TEAM)
        moved = _moved(watcher, marker)
        writer.add_member(TEAM, "alice", token_hash="h")
        _moved(watcher, moved)
        assert [m.name for m in watcher.list_members(TEAM)] == ["alice"]

    def test_pending_work(self, store: Store, clock: FakeClock) -> None:
        idle = store.pending_work(TEAM, "alice")
        assert (idle.mail, idle.ready_tasks) == (0, 0)
        a = _add(store, "a")
        _add(store, "b", blocked_by=(a.id,))
        _add(store, "for bob", assignee="bob")
        _add(store, "gated", admitted=False)
        work = store.pending_work(TEAM, "alice")
        assert (work.reason, work.mail, work.ready_tasks) == ("task", 0, 1)
        assert store.pending_work(TEAM, "bob").ready_tasks == 2
        store.send_message(TEAM, _text("bob", "alice", "1"))
        store.send_message(TEAM, _text("carol", "alice", "2"))
        work = store.pending_work(TEAM, "alice")
        assert (work.reason, work.mail, work.ready_tasks) == ("mail", 2, 1)
        _claim(store, "alice", a.id)
        store.receive_messages(TEAM, "alice", visibility_timeout=VISIBILITY)
        work = store.pending_work(TEAM, "alice")
        assert (work.mail, work.ready_tasks) == (0, 0)
        assert work.reason not in ("mail", "task")

    # memory -------------------------------------------------------------------------

    def test_memory_lifecycle_of_each_type(self, store: Store, clock: FakeClock) -> None:
        for kind in MemoryType:
            clock.advance(10)
            new = NewMemory(
                kind,
                f"  the {kind.value} about caching  ",
                tags=("perf", "cache", "perf"),
                author="alice",
                task_id=7,
                session=2,
            )
            with logs(store, "memory_added") as added:
                entry, reinforced = store.add_memory(TEAM, new)
            assert not reinforced
            assert added[0].actor == "alice"
            assert added[0].payload == {
                "id": entry.id,
                "type": kind.value,
                "scope": "team",
                "supersedes": None,
            }
            assert (entry.team, entry.scope, entry.type, entry.status) == (
                TEAM,
                "team",
                kind,
                MemoryStatus.ACTIVE,
            )
            assert entry.text == f"the {kind.value} about caching"  # trimmed
            assert entry.tags == ("cache", "perf")  # sorted, once each
            assert (entry.author, entry.task_id, entry.session) == ("alice", 7, 2)
            assert entry.created_at == entry.seen_at == clock()
            assert (entry.count, entry.supersedes, entry.superseded_by) == (1, None, None)
            assert store.get_memory(TEAM, entry.id) == entry
            assert store.list_memories(TEAM, type=kind) == [entry]
            clock.advance(5)
            with logs(store, "memory_retired") as retired:
                gone = store.retire_memory(TEAM, entry.id, actor="bob")
            assert retired[0].actor == "bob" and retired[0].payload == {"id": entry.id}
            assert gone.status == MemoryStatus.RETIRED
            assert store.get_memory(TEAM, entry.id) == gone  # kept, only marked
            assert gone == dataclasses.replace(entry, status=MemoryStatus.RETIRED)
            with logs(store):  # retiring again is no change
                assert store.retire_memory(TEAM, entry.id) == gone
        entries = store.list_memories(TEAM)
        assert [e.type for e in entries] == list(reversed(MemoryType))  # newest first
        assert store.list_memories(TEAM, status=MemoryStatus.ACTIVE) == []
        assert len(store.list_memories(TEAM, status=MemoryStatus.RETIRED, limit=2)) == 2

    def test_memory_text_and_tags_are_checked(self, store: Store) -> None:
        for text in ("", "   \n "):
            with refused(store, UserError):
                store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, text))
        with refused(store, UserError):
            store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "x" * (MAX_MEMORY + 1)))
        with refused(store, UserError):
            store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "é" * (MAX_MEMORY // 2 + 1)))
        with refused(store, InvalidName):
            store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "ok", tags=("Not A Tag",)))
        with refused(store, UnknownTeam):
            store.add_memory("nope", NewMemory(MemoryType.INSIGHT, "ok"))
        with refused(store, UserError):
            store.get_memory(TEAM, 12345)
        with refused(store, UserError):
            store.retire_memory(TEAM, 12345)
        assert store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "x" * MAX_MEMORY))[0].id

    def test_supersession_links_both_ways(self, store: Store, clock: FakeClock) -> None:
        first, _ = store.add_memory(TEAM, NewMemory(MemoryType.DECISION, "use postgres"))
        clock.advance(1)
        with logs(store, "memory_added") as added:
            second, _ = store.add_memory(
                TEAM, NewMemory(MemoryType.DECISION, "use sqlite", supersedes=first.id)
            )
        assert added[0].payload["supersedes"] == first.id
        assert second.supersedes == first.id and second.status == MemoryStatus.ACTIVE
        old = store.get_memory(TEAM, first.id)
        assert (old.status, old.superseded_by, old.text) == (
            MemoryStatus.SUPERSEDED,
            second.id,
            "use postgres",
        )
        assert old.seen_at == first.seen_at  # superseding is not confirming
        third, _ = store.add_memory(
            TEAM, NewMemory(MemoryType.DECISION, "use duckdb", supersedes=second.id)
        )
        assert store.get_memory(TEAM, second.id).superseded_by == third.id
        assert [e.id for e in store.list_memories(TEAM, status=MemoryStatus.ACTIVE)] == [third.id]
        assert {e.id for e in store.list_memories(TEAM, status=MemoryStatus.SUPERSEDED)} == {
            first.id,
            second.id,
        }

    def test_supersession_refusals(self, store: Store) -> None:
        def add(kind: MemoryType, text: str, supersedes: int | None = None) -> MemoryEntry:
            return store.add_memory(TEAM, NewMemory(kind, text, supersedes=supersedes))[0]

        one = add(MemoryType.DECISION, "one")
        two = add(MemoryType.DECISION, "two", one.id)
        three = add(MemoryType.DECISION, "three", two.id)
        insight = add(MemoryType.INSIGHT, "an insight")
        retired = add(MemoryType.DECISION, "retired")
        store.retire_memory(TEAM, retired.id)
        with refused(store, UserError) as info:
            add(MemoryType.DECISION, "new", 999)
        assert "999" in str(info.value)
        with refused(store, UserError) as info:
            add(MemoryType.DECISION, "new", insight.id)
        assert "insight" in str(info.value) and "not a decision" in str(info.value)
        with refused(store, UserError) as info:
            add(MemoryType.INSIGHT, "new", three.id)  # only a decision supersedes
        assert "decision" in str(info.value)
        for old in (one, two):
            with refused(store, UserError) as info:
                add(MemoryType.DECISION, "new", old.id)
            # It names the decision that stands now, at the end of the chain.
            assert "already superseded" in str(info.value)
            assert f"stands is {three.id}" in str(info.value)
        # A retired decision with no successor may be superseded: it stays retired.
        after = add(MemoryType.DECISION, "after the retired one", retired.id)
        again = store.get_memory(TEAM, retired.id)
        assert (again.status, again.superseded_by) == (MemoryStatus.RETIRED, after.id)
        assert after.supersedes == retired.id and after.status == MemoryStatus.ACTIVE
        with refused(store, UserError) as info:
            add(MemoryType.DECISION, "new", retired.id)
        assert f"stands is {after.id}" in str(info.value)
        # When the last decision of a chain is retired nothing stands: the refusal says
        # so, and names the decision that carries the chain on.
        store.retire_memory(TEAM, three.id)
        for old in (one, two):
            with refused(store, UserError) as info:
                add(MemoryType.DECISION, "new", old.id)
            assert "nothing in its chain stands" in str(info.value)
            assert f"supersede {three.id}" in str(info.value)
        four = add(MemoryType.DECISION, "four", three.id)
        with refused(store, UserError) as info:
            add(MemoryType.DECISION, "new", one.id)
        assert f"stands is {four.id}" in str(info.value)
        with refused(store, UserError) as info:
            add(MemoryType.DECISION, "new", insight.id)
        assert str(info.value).startswith(f"memory {insight.id} is an insight, not a decision")
        assert str(info.value).endswith("only a decision can be superseded")
        store.create_team("other")
        with refused(store, UserError):  # another team's decision is not there to supersede
            store.add_memory("other", NewMemory(MemoryType.DECISION, "x", supersedes=three.id))

    def test_reinforcement_of_the_same_text(self, store: Store, clock: FakeClock) -> None:
        def same(a: str, b: str) -> bool:
            return a == b

        new = NewMemory(MemoryType.OBSERVATION, "tests flake when the network is slow")
        first, reinforced = store.add_memory(TEAM, new, same=same)
        assert not reinforced
        clock.advance(60)
        with logs(store, "memory_reinforced") as written:
            again, reinforced = store.add_memory(
                TEAM, dataclasses.replace(new, author="bob"), same=same
            )
        assert reinforced and written[0].payload == {"id": first.id}
        assert written[0].actor == "bob"
        assert again == dataclasses.replace(first, count=2, seen_at=clock())
        assert again.created_at == first.created_at and again.author == first.author
        # Without a judge nothing is reinforced; in another scope or type it is another entry.
        assert not store.add_memory(TEAM, new)[1]
        assert not store.add_memory(TEAM, dataclasses.replace(new, scope="project"), same=same)[1]
        assert not store.add_memory(
            TEAM, dataclasses.replace(new, type=MemoryType.INSIGHT), same=same
        )[1]
        assert store.get_memory(TEAM, first.id).count == 2
        # A retired entry is not strengthened: the note starts over.
        store.retire_memory(TEAM, first.id)
        store.retire_memory(TEAM, first.id + 1)
        fresh, reinforced = store.add_memory(TEAM, new, same=same)
        assert not reinforced and fresh.id not in (first.id, first.id + 1) and fresh.count == 1

    def test_reinforcement_of_nearly_the_same_text(self, store: Store, clock: FakeClock) -> None:
        def key(text: str) -> str:
            return " ".join(text.lower().replace("!", " ").replace(".", " ").split())

        def same(a: str, b: str) -> bool:
            return key(a) == key(b)

        first, _ = store.add_memory(
            TEAM, NewMemory(MemoryType.OBSERVATION, "Tests flake when the network is slow.")
        )
        near = NewMemory(MemoryType.OBSERVATION, "tests FLAKE when the network is slow!")
        candidates = ["tests", "flake", "network", "slow"]
        clock.advance(5)
        with logs(store, "memory_reinforced"):
            entry, reinforced = store.add_memory(TEAM, near, same=same, candidates=candidates)
        assert reinforced and entry.id == first.id and entry.count == 2
        assert entry.text == first.text  # the first wording stays
        # Only candidates the query finds are judged (exact text is always found).
        entry, reinforced = store.add_memory(TEAM, near, same=same)
        assert not reinforced and entry.id != first.id
        # The judge decides: a text it calls different is a new entry.
        other, reinforced = store.add_memory(
            TEAM,
            NewMemory(MemoryType.OBSERVATION, "tests flake when the disk is slow"),
            same=same,
            candidates=candidates,
        )
        assert not reinforced and other.id not in (first.id, entry.id)

    def test_memory_scopes(self, store: Store) -> None:
        store.create_team("other")
        store.add_member("other", "alice", token_hash="h")

        def add(scope: str, text: str, team: str = TEAM) -> MemoryEntry:
            return store.add_memory(team, NewMemory(MemoryType.INSIGHT, text, scope=scope))[0]

        team = add("team", "cache team answers")
        project = add("project", "cache project answers")
        mine = add("member:alice", "cache alice answers")
        theirs = add("team", "cache other answers", team="other")
        assert project.team is None and project.scope == "project"
        assert (mine.team, mine.scope) == (TEAM, "member:alice")

        def found(team_name: str, *scopes: str) -> set[int]:
            hits = store.search_memories(
                team_name, ["cache"], scopes=list(scopes), types=list(MemoryType)
            )
            return {c.entry.id for c in hits}

        assert found(TEAM, "team", "project") == {team.id, project.id}
        assert found(TEAM, "team", "project", "member:alice") == {team.id, project.id, mine.id}
        assert found(TEAM, "team", "project", "member:bob") == {team.id, project.id}
        assert found(TEAM, "project") == {project.id}
        assert found("other", "team", "project", "member:alice") == {theirs.id, project.id}
        # Without scopes a listing shows all the team's entries and the project's.
        assert {e.id for e in store.list_memories(TEAM)} == {team.id, project.id, mine.id}
        assert {e.id for e in store.list_memories(TEAM, scopes=["member:alice"])} == {mine.id}
        assert {e.id for e in store.list_memories("other")} == {theirs.id, project.id}
        assert store.get_memory("other", project.id) == project
        for hidden in (team.id, mine.id):
            with refused(store, UserError):
                store.get_memory("other", hidden)
            with refused(store, UserError):
                store.retire_memory("other", hidden)
        for bad in ("everyone", "member:", "member:dave", "Team", ""):
            with refused(store, UserError):
                add(bad, "cache nowhere")

    def test_search_memories(self, store: Store) -> None:
        def add(kind: MemoryType, text: str, supersedes: int | None = None) -> MemoryEntry:
            return store.add_memory(TEAM, NewMemory(kind, text, supersedes=supersedes))[0]

        best = add(MemoryType.INSIGHT, "sqlite wal mode makes sqlite readers never block")
        weak = add(MemoryType.OBSERVATION, "a wal file grew large once during a long test run")
        old = add(MemoryType.DECISION, "keep the store in sqlite wal mode")
        new = add(MemoryType.DECISION, "keep the store in postgres", old.id)
        gone = add(MemoryType.INSIGHT, "sqlite wal checkpoints need a quiet moment")
        store.retire_memory(TEAM, gone.id)
        add(MemoryType.INSIGHT, "nothing to do with the query")
        scopes = ["team", "project"]
        every = list(MemoryType)
        hits = store.search_memories(TEAM, ["sqlite", "wal"], scopes=scopes, types=every)
        assert [c.entry.id for c in hits][0] == best.id
        assert {c.entry.id for c in hits} == {best.id, weak.id}
        assert all(a.relevance >= b.relevance for a, b in zip(hits, hits[1:], strict=False))
        assert hits[0].relevance > hits[-1].relevance
        with_history = store.search_memories(
            TEAM, ["sqlite", "wal"], scopes=scopes, types=every, include_superseded=True
        )
        assert {c.entry.id for c in with_history} == {best.id, weak.id, old.id}
        only = store.search_memories(
            TEAM, ["sqlite", "wal"], scopes=scopes, types=[MemoryType.OBSERVATION]
        )
        assert [c.entry.id for c in only] == [weak.id]
        assert store.search_memories(TEAM, ["sqlite"], scopes=scopes, types=[]) == []
        assert store.search_memories(TEAM, [], scopes=scopes, types=every) == []
        assert store.search_memories(TEAM, ["  ", "the"], scopes=scopes, types=every) == []
        one = store.search_memories(TEAM, ["wal"], scopes=scopes, types=every, limit=1)
        assert len(one) == 1
        postgres = store.search_memories(TEAM, ["postgres"], scopes=scopes, types=every)
        assert [c.entry.id for c in postgres] == [new.id]
        # Case does not matter; the words are split as accord.text splits them.
        assert store.search_memories(TEAM, ["POSTGRES"], scopes=scopes, types=every) == postgres
        assert store.search_memories(TEAM, ["Postgres!"], scopes=scopes, types=every) == postgres
        # Tags are searched too.
        tagged = store.add_memory(
            TEAM, NewMemory(MemoryType.INSIGHT, "read the manual first", tags=("zebra",))
        )[0]
        zebra = store.search_memories(TEAM, ["zebra"], scopes=scopes, types=every)
        assert [c.entry.id for c in zebra] == [tagged.id]

    def test_search_words_are_never_query_syntax(self, store: Store) -> None:
        plain = store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "near the column or not"))[0]
        store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "something else entirely"))
        scopes = ["team", "project"]
        every = list(MemoryType)
        hostile = [
            '"',
            "'",
            "OR",
            "AND",
            "NOT",
            "NEAR(column, 2)",
            "column:",
            "text:near",
            "{text tags}: near",
            "*",
            "near*",
            "^near",
            "-near",
            "(near",
            "near)",
            '"near',
            "near' OR 1=1 --",
            "\\",
            "%",
            "_",
            "\x00",
        ]
        for word in hostile:
            hits = store.search_memories(TEAM, [word], scopes=scopes, types=every)
            assert all(c.entry.id == plain.id for c in hits), word
            store.search_memories(TEAM, ["near", word], must=[word], scopes=scopes, types=every)
            total, counts = store.memory_matches([word])
            assert total == 2 and counts[0] in (0, 1), word
        # Operators are words like any other: "near" and "column" are in the entry's text.
        for word in ("NEAR(column, 2)", "column:", "text:near", "near*", '"near'):
            hits = store.search_memories(TEAM, [word], scopes=scopes, types=every)
            assert [c.entry.id for c in hits] == [plain.id], word

    def test_search_must_narrows_the_matches_not_the_scores(self, store: Store) -> None:
        def add(text: str, tags: tuple[str, ...] = ()) -> int:
            return store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, text, tags=tags))[0].id

        both = add("flaky deploy to the staging runner")
        rare_only = add("the staging runner is slow on mondays")
        common_only = add("a flaky deploy again today")
        tagged = add("ask before you touch this", tags=("staging",))
        for n in range(6):  # so that every asked word is in few entries, as words usually are
            add(f"nothing shared at all, number {n}")
        scopes = ["team", "project"]
        every = list(MemoryType)
        asked = ["flaky", "deploy", "staging"]

        def search(must: list[str]) -> dict[int, float]:
            hits = store.search_memories(TEAM, asked, must=must, scopes=scopes, types=every)
            return {c.entry.id: c.relevance for c in hits}

        everything = search([])
        assert set(everything) == {both, rare_only, common_only, tagged}
        narrowed = search(["staging"])
        assert set(narrowed) == {both, rare_only, tagged}
        for memory_id, relevance in narrowed.items():
            assert relevance == pytest.approx(everything[memory_id], rel=1e-9)
        # The entry with every word ranks first; a word in the tags weighs less than in
        # the text.
        assert max(everything, key=lambda i: everything[i]) == both
        assert everything[rare_only] > everything[tagged]
        # A word to match on that is not among the scored ones is scored too.
        assert set(search(["mondays"])) == {rare_only}
        assert search(["absent"]) == {}
        # A limit keeps the best.
        hits = store.search_memories(TEAM, asked, scopes=scopes, types=every, limit=2)
        ranked = sorted(everything, key=lambda i: -everything[i])
        assert [c.entry.id for c in hits] == ranked[:2]

    def test_memory_vectors_are_kept_per_model(self, store: Store) -> None:
        def add(kind: MemoryType, text: str, **kw: Any) -> MemoryEntry:
            return store.add_memory(TEAM, NewMemory(kind, text, **kw))[0]

        old = add(MemoryType.DECISION, "old way")
        new = add(MemoryType.DECISION, "new way", supersedes=old.id)
        seen = add(MemoryType.OBSERVATION, "seen")
        story = add(MemoryType.STORY, "a story")
        mine = add(MemoryType.INSIGHT, "alice's", scope="member:alice")
        gone = add(MemoryType.INSIGHT, "retired")
        store.retire_memory(TEAM, gone.id)
        shared = add(MemoryType.INSIGHT, "project-wide", scope="project")
        recallable = [old, new, seen, mine, shared]
        assert [e.id for e in store.memories_without_vector(TEAM, "m1", limit=10)] == [
            e.id for e in recallable
        ]
        assert len(store.memories_without_vector(TEAM, "m1", limit=2)) == 2
        later = store.memories_without_vector(TEAM, "m1", after=seen.id, limit=10)
        assert [e.id for e in later] == [mine.id, shared.id]
        blob = {e.id: bytes([e.id]) * 8 for e in (*recallable, story, gone)}
        with logs(store) as written:
            store.set_memory_vectors(TEAM, "m1", [(e.id, blob[e.id]) for e in recallable[:3]])
        assert written == []  # derived data, like the text index: no event
        left = store.memories_without_vector(TEAM, "m1", limit=10)
        assert [e.id for e in left] == [mine.id, shared.id]
        assert [e.id for e in store.memories_without_vector(TEAM, "m2", limit=10)] == [
            e.id for e in recallable
        ]
        store.set_memory_vectors(TEAM, "m1", [(e.id, blob[e.id]) for e in (mine, shared, story)])
        store.set_memory_vectors(TEAM, "m2", [(seen.id, b"other model")])
        assert store.memories_without_vector(TEAM, "m1", limit=10) == []
        every = list(MemoryType)
        team = ["team", "project"]
        got = store.memory_vectors(TEAM, "m1", scopes=team, types=every)
        assert got == [(e.id, blob[e.id]) for e in (new, seen, story, shared)]
        got = store.memory_vectors(TEAM, "m1", scopes=team, types=every, include_superseded=True)
        assert [i for i, _ in got] == [old.id, new.id, seen.id, story.id, shared.id]
        with_mine = store.memory_vectors(
            TEAM, "m1", scopes=[*team, "member:alice"], types=[MemoryType.INSIGHT]
        )
        assert [i for i, _ in with_mine] == [mine.id, shared.id]
        assert store.memory_vectors(TEAM, "m2", scopes=team, types=every) == [
            (seen.id, b"other model")
        ]
        assert store.memory_vectors(TEAM, "m1", scopes=team, types=[]) == []
        some = store.memory_vectors(TEAM, "m1", scopes=team, types=every, ids=[seen.id, 999])
        assert some == [(seen.id, blob[seen.id])]
        assert len(store.memory_vectors(TEAM, "m1", scopes=team, types=every, limit=2)) == 2
        for up_to, want in ((10, 4), (4, 4), (2, 2)):
            counted = store.count_memory_vectors(TEAM, "m1", scopes=team, types=every, up_to=up_to)
            assert counted == want
        assert (
            store.count_memory_vectors(
                TEAM, "m1", scopes=team, types=every, include_superseded=True, up_to=10
            )
            == 5
        )
        assert store.count_memory_vectors(TEAM, "m1", scopes=team, types=[], up_to=10) == 0
        # Writing again replaces; an entry the team cannot see is refused, whole.
        store.set_memory_vectors(TEAM, "m1", [(seen.id, b"newer")])
        assert store.memory_vectors(TEAM, "m1", scopes=team, types=every, ids=[seen.id]) == [
            (seen.id, b"newer")
        ]
        store.create_team("other")
        theirs = store.add_memory("other", NewMemory(MemoryType.INSIGHT, "theirs"))[0]
        with refused(store, UserError):
            store.set_memory_vectors(TEAM, "m1", [(seen.id, b"x"), (theirs.id, b"x")])
        with refused(store, UserError):
            store.set_memory_vectors(TEAM, "m1", [(999, b"x")])
        # The other team sees the project entry's vector, not ours.
        assert store.memory_vectors("other", "m1", scopes=team, types=every) == [
            (shared.id, blob[shared.id])
        ]

    def test_list_memories_by_ids(self, store: Store) -> None:
        a = store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "a"))[0]
        b = store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "b", scope="member:alice"))[0]
        c = store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "c"))[0]
        store.create_team("other")
        theirs = store.add_memory("other", NewMemory(MemoryType.INSIGHT, "d"))[0]
        listed = store.list_memories(TEAM, ids=[c.id, a.id, theirs.id, 999])
        assert [e.id for e in listed] == [c.id, a.id]
        assert store.list_memories(TEAM, ids=[]) == []
        assert [e.id for e in store.list_memories(TEAM, ids=[a.id, b.id], scopes=["team"])] == [
            a.id
        ]

    def test_memory_matches_counts_entries_with_each_word(self, store: Store) -> None:
        assert store.memory_matches(["cache"]) == (0, [0])
        for text in ("cache the cache", "cold cache", "warm start"):
            store.add_memory(TEAM, NewMemory(MemoryType.OBSERVATION, text))
        store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "tagged", tags=("cache",)))
        store.create_team("other")
        store.add_memory("other", NewMemory(MemoryType.INSIGHT, "another team's cache"))
        # Counts are store-wide (they feed the store-wide word weights), whatever the status.
        retired = store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "old cache"))[0]
        store.retire_memory(TEAM, retired.id)
        total, counts = store.memory_matches(["cache", "CACHE", "warm", "absent", "the", ""])
        assert total == 6
        assert counts == [5, 5, 1, 0, 0, 0]
        assert store.memory_matches([]) == (6, [])

    def test_import_memories_keeps_links_and_is_all_or_nothing(
        self, store: Store, clock: FakeClock
    ) -> None:
        def entry(i: int, kind: MemoryType, text: str, **kw: Any) -> MemoryEntry:
            fields: dict[str, Any] = {
                "id": i,
                "team": None,
                "scope": "team",
                "type": kind,
                "text": text,
                "tags": ("imported",),
                "status": MemoryStatus.ACTIVE,
                "author": "someone",
                "task_id": 3,
                "session": 1,
                "created_at": 1000.0 + i,
                "seen_at": 2000.0 + i,
            }
            fields.update(kw)
            return MemoryEntry(**fields)

        store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "already here"))
        exported = [
            entry(10, MemoryType.DECISION, "old", status=MemoryStatus.SUPERSEDED, superseded_by=11),
            entry(11, MemoryType.DECISION, "new", supersedes=10),
            entry(12, MemoryType.OBSERVATION, "seen often", count=7),
            entry(13, MemoryType.STORY, "project lore", scope="project"),
            entry(14, MemoryType.INSIGHT, "alice's own", scope="member:alice"),
            entry(15, MemoryType.INSIGHT, "forgotten", status=MemoryStatus.RETIRED),
        ]
        bad = [*exported, entry(16, MemoryType.INSIGHT, "nowhere", scope="member:dave")]
        with refused(store, UserError):
            store.import_memories(TEAM, bad)
        with refused(store, UserError):
            store.import_memories(
                TEAM, [*exported, entry(17, MemoryType.INSIGHT, "x" * (MAX_MEMORY + 1))]
            )
        # The text index and its counts are rolled back with the entries.
        assert store.memory_matches(["old", "imported", "here"]) == (1, [0, 0, 1])
        with logs(store, "memories_imported") as written:
            got = store.import_memories(TEAM, exported)
        assert written[0].payload == {"count": len(exported)}
        assert store.memory_matches(["old", "imported", "here"]) == (7, [1, 6, 1])
        assert len(got) == len(exported)
        ids = {e.id: g.id for e, g in zip(exported, got, strict=True)}
        for e, g in zip(exported, got, strict=True):
            assert store.get_memory(TEAM, g.id) == g
            assert (g.type, g.text, g.tags, g.status, g.scope) == (
                e.type,
                e.text,
                e.tags,
                e.status,
                e.scope,
            )
            assert (g.author, g.task_id, g.session) == (e.author, e.task_id, e.session)
            assert (g.created_at, g.seen_at, g.count) == (e.created_at, e.seen_at, e.count)
            assert g.team == (None if e.scope == "project" else TEAM)
        assert got[0].superseded_by == ids[11] and got[1].supersedes == ids[10]
        assert len(store.list_memories(TEAM)) == 1 + len(exported)
        # Importing again adds copies with fresh ids; the links stay within each copy.
        again = store.import_memories(TEAM, exported)
        assert again[1].supersedes == again[0].id != got[0].id
        assert store.import_memories(TEAM, []) == []

    def test_continuity_notes_are_versioned(self, store: Store, clock: FakeClock) -> None:
        assert store.continuity(TEAM, "alice") == []
        assert store.continuity(TEAM, "alice", history=True) == []
        written = []
        for i in range(3):
            clock.advance(10)
            with logs(store, "continuity_written") as events:
                written.append(store.set_continuity(TEAM, "alice", f"  note {i}  "))
            assert events[0].payload == {"member": "alice", "version": i + 1}
        assert [(n.member, n.version, n.text) for n in written] == [
            ("alice", 1, "note 0"),
            ("alice", 2, "note 1"),
            ("alice", 3, "note 2"),
        ]
        assert written[-1].at == clock()
        assert store.continuity(TEAM, "alice") == [written[-1]]
        assert store.continuity(TEAM, "alice", history=True) == written
        assert store.continuity(TEAM, "bob") == []
        store.create_team("other")
        store.add_member("other", "alice", token_hash="h")
        assert store.continuity("other", "alice") == []  # notes are per team
        with refused(store, UnknownMember):
            store.set_continuity(TEAM, "dave", "hello")
        with refused(store, UnknownMember):
            store.continuity(TEAM, "dave")
        for text in ("", "  "):
            with refused(store, UserError):
                store.set_continuity(TEAM, "alice", text)
        with refused(store, UserError):
            store.set_continuity(TEAM, "alice", "w" * (MAX_CONTINUITY + 1))

    def test_delete_team_keeps_project_memories(self, store: Store) -> None:
        store.create_team("other")
        store.add_member("other", "bob", token_hash="h")
        ours, _ = store.add_memory(TEAM, NewMemory(MemoryType.DECISION, "team decision"))
        store.add_memory(TEAM, NewMemory(MemoryType.INSIGHT, "alice's", scope="member:alice"))
        shared, _ = store.add_memory(
            TEAM, NewMemory(MemoryType.DECISION, "project decision", scope="project")
        )
        # A project decision that replaced one of the team's: the link must not keep the
        # team from being deleted, nor dangle afterwards.
        wider, _ = store.add_memory(
            TEAM,
            NewMemory(MemoryType.DECISION, "project-wide now", scope="project", supersedes=ours.id),
        )
        store.set_continuity(TEAM, "alice", "where I am")
        kept = store.add_memory("other", NewMemory(MemoryType.INSIGHT, "other's own"))[0]
        assert store.memory_matches(["decision", "own"]) == (5, [2, 1])
        store.delete_team(TEAM)
        # The team's entries leave the text index and the counts with it.
        assert store.memory_matches(["decision", "own"]) == (3, [1, 1])
        hits = store.search_memories(
            "other", ["decision", "own"], scopes=["team", "project"], types=list(MemoryType)
        )
        assert {c.entry.id for c in hits} == {kept.id, shared.id}
        left = store.list_memories("other")
        assert {e.id for e in left} == {kept.id, shared.id, wider.id}
        assert store.get_memory("other", wider.id).supersedes is None
        with pytest.raises(UserError):
            store.get_memory("other", ours.id)
        store.create_team(TEAM)
        store.add_member(TEAM, "alice", token_hash="h")
        assert {e.id for e in store.list_memories(TEAM)} == {shared.id, wider.id}
        assert store.continuity(TEAM, "alice", history=True) == []

    def test_memory_bad_input_changes_nothing(self, make_store: MakeStore) -> None:
        clock = FakeClock()
        store = make_store(clock=clock)
        store.create_team(TEAM)
        build_world(store, clock)

        def add(kind: MemoryType, text: str, **kw: Any) -> MemoryEntry:
            return store.add_memory(TEAM, NewMemory(kind, text, **kw))[0]

        old = add(MemoryType.DECISION, "old")
        new = add(MemoryType.DECISION, "new", supersedes=old.id)
        seen = add(MemoryType.OBSERVATION, "seen")
        store.set_continuity(TEAM, "alice", "note")
        good = store.list_memories(TEAM)[0]
        cases: list[tuple[str, Callable[[], object], type[BaseException]]] = [
            ("empty", lambda: add(MemoryType.INSIGHT, " "), UserError),
            ("huge", lambda: add(MemoryType.INSIGHT, "x" * (MAX_MEMORY + 1)), UserError),
            ("bad-tag", lambda: add(MemoryType.INSIGHT, "x", tags=("A B",)), InvalidName),
            ("scope", lambda: add(MemoryType.INSIGHT, "x", scope="galaxy"), UserError),
            ("scope-member", lambda: add(MemoryType.INSIGHT, "x", scope="member:dave"), UserError),
            ("supersede-missing", lambda: add(MemoryType.DECISION, "x", supersedes=999), UserError),
            (
                "supersede-twice",
                lambda: add(MemoryType.DECISION, "x", supersedes=old.id),
                UserError,
            ),
            (
                "supersede-observation",
                lambda: add(MemoryType.DECISION, "x", supersedes=seen.id),
                UserError,
            ),
            (
                "insight-supersedes",
                lambda: add(MemoryType.INSIGHT, "x", supersedes=new.id),
                UserError,
            ),
            ("retire-missing", lambda: store.retire_memory(TEAM, 999), UserError),
            ("retire-other-team", lambda: store.retire_memory("solo", new.id), UserError),
            (
                "import-bad-scope",
                lambda: store.import_memories(
                    TEAM, [good, dataclasses.replace(good, id=good.id + 100, scope="galaxy")]
                ),
                UserError,
            ),
            ("continuity-empty", lambda: store.set_continuity(TEAM, "alice", ""), UserError),
            (
                "continuity-huge",
                lambda: store.set_continuity(TEAM, "alice", "w" * (MAX_CONTINUITY + 1)),
                UserError,
            ),
            ("continuity-unknown", lambda: store.set_continuity(TEAM, "dave", "x"), UnknownMember),
        ]
        for name, action, error in cases:
            try:
                with refused(store, error):
                    action()
            except AssertionError as e:
                raise AssertionError(f"{name}: {e}") from None
        other = make_store(clock=clock)
        assert snapshot(other) == snapshot(store)
