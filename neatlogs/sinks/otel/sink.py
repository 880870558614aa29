"""OpenTelemetry sink: one GenAI semantic-convention span and the gen_ai.client.* metrics per traced call.

The caller's thread only appends the finished record to a bounded queue. One daemon thread per process
turns records into spans with the call's own start and end times, parented on the OpenTelemetry context
that was current when the call was made, and records the metrics. Nothing here imports a provider SDK.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import traceback
import weakref
from collections import OrderedDict
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from neatlogs._fastpaths import otel_globals_reader, otel_placeholder_check, otel_suppress_key
from neatlogs._log import log_internal_error, logger
from neatlogs._version import __version__
from neatlogs.dispatch import drain as drain_dispatcher
from neatlogs.record.call import CallRecord
from neatlogs.record.redact import mask_secrets
from neatlogs.record.span import SpanNode
from neatlogs.record.traits import traits_of
from neatlogs.sinks.otel import semconv as sc
from neatlogs.worker import BackgroundWorker

__all__ = ["OTelSink", "configure_otlp", "flush_all_otel", "otel_stats", "shutdown_all_otel"]

_MAX_QUEUE = 10_000
# Records become spans in batches: as soon as this many wait, else every `_EXPORT_EVERY` seconds (a
# span keeps the call's own start and end times however late it is made). Few wake-ups: a thread that
# wants the GIL back while the calling thread is busy slows every GIL hand-off (docs/overhead.md).
_WAKE_AT = 256
_EXPORT_EVERY = 1.0
# The longest the interpreter's exit waits for queued records to become spans.
_EXIT_TIMEOUT = 2.0
# How many recent calls are remembered to give one span per call when several neatlogs providers see it.
_RECENT_CALLS = 1024
# Steps (neatlogs spans) whose OpenTelemetry span was started for a child before the step's own record
# came: bounded, the oldest is ended early rather than kept forever (a step whose record never comes).
_MAX_OPEN_STEPS = 4096
_CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = frozenset({"true", "1", "yes", "span_only", "span_and_event"})
_SCOPE = "neatlogs"
_SUPPRESS_KEY = otel_suppress_key()  # None where this opentelemetry-api has none (_fastpaths)

# ---- is an OpenTelemetry SDK installed at all? ----

# Both read through neatlogs._fastpaths: the globals stay None (or the API's proxies) until the
# application sets a provider, and the check runs on the caller's thread until then.
_read_global_providers = otel_globals_reader()
_is_placeholder = otel_placeholder_check()
_global_installed = False


def _is_real(provider: Any) -> bool:
    return not _is_placeholder(provider)


def _global_providers_installed() -> bool:
    """True once the application has installed a real global tracer or meter provider."""
    global _global_installed
    if _global_installed:  # global providers can be set only once, so the answer never goes back
        return True
    tracer_provider, meter_provider = _read_global_providers()
    _global_installed = not (_is_placeholder(tracer_provider) and _is_placeholder(meter_provider))
    return _global_installed


def _version() -> str:
    return __version__


def _capture_from_env() -> bool:
    return os.environ.get(_CAPTURE_ENV, "").strip().lower() in _CAPTURE_ON


# ---- the shared worker ----


class _Exports:
    """What every OTelSink shares: the outcome counts and the calls recently made into spans."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)  # the child counts its own

    def _reset(self) -> None:
        self.lock = threading.Lock()
        self.recent: OrderedDict[tuple[int, int, int], None] = OrderedDict()
        # (destination, step id) -> its OpenTelemetry span, open until the step's record comes; then
        # its span context, for children that arrive late (a stream finished after the step ended).
        self.open_steps: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self.ended_steps: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self.counts = {"exported": 0, "skipped": 0, "dropped": 0, "failed": 0}

    def count_drop(self, sink: OTelSink) -> None:
        # Producers on many threads may overflow at once; the lock keeps the counts exact.
        with self.lock:
            self.counts["dropped"] += 1
            sink._counts["dropped"] += 1

    def export(self, batch: list[tuple[OTelSink, CallRecord]]) -> None:
        """Turn a batch of queued records into spans and measurements (the worker's handler)."""
        for sink, record in batch:
            try:
                outcome = sink._export(record)
            except Exception:
                outcome = "failed"
                log_internal_error("turning a call into an OpenTelemetry span")
            with self.lock:
                self.counts[outcome] += 1
                sink._counts[outcome] += 1

    def seen(self, key: tuple[int, int, int]) -> bool:
        """True if this call already made a span for this destination (one handler at a time)."""
        recent = self.recent
        if key in recent:
            return True
        recent[key] = None
        if len(recent) > _RECENT_CALLS:
            recent.popitem(last=False)
        return False


def _register_exit_hooks() -> None:
    global _hooks_registered
    if _hooks_registered:
        return
    _hooks_registered = True
    # Registered when the first record arrives, usually after the application installed its SDK providers,
    # so (atexit being last-in first-out) the queue becomes spans before those providers shut down.
    atexit.register(shutdown_all_otel, _EXIT_TIMEOUT)


_EXPORTS = _Exports()
_WORKER: BackgroundWorker[tuple[OTelSink, CallRecord]] = BackgroundWorker(
    "neatlogs-otel",
    _EXPORTS.export,
    capacity=_MAX_QUEUE,
    wake_at=_WAKE_AT,
    every=_EXPORT_EVERY,
    on_start=_register_exit_hooks,
)
_SINKS: weakref.WeakSet[OTelSink] = weakref.WeakSet()
_hooks_registered = False


# ---- detecting another instrumentation of the same call ----


def _wrapped_by_other_instrumentor(method: Any, foreign: tuple[str, ...]) -> bool:
    for _ in range(8):  # a chain of wrapt wrappers, outermost first
        wrapper = getattr(method, "_self_wrapper", None)
        if wrapper is None:
            return False
        if str(getattr(wrapper, "__module__", "")).startswith(foreign):
            return True
        method = getattr(method, "__wrapped__", None)
    return False


def _other_instrumentor_active(record: CallRecord) -> bool:
    """True when another GenAI instrumentation is known to make its own span for this call."""
    # logfire.instrument_openai() marks the client (class or instance) it instruments.
    if getattr(record.client, "_is_instrumented_by_logfire", False) is True:
        return True
    traits = traits_of(record.provider)
    where = traits.sdk_methods.get(record.operation)
    module = sys.modules.get(where[0]) if where else None
    if where is None or module is None or not traits.foreign_instrumentations:
        return False
    for class_name in where[1]:
        owner = getattr(module, class_name, None)
        method = vars(owner).get(where[2]) if owner is not None else None
        if method is not None and _wrapped_by_other_instrumentor(method, traits.foreign_instrumentations):
            return True
    return False


def _parent_is_same_call(parent_context: Any, data: dict[str, Any]) -> bool:
    """True when the span current at the call is another instrumentation's CLIENT span for this call."""
    if parent_context is None:
        return False
    span = trace.get_current_span(parent_context)
    attributes = getattr(span, "attributes", None)  # SDK spans expose them; API-only spans do not
    if not attributes or getattr(span, "kind", None) is not SpanKind.CLIENT:
        return False
    if getattr(getattr(span, "instrumentation_scope", None), "name", None) == _SCOPE:
        return False
    model = attributes.get(sc.REQUEST_MODEL)
    has_provider = sc.PROVIDER_NAME in attributes or sc.SYSTEM in attributes
    return has_provider and model is not None and model == data.get("model")


# ---- the sink ----


class _Instruments:
    __slots__ = ("cost", "duration", "rate_limit_remaining", "time_to_first_chunk", "tokens")

    def __init__(self, meter: metrics.Meter) -> None:
        # neatlogs' own, beside the conventions' histograms: what the calls cost and how much of the
        # rate limit is left (the API reports it on streamed and raw responses, and on errors).
        self.cost = meter.create_counter(
            "neatlogs.client.cost", unit="USD", description="Cost of the calls, from neatlogs' price table."
        )
        create_gauge = getattr(meter, "create_gauge", None)  # opentelemetry-api >= 1.23
        self.rate_limit_remaining = (
            create_gauge(
                "neatlogs.client.rate_limit.remaining",
                unit="{request_or_token}",
                description="Requests or tokens left in the current rate-limit window, as last reported.",
            )
            if callable(create_gauge)
            else None
        )
        self.duration = _histogram(
            meter, sc.METRIC_OPERATION_DURATION, "s", "GenAI operation duration.", sc.DURATION_BUCKETS
        )
        self.tokens = _histogram(
            meter,
            sc.METRIC_TOKEN_USAGE,
            "{token}",
            "Number of input and output tokens used.",
            sc.TOKEN_BUCKETS,
        )
        self.time_to_first_chunk = _histogram(
            meter,
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            "s",
            "Time to receive the first chunk of a streamed response.",
            sc.DURATION_BUCKETS,
        )


def _histogram(
    meter: metrics.Meter, name: str, unit: str, description: str, buckets: tuple[float, ...]
) -> metrics.Histogram:
    try:
        return meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(buckets)
        )
    except TypeError:  # opentelemetry-api < 1.23 has no bucket advisory
        return meter.create_histogram(name, unit=unit, description=description)


class OTelSink:
    """Emits a GenAI semantic-convention span and gen_ai.client.* metrics for every finished call.

    `tracer_provider` / `meter_provider` default to the global ones (no-op until the application installs
    an SDK). Message content is recorded only with `capture_content=True` (None: on when
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is true/span_only/span_and_event). With
    `skip_if_other_instrumentor`, calls another GenAI instrumentation already traces make no span here.
    """

    # Sampled-out calls still reach this sink: they become metrics, not spans.
    sees_every_call = True

    def __init__(
        self,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        *,
        capture_content: bool | None = None,
        skip_if_other_instrumentor: bool = True,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._capture_content = _capture_from_env() if capture_content is None else bool(capture_content)
        self._skip_other = bool(skip_if_other_instrumentor)
        version = _version()
        # With no provider passed these are the API's proxies, which follow a global provider set later.
        self._tracer = trace.get_tracer(_SCOPE, version, tracer_provider)
        self._instruments = _Instruments(metrics.get_meter(_SCOPE, version, meter_provider))
        self._uses_global = tracer_provider is None or meter_provider is None
        self._live = _is_real(tracer_provider) or _is_real(meter_provider)
        # Spans from several neatlogs providers seeing the same call are deduplicated per tracer provider.
        self._destination = id(tracer_provider) if tracer_provider is not None else 0
        self._closed = False
        self._counts = {"exported": 0, "skipped": 0, "dropped": 0, "failed": 0}
        _SINKS.add(self)

    @property
    def capture_content(self) -> bool:
        """Whether message content goes into span attributes."""
        return self._capture_content

    def emit(self, record: CallRecord) -> None:
        """Queue a finished record (caller's thread; never blocks). Dropped and counted when full."""
        if self._closed:
            return
        if not self._live and not (self._uses_global and _global_providers_installed()):
            return  # nothing installed: every span and measurement would be a no-op
        if len(_WORKER) < _MAX_QUEUE and _WORKER.put((self, record)):
            record.mark_read_by_sink()  # converted on this sink's thread soon: not worth packing
        else:
            _EXPORTS.count_drop(self)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued so far is a span, then flush the providers; False on timeout."""
        drain_dispatcher()
        deadline = None if timeout is None else time.monotonic() + timeout
        done = _WORKER.flush(timeout)
        return _force_flush(self._providers(), deadline) and done

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush (bounded by `timeout`) and stop accepting records. The providers are left running."""
        self.flush(timeout)
        self._closed = True

    def stats(self) -> dict[str, int]:
        """This sink's counters: exported, skipped (suppressed, duplicate), dropped (queue full), failed."""
        return dict(self._counts)

    def _providers(self) -> list[Any]:
        return [
            self._tracer_provider if self._tracer_provider is not None else trace.get_tracer_provider(),
            self._meter_provider if self._meter_provider is not None else metrics.get_meter_provider(),
        ]

    # ---- on the worker thread ----

    def _export(self, record: CallRecord) -> str:
        parent = record.context
        if parent is not None and _SUPPRESS_KEY is not None and parent.get(_SUPPRESS_KEY):
            return "skipped"
        if record.span is not None:
            return self._export_step(record)
        if self._skip_other and _other_instrumentor_active(record):
            return "skipped"
        # Without content capture the sink reads the metadata view: no prompt or completion text at all.
        data = record.to_dict() if self._capture_content else record.metadata_dict()
        if self._skip_other and _parent_is_same_call(parent, data):
            return "skipped"
        if not record.sampled:
            # Sampling limits what leaves the process as spans; the metrics still count every call.
            self._record_metrics(record, data, parent)
            return "skipped"
        if _EXPORTS.seen((record.t_start, record.started_ns, self._destination)):
            return "skipped"
        start_ns = record.started_ns
        end_ns = start_ns + record.duration_ns
        # Every attribute but the content at creation: one pass of the SDK's attribute checks instead of
        # two, and samplers see them all.
        span = self._tracer.start_span(
            sc.span_name(data),
            context=self._parent_of(parent, record.parent),
            kind=SpanKind.CLIENT,
            attributes=sc.span_attributes(data, False),
            start_time=start_ns,
            record_exception=False,
            set_status_on_exception=False,
        )
        if span.is_recording():  # sampled out spans skip the content and error work
            if self._capture_content:
                span.set_attributes(sc.content_attributes(data))
            if data.get("status") == "error":
                message = _error_message(data)
                span.add_event(
                    "exception", _exception_attributes(record, data, self._capture_content), timestamp=end_ns
                )
                span.set_status(Status(StatusCode.ERROR, message))
        span.end(end_time=end_ns)
        self._record_metrics(record, data, trace.set_span_in_context(span, parent))
        return "exported"

    def _parent_of(self, context: Any, step: SpanNode | None) -> Any:
        """The context a span made inside neatlogs step `step` hangs from: the step's own span, unless
        the application opened an OpenTelemetry span inside the step (that one is the nearer parent)."""
        if step is None:
            return context
        if trace.get_current_span(context) is not trace.get_current_span(step.otel_context):
            return context
        return trace.set_span_in_context(self._step_span(step), context)

    def _step_span(self, step: SpanNode) -> Any:
        """The step's OpenTelemetry span: started (with the step's start time) by the first of its
        children to be exported or by its own record, whichever comes first."""
        worker = _EXPORTS
        key = (self._destination, step.id)
        span = worker.open_steps.get(key)
        if span is not None:
            return span
        ended = worker.ended_steps.get(key)
        if ended is not None:
            return trace.NonRecordingSpan(ended)
        span = self._tracer.start_span(
            sc.step_span_name(step.name, step.kind),
            context=self._parent_of(step.otel_context, step.parent),
            kind=SpanKind.INTERNAL,
            attributes=sc.step_start_attributes(step.id, step.name, step.kind),
            start_time=step.started_ns,
        )
        worker.open_steps[key] = span
        if len(worker.open_steps) > _MAX_OPEN_STEPS:
            old_key, old_span = worker.open_steps.popitem(last=False)
            old_span.end()
            _remember_ended(old_key, old_span)
        return span

    def _export_step(self, record: CallRecord) -> str:
        step = record.span
        assert step is not None
        if _EXPORTS.seen((record.t_start, record.started_ns, self._destination)):
            return "skipped"
        data = record.to_dict() if self._capture_content else record.metadata_dict()
        span = self._step_span(step)
        key = (self._destination, step.id)
        _EXPORTS.open_steps.pop(key, None)
        if key in _EXPORTS.ended_steps:  # ended early (see _MAX_OPEN_STEPS)
            return "skipped"
        end_ns = record.started_ns + record.duration_ns
        if span.is_recording():
            span.set_attributes(sc.step_end_attributes(data, self._capture_content))
            if data.get("status") == "error":
                span.add_event(
                    "exception", _exception_attributes(record, data, self._capture_content), timestamp=end_ns
                )
                span.set_status(Status(StatusCode.ERROR, _error_message(data)))
        span.end(end_time=end_ns)
        _remember_ended(key, span)
        return "exported"

    def _record_metrics(self, record: CallRecord, data: dict[str, Any], span_context: Any) -> None:
        instruments = self._instruments
        attributes = sc.metric_attributes(data)
        instruments.duration.record(record.duration_ns / 1e9, attributes, context=span_context)
        input_tokens, output_tokens = sc.usage_tokens(data)
        for token_type, count in (("input", input_tokens), ("output", output_tokens)):
            if count is not None:
                typed = {**attributes, sc.TOKEN_TYPE: token_type}
                instruments.tokens.record(count, typed, context=span_context)
        if record.stream and record.t_first is not None:
            seconds = (record.t_first - record.t_start) / 1e9
            instruments.time_to_first_chunk.record(seconds, attributes, context=span_context)
        cost = data.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            instruments.cost.add(cost, attributes, context=span_context)
        limits = data.get("rate_limit")
        gauge = instruments.rate_limit_remaining
        if gauge is not None and isinstance(limits, dict):
            for kind in ("requests", "tokens"):
                remaining = limits.get(f"remaining_{kind}")
                if isinstance(remaining, int):
                    gauge.set(
                        remaining, {**attributes, "neatlogs.rate_limit.kind": kind}, context=span_context
                    )


def _remember_ended(key: tuple[int, str], span: Any) -> None:
    ended = _EXPORTS.ended_steps
    ended[key] = span.get_span_context()
    if len(ended) > _RECENT_CALLS:
        ended.popitem(last=False)


def _error_message(data: dict[str, Any]) -> str:
    error = data.get("error")
    return str(error.get("message") or "") if isinstance(error, dict) else ""


def _exception_attributes(record: CallRecord, data: dict[str, Any], capture_content: bool) -> dict[str, str]:
    attributes = {
        "exception.type": sc.error_type(data) or "_OTHER",
        "exception.message": _error_message(data),
    }
    exc = record.error
    if exc is not None and capture_content:
        # The traceback bypasses the record's redaction (it holds local text), so only with content on.
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        attributes["exception.stacktrace"] = mask_secrets(stack)
    return attributes


def _force_flush(providers: list[Any], deadline: float | None) -> bool:
    ok = True
    seen: set[int] = set()
    for provider in providers:
        flush = getattr(provider, "force_flush", None)
        if id(provider) in seen or not callable(flush):  # the API's proxies and no-ops have none
            continue
        seen.add(id(provider))
        try:
            # The SDK providers take milliseconds.
            result = flush() if deadline is None else flush(max(0.0, deadline - time.monotonic()) * 1000)
        except Exception:
            log_internal_error("flushing an OpenTelemetry provider")
            result = False
        ok = ok and result is not False
    return ok


# ---- process-wide controls (called by neatlogs.flush / shutdown / stats) ----


def flush_all_otel(timeout: float | None = None) -> bool:
    """Wait until every record queued by any OTelSink is a span, then flush their providers."""
    drain_dispatcher()  # calls finished but not yet handed to their sinks
    deadline = None if timeout is None else time.monotonic() + timeout
    done = _WORKER.flush(timeout)
    providers = [provider for sink in list(_SINKS) for provider in sink._providers()]
    return _force_flush(providers, deadline) and done


def shutdown_all_otel(timeout: float | None = None) -> None:
    """Flush (bounded by `timeout`) and stop the background thread; a later record starts it again."""
    deadline = None if timeout is None else time.monotonic() + timeout
    flush_all_otel(timeout)
    _WORKER.stop(None if deadline is None else max(0.0, deadline - time.monotonic()))


def otel_stats() -> dict[str, int]:
    """Process-wide OpenTelemetry sink counters: exported, skipped, dropped, failed, queue_size."""
    drain_dispatcher()
    with _EXPORTS.lock:
        counts = dict(_EXPORTS.counts)
    counts["queue_size"] = len(_WORKER)
    return counts


# ---- OTLP setup helper ----

_configure_lock = threading.Lock()


def configure_otlp(service_name: str = "neatlogs-app") -> bool:
    """Install global SDK providers exporting OTLP/HTTP, only if OTEL_EXPORTER_OTLP_ENDPOINT is set.

    Needs the `otel` extra. Providers the application already installed are left alone. Returns True
    if a tracer or meter provider was installed by this call.
    """
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.info(
            "neatlogs: OTEL_EXPORTER_OTLP_ENDPOINT is set but OTLP export needs: pip install 'neatlogs[otel]'"
        )
        return False
    with _configure_lock:
        # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win over the default name (Resource.create reads them).
        named_by_env = bool(os.environ.get("OTEL_SERVICE_NAME")) or "service.name=" in os.environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        resource = Resource.create({} if named_by_env else {"service.name": service_name})
        installed = False
        if not _is_real(trace.get_tracer_provider()):
            tracer_provider = TracerProvider(resource=resource)
            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            trace.set_tracer_provider(tracer_provider)
            installed = True
        if not _is_real(metrics.get_meter_provider()):
            reader = PeriodicExportingMetricReader(OTLPMetricExporter())
            metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
            installed = True
    if installed and logger.isEnabledFor(logging.INFO):
        logger.info("neatlogs: exporting OpenTelemetry traces and metrics over OTLP/HTTP")
    return installed
