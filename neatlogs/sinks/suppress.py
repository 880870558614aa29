"""Mark the exporter's own HTTP calls so OpenTelemetry instrumentations (e.g. of `requests`) skip them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from neatlogs._fastpaths import otel_suppress_key

# The keys opentelemetry-instrumentation's `suppress_instrumentation` sets (see neatlogs._fastpaths).
_KEYS = tuple(key for key in (otel_suppress_key(), otel_suppress_key(http=True)) if key is not None)


@contextlib.contextmanager
def suppressed_instrumentation() -> Iterator[None]:
    """Within this block OpenTelemetry instrumentations make no spans (a no-op without opentelemetry)."""
    if not _KEYS:
        yield
        return
    from opentelemetry import context

    ctx = context.get_current()
    for key in _KEYS:
        ctx = context.set_value(key, True, ctx)
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)
