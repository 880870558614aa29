"""The collector's query API (contract section 8), over HTTP against the real collector."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from neatlogs.collector import CollectorServer, RecordStore, _schema
from neatlogs.collector import store as store_module
from neatlogs.collector.queries import Filters

from .test_collector import AUTH, KEY, make_record, post


def _collector(path: Path) -> CollectorServer:
    return CollectorServer(path, api_keys={KEY})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorServer]:
    # Shared: tests use their own trace ids (or words) and only look at those.
    with _collector(tmp_path_factory.mktemp("queries") / "collector.db") as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[CollectorServer]:
    with _collector(tmp_path / "collector.db") as running:
        yield running


@pytest.fixture
def trace() -> str:
    return uuid.uuid4().hex


def get(server: CollectorServer, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url + path, params=params, headers=AUTH, timeout=30)


def ids(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [record["id"] for record in answer.json()["records"]]


def at(minute: int, second: float = 0.0) -> str:
    """A time on 2026-01-01, `minute` minutes after midnight."""
    return f"2026-01-01T{minute // 60:02d}:{minute % 60:02d}:{second:09.6f}Z"


def word() -> str:
    return "w" + uuid.uuid4().hex[:12]


# ---------------------------------------------------------------- filters


def test_each_filter_narrows_the_records(server: CollectorServer, trace: str) -> None:
    plain = make_record(trace, started_at=at(0))
    failed = make_record(
        trace, started_at=at(1), status="error", error={"type": "APIError", "message": "boom"}
    )
    claude = make_record(trace, started_at=at(2), provider="anthropic", model="claude-x", tags=["blue"])
    span = make_record(trace, started_at=at(3), kind="span", name="lookup", provider="neatlogs", model="")
    late = make_record(trace, started_at=at(4), status="incomplete")
    post(server.url, [plain, failed, claude, span, late])

    def only(**params: Any) -> list[str]:
        return ids(get(server, "/v1/records", trace_id=trace, **params))

    assert only() == [late["id"], span["id"], claude["id"], failed["id"], plain["id"]]
    assert only(status="error") == [failed["id"]]
    assert only(status="incomplete") == [late["id"]]
    assert only(model="claude-x") == [claude["id"]]
    assert only(provider="anthropic") == [claude["id"]]
    assert only(tag="blue") == [claude["id"]]
    assert only(kind="span") == [span["id"]]
    assert only(kind="llm") == [late["id"], claude["id"], failed["id"], plain["id"]]
    assert only(since=at(2), until=at(4)) == [span["id"], claude["id"]]  # since inclusive, until not
    assert only(status="success", provider="openai", kind="llm") == [plain["id"]]
    assert only(model="") == only()  # an empty field means "any", as with HTML forms


def test_since_and_until_accept_other_iso_forms(server: CollectorServer, trace: str) -> None:
    record = make_record(trace, started_at="2026-03-05T10:00:00.000000Z")
    post(server.url, [record])

    for since, until in [
        ("2026-03-05", "2026-03-06"),
        ("2026-03-05T12:00:00+02:00", "2026-03-05T10:00:01"),  # an offset; no offset means UTC
        ("2026-03-05T09:59:59.5Z", "2026-03-05T10:00:00.000001Z"),
    ]:
        assert ids(get(server, "/v1/records", trace_id=trace, since=since, until=until)) == [record["id"]]
    assert ids(get(server, "/v1/records", trace_id=trace, since="2026-03-05T10:00:00.000001Z")) == []


@pytest.fixture(params=["from the rare value", "walking every trace"])
def trace_plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # Both ways the store finds filtered traces (it picks by how many traces hold the value).
    if request.param == "walking every trace":
        monkeypatch.setattr(store_module, "_RARE_TRACES", 0)
    return str(request.param)


def test_traces_are_filtered_by_what_their_records_hold(server: CollectorServer, trace_plan: str) -> None:
    tag = word()
    failing, fine, other_model = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    post(
        server.url,
        [
            make_record(failing, started_at=at(10), tags=[tag]),
            make_record(failing, started_at=at(11), tags=[tag], status="error", model="m-rare"),
            make_record(fine, started_at=at(12), tags=[tag]),
            make_record(other_model, started_at=at(13), tags=[tag], provider="anthropic", model="m-rare"),
        ],
    )

    def traces(**params: Any) -> list[str]:
        answer = get(server, "/v1/traces", tag=tag, **params)
        assert answer.status_code == 200, answer.text
        return [entry["trace_id"] for entry in answer.json()["traces"]]

    assert traces() == [other_model, fine, failing]  # most recently active first
    assert traces(status="error") == [failing]
    assert traces(status="success") == [other_model, fine]
    assert traces(model="m-rare") == [other_model, failing]
    assert traces(model="m-rare", status="error") == [failing]
    assert traces(provider="anthropic") == [other_model]
    assert traces(since=at(12)) == [other_model, fine]  # active in the range
    assert traces(until=at(11)) == [failing]
    assert traces(trace_id=fine) == [fine]


def test_a_trace_summary_has_models_tags_duration_and_spans(server: CollectorServer, trace: str) -> None:
    post(
        server.url,
        [
            make_record(trace, started_at=at(20), ended_at=at(20, 1.5), model="b-model", tags=["x"]),
            make_record(trace, started_at=at(20, 1), ended_at=at(20, 4), model="a-model", tags=["y", "x"]),
            make_record(
                trace, started_at=at(20, 2), ended_at=at(20, 3), kind="span", name="step", model="", tags=[]
            ),
        ],
    )

    (summary,) = get(server, "/v1/traces", trace_id=trace).json()["traces"]

    assert summary["models"] == ["a-model", "b-model"]
    assert summary["tags"] == ["x", "y"]
    assert summary["duration_ms"] == 4000.0  # first start to last end
    assert summary["calls"] == 2
    assert summary["spans"] == 1
    assert summary["first_at"] == at(20)
    assert summary["last_at"] == at(20, 2)


# ---------------------------------------------------------------- full-text search


@pytest.mark.parametrize("where", ["prompt", "completion", "error message", "span name", "tool arguments"])
def test_q_finds_a_record_by_a_word_only_it_holds(server: CollectorServer, trace: str, where: str) -> None:
    secret = word()
    fields: dict[str, Any] = {
        "prompt": {"prompt": [{"role": "user", "content": f"tell me about {secret}, briefly"}]},
        "completion": {"completion": {"role": "assistant", "content": f"It is {secret}."}},
        "error message": {"status": "error", "error": {"type": "APIError", "message": f"bad {secret}!"}},
        "span name": {"kind": "span", "name": f"fetch_{secret}", "model": ""},
        "tool arguments": {
            "completion": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "function": {"name": "f", "arguments": f'{{"city": "{secret}"}}'}}
                ],
            }
        },
    }[where]
    found = make_record(trace, **fields)
    post(server.url, [make_record(trace), found, make_record(trace)])

    assert ids(get(server, "/v1/records", q=secret)) == [found["id"]]
    assert ids(get(server, "/v1/records", q=secret.upper())) == [found["id"]]  # any case
    traces = get(server, "/v1/traces", q=secret).json()["traces"]
    assert [entry["trace_id"] for entry in traces] == [trace]


def test_q_needs_every_word_and_ignores_punctuation_and_accents(server: CollectorServer, trace: str) -> None:
    first, second = word(), word()
    both = make_record(trace, prompt=f"{first} and {second} café")
    one = make_record(trace, prompt=f"only {first}")
    post(server.url, [both, one])

    assert ids(get(server, "/v1/records", q=f'{first} "{second}" OR NOT*')) == []  # NOT/OR are words here
    assert ids(get(server, "/v1/records", q=f"{first}, {second}!")) == [both["id"]]
    assert sorted(ids(get(server, "/v1/records", q=first))) == sorted([both["id"], one["id"]])
    assert ids(get(server, "/v1/records", q=f"{first} cafe")) == [both["id"]]


def test_q_combines_with_the_other_filters(server: CollectorServer, trace: str) -> None:
    secret = word()
    fine = make_record(trace, prompt=secret, started_at=at(30))
    failed = make_record(trace, prompt=secret, started_at=at(31), status="error", error=None)
    post(server.url, [fine, failed])

    assert ids(get(server, "/v1/records", q=secret, status="error")) == [failed["id"]]
    assert ids(get(server, "/v1/records", q=secret, until=at(31))) == [fine["id"]]


# ---------------------------------------------------------------- cursors


def _all_pages(
    server: CollectorServer, path: str, key: str, cursor: str | None = None, **params: Any
) -> list[list[str]]:
    pages: list[list[str]] = []
    while True:
        answer = get(server, path, **params, **({"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append([item["id" if key == "records" else "trace_id"] for item in body[key]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_record_pages_follow_each_other_without_loss_or_repeat(server: CollectorServer, trace: str) -> None:
    # Several records share a start time: the cursor must tell them apart.
    records = [make_record(trace, started_at=at(40 + n // 3)) for n in range(23)]
    post(server.url, records)

    pages = _all_pages(server, "/v1/records", "records", trace_id=trace, limit=5)

    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    seen = [record_id for page in pages for record_id in page]
    assert seen == ids(get(server, "/v1/records", trace_id=trace, limit=100))
    assert sorted(seen) == sorted(record["id"] for record in records)


def test_records_arriving_between_pages_do_not_shift_the_next_page(
    server: CollectorServer, trace: str
) -> None:
    older = [make_record(trace, started_at=at(50, n)) for n in range(10)]
    post(server.url, older)
    first = get(server, "/v1/records", trace_id=trace, limit=4).json()

    newer = [make_record(trace, started_at=at(59, n)) for n in range(5)]
    same_time = [make_record(trace, started_at=at(50, 9)) for _ in range(2)]  # ties with the newest
    post(server.url, newer + same_time)
    rest = _all_pages(server, "/v1/records", "records", trace_id=trace, limit=4, cursor=first["next_cursor"])

    seen = [record["id"] for record in first["records"]] + [rid for page in rest for rid in page]
    assert sorted(seen) == sorted(record["id"] for record in older)  # none lost, none twice


def test_trace_pages_follow_each_other_without_loss_or_repeat(server: CollectorServer) -> None:
    tag = word()
    traces = [uuid.uuid4().hex for _ in range(7)]
    post(server.url, [make_record(trace_id, started_at=at(60), tags=[tag]) for trace_id in traces])

    pages = _all_pages(server, "/v1/traces", "traces", tag=tag, limit=3)

    assert [len(page) for page in pages] == [3, 3, 1]
    assert sorted(trace_id for page in pages for trace_id in page) == sorted(traces)


def test_a_page_of_large_records_stops_early_and_the_cursor_brings_the_rest(
    fresh_server: CollectorServer, trace: str
) -> None:
    # Twelve records of ~1 MB: one answer holds at most 8 MiB of records, whatever the limit.
    records = [make_record(trace, started_at=at(70, n), prompt=str(n) * 1_000_000) for n in range(12)]
    for start in range(0, 12, 4):
        assert fresh_server.store.add(records[start : start + 4]) == 4

    seen: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        answer = get(fresh_server, "/v1/records", limit=1000, **({"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200
        sizes.append(len(answer.content))
        seen += [record["id"] for record in answer.json()["records"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break

    assert len(sizes) >= 2
    assert max(sizes) <= 8 * 1024 * 1024 + 10_000
    assert seen == [record["id"] for record in reversed(records)]


# ---------------------------------------------------------------- one record


def test_a_record_is_fetched_by_id_and_an_unknown_id_is_404(server: CollectorServer, trace: str) -> None:
    record = make_record(trace, prompt=[{"role": "user", "content": "héllo 中文 🙂"}])
    post(server.url, [record])

    found = get(server, f"/v1/records/{record['id']}")
    missing = get(server, "/v1/records/no-such-id")

    assert found.status_code == 200
    assert found.json() == record
    assert missing.status_code == 404
    assert "no-such-id" in missing.json()["error"]


def test_store_reads_a_trace_oldest_first_and_a_record_by_id(tmp_path: Path, trace: str) -> None:
    store = RecordStore(tmp_path / "store.db")
    try:
        records = [make_record(trace, started_at=at(80, 5 - n)) for n in range(5)]
        store.add(records)

        assert store.trace_records(trace) == list(reversed(records))
        assert store.trace_records(trace, limit=2) == list(reversed(records))[:2]
        assert store.get_record(records[0]["id"]) == records[0]
        assert store.get_record("nope") is None
        page = store.query_records(Filters(trace_id=trace), limit=3)
        assert [record["id"] for record in page.items] == [record["id"] for record in records[:3]]
        assert page.next_cursor is not None
    finally:
        store.close()


# ---------------------------------------------------------------- stats and facets


def _stats_data(trace: str) -> list[dict[str, Any]]:
    def call(minute: int, model: str, duration: float, **fields: Any) -> dict[str, Any]:
        return make_record(trace, started_at=at(minute), model=model, duration_ms=duration, **fields)

    return [
        call(0, "a", 100.0, ttft_ms=10.0, stream=True),
        call(1, "a", 200.0, ttft_ms=30.0, stream=True),
        call(12, "a", 300.0, cost_usd=0.5),
        call(
            13,
            "a",
            400.0,
            status="error",
            usage=None,
            cost_usd=None,
            error={"type": "RateLimitError", "message": "slow down"},
        ),
        call(25, "b", 1000.0, usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
        call(26, "b", 50.0, status="error", error={"type": "RateLimitError", "message": "slow down"}),
        call(27, "b", 60.0, status="error", error={"type": "APIError", "message": "boom"}),
        call(
            28,
            "",
            5.0,
            kind="span",
            name="step",
            status="error",
            error={"type": "ValueError", "message": "x"},
        ),
        call(31, "b", 70.0),  # after the range
    ]


def test_stats_count_calls_errors_tokens_and_cost_and_give_exact_percentiles(
    fresh_server: CollectorServer, trace: str
) -> None:
    post(fresh_server.url, _stats_data(trace))

    answer = get(fresh_server, "/v1/stats", since=at(0), until=at(30), bucket="10m")

    assert answer.status_code == 200, answer.text
    stats = answer.json()
    assert stats["since"] == at(0)
    assert stats["until"] == at(30)
    assert stats["bucket"] == "10m"
    assert stats["percentiles"] == "exact"
    assert stats["totals"]["calls"] == 7  # spans are not calls
    assert stats["totals"]["errors"] == 3
    assert stats["totals"]["tokens"] == 15 * 5 + 2
    assert stats["totals"]["cost_usd"] == pytest.approx(0.001 * 5 + 0.5)
    assert [(point["t"], point["calls"], point["errors"]) for point in stats["series"]] == [
        (at(0), 2, 0),
        (at(10), 2, 1),
        (at(20), 3, 2),
    ]
    a, b = stats["by_model"]
    assert a == {
        "model": "a",
        "calls": 4,
        "errors": 1,
        "p50_ms": 200.0,  # nearest rank
        "p95_ms": 400.0,
        "ttft_p50_ms": 10.0,
        "ttft_p95_ms": 30.0,
        "tokens": 45,
        "cost_usd": pytest.approx(0.502),
    }
    assert (b["model"], b["calls"], b["errors"], b["p50_ms"], b["p95_ms"]) == ("b", 3, 2, 60.0, 1000.0)
    assert b["ttft_p50_ms"] is None
    assert stats["top_errors"][0] == {
        "type": "RateLimitError",
        "message": "slow down",
        "count": 2,
        "last_at": at(26),
    }
    assert {(entry["type"], entry["count"]) for entry in stats["top_errors"][1:]} == {
        ("APIError", 1),
        ("ValueError", 1),
    }


@pytest.mark.parametrize(
    ("since", "kind", "bucket", "points"),
    [
        ("2025-12-31T00:00:00Z", "hourly histogram", "15m", 192),  # two days
        ("2025-12-25T00:00:00Z", "daily histogram", "1h", 192),  # eight days
    ],
)
def test_stats_over_a_long_range_estimate_percentiles_within_five_percent(
    fresh_server: CollectorServer, trace: str, since: str, kind: str, bucket: str, points: int
) -> None:
    post(fresh_server.url, _stats_data(trace))

    stats = get(fresh_server, "/v1/stats", since=since, until="2026-01-02T00:00:00Z").json()

    assert stats["percentiles"] == kind
    assert stats["bucket"] == bucket  # auto: at most 200 points
    assert len(stats["series"]) == points
    assert stats["totals"]["calls"] == 8
    a = stats["by_model"][0]
    assert a["model"] == "a"
    for key, exact in [("p50_ms", 200.0), ("p95_ms", 400.0), ("ttft_p50_ms", 10.0), ("ttft_p95_ms", 30.0)]:
        assert a[key] == pytest.approx(exact, rel=0.05)
    assert [(e["type"], e["message"], e["count"], e["last_at"]) for e in stats["top_errors"]] == [
        ("RateLimitError", "slow down", 2, at(26)),
        ("ValueError", "x", 1, at(28)),  # the latest first among equal counts
        ("APIError", "boom", 1, at(27)),
    ]


def test_stats_default_to_the_last_24_hours(fresh_server: CollectorServer) -> None:
    stats = get(fresh_server, "/v1/stats").json()

    assert stats["totals"]["calls"] == 0
    assert stats["bucket"] == "15m"
    assert stats["by_model"] == []
    assert stats["top_errors"] == []
    assert all(point["calls"] == 0 for point in stats["series"])


def test_facets_list_the_models_providers_and_tags_seen(fresh_server: CollectorServer, trace: str) -> None:
    post(
        fresh_server.url,
        [
            make_record(trace, model="m2", tags=["t1"]),
            make_record(trace, model="m1", provider="anthropic", tags=["t2", "t1"]),
            make_record(trace, kind="span", name="s", provider="neatlogs", model=""),
        ],
    )

    assert get(fresh_server, "/v1/facets").json() == {
        "models": ["m1", "m2"],
        "providers": ["anthropic", "neatlogs", "openai"],
        "tags": ["t1", "t2", "test"],
    }


# ---------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/v1/records", {"status": "failed"}, "status"),
        ("/v1/records", {"kind": "tool"}, "kind"),
        ("/v1/records", {"since": "yesterday"}, "since"),
        ("/v1/records", {"until": "2026-13-01"}, "until"),
        ("/v1/records", {"since": "2026-01-02", "until": "2026-01-01"}, "until"),
        ("/v1/records", {"q": "?!"}, "q"),
        ("/v1/records", {"q": "a" * 1001}, "q"),
        ("/v1/records", {"cursor": "not-a-cursor"}, "cursor"),
        ("/v1/records", {"cursor": "WyJ4Il0"}, "cursor"),  # valid base64 JSON, wrong shape
        ("/v1/records", {"limit": "lots"}, "limit"),
        ("/v1/traces", {"status": "ok"}, "status"),
        ("/v1/traces", {"cursor": "WyJhIiwxXQ"}, "cursor"),  # a records cursor
        ("/v1/traces", {"since": "0001-01-01T00:00:00+05:00"}, "since"),
        ("/v1/stats", {"since": "soon"}, "since"),
        ("/v1/stats", {"until": "2020-01-01T00:00:00Z", "since": "2021-01-01T00:00:00Z"}, "until"),
        ("/v1/stats", {"bucket": "7x"}, "bucket"),
        ("/v1/stats", {"bucket": "0m"}, "bucket"),
        ("/v1/stats", {"bucket": "1m", "since": "2020-01-01", "until": "2021-01-01"}, "bucket"),
        ("/v1/stats", {"since": "0001-01-01", "until": "9999-12-31"}, "bucket"),  # too long even for auto
    ],
)
def test_a_bad_parameter_is_400_naming_it(
    server: CollectorServer, path: str, params: dict[str, str], name: str
) -> None:
    answer = get(server, path, **params)

    assert answer.status_code == 400
    assert answer.json()["error"].startswith(name)


def test_the_new_endpoints_need_the_key(server: CollectorServer) -> None:
    for path in ("/v1/records/x", "/v1/stats", "/v1/facets"):
        assert requests.get(server.url + path, timeout=10).status_code == 401


# ---------------------------------------------------------------- old queries, old rows


def test_old_queries_give_the_same_answers_plus_a_cursor(server: CollectorServer, trace: str) -> None:
    records = [make_record(trace, started_at=at(90, n)) for n in range(3)]
    post(server.url, records)

    answer = get(server, "/v1/records", trace_id=trace, status="success", limit=2).json()

    assert set(answer) == {"records", "next_cursor"}
    assert answer["records"] == [records[2], records[1]]  # stored verbatim, newest first
    assert isinstance(answer["next_cursor"], str)
    assert get(server, "/v1/traces", limit=1).json()["traces"][0].keys() >= {
        "trace_id",
        "calls",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cost_usd",
        "first_at",
        "last_at",
    }


def test_a_record_holding_a_lone_surrogate_is_read_back_with_it_replaced(
    server: CollectorServer, trace: str
) -> None:
    body = json.dumps(
        {"records": [make_record(trace, prompt="bad \ud800 half", tags=["\udfff"], model="m\ud801")]}
    )
    headers = {**AUTH, "Content-Type": "application/json"}
    answer = requests.post(f"{server.url}/v1/records", data=body, headers=headers, timeout=10)
    assert answer.status_code == 200

    records = get(server, "/v1/records", trace_id=trace)
    traces = get(server, "/v1/traces", trace_id=trace)
    facets = get(server, "/v1/facets")

    assert records.status_code == traces.status_code == facets.status_code == 200
    (record,) = records.json()["records"]
    assert record["prompt"] == "bad \ufffd half"
    assert get(server, f"/v1/records/{record['id']}").json()["prompt"] == "bad \ufffd half"
    assert traces.json()["traces"][0]["tags"] == ["\ufffd"]


# The first collector's schema and insert (git show a7b1b3b:neatlogs/collector/store.py).
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id                TEXT PRIMARY KEY,
    trace_id          TEXT NOT NULL,
    started_at        TEXT,
    status            TEXT,
    model             TEXT,
    provider          TEXT,
    operation         TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    total_tokens      INTEGER,
    cost_usd          REAL,
    duration_ms       REAL,
    record            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_trace_started ON records (trace_id, started_at);
CREATE INDEX IF NOT EXISTS records_started ON records (started_at);
"""
OLD_INSERT = (
    "INSERT OR IGNORE INTO records (id, trace_id, started_at, status, model, provider, operation,"
    " prompt_tokens, completion_tokens, total_tokens, cost_usd, duration_ms, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _old_database(path: Path, records: list[dict[str, Any]]) -> None:
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for record in records:
        usage = record.get("usage") or {}
        db.execute(
            OLD_INSERT,
            (
                record["id"],
                record["trace_id"],
                record["started_at"],
                record["status"],
                record["model"],
                record["provider"],
                record["operation"],
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                usage.get("total_tokens"),
                record["cost_usd"],
                record["duration_ms"],
                json.dumps(record),  # ASCII: a lone surrogate is kept as a \\ud800 escape
            ),
        )
    db.commit()
    db.close()


def test_a_database_of_the_first_collector_is_migrated_in_place_and_queried(tmp_path: Path) -> None:
    trace, secret = uuid.uuid4().hex, word()
    records = [
        make_record(trace, started_at=at(0), prompt=f"about {secret}", tags=["old"]),
        make_record(
            trace, started_at=at(1), status="error", error={"type": "APIError", "message": "x"}, usage=None
        ),
        make_record(trace, started_at=at(2), prompt="lone \udc00 surrogate", ttft_ms=12.0),
    ]
    path = tmp_path / "neatlogs.db"
    _old_database(path, records)

    with _collector(path) as server:
        listed = get(server, "/v1/records", trace_id=trace)
        found = get(server, "/v1/records", q=secret)
        traces = get(server, "/v1/traces")
        stats = get(server, "/v1/stats", since=at(0), until=at(10))
        one = get(server, f"/v1/records/{records[1]['id']}")
        facets = get(server, "/v1/facets")
        post(server.url, [make_record(trace, started_at=at(3))])  # and it keeps ingesting
        after = get(server, "/v1/traces").json()["traces"][0]

    assert [record["id"] for record in listed.json()["records"]] == [r["id"] for r in reversed(records)]
    assert listed.json()["records"][0]["prompt"] == "lone \ufffd surrogate"
    assert ids(found) == [records[0]["id"]]
    (summary,) = traces.json()["traces"]
    assert (summary["trace_id"], summary["calls"], summary["errors"], summary["tags"]) == (
        trace,
        3,
        1,
        ["old", "test"],
    )
    assert stats.json()["totals"]["calls"] == 3
    assert stats.json()["by_model"][0]["ttft_p50_ms"] == 12.0
    assert one.json() == records[1]
    assert facets.json()["tags"] == ["old", "test"]
    assert after["calls"] == 4
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone() == (_schema.VERSION,)
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'records_v0'").fetchall()
    finally:
        db.close()


def test_setting_user_version_1_rebuilds_the_summaries_after_rows_are_deleted_by_hand(
    tmp_path: Path, trace: str
) -> None:
    path = tmp_path / "neatlogs.db"
    store = RecordStore(path)
    store.add([make_record(trace, started_at=at(n), prompt=f"p{n} kiwi") for n in range(4)])
    store.close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM records WHERE started_at < ?", (at(2),))
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()

    store = RecordStore(path)
    try:
        (summary,) = store.query_traces(Filters()).items
        found = store.query_records(Filters(q="kiwi")).items
    finally:
        store.close()

    assert (summary["calls"], summary["first_at"]) == (2, at(2))
    assert [record["started_at"] for record in found] == [at(3), at(2)]


def test_a_database_from_a_newer_neatlogs_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()

    with pytest.raises(RuntimeError, match="newer than this neatlogs"):
        RecordStore(path)


def test_stats_over_a_range_not_on_whole_hours_add_up_the_same_in_any_bucket(
    fresh_server: CollectorServer, trace: str
) -> None:
    minutes = [5, 59, 60, 61, 119, 120, 150, 179, 185]  # around hour boundaries on 2026-01-01
    post(fresh_server.url, [make_record(trace, started_at=at(minute)) for minute in minutes])

    def stats(bucket: str) -> dict[str, Any]:
        answer = get(fresh_server, "/v1/stats", since=at(30), until=at(180), bucket=bucket)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    hourly, every_ten = stats("1h"), stats("10m")

    assert hourly["totals"]["calls"] == every_ten["totals"]["calls"] == 7  # 59 .. 179
    assert hourly["by_model"][0]["calls"] == 7
    assert [(point["t"], point["calls"]) for point in hourly["series"]] == [
        (at(0), 1),  # aligned to whole hours; counts only from since on
        (at(60), 3),
        (at(120), 3),
    ]
    assert sum(point["calls"] for point in every_ten["series"]) == 7
    assert every_ten["series"][0]["t"] == at(30)


def test_a_trace_is_fetched_with_its_calls_timeline_and_an_unknown_one_is_404(
    server: CollectorServer, trace: str
) -> None:
    span = make_record(trace, started_at=at(100), kind="span", name="agent", model="", tags=[])
    call = make_record(
        trace,
        started_at=at(100, 1),
        parent_id=span["id"],
        status="error",
        error={"type": "APIError", "message": "boom"},
        ttft_ms=12.5,
    )
    post(server.url, [call, span])

    answer = get(server, f"/v1/traces/{trace}")
    missing = get(server, "/v1/traces/no-such-trace")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["trace"]["trace_id"], body["trace"]["calls"], body["trace"]["spans"]) == (trace, 1, 1)
    first, second = body["calls"]  # oldest first
    assert (first["id"], first["kind"], first["name"], first["parent_id"]) == (
        span["id"],
        "span",
        "agent",
        None,
    )
    assert (second["id"], second["kind"], second["parent_id"]) == (call["id"], "llm", span["id"])
    assert (second["error_type"], second["error_message"], second["ttft_ms"]) == ("APIError", "boom", 12.5)
    assert "prompt" not in second
    assert missing.status_code == 404


def test_trace_records_stop_at_their_byte_bound_keeping_at_least_one(tmp_path: Path, trace: str) -> None:
    store = RecordStore(tmp_path / "store.db")
    try:
        store.add([make_record(trace, started_at=at(110, n), prompt="x" * 10_000) for n in range(5)])

        assert len(store.trace_records(trace)) == 5
        assert len(store.trace_records(trace, max_bytes=25_000)) == 2
        assert len(store.trace_records(trace, max_bytes=1)) == 1
    finally:
        store.close()


def _upto(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        ((upto,),) = db.execute("SELECT upto FROM summary_state").fetchall()
    finally:
        db.close()
    return int(upto)


def test_the_index_and_summaries_catch_up_in_chunks_and_before_any_read_of_them(tmp_path: Path) -> None:
    path = tmp_path / "fold.db"
    store = RecordStore(path)
    try:
        trace = uuid.uuid4().hex
        for start in range(0, 1000, 100):  # ten exporter batches: the tenth folds them all in
            store.add([make_record(trace, prompt=f"apple{n}") for n in range(start, start + 100)])
            assert _upto(path) == (1000 if start == 900 else 0)
        store.add([make_record(trace, prompt="banana", tags=["late"])])
        assert _upto(path) == 1000  # waiting to be folded in...

        found = store.query_records(Filters(q="banana")).items  # ...and folded before the search

        assert [record["prompt"] for record in found] == ["banana"]
        assert _upto(path) == 1001
        assert store.query_traces(Filters(tag="late")).items[0]["calls"] == 1001
    finally:
        store.close()


CRASHING_WRITER = """
import os, sys
sys.path.insert(0, sys.argv[2])
from neatlogs.collector import RecordStore
from tests.test_collector import make_record
store = RecordStore(sys.argv[1])
store.add([make_record("crashed", prompt="cherry", started_at="2026-01-01T00:00:00.000000Z")])
os._exit(0)  # no close(): the record is stored, not yet folded into the index and summaries
"""


def test_records_stored_by_a_run_that_stopped_before_folding_them_are_folded_at_the_next_start(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    path = tmp_path / "crash.db"
    repo = str(Path(__file__).resolve().parent.parent)
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(path), repo], check=True, timeout=60)
    assert _upto(path) == 0

    store = RecordStore(path)
    try:
        assert [record["prompt"] for record in store.query_records(Filters(q="cherry")).items] == ["cherry"]
        assert store.query_traces(Filters(trace_id="crashed")).items[0]["calls"] == 1
        assert store.stats(since="2026-01-01T00:00:00Z", until="2026-01-01T00:01:00Z")["totals"]["calls"] == 1
    finally:
        store.close()
