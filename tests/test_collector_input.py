"""The collector answers whatever a client sends with a clear 4xx (or a 503 it can retry), never a 500."""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from neatlogs.collector import CollectorServer
from neatlogs.collector.app import MAX_DEPTH, MAX_GZIP_MEMBERS, MAX_RECORDS

from .test_collector import AUTH, JSON_AUTH, KEY, make_record
from .test_collector_queries import _old_database

LONE = "\ud800"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorServer]:
    # The default body limit (10 MiB), so the large bodies below are refused for what they are.
    with CollectorServer(tmp_path_factory.mktemp("input") / "collector.db", api_keys={KEY}) as running:
        yield running


@pytest.fixture
def trace() -> str:
    return uuid.uuid4().hex


def send(url: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(f"{url}/v1/records", data=body, headers={**JSON_AUTH, **headers}, timeout=30)


def read(url: str, trace: str) -> requests.Response:
    return requests.get(f"{url}/v1/records", params={"trace_id": trace}, headers=AUTH, timeout=10)


def columns(server: CollectorServer, trace: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.store.path) as db:
        return db.execute("SELECT model, status, record FROM records WHERE trace_id = ?", (trace,)).fetchall()


# ---------------------------------------------------------------- lone surrogates


def test_a_lone_surrogate_in_a_record_is_stored_as_u_fffd_and_reads_keep_working(
    server: CollectorServer, trace: str
) -> None:
    record = make_record(trace, prompt=[{"role": "user", "content": f"bad {LONE} end", f"k{LONE}": 1}])
    record["completion"] = {"role": "assistant", "content": "pair 🙂 kept"}
    body = json.dumps({"records": [record]}).encode()  # ensure_ascii: "\ud800" and "\ud83d\ude42"
    assert b"\\ud800" in body

    answer = send(server.url, body)
    found = read(server.url, trace)

    assert answer.status_code == 200, answer.text
    assert found.status_code == 200, found.text
    (stored,) = found.json()["records"]
    assert stored["prompt"] == [{"role": "user", "content": "bad \ufffd end", "k\ufffd": 1}]
    assert stored["completion"]["content"] == "pair 🙂 kept"
    ((_, _, text),) = columns(server, trace)
    assert "\\ud800" not in text.lower()


def test_a_lone_surrogate_in_a_queried_field_is_stored_replaced_in_its_column(
    server: CollectorServer, trace: str
) -> None:
    body = json.dumps({"records": [make_record(trace, model=f"gpt{LONE}", status=f"{LONE}ok")]}).encode()

    answer = send(server.url, body)
    found = read(server.url, trace)

    assert answer.status_code == 200, answer.text
    assert found.json()["records"][0]["model"] == "gpt\ufffd"
    assert columns(server, trace)[0][:2] == ("gpt\ufffd", "\ufffdok")


def test_rows_stored_with_a_lone_surrogate_by_an_older_version_are_read_without_error(
    tmp_path: Path, trace: str
) -> None:
    record = make_record(trace, prompt="old \udfff row")
    path = tmp_path / "old.db"
    _old_database(path, [record])  # the first collector's file, the surrogate kept as an escape

    with CollectorServer(path, api_keys={KEY}) as old:
        found = read(old.url, trace)

    assert found.status_code == 200, found.text
    assert found.json()["records"][0]["prompt"] == "old \ufffd row"


# ---------------------------------------------------------------- nesting


def nested(levels: int) -> Any:
    value: Any = "deep"
    for _ in range(levels):
        value = [value]
    return value


def with_nested_request(trace: str, levels: int) -> bytes:
    # Written out by hand: the stdlib's encoder cannot write thousands of levels either.
    text = json.dumps({"records": [make_record(trace, request="DEEP")]})
    return text.replace('"DEEP"', "[" * levels + '"deep"' + "]" * levels).encode()


@pytest.mark.parametrize("levels", [MAX_DEPTH, 300, 5000])
def test_a_too_deeply_nested_record_is_400_saying_so(
    server: CollectorServer, trace: str, levels: int
) -> None:
    # The record is the first level, its "request" the second.
    answer = send(server.url, with_nested_request(trace, levels))

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith("too deeply nested")
    assert f"more than {MAX_DEPTH} levels" in answer.json()["error"]
    assert read(server.url, trace).json()["records"] == []


def test_a_record_nested_right_up_to_the_limit_is_stored(server: CollectorServer, trace: str) -> None:
    answer = send(server.url, with_nested_request(trace, MAX_DEPTH - 1))

    assert answer.status_code == 200, answer.text
    assert read(server.url, trace).json()["records"][0]["request"] == nested(MAX_DEPTH - 1)


# ---------------------------------------------------------------- gzip members


def members(*parts: bytes) -> bytes:
    return b"".join(gzip.compress(part) for part in parts)


def test_a_batch_in_a_few_gzip_members_is_stored(server: CollectorServer, trace: str) -> None:
    text = json.dumps({"records": [make_record(trace), make_record(trace)]}).encode()
    third = len(text) // 3

    answer = send(
        server.url,
        members(text[:third], text[third : 2 * third], text[2 * third :]),
        **{"Content-Encoding": "gzip"},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 2, "stored": 2}


def test_a_body_of_thousands_of_gzip_members_is_refused_at_once(server: CollectorServer) -> None:
    one = gzip.compress(b" ")
    body = gzip.compress(b'{"records": [') + one * 200_000 + gzip.compress(b"]}")
    assert len(body) > 4_000_000

    started = time.monotonic()
    answer = send(server.url, body, **{"Content-Encoding": "gzip"})
    elapsed = time.monotonic() - started

    assert answer.status_code == 400, answer.text
    assert f"more than {MAX_GZIP_MEMBERS} gzip members" in answer.json()["error"]
    assert elapsed < 5


def test_a_large_single_member_body_still_inflates(server: CollectorServer, trace: str) -> None:
    records = [make_record(trace, prompt="z" * 5000) for _ in range(400)]
    body = zlib.compress(json.dumps({"records": records}).encode(), wbits=31)  # one member, ~2 MB inflated

    answer = send(server.url, body, **{"Content-Encoding": "gzip"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 400


# ---------------------------------------------------------------- many records


def test_millions_of_non_records_are_refused_at_once(server: CollectorServer) -> None:
    body = b'{"records": [' + b",".join([b"1"] * 2_000_000) + b"]}"

    started = time.monotonic()
    answer = send(server.url, body)
    elapsed = time.monotonic() - started

    assert answer.status_code in (400, 413), answer.text
    assert elapsed < 1.5


def test_more_records_than_the_cap_in_one_request_is_413_asking_for_smaller_batches(
    server: CollectorServer, trace: str
) -> None:
    record = make_record(trace, request={}, prompt=None, completion=None, choices=[], tags=[])
    text = json.dumps(record)
    body = (
        '{"records": ['
        + ",".join([text.replace(record["id"], uuid.uuid4().hex) for _ in range(MAX_RECORDS + 1)])
        + "]}"
    ).encode()

    answer = send(server.url, body)

    assert answer.status_code == 413, answer.text
    assert "send smaller batches" in answer.json()["error"]
    assert read(server.url, trace).json()["records"] == []


@pytest.mark.parametrize("field", ["prompt_tokens", "total_tokens"])
def test_a_token_count_beyond_64_bits_is_stored_without_its_column(
    server: CollectorServer, trace: str, field: str
) -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, field: 2**70}
    body = json.dumps({"records": [make_record(trace, usage=usage, cost_usd=10**400)]}).encode()

    answer = send(server.url, body)

    assert answer.status_code == 200, answer.text
    assert read(server.url, trace).json()["records"][0]["usage"][field] == 2**70


# ---------------------------------------------------------------- storage


def _fill_up(server: CollectorServer) -> None:
    # SQLite's own "database or disk is full" (SQLITE_FULL): no page may be added any more.
    server.store._db.execute("PRAGMA max_page_count = 1")


def _make_room(server: CollectorServer) -> None:
    server.store._db.execute("PRAGMA max_page_count = 1073741823")


def test_a_full_disk_is_503_with_retry_after_and_stores_nothing(tmp_path: Path, trace: str) -> None:
    with CollectorServer(tmp_path / "full.db", api_keys={KEY}) as full:
        _fill_up(full)
        body = json.dumps({"records": [make_record(trace, prompt="p" * 20_000) for _ in range(5)]}).encode()

        answer = send(full.url, body)
        healthy = requests.get(f"{full.url}/healthz", timeout=10)
        found = read(full.url, trace)

    assert answer.status_code == 503, answer.text
    assert answer.json()["error"].startswith("storage unavailable: ")
    assert "full" in answer.json()["error"]
    assert int(answer.headers["Retry-After"]) >= 1
    assert healthy.status_code == 200
    assert found.json()["records"] == []


def test_the_exporter_retries_a_full_collector_and_delivers_once_there_is_room(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from neatlogs.record.call import CallRecord
    from neatlogs.sinks.exporter import (
        ExporterSettings,
        exporter_sink,
        exporter_stats,
        flush_all,
        shutdown_all,
    )

    def reader(record: CallRecord) -> dict[str, Any]:
        return {"model": "gpt-test", "request": dict(record.request), "prompt": "q" * 5000}

    with CollectorServer(tmp_path / "later.db", api_keys={KEY}) as full:
        _fill_up(full)
        settings = ExporterSettings.resolve(
            endpoint=full.url, api_key=KEY, flush_interval=0.05, batch_size=10, retry_deadline=30.0
        )
        sink = exporter_sink(settings)
        before = exporter_stats()
        try:
            for n in range(20):
                record = CallRecord("openai", "chat", reader, request={"n": n}, stream=False)
                record.t_end = record.t_start + 1000
                sink.emit(record)
            deadline = time.monotonic() + 10
            while "storage unavailable" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "storage unavailable" in caplog.text  # the exporter was answered 503, and waits
            assert full.store.count() == 0

            _make_room(full)

            assert flush_all(15)
            assert full.store.count() == 20
            assert exporter_stats()["retried"] > before["retried"]
            assert exporter_stats()["dropped"] == before["dropped"]
        finally:
            shutdown_all(1)
