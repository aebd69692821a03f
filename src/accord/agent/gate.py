"""The permission gate every tool call passes before it runs (``Toolbox.execute``).

It asks the member's rules (``accord.permissions``) for a verdict on the call's
command or path. A deny returns the tool's error naming the rule; an ask sends a
permission request (``accord.team.permits``) and waits for the answer, while the
member's heartbeat thread keeps its claims leased; an allow by rule is logged.
A call no rule matched runs as it always did, with no event: a busy member makes
hundreds of such calls, and the log would drown in them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord.events import EventKind
from accord.permissions import COMMAND_TOOLS, PATH_TOOLS, Decision, Rules, Target, Verdict
from accord.types import PERSON, MemberRole

if TYPE_CHECKING:
    from accord.agent.tools.base import ToolContext
    from accord.team import Team

TARGET_LIMIT = 500  # characters of a command or path an event keeps


def target_of(tool: str, args: Any, workspace: Path) -> Target | None:
    """What rules judge of a call: a bash command, or the path a file tool touches."""
    if tool in COMMAND_TOOLS:
        command = getattr(args, "command", None)
        return Target(command=command) if isinstance(command, str) else None
    if tool in PATH_TOOLS:
        path = getattr(args, "path", None)
        return Target.path(path, workspace) if isinstance(path, str) else None
    return None


def _shown(target: Target | None) -> str | None:
    if target is None:
        return None
    if target.command is not None:
        return target.command[:TARGET_LIMIT]
    return None if target.real is None else str(target.real)[:TARGET_LIMIT]


@dataclass
class Gate:
    """A member's rules, and how its asks are answered: by ``ask_to`` ("person" or
    "lead") within ``ask_timeout`` seconds; ``stop`` ends a wait when the member stops."""

    rules: Rules
    ask_to: str = "person"
    ask_timeout: float = 600.0
    stop: Callable[[], bool] | None = None

    def check(self, ctx: ToolContext, tool: str, args: Any) -> str | None:
        """None when the call may run; else the error result the model gets."""
        if not self.rules.for_tool(tool):
            return None
        target = target_of(tool, args, ctx.workspace)
        verdict = self.rules.decide(tool, target)
        rule = verdict.rule
        if rule is None:
            return None  # no rule matched: allowed, unlogged (see the module docstring)
        team = ctx.team
        if verdict.decision == Decision.ALLOW:
            if team is not None:
                payload = _payload(ctx.member, tool, verdict, target)
                team.log.append_event(EventKind.PERMISSION_ALLOWED, payload, ctx.member)
            return None
        if verdict.decision == Decision.DENY:
            if team is not None:
                payload = _payload(ctx.member, tool, verdict, target)
                team.log.append_event(EventKind.PERMISSION_DENIED, payload, ctx.member)
            return f"denied by rule {verdict.named()}; deny rules cannot be lifted by asking"
        return self._ask(ctx, tool, verdict, target)

    def _ask(
        self, ctx: ToolContext, tool: str, verdict: Verdict, target: Target | None
    ) -> str | None:
        rule = verdict.rule
        assert rule is not None
        team = ctx.team
        if team is None:  # no team to ask (a bare toolbox): an ask is a deny
            return f"denied: rule {verdict.named()} asks, and there is nobody to ask"
        from accord.team.permits import Permits

        permits = Permits(team)
        to = self._answerer(team, ctx.member)
        ask = permits.ask(
            ctx.member,
            to,
            tool=tool,
            target=_shown(target),
            rule=rule.text,
            source=rule.source,
            timeout=self.ask_timeout,
        )
        answer = permits.wait(ask, stop=self.stop)
        if answer is None:
            if self.stop is not None and self.stop():
                # As a command a stop cuts short: nothing is saved, and on resume the call
                # is made (and asked) again.
                raise KeyboardInterrupt
            return (
                f"denied: nobody answered within {self.ask_timeout:g}s (permission request "
                f"{ask.id} to {to}, asked by rule {verdict.named()})"
            )
        if answer.allowed:
            return None
        why = f": {answer.reason}" if answer.reason else ""
        return f"denied by {answer.by}{why} (permission request {ask.id}, rule {verdict.named()})"

    def _answerer(self, team: Team, member: str) -> str:
        """Who answers this member's asks: the person, or the run's lead when so set
        (the person when there is no lead, or the asker is the lead)."""
        if self.ask_to != "lead":
            return PERSON
        run = team.runs.get()
        lead = run.lead if run is not None else None
        if lead is None:
            leads = [m.name for m in team.roster.list() if m.role == MemberRole.LEAD]
            lead = leads[0] if leads else None
        return lead if lead is not None and lead != member else PERSON


def _payload(member: str, tool: str, verdict: Verdict, target: Target | None) -> dict[str, object]:
    """An allowed or denied event's payload (``events.EVENT_PAYLOAD``)."""
    rule = verdict.rule
    assert rule is not None
    payload: dict[str, object] = {
        "member": member,
        "tool": tool,
        "rule": "; ".join(r.text for r in verdict.rules),
        "source": rule.source,
    }
    shown = _shown(target)
    if shown is not None:
        payload["target"] = shown
    return payload
