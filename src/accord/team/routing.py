"""Routing: a message or channel post with exactly one owner among its recipients.

The rules, in this order, and the first that matches wins: ``[[routing.rules]]`` of
accord.toml in file order, then the ``routes:`` of the members' agent definitions, by
member name. A rule names its owner (``to``) or a role (``role``: the least busy
recipient whose agent definition has that name). A rule that matches but names
nobody among the recipients is passed over, and the decision says so. When no rule
decides, the fallback does: ``lead`` (the lead, if it is a recipient; else the least
busy recipient) or ``least_busy``. Busy means tasks in progress plus routed messages
owned and not yet answered. With ``prefer = "history"`` (in ``[routing]``, or on a rule
with ``role``), members are ordered by their history on the message's topics (its tags
and channel; see ``WorkPattern.score``) before how busy they are, so a specialisation
that emerged is reinforced. The store writes the decision with the message,
atomically, and its ``message_routed`` event carries the rule; ``explain`` reads it back.

A routed message is answered when its owner replies to it (``reply_to``); the store
refuses a reply from any other member but its sender, so two members never both answer
it. Its sender then accepts the answer or turns it down (``judge``). Those counts, and
the deliberations each member synthesised, are the team's working patterns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from accord.errors import UserError
from accord.events import EventKind
from accord.types import (
    BROADCAST,
    PERSON,
    Event,
    Member,
    MemberRole,
    Message,
    OutgoingMessage,
    Route,
    RouteChoice,
    WorkPattern,
    check_channel,
    check_tag,
)

if TYPE_CHECKING:
    from accord.config import RoutingConfig, RoutingRule
    from accord.store.base import Store


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a routed message has its owner: the route now, and every decision, in order."""

    route: Route
    decisions: tuple[Event, ...]


def _role_of(member: Member | None) -> set[str]:
    if member is None:
        return {PERSON}
    return {member.role.value} | ({member.agent} if member.agent else set())


class Routing:
    """The routing of one team's messages and posts."""

    def __init__(
        self,
        store: Store,
        team: str,
        settings: RoutingConfig | None = None,
        definition_rules: Sequence[tuple[str, RoutingRule]] = (),
    ) -> None:
        self.store = store
        self.team = team
        if settings is None:
            from accord.config import RoutingConfig

            settings = RoutingConfig()
        self.settings = settings
        self._definition_rules = sorted(definition_rules, key=lambda r: r[0])

    def rules(self) -> list[tuple[str, RoutingRule]]:
        """Every rule in the order it is tried, each with a label naming where it is."""
        labelled = [(f"accord.toml rule {i}", r) for i, r in enumerate(self.settings.rules, 1)]
        counts: dict[str, int] = {}
        for member, rule in self._definition_rules:
            counts[member] = counts.get(member, 0) + 1
            labelled.append((f"{member}'s definition, route {counts[member]}", rule))
        return labelled

    # deciding ----------------------------------------------------------------------

    def _least_busy(self, members: Sequence[str], load: dict[str, int]) -> list[str]:
        return sorted(members, key=lambda m: (load.get(m, 0), m))

    def _ordered(
        self,
        members: Sequence[str],
        load: dict[str, int],
        prefer: str,
        topics: Sequence[str],
        history: dict[str, int] | None,
    ) -> tuple[list[str], dict[str, int] | None]:
        """``members`` least busy first, or (``prefer == "history"``) best history on
        ``topics`` first, then least busy; the history read once and passed back."""
        if prefer != "history":
            return self._least_busy(members, load), history
        if history is None:
            history = self.history(topics)
        scores = history
        return sorted(members, key=lambda m: (-scores.get(m, 0), load.get(m, 0), m)), history

    def history(self, topics: Sequence[str]) -> dict[str, int]:
        """Each member's standing on ``topics`` (the sum of its ``WorkPattern.score``
        over them; over everything it did when there are none)."""
        scores: dict[str, int] = {}
        for p in self.store.work_patterns(self.team, list(topics) or ["*"]):
            scores[p.member] = scores.get(p.member, 0) + p.score
        return scores

    @staticmethod
    def _matches(
        rule: RoutingRule,
        sender: set[str],
        body: str,
        channel: str | None,
        tags: Sequence[str],
    ) -> bool:
        if rule.match_role is not None and rule.match_role not in sender:
            return False
        if rule.tags and not set(rule.tags) <= set(tags):
            return False
        if rule.keyword is not None and rule.keyword.lower() not in body.lower():
            return False
        if rule.pattern is not None and re.search(rule.pattern, body) is None:
            return False
        return rule.channel is None or (
            channel is not None and check_channel(rule.channel) == channel
        )

    def decide(
        self,
        sender: str,
        recipients: Sequence[str],
        body: str,
        *,
        channel: str | None = None,
        tags: Sequence[str] = (),
        roster: Sequence[Member] | None = None,
    ) -> RouteChoice:
        """The owner among ``recipients`` (members only) that the rules, or the fallback,
        choose, with the rule that did and the candidates ownership moves on to.
        ``roster``: the team's members, when the caller has just read them."""
        if roster is None:
            roster = self.store.list_members(self.team)
        members = {m.name: m for m in roster}
        pool = [r for r in recipients if r in members]
        if not pool:
            raise UserError(
                "a routed message needs a member among its recipients to own it; "
                "send it to a member, to '*', or post it to a channel members joined"
            )
        who = _role_of(members.get(sender))
        tags = [check_tag(t) for t in tags]
        topics = tuple(dict.fromkeys([*tags, *([channel] if channel else [])]))
        load = self.store.member_load(self.team)
        history: dict[str, int] | None = None
        prefer = self.settings.prefer
        passed: list[str] = []
        for label, rule in self.rules():
            if not self._matches(rule, who, body, channel, tags):
                continue
            if rule.to is not None:
                owners = [rule.to] if rule.to in pool else []
            else:
                owners, history = self._ordered(
                    [p for p in pool if rule.role in _role_of(members[p])],
                    load,
                    rule.prefer or prefer,
                    topics,
                    history,
                )
            if owners:
                rest = [p for p in self._least_busy(pool, load) if p not in owners]
                return RouteChoice(
                    owners[0],
                    f"{label} ({_describe(rule, prefer)})",
                    self.settings.lease_seconds,
                    (*owners, *rest),
                    topics,
                )
            passed.append(f"{label} matched but names nobody among the recipients")
        order, history = self._ordered(pool, load, prefer, topics, history)
        leads = [p for p in pool if members[p].role is MemberRole.LEAD]
        if self.settings.fallback == "lead" and leads:
            order = [leads[0], *(p for p in order if p != leads[0])]
            why = "fallback: the lead"
        elif prefer == "history":
            why = "fallback: the recipient with the best history on " + (
                ", ".join(topics) or "everything"
            )
        else:
            why = "fallback: the least busy recipient"
        if not passed:
            why += " (no rule matched)"
        else:
            why += " (" + "; ".join(passed) + ")"
        return RouteChoice(order[0], why, self.settings.lease_seconds, tuple(order), topics)

    # sending -----------------------------------------------------------------------

    def send(
        self,
        sender: str,
        recipient: str,
        body: str,
        *,
        summary: str | None = None,
        tags: Sequence[str] = (),
        key: str | None = None,
        reply_to: int | None = None,
    ) -> list[Message]:
        """Send a routed message to a member or to ``*``: its one owner is chosen now
        and written with it."""
        roster = self.store.list_members(self.team)
        if recipient == BROADCAST:
            recipients = [m.name for m in roster if m.name != sender]
        else:
            recipients = [recipient]
        choice = self.decide(sender, recipients, body, tags=tags, roster=roster)
        return self.store.send_message(
            self.team,
            OutgoingMessage(
                sender, recipient, body, summary=summary, reply_to=reply_to, idempotency_key=key
            ),
            route=choice,
        )

    def post(
        self,
        channel: str,
        sender: str,
        body: str,
        *,
        summary: str | None = None,
        tags: Sequence[str] = (),
        key: str | None = None,
        reply_to: int | None = None,
    ) -> Message:
        """Post a routed message to a channel; its owner is one of the other subscribers."""
        channel = check_channel(channel)
        subscribers = next(
            (c.subscribers for c in self.store.list_channels(self.team) if c.name == channel), ()
        )
        recipients = [s for s in subscribers if s != sender]
        choice = self.decide(sender, recipients, body, channel=channel, tags=tags)
        return self.store.post(
            self.team,
            channel,
            sender,
            body,
            summary=summary,
            route=choice,
            key=key,
            reply_to=reply_to,
        )[0]

    # ownership ---------------------------------------------------------------------

    def owner(self, message_id: int) -> Route | None:
        """The route of a message (or of the one it is a copy of), if it is routed."""
        return self.store.get_route(self.team, message_id)

    def routes(self, *, owner: str | None = None, unanswered: bool = False) -> list[Route]:
        """The team's routes by message id (only ``owner``'s; only those unanswered)."""
        return self.store.list_routes(self.team, owner=owner, unanswered=unanswered)

    def marks(self, messages: Sequence[Message]) -> dict[int, str]:
        """For each routed message among ``messages``, by its id: ``owned by NAME`` until
        its owner answers, then ``answered by NAME`` (what a reader is shown beside it)."""
        found: dict[int, str] = {}
        seen: dict[int, Route | None] = {}
        for m in messages:
            if m.route_id is None:
                continue
            if m.route_id not in seen:
                seen[m.route_id] = self.store.get_route(self.team, m.route_id)
            route = seen[m.route_id]
            if route is not None:
                said = "answered by" if route.answer_id is not None else "owned by"
                found[m.id] = f"{said} {route.owner}"
        return found

    def take(self, message_id: int, owner: str, *, by: str) -> Route:
        """The lead (or the person) makes ``owner`` the owner, whatever the lease."""
        return self.store.take_ownership(
            self.team, message_id, owner, by=by, lease_seconds=self.settings.lease_seconds
        )

    def release(self, message_id: int, member: str) -> Route:
        """The owner lets a routed message go: it moves at once to the next candidate."""
        route = self.owner(message_id)
        if route is None:
            raise UserError(f"message #{message_id} is not routed, so nobody owns it")
        return self.store.release_route(self.team, message_id, member, route.token)

    def judge(self, message_id: int, by: str, *, accepted: bool = True) -> Route:
        """The message's sender accepts its owner's answer (or turns it down); the
        team's working patterns count it for the owner."""
        return self.store.judge_answer(self.team, message_id, by, accepted=accepted)

    def patterns(self) -> list[WorkPattern]:
        """Who owned, answered, had accepted and synthesised what, per topic and in all."""
        return self.store.work_patterns(self.team)

    def expire(self) -> list[Route]:
        """Move every route whose lease ran out to its next candidate."""
        return self.store.expire_routes(self.team)

    def explain(self, message_id: int) -> Explanation:
        """The route of a message and each decision that made it; UserError if the
        message is not routed."""
        route = self.store.get_route(self.team, message_id)
        if route is None:
            raise UserError(
                f"message #{message_id} is not routed, so nobody owns it; "
                "send with --route to route a message"
            )
        decisions = tuple(
            e
            for e in self.store.read_events(self.team)
            if e.kind == EventKind.MESSAGE_ROUTED and e.payload.get("id") == route.message_id
        )
        return Explanation(route, decisions)


def _describe(rule: RoutingRule, prefer: str = "least_busy") -> str:
    parts = []
    if rule.match_role is not None:
        parts.append(f"from role {rule.match_role}")
    if rule.tags:
        parts.append("tags " + ",".join(rule.tags))
    if rule.keyword is not None:
        parts.append(f"keyword {rule.keyword!r}")
    if rule.pattern is not None:
        parts.append(f"pattern {rule.pattern!r}")
    if rule.channel is not None:
        parts.append(f"channel {check_channel(rule.channel)}")
    parts.append(f"to {rule.to}" if rule.to is not None else f"role {rule.role}")
    if rule.role is not None and (rule.prefer or prefer) == "history":
        parts.append("best history first")
    return ", ".join(parts)


def definition_rules(
    members: Sequence[Member], routes: dict[str, Sequence[dict[str, object]]]
) -> list[tuple[str, RoutingRule]]:
    """The ``routes:`` of each member's agent definition (``routes`` by definition name)
    as rules, labelled by member; a route naming no owner routes to that member."""
    from pydantic import ValidationError

    from accord.config import RoutingRule

    found = []
    for m in sorted(members, key=lambda m: m.name):
        for raw in routes.get(m.agent or "", ()):
            given = dict(raw)
            if "to" not in given and "role" not in given:
                given["to"] = m.name
            try:
                found.append((m.name, RoutingRule.model_validate(given)))
            except ValidationError as e:
                first = e.errors()[0]
                raise UserError(
                    f"agent definition {m.agent!r}: a route is not valid: {first['msg']}"
                ) from e
    return found
