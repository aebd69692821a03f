"""The command line's advice for an error: what to run next, naming the command.

Errors below the front doors say only what was wrong and carry what it was about
(``accord.errors``); ``worded`` adds the command that helps, as the command line
prints it after ``error:``. The agent's tools word their own (``accord.agent.tools._advice``).
"""

from __future__ import annotations

from accord.errors import (
    AccordError,
    IdentityError,
    InvalidState,
    NotClaimHolder,
    Reason,
    StaleToken,
    StoreCorrupt,
    StoreNotFound,
    UnknownChannel,
    UnknownDeliberation,
    UnknownMemory,
    UnknownMessage,
    UnknownSkill,
    UnknownTask,
    UnknownTeam,
    UserError,
)
from accord.location import parse_location
from accord.types import check_name

# Said by any command that would open the store from inside a member's sandbox.
IN_SANDBOX = (
    "this command runs inside a member's sandbox: inside a member's sandbox the store is "
    "out of reach; act through your team tools (task_claim, task_complete, send_message, "
    "...) rather than the `accord` command"
)


def worded(e: AccordError) -> str:
    """The error's message, and the command that helps when there is one."""
    return f"{e}{_advice(e)}"


def _advice(e: AccordError) -> str:
    match e:
        case UnknownTeam(reason=Reason.NO_TEAMS):
            return "; create one with `accord team create NAME`"
        case UnknownTeam(team=str(team)) if _is_name(team):
            return f"; create it with `accord team create {team}`"
        case UnknownTask(team=str(team), task_id=int()):
            return f"; see `accord task list --team {team}`"
        case UnknownMessage(member=str(member)):
            return f"; see `accord msg inbox --as {member}`"
        case UnknownMemory():
            return "; see `accord memory search` or `accord memory list`"
        case UnknownSkill():
            return "; see `accord skill list`"
        case UnknownDeliberation():
            return "; see `accord ask list`"
        case InvalidState(reason=Reason.POSITION_FIRST):
            return " with `accord ask position ID TEXT`"
        case UnknownChannel(channel=str(channel)):
            return (
                f"; see `accord channel list`, or create it with "
                f"`accord channel create {channel.lstrip('#')}`"
            )
        case InvalidState(reason=Reason.NOT_SUBSCRIBED, member=str(member)):
            return f"; join it first with `accord channel join CHANNEL --as {member}`"
        case InvalidState(reason=Reason.ON_BOARD, task_id=int(task_id)):
            return f"; cancel it with `accord task cancel {task_id}` instead"
        case InvalidState(reason=Reason.ASSIGNED, task_id=int(task_id), member=str(member)):
            return f" (or reassign it with `accord task update {task_id} --assign {member}`)"
        case InvalidState(reason=Reason.NEVER_RUN):
            return "; start it with `accord run`"
        case UserError(reason=Reason.NEVER_RUN):
            return "; start it with `accord run GOAL`"
        case UserError(reason=Reason.MANY_TEAMS):
            return "; pass --team NAME, set ACCORD_TEAM, or set [team] default in accord.toml"
        case InvalidState(reason=Reason.SUPERVISED, team=str(team), seconds=float(seconds)):
            return (
                f"; stop it with `accord stop --team {team}` "
                f"or wait {seconds:.0f}s for its lease to end"
            )
        case InvalidState(reason=Reason.SUPERVISED, team=str(team)):
            return f"; watch it with `accord watch --team {team}` or stop it with `accord stop`"
        case InvalidState(reason=Reason.FINISHED, team=str(team)):
            return f"; start a new goal with `accord run GOAL --team {team}`"
        case InvalidState(reason=Reason.LEADS):
            return "; stop the team first with `accord stop`"
        case InvalidState(reason=Reason.RUNNING, member=str(member)):
            return f"; stop it first with `accord stop {member}`, then remove it"
        case InvalidState(reason=Reason.LIVE):
            return "; stop it first or pass --force (its tasks go back to pending)"
        case NotClaimHolder(reason=Reason.UNCLAIMED, task_id=int(task_id), member=str(member)):
            return f"; claim it first with `accord task claim --as {member} --id {task_id}`"
        case StaleToken(reason=Reason.WRONG_TOKEN):
            return "; use the token `task claim` returned"
        case IdentityError(reason=Reason.WRONG_MEMBER_TOKEN, member=str(member)):
            return (
                "; use the token issued by `accord member add` or "
                f"`accord member token {member} --rotate`"
            )
        case UserError(reason=Reason.NOT_AN_OPEN_ASK):
            return "; `accord permit --list` shows the open ones"
        case UserError(reason=Reason.NOT_A_MEMBER, member=str(member)):
            return f"; add them with `accord member add {member}` first"
        case StoreNotFound(reason=Reason.NO_STORE, location=str(location)):
            if parse_location(location).is_url:
                return f"; run `accord init --store {location}` first"
            return "; run `accord init` in the project folder, or pass --store with the right path"
        case StoreCorrupt(reason=Reason.NOT_ACCORD):
            return "; pass --store with the right path, or run `accord init` elsewhere"
        case StoreCorrupt(reason=Reason.NOT_A_DATABASE):
            return "; move it aside and run `accord init`, or pass --store with the right path"
        case StoreCorrupt(reason=Reason.TABLES_MISSING):
            return " Run `accord init` to make a new one"
    return ""


def _is_name(name: str) -> bool:
    try:
        check_name(name)
    except UserError:
        return False
    return True
