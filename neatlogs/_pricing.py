"""USD prices per million tokens, and the cost of one call's usage."""

from __future__ import annotations

from typing import Any

# model: (input, cached input, output) USD per 1M tokens; cached input None = no cache discount.
PRICES: dict[str, tuple[float, float | None, float]] = {
    "gpt-5": (1.25, 0.125, 10.0),
    "gpt-5-mini": (0.25, 0.025, 2.0),
    "gpt-5-nano": (0.05, 0.005, 0.40),
    "gpt-4.1": (2.0, 0.50, 8.0),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-4o": (2.50, 1.25, 10.0),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4-turbo": (10.0, None, 30.0),
    "gpt-4": (30.0, None, 60.0),
    "gpt-3.5-turbo": (0.50, None, 1.50),
    "gpt-3.5-turbo-instruct": (1.50, None, 2.0),
    "o1": (15.0, 7.50, 60.0),
    "o1-mini": (1.10, 0.55, 4.40),
    "o3": (2.0, 0.50, 8.0),
    "o3-mini": (1.10, 0.55, 4.40),
    "o4-mini": (1.10, 0.275, 4.40),
    "davinci-002": (2.0, None, 2.0),
    "babbage-002": (0.40, None, 0.40),
    "text-embedding-3-small": (0.02, None, 0.0),
    "text-embedding-3-large": (0.13, None, 0.0),
    "text-embedding-ada-002": (0.10, None, 0.0),
}


def price_for(model: str | None) -> tuple[float, float | None, float] | None:
    """The price row for a model name, also for dated snapshots such as `gpt-4o-2024-08-06`."""
    if not model:
        return None
    model = model.split("/")[-1]
    row = PRICES.get(model)
    if row is not None:
        return row
    best = ""
    for name in PRICES:
        if model.startswith(name + "-") and len(name) > len(best):
            best = name
    return PRICES.get(best) if best else None


def cost_usd(model: str | None, usage: dict[str, Any] | None) -> float | None:
    """Cost of one call in USD, or None when the model or the usage is unknown."""
    row = price_for(model)
    if row is None or not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int(usage.get("cached_tokens") or 0) if row[1] is not None else 0
    input_price, cached_price, output_price = row
    total = (prompt - cached) * input_price + cached * (cached_price or 0.0) + completion * output_price
    return round(total / 1e6, 10)
