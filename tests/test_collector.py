"""The collector (`neatlogs serve`), exercised over real HTTP on loopback."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from neatlogs.collector import CollectorServer, RecordStore

KEY = "test-key-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}  # what ingest requires
SMALL_LIMIT = 64 * 1024
REPO = Path(__file__).resolve().parent.parent


def make_record(trace_id: str, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "trace_id": trace_id,
        "provider": "openai",
        "operation": "chat",
        "model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        "prompt": [{"role": "user", "content": "hi"}],
        "completion": {"role": "assistant", "content": "hello"},
        "choices": [{"role": "assistant", "content": "hello"}],
        "finish_reason": "stop",
        "stream": False,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "cost_usd": 0.001,
        "tags": ["test"],
        "started_at": "2026-01-01T00:00:00.000000Z",
        "ended_at": "2026-01-01T00:00:00.500000Z",
        "duration_ms": 500.0,
        "ttft_ms": None,
        "status": "success",
        "error": None,
    }
    record.update(overrides)
    return record


def post(url: str, records: list[Any], headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(f"{url}/v1/records", json={"records": records}, headers=headers or AUTH, timeout=10)


def stored(server: CollectorServer, trace_id: str) -> list[dict[str, Any]]:
    return server.store.records(trace_id=trace_id, limit=1000)


def _collector(path: Path) -> CollectorServer:
    return CollectorServer(path, api_keys={KEY}, max_body_bytes=SMALL_LIMIT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorServer]:
    # Shared to keep the file fast (a stop costs ~0.2 s); tests stay independent by using their
    # own trace ids and only looking at those.
    with _collector(tmp_path_factory.mktemp("shared") / "collector.db") as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[CollectorServer]:
    with _collector(tmp_path / "collector.db") as running:
        yield running


@pytest.fixture
def trace() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------- ingest and query


def test_gzip_batch_is_stored_and_queried_back_by_trace_id(server: CollectorServer, trace: str) -> None:
    records = [make_record(trace, started_at=f"2026-01-01T00:00:0{i}.000000Z") for i in range(3)]
    other = make_record(uuid.uuid4().hex)
    body = gzip.compress(json.dumps({"records": [*records, other], "sdk": {"name": "neatlogs"}}).encode())
    headers = {**JSON_AUTH, "Content-Encoding": "gzip"}

    answer = requests.post(f"{server.url}/v1/records", data=body, headers=headers, timeout=10)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 4, "stored": 4}
    found = requests.get(f"{server.url}/v1/records", params={"trace_id": trace}, headers=AUTH, timeout=10)
    assert found.status_code == 200
    assert found.json()["records"] == list(reversed(records))  # newest first, stored verbatim


def test_records_can_be_filtered_by_status(server: CollectorServer, trace: str) -> None:
    failed = make_record(trace, status="error", error={"type": "RateLimitError", "message": "slow down"})
    post(server.url, [make_record(trace), failed])

    params = {"status": "error", "trace_id": trace}
    found = requests.get(f"{server.url}/v1/records", params=params, headers=AUTH, timeout=10)

    assert [record["id"] for record in found.json()["records"]] == [failed["id"]]


def test_resending_the_same_ids_stores_each_record_once(server: CollectorServer, trace: str) -> None:
    records = [make_record(trace) for _ in range(5)]
    first = post(server.url, records)
    again = post(server.url, [*records, records[0]])

    assert first.json() == {"accepted": 5, "stored": 5}
    assert again.status_code == 200
    assert again.json() == {"accepted": 6, "stored": 0}
    assert len(stored(server, trace)) == 5


def test_a_pretty_printed_body_with_other_keys_first_is_stored_intact(
    server: CollectorServer, trace: str
) -> None:
    record = make_record(trace, prompt=[{"role": "user", "content": 'héllo \u2028 "quoted" 中文'}])
    body = json.dumps({"sdk": {"name": "neatlogs", "version": "0.1.0"}, "records": [record]}, indent=2)

    answer = requests.post(f"{server.url}/v1/records", data=body.encode(), headers=JSON_AUTH, timeout=10)

    assert answer.json() == {"accepted": 1, "stored": 1}
    assert stored(server, trace) == [record]


def test_an_empty_batch_is_accepted_and_stores_nothing(server: CollectorServer) -> None:
    answer = post(server.url, [])

    assert answer.status_code == 200
    assert answer.json() == {"accepted": 0, "stored": 0}


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer "}, "missing API key"),
        ({"Authorization": f"Basic {KEY}"}, "missing API key"),
        ({"Authorization": "Bearer not-the-key-xyz"}, "wrong API key"),
    ],
)
def test_ingest_without_the_right_key_is_401_and_stores_nothing(
    server: CollectorServer, trace: str, headers: dict[str, str], says: str
) -> None:
    answer = requests.post(
        f"{server.url}/v1/records", json={"records": [make_record(trace)]}, headers=headers, timeout=10
    )

    assert answer.status_code == 401
    assert says in answer.json()["error"]
    assert "not-the-key-xyz" not in answer.text
    assert KEY not in answer.text
    assert stored(server, trace) == []


def test_queries_need_the_key_but_healthz_does_not(server: CollectorServer) -> None:
    for path in ("/v1/records", "/v1/traces"):
        assert requests.get(server.url + path, timeout=10).status_code == 401
        assert requests.get(server.url + path, headers=AUTH, timeout=10).status_code == 200
    health = requests.get(f"{server.url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}


def test_without_api_keys_no_key_is_needed(tmp_path: Path, trace: str) -> None:
    with CollectorServer(tmp_path / "open.db", api_keys=None) as open_server:
        answer = post(open_server.url, [make_record(trace)], headers={})
        found = requests.get(f"{open_server.url}/v1/records", params={"trace_id": trace}, timeout=10)

    assert answer.status_code == 200
    assert len(found.json()["records"]) == 1


# ---------------------------------------------------------------- bad batches


def test_malformed_json_is_400_naming_the_problem(server: CollectorServer) -> None:
    answer = requests.post(
        f"{server.url}/v1/records",
        data=b'{"records": [',
        headers=JSON_AUTH,
        timeout=10,
    )

    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]


@pytest.mark.parametrize("body", [[], {"recs": []}, {"records": {"id": "x"}}, "records"])
def test_a_body_that_is_not_a_records_object_is_400(server: CollectorServer, body: Any) -> None:
    answer = requests.post(f"{server.url}/v1/records", json=body, headers=AUTH, timeout=10)

    assert answer.status_code == 400
    assert '{"records": [...]}' in answer.json()["error"]


def test_a_record_missing_a_key_is_400_naming_index_and_key_and_keeps_earlier_records(
    server: CollectorServer, trace: str
) -> None:
    earlier = make_record(trace)
    assert post(server.url, [earlier]).status_code == 200
    batch = [make_record(trace) for _ in range(5)]
    del batch[3]["trace_id"]

    answer = post(server.url, batch)

    assert answer.status_code == 400
    assert answer.json()["error"] == "records[3] is missing 'trace_id'"
    assert [record["id"] for record in stored(server, trace)] == [earlier["id"]]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"id": 7}, "records[0] has an 'id' that is not a non-empty string"),
        ({"trace_id": None}, "records[0] has a 'trace_id' that is not a string"),
    ],
)
def test_a_record_with_a_wrongly_typed_id_is_400(
    server: CollectorServer, trace: str, bad: dict[str, Any], says: str
) -> None:
    record = make_record(trace)
    record.update(bad)

    answer = post(server.url, [record])

    assert answer.status_code == 400
    assert answer.json()["error"] == says
    assert stored(server, trace) == []


def test_a_record_that_is_not_an_object_is_400(server: CollectorServer, trace: str) -> None:
    answer = post(server.url, [make_record(trace), "oops"])

    assert answer.status_code == 400
    assert answer.json()["error"] == "records[1] is not a JSON object"


def test_invalid_gzip_is_400(server: CollectorServer) -> None:
    headers = {**JSON_AUTH, "Content-Encoding": "gzip"}
    answer = requests.post(f"{server.url}/v1/records", data=b"not gzip at all", headers=headers, timeout=10)

    assert answer.status_code == 400
    assert "gzip" in answer.json()["error"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_record_with_a_non_json_number_is_400(server: CollectorServer, trace: str, constant: str) -> None:
    text = json.dumps({"records": [make_record(trace, cost_usd=123.25)]}).replace("123.25", constant)

    answer = requests.post(f"{server.url}/v1/records", data=text.encode(), headers=JSON_AUTH, timeout=10)

    assert answer.status_code == 400
    assert f"{constant} is not valid JSON" in answer.json()["error"]
    assert stored(server, trace) == []


def test_an_unsupported_content_encoding_is_415(server: CollectorServer, trace: str) -> None:
    headers = {**JSON_AUTH, "Content-Encoding": "br"}
    body = json.dumps({"records": [make_record(trace)]}).encode()

    answer = requests.post(f"{server.url}/v1/records", data=body, headers=headers, timeout=10)

    assert answer.status_code == 415
    assert "gzip" in answer.json()["error"]


# ---------------------------------------------------------------- size limits


def test_an_oversized_body_is_413(server: CollectorServer, trace: str) -> None:
    big = [make_record(trace, prompt="x" * 1000) for _ in range(SMALL_LIMIT // 1000 + 1)]

    answer = post(server.url, big)

    assert answer.status_code == 413
    assert "larger than" in answer.json()["error"]
    assert stored(server, trace) == []


def test_an_oversized_body_sent_in_chunks_without_length_is_413(server: CollectorServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"records": ['
        for _ in range(SMALL_LIMIT // 1024 + 1):
            yield b" " * 1024
        yield b"]}"

    answer = requests.post(f"{server.url}/v1/records", data=chunks(), headers=JSON_AUTH, timeout=10)

    assert answer.status_code == 413


def test_a_gzip_bomb_is_413(server: CollectorServer, trace: str) -> None:
    padding = " " * (50 * SMALL_LIMIT)
    body = gzip.compress(f'{{"records": [], "pad": "{padding}"}}'.encode())
    assert len(body) < SMALL_LIMIT  # small on the wire, 50x the limit inflated
    headers = {**JSON_AUTH, "Content-Encoding": "gzip"}

    answer = requests.post(f"{server.url}/v1/records", data=body, headers=headers, timeout=10)

    assert answer.status_code == 413


def test_a_body_just_under_the_limit_is_accepted(server: CollectorServer, trace: str) -> None:
    record = make_record(trace, prompt="")
    overhead = len(json.dumps({"records": [record]}).encode())
    record["prompt"] = "y" * (SMALL_LIMIT - overhead)
    body = json.dumps({"records": [record]}).encode()
    assert len(body) == SMALL_LIMIT

    answer = requests.post(f"{server.url}/v1/records", data=body, headers=JSON_AUTH, timeout=10)

    assert answer.status_code == 200


# ---------------------------------------------------------------- traces and limits


def test_traces_aggregate_calls_errors_tokens_cost_and_time_span(fresh_server: CollectorServer) -> None:
    server = fresh_server
    busy, quiet = uuid.uuid4().hex, uuid.uuid4().hex
    post(
        server.url,
        [
            make_record(busy, started_at="2026-01-01T10:00:00.000000Z"),
            make_record(
                busy,
                started_at="2026-01-01T10:05:00.000000Z",
                usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                cost_usd=0.5,
            ),
            make_record(
                busy,
                started_at="2026-01-01T10:02:00.000000Z",
                status="error",
                usage=None,
                cost_usd=None,
                error={"type": "APIError", "message": "boom"},
            ),
            make_record(quiet, started_at="2026-01-01T09:00:00.000000Z", cost_usd=None),
        ],
    )

    answer = requests.get(f"{server.url}/v1/traces", headers=AUTH, timeout=10)

    assert answer.status_code == 200
    first, second = answer.json()["traces"]
    old_keys = {
        "trace_id": busy,
        "calls": 3,
        "errors": 1,
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
        "cost_usd": pytest.approx(0.501),
        "first_at": "2026-01-01T10:00:00.000000Z",
        "last_at": "2026-01-01T10:05:00.000000Z",
    }
    assert {key: first[key] for key in old_keys} == old_keys  # the first collector's answer, unchanged
    assert first["models"] == ["gpt-4o-mini"]
    assert first["tags"] == ["test"]
    assert first["spans"] == 0
    assert first["duration_ms"] == 300_000.0  # first start to last end (here: last start)
    assert second["trace_id"] == quiet
    assert second["calls"] == 1
    assert second["errors"] == 0
    assert second["cost_usd"] is None  # no known price in the trace, not a made-up zero


def test_limit_caps_the_number_of_results(server: CollectorServer, trace: str) -> None:
    post(server.url, [make_record(trace) for _ in range(5)] + [make_record(uuid.uuid4().hex)])

    records = requests.get(f"{server.url}/v1/records", params={"limit": 2}, headers=AUTH, timeout=10)
    traces = requests.get(f"{server.url}/v1/traces", params={"limit": 1}, headers=AUTH, timeout=10)

    assert len(records.json()["records"]) == 2
    assert len(traces.json()["traces"]) == 1


@pytest.mark.parametrize("path", ["/v1/records", "/v1/traces"])
@pytest.mark.parametrize("limit", ["0", "1001", "-5", "ten", ""])
def test_a_bad_limit_is_400_that_says_so(server: CollectorServer, path: str, limit: str) -> None:
    answer = requests.get(server.url + path, params={"limit": limit}, headers=AUTH, timeout=10)

    assert answer.status_code == 400
    assert "limit must be an integer from 1 to 1000" in answer.json()["error"]


def test_the_largest_limit_is_accepted(server: CollectorServer) -> None:
    answer = requests.get(f"{server.url}/v1/records", params={"limit": 1000}, headers=AUTH, timeout=10)

    assert answer.status_code == 200


# ---------------------------------------------------------------- store and server


def test_records_survive_a_restart_of_the_collector(tmp_path: Path, trace: str) -> None:
    with CollectorServer(tmp_path / "kept.db", api_keys={KEY}) as first:
        post(first.url, [make_record(trace)])
    with CollectorServer(tmp_path / "kept.db", api_keys={KEY}) as second:
        found = requests.get(f"{second.url}/v1/records", params={"trace_id": trace}, headers=AUTH, timeout=10)

    assert len(found.json()["records"]) == 1


def test_store_is_safe_to_use_from_many_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = RecordStore(tmp_path / "threads.db")
    try:
        batches = [[make_record(f"t{n}") for _ in range(50)] for n in range(20)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            new = sum(pool.map(store.add, batches + batches))
        assert new == 1000
        assert store.count() == 1000
    finally:
        store.close()


def test_stopped_server_no_longer_answers(tmp_path: Path) -> None:
    running = CollectorServer(tmp_path / "stop.db").start()
    url = running.url
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200

    running.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=2)


# ---------------------------------------------------------------- the command line


def _cli_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "NEATLOGS_SERVER_API_KEYS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def test_cli_serve_prints_the_endpoint_accepts_records_and_stops_cleanly_on_sigterm(
    tmp_path: Path, trace: str
) -> None:
    command = [sys.executable, "-m", "neatlogs", "serve", "--port", "0", "--db", str(tmp_path / "cli.db")]
    process = subprocess.Popen(
        [*command, "--api-key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_cli_env(),
    )
    try:
        assert process.stdout is not None
        endpoint = None
        for line in process.stdout:
            if "export NEATLOGS_ENDPOINT=" in line:
                endpoint = line.split("=", 1)[1].strip()
                break
        assert endpoint is not None, process.stderr.read() if process.stderr else ""
        assert endpoint.startswith("http://127.0.0.1:")

        answer = post(endpoint, [make_record(trace)])
        found = requests.get(f"{endpoint}/v1/records", params={"trace_id": trace}, headers=AUTH, timeout=10)

        assert answer.json() == {"accepted": 1, "stored": 1}
        assert len(found.json()["records"]) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_cli_serve_takes_keys_from_the_environment(tmp_path: Path) -> None:
    # Port 1 on a non-local address cannot be bound, so the command fails fast *after* the key check.
    result = subprocess.run(
        [sys.executable, "-m", "neatlogs", "serve", "--host", "192.0.2.1", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_cli_env(NEATLOGS_SERVER_API_KEYS=" k1 , k2 "),
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert "could not start" in result.stderr
    assert "no API key" not in result.stderr


def test_cli_serve_without_keys_or_no_auth_refuses_and_explains(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "neatlogs", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_cli_env(),
        cwd=tmp_path,
    )

    assert result.returncode != 0
    assert "--api-key" in result.stderr
    assert "NEATLOGS_SERVER_API_KEYS" in result.stderr
    assert "--no-auth" in result.stderr
    assert not (tmp_path / "neatlogs.db").exists()


def test_cli_serve_without_the_server_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from neatlogs.__main__ import main

    for name in [name for name in sys.modules if name.startswith("neatlogs.collector.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "uvicorn", None)

    assert main(["serve", "--no-auth"]) == 2
    assert "pip install 'neatlogs[server]'" in capsys.readouterr().err
