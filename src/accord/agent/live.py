"""Publishing a member's reply while its model writes it, for views to stream.

A ``LivePublisher`` listens to one model call (``Model.stream``) and writes the text
so far to the team's live channel (``Log.publish_live``): at once for the first
piece and for each tool call begun, and otherwise at most every ``EVERY`` seconds,
however fast the pieces come. Never a write per token: a reply of 2,000 tokens that
streams for ten seconds costs some forty writes, whatever the number of pieces.

It is a courtesy: a write that fails is skipped (the first failure is reported once,
through ``report``) and never breaks the call. The agent clears the live row once the
reply is saved into the transcript, or when the call fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from accord.llm.base import StreamListener
from accord.team.log import Log

EVERY = 0.25  # seconds between two writes of the text so far


class LivePublisher(StreamListener):
    """One member's reply so far, written to the live channel at a bounded rate."""

    def __init__(
        self,
        log: Log,
        member: str,
        session: int,
        *,
        every: float = EVERY,
        clock: Callable[[], float] = time.monotonic,
        report: Callable[[Exception], None] | None = None,
    ) -> None:
        self.log = log
        self.member = member
        self.session = session
        self.every = every
        self.clock = clock
        self.report = report
        self.text_so_far = ""
        self.tools: list[str] = []
        self.writes = 0  # publishes that reached the store
        self.failed = False
        self._sent_at = float("-inf")

    def text(self, delta: str) -> None:
        self.text_so_far += delta
        if self.clock() - self._sent_at >= self.every:
            self._publish()

    def tool(self, name: str) -> None:
        self.tools.append(name)
        self._publish()

    def restart(self) -> None:
        self.text_so_far, self.tools = "", []
        if self.writes:
            self._publish()

    def clear(self) -> None:
        """Forget the live row (the reply is saved, or the call failed)."""
        if not self.writes:
            return
        try:
            self.log.clear_live(self.member)
        except Exception as e:  # a courtesy: never breaks the turn
            self._failed(e)

    def _publish(self) -> None:
        self._sent_at = self.clock()
        try:
            self.log.publish_live(self.member, self.session, self.text_so_far, self.tools)
        except Exception as e:  # a courtesy: never breaks the turn
            self._failed(e)
            return
        self.writes += 1

    def _failed(self, error: Exception) -> None:
        if not self.failed and self.report is not None:
            self.report(error)
        self.failed = True
