"""The roster: members, their secret tokens, their liveness, and who may act as whom.

A member's token is issued once when it is added (or rotated) and only its
SHA-256 is stored. An agent process carries ``ACCORD_MEMBER`` and
``ACCORD_TOKEN`` in its environment; ``authorize`` refuses any call in which it
tries to act as somebody else or shows a wrong token. A person at a terminal,
with neither variable set, may act as any member, and is the only caller that
acts as ``person`` (see ``may_act_as``).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from accord.errors import IdentityError, InvalidState, Reason
from accord.types import PERSON, HookEvent, Member, MemberRole, MemberStatus

if TYPE_CHECKING:
    # Hooks load config (and pydantic); checking a token must not wait for them.
    from accord.store.base import TeamStore
    from accord.team.hooks import HookOutcome, HookRunner

# A member whose heartbeat is older than this while "working" looks dead.
LIVE_STATUSES = (MemberStatus.STARTING, MemberStatus.WORKING, MemberStatus.IDLE)


# hashlib, hmac and secrets are imported where a token is made or checked: the person's
# reads carry no token and need none of them.


def new_token() -> str:
    import secrets

    return "acc_" + secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewMember:
    """A member just added, with the only copy of its token."""

    member: Member
    token: str


def authorize(
    store: TeamStore,
    team: str,
    acting_as: str,
    env_member: str | None,
    env_token: str | None,
) -> Member:
    """The member ``acting_as``, if this caller may act as it; IdentityError otherwise."""
    if env_member and env_member != acting_as:
        raise IdentityError(
            f"this process acts for {env_member} (ACCORD_MEMBER); it cannot act as {acting_as}"
        )
    member = store.get_member(team, acting_as)
    if env_member and not env_token:
        raise IdentityError(
            f"ACCORD_MEMBER={env_member} is set but ACCORD_TOKEN is not; an agent must carry "
            "its token"
        )
    import hmac

    if env_token and not hmac.compare_digest(hash_token(env_token), member.token_hash):
        raise IdentityError(
            f"ACCORD_TOKEN is not {acting_as}'s token in team {team!r}",
            team=team,
            member=acting_as,
            reason=Reason.WRONG_MEMBER_TOKEN,
        )
    return member


def may_act_as(
    store: TeamStore, team: str, name: str, env_member: str | None, env_token: str | None
) -> None:
    """IdentityError unless this caller may act as ``name``: a member (``authorize``), or
    ``person``, which only a caller that is no agent may be."""
    if name != PERSON:
        authorize(store, team, name, env_member, env_token)
    elif env_member or env_token:
        raise IdentityError(
            f"this process acts for {env_member or 'a member'} (ACCORD_MEMBER/ACCORD_TOKEN); "
            f"only the person at the terminal acts as {PERSON}"
        )
    else:
        store.get_team(team)


def acting_member(
    store: TeamStore, team: str, env_member: str | None, env_token: str | None
) -> str | None:
    """The verified member this process acts for, or None for a person at a terminal."""
    if not env_member and not env_token:
        return None
    if not env_member:
        raise IdentityError("ACCORD_TOKEN is set without ACCORD_MEMBER; set both or neither")
    return authorize(store, team, env_member, env_member, env_token).name


class Roster:
    """The members of one team."""

    def __init__(self, store: TeamStore, team: str, hooks: HookRunner | None = None) -> None:
        self.store = store
        self.team = team
        self.hooks = hooks

    def add(
        self,
        name: str,
        *,
        role: MemberRole = MemberRole.TEAMMATE,
        agent: str | None = None,
        model: str | None = None,
        actor: str | None = None,
    ) -> NewMember:
        """Add a member (status stopped) with a new token; AlreadyExists if the name is
        taken."""
        token = new_token()
        member = self.store.add_member(
            self.team,
            name,
            token_hash=hash_token(token),
            role=role,
            agent=agent,
            model=model,
            actor=actor,
        )
        return NewMember(member, token)

    def get(self, name: str) -> Member:
        """The member ``name``; UnknownMember if absent."""
        return self.store.get_member(self.team, name)

    def list(self) -> list[Member]:
        """Every member of the team, by name."""
        return self.store.list_members(self.team)

    def update(self, name: str, **changes: Any) -> Member:
        """Change a member's fields as ``Store.update_member`` takes them (status, pid,
        host, agent, model, heartbeat, actor); a field not given is left as it is."""
        return self.store.update_member(self.team, name, **changes)

    def rotate_token(self, name: str, actor: str | None = None) -> NewMember:
        token = new_token()
        member = self.store.update_member(
            self.team, name, token_hash=hash_token(token), actor=actor
        )
        return NewMember(member, token)

    def remove(
        self, name: str, *, force: bool = False, actor: str | None = None
    ) -> builtins.list[int]:
        member = self.store.get_member(self.team, name)
        if member.status in LIVE_STATUSES and not force:
            raise InvalidState(f"{name} is {member.status.value}", member=name, reason=Reason.LIVE)
        return self.store.remove_member(self.team, name, actor=actor)

    def heartbeat(
        self,
        name: str,
        *,
        status: MemberStatus | None = None,
        pid: int | None = None,
        host: str | None = None,
    ) -> Member:
        if pid is None and host is None:
            return self.store.update_member(self.team, name, status=status, heartbeat=True)
        return self.store.update_member(
            self.team, name, status=status, pid=pid, host=host, heartbeat=True
        )

    def idle(self, name: str, reason: str | None = None) -> HookOutcome:
        """A member has nothing to do: run TeammateIdle; exit 2 keeps it working."""
        if self.hooks is not None and self.hooks.configured(HookEvent.TEAMMATE_IDLE):
            outcome = self.hooks.run(
                HookEvent.TEAMMATE_IDLE, {"teammate_name": name, "reason": reason}, actor=name
            )
            if outcome.blocked:
                self.store.update_member(self.team, name, status=MemberStatus.WORKING, actor=name)
                return outcome
        else:
            from accord.team.hooks import HookOutcome

            outcome = HookOutcome(False, "", ())
        self.store.update_member(
            self.team, name, status=MemberStatus.IDLE, heartbeat=True, actor=name
        )
        return outcome
