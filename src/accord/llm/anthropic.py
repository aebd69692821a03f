"""The Anthropic Messages API, through the official ``anthropic`` SDK.

A neutral conversation maps onto Messages like this: an assistant turn is a
text block followed by one ``tool_use`` block per call (several make a parallel
call); a user turn is one ``tool_result`` block per result (first, as the API
asks) followed by a text block. The tools, the system prompt, the newest turn
and the user turn before it carry cache breakpoints, so each call reads the
conversation so far from the prompt cache instead of paying for it again.
Thinking blocks are kept with their turn, signature included, and sent back.

The key comes from ``ANTHROPIC_API_KEY`` and the base URL from the argument or
``ANTHROPIC_BASE_URL``. The SDK's own retries are off; ``_retry`` does them.

Replies stream (``messages.stream``) unless ``streaming`` is off: each text delta
and each tool call begun goes to the call's listener, and the message the SDK
assembles from the events is read exactly as a whole reply is. A stream counts only
once its ``message_stop`` came; one cut before is tried again from the start. A
server that answers a streamed request with a whole JSON reply is read as one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

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
    # is most of an idle member's memory (about 40 MB of each process).
    import anthropic
    from anthropic.types import Message, MessageParam, TextBlockParam, ToolParam

KEY_VARIABLE = "ANTHROPIC_API_KEY"
BASE_URL_VARIABLE = "ANTHROPIC_BASE_URL"
DEFAULT_TIMEOUT = 600.0

# Longest prefix wins; everything current is 200k unless a beta header says otherwise.
CONTEXT_WINDOWS: dict[str, int] = {
    "claude-opus-4": 200_000,
    "claude-sonnet-4": 200_000,
    "claude-haiku-4": 200_000,
    "claude-3": 200_000,
}
DEFAULT_CONTEXT_WINDOW = 200_000

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "refusal": "refusal",
}


def context_window_of(model: str) -> int:
    matches = [prefix for prefix in CONTEXT_WINDOWS if model.startswith(prefix)]
    return CONTEXT_WINDOWS[max(matches, key=len)] if matches else DEFAULT_CONTEXT_WINDOW


class AnthropicModel(Model):
    """A Claude model behind the Messages API (``messages.stream``, or ``messages.create``
    when ``streaming`` is off)."""

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
        prompt_cache: bool = True,
        stream: bool = True,
    ) -> None:
        key = api_key or os.environ.get(KEY_VARIABLE)
        if not key:
            raise MissingKey(
                f"{KEY_VARIABLE} is not set: export your Anthropic API key to use anthropic:{model}"
            )
        url = base_url or os.environ.get(BASE_URL_VARIABLE) or None
        self.name = ModelName("anthropic", model, base_url)
        self.context_window = context_window or context_window_of(model)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.backoff = backoff or Backoff()
        if max_retries is not None:
            self.backoff = replace(self.backoff, retries=max_retries)
        self.prompt_cache = prompt_cache
        self.streaming = stream
        self._sleep = sleep
        self._key, self._url = key, url

    @cached_property
    def _client(self) -> anthropic.Anthropic:
        import anthropic

        return anthropic.Anthropic(
            api_key=self._key, base_url=self._url, timeout=self.timeout, max_retries=0
        )

    def complete(self, request: ModelRequest) -> ModelResponse:
        return self.stream(request, StreamListener())

    def stream(self, request: ModelRequest, listener: StreamListener) -> ModelResponse:
        import anthropic
        from anthropic.types import Message

        system, messages, tools = self.wire_request(request)
        arguments: dict[str, Any] = {
            "model": self.name.model,
            "max_tokens": request.max_tokens,
            "system": system if system else anthropic.omit,
            "messages": messages,
            "tools": tools if tools else anthropic.omit,
            "timeout": self.timeout,
        }
        # Latency covers the whole call as the agent waited for it, retries included.
        started = time.monotonic()

        def attempt() -> ModelResponse:
            if self.streaming:
                reply: object = self._streamed(arguments, listener)
            else:
                reply = self._client.messages.create(**arguments)
            if not isinstance(reply, Message):
                # The SDK hands back the text of a body that is not JSON (an HTML page).
                raise BadReply(f"the reply is not JSON: {one_line(str(reply), 120)}")
            try:
                response = self.read_reply(reply, time.monotonic() - started)
            except (AttributeError, TypeError, KeyError) as err:
                # A proxy or local server answered 200 with something else.
                raise BadReply(f"the reply is not a Messages reply ({one_line(str(err))})") from err
            if not self.streaming:
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

    def _streamed(self, arguments: dict[str, Any], listener: StreamListener) -> Message | str:
        from anthropic.types import Message

        """One streamed call: the message its events make, told to ``listener`` as it comes."""
        with self._client.messages.stream(**arguments) as stream:
            if "event-stream" not in stream.response.headers.get("content-type", ""):
                # A server (or proxy) that does not stream answered with the whole reply.
                return whole_reply(stream.response.read(), Message, "Messages")
            ended = False
            for event in stream:
                if event.type == "text":
                    listener.text(event.text)
                elif event.type == "content_block_start" and event.content_block.type in (
                    "tool_use",
                    "server_tool_use",
                ):
                    listener.tool(event.content_block.name)
                elif event.type == "message_stop":
                    ended = True
            if not ended:
                raise StreamCut("the stream ended before its message_stop event")
            return stream.get_final_message()

    def close(self) -> None:
        client = self.__dict__.get("_client")  # never made if no call was
        if client is not None:
            client.close()

    # -- the neutral conversation -> Messages ------------------------------------

    def wire_request(
        self, request: ModelRequest
    ) -> tuple[list[TextBlockParam], list[MessageParam], list[ToolParam]]:
        """The system blocks, messages and tools one call sends."""
        system: list[dict[str, Any]] = []
        if request.system.strip():
            system.append({"type": "text", "text": request.system})
        messages = [_wire_message(m) for m in request.messages]
        tools: list[dict[str, Any]] = [
            {"name": t.name, "description": t.description, "input_schema": t.schema}
            for t in request.tools
        ]
        if self.prompt_cache:
            # Four breakpoints, Anthropic's limit: the tools, the system prompt, the newest
            # turn (written now, read by the next call), and the user turn before it (what
            # the previous call wrote, found even when the newest turns add many blocks).
            marked = [tools[-1]] if tools else []
            marked += system[-1:]
            if len(messages) >= 3 and messages[-3]["role"] == "user":
                marked.append(messages[-3]["content"][-1])
            marked += [messages[-1]["content"][-1]] if messages else []
            for block in marked:
                block["cache_control"] = {"type": "ephemeral"}
        return (
            cast("list[TextBlockParam]", system),
            cast("list[MessageParam]", messages),
            cast("list[ToolParam]", tools),
        )

    # -- Messages -> the neutral conversation ------------------------------------

    def read_reply(self, reply: Message, latency: float) -> ModelResponse:
        texts: list[str] = []
        calls: list[ToolCall] = []
        thinking: list[dict[str, Any]] = []
        for block in reply.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                arguments = block.input if isinstance(block.input, dict) else None
                calls.append(ToolCall(block.id, block.name, arguments, json.dumps(block.input)))
            elif block.type in ("thinking", "redacted_thinking"):
                # Kept whole, signature included: the API checks it when the turn goes back.
                thinking.append(block.model_dump(mode="json", exclude_none=True))
            # Server-tool blocks are not asked for, so not kept.
        usage = reply.usage
        return ModelResponse(
            message=ChatMessage(
                "assistant",
                "\n".join(t for t in texts if t),
                tuple(calls),
                thinking=tuple(thinking),
            ),
            stop_reason=_STOP_REASONS.get(reply.stop_reason or "", "other"),
            usage=Usage(
                input_tokens=usage.input_tokens or 0,
                output_tokens=usage.output_tokens or 0,
                cache_read_tokens=usage.cache_read_input_tokens or 0,
                cache_write_tokens=usage.cache_creation_input_tokens or 0,
            ),
            model=str(self.name),
            latency_seconds=latency,
            raw=reply.model_dump(mode="json", exclude_none=True),
        )

    def _classify(self, err: Exception) -> Failure | None:
        import anthropic

        return sdk_failure(
            err, anthropic, anthropic.AnthropicError, "Messages", self.timeout, KEY_VARIABLE
        )


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if message.role == "assistant":
        # Thinking comes first in the turn, exactly as it was received.
        blocks.extend(dict(block) for block in message.thinking)
        if message.text.strip():
            blocks.append({"type": "text", "text": message.text})
        for call in message.tool_calls:
            # Messages needs an object; malformed arguments (from another provider's
            # turn) go as {} and the matching tool result already says what was wrong.
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": call.arguments or {},
                }
            )
    else:
        for result in message.tool_results:
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.call_id}
            if result.content:
                block["content"] = result.content
            if result.is_error:
                block["is_error"] = True
            blocks.append(block)
        if message.text.strip():
            blocks.append({"type": "text", "text": message.text})
    if not blocks:
        # The API refuses empty turns; an empty one can only come from a bare message.
        blocks.append({"type": "text", "text": "(empty)"})
    return {"role": message.role, "content": blocks}
