"""One retry loop for the model adapters.

Each adapter turns its SDK's exceptions into a ``Failure`` (a one-line cause,
whether another try could help, and the server's ``retry-after``); this loop
waits with exponential backoff and full jitter between tries, honours
``retry-after`` up to a cap, logs each retry, and raises ``ModelError`` with
provider, model, cause and attempt count when it gives up. The SDKs' own retries
are switched off so that all of this is visible and testable.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from accord.llm.base import ModelError

log = logging.getLogger("accord.llm")

T = TypeVar("T")

# Statuses worth another try: timeouts, lock conflicts, rate limits, and every
# server error (529 is Anthropic's "overloaded"). The same set the SDKs retry.
RETRYABLE_STATUS = frozenset({408, 409, 429})

Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one attempt failed, in one line, and whether to try again."""

    cause: str
    retryable: bool
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often and how long to wait: ``retries`` tries after the first one."""

    retries: int = 4
    base: float = 1.0
    cap: float = 30.0
    retry_after_cap: float = 60.0

    def delay(self, retry: int, retry_after: float | None, rand: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        ceiling = min(self.cap, self.base * 2.0 ** (retry - 1))
        # Half fixed, half random: spreads a team's retries without ever waiting ~0.
        return ceiling / 2 + rand() * ceiling / 2


def status_retryable(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an HTTP status is worth retrying; the server's ``x-should-retry`` wins."""
    hint = (headers.get("x-should-retry") or "").lower()
    if hint in ("true", "false"):
        return hint == "true"
    return status in RETRYABLE_STATUS or status >= 500


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``retry-after``), or None."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace and cap the length, so an API's message fits one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def with_retries(
    attempt: Callable[[], T],
    *,
    label: str,
    classify: Callable[[Exception], Failure | None],
    backoff: Backoff,
    sleep: Sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run ``attempt`` until it succeeds, a failure is final, or the retries run out.

    ``classify`` returns None for an exception that is not the SDK's: it is
    raised as it is. ``label`` names provider and model in every message.
    """
    tries = backoff.retries + 1
    for number in range(1, tries + 1):
        try:
            return attempt()
        except Exception as err:
            failure = classify(err)
            if failure is None:
                raise
            if not failure.retryable:
                raise ModelError(f"{label}: {failure.cause}", retryable=False) from err
            if number == tries:
                noun = "attempt" if tries == 1 else "attempts"
                raise ModelError(
                    f"{label}: {failure.cause}; gave up after {tries} {noun}", retryable=True
                ) from err
            wait = backoff.delay(number, failure.retry_after, rand)
            log.warning(
                "%s: %s; retry %d of %d in %.1fs",
                label,
                failure.cause,
                number,
                backoff.retries,
                wait,
            )
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def api_message(body: object, fallback: str) -> str:
    """The ``type: message`` an API put in its error body, else ``fallback``; one line."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        kind = error.get("type") or error.get("code")
        text = str(error["message"])
        return one_line(f"{kind}: {text}" if kind else text)
    return one_line(fallback)


def root_cause(err: BaseException) -> str:
    """The innermost cause of a wrapped error, as a line: what really went wrong."""
    inner = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    return one_line(str(inner) or type(inner).__name__)
