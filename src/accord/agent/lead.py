"""The lead: plans, spawns teammates, watches the board, and finishes the run.

The lead is an agent whose every wake is a fresh session: the goal, the digest
of the board and of what changed since it last looked, the notes it left itself
at the end of its previous wake, and its new mail. Teammates' full outputs stay
in their transcripts and task results. So the lead's prompt depends on the
digest's caps, not on how long the run has gone on or how many tasks were done.

It wakes for mail, and for changes that matter (a task completed or failed, a
member crashed or went idle); it never claims tasks. It stops when the run is
finished (its own ``finish`` tool) or the supervisor asks it to.
"""

from __future__ import annotations

from accord.agent.definition import AgentDefinition
from accord.agent.loop import Agent, Outcome
from accord.llm.base import ChatMessage
from accord.types import RunStatus, TranscriptEntry, TranscriptKind

NOTES_CLIP = 1500

LEAD = AgentDefinition(
    name="lead",
    description="Plans the work, builds the team, and sees the goal through.",
    self_claim=False,
    max_turns=60,
    prompt=(
        "You lead a team of AI teammates toward a goal a person gave you. You plan; they do. "
        "Break the goal into tasks on the board with task_create (clear titles, descriptions "
        "that say what done means, blocked_by for order, assignee when only one teammate "
        "should take it). Start teammates with spawn_teammate, each with a name, clear first "
        "instructions and, if useful, an agent definition. Keep the team small: two to four "
        "teammates, five or six tasks each.\n\n"
        "Each time you wake you see a digest: the board, what changed since you last looked, "
        "and the team. You do not see teammates' full output, only their task results and "
        "messages; ask them with send_message when you need more. React to what changed: "
        "unblock, re-plan, answer questions, replace a stuck teammate. End your turn when there "
        "is nothing to do; you will be woken when something changes. Whatever you say at the "
        "end of a turn is kept as your notes for the next wake.\n\n"
        "The person who gave you the goal may write to you at any time (their mail is "
        'marked role="user"): what they say directs the team, so act on it (add or stop '
        "teammates, change the plan) and answer them with send_message to 'person'.\n\n"
        "When the goal is met (every needed task completed and checked), ask teammates to shut "
        "down with request_shutdown and call finish with a summary for the person."
    ),
)


class Lead(Agent):
    """The lead's runtime: fresh, bounded context on every wake."""

    keeps_continuity = False  # its notes from the last wake play that part

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen = 0  # the last event seq the lead has looked at

    def _restore(self) -> None:
        super()._restore()
        for entry in reversed(self.services.log.read_transcript(self.member)):
            if entry.kind == TranscriptKind.SESSION and "seen" in entry.body:
                self.seen = int(entry.body["seen"])
                break

    def _step(self, once: bool) -> Outcome | None:
        run = self.services.runs.get()
        if run is not None and run.status in (RunStatus.FINISHED, RunStatus.STOPPED):
            if self.conversation is None:
                return Outcome(
                    "finished" if run.status == RunStatus.FINISHED else "shutdown",
                    run.summary or "",
                )
        return super()._step(once)

    def _find_task(self) -> bool:
        first = self.services.log.last_session(self.member) == 0
        if first or self.services.interesting_since(self.seen, self.member):
            self._start_session(None, self._opening())
            return True
        return False

    def _idle(self) -> bool:
        return False  # the lead has no TeammateIdle duty: it waits for the team

    def _mail_opening(self) -> str:
        return self._opening()

    def _wait(self) -> None:
        self.services.wait(
            self.member,
            self.idle_wait,
            stop=self._stop.is_set,
            tasks=False,
            also=lambda: bool(self.services.interesting_since(self.seen, self.member)),
        )

    def _opening(self) -> str:
        run = self.services.runs.get()
        goal = run.goal if run is not None else "(no goal recorded)"
        digest = self.services.digest(self.seen, self.member)
        self.seen = digest.seq
        notes = self._notes()
        parts = [f"# Goal\n{goal}", digest.text]
        if notes:
            parts.append(f"# Your notes from your last wake\n{notes}")
        else:
            parts.append(
                "# First wake\nPlan the work: put tasks on the board and spawn the teammates "
                "who will do them."
            )
        return "\n\n".join(parts)

    def _start_session(self, task_id: int | None, opening: str) -> None:
        super()._start_session(task_id, opening)
        # Remember how far the digest went, so a restarted lead does not re-read it.
        self._note_seen()

    def _note_seen(self) -> None:
        conv = self.conversation
        if conv is None:
            return
        self.services.log.append_transcript(
            [
                TranscriptEntry(
                    self.member,
                    conv.session,
                    TranscriptKind.SESSION,
                    {"event": "digest", "seen": self.seen},
                )
            ],
        )

    def _notes(self) -> str:
        """The text the lead ended its previous wake with."""
        last = self.services.log.last_session(self.member)
        for entry in reversed(self.services.log.read_transcript(self.member, session=last)):
            if entry.kind == TranscriptKind.MESSAGE and entry.body.get("role") == "assistant":
                text = str(entry.body.get("text", "")).strip()
                if text:
                    return text[-NOTES_CLIP:]
        return ""

    def _turn_ended(self) -> Outcome | None:
        if not self.nudges and self._board_empty():
            # As a teammate is reminded of a task it holds: a lead that ends its turn
            # with nothing on the board would wait for a change that never comes.
            self.nudges += 1
            self._save(
                ChatMessage(
                    "user",
                    "The board is empty, and nothing will wake you until something changes. "
                    "Put the work on the board with task_create and start teammates with "
                    "spawn_teammate; or, if there is nothing to do, call finish with a summary.",
                )
            )
            return None
        self._end_session("turn ended")
        return None

    def _board_empty(self) -> bool:
        run = self.services.runs.get()
        if run is None or run.status == RunStatus.FINISHED:
            return False
        return not self.services.board.list()
