"""Sampling: a rate in [0, 1] per provider or tracker decides what leaves the process; errors always do."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs.collector.server import CollectorServer
from neatlogs.llm import LLMTracker
from neatlogs.openai import OpenAIProvider


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorServer]:
    with CollectorServer(tmp_path_factory.mktemp("sampling") / "records.db") as server:
        yield server


def _ask(client: openai.OpenAI, model: str = "gpt-4o-mini", **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], **kwargs)


def _sent(collector: CollectorServer, trace_id: str) -> list[dict[str, Any]]:
    assert neatlogs.flush(10)
    return collector.store.records(trace_id=trace_id, limit=1000)


def test_rate_zero_sends_only_the_errors_and_the_history_keeps_everything(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    fake_openai: Any,
    collector: CollectorServer,
) -> None:
    trace_id = uuid.uuid4().hex
    provider = make_provider(trace_id=trace_id, endpoint=collector.url, sample_rate=0.0)
    for _ in range(5):
        _ask(client)
    fake_openai.fail_next(status=500)
    with pytest.raises(openai.InternalServerError):
        _ask(client)

    (sent,) = _sent(collector, trace_id)
    assert sent["status"] == "error" and sent["error"]["type"] == "InternalServerError"
    assert [r["status"] for r in provider.get_conversation_history()] == ["success"] * 5 + ["error"]


def test_by_default_every_call_is_sent(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, collector: CollectorServer
) -> None:
    trace_id = uuid.uuid4().hex
    make_provider(trace_id=trace_id, endpoint=collector.url)
    for _ in range(5):
        _ask(client)

    assert len(_sent(collector, trace_id)) == 5


def test_a_fractional_rate_sends_about_that_share(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, collector: CollectorServer
) -> None:
    trace_id = uuid.uuid4().hex
    make_provider(trace_id=trace_id, endpoint=collector.url, sample_rate=0.3)
    random.seed(1234)
    for _ in range(100):
        _ask(client)

    assert 12 <= len(_sent(collector, trace_id)) <= 48  # binomial(100, 0.3): more than 3.9 sd either side


def test_sampled_out_calls_still_count_in_usage_statistics(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    model = f"sampling-test-{uuid.uuid4().hex[:8]}"
    make_provider(sample_rate=0.0)
    for _ in range(3):
        _ask(client, model=model)

    usage = neatlogs.stats()["usage"]["by_model"][model]
    assert usage["calls"] == 3 and usage["total_tokens"] > 0


def test_the_tracker_rate_applies_to_the_providers_it_attaches(
    client: openai.OpenAI, collector: CollectorServer
) -> None:
    trace_id = uuid.uuid4().hex
    tracker = LLMTracker(trace_id=trace_id, endpoint=collector.url, sample_rate=0.0, otel=False)
    tracker.override_api()
    try:
        for _ in range(3):
            _ask(client)
    finally:
        tracker.stop_instrumenting()

    assert _sent(collector, trace_id) == []
    assert len(tracker.get_conversation_history()) == 3


def test_the_environment_variable_sets_the_rate_and_an_argument_wins(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    collector: CollectorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEATLOGS_SAMPLE_RATE", "0")
    from_env, explicit = uuid.uuid4().hex, uuid.uuid4().hex
    make_provider(trace_id=from_env, endpoint=collector.url)
    make_provider(trace_id=explicit, endpoint=collector.url, sample_rate=1.0)
    _ask(client)

    assert _sent(collector, from_env) == []
    assert len(_sent(collector, explicit)) == 1


@pytest.mark.parametrize(
    ("value", "error"),
    [(2, ValueError), (-0.1, ValueError), (float("nan"), ValueError), ("0.5", TypeError), (True, TypeError)],
)
def test_a_rate_outside_zero_to_one_fails_at_construction(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"sample_rate must be .*0\.0.*1\.0"):
        OpenAIProvider(sample_rate=value, otel=False)


def test_a_bad_rate_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEATLOGS_SAMPLE_RATE", "half")
    with pytest.raises(ValueError, match="NEATLOGS_SAMPLE_RATE='half': sample_rate must be a number"):
        OpenAIProvider(otel=False)
    monkeypatch.setenv("NEATLOGS_SAMPLE_RATE", "1.5")
    with pytest.raises(ValueError, match=r"NEATLOGS_SAMPLE_RATE='1\.5': sample_rate must be from 0\.0"):
        OpenAIProvider(otel=False)
