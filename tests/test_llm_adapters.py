"""The model adapters against fake Anthropic and OpenAI servers, through the real SDKs.

Nothing here leaves 127.0.0.1 or needs a key. Sleeps between retries are
recorded instead of slept, so retry tests take no wall time except where a
reply has to be slower than a (short) client timeout.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

import accord.llm.openai as openai_adapter
from accord.errors import UserError
from accord.llm._retry import Backoff, retry_after
from accord.llm.anthropic import AnthropicModel
from accord.llm.base import (
    ChatMessage,
    ContextTooLong,
    MissingKey,
    Model,
    ModelError,
    ModelRequest,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from accord.llm.openai import OpenAIModel
from accord.llm.registry import open_model
from accord.llm.scripted import ScriptedModel, UnexpectedModelCall, call, reply
from accord.testing.fake_llm import FakeAnthropic, FakeOpenAI, FakeReply

READ = ToolSpec(
    "read_file",
    "Read a file of the workspace.",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


def ask(
    text: str = "hi", *history: ChatMessage, tools: tuple[ToolSpec, ...] = (READ,)
) -> ModelRequest:
    return ModelRequest("You are terse.", (*history, ChatMessage("user", text)), tools)


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def claude(fake_anthropic: FakeAnthropic, sleeps: list[float]) -> Iterator[AnthropicModel]:
    model = AnthropicModel(
        "claude-opus-4-5", api_key="sk-ant-test", base_url=fake_anthropic.base_url,
        timeout=5, sleep=sleeps.append,
    )  # fmt: skip
    yield model
    model.close()


@pytest.fixture
def gpt(fake_openai: FakeOpenAI, sleeps: list[float]) -> Iterator[OpenAIModel]:
    model = OpenAIModel(
        "gpt-5-mini", api_key="sk-test", base_url=fake_openai.base_url, timeout=5,
        sleep=sleeps.append,
    )  # fmt: skip
    yield model
    model.close()


# -- Anthropic: mapping ---------------------------------------------------------


def test_anthropic_text_reply(claude: AnthropicModel, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.say("Hello.")
    out = claude.complete(ask("hi"))
    assert out.message == ChatMessage("assistant", "Hello.")
    assert out.stop_reason == "end_turn"
    assert out.model == f"anthropic:claude-opus-4-5@{fake_anthropic.base_url}"
    assert out.latency_seconds > 0
    assert out.usage == Usage(input_tokens=10, output_tokens=5)
    sent = fake_anthropic.last
    assert sent.api_key == "sk-ant-test"
    assert sent.body["model"] == "claude-opus-4-5"
    assert sent.body["max_tokens"] == 8192
    assert sent.body["system"] == [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}
    ]
    assert sent.body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
        }
    ]
    assert sent.body["tools"] == [
        {
            "name": "read_file",
            "description": READ.description,
            "input_schema": READ.schema,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    fake_anthropic.assert_complete()


def test_anthropic_tool_round_trip_with_parallel_calls(
    claude: AnthropicModel, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.call_tools(
        ("read_file", {"path": "a.py"}), ("read_file", {"path": "missing.py"}), text="Reading."
    )
    fake_anthropic.say("Both read.")
    first = claude.complete(ask("read a.py and missing.py"))
    assert first.stop_reason == "tool_use"
    assert first.message.text == "Reading."
    a, b = first.message.tool_calls
    assert (a.name, a.arguments, b.arguments) == (
        "read_file",
        {"path": "a.py"},
        {"path": "missing.py"},
    )
    assert a.id != b.id

    results = ChatMessage(
        "user",
        tool_results=(
            ToolResult(a.id, "read_file", "print('a')"),
            ToolResult(b.id, "read_file", "no such file", is_error=True),
        ),
    )
    request = ModelRequest("sys", (ChatMessage("user", "go"), first.message, results), (READ,))
    second = claude.complete(request)
    assert second.message.text == "Both read."

    messages = fake_anthropic.last.body["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Reading."},
            {"type": "tool_use", "id": a.id, "name": "read_file", "input": {"path": "a.py"}},
            {"type": "tool_use", "id": b.id, "name": "read_file", "input": {"path": "missing.py"}},
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": a.id, "content": "print('a')"},
            {
                "type": "tool_result",
                "tool_use_id": b.id,
                "content": "no such file",
                "is_error": True,
                "cache_control": {"type": "ephemeral"},
            },
        ],
    }
    fake_anthropic.assert_complete()


def test_anthropic_user_turn_puts_tool_results_before_text(claude: AnthropicModel) -> None:
    turn = ChatMessage("user", "also, hurry", tool_results=(ToolResult("t1", "bash", ""),))
    _, messages, _ = claude.wire_request(ModelRequest("", (turn,)))
    assert messages[0]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1"},
        {"type": "text", "text": "also, hurry", "cache_control": {"type": "ephemeral"}},
    ]


def test_anthropic_usage_with_cache_tokens(
    claude: AnthropicModel, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.say(
        "ok",
        usage={
            "input_tokens": 12,
            "output_tokens": 40,
            "cache_read_input_tokens": 3000,
            "cache_creation_input_tokens": 250,
        },
    )
    usage = claude.complete(ask()).usage
    assert usage == Usage(
        input_tokens=12, output_tokens=40, cache_read_tokens=3000, cache_write_tokens=250
    )
    assert usage.total_input == 3262


@pytest.mark.parametrize(
    ("wire", "ours"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("refusal", "refusal"),
        ("pause_turn", "other"),
    ],
)
def test_anthropic_stop_reasons(
    claude: AnthropicModel, fake_anthropic: FakeAnthropic, wire: str, ours: str
) -> None:
    fake_anthropic.say("x", stop_reason=wire)
    assert claude.complete(ask()).stop_reason == ours


def _breakpoints(body: dict[str, Any]) -> list[str]:
    where = [f"tool {t['name']}" for t in body.get("tools", ()) if "cache_control" in t]
    where += ["system" for b in body.get("system", ()) if "cache_control" in b]
    for n, m in enumerate(body["messages"]):
        where += [f"message {n}" for b in m["content"] if "cache_control" in b]
    return where


def test_anthropic_caches_tools_system_and_the_conversation_within_four_breakpoints(
    claude: AnthropicModel, fake_anthropic: FakeAnthropic
) -> None:
    history: list[ChatMessage] = [ChatMessage("user", "start")]
    for n in range(4):
        call = ToolCall(f"t{n}", "read_file", {"path": f"{n}.py"})
        history += [
            ChatMessage("assistant", tool_calls=(call,)),
            ChatMessage("user", tool_results=(ToolResult(f"t{n}", "read_file", "x"),)),
        ]
    fake_anthropic.say("ok")
    claude.complete(ModelRequest("sys", tuple(history), (READ,)))
    body = fake_anthropic.last.body
    # The newest turn (written for the next call) and the user turn before it (what the
    # previous call wrote): the next call finds the prefix whatever the newest turn adds.
    assert _breakpoints(body) == ["tool read_file", "system", "message 6", "message 8"]
    claude.prompt_cache = False
    _, messages, tools = claude.wire_request(ModelRequest("sys", tuple(history), (READ,)))
    assert "cache_control" not in json.dumps([messages, tools])


def test_anthropic_thinking_is_kept_across_tool_calls_with_its_signature(
    claude: AnthropicModel, fake_anthropic: FakeAnthropic
) -> None:
    thinking = {"type": "thinking", "thinking": "a.py first", "signature": "c2lnbmF0dXJl"}
    redacted = {"type": "redacted_thinking", "data": "b3BhcXVl"}
    fake_anthropic.message(
        [
            thinking,
            redacted,
            {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a"}},
        ],
        stop_reason="tool_use",
    )
    fake_anthropic.say("done")
    first = claude.complete(ask())
    assert first.message.thinking == (thinking, redacted)
    # Through the transcript and back, as a restarted member would read it.
    kept = ChatMessage.from_dict(json.loads(json.dumps(first.message.to_dict())))
    assert kept == first.message
    results = ChatMessage("user", tool_results=(ToolResult("toolu_1", "read_file", "x"),))
    claude.complete(ModelRequest("sys", (ChatMessage("user", "go"), kept, results), (READ,)))
    sent = fake_anthropic.last.body["messages"][1]["content"]
    assert sent[:2] == [thinking, redacted]
    assert sent[2]["type"] == "tool_use"


def test_fake_anthropic_models_the_prompt_cache(sleeps: list[float]) -> None:
    with FakeAnthropic(prompt_cache=True, min_cache_tokens=100) as fake:
        model = AnthropicModel("claude-sonnet-4-5", api_key="k", base_url=fake.base_url)
        fake.say("one").say("two").say("three")
        system = "You are careful. " * 100
        history: tuple[ChatMessage, ...] = (ChatMessage("user", "first"),)
        first = model.complete(ModelRequest(system, history, (READ,))).usage
        assert first.cache_read_tokens == 0 and first.cache_write_tokens > 400
        history += (ChatMessage("assistant", "one"), ChatMessage("user", "second"))
        second = model.complete(ModelRequest(system, history, (READ,))).usage
        # What the first call wrote is read; only the new turns are written.
        assert second.cache_read_tokens == first.cache_write_tokens
        assert 0 < second.cache_write_tokens < 50 and second.input_tokens == 0
        # A different system prompt is a different prefix: nothing to read.
        third = model.complete(ModelRequest(system + "!", history, (READ,))).usage
        assert third.cache_read_tokens == 0
        model.close()


def test_cache_reads_and_writes_are_priced_as_anthropic_prices_them() -> None:
    from accord.llm.prices import Price, cost_of

    usage = Usage(input_tokens=1000, output_tokens=0, cache_read_tokens=10_000,
                  cache_write_tokens=2000)  # fmt: skip
    cost = cost_of("anthropic:claude-sonnet-4-5", usage)
    assert cost == pytest.approx((1000 * 3.0 + 10_000 * 0.30 + 2000 * 3.75) / 1e6)
    # An override without cache prices gets 0.1x input for reads, 1.25x for writes.
    assert Price(2.0, 8.0).cost(usage) == pytest.approx(
        (1000 * 2.0 + 10_000 * 0.2 + 2000 * 2.5) / 1e6
    )


# -- OpenAI: mapping ------------------------------------------------------------


def test_openai_text_reply(gpt: OpenAIModel, fake_openai: FakeOpenAI) -> None:
    fake_openai.say("Hello.")
    out = gpt.complete(ask("hi"))
    assert out.message == ChatMessage("assistant", "Hello.")
    assert out.stop_reason == "end_turn"
    assert out.model == f"openai:gpt-5-mini@{fake_openai.base_url}"
    sent = fake_openai.last
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
    ]
    assert sent.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": READ.description,
                "parameters": READ.schema,
            },
        }
    ]
    # A custom base URL is taken for a local server, which knows only max_tokens.
    assert sent.body["max_tokens"] == 8192
    assert "max_completion_tokens" not in sent.body
    fake_openai.assert_complete()


def test_openai_tool_round_trip_with_parallel_calls(
    gpt: OpenAIModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.call_tools(("read_file", {"path": "a.py"}), ("read_file", {"path": "b.py"}))
    fake_openai.say("Both read.")
    first = gpt.complete(ask("read a.py and b.py"))
    assert first.stop_reason == "tool_use"
    a, b = first.message.tool_calls
    assert (a.arguments, b.arguments) == ({"path": "a.py"}, {"path": "b.py"})

    results = ChatMessage(
        "user",
        "and then stop",
        tool_results=(
            ToolResult(a.id, "read_file", "print('a')"),
            ToolResult(b.id, "read_file", "no such file", is_error=True),
        ),
    )
    gpt.complete(ModelRequest("sys", (ChatMessage("user", "go"), first.message, results)))

    messages = fake_openai.last.body["messages"]
    # Never "content": null: llama-cpp-python's server answers it with HTTP 500.
    assert messages[2] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": a.id,
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
            },
            {
                "id": b.id,
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path": "b.py"}'},
            },
        ],
    }
    assert messages[3:] == [
        {"role": "tool", "tool_call_id": a.id, "content": "print('a')"},
        {"role": "tool", "tool_call_id": b.id, "content": "Error: no such file"},
        {"role": "user", "content": "and then stop"},
    ]
    assert "tools" not in fake_openai.last.body
    fake_openai.assert_complete()


def test_openai_malformed_tool_arguments_become_none(
    gpt: OpenAIModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.call_tools(("read_file", '{"path": "a.py"'), ("read_file", "[1, 2]"))
    fake_openai.say("sorry")
    out = gpt.complete(ask())
    broken, not_object = out.message.tool_calls
    assert broken.arguments is None and broken.raw_arguments == '{"path": "a.py"'
    assert not_object.arguments is None and not_object.raw_arguments == "[1, 2]"
    # The model is shown what it really sent, next to the error it caused.
    errors = tuple(
        ToolResult(c.id, c.name, "bad arguments", is_error=True) for c in (broken, not_object)
    )
    gpt.complete(ask("retry", out.message, ChatMessage("user", tool_results=errors)))
    sent = fake_openai.last.body["messages"][1]["tool_calls"]
    assert [c["function"]["arguments"] for c in sent] == ['{"path": "a.py"', "[1, 2]"]


def test_openai_usage_subtracts_cached_tokens(gpt: OpenAIModel, fake_openai: FakeOpenAI) -> None:
    fake_openai.say(
        "ok",
        usage={
            "prompt_tokens": 1000,
            "completion_tokens": 70,
            "prompt_tokens_details": {"cached_tokens": 600},
            "completion_tokens_details": {"reasoning_tokens": 30},
        },
    )
    fake_openai.say("no usage here", omit_usage=True)
    assert gpt.complete(ask()).usage == Usage(
        input_tokens=400, output_tokens=70, cache_read_tokens=600
    )
    missing = gpt.complete(ask())
    assert missing.usage == Usage(reported=False)  # the agent estimates and marks it
    assert "usage" not in missing.raw  # the raw reply shows the server sent none


@pytest.mark.parametrize(
    ("finish", "calls", "ours"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("content_filter", False, "refusal"),
        ("tool_calls", True, "tool_use"),
        ("stop", True, "tool_use"),  # Ollama says stop after tool calls
    ],
)
def test_openai_finish_reasons(
    gpt: OpenAIModel, fake_openai: FakeOpenAI, finish: str, calls: bool, ours: str
) -> None:
    if calls:
        fake_openai.call_tools(("read_file", {"path": "x"}), finish_reason=finish)
    else:
        fake_openai.say("x", finish_reason=finish)
    assert gpt.complete(ask()).stop_reason == ours


def test_openai_refusal_text_is_kept(gpt: OpenAIModel, fake_openai: FakeOpenAI) -> None:
    fake_openai.completion(
        {"content": None, "refusal": "I can't help with that."}, finish_reason="stop"
    )
    out = gpt.complete(ask())
    assert (out.message.text, out.stop_reason) == ("I can't help with that.", "refusal")


def test_openai_com_sends_max_completion_tokens_and_needs_a_key(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend the fake is openai.com: reasoning models there refuse max_tokens.
    monkeypatch.setattr(openai_adapter, "is_openai_com", lambda url: True)
    with pytest.raises(MissingKey, match="OPENAI_API_KEY"):
        OpenAIModel("gpt-5-mini", base_url=fake_openai.base_url)
    model = OpenAIModel("gpt-5-mini", api_key="sk-test", base_url=fake_openai.base_url)
    fake_openai.say("ok")
    out = model.complete(ModelRequest("", (ChatMessage("user", "hi"),), max_tokens=300))
    assert out.model == "openai:gpt-5-mini"
    assert fake_openai.last.body["max_completion_tokens"] == 300
    assert "max_tokens" not in fake_openai.last.body
    assert "tools" not in fake_openai.last.body
    model.close()


def test_is_openai_com() -> None:
    assert openai_adapter.is_openai_com(None)
    assert openai_adapter.is_openai_com("https://api.openai.com/v1")
    assert not openai_adapter.is_openai_com("http://localhost:11434/v1")
    assert not openai_adapter.is_openai_com("https://notopenai.com/v1")


# -- both providers: faults and retries -----------------------------------------


@dataclass
class Provider:
    name: str
    fake: FakeAnthropic | FakeOpenAI
    make: Callable[..., Model]
    key_variable: str


@pytest.fixture(params=["anthropic", "openai"])
def provider(request: pytest.FixtureRequest, sleeps: list[float]) -> Iterator[Provider]:
    fake: FakeAnthropic | FakeOpenAI
    cls: type[AnthropicModel] | type[OpenAIModel]
    if request.param == "anthropic":
        fake, cls, model, var = (
            FakeAnthropic(),
            AnthropicModel,
            "claude-haiku-4-5",
            "ANTHROPIC_API_KEY",
        )
    else:
        fake, cls, model, var = FakeOpenAI(), OpenAIModel, "gpt-5-nano", "OPENAI_API_KEY"
    opened: list[Model] = []

    def make(**kw: Any) -> Model:
        options: dict[str, Any] = {
            "api_key": "sk-test",
            "base_url": fake.base_url,
            "timeout": 5.0,
            "sleep": sleeps.append,
            "max_retries": 2,
        }
        options.update(kw)
        built: Model = cls(model, **options)
        opened.append(built)
        return built

    with fake:
        yield Provider(request.param, fake, make, var)
        for built in opened:
            built.close()


def test_rate_limit_waits_as_told_then_succeeds(provider: Provider, sleeps: list[float]) -> None:
    provider.fake.fail(429, "slow down", retry_after=7).say("ok")
    out = provider.make().complete(ask())
    assert out.message.text == "ok"
    assert sleeps == [7.0]
    assert len(provider.fake.requests) == 2
    provider.fake.assert_complete()


def test_retry_after_is_capped(provider: Provider, sleeps: list[float]) -> None:
    provider.fake.fail(429, retry_after=86400).say("ok")
    provider.make(backoff=Backoff(retry_after_cap=45)).complete(ask())
    assert sleeps == [45.0]


@pytest.mark.parametrize("status", [500, 503, 529])
def test_server_errors_are_retried_then_reported_in_one_line(
    provider: Provider, sleeps: list[float], status: int
) -> None:
    provider.fake.fail(status, "upstream\nis sad").fail(status).fail(status)
    model = provider.make(max_retries=2, backoff=Backoff(base=1.0, cap=30.0))
    with pytest.raises(ModelError) as caught:
        model.complete(ask())
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{model.name}: HTTP {status}")
    assert message.endswith("gave up after 3 attempts")
    assert caught.value.retryable
    assert len(provider.fake.requests) == 3
    # Exponential backoff with jitter: retry n waits between half and all of 2**(n-1) s.
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_server_error_then_success(provider: Provider, sleeps: list[float]) -> None:
    provider.fake.fail(500).fail(529).say("recovered")
    assert provider.make(max_retries=3).complete(ask()).message.text == "recovered"
    assert len(sleeps) == 2


def test_rejected_key_is_not_retried(provider: Provider, sleeps: list[float]) -> None:
    provider.fake.fail(401, "invalid x-api-key")
    with pytest.raises(ModelError) as caught:
        provider.make().complete(ask())
    message = str(caught.value)
    assert "HTTP 401" in message and "rejected" in message
    assert provider.key_variable in message and "invalid x-api-key" in message
    assert not caught.value.retryable
    assert len(provider.fake.requests) == 1 and sleeps == []


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_not_retried(
    provider: Provider, sleeps: list[float], status: int
) -> None:
    provider.fake.fail(status, "messages: text content blocks must be non-empty")
    with pytest.raises(ModelError, match=f"HTTP {status}: .*must be non-empty") as caught:
        provider.make().complete(ask())
    assert "gave up" not in str(caught.value)
    assert len(provider.fake.requests) == 1 and sleeps == []


def test_slow_reply_times_out_and_is_retried(provider: Provider, sleeps: list[float]) -> None:
    provider.fake.slow(10).say("in time")
    out = provider.make(timeout=0.3).complete(ask())
    assert out.message.text == "in time"
    assert len(sleeps) == 1


def test_timeouts_until_the_last_retry(provider: Provider, sleeps: list[float]) -> None:
    provider.fake.slow(10).slow(10)
    model = provider.make(timeout=0.3, max_retries=1)
    with pytest.raises(ModelError) as caught:
        model.complete(ask())
    assert str(caught.value) == (
        f"{model.name}: no reply within the 0.3s timeout; gave up after 2 attempts"
    )


def test_connection_closed_mid_reply_is_retried(provider: Provider, sleeps: list[float]) -> None:
    provider.fake.cut().say("whole")
    assert provider.make().complete(ask()).message.text == "whole"
    assert len(provider.fake.requests) == 2 and len(sleeps) == 1


def test_endpoint_down(provider: Provider, sleeps: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}" + ("/v1" if provider.name == "openai" else "")
    with pytest.raises(ModelError, match="connection failed: .*gave up after 3 attempts$"):
        provider.make(base_url=url).complete(ask())
    assert len(sleeps) == 2


def test_fake_server_catches_calls_beyond_its_script(provider: Provider) -> None:
    provider.fake.say("only one")
    model = provider.make(max_retries=0)
    model.complete(ask())
    with pytest.raises(ModelError, match="has no scripted reply"):
        model.complete(ask())
    with pytest.raises(AssertionError, match="after the script ran out"):
        provider.fake.assert_complete()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("<html>502 Bad Gateway</html>", "the reply is not JSON"),
        ({"choices": [{"index": 0}], "content": ["odd"]}, "the reply is not a"),
    ],
)
def test_a_reply_in_the_wrong_shape_is_retried_then_a_clear_error(
    provider: Provider, sleeps: list[float], body: dict[str, Any] | str, error: str
) -> None:
    provider.fake.add(FakeReply(body=body), FakeReply(body=body), FakeReply(body=body))
    with pytest.raises(ModelError, match=error + ".*gave up after 3 attempts") as caught:
        provider.make().complete(ask())
    assert caught.value.retryable and len(sleeps) == 2


MISBEHAVIOURS: dict[str, Callable[[FakeAnthropic | FakeOpenAI], object]] = {
    "invalid JSON": lambda fake: fake.not_json(),
    "HTML with status 200": lambda fake: fake.html(),
    "empty choices": lambda fake: fake.empty(),
}


@pytest.mark.parametrize("kind", MISBEHAVIOURS)
def test_a_misbehaving_reply_is_retried_like_a_5xx(
    provider: Provider, sleeps: list[float], kind: str
) -> None:
    MISBEHAVIOURS[kind](provider.fake)
    provider.fake.say("recovered")
    assert provider.make().complete(ask()).message.text == "recovered"
    assert len(provider.fake.requests) == 2 and len(sleeps) == 1
    provider.fake.assert_complete()


@pytest.mark.parametrize("kind", MISBEHAVIOURS)
def test_a_server_that_keeps_misbehaving_gives_one_line_retryable_error(
    provider: Provider, sleeps: list[float], kind: str
) -> None:
    for _ in range(3):
        MISBEHAVIOURS[kind](provider.fake)
    model = provider.make(max_retries=2)
    with pytest.raises(ModelError) as caught:
        model.complete(ask())
    message = str(caught.value)
    assert message.startswith(f"{model.name}: ") and "\n" not in message
    assert message.endswith("gave up after 3 attempts") and caught.value.retryable
    said = {"invalid JSON": "is not JSON", "HTML with status 200": "is not JSON: <!DOCTYPE html>"}
    assert said.get(kind, "reply") in message


@pytest.mark.parametrize(
    ("window", "wording"),
    [
        (8192, "This model's maximum context length is 8192 tokens. However, you requested "
               "9000 tokens (9000 in the messages, 0 in the completion)."),
        (4096, "Requested tokens (5000) exceed context window of 4096"),
        (8192, "This model's maximum model length is 8192 tokens."),
        (200000, "prompt is too long: 210000 tokens > 200000 maximum"),
        (None, "the request exceeds the available context size, try increasing it"),
    ],
)  # fmt: skip
def test_context_overflow_names_the_window_and_is_not_retried(
    provider: Provider, sleeps: list[float], window: int | None, wording: str
) -> None:
    provider.fake.fail(400, wording)
    with pytest.raises(ContextTooLong) as caught:
        provider.make().complete(ask())
    assert caught.value.window == window and sleeps == []


def test_llama_cpp_context_overflow_gives_its_window_in_the_body(provider: Provider) -> None:
    error = {
        "code": 400,
        "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 9000,
        "n_ctx": 8192,
    }
    provider.fake.add(FakeReply(status=400, body={"error": error}))
    with pytest.raises(ContextTooLong) as caught:
        provider.make().complete(ask())
    assert caught.value.window == 8192


def test_fake_servers_send_their_own_context_overflow(provider: Provider) -> None:
    provider.fake.context_exceeded(8192)
    with pytest.raises(ContextTooLong) as caught:
        provider.make().complete(ask())
    assert caught.value.window == 8192


def test_a_500_that_is_a_validation_error_is_not_retried(
    provider: Provider, sleeps: list[float]
) -> None:
    provider.fake.fail(
        500, "1 validation error for CreateChatCompletionRequest messages.2.content Input "
        "should be a valid string"
    )  # fmt: skip
    with pytest.raises(ModelError, match="HTTP 500: the server refused the request") as caught:
        provider.make().complete(ask())
    assert not caught.value.retryable and sleeps == []


def test_a_huge_reply_and_absurd_usage_reach_the_caller_as_sent(provider: Provider) -> None:
    # The adapters pass them on; the agent caps the text and checks the usage.
    provider.fake.huge(10 * 1024 * 1024).negative_usage()
    model = provider.make()
    assert len(model.complete(ask()).message.text) == 10 * 1024 * 1024
    usage = model.complete(ask()).usage
    assert usage.output_tokens == 10**13


# -- keys and base URLs ---------------------------------------------------------


def test_missing_keys_name_their_variable() -> None:
    with pytest.raises(MissingKey, match="^ANTHROPIC_API_KEY is not set") as caught:
        AnthropicModel("claude-sonnet-4-5")
    assert "\n" not in str(caught.value)
    with pytest.raises(MissingKey, match="^OPENAI_API_KEY is not set"):
        OpenAIModel("gpt-5-mini")


def test_keys_and_base_urls_from_the_environment(
    fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_anthropic.say("a")
    fake_openai.say("o")
    assert AnthropicModel("claude-opus-4-5").complete(ask()).message.text == "a"
    assert OpenAIModel("gpt-5-mini").complete(ask()).message.text == "o"
    assert fake_anthropic.last.api_key == "sk-ant-env"
    assert fake_openai.last.api_key == "sk-env"


def test_local_server_needs_no_key(fake_openai: FakeOpenAI) -> None:
    fake_openai.say("from qwen", omit_usage=True)
    model = open_model(f"openai:qwen3@{fake_openai.base_url}")
    out = model.complete(ask())
    assert out.message.text == "from qwen"
    assert out.model == f"openai:qwen3@{fake_openai.base_url}"
    assert fake_openai.last.api_key == "not-needed"
    assert model.context_window == 32_768


def test_context_windows() -> None:
    assert AnthropicModel("claude-sonnet-4-5", api_key="k").context_window == 200_000
    assert AnthropicModel("claude-next", api_key="k").context_window == 200_000
    assert OpenAIModel("gpt-5-mini", api_key="k").context_window == 400_000
    assert OpenAIModel("gpt-4o-mini", api_key="k").context_window == 128_000
    assert OpenAIModel("gpt-5", api_key="k", context_window=1000).context_window == 1000


# -- open_model -----------------------------------------------------------------


def test_open_model_builds_each_provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    claude = open_model("anthropic:claude-sonnet-4-5", timeout=30, max_retries=1)
    assert isinstance(claude, AnthropicModel)
    assert str(claude.name) == "anthropic:claude-sonnet-4-5"
    assert claude.timeout == 30 and claude.backoff.retries == 1
    gpt = open_model("openai:gpt-5-mini")
    assert isinstance(gpt, OpenAIModel) and not gpt.local
    assert gpt.timeout == 600 and gpt.backoff.retries == 4

    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "hi"}]))
    scripted = open_model(f"scripted:{script}")
    assert isinstance(scripted, ScriptedModel)
    assert scripted.complete(ask()).message.text == "hi"
    scripted.assert_complete()


def test_open_model_base_urls_from_config() -> None:
    urls = {"openai": "http://localhost:8000/v1", "openai:qwen3": "http://localhost:11434/v1"}
    by_model = open_model("openai:qwen3", base_urls=urls)
    by_provider = open_model("openai:llama3", base_urls=urls)
    in_name = open_model("openai:qwen3@http://gpu-box:8080/v1", base_urls=urls)
    assert str(by_model.name) == "openai:qwen3@http://localhost:11434/v1"
    assert str(by_provider.name) == "openai:llama3@http://localhost:8000/v1"
    assert str(in_name.name) == "openai:qwen3@http://gpu-box:8080/v1"


def test_open_model_errors() -> None:
    with pytest.raises(
        UserError, match="unknown provider 'gemini'; known providers: anthropic, openai, scripted"
    ):
        open_model("gemini:pro")
    with pytest.raises(UserError, match="not PROVIDER:MODEL"):
        open_model("claude-sonnet-4-5")
    with pytest.raises(MissingKey, match="ANTHROPIC_API_KEY"):
        open_model("anthropic:claude-sonnet-4-5")
    with pytest.raises(MissingKey, match="OPENAI_API_KEY"):
        open_model("openai:gpt-5-mini")
    with pytest.raises(UserError, match="cannot read the model script"):
        open_model("scripted:/nonexistent/script.json")


# -- the scripted model ---------------------------------------------------------


def test_scripted_model_plays_steps_and_records_requests() -> None:
    model = ScriptedModel([reply("looking", call("read_file", {"path": "a"})), reply("done")])
    first = model.complete(ask("one"))
    assert first.stop_reason == "tool_use"
    assert first.message.tool_calls[0].arguments == {"path": "a"}
    with pytest.raises(AssertionError, match="1 scripted step"):
        model.assert_complete()
    assert model.complete(ask("two")).stop_reason == "end_turn"
    model.assert_complete()
    assert [r.messages[-1].text for r in model.requests] == ["one", "two"]
    with pytest.raises(UnexpectedModelCall):
        model.complete(ask("three"))


def test_scripted_model_from_file(tmp_path: Path) -> None:
    script = tmp_path / "steps.json"
    script.write_text(
        json.dumps(
            {
                "context_window": 5000,
                "steps": [
                    {"tool_calls": [{"name": "read_file", "raw": "{oops"}]},
                    {"error": "provider down"},
                    {"text": "bye"},
                ],
            }
        )
    )
    model = ScriptedModel.from_file(script)
    assert model.context_window == 5000
    bad = model.complete(ask()).message.tool_calls[0]
    assert bad == ToolCall(bad.id, "read_file", None, "{oops")
    with pytest.raises(ModelError, match="provider down"):
        model.complete(ask())
    assert model.complete(ask()).message.text == "bye"
    model.assert_complete()
    script.write_text("{not json")
    with pytest.raises(UserError, match="the model script .* is not JSON"):
        ScriptedModel.from_file(script)


# -- retry helpers --------------------------------------------------------------


def test_retry_after_header_forms() -> None:
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after({"retry-after": later}) or 0) <= 30


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    assert [backoff.delay(n, None, lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]
    assert [backoff.delay(n, None, lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1, 2]
    assert backoff.delay(1, 120.0, lambda: 0.5) == 60.0


# -- what a strict OpenAI-compatible server (llama-cpp-python) needs ------------


def test_openai_sends_tool_choice_auto_whenever_tools_are_given(
    gpt: OpenAIModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.call_tools(("read_file", {"path": "a.py"})).say("no tools")
    assert gpt.complete(ask()).message.tool_calls[0].name == "read_file"
    assert fake_openai.requests[0].body["tool_choice"] == "auto"
    gpt.complete(ask(tools=()))
    assert "tool_choice" not in fake_openai.last.body and "tools" not in fake_openai.last.body


def test_strict_fake_drops_tools_sent_without_tool_choice(fake_openai: FakeOpenAI) -> None:
    import openai

    fake_openai.call_tools(("read_file", {"path": "a.py"}))
    client = openai.OpenAI(api_key="k", base_url=fake_openai.base_url, max_retries=0)
    tools: Any = [{"type": "function", "function": {"name": "read_file", "parameters": {}}}]
    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "go"}], tools=tools
    )
    client.close()
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].finish_reason == "stop"


def test_strict_fake_refuses_null_content_and_the_adapter_never_sends_it(
    fake_openai: FakeOpenAI, sleeps: list[float]
) -> None:
    import openai

    client = openai.OpenAI(api_key="k", base_url=fake_openai.base_url, max_retries=0)
    messages: Any = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]  # fmt: skip
    with pytest.raises(openai.InternalServerError, match="validation error"):
        client.chat.completions.create(model="m", messages=messages)
    client.close()
    # The adapter's second call of a task (after a tool-call-only turn) goes through.
    model = OpenAIModel("qwen", base_url=fake_openai.base_url, sleep=sleeps.append)
    fake_openai.call_tools(("read_file", {"path": "a.py"})).say("read it")
    first = model.complete(ask())
    done = ToolResult(first.message.tool_calls[0].id, "read_file", "x")
    results = ChatMessage("user", tool_results=(done,))
    history = (ChatMessage("user", "go"), first.message, results)
    second = model.complete(ModelRequest("sys", history))
    model.close()
    assert second.message.text == "read it" and sleeps == []
    fake_openai.assert_complete()
