"""neatlogs.stats(): the exporter counters plus usage across the process (calls, errors, tokens, cost,
latency percentiles, rate limits), per model."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs.openai import OpenAIProvider

PRICE = {"input": 2.0, "output": 10.0}
USAGE_KEYS = {
    "calls", "errors", "incomplete", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
    "reasoning_tokens", "cost_usd", "unpriced_calls", "latency_ms",
}  # fmt: skip


@pytest.fixture
def model() -> Iterator[str]:
    """A model name no other test uses, with a price, so its figures are this test's alone."""
    name = f"stats-model-{uuid.uuid4().hex[:8]}"
    neatlogs.set_prices({name: PRICE})
    yield name
    neatlogs.set_prices({name: None})


def _ask(client: openai.OpenAI, model: str, text: str = "one two three", **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kwargs)


def _usage(model: str) -> dict[str, Any]:
    by_model: dict[str, Any] = neatlogs.stats()["usage"]["by_model"]
    return dict(by_model[model])


def test_stats_keeps_the_exporter_and_otel_counters_and_adds_usage() -> None:
    stats = neatlogs.stats()
    for name in ("enqueued", "sent", "dropped", "failed", "retried", "queue_size", "otel_exported"):
        assert isinstance(stats[name], int)
    assert USAGE_KEYS | {"by_model", "uncounted"} <= set(stats["usage"])


def test_calls_tokens_and_cost_add_up_per_model(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, model: str
) -> None:
    make_provider()
    responses = [_ask(client, model, "one two three " * i) for i in range(1, 4)]

    usage = _usage(model)
    prompt = sum(r.usage.prompt_tokens for r in responses)
    completion = sum(r.usage.completion_tokens for r in responses)
    assert set(usage) == USAGE_KEYS | {"ttft_ms", "rate_limit_remaining"}
    assert usage["calls"] == 3 and usage["errors"] == {} and usage["incomplete"] == 0
    assert usage["prompt_tokens"] == prompt and usage["completion_tokens"] == completion
    assert usage["total_tokens"] == prompt + completion
    assert usage["cost_usd"] == pytest.approx((prompt * 2.0 + completion * 10.0) / 1e6)
    assert usage["unpriced_calls"] == 0


def test_process_totals_grow_by_every_call(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, model: str
) -> None:
    make_provider()
    before = neatlogs.stats()["usage"]
    response = _ask(client, model)
    after = neatlogs.stats()["usage"]

    assert after["calls"] == before["calls"] + 1
    assert after["total_tokens"] == before["total_tokens"] + response.usage.total_tokens
    assert after["cost_usd"] == pytest.approx(before["cost_usd"] + _usage(model)["cost_usd"])


def test_errors_are_counted_by_exception_type(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, fake_openai: Any, model: str
) -> None:
    make_provider()
    _ask(client, model)
    for status, error in ((429, openai.RateLimitError), (429, openai.RateLimitError), (500, openai.APIError)):
        fake_openai.fail_next(status=status)
        with pytest.raises(error):
            _ask(client, model)

    usage = _usage(model)
    assert usage["calls"] == 4
    assert usage["errors"] == {"RateLimitError": 2, "InternalServerError": 1}
    assert neatlogs.stats()["usage"]["errors"]["RateLimitError"] >= 2


def test_latency_percentiles_per_model(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, model: str
) -> None:
    provider = make_provider()
    for _ in range(9):
        _ask(client, model)
    _ask(client, model, extra_headers={"x-fake-delay": "0.3"})

    durations = sorted(r["duration_ms"] for r in provider.get_conversation_history())
    latency = _usage(model)["latency_ms"]
    assert latency["p50"] == pytest.approx(durations[4], abs=0.001)
    assert latency["p95"] == pytest.approx(durations[9], abs=0.001) and latency["p95"] >= 300


def test_raw_responses_give_rate_limits_remaining(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, model: str
) -> None:
    provider = make_provider()
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )

    (record,) = provider.get_conversation_history()
    assert record["rate_limit"]["remaining_tokens"] == int(raw.headers["x-ratelimit-remaining-tokens"])
    assert record["rate_limit"]["limit_requests"] == int(raw.headers["x-ratelimit-limit-requests"])
    assert record["rate_limit"]["reset_requests"] == raw.headers["x-ratelimit-reset-requests"]
    assert _usage(model)["rate_limit_remaining"]["tokens"] == record["rate_limit"]["remaining_tokens"]


def test_streams_give_time_to_first_chunk_and_rate_limits_remaining(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, model: str
) -> None:
    make_provider()
    stream = _ask(client, model, stream=True, stream_options={"include_usage": True})
    headers = stream.response.headers
    list(stream)

    usage = _usage(model)
    assert usage["ttft_ms"]["p50"] is not None
    assert usage["rate_limit_remaining"] == {
        "requests": int(headers["x-ratelimit-remaining-requests"]),
        "tokens": int(headers["x-ratelimit-remaining-tokens"]),
    }


def test_rate_limit_errors_report_what_remains(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, fake_openai: Any, model: str
) -> None:
    make_provider()
    fake_openai.fail_next(status=429)
    with pytest.raises(openai.RateLimitError) as caught:
        _ask(client, model)

    remaining = _usage(model)["rate_limit_remaining"]
    assert remaining["requests"] == int(caught.value.response.headers["x-ratelimit-remaining-requests"])


def test_a_stream_closed_early_counts_as_incomplete(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, model: str
) -> None:
    make_provider()
    stream = _ask(client, model, "a b c d e f g h", stream=True, extra_headers={"x-fake-chunks": "8"})
    next(iter(stream))
    stream.close()

    usage = _usage(model)
    assert usage["calls"] == 1 and usage["incomplete"] == 1 and usage["errors"] == {}


def test_a_call_seen_by_two_providers_counts_once(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, model: str
) -> None:
    first, second = make_provider(), make_provider()
    _ask(client, model)

    assert len(first.get_conversation_history()) == len(second.get_conversation_history()) == 1
    assert _usage(model)["calls"] == 1


def test_models_without_a_price_are_counted_as_unpriced(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    model = f"unpriced-{uuid.uuid4().hex[:8]}"
    make_provider()
    _ask(client, model)

    usage = _usage(model)
    assert usage["calls"] == 1 and usage["cost_usd"] == 0.0 and usage["unpriced_calls"] == 1


async def test_async_calls_from_many_tasks_are_all_counted(
    make_provider: Callable[..., OpenAIProvider], async_client: openai.AsyncOpenAI, model: str
) -> None:
    make_provider()
    await asyncio.gather(
        *(
            async_client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
            for _ in range(20)
        )
    )
    assert _usage(model)["calls"] == 20


def test_calls_are_counted_on_a_background_thread(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, model: str
) -> None:
    make_provider()
    _ask(client, model)

    assert any(thread.name == "neatlogs-dispatch" for thread in threading.enumerate())
    assert _usage(model)["calls"] == 1


@pytest.mark.parametrize("stream", [False, True])
def test_cached_and_reasoning_tokens_reach_the_record_and_the_statistics(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, model: str, stream: bool
) -> None:
    provider = make_provider()
    tokens = {"x-fake-cached-tokens": "3", "x-fake-reasoning-tokens": "5"}
    if stream:
        options: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
        for _ in _ask(client, model, extra_headers=tokens, **options):
            pass
    else:
        _ask(client, model, extra_headers=tokens)

    (record,) = provider.get_conversation_history()
    assert record["usage"]["cached_tokens"] == 3 and record["usage"]["reasoning_tokens"] == 5
    usage = _usage(model)
    assert usage["cached_tokens"] == 3 and usage["reasoning_tokens"] == 5
