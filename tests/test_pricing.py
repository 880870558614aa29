"""Cost: a bundled price table kept as data, updatable at run time, null for models without a price."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs.openai import OpenAIProvider
from neatlogs.record.pricing import cost_usd


@pytest.fixture(autouse=True)
def restore_prices() -> Iterator[None]:
    saved = neatlogs.get_prices()
    yield
    neatlogs.set_prices(saved, replace=True)


def _ask(client: openai.OpenAI, model: str) -> Any:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "three little words"}]
    )


def test_the_price_table_ships_as_data_with_its_source_and_date() -> None:
    data = json.loads(resources.files("neatlogs").joinpath("pricing.json").read_text(encoding="utf-8"))
    assert data["source"] and data["updated"] and data["unit"] == "USD per 1M tokens"
    assert data["models"]["gpt-4o-mini"] == {
        "input": 0.15,
        "cached_input": 0.075,
        "output": 0.6,
        "reasoning": 0.6,
    }
    assert neatlogs.get_prices()["gpt-4o-mini"] == {**data["models"]["gpt-4o-mini"], "cache_write": None}
    for model in ("gpt-5", "gpt-5-mini", "gpt-4.1", "gpt-4o", "o3", "o4-mini", "text-embedding-3-small"):
        assert model in data["models"]


def test_a_call_costs_its_tokens_at_the_table_price(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider()
    response = _ask(client, "gpt-4o-mini")

    (record,) = provider.get_conversation_history()
    usage = response.usage
    expected = (usage.prompt_tokens * 0.15 + usage.completion_tokens * 0.6) / 1e6
    assert record["cost_usd"] == pytest.approx(expected)


def test_dated_snapshots_and_provider_prefixes_use_the_base_models_price() -> None:
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    assert cost_usd("gpt-4o-mini-2024-07-18", usage) == pytest.approx(0.75)
    assert cost_usd("openai/gpt-4o-mini", usage) == pytest.approx(0.75)
    assert cost_usd("gpt-4-0613", usage) == pytest.approx(90.0)
    assert cost_usd("gpt-4o-2024-05-13", usage) == pytest.approx(20.0)  # its own, older price


@pytest.mark.parametrize(
    "model", ["my-local-llama", "ft:gpt-4o-mini:acme::abc123", "gpt-4o-realtime-preview", "", None]
)
def test_models_without_a_price_cost_null_not_zero(model: Any) -> None:
    assert cost_usd(model, {"prompt_tokens": 10, "completion_tokens": 10}) is None


def test_unknown_model_call_has_null_cost_and_a_priced_one_does_not(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider()
    _ask(client, "my-local-llama")
    _ask(client, "gpt-4.1-nano")

    unknown, known = provider.get_conversation_history()
    assert unknown["cost_usd"] is None and unknown["usage"]["total_tokens"] > 0
    assert known["cost_usd"] is not None and known["cost_usd"] > 0


def test_cached_input_and_reasoning_tokens_have_their_own_prices() -> None:
    neatlogs.set_prices({"priced": {"input": 2.0, "cached_input": 0.5, "output": 8.0, "reasoning": 20.0}})
    usage = {
        "prompt_tokens": 1_000_000,
        "completion_tokens": 1_000_000,
        "cached_tokens": 400_000,
        "reasoning_tokens": 250_000,
    }
    # 600k input at 2 + 400k cached at 0.5 + 750k output at 8 + 250k reasoning at 20
    assert cost_usd("priced", usage) == pytest.approx(1.2 + 0.2 + 6.0 + 5.0)
    nested = {
        "input_tokens": 1_000_000,
        "output_tokens": 1_000_000,
        "input_tokens_details": {"cached_tokens": 400_000},
        "output_tokens_details": {"reasoning_tokens": 250_000},
    }
    assert cost_usd("priced", nested) == pytest.approx(12.4)  # the Responses API's names


def test_without_a_cached_price_cached_tokens_cost_full_input() -> None:
    neatlogs.set_prices({"uncached": {"input": 1.0, "output": 1.0}})
    assert (
        cost_usd("uncached", {"prompt_tokens": 1_000_000, "completion_tokens": 0, "cached_tokens": 10}) == 1.0
    )


def test_set_prices_adds_a_model_that_later_calls_use(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider()
    _ask(client, "my-local-llama")
    neatlogs.set_prices({"my-local-llama": {"input": 1.0, "output": 3.0}})
    response = _ask(client, "my-local-llama")

    before, after = provider.get_conversation_history()
    assert before["cost_usd"] is None
    usage = response.usage
    assert after["cost_usd"] == pytest.approx((usage.prompt_tokens + 3 * usage.completion_tokens) / 1e6)
    assert neatlogs.get_prices()["my-local-llama"] == {
        "input": 1.0,
        "cached_input": None,
        "output": 3.0,
        "reasoning": None,
        "cache_write": None,
    }


def test_set_prices_changes_and_removes_models_and_accepts_the_file_format() -> None:
    neatlogs.set_prices({"models": {"gpt-4o-mini": {"input": 1, "output": 2}, "gpt-4": None}, "updated": "x"})
    prices = neatlogs.get_prices()
    assert prices["gpt-4o-mini"]["input"] == 1.0 and "gpt-4" not in prices
    assert cost_usd("gpt-4-0613", {"prompt_tokens": 5, "completion_tokens": 5}) is None


def test_replace_starts_from_an_empty_table() -> None:
    neatlogs.set_prices({"only-model": {"input": 1, "output": 1}}, replace=True)
    assert list(neatlogs.get_prices()) == ["only-model"]


@pytest.mark.parametrize(
    ("prices", "error", "message"),
    [
        ({"m": {"input": -1, "output": 1}}, ValueError, r"prices\['m'\]\['input'\] must be a number >= 0"),
        ({"m": {"input": 1}}, ValueError, r"prices\['m'\] needs output"),
        (
            {"m": {"input": 1, "output": 1, "audio": 3}},
            ValueError,
            "unknown price field.*audio.*allowed: input",
        ),
        ({"m": {"input": 1, "output": "2"}}, ValueError, r"\['output'\] must be a number"),
        ({"m": {"input": 1, "output": float("inf")}}, ValueError, r"\['output'\] must be a number"),
        (
            {"m": {"input": 1, "output": 1, "cached_input": True}},
            ValueError,
            r"\['cached_input'\] .* or None",
        ),
        ({"m": [1, 2]}, TypeError, r"prices\['m'\] must be a dict with input"),
        ({"": {"input": 1, "output": 1}}, TypeError, "non-empty model names"),
        ([("m", 1)], TypeError, "prices must be a dict"),
    ],
)
def test_bad_prices_are_rejected_naming_the_entry_and_nothing_changes(
    prices: Any, error: type[Exception], message: str
) -> None:
    before = neatlogs.get_prices()
    with pytest.raises(error, match=message):
        neatlogs.set_prices(
            {"fine-model": {"input": 1, "output": 1}, **prices} if isinstance(prices, dict) else prices
        )
    assert neatlogs.get_prices() == before
