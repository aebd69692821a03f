"""Model output streams live: the adapters stream through the fake servers with the real
SDKs, the agent publishes its reply so far to the store's live channel at a bounded
rate, and the row is gone once the reply is saved. Nothing partial is ever saved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import psycopg
import pytest
from psycopg import sql

from accord.config import parse_config
from accord.errors import StoreError
from accord.llm.anthropic import AnthropicModel
from accord.llm.base import ChatMessage, Model, ModelRequest, StreamListener, ToolSpec
from accord.llm.openai import OpenAIModel
from accord.llm.scripted import ScriptedModel, call, reply
from accord.store import open_store
from accord.store.postgres import PostgresStore
from accord.team import Team
from accord.testing.fake_llm import FakeAnthropic, FakeOpenAI
from accord.types import NewTask, TranscriptKind
from conftest import make_agent

READ = ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {}})
TEXT = "Let me read the file first, then I will decide what to change in it, and why."
ARGUMENTS = {"path": "src/app/main.py", "lines": [1, 200], "why": "to see the entry point"}


class Heard(StreamListener):
    """What a listener was told, in order."""

    def __init__(self) -> None:
        self.said: list[tuple[str, str]] = []

    def text(self, delta: str) -> None:
        self.said.append(("text", delta))

    def tool(self, name: str) -> None:
        self.said.append(("tool", name))

    def restart(self) -> None:
        self.said.append(("restart", ""))

    def texts(self) -> list[str]:
        return [d for kind, d in self.said if kind == "text"]


def ask() -> ModelRequest:
    return ModelRequest("You are terse.", (ChatMessage("user", "hi"),), (READ,))


@pytest.fixture(params=["anthropic", "openai"])
def server(request: pytest.FixtureRequest) -> Iterator[FakeAnthropic | FakeOpenAI]:
    fake: FakeAnthropic | FakeOpenAI = (
        FakeAnthropic() if request.param == "anthropic" else (FakeOpenAI())
    )
    with fake:
        yield fake


def adapter(fake: FakeAnthropic | FakeOpenAI, sleeps: list[float], **kw: Any) -> Model:
    if isinstance(fake, FakeAnthropic):
        return AnthropicModel("claude-sonnet-4-5", api_key="k", base_url=fake.base_url,
                              sleep=sleeps.append, **kw)  # fmt: skip
    return OpenAIModel("gpt-5-mini", api_key="k", base_url=fake.base_url, sleep=sleeps.append, **kw)


def script(fake: FakeAnthropic | FakeOpenAI) -> None:
    """A reply of text and a tool call, with usage, in the fake's own wire fields."""
    if isinstance(fake, FakeAnthropic):
        usage = {"input_tokens": 120, "output_tokens": 45, "cache_read_input_tokens": 30}
        fake.call_tools(("read_file", ARGUMENTS), text=TEXT, usage=usage)
    else:
        usage = {"prompt_tokens": 150, "completion_tokens": 45,
                 "prompt_tokens_details": {"cached_tokens": 30}}  # fmt: skip
        fake.call_tools(("read_file", ARGUMENTS), text=TEXT, usage=usage)


def test_adapters_stream_deltas_in_order_and_reply_as_the_plain_call_does(
    server: FakeAnthropic | FakeOpenAI, sleeps: list[float]
) -> None:
    script(server)
    script(server)
    streamed, plain = adapter(server, sleeps), adapter(server, sleeps, stream=False)
    heard = Heard()
    got = streamed.stream(ask(), heard)
    whole = plain.complete(ask())
    # Several deltas, in order, then the tool call by name as it began.
    assert len(heard.texts()) > 2 and "".join(heard.texts()) == TEXT
    assert heard.said[-1] == ("tool", "read_file")
    # The reply is exactly what the plain call gives (the ids are the fake's own each time).
    assert got.message.text == whole.message.text == TEXT
    assert [(c.name, c.arguments) for c in got.message.tool_calls] == [("read_file", ARGUMENTS)]
    assert [(c.name, c.arguments) for c in whole.message.tool_calls] == [("read_file", ARGUMENTS)]
    assert got.message.tool_calls[0].id
    assert (got.usage, got.stop_reason) == (whole.usage, whole.stop_reason)
    assert got.usage.cache_read_tokens == 30 and got.usage.output_tokens == 45
    streamed_body, plain_body = server.requests[0].body, server.requests[1].body
    assert streamed_body["stream"] is True and "stream" not in plain_body
    if isinstance(server, FakeOpenAI):
        assert streamed_body["stream_options"] == {"include_usage": True}
        assert "stream_options" not in plain_body
    server.assert_complete()


def test_a_stream_cut_midway_is_tried_again_from_the_start(
    server: FakeAnthropic | FakeOpenAI, sleeps: list[float]
) -> None:
    server.cut()
    server.say(TEXT)
    heard = Heard()
    got = adapter(server, sleeps).stream(ask(), heard)
    assert got.message.text == TEXT and len(sleeps) == 1 and len(server.requests) == 2
    # What the cut stream said before it broke is void; the listener was told so.
    restarted = heard.said.index(("restart", ""))
    assert restarted > 0 and "".join(d for _, d in heard.said[restarted + 1 :]) == TEXT


def test_a_plain_call_tells_the_listener_the_whole_reply_at_its_end(
    server: FakeAnthropic | FakeOpenAI, sleeps: list[float]
) -> None:
    script(server)
    heard = Heard()
    adapter(server, sleeps, stream=False).stream(ask(), heard)
    assert heard.said == [("text", TEXT), ("tool", "read_file")]
    assert "stream" not in server.last.body


def test_the_fake_openai_refuses_stream_options_without_stream(fake_openai: FakeOpenAI) -> None:
    client = openai.OpenAI(api_key="k", base_url=fake_openai.base_url, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="'stream_options' parameter is only"):
        client.chat.completions.create(
            model="gpt-5-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream_options={"include_usage": True},
        )
    client.close()


# the agent publishes -------------------------------------------------------------


def test_a_member_publishes_its_reply_while_it_streams_and_clears_it_once_saved(
    team: Team, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team.board.add(NewTask("t"))
    words = " ".join(f"word{n}" for n in range(30))
    model = ScriptedModel(
        [
            reply(words, call("task_complete", {"task_id": 1, "result": "ok"})),
            reply("done"),
        ]
    )
    agent = make_agent(team, model, repo)
    now = [0.0]
    agent.clock = lambda: now[0]
    writes: list[tuple[str, tuple[str, ...]]] = []
    set_live = team.store.set_live

    def counted(t: str, member: str, session: int, text: str, tools: Any = ()) -> None:
        writes.append((text, tuple(tools)))
        set_live(t, member, session, text, tools)

    monkeypatch.setattr(team.store, "set_live", counted)
    seen: list[str | None] = []

    def look(so_far: str) -> None:
        # The call is still in progress: what does a viewer see?
        live = team.log.live("alice")
        seen.append(live.text if live else None)
        assert live is None or (so_far.startswith(live.text) and live.session >= 1)
        now[0] += 0.1  # each piece comes a tenth of a second after the last

    model.between_pieces = look
    assert agent.run(once=True).reason == "idle"
    # 10 pieces of 3 words, a tenth of a second apart: the text so far goes out with the
    # first piece and then every 0.25 s (pieces 1, 4, 7, 10), never once a piece.
    first = "word0 word1 word2 "
    assert seen[0] == first and seen[1] == seen[2] == first
    assert seen[3] == " ".join(f"word{n}" for n in range(12)) + " "
    assert seen[4] == seen[5] == seen[3] and seen[6] != seen[3]
    assert seen[10] == "done"  # the next reply, a call of its own
    texts = [t for t, tools in writes if not tools]
    assert len(texts) == 4 + 1
    # The tool call, by name, went out as soon as it began, with the whole text.
    assert (words, ("task_complete",)) in writes
    # Saved: the live row is gone, and the transcript holds the whole reply, once.
    assert team.log.live("alice") is None and team.log.live_all() == {}
    said = [
        e.body.get("text")
        for e in team.log.read_transcript("alice")
        if e.kind == TranscriptKind.MESSAGE and e.body["role"] == "assistant"
    ]
    assert said == [words, "done"]


def test_stream_false_in_a_models_settings_makes_the_plain_call(team: Team, repo: Path) -> None:
    config = parse_config('[models."scripted:model"]\nstream = false\n')
    model = ScriptedModel([reply("one two three four five six seven")])
    pieces: list[str] = []
    model.between_pieces = pieces.append
    agent = make_agent(team, model, repo, config=config)
    assert not model.streaming
    team.mailbox.send("lead", "alice", "say something")
    agent.run(once=True)
    assert pieces == [] and team.log.live_all() == {}  # told whole, at its end
    model.assert_complete()


def test_a_live_channel_that_fails_never_breaks_the_turn(
    team: Team, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team.board.add(NewTask("t"))
    model = ScriptedModel(
        [reply("one two three four", call("task_complete", {"task_id": 1, "result": "ok"})),
         reply("done")]
    )  # fmt: skip

    def broken(*args: Any) -> None:
        raise StoreError("the live file is on a full disk")

    monkeypatch.setattr(team.store, "set_live", broken)
    assert make_agent(team, model, repo).run(once=True).reason == "idle"
    assert team.board.get(1).status.value == "completed"
    notes = [
        e.body["text"]
        for e in team.log.read_transcript("alice")
        if e.kind == TranscriptKind.NOTE and "live view" in e.body.get("text", "")
    ]
    assert len(notes) == 1 and "full disk" in notes[0]


def test_a_cut_stream_saves_nothing_partial(
    team: Team, repo: Path, fake_openai: FakeOpenAI, sleeps: list[float]
) -> None:
    team.board.add(NewTask("t"))
    fake_openai.cut()
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"}), text=TEXT)
    fake_openai.say("done")
    model = OpenAIModel("qwen3", base_url=fake_openai.base_url, sleep=sleeps.append)
    assert make_agent(team, model, repo).run(once=True).reason == "idle"
    model.close()
    said = [
        e.body.get("text", "")
        for e in team.log.read_transcript("alice")
        if e.kind == TranscriptKind.MESSAGE and e.body["role"] == "assistant"
    ]
    assert said == [TEXT, "done"]
    assert team.store.usage_totals("main")[0].calls == 2  # one row per reply, none for the cut
    assert team.log.live_all() == {}


def test_live_writes_send_no_notification_on_postgres(pg_url: str) -> None:
    store = open_store(pg_url, create=True)
    assert isinstance(store, PostgresStore)
    store.create_team("main")
    store.add_member("main", "alice", token_hash="h")
    channel = sql.Identifier(f"accord {store.schema}")
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(channel))
        for n in range(5):
            store.set_live("main", "alice", 1, "word " * n)
        store.clear_live("main", "alice")
        # A real write after them: its notification comes after any they sent.
        store.add_member("main", "bob", token_hash="h")
        heard = list(listener.notifies(timeout=5, stop_after=1))
        heard += list(listener.notifies(timeout=0.2))
    store.close()
    assert len(heard) == 1
