"""The vocabulary of a team's log: every kind of event accord writes, and the keys of
each kind's payload.

An event is one row of the team's append-only log (``accord.types.Event``), written
in the same transaction as the change it records. ``EventKind`` names every kind;
its values are the strings stored in the log, so a member compares equal to the
string (``EventKind.TASK_CLAIMED == "task_claimed"``) and logs written before the
enum read the same. ``EVENT_PAYLOAD`` is the one table of what each kind's payload
holds: the keys it always has, and the keys it has only sometimes. Readers (the
lead's digest, the live view, ``accord log``) rely on those keys; a writer that adds
one adds it here, and ``tests/test_vocabulary.py`` holds every writer to the table.

The log may still hold kinds this version no longer writes (or a test's own kinds),
so ``Event.kind`` stays a string: compare it with an ``EventKind``, never parse it.

This module is at the types layer: it imports nothing of accord.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """Every kind of event accord writes, grouped by the noun it records.

    The comment says when it is written; the actor is the member (or ``None`` for the
    person or the runtime) that made the change.
    """

    # teams and members (store)
    TEAM_CREATED = "team_created"
    MEMBER_ADDED = "member_added"  # added by hand, or by a spawn request for a new name
    MEMBER_UPDATED = "member_updated"  # status, pid, host, agent, model or token changed
    MEMBER_REMOVED = "member_removed"  # with the tasks its removal released

    # the board (store)
    TASK_CREATED = "task_created"
    TASK_ADMITTED = "task_admitted"  # a task its TaskCreated hooks accepted is on the board
    TASK_REMOVED = "task_removed"  # a task its TaskCreated hooks refused is taken off
    TASK_UPDATED = "task_updated"  # title, description, priority, assignee or blockers
    TASK_CLAIMED = "task_claimed"
    TASK_COMPLETED = "task_completed"  # with the tasks it made ready
    TASK_FAILED = "task_failed"  # pending again, or failed for good
    TASK_CANCELLED = "task_cancelled"
    LEASE_EXPIRED = "lease_expired"  # a claim's lease ended: pending again, or failed
    # a member claimed paths for a task it holds; they end with the claim on the task
    # (task_completed, task_failed, task_cancelled, lease_expired), with no event of
    # their own, unless the member gives them up sooner (files_released)
    FILES_CLAIMED = "files_claimed"
    FILES_RELEASED = "files_released"

    # mail (store)
    MESSAGE_SENT = "message_sent"  # one event for a message and all its broadcast copies
    MESSAGES_DELIVERED = "messages_delivered"
    MESSAGES_ACKED = "messages_acked"
    # channels (store); a post is a message_sent with ``channel`` in its payload
    CHANNEL_CREATED = "channel_created"  # its creator subscribes with it
    CHANNEL_JOINED = "channel_joined"
    CHANNEL_LEFT = "channel_left"
    # deliberations (store): a question put to members in enforced phases
    DELIBERATION_OPENED = "deliberation_opened"
    POSITION_SUBMITTED = "position_submitted"  # round 0: the independent position
    DELIBERATION_AGREED = "deliberation_agreed"
    DELIBERATION_ABSENT = "deliberation_absent"  # members who missed a phase's deadline
    DELIBERATION_PHASE = "deliberation_phase"
    SYNTHESIS_CLAIMED = "synthesis_claimed"
    SYNTHESIS_LAPSED = "synthesis_lapsed"  # its lease ran out unanswered; it passed on
    DELIBERATION_FINISHED = "deliberation_finished"
    DELIBERATION_RECORDED = "deliberation_recorded"  # its answer is a decision memory
    # routing (store): who owns a routed message, and which rule (or who) decided it
    MESSAGE_ROUTED = "message_routed"
    MESSAGE_ANSWERED = "message_answered"  # its owner replied to it
    ANSWER_JUDGED = "answer_judged"  # its sender accepted the answer, or did not

    # usage (store)
    MODEL_CALL = "model_call"  # one per usage row
    USAGE_SUSPECT = "usage_suspect"  # the server's counts were replaced by estimates

    # runs, supervisors, spawns and hosts (store)
    RUN_STARTED = "run_started"
    RUN_UPDATED = "run_updated"  # status, summary, wanted members or settings changed
    SUPERVISOR_STARTED = "supervisor_started"  # a supervisor took the run's lease
    SUPERVISOR_STOPPED = "supervisor_stopped"
    SPAWN_REQUESTED = "spawn_requested"
    SPAWN_TAKEN = "spawn_taken"  # a host's supervisor took the request
    SPAWN_STARTED = "spawn_started"  # the request's final status (SpawnStatus.STARTED)
    SPAWN_REFUSED = "spawn_refused"
    HOST_JOINED = "host_joined"
    HOST_LEFT = "host_left"
    HOST_LOST = "host_lost"  # its lease ran out; its members are placed again
    MEMBER_PLACED = "member_placed"  # a wanted member given a spawn request on a host

    # memory (store)
    MEMORY_ADDED = "memory_added"
    MEMORY_REINFORCED = "memory_reinforced"  # the same thing noted again
    LESSON_RECORDED = "lesson_recorded"  # an attempt that did not succeed taught this
    LESSONS_CONFIRMED = "lessons_confirmed"  # an attempt shown them succeeded
    MEMORY_RETIRED = "memory_retired"
    MEMORIES_IMPORTED = "memories_imported"
    CONTINUITY_WRITTEN = "continuity_written"

    # skills (store): the team's own named procedures, versioned, with their uses
    SKILL_WRITTEN = "skill_written"  # a new skill, version 1
    SKILL_REVISED = "skill_revised"  # a new version: active at once, or pending a review
    SKILL_REVIEWED = "skill_reviewed"  # a pending version approved (active) or rejected
    SKILL_USED = "skill_used"  # a member loaded a version (use_skill)

    # hooks (team.hooks)
    HOOK_RUN = "hook_run"  # one per hook command run
    HOOK_BROKEN = "hook_broken"  # a hook that could not run, or broke its contract
    # bubblewrap is missing or refused: commands run unsandboxed (said once per process)
    SANDBOX_UNAVAILABLE = "sandbox_unavailable"

    # members' lives (agent and runtime)
    DEFINITION_UNSUPPORTED = "definition_unsupported"  # the member starts, with a warning
    MEMBER_FAILED = "member_failed"  # cannot start: its configuration is wrong
    MEMBER_STOPPED = "member_stopped"  # its loop ended (shutdown, budget, model error...)
    MEMBER_CRASHED = "member_crashed"  # its process died; the supervisor may restart it
    MEMBER_RESTARTED = "member_restarted"
    MEMBER_GIVEN_UP = "member_given_up"  # not restarted again (its model stays down)
    CONTEXT_WINDOW_LEARNED = "context_window_learned"  # the server said a call was too long
    CONTEXT_COMPACTED = "context_compacted"  # older turns were folded into a summary
    BUDGET_EXCEEDED = "budget_exceeded"  # a member's (or, member None, the team's) budget

    # a member's call of an MCP server's tool (agent.mcp): one per call, failed or not
    MCP_CALL = "mcp_call"

    # worktrees and the merge gate (team.worktrees)
    INTEGRATION_STARTED = "integration_started"  # accord/<team> made from the person's HEAD
    WORKTREE_MADE = "worktree_made"  # a member's worktree created, reattached or recreated
    WORKTREE_REMOVED = "worktree_removed"  # with its branch (member removed, team deleted)
    TASK_MERGED = "task_merged"  # the gate merged a completion (or found nothing new)
    MERGE_REFUSED = "merge_refused"  # the gate refused a completion: conflict or hook
    MEMBER_SYNCED = "member_synced"  # the integration branch merged into a member's

    # permission rules (agent.tools.base, team.permits)
    PERMISSION_ALLOWED = "permission_allowed"  # an allow rule matched (no event without one)
    PERMISSION_DENIED = "permission_denied"  # a deny rule matched: the tool did not run
    PERMISSION_ASKED = "permission_asked"  # an ask rule matched: the call waits for an answer
    PERMISSION_ANSWERED = "permission_answered"  # the person (or the lead) answered an ask
    PERMISSION_TIMED_OUT = "permission_timed_out"  # nobody answered in time: denied

    # runs' lives (runtime)
    RUN_RESUMED = "run_resumed"
    RUN_ENDED = "run_ended"  # finished, stopped or interrupted, and why


@dataclass(frozen=True, slots=True)
class PayloadKeys:
    """The keys of one kind's payload: ``always`` present, ``sometimes`` present."""

    always: frozenset[str]
    sometimes: frozenset[str] = frozenset()

    def problem(self, payload: Mapping[str, Any]) -> str | None:
        """What is wrong with ``payload``'s keys (None: nothing)."""
        keys = set(payload)
        missing = sorted(self.always - keys)
        unknown = sorted(keys - self.always - self.sometimes)
        said = [f"missing {', '.join(missing)}"] if missing else []
        said += [f"unknown {', '.join(unknown)}"] if unknown else []
        return "; ".join(said) or None


def _keys(always: str, sometimes: str = "") -> PayloadKeys:
    return PayloadKeys(frozenset(always.split()), frozenset(sometimes.split()))


EVENT_PAYLOAD: Mapping[EventKind, PayloadKeys] = {
    EventKind.TEAM_CREATED: _keys("name"),
    EventKind.MEMBER_ADDED: _keys("name role agent model"),
    # only what changed; ``token`` is "rotated", never the token; ``was`` with ``status``
    EventKind.MEMBER_UPDATED: _keys("name", "status was pid host agent model token"),
    EventKind.MEMBER_REMOVED: _keys("name released"),
    EventKind.TASK_CREATED: _keys("id title blocked_by assignee priority admitted", "plan_key"),
    EventKind.TASK_ADMITTED: _keys("id"),
    EventKind.TASK_REMOVED: _keys("id reason"),
    # only what changed (``assignee`` None: unassigned)
    EventKind.TASK_UPDATED: _keys(
        "id", "title description priority assignee add_blockers remove_blockers"
    ),
    EventKind.TASK_CLAIMED: _keys("id owner token lease_expires_at"),
    EventKind.TASK_COMPLETED: _keys("id owner token unblocked"),
    # ``attempt_kept``: given back (the model was unreachable) without using an attempt
    EventKind.TASK_FAILED: _keys("id owner token reason status", "attempt_kept"),
    EventKind.TASK_CANCELLED: _keys("id reason owner"),
    EventKind.LEASE_EXPIRED: _keys("id owner token attempts status"),
    # ``patterns``: the ones this claim added (a pattern held already is not repeated);
    # they are released with no event of their own when the task's claim ends
    EventKind.FILES_CLAIMED: _keys("task_id member token patterns"),
    # ``patterns``: the ones given up before the task ended
    EventKind.FILES_RELEASED: _keys("task_id member token patterns"),
    # ``channel``: a post; ``to`` is then the channel, ``ids`` the post and its copies
    EventKind.MESSAGE_SENT: _keys("ids from to kind summary request_id", "channel reply_to"),
    EventKind.MESSAGES_DELIVERED: _keys("to ids"),
    EventKind.MESSAGES_ACKED: _keys("by ids"),
    EventKind.CHANNEL_CREATED: _keys("channel creator"),
    EventKind.CHANNEL_JOINED: _keys("channel member"),
    EventKind.CHANNEL_LEFT: _keys("channel member"),
    EventKind.DELIBERATION_OPENED: _keys(
        "id question asker members rounds synthesizer channel deadline", "phase_seconds tags"
    ),
    EventKind.POSITION_SUBMITTED: _keys("id member round"),
    EventKind.DELIBERATION_AGREED: _keys("id member round"),
    EventKind.DELIBERATION_ABSENT: _keys("id members phase round"),
    EventKind.DELIBERATION_PHASE: _keys("id phase round deadline", "synthesizer"),
    EventKind.SYNTHESIS_CLAIMED: _keys("id member token lease_until"),
    # ``member``: whose lease lapsed; ``next``: who holds the synthesis now
    EventKind.SYNTHESIS_LAPSED: _keys("id member token next"),
    EventKind.DELIBERATION_FINISHED: _keys("id member token"),
    EventKind.DELIBERATION_RECORDED: _keys("id memory_id"),
    # ``id``: the routed message's first row; ``previous``: the owner it moved from
    # (a lease ran out, the lead took it, or its owner released it)
    EventKind.MESSAGE_ROUTED: _keys("id owner token rule lease_expires_at", "previous topics"),
    # ``answer``: the owner's reply, which ends the route's lease
    EventKind.MESSAGE_ANSWERED: _keys("id member answer"),
    EventKind.ANSWER_JUDGED: _keys("id by owner accepted"),
    EventKind.MODEL_CALL: _keys("member task_id model tokens cost_usd"),
    # ``recorded``: the four token counts kept instead of the server's
    EventKind.USAGE_SUSPECT: _keys("member model why recorded"),
    EventKind.RUN_STARTED: _keys("goal lead"),
    # only what changed; ``settings`` holds the settings given, not all of them
    EventKind.RUN_UPDATED: _keys("", "settings status summary wanted"),
    EventKind.SUPERVISOR_STARTED: _keys("pid host token"),
    EventKind.SUPERVISOR_STOPPED: _keys("token"),
    EventKind.SPAWN_REQUESTED: _keys("id name agent model host"),
    EventKind.SPAWN_TAKEN: _keys("id name host"),
    EventKind.SPAWN_STARTED: _keys("id name reason"),
    EventKind.SPAWN_REFUSED: _keys("id name reason"),
    EventKind.HOST_JOINED: _keys("host machine pid slots token"),
    EventKind.HOST_LEFT: _keys("host token"),
    EventKind.HOST_LOST: _keys("host machine members"),
    EventKind.MEMBER_PLACED: _keys("id name host"),
    EventKind.MEMORY_ADDED: _keys("id type scope supersedes"),
    EventKind.MEMORY_REINFORCED: _keys("id"),
    EventKind.LESSON_RECORDED: _keys("task_id attempt slot cause memory_id reinforced"),
    EventKind.LESSONS_CONFIRMED: _keys("task_id attempt memory_ids"),
    EventKind.MEMORY_RETIRED: _keys("id"),
    EventKind.MEMORIES_IMPORTED: _keys("count"),
    EventKind.CONTINUITY_WRITTEN: _keys("member version"),
    EventKind.SKILL_WRITTEN: _keys("name version author"),
    # ``seeded``: the project's or user's file was recorded as version 1 first
    EventKind.SKILL_REVISED: _keys("name version supersedes status author reason", "seeded"),
    EventKind.SKILL_REVIEWED: _keys("name version approved by reason"),
    EventKind.SKILL_USED: _keys("name version origin member task_id attempt"),
    EventKind.HOOK_RUN: _keys(
        "event command source exit_code timed_out seconds blocked output_bytes stderr error "
        "stop task_id teammate_name"
    ),
    EventKind.HOOK_BROKEN: _keys("event command source error blocked task_id"),
    # ``what``: "bash" or "hook"; ``member`` None: the person's own command
    EventKind.SANDBOX_UNAVAILABLE: _keys("what member reason"),
    EventKind.DEFINITION_UNSUPPORTED: _keys("member agent warning"),
    EventKind.MEMBER_FAILED: _keys("name reason"),
    EventKind.MEMBER_STOPPED: _keys("name reason detail transient"),
    EventKind.MEMBER_CRASHED: _keys("name exit_code why gave_up"),
    EventKind.MEMBER_RESTARTED: _keys("name restarts after pid host"),
    EventKind.MEMBER_GIVEN_UP: _keys("name reason detail restarts"),
    EventKind.CONTEXT_WINDOW_LEARNED: _keys("member model window was said"),
    EventKind.CONTEXT_COMPACTED: _keys("member folded kept"),
    # ``member`` None: the team's budget (the run's --budget), stopped by the supervisor
    EventKind.BUDGET_EXCEEDED: _keys("member why"),
    # ``error`` None: the call succeeded; ``chars`` the result's size before any cut
    EventKind.MCP_CALL: _keys("member server tool seconds error", "chars"),
    # ``dirty``: how many uncommitted changes of the person's were left out
    EventKind.INTEGRATION_STARTED: _keys("branch base head dirty"),
    # ``how``: created, reattached (restart), recreated (its folder was deleted by hand)
    EventKind.WORKTREE_MADE: _keys("member path branch how"),
    EventKind.WORKTREE_REMOVED: _keys("member branch"),
    # ``merged`` false: nothing new to merge; ``commit`` is then the branch's tip
    EventKind.TASK_MERGED: _keys("id member commit merged"),
    # ``why``: conflict (``files`` the conflicted paths) or hook
    EventKind.MERGE_REFUSED: _keys("id member why files"),
    # ``conflicts``: the files left with conflict markers for the member to fix
    EventKind.MEMBER_SYNCED: _keys("member commit conflicts"),
    # ``target``: the command or path the rule was matched against (absent: none)
    EventKind.PERMISSION_ALLOWED: _keys("member tool rule source", "target"),
    EventKind.PERMISSION_DENIED: _keys("member tool rule source", "target"),
    EventKind.PERMISSION_ASKED: _keys("member tool rule source request to timeout", "target"),
    EventKind.PERMISSION_ANSWERED: _keys("member tool request by allowed reason"),
    EventKind.PERMISSION_TIMED_OUT: _keys("member tool request to waited"),
    EventKind.RUN_RESUMED: _keys("why members"),
    EventKind.RUN_ENDED: _keys("outcome reason"),
}


def payload_problem(kind: str, payload: Mapping[str, Any]) -> str | None:
    """What is wrong with an event of ``kind`` carrying ``payload`` (None: nothing):
    a kind accord does not write, or keys other than its table's."""
    try:
        known = EventKind(kind)
    except ValueError:
        return f"{kind!r} is not an EventKind"
    wrong = EVENT_PAYLOAD[known].problem(payload)
    return f"{kind}: {wrong}" if wrong else None
