"""OpenAI Chat Completions, through the official ``openai`` SDK; also local servers.

With a base URL (``openai:qwen3@http://localhost:11434/v1``, ``OPENAI_BASE_URL``
or accord.toml) the same adapter talks to any OpenAI-compatible server: Ollama,
vLLM, llama.cpp, LM Studio. Those need no key, and know ``max_tokens`` where
openai.com wants ``max_completion_tokens``.

A neutral conversation maps onto chat messages like this: the system prompt is
a ``system`` message; an assistant turn is one message with its text and its
``tool_calls`` (several make a parallel call); a user turn is one ``tool``
message per result, then a ``user`` message for its text. A failed result's
content starts with ``Error:`` since the wire has no error flag. Arguments the
model sent that are not a JSON object become ``ToolCall.arguments = None``.

What strict servers (llama-cpp-python's) need: ``tool_choice: "auto"`` with the
tools, or they are dropped; an assistant turn of only tool calls has content
``""``, never ``null``, which is answered with HTTP 500.

Replies stream (``stream=True`` with ``stream_options={"include_usage": True}``, so
the last chunk carries the usage) unless ``streaming`` is off, for a server that
cannot. Each text delta and each tool call begun goes to the call's listener; the
chunks are put back together (a tool call's arguments arrive in pieces, by index)
and read exactly as a whole reply is. A stream counts only once its finish reason
came; one cut before is tried again from the start. A server that answers a
streamed request with a whole JSON reply is read as one.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

from accord.llm._retry import (
    Backoff,
    BadReply,
    Failure,
    Sleep,
    StreamCut,
    one_line,
    sdk_failure,
    whole_reply,
    with_retries,
)
from accord.llm.base import (
    ChatMessage,
    MissingKey,
    Model,
    ModelName,
    ModelRequest,
    ModelResponse,
    StopReason,
    StreamListener,
    ToolCall,
    Usage,
    tell_whole,
)

if TYPE_CHECKING:
    # The SDK is imported when the first call is made, not when the member starts: it
    # is a large part of an idle member's memory (about 20 MB of each process).
    import openai
    from openai.types import CompletionUsage
    from openai.types.chat import (
        ChatCompletion,
        ChatCompletionChunk,
        ChatCompletionMessageParam,
        ChatCompletionToolParam,
    )

log = logging.getLogger("accord.llm")

KEY_VARIABLE = "OPENAI_API_KEY"
BASE_URL_VARIABLE = "OPENAI_BASE_URL"
DEFAULT_TIMEOUT = 600.0
NO_KEY = "not-needed"  # local servers ignore the key, but the SDK wants one
ERROR_PREFIX = "Error: "

# Longest prefix wins.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}
DEFAULT_CONTEXT_WINDOW = 128_000
# A local server's window depends on how it was started; assume a modest one
# so compaction starts before the server silently truncates.
LOCAL_CONTEXT_WINDOW = 32_768

_STOP_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


def context_window_of(model: str, *, local: bool = False) -> int:
    matches = [prefix for prefix in CONTEXT_WINDOWS if model.startswith(prefix)]
    if matches and not local:
        return CONTEXT_WINDOWS[max(matches, key=len)]
    return LOCAL_CONTEXT_WINDOW if local else DEFAULT_CONTEXT_WINDOW


def is_openai_com(base_url: str | None) -> bool:
    host = urlparse(base_url).hostname if base_url else "api.openai.com"
    return host is not None and (host == "openai.com" or host.endswith(".openai.com"))


class OpenAIModel(Model):
    """A model behind Chat Completions (``chat.completions.create``, streamed unless
    ``streaming`` is off)."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep = time.sleep,
        context_window: int | None = None,
        stream: bool = True,
    ) -> None:
        url = base_url or os.environ.get(BASE_URL_VARIABLE) or None
        self.local = not is_openai_com(url)
        key = api_key or os.environ.get(KEY_VARIABLE)
        if not key:
            if not self.local:
                raise MissingKey(
                    f"{KEY_VARIABLE} is not set: export your OpenAI API key to use "
                    f"openai:{model}, or give a local server's base URL (openai:{model}@URL)"
                )
            key = NO_KEY
        # A custom URL is part of the name: it is what the usage rows and prices see.
        self.name = ModelName("openai", model, url if self.local else None)
        self.context_window = context_window or context_window_of(model, local=self.local)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.backoff = backoff or Backoff()
        if max_retries is not None:
            self.backoff = replace(self.backoff, retries=max_retries)
        self.streaming = stream
        self._sleep = sleep
        self._usage_warned = False
        self._key, self._url = key, url

    @cached_property
    def _client(self) -> openai.OpenAI:
        import openai

        return openai.OpenAI(
            api_key=self._key, base_url=self._url, timeout=self.timeout, max_retries=0
        )

    def complete(self, request: ModelRequest) -> ModelResponse:
        return self.stream(request, StreamListener())

    def stream(self, request: ModelRequest, listener: StreamListener) -> ModelResponse:
        import openai

        messages, tools = self.wire_request(request)
        # openai.com wants max_completion_tokens (reasoning models refuse max_tokens);
        # local servers mostly know only max_tokens.
        limit = request.max_tokens
        arguments: dict[str, Any] = {
            "model": self.name.model,
            "messages": messages,
            "tools": tools if tools else openai.omit,
            # Without it llama.cpp's server drops the tools and the model never calls one.
            "tool_choice": "auto" if tools else openai.omit,
            "max_tokens": limit if self.local else openai.omit,
            "max_completion_tokens": openai.omit if self.local else limit,
            "timeout": self.timeout,
        }
        # Latency covers the whole call as the agent waited for it, retries included.
        started = time.monotonic()

        def attempt() -> ModelResponse:
            if self.streaming:
                return self._streamed(arguments, listener, started)
            reply = self._client.chat.completions.create(**arguments)
            response = self._whole(reply, started)
            tell_whole(response, listener)
            return response

        return with_retries(
            attempt,
            label=str(self.name),
            classify=self._classify,
            backoff=self.backoff,
            sleep=self._sleep,
            restart=listener.restart,
        )

    def _whole(self, reply: object, started: float) -> ModelResponse:
        from openai.types.chat import ChatCompletion

        if not isinstance(reply, ChatCompletion):
            # The SDK hands back the text of a body that is not JSON (an HTML page).
            raise BadReply(f"the reply is not JSON: {one_line(str(reply), 120)}")
        try:
            return self.read_reply(reply, time.monotonic() - started)
        except (AttributeError, TypeError, KeyError) as err:
            # A proxy or local server answered 200 with something else.
            raise BadReply(
                f"the reply is not a Chat Completions reply ({one_line(str(err))})"
            ) from err

    def _streamed(
        self, arguments: dict[str, Any], listener: StreamListener, started: float
    ) -> ModelResponse:
        """One streamed call, told to ``listener`` as it comes, read as a whole reply is."""
        from openai.types.chat import ChatCompletion

        stream = self._client.chat.completions.create(
            **arguments, stream=True, stream_options={"include_usage": True}
        )
        with stream:
            if "event-stream" not in stream.response.headers.get("content-type", ""):
                # A server (or proxy) that does not stream answered with the whole reply.
                return self._whole(
                    whole_reply(stream.response.read(), ChatCompletion, "Chat Completions"), started
                )
            parts = _Parts(listener)
            for chunk in stream:
                parts.add(chunk)
        if parts.finish is None:
            raise StreamCut("the stream ended before a chunk with its finish reason")
        calls = [
            ToolCall.parse(call_id or f"call_{n}_{uuid.uuid4().hex[:12]}", name, "".join(pieces))
            for n, (call_id, name, pieces) in enumerate(parts.calls[i] for i in sorted(parts.calls))
        ]
        return self._response(
            "".join(parts.text),
            calls,
            parts.finish,
            "".join(parts.refusal),
            self._usage_of(parts.usage),
            time.monotonic() - started,
            parts.raw(),
        )

    def close(self) -> None:
        client = self.__dict__.get("_client")  # never made if no call was
        if client is not None:
            client.close()

    # -- the neutral conversation -> chat messages -------------------------------

    def wire_request(
        self, request: ModelRequest
    ) -> tuple[list[ChatCompletionMessageParam], list[ChatCompletionToolParam]]:
        """The messages and tools one call sends."""
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        for message in request.messages:
            messages.extend(_wire_message(message))
        tools = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.schema,
                },
            }
            for t in request.tools
        ]
        return (
            cast("list[ChatCompletionMessageParam]", messages),
            cast("list[ChatCompletionToolParam]", tools),
        )

    # -- chat completion -> the neutral conversation -----------------------------

    def read_reply(self, reply: ChatCompletion, latency: float) -> ModelResponse:
        if not reply.choices:
            raise BadReply("the reply held no choices")
        choice = reply.choices[0]
        message = choice.message
        calls: list[ToolCall] = []
        for n, tool_call in enumerate(message.tool_calls or ()):
            # Some local servers leave the id out; the result must still find its call.
            call_id = tool_call.id or f"call_{n}_{uuid.uuid4().hex[:12]}"
            if tool_call.type == "function":
                function = tool_call.function
                calls.append(ToolCall.parse(call_id, function.name, function.arguments))
            else:
                custom = tool_call.custom
                calls.append(ToolCall(call_id, custom.name, None, custom.input))
        return self._response(
            message.content or "",
            calls,
            cast(str | None, choice.finish_reason),
            message.refusal or "",
            self._usage_of(reply.usage),
            latency,
            reply.model_dump(mode="json", exclude_none=True),
        )

    def _response(
        self,
        text: str,
        calls: list[ToolCall],
        finish: str | None,
        refusal: str,
        usage: Usage,
        latency: float,
        raw: dict[str, Any],
    ) -> ModelResponse:
        """The reply, whether it came whole or in chunks."""
        stop: StopReason = _STOP_REASONS.get(finish or "", "other")
        if calls and stop in ("end_turn", "other"):
            stop = "tool_use"  # Ollama and others say "stop" after tool calls
        if refusal and not text:
            text, stop = refusal, "refusal"
        return ModelResponse(
            message=ChatMessage("assistant", text, tuple(calls)),
            stop_reason=stop,
            usage=usage,
            model=str(self.name),
            latency_seconds=latency,
            raw=raw,
        )

    def _usage_of(self, usage: CompletionUsage | None) -> Usage:
        if usage is None:
            if not self._usage_warned:
                log.warning(
                    "%s sent no token usage: its calls are counted from an estimate", self.name
                )
                self._usage_warned = True
            return Usage(reported=False)
        details = usage.prompt_tokens_details
        cached = (details.cached_tokens or 0) if details else 0
        written = (getattr(details, "cache_write_tokens", None) or 0) if details else 0
        return Usage(
            # Not clamped here: an impossible count is for the agent to see and mark.
            input_tokens=(usage.prompt_tokens or 0) - cached - written,
            output_tokens=usage.completion_tokens or 0,
            cache_read_tokens=cached,
            cache_write_tokens=written,
        )

    def _classify(self, err: Exception) -> Failure | None:
        import openai

        return sdk_failure(
            err, openai, openai.OpenAIError, "Chat Completions", self.timeout, KEY_VARIABLE
        )


class _Parts:
    """A streamed reply's chunks, put back together as they come: text, refusal, tool
    calls by index (id and name once, arguments in pieces), finish reason, usage."""

    def __init__(self, listener: StreamListener) -> None:
        self.listener = listener
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, tuple[str | None, str, list[str]]] = {}
        self.finish: str | None = None
        self.usage: CompletionUsage | None = None
        self.first: ChatCompletionChunk | None = None

    def add(self, chunk: object) -> None:
        from openai.types.chat import ChatCompletionChunk

        if not isinstance(chunk, ChatCompletionChunk):
            raise BadReply(f"the stream sent something else than a chunk: {chunk!r:.120}")
        self.first = self.first or chunk
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue  # one choice is asked for
            delta = choice.delta
            if delta is not None:
                self._delta(delta)
            if choice.finish_reason is not None:
                self.finish = cast(str, choice.finish_reason)

    def _delta(self, delta: Any) -> None:
        if delta.content:
            self.text.append(delta.content)
            self.listener.text(delta.content)
        if delta.refusal:
            self.refusal.append(delta.refusal)
        for piece in delta.tool_calls or ():
            call_id, name, arguments = self.calls.get(piece.index, (None, "", []))
            function = piece.function
            if function is not None and function.name and not name:
                name = function.name
                self.listener.tool(name)
            if function is not None and function.arguments:
                arguments.append(function.arguments)
            self.calls[piece.index] = (call_id or piece.id, name, arguments)

    def raw(self) -> dict[str, Any]:
        """The reply as one completion would have said it, for the record."""
        first = self.first
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": "".join(a)}}
                for i, n, a in (self.calls[k] for k in sorted(self.calls))
            ]
        raw: dict[str, Any] = {
            "id": first.id if first else None,
            "object": "chat.completion",
            "created": first.created if first else None,
            "model": first.model if first else None,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish}],
        }
        if self.usage is not None:
            raw["usage"] = self.usage.model_dump(mode="json", exclude_none=True)
        return raw


def _wire_message(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "assistant":
        # Never ``"content": null``: llama.cpp's server answers it with HTTP 500.
        out: dict[str, Any] = {"role": "assistant", "content": message.text}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": _arguments(call)},
                }
                for call in message.tool_calls
            ]
        return [out]
    wire: list[dict[str, Any]] = [
        {
            "role": "tool",
            "tool_call_id": r.call_id,
            "content": ERROR_PREFIX + r.content if r.is_error else r.content,
        }
        for r in message.tool_results
    ]
    if message.text or not wire:
        wire.append({"role": "user", "content": message.text})
    return wire


def _arguments(call: ToolCall) -> str:
    # What the model sent, byte for byte when we have it: keeps the prompt cache warm
    # and shows the model its own malformed arguments next to the error they caused.
    if call.raw_arguments:
        return call.raw_arguments
    return json.dumps(call.arguments or {})
