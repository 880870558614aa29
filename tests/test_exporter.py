"""The background exporter against real loopback collectors (tests/fake_collector.py); no mocks."""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from opentelemetry import context as otel_context

import neatlogs
from neatlogs.collector.server import CollectorServer
from neatlogs.record import sanitize as _sanitize
from neatlogs.record.call import CallRecord, PackedChunks
from neatlogs.sinks.exporter import (
    ExporterSettings,
    exporter_sink,
    exporter_stats,
    flush_all,
    http,
    shutdown_all,
)
from tests.fake_collector import FakeCollector
from tests.helpers import choose_json_library

ORJSON = _sanitize._orjson

KEY = "nl-test-SECRET-key-5f3a9c"
ENV_NAMES = (
    "NEATLOGS_API_KEY",
    "NEATLOGS_ENDPOINT",
    "NEATLOGS_MAX_QUEUE_SIZE",
    "NEATLOGS_BATCH_SIZE",
    "NEATLOGS_FLUSH_INTERVAL",
    "NEATLOGS_RETRY_DEADLINE",
    "NEATLOGS_EXIT_TIMEOUT",
    "NEATLOGS_SPOOL_DIR",
)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    # Backoff in milliseconds so retry tests take a fraction of a second.
    monkeypatch.setattr(http, "_BACKOFF_BASE", 0.01)
    monkeypatch.setattr(http, "_BACKOFF_CAP", 0.05)
    yield
    shutdown_all(timeout=0.2)


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    with FakeCollector() as server:
        yield server


def _reader(record: CallRecord) -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "request": dict(record.request),
        "converted_on": threading.current_thread().name,
        "converted_at": time.monotonic(),
    }


def make_record(n: int, marker: str = "") -> CallRecord:
    record = CallRecord("openai", "chat", _reader, request={"n": n, "marker": marker}, stream=False)
    record.t_end = record.t_start + 1_000_000
    return record


def make_settings(collector: FakeCollector, **overrides: Any) -> ExporterSettings:
    options: dict[str, Any] = {
        "endpoint": collector.url,
        "api_key": KEY,
        "flush_interval": 0.05,
        "batch_size": 10,
        "retry_deadline": 5.0,
        "exit_timeout": 1.0,
    }
    options.update(overrides)
    return ExporterSettings.resolve(**options)


def delta(before: dict[str, int], name: str) -> int:
    return exporter_stats()[name] - before[name]


def bodies(collector: FakeCollector) -> list[dict[str, Any]]:
    return [json.loads(gzip.decompress(c.body)) for c in collector.requests]


def exporter_threads(collector: FakeCollector) -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("neatlogs-exporter") and str(collector.port) in t.name
    ]


def run_python(code: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEATLOGS_")}
    env["PYTHONPATH"] = str(REPO)
    prelude = textwrap.dedent(
        """
        from neatlogs.sinks.exporter import ExporterSettings, exporter_sink, exporter_stats, flush_all
        from neatlogs.record.call import CallRecord
        def reader(record):
            return {"model": "gpt-test", "request": dict(record.request)}
        def make_record(n, marker):
            record = CallRecord("openai", "chat", reader, request={"n": n, "marker": marker}, stream=False)
            record.t_end = record.t_start + 1000
            return record
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---- the wire format ----


def test_batches_arrive_gzipped_with_bearer_key_json_type_and_sdk_block(collector: FakeCollector) -> None:
    sink = exporter_sink(make_settings(collector))
    for n in range(25):
        sink.emit(make_record(n))
    assert flush_all(5)
    assert len(collector.ids()) == 25
    assert len(collector.requests) == 3  # batch_size 10: 10 + 10 + 5
    for captured in collector.requests:
        assert captured.path == "/v1/records"
        assert captured.headers["Authorization"] == f"Bearer {KEY}"
        assert captured.headers["Content-Type"] == "application/json"
        assert captured.headers["Content-Encoding"] == "gzip"
        payload = json.loads(gzip.decompress(captured.body))
        assert payload["sdk"] == {"name": "neatlogs", "version": payload["sdk"]["version"]}
        assert payload["sdk"]["version"] and payload["sdk"]["version"] != "0.0.0"
        assert len(payload["records"]) <= 10
    received = sorted(r["request"]["n"] for r in collector.records.values())
    assert received == list(range(25))


def test_no_authorization_header_without_an_api_key(collector: FakeCollector) -> None:
    sink = exporter_sink(make_settings(collector, api_key=None))
    sink.emit(make_record(1))
    assert flush_all(5)
    assert "Authorization" not in collector.requests[0].headers


def test_records_are_converted_on_the_exporter_thread_not_the_callers(collector: FakeCollector) -> None:
    sink = exporter_sink(make_settings(collector))
    sink.emit(make_record(1))
    assert flush_all(5)
    (record,) = collector.records.values()
    assert record["converted_on"].startswith("neatlogs-exporter")


def test_no_thread_before_the_first_emit_then_exactly_one_per_endpoint(collector: FakeCollector) -> None:
    with FakeCollector() as other:
        sink = exporter_sink(make_settings(collector))
        other_sink = exporter_sink(make_settings(other))
        assert exporter_threads(collector) == []
        for n in range(300):
            sink.emit(make_record(n))
            other_sink.emit(make_record(n))
        assert flush_all(5)
        assert len(exporter_threads(collector)) == 1
        assert len(exporter_threads(other)) == 1
        assert exporter_sink(make_settings(collector)) is sink  # same endpoint and key: same queue


def test_the_next_batch_is_prepared_while_the_collector_works_on_the_current_one(
    collector: FakeCollector,
) -> None:
    collector.delay = 0.5
    sink = exporter_sink(make_settings(collector, flush_interval=5.0))
    for n in range(20):  # two full batches
        sink.emit(make_record(n))
    assert flush_all(5)
    at = {r["request"]["n"]: r["converted_at"] for r in collector.records.values()}
    assert min(at[n] for n in range(10, 20)) - min(at[n] for n in range(10)) < 0.4


# ---- retries ----


def test_collector_down_then_up_delivers_every_record_exactly_once(collector: FakeCollector) -> None:
    before = exporter_stats()
    collector.down()
    sink = exporter_sink(make_settings(collector, retry_deadline=10.0))
    for n in range(50):
        sink.emit(make_record(n))
    time.sleep(0.3)
    assert collector.ids() == set()
    collector.up()
    assert flush_all(5)
    assert len(collector.ids()) == 50
    assert set(collector.deliveries.values()) == {1}
    assert delta(before, "retried") > 0
    assert delta(before, "sent") == 50


def test_503_and_429_are_retried_with_backoff_then_delivered(collector: FakeCollector) -> None:
    before = exporter_stats()
    collector.fail_next(2, 503)
    collector.fail_next(1, 429, retry_after="0")
    sink = exporter_sink(make_settings(collector))
    for n in range(10):
        sink.emit(make_record(n))
    assert flush_all(5)
    assert collector.statuses() == [503, 503, 429, 200]
    assert len(collector.ids()) == 10
    assert delta(before, "retried") == 3
    assert delta(before, "dropped") == 0


def test_a_zero_retry_deadline_sends_once_with_the_full_socket_timeout(collector: FakeCollector) -> None:
    collector.delay = 0.3
    sink = exporter_sink(make_settings(collector, retry_deadline=0))
    sink.emit(make_record(1))
    assert flush_all(5)
    assert len(collector.ids()) == 1


def test_retry_after_seconds_is_waited_for(collector: FakeCollector) -> None:
    collector.fail_next(1, 429, retry_after="1")
    sink = exporter_sink(make_settings(collector))
    sink.emit(make_record(1))
    started = time.monotonic()
    assert flush_all(5)
    assert time.monotonic() - started >= 0.9
    assert collector.statuses() == [429, 200]


def test_retry_after_http_date_and_garbage_are_parsed() -> None:
    in_two_seconds = email.utils.formatdate(time.time() + 2, usegmt=True)
    seconds = http.parse_retry_after(in_two_seconds)
    assert seconds is not None and 0.5 <= seconds <= 2.1
    assert http.parse_retry_after("7") == 7.0
    assert http.parse_retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert http.parse_retry_after("soon") is None
    assert http.parse_retry_after(None) is None


def test_413_splits_the_batch_in_halves_until_it_fits(collector: FakeCollector) -> None:
    before = exporter_stats()
    collector.max_records = 3
    sink = exporter_sink(make_settings(collector, batch_size=20, flush_interval=0.2))
    for n in range(20):
        sink.emit(make_record(n))
    assert flush_all(5)
    assert len(collector.ids()) == 20
    assert set(collector.deliveries.values()) == {1}
    assert 413 in collector.statuses()
    assert all(
        len(b["records"]) <= 3
        for b, s in zip(bodies(collector), collector.statuses(), strict=True)
        if s == 200
    )
    assert delta(before, "failed") == 0


def test_a_single_record_too_large_is_dropped_and_counted_as_failed(collector: FakeCollector) -> None:
    before = exporter_stats()
    collector.max_records = 0
    sink = exporter_sink(make_settings(collector, batch_size=4, flush_interval=0.2))
    for n in range(4):
        sink.emit(make_record(n))
    assert flush_all(5)
    assert collector.ids() == set()
    assert delta(before, "failed") == 4
    assert collector.statuses().count(413) == 7  # 4 -> 2 + 2 -> 1 + 1 + 1 + 1


def test_other_4xx_drops_the_batch_counts_it_failed_and_logs_once(
    collector: FakeCollector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="neatlogs")
    before = exporter_stats()
    collector.fail_next(3, 404)
    sink = exporter_sink(make_settings(collector))
    for n in range(30):
        sink.emit(make_record(n))
        if n % 10 == 9:
            assert flush_all(5)
    assert collector.statuses() == [404, 404, 404]
    assert delta(before, "failed") == 30
    assert delta(before, "retried") == 0
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1


def _bad(*numbers: int) -> Any:
    return lambda record: record["request"]["n"] in numbers


def test_a_400_naming_a_record_drops_only_that_record_and_delivers_the_rest_of_the_batch(
    collector: FakeCollector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="neatlogs")
    before = exporter_stats()
    collector.refuse = _bad(7, 12, 13)
    sink = exporter_sink(make_settings(collector, batch_size=20))
    for n in range(20):
        sink.emit(make_record(n))
    assert flush_all(5)
    assert sorted(r["request"]["n"] for r in collector.records.values()) == sorted(
        set(range(20)) - {7, 12, 13}
    )
    assert set(collector.deliveries.values()) == {1}
    assert collector.statuses().count(400) == 3  # one per bad record: the answer names it
    assert delta(before, "failed") == 3
    assert delta(before, "sent") == 17
    refused = [r.getMessage() for r in caplog.records if "refused record" in r.getMessage()]
    assert len(refused) == 1 and "records[7]" in refused[0]


def test_a_400_naming_no_record_is_bisected_until_the_bad_record_is_alone(collector: FakeCollector) -> None:
    before = exporter_stats()
    collector.refuse = _bad(7)
    collector.name_refused = False
    sink = exporter_sink(make_settings(collector, batch_size=20))
    for n in range(20):
        sink.emit(make_record(n))
    assert flush_all(5)
    assert sorted(r["request"]["n"] for r in collector.records.values()) == [n for n in range(20) if n != 7]
    assert set(collector.deliveries.values()) == {1}
    assert collector.statuses().count(400) <= http.refusal_budget(20) == 6  # log2(20) rounds, then alone
    assert delta(before, "failed") == 1


@pytest.mark.parametrize("names_a_record", [True, False])
def test_a_collector_that_refuses_everything_costs_log2_requests_then_two_per_batch(
    collector: FakeCollector, caplog: pytest.LogCaptureFixture, names_a_record: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="neatlogs")
    before = exporter_stats()
    collector.refuse = lambda record: True  # e.g. a collector that speaks another protocol
    collector.name_refused = names_a_record
    sink = exporter_sink(make_settings(collector, batch_size=16, flush_interval=5.0))  # full batches only
    counts = []
    for n in range(64):
        sink.emit(make_record(n))
        if n % 16 == 15:
            assert flush_all(5)
            counts.append(len(collector.requests) - sum(counts))
    assert counts == [http.refusal_budget(16) + 1, 2, 2, 2]  # 6 = log2(16) + 2
    assert collector.ids() == set()
    assert delta(before, "failed") == 64
    assert delta(before, "sent") == 0 and delta(before, "dropped") == 0
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) <= 2  # once per kind


def test_a_record_the_real_collector_refuses_costs_only_itself(tmp_path: Path) -> None:
    def reader(record: CallRecord) -> dict[str, Any]:
        read = _reader(record)
        if record.request["n"] == 7:
            read["trace_id"] = 7  # the collector's 400: "records[7] has a 'trace_id' that is not a string"
        return read

    before = exporter_stats()
    trace = "real-collector-400"
    with CollectorServer(tmp_path / "records.db") as server:
        sink = exporter_sink(
            ExporterSettings.resolve(endpoint=server.url, batch_size=20, flush_interval=0.05)
        )
        for n in range(20):
            record = CallRecord("openai", "chat", reader, request={"n": n, "marker": ""}, stream=False)
            record.trace_id = trace
            record.t_end = record.t_start + 1_000_000
            sink.emit(record)
        assert flush_all(10)
        found = requests.get(f"{server.url}/v1/records", params={"trace_id": trace, "limit": 100}, timeout=10)
    assert found.status_code == 200
    assert sorted(r["request"]["n"] for r in found.json()["records"]) == [n for n in range(20) if n != 7]
    assert delta(before, "failed") == 1
    assert delta(before, "sent") == 19


def test_a_record_that_cannot_be_encoded_is_dropped_and_counted_and_later_records_still_arrive(
    collector: FakeCollector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="neatlogs")

    def reader(record: CallRecord) -> dict[str, Any]:
        read = _reader(record)
        if record.request["n"] == 3:
            read["request"]["huge"] = 10**5000  # more digits than Python converts to text
        return read

    before = exporter_stats()
    sink = exporter_sink(make_settings(collector))
    for n in range(10):
        record = CallRecord("openai", "chat", reader, request={"n": n, "marker": ""}, stream=False)
        record.t_end = record.t_start + 1_000_000
        sink.emit(record)
    assert flush_all(5)
    for n in range(10, 15):
        sink.emit(make_record(n))
    assert flush_all(5)
    assert sorted(r["request"]["n"] for r in collector.records.values()) == [n for n in range(15) if n != 3]
    assert delta(before, "dropped") == 1 and delta(before, "sent") == 14
    assert len([r for r in caplog.records if "could not be encoded" in r.getMessage()]) == 1


def test_wrong_key_logs_one_clear_error_and_sends_no_retry_storm(
    collector: FakeCollector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="neatlogs")
    before = exporter_stats()
    collector.required_key = "the-right-key"
    sink = exporter_sink(make_settings(collector))
    for n in range(100):
        sink.emit(make_record(n))
        if n % 10 == 9:
            assert flush_all(5)  # ten batches
    assert len(collector.requests) == 1
    assert delta(before, "failed") == 100
    assert delta(before, "retried") == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "NEATLOGS_API_KEY" in errors[0].getMessage()
    assert KEY not in caplog.text


# ---- the caller never waits ----


def test_emit_stays_fast_while_the_collector_takes_5_seconds_to_answer(collector: FakeCollector) -> None:
    collector.delay = 5.0
    sink = exporter_sink(make_settings(collector))
    sink.emit(make_record(-1))  # starts the worker, which is soon stuck in a slow request
    records = [make_record(n) for n in range(1000)]
    time.sleep(0.1)
    started = time.perf_counter()
    for record in records:
        sink.emit(record)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.05, f"1,000 emits took {elapsed * 1000:.1f} ms"


def test_a_slow_endpoint_does_not_delay_a_healthy_one(collector: FakeCollector) -> None:
    with FakeCollector() as slow:
        slow.delay = 3.0
        slow_sink = exporter_sink(make_settings(slow))
        healthy_sink = exporter_sink(make_settings(collector))
        started = time.monotonic()
        for n in range(40):
            slow_sink.emit(make_record(n))
            healthy_sink.emit(make_record(n))
        assert collector.wait_for(40, timeout=2.0)
        assert time.monotonic() - started < 1.5
        assert slow.ids() == set()


def test_a_dead_endpoint_does_not_delay_a_healthy_one(collector: FakeCollector) -> None:
    with FakeCollector() as dead:
        dead.down()
        dead_sink = exporter_sink(make_settings(dead, retry_deadline=30.0))
        healthy_sink = exporter_sink(make_settings(collector))
        for n in range(40):
            dead_sink.emit(make_record(n))
            healthy_sink.emit(make_record(n))
        assert collector.wait_for(40, timeout=2.0)


def test_a_full_queue_drops_and_counts_and_never_grows_past_its_bound(collector: FakeCollector) -> None:
    before = exporter_stats()
    collector.down()
    sink = exporter_sink(make_settings(collector, max_queue_size=100, retry_deadline=30.0))
    sizes = []
    for n in range(2000):
        sink.emit(make_record(n))
        if n % 50 == 0:
            sizes.append(exporter_stats()["queue_size"])
    assert max(sizes) <= 100
    assert exporter_stats()["queue_size"] <= 100
    dropped = delta(before, "dropped")
    assert dropped >= 2000 - 100 - 10  # at most one batch is in the worker's hands
    assert delta(before, "enqueued") + dropped == 2000


# ---- flush and shutdown ----


def test_flush_returns_true_when_delivered_and_false_on_timeout_while_down(collector: FakeCollector) -> None:
    sink = exporter_sink(make_settings(collector, retry_deadline=30.0))
    sink.emit(make_record(1))
    assert flush_all(5) is True
    collector.down()
    sink.emit(make_record(2))
    started = time.monotonic()
    assert flush_all(0.3) is False
    assert time.monotonic() - started < 1.0
    collector.up()
    assert flush_all(5) is True
    assert len(collector.ids()) == 2


def test_flush_cuts_a_long_backoff_short(collector: FakeCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "_BACKOFF_BASE", 20.0)
    monkeypatch.setattr(http, "_BACKOFF_CAP", 20.0)
    collector.fail_next(1, 503, retry_after="20")
    sink = exporter_sink(make_settings(collector, retry_deadline=60.0))
    sink.emit(make_record(1))
    assert _wait_until(lambda: len(collector.requests) == 1)
    started = time.monotonic()
    assert flush_all(3)
    assert time.monotonic() - started < 1.0


def test_flush_during_an_outage_buys_one_early_retry_not_a_retry_storm(
    collector: FakeCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "_BACKOFF_BASE", 0.3)
    monkeypatch.setattr(http, "_BACKOFF_CAP", 0.3)
    collector.fail_next(10_000, 503, retry_after="0.3")
    sink = exporter_sink(make_settings(collector, retry_deadline=30.0))
    sink.emit(make_record(1))
    assert _wait_until(lambda: len(collector.requests) == 1)
    assert flush_all(0.5) is False
    assert len(collector.requests) <= 5  # about one per 0.3 s, plus the one the flush asked for


def test_shutdown_interrupts_backoff_and_returns_within_its_timeout(
    collector: FakeCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = exporter_stats()
    monkeypatch.setattr(http, "_BACKOFF_BASE", 20.0)
    monkeypatch.setattr(http, "_BACKOFF_CAP", 20.0)
    collector.down()
    sink = exporter_sink(make_settings(collector, retry_deadline=60.0))
    for n in range(5):
        sink.emit(make_record(n))
    time.sleep(0.2)  # the worker is now sleeping in its backoff
    started = time.monotonic()
    shutdown_all(timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert exporter_threads(collector) == []  # the worker woke from its backoff and finished
    assert delta(before, "dropped") == 5  # no spool_dir: given up on and counted
    sink.emit(make_record(6))  # after shutdown: dropped and counted, never raises
    assert delta(before, "dropped") == 6


def test_exit_without_flush_still_delivers_every_record(collector: FakeCollector) -> None:
    result = run_python(
        f"""
        settings = ExporterSettings.resolve(endpoint={collector.url!r}, api_key="k", batch_size=100)
        sink = exporter_sink(settings)
        for n in range(250):
            sink.emit(make_record(n, "exit"))
        """
    )
    assert result.returncode == 0, result.stderr
    assert len(collector.ids()) == 250
    assert set(collector.deliveries.values()) == {1}


# ---- lone surrogates ----


@pytest.fixture(params=["stdlib", "orjson"])
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The records' own JSON texts made with the stdlib's encoder, and with orjson when installed."""
    return choose_json_library(request, monkeypatch, _sanitize, ORJSON)


def test_a_prompt_with_a_lone_surrogate_reaches_the_real_collector_as_u_fffd_with_the_rest_of_its_batch(
    make_provider: Any, client: openai.OpenAI, tmp_path: Path, encoder: str
) -> None:
    name = os.fsdecode(b"report-\xff.txt")  # "report-\udcff.txt": an undecodable file name
    trace = uuid.uuid4().hex
    with CollectorServer(tmp_path / "records.db") as server:
        provider = make_provider(trace_id=trace, endpoint=server.url)
        for text in ("before", f"summarise {name}", "after \U0001f600"):
            # The SDK cannot send the undecodable name either: the failed call is recorded.
            with contextlib.suppress(UnicodeEncodeError):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
                )
        assert neatlogs.flush(10)
        found = requests.get(f"{server.url}/v1/records", params={"trace_id": trace, "limit": 10}, timeout=10)
        assert found.status_code == 200, found.text
        again = requests.get(f"{server.url}/v1/records", params={"q": "summarise"}, timeout=10)
        assert again.status_code == 200, again.text
    prompts = sorted(r["prompt"][0]["content"] for r in found.json()["records"])
    assert prompts == ["after \U0001f600", "before", "summarise report-\ufffd.txt"]
    assert len(provider.get_conversation_history()) == 3


def test_lone_surrogates_in_keys_and_values_are_sent_as_u_fffd_in_valid_utf8(
    collector: FakeCollector, tmp_path: Path, encoder: str
) -> None:
    def reader(record: CallRecord) -> dict[str, Any]:
        read = _reader(record)
        read["request"]["tool \udcff"] = ["\ud800 alone", "pair \ud83d\ude00", "ok \U0001f600"]
        return read

    sink = exporter_sink(make_settings(collector, spool_dir=str(tmp_path)))
    for n in range(3):
        record = CallRecord("openai", "chat", reader, request={"n": n, "marker": ""}, stream=False)
        record.t_end = record.t_start + 1_000_000
        sink.emit(record)
    assert flush_all(5)
    for captured in collector.requests:
        gzip.decompress(captured.body).decode("utf-8")  # strict: no surrogate made it into the bytes
    assert len(collector.records) == 3
    for record in collector.records.values():
        assert record["request"]["tool \ufffd"] == ["\ufffd alone", "pair \ufffd\ufffd", "ok \U0001f600"]


# ---- spool ----


def test_spool_written_at_exit_while_down_is_sent_first_by_the_next_process(
    collector: FakeCollector, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    collector.down()
    first = run_python(
        f"""
        settings = ExporterSettings.resolve(
            endpoint={collector.url!r}, api_key="k", spool_dir={str(spool)!r}, exit_timeout=0.5, batch_size=10
        )
        sink = exporter_sink(settings)
        for n in range(30):
            sink.emit(make_record(n, "spooled"))
        """
    )
    assert first.returncode == 0, first.stderr
    files = list(spool.rglob("*.jsonl"))
    assert files
    assert sum(len(f.read_text().splitlines()) for f in files) == 30
    assert "k" not in {p.name for p in spool.rglob("*")}

    collector.up()
    second = run_python(
        f"""
        settings = ExporterSettings.resolve(
            endpoint={collector.url!r}, api_key="k", spool_dir={str(spool)!r}, batch_size=10
        )
        sink = exporter_sink(settings)
        sink.emit(make_record(0, "live"))
        assert flush_all(5)
        """
    )
    assert second.returncode == 0, second.stderr
    assert list(spool.rglob("*.jsonl")) == []
    markers = [r["request"]["marker"] for r in collector.records.values()]
    assert markers.count("spooled") == 30 and markers.count("live") == 1
    assert set(collector.deliveries.values()) == {1}
    first_batch = bodies(collector)[0]["records"]
    assert {r["request"]["marker"] for r in first_batch} == {"spooled"}


def test_a_batch_past_its_retry_deadline_is_spooled_and_resent_when_the_collector_returns(
    collector: FakeCollector, tmp_path: Path
) -> None:
    before = exporter_stats()
    collector.down()
    sink = exporter_sink(make_settings(collector, spool_dir=str(tmp_path), retry_deadline=0.2))
    for n in range(10):
        sink.emit(make_record(n))
    assert flush_all(5)  # settled: spooled
    assert delta(before, "spooled") == 10
    assert len(list(tmp_path.rglob("*.jsonl"))) == 1
    collector.up()
    sink.emit(make_record(10))
    assert flush_all(5)
    assert _wait_until(lambda: len(collector.ids()) == 11)
    assert _wait_until(lambda: list(tmp_path.rglob("*.jsonl")) == [])  # removed just after the answer


def test_a_new_exporter_replays_the_spool_before_anything_is_recorded(
    collector: FakeCollector, tmp_path: Path
) -> None:
    collector.down()
    settings = make_settings(collector, spool_dir=str(tmp_path), retry_deadline=0.2)
    sink = exporter_sink(settings)
    for n in range(10):
        sink.emit(make_record(n))
    shutdown_all(timeout=1.0)
    assert len(list(tmp_path.rglob("*.jsonl"))) == 1
    collector.up()
    exporter_sink(settings)  # a fresh exporter, as in the next process; nothing emitted
    assert flush_all(5)
    assert len(collector.ids()) == 10
    assert list(tmp_path.rglob("*.jsonl")) == []


def test_shutdown_while_the_collector_is_slow_spools_the_sent_the_prepared_and_the_queued_batches(
    collector: FakeCollector, tmp_path: Path
) -> None:
    collector.delay = 3.0
    sink = exporter_sink(make_settings(collector, spool_dir=str(tmp_path), flush_interval=5.0))
    for n in range(35):
        sink.emit(make_record(n))
    time.sleep(0.3)  # batch 1 is with the collector; batch 2 was prepared meanwhile; 15 wait in the queue
    shutdown_all(timeout=0.1)
    spooled = [json.loads(line) for f in tmp_path.rglob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(r["request"]["n"] for r in spooled) == list(range(35))


def _spool_while_down(collector: FakeCollector, spool: Path, n: int, **overrides: Any) -> ExporterSettings:
    """Spool `n` records (one file per batch of 10) as a process that found the collector down, and exit."""
    collector.down()
    settings = make_settings(
        collector, spool_dir=str(spool), retry_deadline=0.1, flush_interval=5.0, **overrides
    )
    sink = exporter_sink(settings)
    for i in range(n):
        sink.emit(make_record(i, "spooled"))
    shutdown_all(timeout=1.0)
    collector.up()
    return settings


def test_a_damaged_spool_file_is_set_aside_and_every_other_file_and_new_record_is_delivered(
    collector: FakeCollector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="neatlogs")
    settings = _spool_while_down(collector, tmp_path, 20)
    damaged, *intact = sorted(tmp_path.rglob("*.jsonl"))
    assert intact
    lines = damaged.read_bytes().splitlines(keepends=True)
    damaged.write_bytes(lines[0][:40] + b"\xff\xfe" + lines[0][40:] + b"".join(lines[1:]))  # not UTF-8
    garbage = damaged.with_name("00000000000000000001-1-0.jsonl")  # the oldest: replayed first
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    before = exporter_stats()

    for _ in range(2):  # as two processes in turn would, each with its own exporter
        sink = exporter_sink(settings)
        for n in range(5):
            sink.emit(make_record(n, "live"))
        assert flush_all(5)
        shutdown_all(timeout=1.0)

    markers = [r["request"]["marker"] for r in collector.records.values()]
    assert markers.count("spooled") == 19 and markers.count("live") == 10  # all but the damaged line
    assert sorted(p.name for p in tmp_path.rglob("*.bad")) == sorted(
        [damaged.name + ".bad", garbage.name + ".bad"]
    )
    assert list(tmp_path.rglob("*.jsonl")) == []
    assert delta(before, "spool_bad_files") == 2
    assert delta(before, "dropped") == 4  # the damaged line and the three lines of garbage
    damaged_logs = [r for r in caplog.records if "damaged" in r.getMessage()]
    assert len(damaged_logs) == 1 and str(tmp_path) in damaged_logs[0].getMessage()


@pytest.mark.parametrize("umask", [0, 0o022])
def test_spool_directories_are_0700_and_files_0600_whatever_the_umask(
    collector: FakeCollector, tmp_path: Path, umask: int
) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    existing.chmod(0o755)
    spool = existing / "made" / "spool"
    old = os.umask(umask)
    try:
        _spool_while_down(collector, spool, 10)
    finally:
        os.umask(old)
    files = list(spool.rglob("*.jsonl"))
    assert files and {oct(file.stat().st_mode & 0o777) for file in files} == {oct(0o600)}
    for directory in (files[0].parent, spool, spool.parent):
        assert oct(directory.stat().st_mode & 0o777) == oct(0o700), directory
    assert oct(existing.stat().st_mode & 0o777) == oct(0o755)  # a directory it did not make is left alone


def test_no_spool_when_no_spool_dir_is_set(collector: FakeCollector) -> None:
    before = exporter_stats()
    collector.down()
    sink = exporter_sink(make_settings(collector, retry_deadline=0.2))
    for n in range(10):
        sink.emit(make_record(n))
    assert flush_all(5)
    assert delta(before, "dropped") == 10
    assert delta(before, "spooled") == 0


# ---- fork ----


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_forked_child_exports_its_own_records_and_not_the_parents(collector: FakeCollector) -> None:
    sink = exporter_sink(make_settings(collector, flush_interval=30.0, batch_size=1000))
    for n in range(5):
        sink.emit(make_record(n, "parent"))
    time.sleep(0.1)  # the parent's worker is running and holding its queue
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            for n in range(3):
                sink.emit(make_record(n, "child"))
            code = 0 if flush_all(5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    markers = sorted(r["request"]["marker"] for r in collector.records.values())
    assert markers == ["child"] * 3
    assert flush_all(5)
    markers = sorted(r["request"]["marker"] for r in collector.records.values())
    assert markers == ["child"] * 3 + ["parent"] * 5
    assert set(collector.deliveries.values()) == {1}


# ---- credentials and instrumentation ----


def test_the_api_key_never_appears_in_bodies_logs_spool_or_reprs(
    collector: FakeCollector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    collector.fail_next(2, 503)
    settings = make_settings(collector, spool_dir=str(tmp_path), retry_deadline=0.3)
    sink = exporter_sink(settings)
    for n in range(10):
        sink.emit(make_record(n))
    assert flush_all(5)
    with FakeCollector() as strict:
        strict.required_key = "another-key"
        exporter_sink(make_settings(strict)).emit(make_record(99))
        collector.down()
        sink.emit(make_record(100))  # spooled after its deadline
        assert flush_all(5)
    assert collector.requests and all(KEY not in gzip.decompress(c.body).decode() for c in collector.requests)
    assert KEY not in caplog.text
    assert "neatlogs exporter" in caplog.text  # the failures above were logged
    spooled = list(tmp_path.rglob("*.jsonl"))
    assert spooled and all(KEY not in f.read_text() for f in spooled)
    assert all(KEY not in str(p) for p in tmp_path.rglob("*"))
    assert KEY not in repr(settings) and KEY not in repr(sink)


def test_exporter_requests_carry_the_opentelemetry_suppress_flag(
    collector: FakeCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a `requests` instrumentation checks before making a span.
    seen: list[object] = []
    original = requests.Session.send

    def instrumented_send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        seen.append(otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY))
        return original(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", instrumented_send)
    exporter_sink(make_settings(collector)).emit(make_record(1))
    assert flush_all(5)
    assert seen == [True]


# ---- settings ----


def test_settings_explicit_arguments_win_over_env_which_wins_over_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEATLOGS_ENDPOINT", "http://env-host:7077/")
    monkeypatch.setenv("NEATLOGS_BATCH_SIZE", "50")
    monkeypatch.setenv("NEATLOGS_FLUSH_INTERVAL", "0.5")
    monkeypatch.setenv("NEATLOGS_SPOOL_DIR", "/tmp/spool-from-env")
    settings = ExporterSettings.resolve(batch_size=7, api_key=None)
    assert settings.endpoint == "http://env-host:7077"  # trailing slash tolerated
    assert settings.batch_size == 7
    assert settings.flush_interval == 0.5
    assert settings.spool_dir == "/tmp/spool-from-env"
    assert (
        settings.max_queue_size == 10_000
        and settings.retry_deadline == 120.0
        and settings.exit_timeout == 5.0
    )
    assert settings.api_key is None


def test_settings_reject_wrong_types_and_bad_values_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(TypeError, match="batch_size must be an int"):
        ExporterSettings.resolve(batch_size="10")
    with pytest.raises(TypeError, match="batch_size"):
        ExporterSettings.resolve(batch_size=True)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ExporterSettings.resolve(batch_size=0)
    with pytest.raises(ValueError, match="flush_interval"):
        ExporterSettings.resolve(flush_interval=-1)
    with pytest.raises(TypeError, match="endpoint must be a str URL"):
        ExporterSettings.resolve(endpoint=7077)
    with pytest.raises(ValueError, match=r'http\(s\) URL with a host, such as "http://127.0.0.1:7077"'):
        ExporterSettings.resolve(endpoint="127.0.0.1:7077")
    with pytest.raises(ValueError, match="must not contain credentials"):
        ExporterSettings.resolve(endpoint="http://user:pw@host")
    monkeypatch.setenv("NEATLOGS_MAX_QUEUE_SIZE", "lots")
    with pytest.raises(
        ValueError, match=r"NEATLOGS_MAX_QUEUE_SIZE.*max_queue_size must be a positive integer"
    ):
        ExporterSettings.resolve()
    monkeypatch.setenv("NEATLOGS_MAX_QUEUE_SIZE", "-5")
    with pytest.raises(ValueError, match="NEATLOGS_MAX_QUEUE_SIZE"):
        ExporterSettings.resolve()


def test_settings_unknown_keyword_lists_the_valid_names() -> None:
    with pytest.raises(TypeError, match=r"batchsize.*valid names are endpoint, api_key, max_queue_size"):
        ExporterSettings.resolve(batchsize=10)


def test_settings_never_show_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEATLOGS_API_KEY", KEY)
    settings = ExporterSettings.resolve()
    assert settings.api_key == KEY
    assert KEY not in repr(settings)
    with pytest.raises(ValueError) as caught:
        ExporterSettings.resolve(api_key=KEY + " x")
    assert KEY not in str(caught.value)


def test_exporter_sink_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        exporter_sink(ExporterSettings.resolve())


def _wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_finished_call_reaches_the_collector_with_nobody_reading_or_flushing(
    make_provider: Any, client: Any, collector: FakeCollector
) -> None:
    # The calling thread only queues the record; neatlogs' statistics thread hands it to the exporter
    # (within 2 s), whose worker sends it (within its flush interval).
    make_provider(trace_id="unread", api_key=KEY, endpoint=collector.url)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    assert collector.wait_for(1, timeout=8.0)


def test_a_stream_the_exporter_will_send_is_not_packed_while_it_waits_in_the_queue(
    make_provider: Any, client: Any, collector: FakeCollector
) -> None:
    # Counting a stream packs its lines for the history, unless a sink's thread converts it soon
    # anyway: packing them only to unpack them there would be wasted background work.
    provider = make_provider(trace_id="queued", api_key=KEY, endpoint=collector.url)
    for _ in client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        pass
    neatlogs.stats()  # delivered and counted; the exporter sends within its flush interval
    (record,) = list(provider._history._records)
    assert not isinstance(record.chunks, PackedChunks)
    assert flush_all(5.0)
    (sent,) = [r for body in bodies(collector) for r in body["records"]]
    assert sent["stream"] is True and sent["completion"]["content"]
