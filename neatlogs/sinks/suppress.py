"""Mark the exporter's own HTTP calls so OpenTelemetry instrumentations (e.g. of `requests`) skip them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _suppress_keys() -> tuple[Any, ...]:
    # opentelemetry-api owns the keys that opentelemetry-instrumentation's `suppress_instrumentation`
    # sets; a key made with `create_key` here would be a different key that nobody checks.
    try:
        from opentelemetry import context
    except ImportError:
        return ()
    names = ("_SUPPRESS_INSTRUMENTATION_KEY", "_SUPPRESS_HTTP_INSTRUMENTATION_KEY")
    return tuple(key for key in (getattr(context, name, None) for name in names) if key is not None)


_KEYS = _suppress_keys()


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
