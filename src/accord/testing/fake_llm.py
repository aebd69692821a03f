"""Fake Anthropic and OpenAI HTTP servers for the real SDKs to talk to.

Each server listens on 127.0.0.1 (a free port), runs in a background thread,
and plays a queue of scripted replies in order, one per request: text, tool
calls, usage, error codes, a reply slower than the client's timeout, or a
connection closed halfway through the body. Every request is recorded (path,
headers, JSON body), so a test can check what an adapter actually sent::

    with FakeAnthropic() as fake:
        fake.say("hello", usage={"input_tokens": 12, "output_tokens": 3})
        model = AnthropicModel("claude-sonnet-4-5", base_url=fake.base_url, api_key="k")
        model.complete(request)
        assert fake.requests[0].api_key == "k"

Reply bodies follow the real APIs' JSON closely enough for the SDKs to parse
them. A request that arrives when the queue is empty gets a 500 and is counted,
so ``assert_complete()`` fails on it as it does on unplayed replies.

A queue cannot drive a team: several member processes call the same server in an
order nobody can foresee. Rules can. ``on(...)`` returns a view of the server on
which every reply builder makes a rule instead of queueing; each request is
answered by the first rule whose conditions all hold (a text in the system
prompt, where the member's name is; a text in the latest turn, the user text and
tool results sent since the model last spoke; any test of the request), a
``once`` rule answers one time only, and ``otherwise()`` sets the reply for a
request no rule and no queued reply answers::

    with FakeOpenAI() as fake:
        alice = fake.on(system="You are alice")
        alice.on(last="Your task #1").call_tools(("write_file", {"path": "a", "content": "a"}))
        alice.on(last="created a", once=True).call_tools(("task_complete", {"task_id": 1}))
        fake.otherwise().say("Waiting.")

Rules come first, then the queue, then the fallback. A rule's tool calls get fresh
ids each time it answers, as a real model's would; ``assert_complete()`` also fails
on a rule that never answered.

Both fakes can send what real servers and proxies send when they misbehave:
``not_json()``, ``html()`` (status 200), ``empty()`` (no choices, or a message
without content), ``huge()`` (a 10 MB reply), ``negative_usage()`` and
``context_exceeded(N)`` (the 400 a full context window gets, in each API's
wording). ``FakeOpenAI`` is strict like llama-cpp-python's server: it answers an
assistant message with ``"content": null`` with a 500 whose body is a validation
error, and drops tools sent without ``tool_choice``. ``FakeAnthropic(prompt_cache=
True)`` models the prompt cache (see the class).

A request with ``"stream": true`` gets its reply as server-sent events, exactly as
each API streams (Anthropic: ``message_start``, each content block's start, deltas
and stop, ``message_delta`` with the stop reason and output usage, ``message_stop``;
OpenAI: ``chat.completion.chunk`` objects, a usage chunk with no choices when
``stream_options.include_usage`` asks for it, then ``[DONE]``), the text in deltas of
a few words and tool arguments in pieces; ``cut()`` then sends half of the events and
drops the connection, and ``event_delay`` paces the events like a model writing.
``FakeOpenAI`` refuses ``stream_options`` without ``stream`` as openai.com does. A
reply that is no message (``empty()``, ``not_json()``, ``html()``) is sent whole, as
a server that ignores ``stream`` would.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self

__all__ = ["FakeAnthropic", "FakeOpenAI", "FakeReply", "RecordedRequest"]

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake server received it; header names are lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = field(repr=False)

    @property
    def api_key(self) -> str | None:
        """The key the client sent, as ``x-api-key`` or ``authorization: Bearer``."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" else None


@dataclass(frozen=True, slots=True)
class FakeReply:
    """One scripted HTTP reply.

    ``body`` is sent as JSON unless it is a ``str``. A ``model`` key set to None
    is filled with the model the request named. ``delay`` waits before answering;
    ``cut`` sends the headers and half of the body, then closes the connection.
    """

    status: int = 200
    body: dict[str, Any] | str = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    cut: bool = False
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class _When:
    """What a request must show for a rule to answer it: every text and test holds."""

    system: tuple[str, ...] = ()
    last: tuple[str, ...] = ()
    tests: tuple[Callable[[RecordedRequest], bool], ...] = ()
    once: bool = False

    def describe(self) -> str:
        said = [f"system has {t!r}" for t in self.system]
        said += [f"latest turn has {t!r}" for t in self.last]
        said += [f"{len(self.tests)} test(s)"] if self.tests else []
        return (" and ".join(said) or "any request") + (" (once)" if self.once else "")


@dataclass(slots=True)
class _Rule:
    when: _When
    reply: FakeReply
    hits: int = 0


class _FakeServer:
    """The HTTP plumbing both fakes share; subclasses know one API's shapes."""

    path: ClassVar[str]
    provider: ClassVar[str]

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.unexpected = 0
        self._replies: deque[FakeReply] = deque()
        self._rules: list[_Rule] = []
        self._otherwise: FakeReply | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # A view made by on() or otherwise() scripts its root; the root is itself.
        self._root: _FakeServer = self
        self._when: _When | None = None
        # Seconds between two events of a streamed reply (0: as fast as the socket takes).
        self.event_delay = 0.0

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        if self._root is not self:
            raise RuntimeError("a view made by on() or otherwise() only scripts its server")
        self._closing.clear()
        handler = _handler_for(self)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{self.provider}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._root is not self:
            raise RuntimeError("a view made by on() or otherwise() only scripts its server")
        self._closing.set()  # wakes any reply that is waiting out its delay
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"the fake {self.provider} server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, without any path."""
        return f"http://127.0.0.1:{self.port}"

    # -- the script --------------------------------------------------------------

    def add(self, *replies: FakeReply) -> Self:
        """Queue replies; on a view, make each one a rule (or the fallback)."""
        root = self._root
        with root._lock:
            if root is self:
                self._replies.extend(replies)
            elif self._when is None:
                if replies:
                    root._otherwise = replies[-1]
            else:
                root._rules.extend(_Rule(self._when, r) for r in replies)
        return self

    def on(
        self,
        *,
        system: str | None = None,
        last: str | None = None,
        test: Callable[[RecordedRequest], bool] | None = None,
        once: bool = False,
    ) -> Self:
        """A view whose replies become rules: answer a request whose system prompt holds
        ``system``, whose latest turn holds ``last`` and for which ``test`` is true.

        A view of a view adds its conditions to its parent's. Rules answer in the
        order they were made; a ``once`` rule answers one request only.
        """
        when = self._when or _When()
        view = copy.copy(self)
        view._when = _When(
            when.system + ((system,) if system is not None else ()),
            when.last + ((last,) if last is not None else ()),
            when.tests + ((test,) if test is not None else ()),
            once or when.once,
        )
        return view

    def otherwise(self) -> Self:
        """A view whose reply answers any request nothing else answers; a later one
        replaces it. It answers as often as asked, with fresh tool call ids."""
        view = copy.copy(self)  # its _root is the server: a view with no _when is this
        view._when = None
        return view

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._replies)

    def hits(self) -> list[tuple[str, int]]:
        """Each rule, described, with how many requests it answered, in order."""
        with self._root._lock:
            return [(r.when.describe(), r.hits) for r in self._root._rules]

    @property
    def last(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise AssertionError(f"the fake {self.provider} server received no request")
            return self.requests[-1]

    def assert_complete(self) -> None:
        with self._lock:
            left, extra = len(self._replies), self.unexpected
            idle = [r.when.describe() for r in self._rules if not r.hits]
        if left:
            raise AssertionError(f"{left} scripted {self.provider} repl(ies) were never played")
        if idle:
            raise AssertionError(
                f"{len(idle)} {self.provider} rule(s) never answered: {'; '.join(idle)}"
            )
        if extra:
            raise AssertionError(
                f"{extra} {self.provider} request(s) came after the script ran out"
            )

    def slow(self, seconds: float) -> Self:
        """A reply that waits ``seconds`` before answering: longer than the client's timeout."""
        return self.add(FakeReply(body=self._text_body("too late"), delay=seconds))

    def cut(self) -> Self:
        """Send the headers and half of a body, then close the connection."""
        return self.add(FakeReply(body=self._text_body("this reply is cut short"), cut=True))

    def fail(
        self,
        status: int,
        message: str = "",
        *,
        retry_after: float | None = None,
        error_type: str | None = None,
    ) -> Self:
        """An error reply in the API's own shape; ``retry_after`` sets that header (seconds)."""
        headers: tuple[tuple[str, str], ...] = ()
        if retry_after is not None:
            headers = (("retry-after", f"{retry_after:g}"),)
        body = self._error_body(status, message or f"fake error {status}", error_type)
        return self.add(FakeReply(status=status, body=body, headers=headers))

    # -- misbehaviours seen from real servers and proxies -------------------------

    def not_json(self) -> Self:
        """Status 200 and a body that is not JSON at all."""
        return self.add(FakeReply(body='{"id": "truncated', content_type="application/json"))

    def html(self) -> Self:
        """Status 200 and an HTML page, as a captive portal or a misrouted proxy sends."""
        page = "<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
        return self.add(FakeReply(body=page, content_type="text/html"))

    def huge(self, size: int = 10 * 1024 * 1024) -> Self:
        """A text reply of ``size`` characters (10 MB unless told)."""
        return self.add(FakeReply(body=self._text_body("x" * size)))

    def negative_usage(self) -> Self:
        """A text reply whose usage counts are negative and absurd."""
        return self.add(FakeReply(body=self._text_body("odd usage", usage=self._bad_usage())))

    def context_exceeded(self, window: int, sent: int | None = None) -> Self:
        """The 400 a server sends when the prompt does not fit its context window."""
        return self.add(FakeReply(status=400, body=self._too_long_body(window, sent or window + 1)))

    # -- per API -----------------------------------------------------------------

    def _bad_usage(self) -> dict[str, Any]:
        raise NotImplementedError

    def _too_long_body(self, window: int, sent: int) -> dict[str, Any]:
        raise NotImplementedError

    def _text_body(self, text: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _error_body(self, status: int, message: str, error_type: str | None) -> dict[str, Any]:
        raise NotImplementedError

    # -- serving -----------------------------------------------------------------

    def _refuse(self, body: dict[str, Any]) -> FakeReply | None:
        """A reply for a request this server rejects before looking at its script."""
        return None

    def _adjust(self, body: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        """A scripted 200 body as this server would really send it for ``request``."""
        return body

    def _events(self, body: dict[str, Any], request: dict[str, Any]) -> list[bytes] | None:
        """A 200 body as the server-sent events of a streamed reply, or None for a body
        that is no reply (sent whole, as a server that ignores ``stream`` would)."""
        return None

    def system_text(self, body: dict[str, Any]) -> str:
        """The system prompt a request carries, as one text."""
        raise NotImplementedError

    def latest_text(self, body: dict[str, Any]) -> str:
        """What a request tells the model since it last spoke: user text and tool results."""
        raise NotImplementedError

    def _renew(self, body: dict[str, Any]) -> dict[str, Any]:
        """A copy of a reply body with fresh message and tool call ids."""
        raise NotImplementedError

    def _matches(self, when: _When, request: RecordedRequest, texts: tuple[str, str]) -> bool:
        system, latest = texts
        return (
            all(t in system for t in when.system)
            and all(t in latest for t in when.last)
            and all(test(request) for test in when.tests)
        )

    def _played(self, reply: FakeReply) -> FakeReply:
        if isinstance(reply.body, dict):
            return replace(reply, body=self._renew(reply.body))
        return reply

    def _next(self, request: RecordedRequest) -> FakeReply:
        body = request.body if isinstance(request.body, dict) else {}
        refused = self._refuse(body)
        texts = (self.system_text(body), self.latest_text(body))
        with self._lock:
            self.requests.append(request)
            if refused is not None:
                return refused
            for rule in self._rules:
                if rule.when.once and rule.hits:
                    continue
                if self._matches(rule.when, request, texts):
                    rule.hits += 1
                    return self._played(rule.reply)
            if self._replies:
                return self._replies.popleft()
            if self._otherwise is not None:
                return self._played(self._otherwise)
            self.unexpected += 1
        message = f"fake {self.provider} server: request {len(self.requests)} has no scripted reply"
        return FakeReply(status=500, body=self._error_body(500, message, None))

    def _wait(self, seconds: float) -> bool:
        """Wait out a delay; False when the server is closing meanwhile."""
        return not self._closing.wait(seconds)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Overloaded",
}


def _handler_for(server: _FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out as separate writes; without this, Nagle and
            # delayed ACKs add ~40 ms to every reply.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read requests from the recording, not from stderr

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except ConnectionError:
                # The client dropped a kept-alive connection (it closed a stream before
                # its last chunk was read): nothing more will come on it.
                self.close_connection = True

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = None
            path = self.path.split("?", 1)[0]
            recorded = RecordedRequest(
                "POST", path, {k.lower(): v for k, v in self.headers.items()}, body, raw
            )
            if path != server.path:
                with server._lock:
                    server.requests.append(recorded)
                    server.unexpected += 1
                message = f"fake {server.provider} server serves POST {server.path}, not {path}"
                self._send(FakeReply(status=404, body=server._error_body(404, message, None)), {})
                return
            self._send(server._next(recorded), body if isinstance(body, dict) else {})

        def _send(self, reply: FakeReply, request: dict[str, Any]) -> None:
            if reply.delay and not server._wait(reply.delay):
                self.close_connection = True
                return
            content = reply.body
            if isinstance(content, dict) and "model" in content and content["model"] is None:
                content = {**content, "model": request.get("model", "unknown")}
            if isinstance(content, dict) and reply.status == 200:
                content = server._adjust(content, request)
            events = None
            if request.get("stream") is True and reply.status == 200 and isinstance(content, dict):
                events = server._events(content, request)
            if events is not None:
                self._send_events(reply, events)
                return
            payload = (content if isinstance(content, str) else json.dumps(content)).encode()
            try:
                self.send_response(reply.status, _REASONS.get(reply.status))
                self.send_header("content-type", reply.content_type)
                self.send_header("content-length", str(len(payload)))
                self.send_header("request-id", f"req_fake_{next(_ids)}")
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                if reply.cut:
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(payload)
            except OSError:
                # The client gave up first (its timeout): nothing left to answer.
                self.close_connection = True

        def _send_events(self, reply: FakeReply, events: list[bytes]) -> None:
            """Server-sent events, one HTTP chunk each, as the real APIs stream; ``cut``
            sends half of them and closes the connection without the last chunk."""
            try:
                self.send_response(200, "OK")
                self.send_header("content-type", "text/event-stream; charset=utf-8")
                self.send_header("transfer-encoding", "chunked")
                self.send_header("cache-control", "no-cache")
                self.send_header("request-id", f"req_fake_{next(_ids)}")
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                for n, event in enumerate(events):
                    if reply.cut and n >= len(events) // 2:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if server.event_delay and n and not server._wait(server.event_delay):
                        self.close_connection = True
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True

    return Handler


PIECE_WORDS = 4  # words per streamed text delta
PIECE_CHARS = 16 * 1024  # and never more characters than this in one


def _pieces(text: str) -> list[str]:
    """``text`` in the deltas a fake streams it as: a few words each, so a test sees
    several; a long run without spaces in pieces of ``PIECE_CHARS``."""
    words = [w for w in re.split(r"(?<=\s)(?=\S)", text) if w]
    out: list[str] = []
    for i in range(0, len(words), PIECE_WORDS):
        piece = "".join(words[i : i + PIECE_WORDS])
        out.extend(piece[j : j + PIECE_CHARS] for j in range(0, len(piece), PIECE_CHARS))
    return out


def _json_pieces(text: str) -> list[str]:
    """A tool call's JSON arguments in the small pieces the APIs stream them in."""
    size = max(8, len(text) // 4)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"{head}data: {body}\n\n".encode()


def _anthropic_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
    }
    out.update(usage or {})
    return out


class FakeAnthropic(_FakeServer):
    """A fake of the Anthropic Messages API (``POST /v1/messages``).

    ``base_url`` is what the SDK takes (``http://127.0.0.1:PORT``); the key
    arrives as ``x-api-key`` or ``authorization: Bearer`` depending on the SDK's
    version (``RecordedRequest.api_key`` reads either).

    With ``prompt_cache=True`` the server models Anthropic's prompt cache and
    fills in the input side of every reply's usage: the prompt is tools, then
    system, then message blocks; each ``cache_control`` breakpoint writes the
    prefix up to it (when it has ``min_cache_tokens`` or more); a later request
    reads the longest cached prefix that ends at a breakpoint or up to 20
    blocks before one. Tokens are counted as four characters of JSON each.
    """

    path = "/v1/messages"
    provider = "anthropic"
    LOOKBACK = 20  # blocks before a breakpoint that Anthropic checks for a hit

    def __init__(self, *, prompt_cache: bool = False, min_cache_tokens: int = 1024) -> None:
        super().__init__()
        self.prompt_cache = prompt_cache
        self.min_cache_tokens = min_cache_tokens
        self.cached: set[str] = set()

    def _adjust(self, body: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        if not self.prompt_cache or "usage" not in body:
            return body
        usage = {**body["usage"], **self.cache_usage(request)}
        return {**body, "usage": usage}

    def cache_usage(self, request: dict[str, Any]) -> dict[str, int]:
        """The input side of usage for ``request``, reading and writing the cache."""
        blocks = _prompt_blocks(request)
        sizes: list[int] = []
        hashes: list[str] = []
        digest = hashlib.sha256()
        total = 0
        for block in blocks:
            plain = {k: v for k, v in block.items() if k != "cache_control"}
            text = json.dumps(plain, sort_keys=True)
            digest.update(text.encode())
            total += max(1, len(text) // 4)
            sizes.append(total)
            hashes.append(digest.copy().hexdigest())
        marks = [i for i, b in enumerate(blocks) if "cache_control" in b]
        with self._lock:
            read = 0
            for mark in marks:
                for i in range(mark, max(mark - self.LOOKBACK, 0) - 1, -1):
                    if hashes[i] in self.cached:
                        read = max(read, sizes[i])
                        break
            written = 0
            for mark in marks:
                if sizes[mark] >= self.min_cache_tokens:
                    self.cached.add(hashes[mark])
                    written = max(written, sizes[mark])
        write = max(written - read, 0)
        return {
            "input_tokens": total - max(read, written),
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": write,
        }

    def _events(self, body: dict[str, Any], request: dict[str, Any]) -> list[bytes] | None:
        # As the Messages API streams: message_start (input usage), each block's start,
        # deltas and stop, message_delta (stop reason, output usage), message_stop.
        content = body.get("content")
        if body.get("type") != "message" or not isinstance(content, list):
            return None
        usage = dict(body.get("usage") or {})
        start_usage = {**usage, "output_tokens": min(1, usage.get("output_tokens") or 0)}
        message = {**body, "content": [], "stop_reason": None, "stop_sequence": None}
        events = [
            _sse(
                {"type": "message_start", "message": {**message, "usage": start_usage}},
                "message_start",
            )
        ]
        for index, block in enumerate(content):
            kind = block.get("type")
            opened: dict[str, Any]
            deltas: list[dict[str, Any]]
            if kind == "text":
                opened, deltas = (
                    {"type": "text", "text": ""},
                    [{"type": "text_delta", "text": p} for p in _pieces(block.get("text", ""))],
                )
            elif kind == "tool_use":
                opened = {**block, "input": {}}
                raw = json.dumps(block.get("input", {}))
                deltas = [
                    {"type": "input_json_delta", "partial_json": p} for p in _json_pieces(raw)
                ]
            elif kind == "thinking":
                opened = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [
                    {"type": "thinking_delta", "thinking": p}
                    for p in _pieces(block.get("thinking", ""))
                ] + [{"type": "signature_delta", "signature": block.get("signature", "")}]
            else:
                opened, deltas = block, []
            events.append(
                _sse(
                    {"type": "content_block_start", "index": index, "content_block": opened},
                    "content_block_start",
                )
            )
            if index == 0:
                events.append(_sse({"type": "ping"}, "ping"))
            events += [
                _sse(
                    {"type": "content_block_delta", "index": index, "delta": d},
                    "content_block_delta",
                )
                for d in deltas
            ]
            events.append(
                _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            )
        events.append(
            _sse(
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": body.get("stop_reason"),
                        "stop_sequence": body.get("stop_sequence"),
                    },
                    "usage": {"output_tokens": usage.get("output_tokens", 0)},
                },
                "message_delta",
            )
        )
        events.append(_sse({"type": "message_stop"}, "message_stop"))
        return events

    @property
    def base_url(self) -> str:
        return self.url

    def message(
        self,
        content: list[dict[str, Any]],
        *,
        stop_reason: str,
        usage: dict[str, Any] | None = None,
    ) -> Self:
        """A reply with these content blocks as they are."""
        body: dict[str, Any] = {
            "id": f"msg_fake{next(_ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": None,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": _anthropic_usage(usage),
        }
        return self.add(FakeReply(body=body))

    def say(
        self, text: str, *, usage: dict[str, Any] | None = None, stop_reason: str = "end_turn"
    ) -> Self:
        """A text reply. ``usage`` holds wire fields: input_tokens, cache_read_input_tokens, ..."""
        return self.message([{"type": "text", "text": text}], stop_reason=stop_reason, usage=usage)

    def call_tools(
        self,
        *calls: tuple[str, dict[str, Any]],
        text: str = "",
        usage: dict[str, Any] | None = None,
    ) -> Self:
        """Tool calls (several make a parallel call), optionally after some text."""
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        for name, arguments in calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_fake{next(_ids):04d}",
                    "name": name,
                    "input": arguments,
                }
            )
        return self.message(blocks, stop_reason="tool_use", usage=usage)

    def system_text(self, body: dict[str, Any]) -> str:
        return _text_of(body.get("system"))

    def latest_text(self, body: dict[str, Any]) -> str:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return ""
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "user":
            return ""  # a prefilled assistant turn: nothing new was said
        content = last.get("content")
        if not isinstance(content, list):
            return _text_of(content)
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                parts.append(_text_of(block.get("content")))
            else:
                parts.append(_text_of([block]))
        return "\n".join(parts)

    def _renew(self, body: dict[str, Any]) -> dict[str, Any]:
        fresh = copy.deepcopy(body)
        if "id" in fresh:
            fresh["id"] = f"msg_fake{next(_ids):04d}"
        for block in fresh.get("content") or ():
            if isinstance(block, dict) and block.get("type") == "tool_use":
                block["id"] = f"toolu_fake{next(_ids):04d}"
        return fresh

    def empty(self) -> Self:
        """Status 200 and a JSON object that is no message: Anthropic's empty choices."""
        return self.add(FakeReply(body={"type": "message", "id": "msg_fake_empty"}))

    def _text_body(self, text: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "id": f"msg_fake{next(_ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": None,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": _anthropic_usage(usage),
        }

    def _bad_usage(self) -> dict[str, Any]:
        return {
            "input_tokens": -5,
            "output_tokens": 10**13,
            "cache_read_input_tokens": -1,
            "cache_creation_input_tokens": 0,
        }

    def _too_long_body(self, window: int, sent: int) -> dict[str, Any]:
        return self._error_body(400, f"prompt is too long: {sent} tokens > {window} maximum", None)

    def _error_body(self, status: int, message: str, error_type: str | None) -> dict[str, Any]:
        kind = error_type or {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": f"req_fake_{next(_ids)}",
        }


class FakeOpenAI(_FakeServer):
    """A fake of the OpenAI Chat Completions API (``POST /v1/chat/completions``).

    ``base_url`` is what the SDK takes (``http://127.0.0.1:PORT/v1``); the key
    arrives as ``authorization: Bearer KEY``.
    """

    path = "/v1/chat/completions"
    provider = "openai"

    def __init__(self, *, strict: bool = True) -> None:
        super().__init__()
        self.strict = strict

    def _refuse(self, body: dict[str, Any]) -> FakeReply | None:
        refused = self._refuse_stream(body)
        if refused is not None:
            return refused
        # As llama-cpp-python's server does: its request model refuses a null content,
        # and the error surfaces as a 500 whose body is the validation error.
        if not self.strict:
            return None
        for n, message in enumerate(body.get("messages") or ()):
            if isinstance(message, dict) and "content" in message and message["content"] is None:
                text = (
                    f"1 validation error for CreateChatCompletionRequest\nmessages.{n}.content\n"
                    "  Input should be a valid string [type=string_type, input_value=None]"
                )
                return FakeReply(status=500, body=self._error_body(500, text, None))
        return None

    def _adjust(self, body: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        # As llama-cpp-python's server does: tools without tool_choice are dropped, so
        # the model cannot call one and answers in text.
        if not self.strict or not request.get("tools") or request.get("tool_choice"):
            return body
        choices = []
        for choice in body.get("choices") or ():
            message = choice.get("message") or {}
            if message.get("tool_calls"):
                message = {**message, "tool_calls": None, "content": "(I have no tools to call.)"}
                choice = {**choice, "message": message, "finish_reason": "stop"}
            choices.append(choice)
        return {**body, "choices": choices}

    def _refuse_stream(self, body: dict[str, Any]) -> FakeReply | None:
        # As openai.com does: stream_options only with stream.
        if body.get("stream_options") is not None and body.get("stream") is not True:
            text = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            error = self._error_body(400, text, None)
            error["error"]["param"] = "stream_options"
            return FakeReply(status=400, body=error)
        return None

    def _events(self, body: dict[str, Any], request: dict[str, Any]) -> list[bytes] | None:
        # As Chat Completions streams: chat.completion.chunk objects (the first with the
        # role; content, refusal and tool calls in pieces, a tool call's id, type and name
        # in its first piece; then the finish reason), then, when stream_options asks for
        # it, a chunk of usage with no choices; then [DONE].
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            return None
        message = choices[0].get("message")
        if not isinstance(message, dict):
            return None
        options = request.get("stream_options") or {}
        with_usage = isinstance(options, dict) and options.get("include_usage") is True
        head = {
            "id": body.get("id"),
            "object": "chat.completion.chunk",
            "created": body.get("created", int(time.time())),
            "model": body.get("model"),
            "system_fingerprint": body.get("system_fingerprint"),
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            out = {**head, "choices": [choice]}
            if with_usage:
                out["usage"] = None
            return _sse(out)

        calls = message.get("tool_calls") or []
        text = message.get("content") or ""
        # The first chunk: the role, and content "" (null when the reply is tool calls).
        first: dict[str, Any] = {
            "role": "assistant",
            "content": None if calls and not text else "",
            "refusal": None,
        }
        events = [chunk(first)]
        events += [chunk({"content": p}) for p in _pieces(text)]
        events += [chunk({"refusal": p}) for p in _pieces(message.get("refusal") or "")]
        for index, call in enumerate(calls):
            function = call.get("function") or {}
            pieces = _json_pieces(function.get("arguments") or "") or [""]
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call.get("id"),
                                "type": "function",
                                "function": {"name": function.get("name"), "arguments": ""},
                            }
                        ]
                    }
                )
            )
            events += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
                for p in pieces
                if p
            ]
        events.append(chunk({}, choices[0].get("finish_reason")))
        if with_usage and body.get("usage") is not None:
            events.append(_sse({**head, "choices": [], "usage": body["usage"]}))
        events.append(_sse("[DONE]"))
        return events

    def system_text(self, body: dict[str, Any]) -> str:
        messages = body.get("messages")
        return "\n".join(
            _text_of(m.get("content"))
            for m in (messages if isinstance(messages, list) else [])
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
        )

    def latest_text(self, body: dict[str, Any]) -> str:
        messages = body.get("messages")
        latest: list[str] = []
        for m in reversed(messages if isinstance(messages, list) else []):
            if not isinstance(m, dict) or m.get("role") in ("assistant", "system", "developer"):
                break
            latest.append(_text_of(m.get("content")))
        return "\n".join(reversed(latest))

    def _renew(self, body: dict[str, Any]) -> dict[str, Any]:
        fresh = copy.deepcopy(body)
        if "id" in fresh:
            fresh["id"] = f"chatcmpl-fake{next(_ids):04d}"
        for choice in fresh.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            for tool_call in (message or {}).get("tool_calls") or ():
                if isinstance(tool_call, dict):
                    tool_call["id"] = f"call_fake{next(_ids):04d}"
        return fresh

    def empty(self) -> Self:
        """Status 200 and a completion with an empty ``choices`` list."""
        body = self._text_body("")
        return self.add(FakeReply(body={**body, "choices": []}))

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def completion(
        self,
        message: dict[str, Any],
        *,
        finish_reason: str,
        usage: dict[str, Any] | None = None,
        omit_usage: bool = False,
    ) -> Self:
        """A reply with this ``message`` object as it is.

        ``usage`` holds wire fields (prompt_tokens, completion_tokens,
        prompt_tokens_details); ``omit_usage`` sends none, as some local servers do.
        """
        body: dict[str, Any] = {
            "id": f"chatcmpl-fake{next(_ids):04d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "refusal": None, **message},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "system_fingerprint": None,
        }
        if not omit_usage:
            fields = {"prompt_tokens": 10, "completion_tokens": 5, **(usage or {})}
            fields.setdefault("total_tokens", fields["prompt_tokens"] + fields["completion_tokens"])
            body["usage"] = fields
        return self.add(FakeReply(body=body))

    def say(
        self,
        text: str,
        *,
        usage: dict[str, Any] | None = None,
        omit_usage: bool = False,
        finish_reason: str = "stop",
    ) -> Self:
        """A text reply."""
        return self.completion(
            {"content": text, "tool_calls": None},
            finish_reason=finish_reason,
            usage=usage,
            omit_usage=omit_usage,
        )

    def call_tools(
        self,
        *calls: tuple[str, dict[str, Any] | str],
        text: str | None = None,
        usage: dict[str, Any] | None = None,
        finish_reason: str = "tool_calls",
    ) -> Self:
        """Tool calls (several make a parallel call). A ``str`` argument is sent as it
        is, so a test can send a malformed one."""
        tool_calls = [
            {
                "id": f"call_fake{next(_ids):04d}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
            for name, arguments in calls
        ]
        return self.completion(
            {"content": text, "tool_calls": tool_calls}, finish_reason=finish_reason, usage=usage
        )

    def _text_body(self, text: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{next(_ids):04d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def _bad_usage(self) -> dict[str, Any]:
        return {"prompt_tokens": -7, "completion_tokens": 10**13, "total_tokens": -3}

    def _too_long_body(self, window: int, sent: int) -> dict[str, Any]:
        text = (
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{sent} tokens in the messages. Please reduce the length of the messages."
        )
        body = self._error_body(400, text, None)
        body["error"]["code"] = "context_length_exceeded"
        return body

    def _error_body(self, status: int, message: str, error_type: str | None) -> dict[str, Any]:
        kind = error_type or {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            429: "rate_limit_exceeded",
        }.get(status, "server_error")
        code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
        return {
            "error": {"message": message, "type": kind, "param": None, "code": code.get(status)}
        }


def _text_of(content: Any) -> str:
    """The text in a message's content: a string, or the text of its blocks or parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        str(part["text"])
        for part in content
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def _prompt_blocks(request: dict[str, Any]) -> list[dict[str, Any]]:
    """A Messages request as Anthropic caches it: tools, then system, then message blocks."""
    blocks: list[dict[str, Any]] = [t for t in request.get("tools") or () if isinstance(t, dict)]
    system = request.get("system")
    if isinstance(system, str):
        blocks.append({"type": "text", "text": system})
    elif isinstance(system, list):
        blocks.extend(b for b in system if isinstance(b, dict))
    for message in request.get("messages") or ():
        content = message.get("content")
        if isinstance(content, str):
            blocks.append({"role": message.get("role"), "type": "text", "text": content})
            continue
        for n, block in enumerate(content or ()):
            # The role is part of what is cached: the same text from the other side differs.
            tagged = {**block, "role": message.get("role")} if n == 0 else block
            blocks.append(tagged)
    return blocks
