"""Every speed trick (or workaround) of neatlogs that relies on a private API of the standard library or
of OpenTelemetry, each behind one small function with a plain fallback.

Each function below looks for the private API once and returns what to use: the fast (or only
reliable) way when the API is there, the plain, public way when it is missing or has changed. Both give
the same bytes or values (tests/test_fastpaths.py compares them, and runs neatlogs with each private
API taken away). Why each one is worth it is in docs/overhead.md ("Why the fast paths").

- `json_encoder()`: `json.encoder.c_make_encoder` (CPython's C encoder, built once) for the records'
  compact JSON text. Fallback: a public `json.JSONEncoder` with the same settings.
- `environ_reader()`: `os.environ._data`, the environment's own dict, to tell cheaply whether the
  environment changed since the exporter last read its proxy settings. Fallback: `os.environ` itself.
- `otel_globals_reader()`: `opentelemetry.trace._TRACER_PROVIDER` and
  `opentelemetry.metrics._internal._METER_PROVIDER` (None until the application sets a global
  provider). Fallback: the public `get_tracer_provider()` / `get_meter_provider()` (their proxies).
- `otel_placeholder_check()`: whether a provider is only the API's no-op or proxy (knows
  `opentelemetry.metrics._internal._ProxyMeterProvider`). Fallback: any provider class defined in the
  API packages themselves (`opentelemetry.trace`, `opentelemetry.metrics`) is one.
- `otel_suppress_key()`: `opentelemetry.context._SUPPRESS_INSTRUMENTATION_KEY` (and the HTTP one),
  the keys OpenTelemetry's instrumentations check. No public equivalent: without them suppression is
  not honoured (calls are traced, the exporter's requests are not marked).

One more lives with the SDK code, since nothing outside `neatlogs/providers/` may import an SDK:

- `neatlogs.providers._stainless.events.sse_decoder_tap()`: a subclass of the SDK's private
  `SSEDecoder` that keeps a stream's event lines as they are decoded. Fallback (None): the stream
  proxy keeps each chunk the SDK yields.
"""

from __future__ import annotations

import json
import json.encoder
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "environ_reader",
    "json_encoder",
    "otel_globals_reader",
    "otel_placeholder_check",
    "otel_suppress_key",
]

# ---- compact JSON text ----


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON data")


def plain_json_encoder() -> Callable[[Any], str]:
    """`json.dumps(value, separators=(",", ":"), allow_nan=False)` through the public encoder class."""
    return json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def json_encoder() -> Callable[[Any], str]:
    """A function giving the compact JSON text of a value (non-ASCII escaped, NaN refused).

    Raises TypeError, ValueError or RecursionError for what is not JSON data (a cycle ends in
    RecursionError with the C encoder, which has no cycle check; in ValueError with the public one).
    """
    # Built once, rather than one encoder object per call as `json.dumps` does.
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    try:
        encode = make(
            None, _not_json, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
        )
    except Exception:  # missing (not CPython) or a changed signature
        return plain_json_encoder()

    def c_encode(value: Any) -> str:
        return "".join(encode(value, 0))

    return c_encode


# ---- has the environment changed? ----


def _environ_mapping() -> Mapping[Any, Any]:
    return os.environ


def environ_reader() -> Callable[[], Mapping[Any, Any]]:
    """A function giving the environment as a mapping to copy (`dict(...)`) and later compare with `==`.

    The copy equals the mapping again exactly while no variable was set, changed or removed.
    """
    if type(getattr(os.environ, "_data", None)) is not dict:
        return _environ_mapping

    # Read on every call: the dict compares with a copy of itself without encoding every variable.
    def environ_data() -> Mapping[Any, Any]:
        data = getattr(os.environ, "_data", None)
        return data if type(data) is dict else os.environ

    return environ_data


# ---- OpenTelemetry's global providers ----


def _public_globals() -> tuple[Any, Any]:
    from opentelemetry import metrics, trace

    return trace.get_tracer_provider(), metrics.get_meter_provider()


def otel_globals_reader() -> Callable[[], tuple[Any, Any]]:
    """A function giving (global tracer provider, global meter provider): None or the API's proxies
    until the application sets a real one (`otel_placeholder_check` tells them apart)."""
    from opentelemetry import metrics, trace  # noqa: F401 - imports opentelemetry.metrics._internal

    metrics_internal: Any = sys.modules.get("opentelemetry.metrics._internal")
    missing = object()
    if getattr(trace, "_TRACER_PROVIDER", missing) is missing or (
        getattr(metrics_internal, "_METER_PROVIDER", missing) is missing
    ):
        return _public_globals

    # `get_tracer_provider()` consults os.environ on every call until a provider is set; the module
    # variables are a plain read.
    def module_globals() -> tuple[Any, Any]:
        return trace._TRACER_PROVIDER, metrics_internal._METER_PROVIDER

    return module_globals


_API_MODULES = ("opentelemetry.trace", "opentelemetry.metrics")


def _defined_by_the_api(provider: Any) -> bool:
    return str(type(provider).__module__).startswith(_API_MODULES)


def plain_placeholder_check() -> Callable[[Any], bool]:
    """The public way: no-op and proxy providers are the ones the API packages define themselves."""
    from opentelemetry import metrics, trace

    kinds = (trace.NoOpTracerProvider, trace.ProxyTracerProvider, metrics.NoOpMeterProvider)
    return lambda provider: provider is None or isinstance(provider, kinds) or _defined_by_the_api(provider)


def otel_placeholder_check() -> Callable[[Any], bool]:
    """A function telling whether a provider is None or only one of the API's no-op or proxy providers
    (spans and measurements made through it go nowhere until a real provider is set)."""
    from opentelemetry import metrics, trace

    internal = sys.modules.get("opentelemetry.metrics._internal")
    proxy_meter = getattr(internal, "_ProxyMeterProvider", None)
    if not isinstance(proxy_meter, type):
        return plain_placeholder_check()
    kinds = (trace.NoOpTracerProvider, trace.ProxyTracerProvider, metrics.NoOpMeterProvider, proxy_meter)
    return lambda provider: provider is None or isinstance(provider, kinds)


# ---- OpenTelemetry's "suppress instrumentation" flag ----


def otel_suppress_key(http: bool = False) -> Any | None:
    """The context key OpenTelemetry instrumentations check to skip a block of code (with `http`, the
    one HTTP client instrumentations check), or None when this opentelemetry-api has none.

    opentelemetry-api owns them; a key made here with `create_key` would be one nobody checks.
    """
    try:
        from opentelemetry import context
    except ImportError:  # pragma: no cover - opentelemetry-api is a dependency
        return None
    return getattr(
        context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY" if http else "_SUPPRESS_INSTRUMENTATION_KEY", None
    )
