"""The OpenTelemetry sink: GenAI semantic-convention spans and metrics for real SDK calls on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, StatusCode

import neatlogs
from neatlogs._testing.fake_openai import FakeOpenAI
from neatlogs.openai import OpenAIProvider
from neatlogs.record.call import CallRecord, PackedChunks
from neatlogs.sinks.otel import sink as otel_module
from neatlogs.sinks.otel.sink import OTelSink, flush_all_otel

from .helpers import WEATHER_TOOL

MODEL = "gpt-4o-mini"
HELLO: Any = [{"role": "user", "content": "hello there neatlogs"}]
# The bucket boundaries the GenAI metric conventions ask for (written out so a drift in the module shows).
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions"}
# Wall clock and perf_counter are read a few microseconds apart; allow for that when comparing times.
CLOCK_SLACK_NS = 2_000_000


@dataclass
class Otel:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        assert flush_all_otel(5.0)
        return [
            s
            for s in self.exporter.get_finished_spans()
            if s.instrumentation_scope and s.instrumentation_scope.name == "neatlogs"
        ]

    def metrics(self) -> dict[str, Metric]:
        assert flush_all_otel(5.0)
        data = self.reader.get_metrics_data()
        if data is None:
            return {}
        return {
            metric.name: metric
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Otel(exporter, reader, tracer_provider, meter_provider)
    flush_all_otel(5.0)
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def traced(make_provider: Callable[..., OpenAIProvider], otel: Otel) -> OpenAIProvider:
    return make_provider(
        trace_id="otel-trace",
        tags=["otel", "test"],
        otel=True,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    )


def _chat(client: openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", HELLO)
    kwargs.setdefault("model", MODEL)
    return client.chat.completions.create(**kwargs)


def _record(reader: Callable[[CallRecord], dict[str, Any]] | None = None, context: Any = None) -> CallRecord:
    """A finished record made by hand, for feeding a sink directly."""
    record = CallRecord("openai", "chat", reader or (lambda r: {"model": MODEL}), {}, False)
    record.t_end = record.t_start + 1_000_000
    record.finished = True
    record.context = context
    return record


def _points(metric: Metric) -> list[HistogramDataPoint]:
    return [p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)]


# ---- spans ----


def test_chat_call_makes_a_client_span_named_after_operation_and_model_with_semconv_attributes(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    before = time.time_ns()
    response = _chat(
        client,
        temperature=0.3,
        top_p=0.9,
        max_tokens=50,
        frequency_penalty=0.1,
        presence_penalty=0.2,
        stop=["END"],
        seed=7,
        n=2,
    )
    after = time.time_ns()

    (span,) = otel.spans()
    (record,) = traced.get_conversation_history()
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None
    assert span.start_time is not None and span.end_time is not None
    assert before - CLOCK_SLACK_NS <= span.start_time <= span.end_time <= after + CLOCK_SLACK_NS
    attributes = dict(span.attributes or {})
    assert response.usage is not None
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": 0.2,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.seed": 7,
        "gen_ai.request.choice.count": 2,
        "gen_ai.response.id": response.id,
        "gen_ai.response.model": response.model,
        "gen_ai.response.finish_reasons": ("stop", "stop"),
        "gen_ai.usage.input_tokens": response.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": response.usage.completion_tokens,
        "server.address": "127.0.0.1",
        "server.port": int(fake_openai.url.rsplit(":", 1)[1]),
        "openai.api.type": "chat_completions",
        "neatlogs.trace_id": "otel-trace",
        "neatlogs.tags": ("otel", "test"),
        "neatlogs.record_id": record["id"],
        "neatlogs.status": "success",
    }
    assert {key: attributes.get(key) for key in expected} == expected
    assert attributes["neatlogs.cost_usd"] == pytest.approx(record["cost_usd"])
    assert "gen_ai.request.stream" not in attributes and "neatlogs.ttft_ms" not in attributes
    assert "error.type" not in attributes


def test_streamed_span_lasts_until_the_stream_is_finalised_after_its_last_chunk(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI
) -> None:
    stream = _chat(
        client,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-chunks": "5", "x-fake-chunk-delay": "0.02"},
    )
    returned = time.time_ns()
    last_chunk = 0
    for _ in stream:
        last_chunk = time.time_ns()
    finished = time.time_ns()

    (span,) = otel.spans()
    (record,) = traced.get_conversation_history()
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time <= returned
    assert last_chunk - CLOCK_SLACK_NS <= span.end_time <= finished + CLOCK_SLACK_NS
    assert span.end_time - returned >= 80_000_000  # the chunks came 20 ms apart after create() returned
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["neatlogs.ttft_ms"] == pytest.approx(record["ttft_ms"])
    ttft_s = attributes["gen_ai.response.time_to_first_chunk"]
    assert isinstance(ttft_s, float)
    assert 0 < ttft_s * 1e9 < span.end_time - span.start_time
    assert attributes["gen_ai.usage.output_tokens"] == record["usage"]["completion_tokens"]
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_a_stream_the_sink_will_read_is_not_packed_while_it_waits_for_the_sink(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI
) -> None:
    # Counting a stream packs its lines for the history, unless a sink's thread decodes them soon
    # anyway: packing them only to unpack them there would be wasted work on a background thread.
    for _ in _chat(client, stream=True, extra_headers={"x-fake-chunks": "5"}):
        pass
    neatlogs.stats()  # delivered to the sinks and counted; the OTel thread waits up to a second
    (record,) = list(traced._history._records)
    assert not isinstance(record.chunks, PackedChunks)
    (span,) = otel.spans()
    assert span.attributes is not None and span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_span_is_a_child_of_the_span_current_at_the_call_in_another_thread(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI
) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    parents: list[trace.Span] = []

    def work() -> None:
        with tracer.start_as_current_span("request handler") as outer:
            parents.append(outer)
            _chat(client)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()

    (span,) = otel.spans()
    (outer,) = parents
    assert span.parent is not None
    assert span.parent.span_id == outer.get_span_context().span_id
    assert span.context is not None and span.context.trace_id == outer.get_span_context().trace_id


async def test_concurrent_asyncio_tasks_each_parent_their_own_call(
    traced: OpenAIProvider, otel: Otel, async_client: openai.AsyncOpenAI
) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    outers: dict[str, trace.Span] = {}

    async def task(model: str) -> None:
        with tracer.start_as_current_span(f"task {model}") as outer:
            outers[model] = outer
            await async_client.chat.completions.create(
                model=model, messages=HELLO, extra_headers={"x-fake-delay": "0.05"}
            )

    await asyncio.gather(task("gpt-4o"), task("gpt-4o-mini"))

    spans = {span.name: span for span in otel.spans()}
    assert set(spans) == {"chat gpt-4o", "chat gpt-4o-mini"}
    for model, outer in outers.items():
        span = spans[f"chat {model}"]
        assert span.parent is not None and span.parent.span_id == outer.get_span_context().span_id
        assert span.context is not None and span.context.trace_id == outer.get_span_context().trace_id
    # The calls overlapped, so the parents could only come from each task's own context.
    first, second = spans.values()
    assert first.start_time is not None and second.end_time is not None
    assert second.start_time is not None and first.end_time is not None
    assert first.start_time < second.end_time and second.start_time < first.end_time


def test_spans_are_made_on_the_sink_thread_not_on_the_calling_thread(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI
) -> None:
    threads: list[str] = []

    class WhereStarted(SpanProcessor):
        def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
            threads.append(threading.current_thread().name)

    otel.tracer_provider.add_span_processor(WhereStarted())
    _chat(client)
    otel.spans()

    assert threads == ["neatlogs-otel"]


def test_failed_call_span_has_error_status_error_type_and_an_exception_event(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next(status=429)
    with pytest.raises(openai.RateLimitError):
        _chat(client)

    (span,) = otel.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description and "Rate limit" in span.status.description
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "RateLimitError"
    assert attributes["neatlogs.status"] == "error"
    (event,) = span.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.type"] == "RateLimitError"
    assert event.timestamp == span.end_time
    (point,) = _points(otel.metrics()["gen_ai.client.operation.duration"])
    assert dict(point.attributes or {})["error.type"] == "RateLimitError"


def test_a_sampler_sees_every_attribute_so_it_can_keep_only_failed_calls(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    class FailedCallsOnly(Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            *_: Any,
        ) -> Any:
            attributes = attributes or {}
            decision = Decision.RECORD_AND_SAMPLE if "error.type" in attributes else Decision.DROP
            return SamplingResult(decision, attributes if decision is Decision.RECORD_AND_SAMPLE else None)

        def get_description(self) -> str:
            return "failed calls only"

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=FailedCallsOnly())
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    make_provider(otel=True, tracer_provider=tracer_provider, meter_provider=MeterProvider())
    _chat(client)
    fake_openai.fail_next(status=429)
    with pytest.raises(openai.RateLimitError):
        _chat(client)
    assert flush_all_otel(5.0)

    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "RateLimitError"
    assert attributes["gen_ai.request.model"] == MODEL and attributes["neatlogs.status"] == "error"
    tracer_provider.shutdown()


def test_message_content_is_not_recorded_by_default(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI
) -> None:
    _chat(client, messages=[{"role": "user", "content": "weather in Reykjavik"}], tools=[WEATHER_TOOL])

    (span,) = otel.spans()
    attributes = dict(span.attributes or {})
    assert CONTENT_KEYS.isdisjoint(attributes)
    assert not any("Reykjavik" in str(value) for value in attributes.values())


def test_capture_content_records_messages_and_tools_in_the_semconv_json_format(
    make_provider: Callable[..., OpenAIProvider],
    otel: Otel,
    client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    make_provider(otel=True, tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    response = _chat(client, messages=messages, tools=[WEATHER_TOOL])

    (span,) = otel.spans()
    attributes = dict(span.attributes or {})
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
    ]
    (call,) = response.choices[0].message.tool_calls or []
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": {"city": "Paris"}}
            ],
            "finish_reason": "tool_calls",
        }
    ]
    (tool,) = json.loads(str(attributes["gen_ai.tool.definitions"]))
    assert tool["type"] == "function" and tool["name"] == "get_weather"
    assert tool["parameters"] == WEATHER_TOOL["function"]["parameters"]  # type: ignore[index]


def test_explicit_capture_content_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    assert OTelSink().capture_content is True
    assert OTelSink(capture_content=False).capture_content is False
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    assert OTelSink().capture_content is False


# ---- metrics ----


def test_duration_token_and_time_to_first_chunk_histograms_follow_the_conventions(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    response = _chat(client)
    list(_chat(client, stream=True, extra_headers={"x-fake-chunk-delay": "0.01"}))

    found = otel.metrics()
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": MODEL,
        "server.address": "127.0.0.1",
        "server.port": int(fake_openai.url.rsplit(":", 1)[1]),
    }

    duration = found["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    (point,) = _points(duration)
    assert dict(point.attributes or {}) == common
    assert point.count == 2
    assert list(point.explicit_bounds) == DURATION_BUCKETS

    tokens = found["gen_ai.client.token.usage"]
    assert tokens.unit == "{token}"
    by_type = {dict(p.attributes or {})["gen_ai.token.type"]: p for p in _points(tokens)}
    assert set(by_type) == {"input", "output"}
    assert response.usage is not None
    # The stream asked for no usage, so only the first call reported tokens.
    assert by_type["input"].count == 1 and by_type["input"].sum == response.usage.prompt_tokens
    assert by_type["output"].sum == response.usage.completion_tokens
    assert {
        k: v for k, v in (by_type["input"].attributes or {}).items() if k != "gen_ai.token.type"
    } == common
    assert list(by_type["input"].explicit_bounds) == TOKEN_BUCKETS

    ttft = found["gen_ai.client.operation.time_to_first_chunk"]
    assert ttft.unit == "s"
    (point,) = _points(ttft)
    assert point.count == 1 and point.sum > 0
    assert list(point.explicit_bounds) == DURATION_BUCKETS


# ---- when no span is made ----


def test_suppressed_instrumentation_makes_no_span_and_no_record(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI
) -> None:
    key = otel_context._SUPPRESS_INSTRUMENTATION_KEY
    token = otel_context.attach(otel_context.set_value(key, True))
    try:
        _chat(client)
    finally:
        otel_context.detach(token)

    assert otel.spans() == []
    assert traced.get_conversation_history() == []


def test_sink_skips_a_record_whose_context_suppresses_instrumentation(otel: Otel) -> None:
    sink = OTelSink(otel.tracer_provider, otel.meter_provider)
    suppressed = otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True)
    sink.emit(_record(context=suppressed))
    sink.emit(_record())

    assert len(otel.spans()) == 1
    assert sink.stats()["skipped"] == 1 and sink.stats()["exported"] == 1


def test_otel_false_makes_no_span_even_with_providers_passed(
    make_provider: Callable[..., OpenAIProvider], otel: Otel, client: openai.OpenAI
) -> None:
    provider = make_provider(
        otel=False, tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider
    )
    _chat(client)

    assert len(provider.get_conversation_history()) == 1
    assert otel.spans() == []
    assert otel.metrics() == {}


def test_sink_does_no_work_while_no_sdk_provider_is_installed() -> None:
    if otel_module._global_providers_installed():
        pytest.skip("a global OpenTelemetry provider is installed in this process")
    conversions = 0

    def reader(record: CallRecord) -> dict[str, Any]:
        nonlocal conversions
        conversions += 1
        return {"model": MODEL}

    sink = OTelSink()
    sink.emit(_record(reader))
    assert sink.flush(5.0)

    assert conversions == 0
    assert sink.stats() == {"exported": 0, "skipped": 0, "dropped": 0, "failed": 0}


def test_two_providers_seeing_one_call_make_one_span(
    make_provider: Callable[..., OpenAIProvider], otel: Otel, client: openai.OpenAI
) -> None:
    providers = [
        make_provider(otel=True, tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
        for _ in range(2)
    ]
    _chat(client)

    assert [len(p.get_conversation_history()) for p in providers] == [1, 1]
    assert len(otel.spans()) == 1
    (point,) = _points(otel.metrics()["gen_ai.client.operation.duration"])
    assert point.count == 1


def test_queue_overflow_drops_and_counts_instead_of_blocking(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otel_module, "_MAX_QUEUE", 5)
    entered, release = threading.Event(), threading.Event()

    class Blocking(SpanProcessor):
        def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
            entered.set()
            release.wait(5.0)

    otel.tracer_provider.add_span_processor(Blocking())
    sink = OTelSink(otel.tracer_provider, otel.meter_provider)
    sink.emit(_record())
    assert entered.wait(5.0)  # the worker now holds the first record
    started = time.monotonic()
    for _ in range(7):
        sink.emit(_record())
    assert time.monotonic() - started < 0.5
    release.set()

    assert len(otel.spans()) == 6
    assert sink.stats()["dropped"] == 2 and sink.stats()["exported"] == 6
    assert otel_module.otel_stats()["dropped"] >= 2


# ---- other instrumentations of the same call ----


def _foreign_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


def test_no_span_when_an_openai_v2_style_wrapper_sits_on_create(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI
) -> None:
    from openai.resources.chat.completions import Completions

    # What opentelemetry-instrumentation-openai-v2 leaves on the class: a wrapt wrapper from its module.
    wrapper = _foreign_wrapper
    monkey = wrapt.FunctionWrapper(vars(Completions)["create"], wrapper)
    original_module = wrapper.__module__
    wrapper.__module__ = "opentelemetry.instrumentation.openai_v2.patch"
    Completions.create = monkey  # type: ignore[method-assign]
    try:
        _chat(client)
        # The sink looks for other instrumentors when it exports, so keep the wrapper until then.
        spans = otel.spans()
    finally:
        Completions.create = monkey.__wrapped__  # type: ignore[method-assign]
        wrapper.__module__ = original_module

    assert len(traced.get_conversation_history()) == 1
    assert spans == []
    assert otel_module.otel_stats()["skipped"] >= 1


def test_no_span_when_the_current_span_is_another_instrumentations_span_for_the_call(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI
) -> None:
    tracer = otel.tracer_provider.get_tracer("someone.elses.openai.instrumentation")
    attributes = {"gen_ai.provider.name": "openai", "gen_ai.request.model": MODEL}
    with tracer.start_as_current_span(f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=attributes):
        _chat(client)
    with tracer.start_as_current_span("my handler"):  # an ordinary parent still gets a child
        _chat(client)

    (span,) = otel.spans()
    assert span.parent is not None


def test_no_span_for_a_client_logfire_instruments(
    traced: OpenAIProvider, otel: Otel, fake_openai: FakeOpenAI
) -> None:
    sdk = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)
    sdk._is_instrumented_by_logfire = True  # type: ignore[attr-defined]
    try:
        _chat(sdk)
    finally:
        sdk.close()

    assert otel.spans() == []


@pytest.mark.parametrize("neatlogs_first", [True, False], ids=["neatlogs-inner", "neatlogs-outer"])
def test_real_openai_v2_instrumentor_and_neatlogs_give_one_span_per_call(
    make_provider: Callable[..., OpenAIProvider], otel: Otel, client: openai.OpenAI, neatlogs_first: bool
) -> None:
    openai_v2 = pytest.importorskip("opentelemetry.instrumentation.openai_v2")
    instrumentor = openai_v2.OpenAIInstrumentor()
    options = {"otel": True, "tracer_provider": otel.tracer_provider, "meter_provider": otel.meter_provider}
    provider = make_provider(**options) if neatlogs_first else None
    instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        provider = provider or make_provider(**options)
        _chat(client)
        spans = otel.spans()  # exported while both instrumentations are still in place
        # Remove the outer wrapper first so each side restores what it found.
        if neatlogs_first:
            instrumentor.uninstrument()
        provider.undo_override()
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()

    assert len(provider.get_conversation_history()) == 1
    assert spans == []
    theirs = [s for s in otel.exporter.get_finished_spans() if s.name == f"chat {MODEL}"]
    assert len(theirs) == 1


# ---- OTLP setup ----


def test_configure_otlp_does_nothing_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    before = trace.get_tracer_provider()

    assert otel_module.configure_otlp() is False
    assert trace.get_tracer_provider() is before


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_configure_otlp_exports_neatlogs_spans_and_metrics_to_a_collector(fake_openai: FakeOpenAI) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    _Collector.received = []
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    script = textwrap.dedent(
        f"""
        import openai
        from neatlogs import configure_otlp
        from neatlogs.sinks.otel.sink import flush_all_otel
        from neatlogs.openai import OpenAIProvider

        first, second = configure_otlp("otlp-test"), configure_otlp()
        provider = OpenAIProvider()
        provider.override()
        client = openai.OpenAI(base_url={fake_openai.base_url!r}, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model={MODEL!r}, messages=[{{"role": "user", "content": "hi"}}])
        print(first, second, flush_all_otel(10.0))
        """
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "NEATLOGS_"))}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{collector.server_address[1]}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30
        )
    finally:
        collector.shutdown()
        collector.server_close()

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "True"]
    bodies = dict(_Collector.received)
    assert b"chat gpt-4o-mini" in bodies["/v1/traces"]
    assert b"otlp-test" in bodies["/v1/traces"]  # service.name
    assert b"gen_ai.client.operation.duration" in bodies["/v1/metrics"]


def test_sampled_out_calls_make_no_span_but_are_counted_in_the_metrics(
    make_provider: Callable[..., OpenAIProvider], otel: Otel, client: openai.OpenAI
) -> None:
    make_provider(
        otel=True, tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, sample_rate=0.0
    )
    for _ in range(3):
        _chat(client)

    assert otel.spans() == []
    (point,) = _points(otel.metrics()["gen_ai.client.operation.duration"])
    assert point.count == 3


def test_error_spans_carry_no_stack_trace_without_content_capture(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next(status=400)
    with pytest.raises(openai.BadRequestError):
        _chat(client)

    (span,) = otel.spans()
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "BadRequestError"
    assert "exception.stacktrace" not in event.attributes


def test_cost_and_rate_limit_remaining_are_metrics_too(
    traced: OpenAIProvider, otel: Otel, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    for _ in client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    ):
        pass

    (record,) = traced.get_conversation_history()
    metrics = otel.metrics()
    (cost,) = metrics["neatlogs.client.cost"].data.data_points
    assert cost.value == pytest.approx(record["cost_usd"]) and cost.value > 0
    remaining = {
        point.attributes["neatlogs.rate_limit.kind"]: point.value
        for point in metrics["neatlogs.client.rate_limit.remaining"].data.data_points
    }
    assert remaining == {
        "requests": record["rate_limit"]["remaining_requests"],
        "tokens": record["rate_limit"]["remaining_tokens"],
    }
