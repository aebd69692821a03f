"""Deliberations: ask several members one question and get one answer.

The store enforces the phases (independent positions, exchange, synthesis; see
``accord.store.sql.deliberations``) and tells the participants in the channel
``#ask-ID``. This service picks the participants (named, or every member of a role or
agent definition), takes the synthesis over for a member whose lease ran out, and
records the answer as a ``decision`` memory, superseding an earlier decision when the
asker names one; the positions stay in the store as its provenance.

Recording the memory is a second transaction after the answer: a crash between the
two leaves a finished deliberation without its memory, which the next ``record`` (any
``show``, or the finishing call retried) writes; a crash after the memory is written
and before it is linked could write it twice, the one gap here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from accord.errors import UserError
from accord.types import (
    PERSON,
    Deliberation,
    DeliberationPhase,
    MemoryType,
    NewMemory,
    Position,
    check_tag,
)

if TYPE_CHECKING:
    from accord.memory import Memory
    from accord.store.base import Store

#: A phase's deadline when the asker gives none.
PHASE_SECONDS = 600.0


class Deliberations:
    """The deliberations of one team."""

    def __init__(self, store: Store, team: str, memory: Memory) -> None:
        self.store = store
        self.team = team
        self.memory = memory

    def participants(self, members: Sequence[str] = (), role: str | None = None) -> list[str]:
        """``members`` as given, or every member whose role or agent definition is
        ``role``; refused when that leaves nobody."""
        if members and role:
            raise UserError("give --members or --role, not both")
        if members:
            return list(members)
        if role is None:
            raise UserError("name who deliberates: --members alice,bob or --role NAME")
        found = [
            m.name
            for m in self.store.list_members(self.team)
            if role in (m.role.value, m.agent) and m.name != PERSON
        ]
        if not found:
            raise UserError(f"no member of team {self.team!r} has role or agent {role!r}")
        return found

    def ask(
        self,
        question: str,
        asker: str,
        *,
        members: Sequence[str] = (),
        role: str | None = None,
        rounds: int = 1,
        synthesizer: str | None = None,
        phase_seconds: float = PHASE_SECONDS,
        supersedes: int | None = None,
        tags: Sequence[str] = (),
    ) -> Deliberation:
        """Open a deliberation; its participants are told by mail in its channel.
        ``tags``: its topics, by which the team's working patterns count its synthesis."""
        people = self.participants(members, role)
        if supersedes is not None:
            old = self.memory.get(supersedes)
            if old.type != MemoryType.DECISION:
                raise UserError(
                    f"memory {supersedes} is a {old.type.value}, not a decision; "
                    "--supersedes names an earlier decision"
                )
        return self.store.open_deliberation(
            self.team,
            question,
            asker,
            people,
            rounds=rounds,
            synthesizer=synthesizer,
            phase_seconds=phase_seconds,
            supersedes=supersedes,
            tags=[check_tag(t) for t in tags],
        )

    def get(self, ident: int) -> Deliberation:
        """The deliberation, moved on first if a deadline passed, with its answer
        recorded if that was left undone."""
        d = self.store.settle_deliberation(self.team, ident)
        return self.record(d)

    def settle_due(self, now: float) -> list[Deliberation]:
        """Move on every open deliberation whose phase deadline has passed (absent
        participants recorded, the next phase begun), so a deliberation whose members
        all died still ends; the supervisor calls this as it watches the team."""
        return [self.get(ident) for ident, due in self.open() if due < now]

    def open(self) -> list[tuple[int, float]]:
        """The unfinished deliberations' ids, each with when it is next due to move on by
        itself (one cheap query)."""
        return self.store.open_deliberations(self.team)

    def all(self) -> list[Deliberation]:
        """The team's deliberations, oldest first."""
        return self.store.list_deliberations(self.team)

    def positions(self, ident: int) -> list[Position]:
        """The whole record of positions and replies (the person's view)."""
        return self.store.deliberation_positions(self.team, ident)

    def read(self, ident: int, member: str) -> list[Position]:
        """What ``member`` may read: refused before it submitted its own position."""
        self.store.settle_deliberation(self.team, ident, member)
        return self.store.read_positions(self.team, ident, member)

    def submit(
        self, ident: int, member: str, text: str, *, phase: DeliberationPhase | None = None
    ) -> Deliberation:
        """``member``'s position, or its reply in the exchange's current round; with
        ``phase``, only in that phase (a retry of the same text is no change in any)."""
        return self.store.submit_position(self.team, ident, member, text, phase=phase)

    def agree(self, ident: int, member: str) -> Deliberation:
        return self.store.agree(self.team, ident, member)

    def synthesize(
        self, ident: int, member: str, answer: str, *, agreement: str = "", dissent: str = ""
    ) -> Deliberation:
        """Write the answer as ``member``: taking the synthesis first if it does not hold
        it (refused while another's lease runs), then recording it as a decision. An
        empty answer is refused before anything is taken."""
        if not (answer.strip() if isinstance(answer, str) else answer):
            raise UserError("a synthesis needs an answer; write the one answer")
        d = self.store.deliberation(self.team, ident)
        if d.phase != DeliberationPhase.DONE and d.lease_holder != member:
            # claiming settles first, and takes a lapsed lease over for ``member``
            d = self.store.claim_synthesis(self.team, ident, member)
        d = self.store.finish_deliberation(
            self.team,
            ident,
            member,
            d.lease_token,
            answer,
            agreement=agreement,
            dissent=dissent,
        )
        return self.record(d)

    def record(self, d: Deliberation) -> Deliberation:
        """A finished deliberation's answer as a ``decision`` memory, once."""
        if d.phase != DeliberationPhase.DONE or d.memory_id is not None:
            return d
        text = f"{d.question}\nAnswer: {d.answer}"
        text += f"\nAgreement: {d.agreement}" if d.agreement else ""
        text += f"\nDissent: {d.dissent}" if d.dissent else ""
        text += f"\n(deliberation {d.id}, {d.channel}; positions kept there)"
        entry, _ = self.memory.remember(
            NewMemory(
                type=MemoryType.DECISION,
                text=text,
                tags=("deliberation",),
                author=d.lease_holder,
                supersedes=d.supersedes,
            )
        )
        return self.store.set_deliberation_memory(self.team, d.id, entry.id)
