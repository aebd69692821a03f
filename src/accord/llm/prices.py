"""What a model call costs: a price table shipped here, overridable in accord.toml.

Prices are US dollars per million tokens, for input, output, cache reads and
cache writes. A model with no known price is *unpriced*: its calls are stored
with a NULL cost and counted apart, never as zero. A local model is free only
when the user says so (``[prices."openai:qwen3"] input = 0 ...``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from accord.llm.base import (
    Model,
    ModelName,
    ModelRequest,
    ModelResponse,
    Usage,
    checked_usage,
    estimate_tokens,
)
from accord.types import UsageRecord


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        read = self.input * 0.1 if self.cache_read is None else self.cache_read
        write = self.input * 1.25 if self.cache_write is None else self.cache_write
        total = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * read
            + usage.cache_write_tokens * write
        )
        return total / 1_000_000


# Public list prices (USD per million tokens), as published by each provider.
PRICES: dict[str, Price] = {
    "anthropic:claude-opus-4-5": Price(5.0, 25.0, 0.50, 6.25),
    "anthropic:claude-opus-4-1": Price(15.0, 75.0, 1.50, 18.75),
    "anthropic:claude-opus-4": Price(15.0, 75.0, 1.50, 18.75),
    "anthropic:claude-sonnet-4-5": Price(3.0, 15.0, 0.30, 3.75),
    "anthropic:claude-sonnet-4": Price(3.0, 15.0, 0.30, 3.75),
    "anthropic:claude-haiku-4-5": Price(1.0, 5.0, 0.10, 1.25),
    "anthropic:claude-3-5-haiku": Price(0.80, 4.0, 0.08, 1.0),
    "openai:gpt-5": Price(1.25, 10.0, 0.125, 0.0),
    "openai:gpt-5-mini": Price(0.25, 2.0, 0.025, 0.0),
    "openai:gpt-5-nano": Price(0.05, 0.40, 0.005, 0.0),
    "openai:gpt-4.1": Price(2.0, 8.0, 0.50, 0.0),
    "openai:gpt-4.1-mini": Price(0.40, 1.60, 0.10, 0.0),
    "openai:gpt-4o": Price(2.50, 10.0, 1.25, 0.0),
    "openai:gpt-4o-mini": Price(0.15, 0.60, 0.075, 0.0),
}


# A dated snapshot or alias of a priced model: claude-sonnet-4-5-20250929, gpt-4o-2024-08-06.
_SNAPSHOT = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)")


def price_for(model: str, overrides: dict[str, Price] | None = None) -> Price | None:
    """The price of ``model`` (``PROVIDER:MODEL[@URL]``), or None when unknown.

    Dated snapshots (``claude-sonnet-4-5-20250929``) take their family's price.
    A model served from a custom base URL has no shipped price: only an override
    prices it.
    """
    overrides = overrides or {}
    if model in overrides:
        return overrides[model]
    name = ModelName.parse(model)
    plain = f"{name.provider}:{name.model}"
    if plain in overrides:
        return overrides[plain]
    if name.base_url is not None or name.provider == "scripted":
        return None
    if plain in PRICES:
        return PRICES[plain]
    for key, price in PRICES.items():
        if _SNAPSHOT.fullmatch(plain[len(key) :]) and plain.startswith(key):
            return price
    return None


def cost_of(model: str, usage: Usage, overrides: dict[str, Price] | None = None) -> float | None:
    price = price_for(model, overrides)
    return None if price is None else price.cost(usage)


def usage_record(
    member: str,
    model: Model,
    response: ModelResponse,
    request: ModelRequest,
    task_id: int | None,
    prices: dict[str, Price] | None = None,
) -> UsageRecord:
    """The usage row of one call: the server's counts when they are believable, else
    estimates with the reason (promise 10: never a silent zero, nor a silently wrong
    count), priced at the model's price (None: unpriced)."""
    name = str(model.name)
    usage, wrong = checked_usage(
        response.usage,
        input_estimate=estimate_tokens(request),
        output_estimate=max(1, len(json.dumps(response.message.to_dict())) // 4),
        context_window=model.context_window,
        max_tokens=request.max_tokens,
    )
    return UsageRecord(
        member=member,
        model=name,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cost_usd=cost_of(name, usage, prices),
        task_id=task_id,
        latency_seconds=response.latency_seconds,
        suspect="; ".join(wrong) or None,
    )
