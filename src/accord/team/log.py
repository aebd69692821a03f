"""The team's log: its append-only events and its members' transcripts.

Events are written by the store in the transaction of the change they record;
this service adds the ones that are no change of their own (a hook run, a
member stopping) and reads the log back. A transcript is one member's saved
history, session by session: what the agent runtime said, heard and did, from
which a restarted process rebuilds its conversation.

Beside them, each member's live output: the text so far of the model call it is
making (``publish_live``, read with ``live`` and ``live_all``), for a view to stream
from any machine that reaches the store. It is scratch, not log: no event records
it (promise 5 is about changes of state), its writes wake no waiting member, and it
is cleared once the reply is saved into the transcript.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from accord.events import EventKind
from accord.types import Event, LiveOutput, TranscriptEntry, UsageRecord

if TYPE_CHECKING:
    from accord.store.base import LogStore


class Log:
    """Events and transcripts of one team."""

    def __init__(self, store: LogStore, team: str) -> None:
        self.store = store
        self.team = team

    # events --------------------------------------------------------------------

    def append_event(
        self, kind: EventKind, payload: dict[str, Any], actor: str | None = None
    ) -> Event:
        """Log something that is not a state change of its own, as a kind of
        ``EventKind`` with the payload keys ``EVENT_PAYLOAD`` gives it."""
        return self.store.append_event(self.team, kind, payload, actor)

    def read_events(self, *, since: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > since``, in order."""
        return self.store.read_events(self.team, since=since, limit=limit)

    def change_marker(self) -> int:
        """A cheap number that moves whenever anyone commits to the store (see
        ``Store.change_marker``)."""
        return self.store.change_marker()

    # live output -----------------------------------------------------------------

    def publish_live(self, member: str, session: int, text: str, tools: Sequence[str] = ()) -> None:
        """Say what ``member``'s model has written so far in the call in progress, and
        the tool calls it has begun. Replaces what was said before; no event, no wake-up
        (see ``Store.set_live``). The caller throttles: several times a second at most."""
        self.store.set_live(self.team, member, session, text, tools)

    def clear_live(self, member: str) -> None:
        """Forget ``member``'s live output: its reply is saved, or its call ended."""
        self.store.clear_live(self.team, member)

    def live(self, member: str) -> LiveOutput | None:
        """What ``member``'s model is writing right now, or None between calls."""
        found = self.store.read_live(self.team, member)
        return found[0] if found else None

    def live_all(self) -> dict[str, LiveOutput]:
        """Every member's live output, by name, for the members in a model call."""
        return {out.member: out for out in self.store.read_live(self.team)}

    # transcripts ---------------------------------------------------------------

    def append_transcript(
        self,
        entries: Sequence[TranscriptEntry],
        *,
        ack: Sequence[int] = (),
        usage: UsageRecord | None = None,
    ) -> list[TranscriptEntry]:
        """Append entries and, in the same transaction, acknowledge the messages ``ack``
        and record ``usage`` (see ``Store.append_transcript``)."""
        return self.store.append_transcript(self.team, entries, ack=ack, usage=usage)

    def read_transcript(
        self,
        member: str,
        *,
        session: int | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> list[TranscriptEntry]:
        """A member's saved history (one session, or all), oldest first."""
        return self.store.read_transcript(
            self.team, member, session=session, since=since, limit=limit
        )

    def last_session(self, member: str) -> int:
        """The member's newest session number, 0 when it has none."""
        return self.store.last_session(self.team, member)

    def follow_transcript(
        self,
        member: str,
        *,
        session: int | None = None,
        since: int = 0,
        poll: float = 0.05,
        until: float | None = None,
    ) -> Iterator[TranscriptEntry]:
        """A member's transcript entries after ``since`` as they are saved, oldest first,
        until ``until`` (a ``time.monotonic`` deadline) or for ever. It reads the store
        again only when its change marker moved: a follower of an idle member costs one
        cheap read per ``poll``."""
        marker: int | None = None
        while True:
            seen = self.store.change_marker()
            if seen != marker:
                marker = seen
                for entry in self.read_transcript(member, session=session, since=since):
                    since = entry.seq
                    yield entry
            if until is not None and time.monotonic() >= until:
                return
            time.sleep(poll)
