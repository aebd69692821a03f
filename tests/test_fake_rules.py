"""The fake model servers' rule mode, through the real SDKs: replies chosen by who asks
and what it was just told, so several processes can share one server."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from accord.llm.anthropic import AnthropicModel
from accord.llm.base import ChatMessage, ModelError, ModelRequest, ToolCall, ToolResult, ToolSpec
from accord.llm.openai import OpenAIModel
from accord.testing import FakeAnthropic, FakeOpenAI

READ = ToolSpec(
    "read_file",
    "Read a file.",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


@pytest.fixture
def model(fake: FakeOpenAI) -> Iterator[OpenAIModel]:
    m = OpenAIModel("qwen3", base_url=fake.base_url, max_retries=0)
    yield m
    m.close()


def ask(who: str, text: str, *history: ChatMessage) -> ModelRequest:
    return ModelRequest(
        f"You are {who}, a teammate.", (*history, ChatMessage("user", text)), (READ,)
    )


def text_of(m: OpenAIModel | AnthropicModel, request: ModelRequest) -> str:
    return m.complete(request).message.text


def test_the_first_rule_that_holds_answers_by_member_and_latest_turn(
    fake: FakeOpenAI, model: OpenAIModel
) -> None:
    alice = fake.on(system="You are alice,")
    alice.on(last="task #1").say("alice on 1")
    alice.say("alice, anything else")
    fake.on(last="task #1").say("someone else on 1")
    fake.otherwise().say("fallback")
    assert text_of(model, ask("alice", "Your task #1")) == "alice on 1"
    assert text_of(model, ask("alice", "Your task #2")) == "alice, anything else"
    assert text_of(model, ask("bob", "Your task #1")) == "someone else on 1"
    assert text_of(model, ask("bob", "hello")) == "fallback"
    assert [n for _, n in fake.hits()] == [1, 1, 1]
    fake.assert_complete()


def test_the_latest_turn_is_what_came_since_the_model_last_spoke(
    fake: FakeOpenAI, model: OpenAIModel
) -> None:
    fake.on(last="old news").say("matched an old turn")
    fake.on(last="contents of a.txt").say("saw the tool result")
    fake.otherwise().say("fallback")
    spoke = ChatMessage("assistant", "", (ToolCall("c1", "read_file", {"path": "a"}, "{}"),))
    result = ChatMessage(
        "user", "", tool_results=(ToolResult("c1", "read_file", "contents of a.txt"),)
    )
    request = ModelRequest(
        "You are alice,", (ChatMessage("user", "old news"), spoke, result), (READ,)
    )
    assert text_of(model, request) == "saw the tool result"


def test_a_once_rule_answers_one_request_then_the_next_rule_does(
    fake: FakeOpenAI, model: OpenAIModel
) -> None:
    mid = fake.on(system="You are alice,", last="go", once=True)
    mid.say("first").say("second")  # two once rules on the same condition
    fake.on(last="never said").say("unused")
    fake.otherwise().say("fallback")
    said = [text_of(model, ask("alice", "go")) for _ in range(3)]
    assert said == ["first", "second", "fallback"]
    with pytest.raises(AssertionError, match="1 openai rule\\(s\\) never answered.*never said"):
        fake.assert_complete()


def test_rules_come_first_then_the_queue_then_the_fallback(
    fake: FakeOpenAI, model: OpenAIModel
) -> None:
    fake.on(last="urgent").say("rule")
    fake.say("queued")
    assert text_of(model, ask("a", "urgent")) == "rule"
    assert text_of(model, ask("a", "calm")) == "queued"
    with pytest.raises(ModelError, match="no scripted reply"):
        model.complete(ask("a", "calm"))
    fake.otherwise().say("fallback")
    fake.otherwise().say("a later fallback replaces it")
    assert text_of(model, ask("a", "calm")) == "a later fallback replaces it"
    with pytest.raises(AssertionError, match="came after the script ran out"):
        fake.assert_complete()


def test_a_rule_played_again_sends_fresh_tool_call_ids(
    fake: FakeOpenAI, model: OpenAIModel
) -> None:
    fake.on(last="look").call_tools(("read_file", {"path": "a"}))
    first = model.complete(ask("a", "look")).message.tool_calls
    second = model.complete(ask("a", "look")).message.tool_calls
    assert first[0].arguments == second[0].arguments == {"path": "a"}
    assert first[0].id != second[0].id


def test_a_test_of_the_request_can_choose_too(fake: FakeOpenAI, model: OpenAIModel) -> None:
    fake.on(test=lambda r: len(r.body["messages"]) > 2).say("long talk")
    fake.otherwise().say("short talk")
    assert text_of(model, ask("a", "hi")) == "short talk"
    history = (ChatMessage("user", "hi"), ChatMessage("assistant", "hello"))
    assert text_of(model, ask("a", "again", *history)) == "long talk"


def test_many_members_at_once_get_a_once_rule_exactly_one_time(fake: FakeOpenAI) -> None:
    fake.on(last="race", once=True).say("winner")
    fake.otherwise().say("loser")
    said: list[str] = []
    lock = threading.Lock()

    def member() -> None:
        m = OpenAIModel("qwen3", base_url=fake.base_url, max_retries=0)
        try:
            text = text_of(m, ask("x", "race"))
        finally:
            m.close()
        with lock:
            said.append(text)

    threads = [threading.Thread(target=member) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(said) == ["loser"] * 7 + ["winner"]


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_rule_answer_is_as_strict_as_a_queued_one(fake: FakeOpenAI) -> None:
    fake.on(last="go").call_tools(("read_file", {"path": "a"}))
    url = f"{fake.base_url}/chat/completions"
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": {}}}]
    go = {"model": "m", "messages": [{"role": "user", "content": "go"}], "tools": tools}
    # Tools without tool_choice are dropped, as llama-cpp-python's server drops them.
    status, body = _post(url, go)
    assert status == 200 and body["choices"][0]["message"]["tool_calls"] is None
    status, body = _post(url, {**go, "tool_choice": "auto"})
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "read_file"
    null = {"role": "assistant", "content": None}
    status, body = _post(url, {**go, "messages": [null, *go["messages"]]})
    assert status == 500 and "validation error" in body["error"]["message"]


def test_anthropic_rules_read_the_system_prompt_and_tool_results() -> None:
    with FakeAnthropic() as fake:
        fake.on(system="You are bob,", last="contents of b").say("bob read b")
        fake.on(system="You are bob,").call_tools(("read_file", {"path": "b"}))
        claude = AnthropicModel("claude-haiku-4-5", api_key="k", base_url=fake.base_url)
        try:
            first = claude.complete(ask("bob", "Your task #2"))
            (tool_call,) = first.message.tool_calls
            result = ChatMessage(
                "user", "", tool_results=(ToolResult(tool_call.id, "read_file", "contents of b"),)
            )
            again = ModelRequest(
                "You are bob, a teammate.",
                (ChatMessage("user", "Your task #2"), first.message, result),
                (READ,),
            )
            assert text_of(claude, again) == "bob read b"
        finally:
            claude.close()
        fake.assert_complete()


def test_a_view_only_scripts_its_server(fake: FakeOpenAI) -> None:
    view = fake.on(last="x")
    with pytest.raises(RuntimeError, match="only scripts"):
        view.close()
    with pytest.raises(RuntimeError, match="only scripts"):
        fake.otherwise().start()
