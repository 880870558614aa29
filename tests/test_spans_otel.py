"""Spans in OpenTelemetry: a span per step, named by the GenAI conventions, the calls inside as children."""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import neatlogs
from neatlogs.llm import LLMTracker

MODEL = "gpt-4o-mini"


class Exported:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> dict[str, ReadableSpan]:
        assert neatlogs.flush(5.0)
        return {span.name: span for span in self.exporter.get_finished_spans()}


@pytest.fixture
def exported() -> Iterator[Exported]:
    made = Exported()
    yield made
    made.provider.shutdown()


@pytest.fixture
def make_tracker(exported: Exported) -> Iterator[Callable[..., LLMTracker]]:
    made: list[LLMTracker] = []

    def make(**options: Any) -> LLMTracker:
        tracker = LLMTracker(otel=True, tracer_provider=exported.provider, **options)
        tracker.override_api()
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.stop_instrumenting()


def _ask(client: openai.OpenAI, text: str = "hi") -> None:
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_steps_become_otel_spans_named_by_the_conventions_with_their_calls_as_children(
    make_tracker: Callable[..., LLMTracker], exported: Exported, client: openai.OpenAI
) -> None:
    make_tracker()

    @neatlogs.observe(kind="tool")
    def validate_transaction(amount: int) -> bool:
        _ask(client, "validate")
        return True

    with neatlogs.span("payments", kind="agent"), neatlogs.span("plan", kind="workflow"):
        validate_transaction(100)

    spans = exported.spans()
    agent, plan = spans["invoke_agent payments"], spans["plan"]
    tool = spans[f"execute_tool {validate_transaction.__qualname__}"]
    call = spans[f"chat {MODEL}"]
    assert agent.attributes is not None and tool.attributes is not None and plan.attributes is not None
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "payments"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == validate_transaction.__qualname__
    assert (
        "gen_ai.operation.name" not in plan.attributes and plan.attributes["neatlogs.span.kind"] == "workflow"
    )
    assert tool.kind is SpanKind.INTERNAL and call.kind is SpanKind.CLIENT
    assert _parent(call) == tool.context.span_id
    assert _parent(tool) == plan.context.span_id and _parent(plan) == agent.context.span_id
    assert agent.parent is None
    assert len({s.context.trace_id for s in (agent, plan, tool, call)}) == 1
    # a step's span covers its calls
    assert agent.start_time is not None and call.start_time is not None and tool.end_time is not None
    assert agent.start_time <= tool.start_time <= call.start_time  # type: ignore[operator]
    assert call.end_time <= tool.end_time <= agent.end_time  # type: ignore[operator]


def test_a_step_inside_an_application_span_hangs_from_it(
    make_tracker: Callable[..., LLMTracker], exported: Exported, client: openai.OpenAI
) -> None:
    make_tracker()
    tracer = exported.provider.get_tracer("app")
    with (
        tracer.start_as_current_span("http request") as request_span,
        neatlogs.span("handler") as step,
        tracer.start_as_current_span("db query"),
    ):
        _ask(client)  # nearer parent: the application's own span opened inside the step
    spans = exported.spans()
    assert _parent(spans["handler"]) == request_span.get_span_context().span_id
    assert _parent(spans[f"chat {MODEL}"]) == spans["db query"].context.span_id
    assert spans["handler"].attributes is not None
    assert spans["handler"].attributes["neatlogs.record_id"] == step.id


def test_a_failing_step_is_an_error_span_and_content_stays_out_unless_captured(
    make_tracker: Callable[..., LLMTracker], exported: Exported
) -> None:
    make_tracker()
    with pytest.raises(TimeoutError), neatlogs.span("fetch", kind="tool", input={"url": "https://x"}):
        raise TimeoutError("too slow")
    span = exported.spans()["execute_tool fetch"]
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "TimeoutError"
    assert [event.name for event in span.events] == ["exception"]
    assert (
        "neatlogs.span.input" not in span.attributes and "gen_ai.tool.call.arguments" not in span.attributes
    )


def test_with_content_capture_a_steps_input_and_output_are_attributes(
    make_tracker: Callable[..., LLMTracker], exported: Exported
) -> None:
    make_tracker(capture_content={"otel": "full"})
    with neatlogs.span("lookup", kind="tool", input={"id": 7}) as step:
        step.set_output({"name": "Ada"})
        step.set_attribute("cache", "hit")
    attributes = exported.spans()["execute_tool lookup"].attributes
    assert attributes is not None
    assert json.loads(str(attributes["gen_ai.tool.call.arguments"])) == {"id": 7}
    assert json.loads(str(attributes["gen_ai.tool.call.result"])) == {"name": "Ada"}
    assert json.loads(str(attributes["neatlogs.span.attributes"])) == {"cache": "hit"}


def test_a_call_finishing_after_its_step_ended_still_hangs_from_the_step(
    make_tracker: Callable[..., LLMTracker], exported: Exported, client: openai.OpenAI
) -> None:
    make_tracker()
    with neatlogs.span("short-step") as step:
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert neatlogs.flush(5.0)  # the step's span ends first
    for _ in stream:
        pass
    spans = exported.spans()
    assert _parent(spans[f"chat {MODEL}"]) == spans["short-step"].context.span_id
    assert list(spans) == ["short-step", f"chat {MODEL}"] and len(exported.exporter.get_finished_spans()) == 2
    assert step.id


def test_two_trackers_on_one_tracer_provider_make_one_span_per_step(
    make_tracker: Callable[..., LLMTracker], exported: Exported, client: openai.OpenAI
) -> None:
    make_tracker()
    make_tracker()
    with neatlogs.span("shared"):
        _ask(client)
    assert neatlogs.flush(5.0)
    names = [span.name for span in exported.exporter.get_finished_spans()]
    assert names.count("shared") == 1


def test_steps_in_threads_with_copied_context_are_children_in_otel_too(
    make_tracker: Callable[..., LLMTracker], exported: Exported
) -> None:
    make_tracker()

    def child() -> None:
        with neatlogs.span("child-step"):
            pass

    with neatlogs.span("parent-step"):
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(child,))
        thread.start()
        thread.join()
    spans = exported.spans()
    assert _parent(spans["child-step"]) == spans["parent-step"].context.span_id
    assert trace.get_current_span().get_span_context().is_valid is False
