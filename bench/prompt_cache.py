"""Input tokens billed per turn with and without Anthropic prompt caching.

One member works one task for ``--turns`` model calls (default 30) through the
real agent loop and the real ``anthropic`` SDK, against the fake Anthropic
server with its prompt cache modelled (``FakeAnthropic(prompt_cache=True)``:
a prefix ending at a ``cache_control`` breakpoint that was sent before is a
read; breakpoints write; 1,024 tokens at least, as for Sonnet). Every call but
the last runs a ``bash`` command whose output (about 1.5 KB) goes back as the
tool result, so the conversation grows as a real one does.

The same script runs twice in the same process: once as accord sends it (tools,
system prompt and the conversation marked for caching) and once with caching
off, the baseline. Billed input is counted in input-token equivalents, as
Anthropic bills them: input x1, cache writes x1.25, cache reads x0.1.

    python bench/prompt_cache.py              # 30 turns
    python bench/prompt_cache.py --turns 60
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from accord.agent.launch import build_agent
from accord.config import Config
from accord.llm.anthropic import AnthropicModel
from accord.llm.base import ModelRequest, ModelResponse, Usage
from accord.llm.prices import price_for
from accord.store import open_store
from accord.team import TeamServices
from accord.testing.fake_llm import FakeAnthropic
from accord.types import MemberRole, NewTask

TEAM = "bench"
MEMBER = "worker"
MODEL = "claude-sonnet-4-5"


@dataclass(frozen=True, slots=True)
class Turn:
    usage: Usage

    @property
    def billed(self) -> float:
        """Input-token equivalents: what the input side of the call costs."""
        u = self.usage
        return u.input_tokens + 1.25 * u.cache_write_tokens + 0.1 * u.cache_read_tokens


class Recording(AnthropicModel):
    """The adapter, keeping every call's usage."""

    turns: list[Turn]

    def complete(self, request: ModelRequest) -> ModelResponse:
        response = super().complete(request)
        self.turns.append(Turn(response.usage))
        return response


def run(folder: Path, turns: int, cache: bool) -> list[Turn]:
    folder.mkdir(parents=True)
    store = open_store(str(folder / "accord.db"), create=True)
    store.create_team(TEAM)
    store.add_member(TEAM, "lead", token_hash="x", role=MemberRole.LEAD)
    store.add_member(TEAM, MEMBER, token_hash="x")
    store.add_task(
        TEAM,
        NewTask("survey the numbers", "Print the numbers in several ways, then complete."),
        max_attempts=3,
    )
    with FakeAnthropic(prompt_cache=True, min_cache_tokens=1024) as fake:
        for n in range(turns - 2):
            fake.call_tools(("bash", {"command": f"seq {n} {n + 300} | paste -sd ' '"}))
        fake.call_tools(("task_complete", {"task_id": 1, "result": "surveyed"}))
        fake.say("Done.")
        model = Recording(MODEL, api_key="bench", base_url=fake.base_url, prompt_cache=cache)
        model.turns = []
        config = Config()
        services = TeamServices.open(store, TEAM, config, folder)
        agent = build_agent(services, MEMBER, config, folder, model=model, idle_wait=0.01)
        agent.run(once=True)
        model.close()
        fake.assert_complete()
    store.close()
    return model.turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="accord-bench-cache-") as tmp:
        cached = run(Path(tmp) / "cached", args.turns, cache=True)
        plain = run(Path(tmp) / "plain", args.turns, cache=False)
    print(f"{args.turns} turns, {MODEL} on the fake Anthropic server (prompt cache modelled)")
    print(f"cpus {os.cpu_count()}; billed input in input-token equivalents")
    print()
    head = (
        f"{'turn':>4}  {'no cache':>9}  {'input':>7}  {'write':>7}  {'read':>7}  "
        f"{'billed':>9}  {'saved':>6}"
    )
    print(head)
    print("-" * len(head))
    for n, (c, p) in enumerate(zip(cached, plain, strict=True), start=1):
        u = c.usage
        saved = 1 - c.billed / p.billed if p.billed else 0.0
        print(
            f"{n:>4}  {p.billed:>9,.0f}  {u.input_tokens:>7,}  {u.cache_write_tokens:>7,}  "
            f"{u.cache_read_tokens:>7,}  {c.billed:>9,.1f}  {saved:>6.0%}"
        )
    total_plain = sum(t.billed for t in plain)
    total_cached = sum(t.billed for t in cached)
    print("-" * len(head))
    print(f"{'all':>4}  {total_plain:>9,.0f}  {'':>7}  {'':>7}  {'':>7}  {total_cached:>9,.0f}  "
          f"{1 - total_cached / total_plain:>6.0%}")  # fmt: skip
    price = price_for(f"anthropic:{MODEL}")
    if price is not None:
        print()
        print(
            f"input side at {MODEL} list prices: ${total_plain * price.input / 1e6:.4f} without "
            f"caching, ${total_cached * price.input / 1e6:.4f} with it"
        )


if __name__ == "__main__":
    main()
