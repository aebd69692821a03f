"""An agent's advice for an error: what to do next, naming the tool that does it.

Errors below the front doors say only what was wrong and carry what it was about
(``accord.errors``); ``worded`` adds, for the model, the tool that helps. The command
line words its own, naming commands (``accord.cli._advice``).
"""

from __future__ import annotations

from accord.errors import (
    AccordError,
    ClaimError,
    FileClaimed,
    InvalidState,
    NotClaimHolder,
    Reason,
    UnknownChannel,
    UnknownMemory,
    UnknownSkill,
    UnknownTask,
)
from accord.git import MergeRefused


def worded(e: AccordError) -> str:
    """The error's message, and the tool that helps when there is one."""
    return f"{e}{_advice(e)}"


def _refused(e: MergeRefused) -> str:
    if e.task_id is None:  # markers left after a sync
        return f"\n{e.detail}\nThen call task_complete again."
    return (
        f"\n{e.detail}\nCall sync to bring the team's branch into your worktree, fix the "
        "conflicts it marks in these files, then call task_complete again."
    )


def _advice(e: AccordError) -> str:
    match e:
        case MergeRefused():
            return _refused(e)
        case UnknownTask(task_id=int()):
            return "; see task_list"
        case FileClaimed(member=str(holder)):
            return (
                f"; work on other files, or ask {holder} with send_message (the claim ends "
                "when that task does)"
            )
        case UnknownMemory():
            return "; see recall"
        case UnknownSkill():
            return "; the skills you can load are listed in your instructions"
        case UnknownChannel():
            return "; call channel_read with no channel to list them, or channel_create"
        case InvalidState(reason=Reason.NOT_SUBSCRIBED):
            return "; join it with channel_join first"
        case InvalidState(reason=Reason.ASSIGNED, member=str(member)):
            return f" (or reassign it with task_update, assignee {member!r})"
        case NotClaimHolder(reason=Reason.UNCLAIMED):
            return "; claim it first with task_claim"
        case ClaimError(task_id=int()):
            # The store refused a claim this member held: the lease ran out, or it was
            # cancelled or taken over.
            return (
                "; your claim on it is gone: stop working on it and look at task_list for "
                "what to do next"
            )
    return ""
