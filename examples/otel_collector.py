"""OpenTelemetry: the traced calls exported as OTLP spans and metrics to an OpenTelemetry Collector.

`configure_otlp()` installs OpenTelemetry SDK providers with OTLP/HTTP exporters when
OTEL_EXPORTER_OTLP_ENDPOINT is set. From then on every call neatlogs records is also a span
(`chat gpt-4o-mini`, `embeddings text-embedding-3-small`; kind CLIENT; `gen_ai.*` attributes;
`error.type` and status ERROR for a failed call), a child of your own span current at the call,
plus the `gen_ai.client.*` duration and token metrics. Without the variable, this example prints
its spans on the console instead. Needs `pip install 'neatlogs[otel]'`.

Runs offline against neatlogs' bundled fake OpenAI server; set OPENAI_API_KEY to use the real API.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 python examples/otel_collector.py
    python examples/otel_collector.py   # spans on the console
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import openai
from openai import OpenAI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import neatlogs

SERVICE_NAME = "otel-collector-example"
SHOWN = ("gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "error.type")


def one_line(span: ReadableSpan) -> str:
    """A console line per span: name, kind, status and a few attributes."""
    attributes = {key: value for key, value in (span.attributes or {}).items() if key in SHOWN}
    return f"span {span.name!r} {span.kind.name} {span.status.status_code.name} {attributes}\n"


def setup_tracing() -> str:
    """Export over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else to the console; says where."""
    if neatlogs.configure_otlp(service_name=SERVICE_NAME):
        return f"OTLP/HTTP at {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}"
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    trace.set_tracer_provider(provider)
    return "the console"


def answer(client: OpenAI, question: str) -> str:
    """An application step: its own span, with neatlogs' spans for the calls made inside it."""
    with trace.get_tracer(SERVICE_NAME).start_as_current_span("answer-question"):
        client.embeddings.create(model="text-embedding-3-small", input=question)
        draft = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Shorten: {draft.choices[0].message.content}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        with contextlib.suppress(openai.BadRequestError):  # the API refuses it: an error span
            client.chat.completions.create(model="gpt-4o-mini", messages=[])
        return text


@contextlib.contextmanager
def openai_client() -> Iterator[OpenAI]:
    """The real API when OPENAI_API_KEY is set, else neatlogs' fake OpenAI server on loopback."""
    if os.environ.get("OPENAI_API_KEY"):
        with OpenAI() as client:
            yield client
        return
    from neatlogs._testing.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake, OpenAI(base_url=fake.base_url, api_key="sk-offline-example") as client:
        yield client


def main() -> None:
    destination = setup_tracing()  # before init(), as an application sets up OpenTelemetry first
    neatlogs.init(tags=["otel-example"])
    with openai_client() as client:
        print(answer(client, "What does an OpenTelemetry Collector do?"))
    delivered = neatlogs.flush(timeout=10)  # spans and metrics reach the exporters
    calls = len(neatlogs.get_conversation_history())
    print(f"{calls} calls traced; spans sent to {destination}{'' if delivered else ' (flush timed out)'}")


if __name__ == "__main__":
    main()
