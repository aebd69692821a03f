"""A team copes with models that misbehave: the agent loop against the fake servers,
through the real ``openai`` and ``anthropic`` SDKs.

Outages give the task back without spending an attempt; a megabyte reply is cut
before it is saved; impossible usage is replaced and marked; a model that repeats
itself is told, then stopped; a server that finds the prompt too long teaches its
context window, and the conversation is compacted and sent again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from accord.agent import context
from accord.agent.loop import REPEAT_NUDGE, REPEAT_STOP
from accord.config import parse_config
from accord.llm.anthropic import AnthropicModel
from accord.llm.openai import OpenAIModel
from accord.team import Team
from accord.testing.cli import accord as _accord
from accord.testing.fake_llm import FakeAnthropic, FakeOpenAI
from accord.types import NewTask, TaskStatus, TranscriptKind
from conftest import make_agent


@pytest.fixture
def local(fake_openai: FakeOpenAI, sleeps: list[float]) -> Iterator[OpenAIModel]:
    """A model behind a local OpenAI-compatible server (no key, a 32k window assumed)."""
    model = OpenAIModel("qwen3", base_url=fake_openai.base_url, sleep=sleeps.append, max_retries=2)
    yield model
    model.close()


def told_lead(team: Team) -> list[str]:
    return [m.body for m in team.mailbox.history(member="lead") if m.sender == "alice"]


def test_an_outage_stops_the_member_and_gives_the_task_back_without_an_attempt(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("needs the model", max_attempts=1))
    fake_openai.fail(503).fail(503).fail(503)
    outcome = make_agent(team, local, repo).run(once=True)
    assert outcome.reason == "model_error"
    assert "HTTP 503" in outcome.detail and "gave up after 3 attempts" in outcome.detail
    task = team.board.get(1)
    # The one attempt is still there: the outage was not the task's fault.
    assert task.status == TaskStatus.PENDING and task.attempts == 0
    assert any("HTTP 503" in body for body in told_lead(team))
    stopped = [e for e in team.store.read_events("main", since=0) if e.kind == "member_stopped"]
    assert stopped[-1].payload["reason"] == "model_error"
    assert "\n" not in stopped[-1].payload["detail"]
    assert stopped[-1].payload["transient"] is True  # a supervisor may start it again


def test_a_second_outage_in_a_row_spends_an_attempt_so_a_dead_model_ends(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("needs the model", max_attempts=1))
    for _ in range(6):
        fake_openai.fail(503)
    assert make_agent(team, local, repo).run(once=True).reason == "model_error"
    task = team.board.get(1)
    assert task.status == TaskStatus.PENDING and task.reason is not None
    assert task.reason.startswith("model unreachable: ")
    assert make_agent(team, local, repo).run(once=True).reason == "model_error"
    assert team.board.get(1).status == TaskStatus.FAILED
    fake_openai.assert_complete()


def test_a_refused_request_fails_the_claim_as_usual(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("bad request"))
    fake_openai.fail(400, "messages: invalid")
    outcome = make_agent(team, local, repo).run(once=True)
    assert outcome.reason == "model_error" and not outcome.transient
    assert team.board.get(1).attempts == 1  # not an outage: the attempt is spent


def test_a_misbehaving_reply_is_retried_and_the_task_carries_on(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("t"))
    fake_openai.html().not_json().empty()
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"})).say("done")
    # Three misbehaviours in a row outlast two retries; the next turn starts afresh.
    agent = make_agent(team, local, repo)
    assert agent.run(once=True).reason == "model_error"
    assert team.board.get(1).attempts == 0
    fake_openai.not_json()
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"})).say("done")
    assert make_agent(team, local, repo).run(once=True).reason == "idle"
    assert team.board.get(1).status == TaskStatus.COMPLETED


def test_a_megabyte_reply_is_cut_before_the_transcript_and_never_resent(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("t"))
    fake_openai.huge(10 * 1024 * 1024)
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"})).say("done")
    make_agent(team, local, repo).run(once=True)
    fake_openai.assert_complete()
    saved = [
        e.body.get("text", "")
        for e in team.store.read_transcript("main", "alice")
        if e.kind == TranscriptKind.MESSAGE and e.body["role"] == "assistant"
    ]
    assert len(saved[0]) < context.MAX_REPLY_CHARS + 200 and "accord cut this reply" in saved[0]
    # Every later call carries the cut reply, not the 10 MB one.
    assert all(len(r.raw) < 1_000_000 for r in fake_openai.requests[1:])
    assert "accord cut this reply" in json.dumps(fake_openai.requests[1].body)


def test_impossible_usage_is_replaced_by_an_estimate_and_marked(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("t"))
    fake_openai.negative_usage()
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"})).say("done")
    make_agent(team, local, repo).run(once=True)
    total = team.store.usage_totals("main")[0]
    assert total.calls == 3 and 0 < total.tokens < 100_000
    marked = [e for e in team.store.read_events("main", since=0) if e.kind == "usage_suspect"]
    assert len(marked) == 1
    assert "input tokens -7" in marked[0].payload["why"]
    assert "output tokens 10000000000000" in marked[0].payload["why"]
    assert marked[0].payload["recorded"]["input_tokens"] > 0


def test_the_same_call_over_and_over_is_nudged_then_stopped(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("t"))
    for _ in range(REPEAT_STOP):
        fake_openai.call_tools(("list_files", {"path": "."}))
    outcome = make_agent(team, local, repo).run(once=True)
    fake_openai.assert_complete()
    assert outcome.reason == "model_error" and "5 times in a row" in outcome.detail
    bodies = [json.dumps(r.body) for r in fake_openai.requests]
    nudged = [n for n, b in enumerate(bodies) if "You are repeating yourself" in b]
    assert nudged and nudged[0] == REPEAT_NUDGE  # the request after the third call
    results = [
        r
        for e in team.store.read_transcript("main", "alice")
        if e.kind == TranscriptKind.MESSAGE
        for r in e.body.get("tool_results", ())
    ]
    assert results[-1]["error"] and results[-1]["content"].startswith("not run:")
    assert team.board.get(1).status == TaskStatus.PENDING
    assert any("repeated the same call" in body for body in told_lead(team))


def test_different_calls_are_not_counted_as_repeats(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("t"))
    for n in range(REPEAT_STOP + 1):
        fake_openai.call_tools(("list_files", {"path": "." if n % 2 else "src"}))
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"})).say("done")
    assert make_agent(team, local, repo).run(once=True).reason == "idle"
    assert not any("repeating yourself" in json.dumps(r.body) for r in fake_openai.requests)


def test_a_too_long_prompt_teaches_the_window_then_compacts_and_retries(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("long work"))
    for i in range(10):
        fake_openai.call_tools(("bash", {"command": f"echo step {i} " + "x" * 600}))
    fake_openai.context_exceeded(2048, 3100)
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"})).say("done")
    assert local.context_window == 32_768  # what a local server is assumed to have
    assert make_agent(team, local, repo).run(once=True).reason == "idle"
    fake_openai.assert_complete()
    assert team.board.get(1).status == TaskStatus.COMPLETED
    learned = [
        e for e in team.store.read_events("main", since=0) if e.kind == "context_window_learned"
    ]
    assert learned[0].payload["window"] == 2048 and learned[0].payload["was"] == 32_768
    assert local.context_window == 2048
    refused, retried = fake_openai.requests[10], fake_openai.requests[11]
    assert len(retried.raw) < len(refused.raw)
    assert "folded" in json.dumps(retried.body)


def test_a_window_that_nothing_can_fold_into_stops_the_member(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("t"))
    fake_openai.context_exceeded(1024)
    outcome = make_agent(team, local, repo).run(once=True)
    assert outcome.reason == "model_error" and "maximum context length is 1024" in outcome.detail


def test_the_context_window_is_a_setting_per_model(
    team: Team, repo: Path, local: OpenAIModel
) -> None:
    config = parse_config('[models."openai:qwen3"]\ncontext_window = 8192\n')
    make_agent(team, local, repo, config)
    assert local.context_window == 8192
    with pytest.raises(Exception, match="context_window"):
        parse_config('[models."openai:qwen3"]\ncontext_window = -1\n')
    # A misspelt model name would apply to nothing: it is refused, as in [prices].
    for table in (
        "[models.'opnai-qwen3']\ncontext_window = 8192",
        "[prices.'opnai-qwen3']\ninput = 1\noutput = 2",
    ):
        with pytest.raises(Exception, match="'opnai-qwen3' is not a model name"):
            parse_config(table + "\n")


def test_anthropic_outage_gives_the_task_back_too(
    team: Team, repo: Path, sleeps: list[float]
) -> None:
    team.board.add(NewTask("t", max_attempts=1))
    with FakeAnthropic() as fake:
        fake.html().empty().not_json()
        model = AnthropicModel(
            "claude-haiku-4-5", api_key="k", base_url=fake.base_url, sleep=sleeps.append,
            max_retries=2,
        )  # fmt: skip
        outcome = make_agent(team, model, repo).run(once=True)
        model.close()
    assert outcome.reason == "model_error" and "gave up after 3 attempts" in outcome.detail
    assert team.board.get(1).attempts == 0 and len(sleeps) == 2


def test_usage_check_takes_real_counts_as_they_are() -> None:
    from accord.llm.base import Usage, checked_usage

    big = Usage(input_tokens=500_000, output_tokens=100_000, cache_read_tokens=90_000)
    kept, wrong = checked_usage(
        big, input_estimate=10, output_estimate=10, context_window=200_000, max_tokens=64_000
    )
    assert kept == big and wrong == []
    fixed, wrong = checked_usage(
        Usage(-1, 10**9), input_estimate=42, output_estimate=7, context_window=8192,
        max_tokens=8192,
    )  # fmt: skip
    assert fixed == Usage(42, 7) and len(wrong) == 2


def test_cache_reads_and_writes_reach_the_ledger_priced(
    team: Team, repo: Path, sleeps: list[float]
) -> None:
    from accord.llm.prices import price_for

    team.board.add(NewTask("t"))
    with FakeAnthropic(prompt_cache=True, min_cache_tokens=1024) as fake:
        for n in range(3):
            fake.call_tools(("bash", {"command": f"seq {n} {n + 200}"}))
        fake.call_tools(("task_complete", {"task_id": 1, "result": "ok"})).say("done")
        model = AnthropicModel("claude-sonnet-4-5", api_key="k", base_url=fake.base_url)
        # A custom base URL is unpriced unless told; no cache prices: Anthropic's ratios.
        config = parse_config(
            '[prices."anthropic:claude-sonnet-4-5"]\ninput = 3.0\noutput = 15.0\n'
        )
        make_agent(team, model, repo, config).run(once=True)
        model.close()
        fake.assert_complete()
    total = team.store.usage_totals("main")[0]
    assert total.calls == 5 and total.unpriced_calls == 0
    assert total.cache_write_tokens > 1024 and total.cache_read_tokens > 4 * 1024
    price = price_for("anthropic:claude-sonnet-4-5")
    assert price is not None and price.input == 3.0
    expected = (
        total.input_tokens * price.input
        + total.output_tokens * price.output
        + total.cache_read_tokens * price.input * 0.1
        + total.cache_write_tokens * price.input * 1.25
    ) / 1e6
    assert total.cost_usd == pytest.approx(expected)


# -- the same, as real `accord agent` processes -------------------------------


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "proj"
    root.mkdir()
    assert _accord(root, "init", "--team", "main").returncode == 0
    toml = root / "accord.toml"
    # One retry, so an outage is given up on within a second.
    toml.write_text(toml.read_text().replace("max_retries = 4", "max_retries = 1"))
    assert _accord(root, "member", "add", "lead", "--role", "lead").returncode == 0
    added = json.loads(_accord(root, "member", "add", "alice", "--json").stdout)
    assert _accord(root, "task", "add", "needs the model").returncode == 0
    return root, {"ACCORD_MEMBER": "alice", "ACCORD_TOKEN": added["token"], "ACCORD_TEAM": "main"}


def test_an_agent_process_rides_out_a_broken_reply_and_stops_clearly_on_an_outage(
    project: tuple[Path, dict[str, str]], fake_openai: FakeOpenAI
) -> None:
    from accord.store import open_store

    root, env = project
    model = f"openai:qwen3@{fake_openai.base_url}"
    # A broken reply is retried; then the server goes down for good.
    fake_openai.html().call_tools(("list_files", {"path": "."}))
    fake_openai.fail(503).fail(503)
    done = _accord(root, "agent", "--member", "alice", "--model", model, "--once", env=env)
    fake_openai.assert_complete()
    assert done.returncode == 1
    assert "model_error" in done.stdout + done.stderr and "HTTP 503" in done.stdout + done.stderr
    with open_store(str(root / ".accord" / "accord.db")) as store:
        task = store.get_task("main", 1)
        assert task.status == TaskStatus.PENDING and task.attempts == 0
        stopped = [e for e in store.read_events("main", since=0) if e.kind == "member_stopped"]
        assert stopped[-1].payload["reason"] == "model_error"
        assert "gave up after 2 attempts" in stopped[-1].payload["detail"]
    # The next process picks the task up again, with all its attempts.
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"})).say("done")
    done = _accord(root, "agent", "--member", "alice", "--model", model, "--once", env=env)
    assert done.returncode == 0, done.stderr
    # It took the task back and carried on with the same conversation.
    resumed = fake_openai.requests[4].body["messages"]
    assert any(m["role"] == "tool" for m in resumed)
    with open_store(str(root / ".accord" / "accord.db")) as store:
        task = store.get_task("main", 1)
        assert task.status == TaskStatus.COMPLETED and task.attempts == 1


def test_a_learned_window_outlives_a_restart(
    team: Team, repo: Path, fake_openai: FakeOpenAI, sleeps: list[float]
) -> None:
    team.board.add(NewTask("long work"))
    for i in range(8):
        fake_openai.call_tools(("bash", {"command": f"echo step {i} " + "x" * 600}))
    fake_openai.context_exceeded(4096)
    fake_openai.call_tools(("list_files", {"path": "."}))
    first = OpenAIModel("qwen3", base_url=fake_openai.base_url, sleep=sleeps.append)
    agent = make_agent(team, first, repo)
    agent.model.stream = _then_interrupt(agent.model.stream, after=10)  # type: ignore[method-assign]
    agent.run(once=True)
    first.close()
    assert first.context_window == 4096
    # A new process, a new adapter that assumes 32k: the transcript tells it otherwise.
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"})).say("done")
    second = OpenAIModel("qwen3", base_url=fake_openai.base_url, sleep=sleeps.append)
    make_agent(team, second, repo).run(once=True)
    second.close()
    assert second.context_window == 4096
    fake_openai.assert_complete()
    assert team.board.get(1).status == TaskStatus.COMPLETED


def _then_interrupt(call: Callable[..., object], after: int) -> Callable[..., object]:
    """The process "dies" (KeyboardInterrupt) at call number ``after + 1`` (the agent
    calls ``Model.stream``)."""
    calls = [0]

    def wrapped(*args: object) -> object:
        calls[0] += 1
        if calls[0] > after:
            raise KeyboardInterrupt
        return call(*args)

    return wrapped


def test_a_server_that_reports_no_usage_is_estimated_and_marked_not_zero(
    team: Team, repo: Path, fake_openai: FakeOpenAI, local: OpenAIModel
) -> None:
    team.board.add(NewTask("t"))
    fake_openai.call_tools(("task_complete", {"task_id": 1, "result": "ok"}))
    fake_openai.say("done", omit_usage=True)
    make_agent(team, local, repo).run(once=True)
    total = team.store.usage_totals("main")[0]
    assert total.calls == 2 and total.input_tokens > 10  # an estimate, not 0
    marked = [e for e in team.store.read_events("main", since=0) if e.kind == "usage_suspect"]
    assert [e.payload["why"] for e in marked] == ["the server reported no usage"]
