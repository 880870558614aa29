"""Model prices (USD per million tokens) and the cost of one call's usage.

The table ships as data (`neatlogs/pricing.json`); `set_prices()` adds, changes or removes models at
run time. A model without a price gives `cost_usd = None`, never a made-up number.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from importlib import resources
from typing import Any, NamedTuple

PRICE_FIELDS = ("input", "cached_input", "output", "reasoning", "cache_write")
_REQUIRED_FIELDS = ("input", "output")
# Dated snapshots and version suffixes share their base model's price: gpt-4o-2024-08-06, gpt-4-0613,
# claude-haiku-4-5-20251001, claude-sonnet-4-5@20250929 (Vertex AI's spelling).
_SNAPSHOT = re.compile(r"^(?P<base>.+?)(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|-\d{4})$")


class Price(NamedTuple):
    """One model's prices in USD per million tokens; None = billed like input / output.

    `cached_input` prices prompt tokens read from a cache, `cache_write` those written to one (Anthropic
    bills writes apart; OpenAI does not, and its rows leave it None)."""

    input: float
    cached_input: float | None
    output: float
    reasoning: float | None
    cache_write: float | None = None


def _load_default() -> dict[str, Price]:
    data = json.loads(resources.files("neatlogs").joinpath("pricing.json").read_text(encoding="utf-8"))
    return _parse_table(data["models"], "pricing.json")


def _number(value: Any, where: str, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        allowed = "a number >= 0 (USD per 1M tokens)" + (" or None" if optional else "")
        raise ValueError(f"{where} must be {allowed}, got {value!r}")
    return float(value)


def _parse_price(model: str, row: Any, source: str) -> Price:
    where = f"{source}[{model!r}]"
    if not isinstance(row, Mapping):
        raise TypeError(
            f"{where} must be a dict with {', '.join(PRICE_FIELDS)} (or None to remove the model), "
            f"got {type(row).__name__}"
        )
    unknown = sorted(str(key) for key in row if key not in PRICE_FIELDS)
    if unknown:
        raise ValueError(
            f"{where} has unknown price field(s) {', '.join(unknown)}; allowed: {', '.join(PRICE_FIELDS)}"
        )
    missing = [name for name in _REQUIRED_FIELDS if name not in row]
    if missing:
        raise ValueError(f"{where} needs {' and '.join(missing)} (USD per 1M tokens)")
    input_price = _number(row["input"], f"{where}['input']", optional=False)
    output_price = _number(row["output"], f"{where}['output']", optional=False)
    assert input_price is not None and output_price is not None
    return Price(
        input_price,
        _number(row.get("cached_input"), f"{where}['cached_input']", optional=True),
        output_price,
        _number(row.get("reasoning"), f"{where}['reasoning']", optional=True),
        _number(row.get("cache_write"), f"{where}['cache_write']", optional=True),
    )


def _parse_table(table: Any, source: str) -> dict[str, Price]:
    if not isinstance(table, Mapping):
        raise TypeError(f"{source} must be a dict of model name -> prices, got {type(table).__name__}")
    parsed: dict[str, Price] = {}
    for model, row in table.items():
        if not isinstance(model, str) or not model.strip():
            raise TypeError(f"{source} keys must be non-empty model names, got {model!r}")
        parsed[model.strip().lower()] = _parse_price(model, row, source)
    return parsed


PRICES = _load_default()  # replaced (never changed in place) by set_prices
_update_lock = threading.Lock()


def set_prices(prices: Mapping[str, Any], *, replace: bool = False) -> None:
    """Add or change model prices (USD per 1M tokens: input, output, optional cached_input, reasoning,
    cache_write).

    `prices` maps model names to `{"input": ..., "output": ..., "cached_input": ..., "reasoning": ...,
    "cache_write": ...}`, or
    to None to remove a model; a dict shaped like pricing.json (`{"models": {...}}`) works too. With
    `replace=True` the given table replaces the bundled one. Everything is checked before anything
    changes; a bad entry raises TypeError/ValueError naming it. Calls made afterwards use the new prices.
    """
    global PRICES
    if isinstance(prices, Mapping) and isinstance(prices.get("models"), Mapping):
        prices = prices["models"]
    if not isinstance(prices, Mapping):
        raise TypeError(f"prices must be a dict of model name -> prices, got {type(prices).__name__}")
    removed = {str(model).strip().lower() for model, row in prices.items() if row is None}
    changed = _parse_table({model: row for model, row in prices.items() if row is not None}, "prices")
    with _update_lock:
        table = {} if replace else dict(PRICES)
        for model in removed:
            table.pop(model, None)
        table.update(changed)
        PRICES = table  # one reference swap: readers see the old or the new table, never half of one


def get_prices() -> dict[str, dict[str, float | None]]:
    """A copy of the current price table: model -> {input, cached_input, output, reasoning, cache_write}."""
    return {model: price._asdict() for model, price in PRICES.items()}


# model name -> its price in the table it was looked up in; one table at a time, because a table is
# replaced, never changed, by set_prices.
_looked_up: tuple[Mapping[str, Price] | None, dict[str, Price | None]] = (None, {})


def price_for(model: str | None, table: Mapping[str, Price] | None = None) -> Price | None:
    """The prices of a model name; also for dated snapshots (`gpt-4o-2024-08-06`) and `provider/model`."""
    global _looked_up
    if not model or not isinstance(model, str):
        return None
    if table is None:
        table = PRICES
    cached_table, cache = _looked_up
    if cached_table is not table:
        cache = {}
        _looked_up = (table, cache)
    elif model in cache:
        return cache[model]
    price = _find_price(model, table)
    if len(cache) < 4096:  # model names come from callers: keep the memo bounded
        cache[model] = price
    return price


def _find_price(model: str, table: Mapping[str, Price]) -> Price | None:
    name = model.strip().lower()
    price = table.get(name)
    if price is None and "/" in name:
        name = name.rsplit("/", 1)[1]
        price = table.get(name)
    if price is None:
        snapshot = _SNAPSHOT.match(name)
        if snapshot is not None:
            price = table.get(snapshot.group("base"))
    return price


def _count(usage: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _detail(usage: Mapping[str, Any], flat: str, nested: tuple[str, ...]) -> int:
    found = _count(usage, flat)
    if found is not None:
        return found
    for container in nested:  # the Responses API and raw usage dicts nest the details
        details = usage.get(container)
        if type(details) is dict or isinstance(details, Mapping):
            found = _count(details, flat)
            if found is not None:
                return found
    return 0


_CACHED_IN = ("prompt_tokens_details", "input_tokens_details")
_REASONING_IN = ("completion_tokens_details", "output_tokens_details")


class TokenCounts(NamedTuple):
    """The tokens of one call, whichever API named them (None: the usage does not say)."""

    input: int | None
    output: int | None
    cached_input: int
    reasoning: int


# Made on the dispatcher's thread (usage statistics) and the sinks', never on the caller's.
def token_counts(usage: Mapping[str, Any] | None) -> TokenCounts:
    """(input, output, cached input, reasoning) tokens from a record's usage, whichever API named them."""
    if type(usage) is not dict:
        if not isinstance(usage, Mapping):
            return TokenCounts(None, None, 0, 0)
    elif (
        # The record's own usage shape (every neatlogs reader makes it): read without searching.
        type(prompt := usage.get("prompt_tokens")) is int
        and type(completion := usage.get("completion_tokens")) is int
        and "prompt_tokens_details" not in usage
        and "completion_tokens_details" not in usage
        and "input_tokens_details" not in usage
        and "output_tokens_details" not in usage
    ):
        cached, reasoning = usage.get("cached_tokens"), usage.get("reasoning_tokens")
        if cached is None:  # Anthropic's cache reads
            cached = usage.get("cache_read_tokens")
        return TokenCounts(
            prompt,
            completion,
            cached if type(cached) is int else 0,
            reasoning if type(reasoning) is int else 0,
        )
    prompt = _count(usage, "prompt_tokens", "input_tokens")
    completion = _count(usage, "completion_tokens", "output_tokens")
    cached = _detail(usage, "cached_tokens", _CACHED_IN) or _detail(usage, "cache_read_tokens", ())
    reasoning = _detail(usage, "reasoning_tokens", _REASONING_IN)
    return TokenCounts(prompt, completion, cached, reasoning)


def cost_usd(
    model: str | None,
    usage: Mapping[str, Any] | None,
    table: Mapping[str, Price] | None = None,
    counts: TokenCounts | None = None,
) -> float | None:
    """Cost of one call in USD, or None when the model's price or the usage is unknown.

    `table` is the price table to use (default: the current one); records keep the table that was
    current when the call was made. `counts` is `token_counts(usage)` when the caller has it already.
    """
    price = price_for(model, table)
    prompt, completion, cached, reasoning = token_counts(usage) if counts is None else counts
    if price is None or (prompt is None and completion is None):
        return None
    prompt, completion = prompt or 0, completion or 0
    # Cached tokens (read or written) are part of the prompt and reasoning tokens part of the completion
    # (the record's usage counts them so for every API).
    cached, reasoning = min(max(cached, 0), prompt), min(max(reasoning, 0), completion)
    written = usage.get("cache_write_tokens") if isinstance(usage, Mapping) else None
    written = min(max(written, 0), prompt - cached) if type(written) is int else 0
    cached_price = price.input if price.cached_input is None else price.cached_input
    write_price = price.input if price.cache_write is None else price.cache_write
    reasoning_price = price.output if price.reasoning is None else price.reasoning
    total = (
        (prompt - cached - written) * price.input
        + cached * cached_price
        + written * write_price
        + (completion - reasoning) * price.output
        + reasoning * reasoning_price
    )
    return round(total / 1e6, 10)
