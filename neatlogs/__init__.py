"""neatlogs: every LLM call your application makes, observable with one line.

import neatlogs
neatlogs.init(endpoint="http://127.0.0.1:7077", api_key="...", tags=["production"])
"""

from __future__ import annotations

import threading
from typing import Any

from neatlogs._config import check_optional_limit
from neatlogs._context import trace
from neatlogs._version import __version__
from neatlogs.llm import LLMTracker
from neatlogs.record.pricing import get_prices, set_prices
from neatlogs.record.schema import Record
from neatlogs.sinks.base import Sink

__all__ = [
    "LLMTracker",
    "Record",
    "Sink",
    "__version__",
    "configure_otlp",
    "flush",
    "get_conversation_history",
    "get_prices",
    "init",
    "set_prices",
    "shutdown",
    "stats",
    "trace",
]

_default_tracker: LLMTracker | None = None
_init_lock = threading.Lock()


def init(
    api_key: str | None = None,
    endpoint: str | None = None,
    tags: list[Any] | tuple[Any, ...] | None = None,
    **options: Any,
) -> LLMTracker:
    """Start tracing every installed LLM SDK; a second call replaces the first tracker."""
    global _default_tracker
    tracker = LLMTracker(api_key=api_key, endpoint=endpoint, tags=tags, **options)
    with _init_lock:
        previous, _default_tracker = _default_tracker, tracker
    if previous is not None:
        previous.stop_instrumenting()
    tracker.override_api()
    return tracker


def configure_otlp(service_name: str = "neatlogs-app") -> bool:
    """Install OpenTelemetry SDK providers exporting OTLP/HTTP, only when OTEL_EXPORTER_OTLP_ENDPOINT
    is set and `neatlogs[otel]` is installed; True when it did."""
    from neatlogs.sinks.otel.sink import configure_otlp as configure

    return configure(service_name)


def flush(timeout: float | None = None) -> bool:
    """Wait until every record so far is delivered to its endpoint; False if `timeout` ran out first."""
    import time

    from neatlogs.sinks.exporter import flush_all
    from neatlogs.sinks.otel.sink import flush_all_otel

    deadline = None if timeout is None else time.monotonic() + timeout
    delivered = flush_all(timeout)
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    return flush_all_otel(remaining) and delivered


def shutdown(timeout: float | None = None) -> None:
    """Flush (bounded by `timeout`) and stop the background exporter."""
    from neatlogs.sinks.exporter import shutdown_all
    from neatlogs.sinks.otel.sink import shutdown_all_otel

    shutdown_all(timeout)
    shutdown_all_otel(timeout)


def stats() -> dict[str, Any]:
    """Process-wide figures: exporter counters, OpenTelemetry sink counters, and LLM usage.

    The exporter's integer counters (`enqueued`, `sent`, `dropped`, `failed`, `retried`, `queue_size`, ...;
    docs/exporter.md), the OpenTelemetry sink's as `otel_*`, and `usage`: every
    traced call (sampled out or not) as `calls`, `errors` ({type: n}), `incomplete`, token counts,
    `cost_usd`, `unpriced_calls`, `latency_ms` ({"p50", "p95"}) and `by_model` (the same per requested
    model, plus `ttft_ms` and the latest `rate_limit_remaining`). See docs/cost.md.
    """
    from neatlogs.dispatch import drain
    from neatlogs.sinks.exporter import exporter_stats
    from neatlogs.sinks.otel.sink import otel_stats
    from neatlogs.sinks.stats import USAGE_STATS

    counters: dict[str, Any] = dict(exporter_stats())
    counters.update({f"otel_{name}": value for name, value in otel_stats().items()})
    drain()  # every call finished before this one is counted
    counters["usage"] = USAGE_STATS.snapshot()
    return counters


def get_conversation_history(limit: int | None = None) -> list[dict[str, Any]]:
    """The records of the tracker started by `init()`, oldest first ([] before `init()`)."""
    tracker = _default_tracker
    return tracker.get_conversation_history(check_optional_limit(limit)) if tracker else []
