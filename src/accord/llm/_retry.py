"""One retry loop for the model adapters.

Each adapter turns its SDK's exceptions into a ``Failure`` (a one-line cause,
whether another try could help, and the server's ``retry-after``); this loop
waits with exponential backoff and full jitter between tries, honours
``retry-after`` up to a cap, logs each retry, and raises ``ModelError`` with
provider, model, cause and attempt count when it gives up. The SDKs' own retries
are switched off so that all of this is visible and testable.

Besides 429 and 5xx, a 200 that is not a reply (not JSON, an HTML page, no
choices: ``BadReply``) is worth another try. A 500 whose body is a request
validation error is not (llama-cpp-python answers a request it refuses that
way). A prompt over the context window raises ``ContextTooLong`` at once, with
the window the server named, for the agent to compact and try again.

A streamed reply is read to its last event before it counts: a stream that breaks
off (the connection dropped, or the server closed it early: ``StreamCut``) is tried
again from the start, like a dropped connection, and nothing of it is kept; the
stream's listener is told to forget what it heard (``restart``).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import TypeVar

import pydantic

from accord.llm.base import ContextTooLong, ModelError

log = logging.getLogger("accord.llm")

T = TypeVar("T")
Parsed = TypeVar("Parsed", bound=pydantic.BaseModel)

# Statuses worth another try: timeouts, lock conflicts, rate limits, and every
# server error (529 is Anthropic's "overloaded"). The same set the SDKs retry.
RETRYABLE_STATUS = frozenset({408, 409, 429})

Sleep = Callable[[float], None]


class BadReply(Exception):
    """A reply that came back 200 but is not what the API sends: no choices, no content,
    an HTML page. Proxies and busy local servers do this now and then; worth a retry."""


class StreamCut(Exception):
    """A streamed reply that broke off before its last event: the connection dropped
    halfway, or the server closed the stream early. Retried from the start."""


# Where the SDKs' HTTP errors come from: a stream that breaks while it is read raises
# its HTTP client's error as it is (the SDKs wrap only what happens before the body).
_TRANSPORTS = ("httpx", "httpx2", "httpcore", "h11")


def transport_error(err: BaseException) -> bool:
    """Whether ``err`` is the HTTP client's own (a read that failed or timed out)."""
    return any(c.__module__.partition(".")[0] in _TRANSPORTS for c in type(err).__mro__)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one attempt failed, in one line, and whether to try again."""

    cause: str
    retryable: bool
    retry_after: float | None = None
    too_long: bool = False  # the prompt does not fit the context window
    window: int | None = None  # the window the server named, if it did


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
    restart: Callable[[], None] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, a failure is final, or the retries run out.

    ``classify`` returns None for an exception that is not the SDK's: it is
    raised as it is. ``label`` names provider and model in every message.
    ``restart`` is called before each retry (a stream's listener forgets what it heard).
    """
    tries = backoff.retries + 1
    for number in range(1, tries + 1):
        try:
            return attempt()
        except Exception as err:
            failure = classify(err)
            if failure is None:
                raise
            if failure.too_long:
                raise ContextTooLong(f"{label}: {failure.cause}", window=failure.window) from err
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
            if restart is not None:
                restart()
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def api_message(body: object, fallback: str) -> str:
    """The ``type: message`` an API put in its error body, else ``fallback``; one line."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        kind = error.get("type") or error.get("code")
        text = str(error["message"])
        return one_line(f"{kind}: {text}" if kind else text)
    return one_line(fallback)


# How servers say a prompt is over the window, with the window when they name it:
# OpenAI and vLLM, vLLM's newer wording, llama-cpp-python, llama.cpp, Anthropic.
_WINDOW_PATTERNS = (
    re.compile(r"maximum context length is (\d+)", re.I),
    re.compile(r"maximum model length (?:is |of )?(\d+)", re.I),
    re.compile(r"exceed context window of (\d+)", re.I),
    re.compile(r"\bn_ctx\W{1,4}(\d+)", re.I),
    re.compile(r"prompt is too long: \d+ tokens > (\d+) maximum", re.I),
)
_TOO_LONG_PHRASES = (
    "prompt is too long",
    "context length",
    "context_length_exceeded",
    "exceeds the available context size",
    "exceed context window",
    "maximum model length",
)


def context_overflow(status: int, text: str) -> tuple[bool, int | None]:
    """Whether an error says the prompt is over the context window, and the window."""
    if status not in (400, 413):
        return False, None
    for pattern in _WINDOW_PATTERNS:
        found = pattern.search(text)
        if found:
            return True, int(found.group(1))
    lowered = text.lower()
    return any(p in lowered for p in _TOO_LONG_PHRASES), None


def validation_error(status: int, message: str) -> bool:
    """A 5xx that is really the server refusing the request's shape (llama-cpp-python
    reports a pydantic validation error as HTTP 500): the same request fails again."""
    lowered = message.lower()
    return status >= 500 and ("validation error" in lowered or "input should be" in lowered)


def http_failure(status: int, headers: Mapping[str, str], body: object, message: str) -> Failure:
    """The failure an HTTP error status stands for (401 aside, which names its key)."""
    detail = message + " " + (json.dumps(body) if isinstance(body, dict | list) else str(body))
    too_long, window = context_overflow(status, detail)
    if too_long:
        return Failure(f"HTTP {status}: {message}", False, too_long=True, window=window)
    if validation_error(status, detail):
        # Retrying sends the same request, which the server refuses again.
        return Failure(f"HTTP {status}: the server refused the request ({message})", False)
    if status_retryable(status, headers):
        return Failure(f"HTTP {status}: {message}", True, retry_after(headers))
    return Failure(f"HTTP {status}: {message}", retryable=False)


def root_cause(err: BaseException) -> str:
    """The innermost cause of a wrapped error, as a line: what really went wrong."""
    inner = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    return one_line(str(inner) or type(inner).__name__)


def sdk_failure(
    err: Exception, sdk: ModuleType, base: type[Exception], reply: str, timeout: float, key: str
) -> Failure | None:
    """What a call through an official SDK (``anthropic`` or ``openai``, which name their
    errors alike) failed of, or None for an error that is not the call's: ``base`` is
    the SDK's root error, ``reply`` what its replies are called, ``key`` the variable
    that holds its API key."""
    if isinstance(err, sdk.APITimeoutError):
        return Failure(f"no reply within the {timeout:g}s timeout", retryable=True)
    if isinstance(err, sdk.APIConnectionError):
        return Failure(f"connection failed: {root_cause(err)}", retryable=True)
    if isinstance(err, sdk.APIStatusError):
        status, headers = err.status_code, err.response.headers
        message = api_message(err.body, err.message)
        if status == 200:
            # An error event inside a stream that had begun (Anthropic's "overloaded_error"
            # halfway through a reply): the server's trouble, not the request's.
            kind = _error_type(err.body)
            retryable = kind not in ("invalid_request_error", "authentication_error")
            return Failure(f"the stream broke off: {message}", retryable)
        if status == 401:
            return Failure(f"HTTP 401: the API key in {key} was rejected ({message})", False)
        return http_failure(status, headers, err.body, message)
    if isinstance(err, sdk.APIResponseValidationError):
        return Failure(f"the reply is not a {reply} reply ({root_cause(err)})", True)
    if isinstance(err, base):
        return Failure(root_cause(err), retryable=False)
    if isinstance(err, json.JSONDecodeError):
        return Failure(f"the reply is not JSON ({one_line(str(err))})", retryable=True)
    if isinstance(err, BadReply | StreamCut):
        return Failure(str(err), retryable=True)
    if transport_error(err):
        if "timeout" in type(err).__name__.lower():
            return Failure(f"the stream stalled past the {timeout:g}s timeout", retryable=True)
        return Failure(f"the stream was cut: {root_cause(err)}", retryable=True)
    return None


def _error_type(body: object) -> str | None:
    error = body.get("error", body) if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def whole_reply(body: bytes, shape: type[Parsed], api: str) -> Parsed | str:
    """A whole reply where a stream was asked for (a server that ignored ``stream``):
    the reply ``shape`` parses, or the text it is when it is no JSON; BadReply when it
    is JSON of another shape."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    try:
        return shape.model_validate(data)
    except pydantic.ValidationError as err:
        raise BadReply(f"the reply is not a {api} reply ({one_line(str(err))})") from err
