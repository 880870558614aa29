"""Every private-API fast path (neatlogs/_fastpaths.py, and the SDK's decoder tap) against its plain
fallback: both give the same bytes or values, and neatlogs works with the private API taken away."""

from __future__ import annotations

import collections
import gzip
import json
import json.encoder
import os
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import neatlogs
import neatlogs.providers._core.calls as calls_module
import neatlogs.providers.openai.patch as openai_patch
from neatlogs import _fastpaths
from neatlogs.openai import OpenAIProvider
from neatlogs.providers._stainless.events import sse_decoder_tap
from neatlogs.record import sanitize
from neatlogs.record.call import CallRecord
from neatlogs.sinks.exporter import ExporterSettings, exporter_sink, flush_all, http, shutdown_all
from neatlogs.sinks.otel import sink as otel_sink
from tests.fake_collector import FakeCollector

# ---- the C JSON encoder ----

JSON_VALUES: list[Any] = [
    {},
    [],
    "",
    "plain",
    'é ✓ \U0001f600 \x00 \n " \\ </script>',
    0,
    -1,
    2**70,
    1.5,
    1e300,
    -0.0,
    0.1 + 0.2,
    True,
    None,
    {"a": [1, 2.5, None, True, "é"], "b": {"c": {"d": []}}, "": ""},
    [{"role": "user", "content": "hello"}, {"role": "assistant", "content": None}],
    {"nested": [[[[["deep"]]]]], "keys with spaces": {"x": -3}},
]
NOT_JSON: list[Any] = [float("nan"), {"x": float("inf")}, [float("-inf")], object(), {"x": b"bytes"}]


def _encoders(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[Any], str]]:
    """The fast encoder, the public one, and the public one as it runs without CPython's C helper."""
    fast, public = _fastpaths.json_encoder(), _fastpaths.plain_json_encoder()
    pure = _fastpaths.plain_json_encoder()

    def pure_python(value: Any) -> str:
        with monkeypatch.context() as patch:
            patch.setattr(json.encoder, "c_make_encoder", None)
            return pure(value)

    return [fast, public, pure_python]


def test_the_c_encoder_is_used_where_cpython_has_it() -> None:
    assert json.encoder.c_make_encoder is not None  # CPython: the fast path is the one under test
    assert _fastpaths.json_encoder().__name__ == "c_encode"
    assert sanitize._encode_json.__name__ == "c_encode"


def test_the_c_encoder_and_the_public_one_write_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, public, pure_python = _encoders(monkeypatch)
    for value in JSON_VALUES:
        expected = json.dumps(value, separators=(",", ":"), allow_nan=False)
        assert fast(value) == public(value) == pure_python(value) == expected


def test_the_c_encoder_and_the_public_one_refuse_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    for encode in _encoders(monkeypatch):
        for value in [*NOT_JSON, cycle]:
            with pytest.raises((TypeError, ValueError, RecursionError)):
                encode(value)


def test_without_the_c_encoder_the_public_one_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where CPython's C helper is missing, json.encoder has it as None.
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert _fastpaths.json_encoder().__name__ == "encode"  # JSONEncoder.encode
    monkeypatch.setattr(json.encoder, "c_make_encoder", lambda *args: 1 / 0)  # a changed signature
    assert _fastpaths.json_encoder().__name__ == "encode"


# ---- the environment's own dict ----


def _readers(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[], Any]]:
    fast = _fastpaths.environ_reader()
    assert fast is not _fastpaths._environ_mapping  # CPython: os.environ has its `_data` dict
    return [fast, _fastpaths._environ_mapping]


def test_the_environment_dict_and_os_environ_see_the_same_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "NEATLOGS_FASTPATHS_TEST_VARIABLE"
    monkeypatch.delenv(name, raising=False)
    for read in _readers(monkeypatch):
        before = dict(read())
        assert before == read()
        monkeypatch.setenv(name, "one")
        assert before != read()
        with_one = dict(read())
        monkeypatch.setenv(name, "two")
        assert with_one != read()
        monkeypatch.setenv(name, "one")
        assert with_one == read()
        monkeypatch.delenv(name)
        assert before == read()


@pytest.fixture
def environ_without_data(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`os.environ` as an interpreter without its private `_data` would have it (same variables)."""
    monkeypatch.setattr(os, "environ", collections.UserDict(os.environ))
    assert not hasattr(os.environ, "_data")
    yield


def test_without_the_environment_dict_proxy_settings_still_follow_the_environment(
    environ_without_data: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = _fastpaths.environ_reader()
    assert read is _fastpaths._environ_mapping
    monkeypatch.setattr(http, "_read_environ", read)
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    session = http._Session()
    url = "http://collector.example:7077/v1/records"
    assert "http" not in session.merge_environment_settings(url, {}, None, None, None)["proxies"]
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    found = session.merge_environment_settings(url, {}, None, None, None)
    assert found["proxies"]["http"] == "http://proxy.example:3128"


# ---- both together: records on the wire ----


def _records_sent(collector: FakeCollector) -> list[dict[str, Any]]:
    bodies = [json.loads(gzip.decompress(request.body)) for request in collector.requests]
    return [record for body in bodies for record in body["records"]]


def _send(collector: FakeCollector, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    settings = ExporterSettings.resolve(endpoint=collector.url, api_key="nl-test-key", flush_interval=0.05)
    sink = exporter_sink(settings)
    for request in requests:
        record = CallRecord(
            "openai", "chat", lambda r: {"model": "m", "request": dict(r.request)}, request, False
        )
        record.t_end = record.t_start + 1_000
        sink.emit(record)
    assert flush_all(5.0)
    shutdown_all(timeout=1.0)
    return _records_sent(collector)


def test_records_reach_the_collector_alike_without_either_private_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests = [{"n": n, "text": "é ✓ " * n, "nested": {"list": [1.5, None, True]}} for n in range(5)]
    monkeypatch.setattr(sanitize, "_orjson", None)  # the stdlib's encoder: the one with a fast path
    with FakeCollector() as collector:
        fast = _send(collector, requests)
    with monkeypatch.context() as patch:
        patch.setattr(json.encoder, "c_make_encoder", None)
        patch.setattr(os, "environ", collections.UserDict(os.environ))
        patch.setattr(sanitize, "_encode_json", _fastpaths.json_encoder())
        patch.setattr(http, "_read_environ", _fastpaths.environ_reader())
        with FakeCollector() as collector:
            plain = _send(collector, requests)
    assert [record["request"] for record in plain] == [record["request"] for record in fast] == requests
    assert [sorted(record) for record in plain] == [sorted(record) for record in fast]


# ---- OpenTelemetry's global providers ----


def test_the_placeholder_checks_agree_on_every_kind_of_provider() -> None:
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    placeholders = [
        None,
        trace.NoOpTracerProvider(),
        trace.ProxyTracerProvider(),
        metrics.NoOpMeterProvider(),
    ]
    placeholders.append(_ProxyMeterProvider())
    real = [TracerProvider(), MeterProvider(), object()]
    fast, plain = _fastpaths.otel_placeholder_check(), _fastpaths.plain_placeholder_check()
    assert [fast(p) for p in placeholders + real] == [plain(p) for p in placeholders + real]
    assert [fast(p) for p in placeholders + real] == [True] * len(placeholders) + [False] * len(real)


def test_without_the_proxy_meter_class_the_plain_check_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    import opentelemetry.metrics._internal as internal

    proxy = internal._ProxyMeterProvider()
    monkeypatch.delattr(internal, "_ProxyMeterProvider")
    check = _fastpaths.otel_placeholder_check()
    assert "plain_placeholder_check" in check.__qualname__
    assert check(proxy) is True and check(MeterProvider()) is False


def test_the_module_globals_and_the_public_getters_tell_the_same() -> None:
    fast = _fastpaths.otel_globals_reader()
    assert fast is not _fastpaths._public_globals  # this opentelemetry-api has the module variables
    check = _fastpaths.otel_placeholder_check()
    assert [check(p) for p in fast()] == [check(p) for p in _fastpaths._public_globals()]


@pytest.mark.parametrize("missing", ["tracer", "meter"])
def test_without_the_module_globals_the_sink_asks_the_public_getters(
    missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opentelemetry.metrics._internal as internal

    monkeypatch.setattr(otel_sink, "_global_installed", False)
    expected = otel_sink._global_providers_installed()  # with the module variables
    # As an API that renamed the variable (its getters then read the new name: the variable is back
    # once the reader is chosen).
    with monkeypatch.context() as patch:
        patch.delattr(trace if missing == "tracer" else internal, f"_{missing.upper()}_PROVIDER")
        read = _fastpaths.otel_globals_reader()
    assert read is _fastpaths._public_globals
    monkeypatch.setattr(otel_sink, "_read_global_providers", read)
    monkeypatch.setattr(otel_sink, "_global_installed", False)
    assert otel_sink._global_providers_installed() == expected


# ---- OpenTelemetry's suppress-instrumentation keys ----


def test_the_suppress_keys_are_opentelemetrys_own() -> None:
    assert _fastpaths.otel_suppress_key() is otel_context._SUPPRESS_INSTRUMENTATION_KEY
    assert _fastpaths.otel_suppress_key(http=True) is otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY


def test_without_the_suppress_keys_calls_are_still_traced(
    monkeypatch: pytest.MonkeyPatch, make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    monkeypatch.delattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY")
    monkeypatch.delattr(otel_context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY")
    assert _fastpaths.otel_suppress_key() is None and _fastpaths.otel_suppress_key(http=True) is None
    monkeypatch.setattr(calls_module, "_SUPPRESS_KEY", None)
    monkeypatch.setattr(otel_sink, "_SUPPRESS_KEY", None)
    provider = make_provider()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    (record,) = provider.get_conversation_history()
    assert record["status"] == "success" and record["completion"]


# ---- the SDK's SSE decoder (in providers/_stainless) ----

_CONTENT_KEYS = ("completion", "choices", "finish_reason", "usage", "response_model", "stream", "status")


def _stream_record(provider: OpenAIProvider, client: openai.OpenAI) -> dict[str, Any]:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hello"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-fake-chunks": "12"},
        )
    )
    assert chunks
    neatlogs.stats()
    (record,) = provider.get_conversation_history()
    return {key: record.get(key) for key in _CONTENT_KEYS}


def test_the_decoder_tap_is_there_for_this_sdk() -> None:
    assert sse_decoder_tap("openai._streaming", lambda data: data) is not None


def test_without_the_sdks_decoder_class_there_is_no_tap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sse_decoder_tap("neatlogs_no_such_sdk._streaming", lambda data: data) is None
    import openai._streaming as streaming

    monkeypatch.delattr(streaming, "SSEDecoder")
    assert sse_decoder_tap("openai._streaming", lambda data: data) is None


def test_a_stream_reads_the_same_with_the_tap_and_without_it(
    monkeypatch: pytest.MonkeyPatch, make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    tapped = make_provider()
    with_tap = _stream_record(tapped, client)
    tapped.undo_override()
    # As an SDK without the private decoder class: the proxy keeps each chunk instead.
    monkeypatch.setattr(openai_patch, "_STREAMING", "neatlogs_no_such_sdk._streaming")
    untapped = make_provider()
    without_tap = _stream_record(untapped, client)
    assert with_tap == without_tap
    assert with_tap["completion"] and with_tap["usage"]["total_tokens"] > 0
