"""Claude calls in the sinks: OpenTelemetry spans and metrics, capture modes, masking, redaction and sampling
work for Anthropic as they do for OpenAI (the provider only reads; the core does the rest)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import neatlogs
from neatlogs._testing.fake_anthropic import WEATHER_TOOL, FakeAnthropic
from neatlogs.anthropic import AnthropicProvider
from neatlogs.collector.server import CollectorServer
from neatlogs.sinks.otel.sink import flush_all_otel

MODEL = "claude-sonnet-5-5"
SECRET_TEXT = "xylophone Reykjavik weather"
# A key shaped like Anthropic's, written into a prompt (the fake echoes it back)
LEAKED_KEY = "sk-ant-api03-" + "Q" * 40


@pytest.fixture
def otel() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader, TracerProvider, MeterProvider]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield exporter, reader, tracer_provider, meter_provider
    flush_all_otel(5.0)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def _spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert flush_all_otel(5.0)
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "neatlogs"]  # type: ignore[union-attr]


def _weather(client: anthropic.Anthropic, **kwargs: Any) -> Any:
    return client.messages.create(
        model=MODEL,
        max_tokens=200,
        system="You are terse.",
        messages=[{"role": "user", "content": "What is the weather in Oslo?"}],
        tools=[WEATHER_TOOL],
        thinking={"type": "enabled", "budget_tokens": 64},
        **kwargs,
    )


def test_a_claude_call_is_a_client_span_with_the_anthropic_provider_cache_tokens_and_content(
    make_anthropic: Callable[..., AnthropicProvider], claude: anthropic.Anthropic, otel: Any
) -> None:
    exporter, reader, tracer_provider, meter_provider = otel
    make_anthropic(
        trace_id="otel-claude",
        otel=True,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content={"otel": "full"},
    )
    message = _weather(claude, extra_headers={"x-fake-cache-read": "3", "x-fake-cache-write": "2"})

    (span,) = _spans(exporter)
    attributes = dict(span.attributes or {})
    assert span.name == f"chat {MODEL}" and span.kind == SpanKind.CLIENT
    assert attributes["gen_ai.provider.name"] == "anthropic" and attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.response.finish_reasons"] == ("tool_use",)
    assert attributes["gen_ai.response.id"] == message.id
    usage = message.usage
    assert attributes["gen_ai.usage.input_tokens"] == usage.input_tokens + 3 + 2
    assert attributes["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 2
    assert attributes["gen_ai.request.max_tokens"] == 200
    inputs = json.loads(str(attributes["gen_ai.input.messages"]))
    assert inputs[0] == {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]}
    (output,) = json.loads(str(attributes["gen_ai.output.messages"]))
    (use,) = [block for block in message.content if block.type == "tool_use"]
    assert output["parts"][0] == {
        "type": "reasoning",
        "content": "Thinking about: What is the weather in Oslo?",
    }
    assert output["parts"][1] == {
        "type": "tool_call",
        "id": use.id,
        "name": "get_weather",
        "arguments": {"city": "Oslo"},
    }
    assert output["finish_reason"] == "tool_use"
    definitions = json.loads(str(attributes["gen_ai.tool.definitions"]))
    assert [d["name"] for d in definitions] == ["get_weather"]

    assert flush_all_otel(5.0)
    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= names


def test_a_failed_claude_call_is_an_error_span(
    make_anthropic: Callable[..., AnthropicProvider],
    claude: anthropic.Anthropic,
    fake_anthropic: FakeAnthropic,
    otel: Any,
) -> None:
    exporter, _, tracer_provider, meter_provider = otel
    make_anthropic(otel=True, tracer_provider=tracer_provider, meter_provider=meter_provider)
    fake_anthropic.fail_next(status=529)
    with pytest.raises(anthropic.OverloadedError):
        _weather(claude)

    (span,) = _spans(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "OverloadedError"


def test_metadata_mode_leaves_out_the_text_thinking_and_tool_input_but_keeps_the_figures(
    make_anthropic: Callable[..., AnthropicProvider], claude: anthropic.Anthropic
) -> None:
    provider = make_anthropic(capture_content="metadata")
    message = claude.messages.create(
        model=MODEL,
        max_tokens=200,
        system="Mention xylophone.",
        messages=[{"role": "user", "content": SECRET_TEXT}],
        tools=[WEATHER_TOOL],
        thinking={"type": "enabled", "budget_tokens": 64},
        stop_sequences=["END"],
    )
    with claude.messages.stream(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": SECRET_TEXT}]
    ) as s:
        s.until_done()
    claude.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": SECRET_TEXT}])

    plain, streamed, count = provider.get_conversation_history()
    for record in (plain, streamed, count):
        dumped = json.dumps(record)
        for text in ("xylophone", "Reykjavik", "Echo:", "Thinking about", "Current weather for a city"):
            assert text not in dumped, f"{text!r} leaked into a metadata record"
        assert record["capture"] == "metadata" and record["prompt"] is None and record["completion"] is None
    (use,) = [block for block in message.content if block.type == "tool_use"]
    assert plain["choices"][0]["tool_calls"] == [
        {"id": use.id, "type": "function", "function": {"name": "get_weather"}}
    ]
    assert plain["usage"]["completion_tokens"] == message.usage.output_tokens and plain["cost_usd"] > 0
    assert (
        plain["request"]["stop_sequences"] == ["END"] and plain["request"]["thinking"]["budget_tokens"] == 64
    )
    assert plain["request"]["tools"] == [{"name": "get_weather"}]
    assert streamed["finish_reason"] == "end_turn" and streamed["usage"]["total_tokens"] > 0
    assert count["input_tokens"] == 3


def test_secrets_in_claude_prompts_and_answers_are_masked_and_the_redactor_runs(
    make_anthropic: Callable[..., AnthropicProvider], claude: anthropic.Anthropic
) -> None:
    def redact(record: dict[str, Any]) -> dict[str, Any]:
        record["tags"] = [*record["tags"], "redacted"]
        return record

    provider = make_anthropic(redact=redact, mask_pii=True)
    message = claude.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=[{"role": "user", "content": f"ANTHROPIC_API_KEY={LEAKED_KEY} mail jane.doe@example.com"}],
    )
    assert LEAKED_KEY in message.content[0].text  # the fake echoes it back

    (record,) = provider.get_conversation_history()
    dumped = json.dumps(record)
    assert LEAKED_KEY not in dumped and "jane.doe@example.com" not in dumped
    assert "[REDACTED]" in record["prompt"][0]["content"] and "[REDACTED]" in record["completion"]["content"]
    assert record["tags"] == ["redacted"]


def test_a_zero_sample_rate_sends_only_the_failed_claude_calls_and_the_history_keeps_all(
    make_anthropic: Callable[..., AnthropicProvider],
    claude: anthropic.Anthropic,
    fake_anthropic: FakeAnthropic,
    tmp_path: Any,
) -> None:
    trace_id = uuid.uuid4().hex
    with CollectorServer(tmp_path / "records.db") as collector:
        provider = make_anthropic(trace_id=trace_id, endpoint=collector.url, sample_rate=0.0)
        for _ in range(3):
            claude.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        fake_anthropic.fail_next(status=429)
        with pytest.raises(anthropic.RateLimitError):
            claude.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        assert neatlogs.flush(10)
        (sent,) = collector.store.records(trace_id=trace_id, limit=100)

    assert sent["provider"] == "anthropic" and sent["status"] == "error"
    assert sent["error"]["status_code"] == 429
    assert len(provider.get_conversation_history()) == 4
