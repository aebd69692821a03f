"""The one small interface every model adapter implements, and the neutral conversation.

A conversation is a list of ``ChatMessage``: user turns (text, tool results, or
both) and assistant turns (text, tool calls, or both). Adapters translate it to
and from their wire format (Anthropic Messages, OpenAI Chat Completions) and
report ``Usage`` for every call. Nothing here knows about teams or the board.

Models are named ``PROVIDER:MODEL``, optionally with ``@BASE_URL`` for an
OpenAI-compatible local server: ``anthropic:claude-sonnet-4-5``,
``openai:gpt-5-mini``, ``openai:qwen3@http://localhost:11434/v1``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

# The model errors live in the one tree of accord.errors; named here too, as ever.
from accord.errors import ContextTooLong as ContextTooLong
from accord.errors import MissingKey as MissingKey
from accord.errors import ModelError as ModelError
from accord.errors import UserError

Role = Literal["user", "assistant"]
StopReason = Literal["end_turn", "tool_use", "max_tokens", "refusal", "other"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model: its name, what it does, and a JSON schema of its input."""

    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to run a tool.

    ``arguments`` is None when the model sent something that is not a JSON
    object; ``raw_arguments`` keeps what it sent so the error can go back to it.
    """

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""

    @staticmethod
    def parse(call_id: str, name: str, raw: str | dict[str, Any] | None) -> ToolCall:
        if isinstance(raw, dict):
            return ToolCall(call_id, name, raw, json.dumps(raw))
        text = raw or ""
        try:
            value = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            return ToolCall(call_id, name, None, text)
        return ToolCall(call_id, name, value if isinstance(value, dict) else None, text)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool returned (or why it failed), tied to its call."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn of a conversation.

    ``thinking`` holds a provider's reasoning blocks as it sent them (Anthropic's
    ``thinking`` with its ``signature``, or ``redacted_thinking``): opaque here,
    and sent back unchanged with the turn, as the API requires across tool calls.
    """

    role: Role
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    thinking: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role}
        if self.thinking:
            out["thinking"] = [dict(block) for block in self.thinking]
        if self.text:
            out["text"] = self.text
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "name": c.name, "arguments": c.arguments, "raw": c.raw_arguments}
                for c in self.tool_calls
            ]
        if self.tool_results:
            out["tool_results"] = [
                {"call_id": r.call_id, "name": r.name, "content": r.content, "error": r.is_error}
                for r in self.tool_results
            ]
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ChatMessage:
        role = data["role"]
        if role not in ("user", "assistant"):
            raise ValueError(f"unknown role {role!r}")
        return ChatMessage(
            role=role,
            text=data.get("text", ""),
            tool_calls=tuple(
                ToolCall(c["id"], c["name"], c.get("arguments"), c.get("raw", ""))
                for c in data.get("tool_calls", ())
            ),
            tool_results=tuple(
                ToolResult(r["call_id"], r["name"], r["content"], bool(r.get("error")))
                for r in data.get("tool_results", ())
            ),
            thinking=tuple(dict(b) for b in data.get("thinking", ())),
        )


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call. ``input_tokens`` excludes cached reads and cache writes.

    ``reported`` is False when the server sent no usage at all (some local servers):
    the counts are then not the server's, and the agent estimates and marks them.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reported: bool = True

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


def checked_usage(
    usage: Usage, *, input_estimate: int, output_estimate: int, context_window: int,
    max_tokens: int,
) -> tuple[Usage, list[str]]:  # fmt: skip
    """The usage a server reported, with impossible counts replaced by accord's own
    estimates (four characters a token), and what was wrong with it.

    A count is impossible when it is negative, or far beyond what the call could
    have used: more input than four context windows (or four times the estimate,
    or a million), more output than four times ``max_tokens`` (or 200,000). Such numbers come from
    buggy local servers and proxies; taken as they are, one call would spend a
    budget or go negative. The caller marks the call, so it is never silent.
    """
    if not usage.reported:
        return Usage(input_estimate, output_estimate), ["the server reported no usage"]
    wrong: list[str] = []
    sent_in = (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens)
    in_limit = max(4 * context_window, 4 * input_estimate, 1_000_000)
    if any(n < 0 for n in sent_in) or sum(sent_in) > in_limit:
        wrong.append(
            f"input tokens {usage.input_tokens}, cache read {usage.cache_read_tokens}, "
            f"cache write {usage.cache_write_tokens} (estimated {input_estimate})"
        )
        usage = Usage(input_estimate, usage.output_tokens, 0, 0)
    out_limit = max(4 * max_tokens, 4 * output_estimate, 200_000)
    if usage.output_tokens < 0 or usage.output_tokens > out_limit:
        wrong.append(f"output tokens {usage.output_tokens} (estimated {output_estimate})")
        usage = Usage(
            usage.input_tokens, output_estimate, usage.cache_read_tokens, usage.cache_write_tokens
        )
    return usage, wrong


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything one call sends."""

    system: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 8192


def tell_whole(response: ModelResponse, listener: StreamListener) -> None:
    """Tell ``listener`` a reply that arrived whole: its text, then its tool calls."""
    if response.message.text:
        listener.text(response.message.text)
    for call in response.message.tool_calls:
        listener.tool(call.name)


def estimate_tokens(request: ModelRequest) -> int:
    """About four characters a token, over everything the request sends: what the agent
    weighs a request by before a call (compaction, a learned window, checked usage), and
    what the scripted model reports."""
    size = len(request.system) + sum(len(json.dumps(m.to_dict())) for m in request.messages)
    size += sum(len(t.description) + len(json.dumps(t.schema)) for t in request.tools)
    return max(1, size // 4)


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """The assistant turn a call produced, why it stopped, and what it cost in tokens."""

    message: ChatMessage
    stop_reason: StopReason
    usage: Usage
    model: str
    latency_seconds: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class ModelName:
    """A parsed ``PROVIDER:MODEL[@BASE_URL]``."""

    provider: str
    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}" + (f"@{self.base_url}" if self.base_url else "")

    @staticmethod
    def parse(text: str) -> ModelName:
        provider, sep, rest = text.partition(":")
        if not sep or not provider or not rest:
            raise UserError(
                f"model {text!r} is not PROVIDER:MODEL; for example anthropic:claude-sonnet-4-5, "
                "openai:gpt-5-mini or openai:qwen3@http://localhost:11434/v1"
            )
        model, at, url = rest.partition("@")
        if at and not url.startswith(("http://", "https://")):
            raise UserError(f"model {text!r}: the part after @ must be an http(s) base URL")
        if not model:
            raise UserError(f"model {text!r} names no model after {provider}:")
        return ModelName(provider, model, url or None)


class StreamListener:
    """Told what a model writes while a call is in progress: each piece of text as it
    arrives, and each tool call as it begins (by name). It only watches: the call's
    ``ModelResponse`` is the reply, whatever was said here. After a retry (a stream cut
    halfway is tried again from the start) ``restart`` says to forget what came before.
    The methods here do nothing; a listener overrides what it wants."""

    def text(self, delta: str) -> None:
        """``delta`` follows the text so far."""

    def tool(self, name: str) -> None:
        """The model began a call of the tool ``name``."""

    def restart(self) -> None:
        """The call is being tried again: what was said so far is void."""


class Model(ABC):
    """A model that turns a request into one assistant turn.

    ``complete`` is the one method an adapter must write; ``stream`` also tells a
    listener the reply as it is written. An adapter whose API streams overrides it;
    this default tells the whole reply once it is there. ``streaming`` is False for a
    server that cannot stream (``stream = false`` in a model's settings in accord.toml):
    then an adapter makes the plain call, and ``stream`` tells the reply at its end.
    """

    name: ModelName
    context_window: int = 200_000
    streaming: bool = True

    @abstractmethod
    def complete(self, request: ModelRequest) -> ModelResponse:
        """Make one call. Raises ModelError after retries are exhausted."""

    def stream(self, request: ModelRequest, listener: StreamListener) -> ModelResponse:
        """Make one call as ``complete`` does, telling ``listener`` what the model writes
        as it writes it."""
        response = self.complete(request)
        tell_whole(response, listener)
        return response

    def close(self) -> None:  # noqa: B027 - optional for adapters without resources
        """Release connections."""
