"""Content capture modes: full records by default, metadata only (no prompt or completion text) per sink."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import neatlogs
from neatlogs.collector.server import CollectorServer
from neatlogs.llm import LLMTracker
from neatlogs.openai import OpenAIProvider
from neatlogs.sinks.otel.sink import flush_all_otel

from .helpers import WEATHER_TOOL

SECRET_PROMPT = "my diagnosis is xylophone-syndrome, what is the weather in Reykjavik"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorServer]:
    with CollectorServer(tmp_path_factory.mktemp("capture") / "records.db") as server:
        yield server


def _stored(collector: CollectorServer, trace_id: str) -> list[dict[str, Any]]:
    assert neatlogs.flush(10)
    return collector.store.records(trace_id=trace_id)


def _ask(client: openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "gpt-4o-mini")
    kwargs.setdefault("messages", [{"role": "user", "content": SECRET_PROMPT}])
    return client.chat.completions.create(**kwargs)


def assert_no_content(record: dict[str, Any]) -> None:
    dumped = json.dumps(record)
    for text in ("xylophone", "Reykjavik", "Echo:", "Current weather for a city"):
        assert text not in dumped, f"{text!r} leaked into a metadata record"
    assert record["capture"] == "metadata"
    assert record["prompt"] is None and record["completion"] is None


def test_full_content_is_the_default_for_the_history(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider()
    _ask(client)

    (record,) = provider.get_conversation_history()
    assert record["capture"] == "full"
    assert record["prompt"] == [{"role": "user", "content": SECRET_PROMPT}]
    assert record["request"]["messages"] == record["prompt"]


def test_metadata_mode_keeps_usage_timing_and_tool_names_but_no_text(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(capture_content="metadata")
    response = _ask(client, tools=[WEATHER_TOOL], temperature=0.3, max_tokens=50)

    (record,) = provider.get_conversation_history()
    assert_no_content(record)
    (call,) = response.choices[0].message.tool_calls or []
    assert record["choices"] == [
        {
            "index": 0,
            "role": "assistant",
            "finish_reason": "tool_calls",
            "tool_calls": [{"id": call.id, "type": "function", "function": {"name": "get_weather"}}],
        }
    ]
    assert record["request"] == {
        "model": "gpt-4o-mini",
        "temperature": 0.3,
        "max_tokens": 50,
        "tools": [{"type": "function", "function": {"name": "get_weather"}}],
    }
    assert record["usage"]["total_tokens"] == response.usage.total_tokens
    assert record["cost_usd"] is not None and record["duration_ms"] > 0
    assert record["finish_reason"] == "tool_calls" and record["response_model"] == response.model
    assert record["request_id"] == response._request_id


def test_metadata_mode_covers_streams_and_legacy_completions(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(capture_content="metadata")
    stream = _ask(client, stream=True, stream_options={"include_usage": True}, tools=[WEATHER_TOOL])
    chunks = list(stream)
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt=SECRET_PROMPT, n=2)

    streamed, legacy = provider.get_conversation_history()
    assert chunks and streamed["stream"] is True and streamed["ttft_ms"] is not None
    assert streamed["choices"][0]["tool_calls"][0]["function"] == {"name": "get_weather"}
    assert streamed["usage"]["total_tokens"] > 0
    assert legacy["operation"] == "completion" and legacy["choices"] == [None, None]
    for record in (streamed, legacy):
        assert_no_content(record)


def test_metadata_mode_keeps_the_error_type_status_and_message(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, fake_openai: Any
) -> None:
    provider = make_provider(capture_content="metadata")
    fake_openai.fail_next(status=429)
    with pytest.raises(openai.RateLimitError):
        _ask(client)

    (record,) = provider.get_conversation_history()
    assert_no_content(record)
    assert record["status"] == "error"
    assert record["error"]["type"] == "RateLimitError" and record["error"]["status_code"] == 429
    assert "Rate limit" in record["error"]["message"]


def test_exporter_metadata_only_leaves_the_history_full(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, collector: CollectorServer
) -> None:
    trace_id = uuid.uuid4().hex
    provider = make_provider(
        trace_id=trace_id, endpoint=collector.url, capture_content={"exporter": "metadata"}
    )
    _ask(client, tools=[WEATHER_TOOL])

    (kept,) = provider.get_conversation_history()
    (sent,) = _stored(collector, trace_id)
    assert kept["prompt"] == [{"role": "user", "content": SECRET_PROMPT}] and kept["capture"] == "full"
    assert_no_content(sent)
    assert sent["id"] == kept["id"]
    assert sent["usage"] == kept["usage"] and sent["cost_usd"] == kept["cost_usd"]


def test_the_exporter_sends_full_content_by_default(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, collector: CollectorServer
) -> None:
    trace_id = uuid.uuid4().hex
    make_provider(trace_id=trace_id, endpoint=collector.url)
    _ask(client)

    (sent,) = _stored(collector, trace_id)
    assert sent["capture"] == "full" and sent["prompt"][0]["content"] == SECRET_PROMPT


def test_two_providers_on_one_endpoint_each_send_their_own_view(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, collector: CollectorServer
) -> None:
    full_trace, metadata_trace = uuid.uuid4().hex, uuid.uuid4().hex
    make_provider(trace_id=full_trace, endpoint=collector.url)
    make_provider(trace_id=metadata_trace, endpoint=collector.url, capture_content="metadata")
    _ask(client)

    (full,) = _stored(collector, full_trace)
    (metadata,) = _stored(collector, metadata_trace)
    assert full["prompt"] is not None
    assert_no_content(metadata)


def test_the_environment_variable_sets_the_mode_and_an_argument_wins(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEATLOGS_CAPTURE_CONTENT", "metadata")
    from_env = make_provider()
    explicit = make_provider(capture_content="full")
    monkeypatch.setenv("NEATLOGS_CAPTURE_CONTENT", "history=metadata,exporter=full")
    per_sink = make_provider()
    _ask(client)

    assert_no_content(from_env.get_conversation_history()[0])
    assert_no_content(per_sink.get_conversation_history()[0])
    assert explicit.get_conversation_history()[0]["prompt"] is not None


def test_tracker_providers_follow_the_trackers_mode(client: openai.OpenAI) -> None:
    tracker = LLMTracker(capture_content="metadata", otel=False)
    tracker.override_api()
    try:
        _ask(client)
    finally:
        tracker.stop_instrumenting()

    (record,) = tracker.get_conversation_history()
    assert_no_content(record)


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, MeterProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    yield tracer_provider, meter_provider, exporter
    flush_all_otel(5.0)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def _span_attributes(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter],
    **options: Any,
) -> dict[str, Any]:
    tracer_provider, meter_provider, exporter = spans
    make_provider(otel=True, tracer_provider=tracer_provider, meter_provider=meter_provider, **options)
    _ask(client)
    assert flush_all_otel(5.0)
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    return dict(span.attributes or {})


def test_opentelemetry_gets_no_content_by_default(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter],
) -> None:
    attributes = _span_attributes(make_provider, client, spans)
    assert "gen_ai.input.messages" not in attributes
    assert attributes["gen_ai.usage.input_tokens"] > 0


def test_opentelemetry_gets_content_only_when_its_sink_asks_for_it(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter],
) -> None:
    attributes = _span_attributes(make_provider, client, spans, capture_content={"otel": "full"})
    assert SECRET_PROMPT in str(attributes["gen_ai.input.messages"])


def test_metadata_everywhere_overrides_the_opentelemetry_content_variable(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    attributes = _span_attributes(make_provider, client, spans, capture_content="metadata")
    assert not any(key.startswith("gen_ai.input") or key.startswith("gen_ai.output") for key in attributes)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("partial", ValueError, r'capture_content: capture_content must be "full" or "metadata"'),
        ({"exporterr": "metadata"}, ValueError, "unknown sink 'exporterr'.*keys: history, exporter, otel"),
        ({"otel": "some"}, ValueError, r"capture_content\['otel'\].*\"full\" or \"metadata\""),
        (3, TypeError, "capture_content must be"),
    ],
)
def test_an_unknown_capture_mode_fails_at_construction_naming_the_allowed_values(
    value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        OpenAIProvider(capture_content=value, otel=False)


def test_a_bad_capture_mode_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEATLOGS_CAPTURE_CONTENT", "everything")
    with pytest.raises(ValueError, match=r"NEATLOGS_CAPTURE_CONTENT.*'everything'"):
        LLMTracker(otel=False)


def test_views_are_built_once_and_shared(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def redact(record: dict[str, Any]) -> dict[str, Any]:
        calls.append(record["capture"])
        return record

    full = make_provider(redact=redact)
    _ask(client)
    assert calls == []  # nothing is converted on the caller's thread
    first, second = full.get_conversation_history(), full.get_conversation_history()
    assert first == second and calls == ["full"]


def test_metadata_mode_covers_the_responses_api_and_embeddings(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(capture_content="metadata")
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": WEATHER_TOOL["function"]["parameters"],
    }
    client.responses.create(model="gpt-4o-mini", instructions="be brief", input=SECRET_PROMPT, tools=[tool])
    client.responses.create(model="gpt-4o-mini", input=[{"role": "user", "content": SECRET_PROMPT}])
    client.embeddings.create(model="text-embedding-3-small", input=[SECRET_PROMPT, "xylophone"])

    tool_call, text, embedding = provider.get_conversation_history()
    for record in (tool_call, text, embedding):
        assert_no_content(record)
        assert "be brief" not in json.dumps(record)
        assert record["usage"]["prompt_tokens"] > 0
    assert tool_call["request"]["tools"] == [{"type": "function", "name": "get_weather"}]
    assert tool_call["choices"][0]["tool_calls"][0]["function"] == {"name": "get_weather"}
    assert embedding["operation"] == "embeddings" and embedding["input_count"] == 2
