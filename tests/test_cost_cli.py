"""Spend and history from the command line: ``accord cost``, ``accord member transcript``,
``accord agent``'s errors and a scripted agent run end to end, and the price table.

Usage rows are recorded straight into the store (so totals are known exactly)
or by running an Agent with the scripted model. An unpriced call is stored
with a NULL cost and counted apart: it must never show up as money spent.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from accord.agent.launch import build_agent
from accord.config import Config, locate, parse_config
from accord.llm.base import Usage
from accord.llm.prices import PRICES, Price, cost_of, price_for
from accord.llm.scripted import ScriptedModel, Step, call, reply
from accord.store import Store
from accord.team import Team
from accord.testing.cli import js, ok, one_error
from accord.types import NewTask, TaskStatus, TranscriptEntry, TranscriptKind, UsageRecord
from conftest import Cli

SONNET = "anthropic:claude-sonnet-4-5"
MINI = "openai:gpt-5-mini"
LOCAL = "openai:qwen3@http://localhost:11434/v1"


@pytest.fixture(autouse=True)
def _keep_sigterm() -> Iterator[None]:
    # `accord agent` installs a SIGTERM handler; give the test process its own back.
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    # Captured output is not a terminal, so rich wraps tables at 80 columns; the cost
    # table's last cell ("$0.0106 (+1 unpriced)") then splits across lines.
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def store(cli: Cli, project: Path, make_store: Callable[..., Store]) -> Store:
    """The project's own store (team main: lead, alice, bob), opened beside the CLI."""
    ok(cli("init", "--team", "main"))
    ok(cli("member", "add", "lead", "--role", "lead"))
    ok(cli("member", "add", "alice"))
    ok(cli("member", "add", "bob"))
    return make_store(str(project / ".accord" / "accord.db"))


def usage(
    member: str, model: str, i: int, o: int, task: int | None = None, **kw: int
) -> UsageRecord:
    """A usage row priced the way the agent loop prices it (None when unpriced)."""
    u = Usage(i, o, kw.get("cache_read", 0), kw.get("cache_write", 0))
    return UsageRecord(
        member=member,
        model=model,
        input_tokens=i,
        output_tokens=o,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cost_usd=cost_of(model, u),
        task_id=task,
        latency_seconds=0.5,
    )


ROWS = [
    usage("alice", SONNET, 1000, 200, task=1),  # 0.003 + 0.003 = 0.006
    usage("alice", LOCAL, 500, 100, task=2),  # unpriced
    usage("bob", SONNET, 2000, 100, task=1),  # 0.006 + 0.0015 = 0.0075
    usage("bob", MINI, 4000, 1000, cache_read=2000),  # 0.001 + 0.002 + 0.00005 = 0.00305
    usage("bob", LOCAL, 300, 50, task=2),  # unpriced
    usage("lead", "scripted:plan.json", 10, 10),  # unpriced
]


@pytest.fixture
def spent(store: Store) -> Store:
    for row in ROWS:
        store.record_usage("main", row)
    return store


def by_key(out: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {r["key"]: r for r in out["rows"]}


# accord cost -------------------------------------------------------------------


def test_the_rows_store_null_for_unpriced_calls(spent: Store, project: Path) -> None:
    db = sqlite3.connect(project / ".accord" / "accord.db")
    try:
        costs = dict(
            db.execute("SELECT model, cost_usd FROM usage WHERE member = 'alice'").fetchall()
        )
    finally:
        db.close()
    assert costs[LOCAL] is None  # unpriced is NULL, never 0
    assert costs[SONNET] == pytest.approx(0.006)


def test_cost_by_member_json(spent: Store, cli: Cli) -> None:
    out = js(cli("cost", "--json"))
    assert out["v"] == 1 and out["by"] == "member"
    rows = by_key(out)
    assert list(rows) == ["alice", "bob", "lead"]
    alice, bob, lead = rows["alice"], rows["bob"], rows["lead"]
    assert (alice["calls"], alice["input_tokens"], alice["output_tokens"]) == (2, 1500, 300)
    assert alice["cost_usd"] == pytest.approx(0.006) and alice["unpriced_calls"] == 1
    assert bob["calls"] == 3 and bob["cache_read_tokens"] == 2000
    assert bob["cost_usd"] == pytest.approx(0.0075 + 0.00305) and bob["unpriced_calls"] == 1
    assert lead["cost_usd"] == 0 and lead["unpriced_calls"] == 1 == lead["calls"]
    total = out["total"]
    assert total["key"] is None
    assert total["calls"] == len(ROWS) == sum(r["calls"] for r in rows.values())
    assert total["input_tokens"] == sum(r.input_tokens for r in ROWS)
    assert total["output_tokens"] == sum(r.output_tokens for r in ROWS)
    assert total["cost_usd"] == pytest.approx(0.006 + 0.0075 + 0.00305)
    assert total["unpriced_calls"] == 3


def test_cost_by_member_table(spent: Store, cli: Cli) -> None:
    out = ok(cli("cost")).out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert {"member", "alice", "bob", "lead", "total"} <= set(lines)
    assert "$0.0060" in lines["alice"] and "+1 unpriced" in lines["alice"]
    assert "$0.0106" in lines["bob"]
    assert "+3 unpriced" in lines["total"] and "$0.0165" in lines["total"]  # 0.01655


def test_cost_by_task(spent: Store, cli: Cli) -> None:
    out = js(cli("cost", "--by", "task", "--json"))
    rows = by_key(out)
    assert set(rows) == {None, "1", "2"}  # None: calls made outside any task
    assert rows["1"]["calls"] == 2 and rows["1"]["cost_usd"] == pytest.approx(0.0135)
    assert rows["1"]["unpriced_calls"] == 0
    assert rows["2"]["calls"] == 2 and rows["2"]["unpriced_calls"] == 2
    assert rows["2"]["cost_usd"] == 0
    assert rows[None]["calls"] == 2 and rows[None]["unpriced_calls"] == 1
    table = ok(cli("cost", "--by", "task")).out
    assert "#1" in table and "#2" in table and "(none)" in table


def test_cost_by_model(spent: Store, cli: Cli) -> None:
    rows = by_key(js(cli("cost", "--by", "model", "--json")))
    assert set(rows) == {SONNET, MINI, LOCAL, "scripted:plan.json"}
    assert rows[SONNET]["calls"] == 2 and rows[SONNET]["unpriced_calls"] == 0
    assert rows[SONNET]["cost_usd"] == pytest.approx(0.0135)
    assert rows[MINI]["cost_usd"] == pytest.approx(0.00305)
    assert rows[LOCAL] == {**rows[LOCAL], "calls": 2, "unpriced_calls": 2, "cost_usd": 0}
    assert LOCAL in ok(cli("cost", "--by", "model")).out


def test_cost_with_no_calls(store: Store, cli: Cli) -> None:
    assert ok(cli("cost")).out.strip() == "no model calls yet"
    out = js(cli("cost", "--json"))
    assert out["rows"] == []
    assert out["total"]["calls"] == 0 and out["total"]["cost_usd"] == 0
    assert js(cli("cost", "--by", "model", "--json"))["rows"] == []


def test_cost_is_per_team(spent: Store, cli: Cli) -> None:
    ok(cli("team", "create", "other"))
    spent.add_member("other", "zed", token_hash="x")
    spent.record_usage("other", usage("zed", SONNET, 10**6, 0))
    assert js(cli("cost", "--team", "other", "--json"))["total"]["cost_usd"] == pytest.approx(3.0)
    assert js(cli("cost", "--team", "main", "--json"))["total"]["calls"] == len(ROWS)


# accord member transcript ---------------------------------------------------------


def run_agent(
    store: Store,
    project: Path,
    steps: list[Step],
    *,
    config: Config | None = None,
    member: str = "alice",
    model_name: str = "scripted:model",
) -> ScriptedModel:
    cfg = config or Config()
    services = Team.open(store, "main", cfg, project)
    model = ScriptedModel(steps, name=model_name)
    agent = build_agent(services, member, cfg, project, model=model, idle_wait=0.05)
    assert agent.run(once=True).reason == "idle"
    model.assert_complete()
    return model


def two_tasks(store: Store, project: Path) -> None:
    board = Team.open(store, "main", Config(), project).board
    board.add(NewTask("write notes"))
    board.add(NewTask("read notes", blocked_by=(1,)))
    run_agent(
        store,
        project,
        [
            reply("", call("write_file", {"path": "notes.txt", "content": "remember"})),
            reply("", call("task_complete", {"task_id": 1, "result": "notes.txt written"})),
            reply("First done."),
            reply("", call("read_file", {"path": "notes.txt"})),
            reply("", call("task_complete", {"task_id": 2, "result": "read it"})),
            reply("Second done."),
        ],
    )


def test_transcript_for_people(store: Store, project: Path, cli: Cli) -> None:
    two_tasks(store, project)
    out = ok(cli("member", "transcript", "alice")).out
    assert "session start task #1" in out and "session start task #2" in out
    assert "user: # Your task #1: write notes" in out
    assert 'assistant calls write_file({"path": "notes.txt"' in out
    assert "task_complete -> task #1 is completed" in out
    assert "assistant: First done." in out and "assistant: Second done." in out
    assert out.index("First done.") < out.index("session start task #2")


def test_transcript_json_session_and_last(store: Store, project: Path, cli: Cli) -> None:
    two_tasks(store, project)
    everything = js(cli("member", "transcript", "alice", "--json"))
    assert all(e["v"] == 1 and e["member"] == "alice" for e in everything)
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {e["session"] for e in everything} == {1, 2}
    assert everything[0]["kind"] == "session" and everything[0]["body"]["event"] == "start"
    calls = [c for e in everything for c in e["body"].get("tool_calls", ())]
    results = [r for e in everything for r in e["body"].get("tool_results", ())]
    assert [c["name"] for c in calls] == [
        "write_file",
        "task_complete",
        "read_file",
        "task_complete",
    ]
    assert {r["call_id"] for r in results} == {c["id"] for c in calls}

    second = js(cli("member", "transcript", "alice", "--session", "2", "--json"))
    assert second == [e for e in everything if e["session"] == 2]
    assert all(e["task_id"] == 2 for e in second)

    last = js(cli("member", "transcript", "alice", "--last", "2", "--json"))
    assert last == everything[-2:]
    assert last[-1]["body"] == {"event": "end", "why": "turn ended"}
    both = js(cli("member", "transcript", "alice", "--session", "1", "--last", "1", "--json"))
    assert both == [e for e in everything if e["session"] == 1][-1:]
    text = ok(cli("member", "transcript", "alice", "--last", "1")).out
    assert len(text.splitlines()) == 1 and "session end" in text


def test_transcript_of_appended_entries(store: Store, cli: Cli) -> None:
    long_text = "\n".join(f"line {n}" for n in range(50))
    store.append_transcript(
        "main",
        [
            TranscriptEntry("bob", 1, TranscriptKind.SESSION, {"event": "start", "task_id": 7}, 7),
            TranscriptEntry("bob", 1, TranscriptKind.MESSAGE, {"role": "user", "text": long_text}),
            TranscriptEntry(
                "bob",
                1,
                TranscriptKind.MESSAGE,
                {
                    "role": "user",
                    "tool_results": [
                        {"call_id": "c1", "name": "bash", "content": "boom", "error": True}
                    ],
                },
            ),
            TranscriptEntry("bob", 1, TranscriptKind.NOTE, {"text": "1 tool call(s) interrupted"}),
            TranscriptEntry(
                "bob", 1, TranscriptKind.COMPACTION, {"summary": "s", "kept_from_seq": 3}
            ),
        ],
    )
    out = ok(cli("member", "transcript", "bob")).out
    assert "session start task #7" in out
    assert "user: line 0" in out and "line 40" in out and "line 41" not in out
    assert "[9 more lines]" in out
    assert "bash -> ERROR boom" in out
    assert "note: 1 tool call(s) interrupted" in out
    assert "compaction: earlier turns folded (kept from #3)" in out
    entries = js(cli("member", "transcript", "bob", "--json"))
    assert [e["kind"] for e in entries] == ["session", "message", "message", "note", "compaction"]


def test_transcript_prints_what_members_wrote_without_escapes(store: Store, cli: Cli) -> None:
    evil = "clear\x1b[2J\x1b]0;title\x07 done"
    store.append_transcript(
        "main",
        [
            TranscriptEntry("bob", 1, TranscriptKind.MESSAGE, {"role": "assistant", "text": evil}),
            TranscriptEntry(
                "bob",
                1,
                TranscriptKind.MESSAGE,
                {
                    "role": "user",
                    "tool_results": [{"call_id": "c", "name": "bash", "content": evil}],
                },
            ),
        ],
    )
    out = ok(cli("member", "transcript", "bob")).out
    assert "\x1b" not in out and "\x07" not in out
    assert "assistant: clear" in out and "done" in out
    # JSON keeps it exact.
    assert js(cli("member", "transcript", "bob", "--json"))[0]["body"]["text"] == evil


def test_transcript_of_a_member_with_none(store: Store, cli: Cli) -> None:
    assert ok(cli("member", "transcript", "bob")).out.strip() == "bob has no transcript yet"
    assert js(cli("member", "transcript", "bob", "--json")) == []
    assert js(cli("member", "transcript", "bob", "--session", "3", "--json")) == []


def test_transcript_of_an_unknown_member(store: Store, cli: Cli) -> None:
    one_error(cli("member", "transcript", "nobody"), 2, "nobody")


# accord agent: bad input fails before any work ---------------------------------------


def member_row(cli: Cli, name: str = "alice") -> dict[str, Any]:
    row: dict[str, Any] = js(cli("member", "show", name, "--json"))
    return row


def test_agent_with_no_model_configured(store: Store, cli: Cli) -> None:
    before = member_row(cli)
    one_error(cli("agent", "--member", "alice"), 2, "no model configured", "--model")
    assert member_row(cli) == before  # nothing started


def test_agent_with_an_unknown_provider(store: Store, cli: Cli) -> None:
    one_error(cli("agent", "--member", "alice", "--model", "foo:bar"), 2, "'foo'", "anthropic")


def test_agent_with_a_malformed_model_name(store: Store, cli: Cli) -> None:
    one_error(cli("agent", "--member", "alice", "--model", "sonet"), 2, "PROVIDER:MODEL")


def test_agent_with_a_missing_anthropic_key(
    store: Store, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    before = member_row(cli)
    one_error(
        cli("agent", "--member", "alice", "--model", "anthropic:claude-x"), 2, "ANTHROPIC_API_KEY"
    )
    assert member_row(cli) == before
    assert js(cli("cost", "--json"))["total"]["calls"] == 0


def test_agent_with_a_missing_openai_key(
    store: Store, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    one_error(cli("agent", "--member", "alice", "--model", MINI), 2, "OPENAI_API_KEY")


def test_a_member_model_from_the_roster_is_used(
    store: Store, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No --model: the member's own model is opened, so its missing key is the error.
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    ok(cli("member", "add", "carol", "--model", "anthropic:claude-sonnet-4-5"))
    one_error(cli("agent", "--member", "carol"), 2, "ANTHROPIC_API_KEY")


def test_a_local_model_needs_no_key(
    store: Store, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing to do, so the (unreachable) server is never called.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = ok(
        cli("agent", "--member", "alice", "--model", "openai:qwen3@http://127.0.0.1:9/v1", "--once")
    )
    assert "alice stopped: idle" in r.out


def test_agent_with_an_unreadable_script(store: Store, cli: Cli, project: Path) -> None:
    one_error(
        cli("agent", "--member", "alice", "--model", f"scripted:{project / 'nope.json'}"),
        2,
        "nope.json",
    )


def test_agent_for_an_unknown_member(store: Store, cli: Cli, project: Path) -> None:
    script = project / "s.json"
    script.write_text("[]")
    one_error(cli("agent", "--member", "nobody", "--model", f"scripted:{script}"), 2, "nobody")


# accord agent: a scripted run end to end --------------------------------------------


def test_scripted_agent_completes_a_task_through_the_cli(
    store: Store, cli: Cli, project: Path
) -> None:
    ok(cli("task", "add", "write greeting", "-d", "put hello in greeting.txt"))
    script = project / "script.json"
    script.write_text(
        json.dumps(
            [
                {
                    "tool_calls": [
                        {
                            "name": "write_file",
                            "arguments": {"path": "greeting.txt", "content": "hello\n"},
                        }
                    ]
                },
                {
                    "text": "Writing done; completing.",
                    "tool_calls": [
                        {"name": "task_complete", "arguments": {"task_id": 1, "result": "written"}}
                    ],
                },
                {"text": "All done."},
            ]
        )
    )
    r = ok(cli("agent", "--member", "alice", "--model", f"scripted:{script}", "--once"))
    assert r.out.strip() == "alice stopped: idle (nothing left to do)"
    assert (project / "greeting.txt").read_text() == "hello\n"
    task = js(cli("task", "show", "1", "--json"))
    assert task["status"] == "completed" and task["result"] == "written"
    assert member_row(cli)["status"] == "stopped"
    # Three calls, all unpriced (a scripted model has no price), none counted as money.
    out = js(cli("cost", "--by", "model", "--json"))
    (row,) = out["rows"]
    assert row["key"] == f"scripted:{script}"
    assert (row["calls"], row["unpriced_calls"], row["cost_usd"]) == (3, 3, 0)
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert "+3 unpriced" in ok(cli("cost")).out
    by_task = by_key(js(cli("cost", "--by", "task", "--json")))
    assert by_task["1"]["calls"] == 3
    kinds = [e["kind"] for e in js(cli("member", "transcript", "alice", "--json"))]
    assert kinds[0] == "session" and kinds[-1] == "session" and kinds.count("message") == 6


def test_scripted_agent_model_error_exits_1_and_releases_the_task(
    store: Store, cli: Cli, project: Path
) -> None:
    ok(cli("task", "add", "fragile"))
    script = project / "script.json"
    script.write_text(json.dumps([{"error": "upstream 500 after 5 attempts"}]))
    r = cli("agent", "--member", "alice", "--model", f"scripted:{script}", "--once")
    assert r.code == 1, r
    assert "model_error" in r.out and "upstream 500" in r.out
    assert js(cli("task", "show", "1", "--json"))["status"] == "pending"


# prices ---------------------------------------------------------------------------------


def test_dated_snapshots_take_their_familys_price() -> None:
    assert price_for("anthropic:claude-sonnet-4-5-20250929") == PRICES[SONNET]
    assert price_for("anthropic:claude-opus-4-1-20250805") == PRICES["anthropic:claude-opus-4-1"]
    assert price_for("anthropic:claude-opus-4-20250514") == PRICES["anthropic:claude-opus-4"]
    assert price_for("anthropic:claude-haiku-4-5-20251001") == PRICES["anthropic:claude-haiku-4-5"]
    # The longest family wins: mini is not priced as its bigger sibling.
    assert price_for("openai:gpt-4o-mini-2024-07-18") == PRICES["openai:gpt-4o-mini"]
    assert price_for("openai:gpt-5-mini-2025-08-07") == PRICES[MINI]


def test_unknown_and_scripted_models_are_unpriced() -> None:
    assert price_for("anthropic:claude-unknown-9") is None
    assert price_for("openai:some-new-model") is None
    assert price_for("scripted:/tmp/plan.json") is None
    # A family name is not a prefix of an unrelated model.
    assert price_for("openai:gpt-50") is None
    assert cost_of("openai:some-new-model", Usage(10**6, 10**6)) is None


def test_a_custom_base_url_is_unpriced_even_for_a_known_model() -> None:
    assert price_for(MINI) is not None
    assert price_for("openai:gpt-5-mini@http://localhost:8000/v1") is None
    assert price_for("anthropic:claude-sonnet-4-5@https://proxy.example/v1") is None


def test_overrides_price_by_exact_or_plain_name() -> None:
    free = Price(0.0, 0.0)
    assert price_for(LOCAL, {LOCAL: free}) == free
    assert price_for(LOCAL, {"openai:qwen3": free}) == free  # plain name covers any URL
    mine = Price(1.0, 1.0)
    assert price_for(SONNET, {SONNET: mine}) == mine  # an override beats the table
    assert price_for(LOCAL, {"openai:other": free}) is None


def test_price_arithmetic() -> None:
    p = Price(3.0, 15.0)  # cache prices default to 10% and 125% of input
    assert p.cost(Usage(1_000_000, 0)) == pytest.approx(3.0)
    assert p.cost(Usage(0, 1_000_000)) == pytest.approx(15.0)
    assert p.cost(Usage(0, 0, 1_000_000, 0)) == pytest.approx(0.3)
    assert p.cost(Usage(0, 0, 0, 1_000_000)) == pytest.approx(3.75)
    assert Price(1.0, 1.0, 0.0, 0.0).cost(Usage(0, 0, 10**6, 10**6)) == 0.0
    assert cost_of(SONNET, Usage(1000, 200)) == pytest.approx(0.006)


def test_a_different_model_is_not_priced_as_its_prefix() -> None:
    assert price_for("openai:gpt-5-pro") is None
    assert price_for("openai:gpt-4.1-nano") is None


def test_prices_in_accord_toml_price_a_local_model_in_an_agent_run(
    store: Store, cli: Cli, project: Path
) -> None:
    toml = project / "accord.toml"
    toml.write_text(
        toml.read_text() + f'\n[prices."{LOCAL}"]\ninput = 2.0\noutput = 10.0\n',
        encoding="utf-8",
    )
    config = locate(project).config
    assert config.prices[LOCAL].input == 2.0
    Team.open(store, "main", config, project).board.add(NewTask("t"))
    big = Usage(input_tokens=500_000, output_tokens=100_000)
    steps: list[Step] = [
        reply("", call("task_complete", {"task_id": 1, "result": "r"}), usage=big),
        reply("ok", usage=big),
    ]
    run_agent(store, project, steps, config=config, model_name=LOCAL)
    out = js(cli("cost", "--by", "model", "--json"))
    (row,) = out["rows"]
    assert row["key"] == LOCAL
    assert row["unpriced_calls"] == 0
    assert row["cost_usd"] == pytest.approx(2 * (0.5 * 2.0 + 0.1 * 10.0))


def test_a_local_model_is_free_only_when_the_user_says_so(store: Store, project: Path) -> None:
    board = Team.open(store, "main", Config(), project).board
    board.add(NewTask("a"))
    board.add(NewTask("b", assignee="bob"))

    def steps(n: int) -> list[Step]:
        return [reply("", call("task_complete", {"task_id": n, "result": "r"})), reply("ok")]

    run_agent(store, project, steps(1), model_name=LOCAL)
    free = parse_config('[prices."openai:qwen3"]\ninput = 0\noutput = 0\n')
    run_agent(store, project, steps(2), config=free, member="bob", model_name=LOCAL)
    alice = store.usage_totals("main", member="alice")[0]
    bob = store.usage_totals("main", member="bob")[0]
    assert (alice.calls, alice.unpriced_calls) == (2, 2)  # no price: unpriced
    assert (bob.calls, bob.unpriced_calls, bob.cost_usd) == (2, 0, 0.0)  # said free: free
    assert board.get(1).status == board.get(2).status == TaskStatus.COMPLETED
