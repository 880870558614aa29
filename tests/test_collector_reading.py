"""The collector reads a batch the same way with or without orjson (the `speedups` extra)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from neatlogs.collector import app
from neatlogs.collector.app import BadRequest, read_batch

from .helpers import choose_json_library

ORJSON = app._orjson


@pytest.fixture(params=["stdlib", "orjson"], autouse=True)
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    return choose_json_library(request, monkeypatch, app, ORJSON)


def _record(n: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(app.REQUIRED_KEYS)
    record.update(id=f"r{n}", trace_id="t", usage={"prompt_tokens": 3}, prompt="héllo ✓ 🙂", cost_usd=0.25)
    record.update(fields)
    return record


BODIES = {
    "compact": json.dumps({"records": [_record(1), _record(2)], "sdk": {}}, separators=(",", ":")),
    "pretty, other keys first": json.dumps({"sdk": {"x": 1}, "records": [_record(1)]}, indent=2),
    "unescaped non-ASCII": json.dumps({"records": [_record(1)]}, ensure_ascii=False),
    "an integer beyond 64 bits": json.dumps({"records": [_record(1, seed=2**70, offset=-(2**65))]}),
    "large floats": json.dumps({"records": [_record(1, duration_ms=1e300, cost_usd=1e17)]}),
    "empty": '{"records":[]}',
}


@pytest.mark.parametrize("name", list(BODIES))
def test_records_and_their_texts_are_what_was_sent(name: str) -> None:
    body = BODIES[name].encode()
    records, texts = read_batch(body)
    assert records == json.loads(body)["records"]
    assert texts is not None
    assert [json.loads(text) for text in texts] == records


def test_an_integer_beyond_64_bits_is_kept_exactly() -> None:
    records, texts = read_batch(BODIES["an integer beyond 64 bits"].encode())
    assert records[0]["seed"] == 2**70 and type(records[0]["seed"]) is int
    assert texts is not None and str(2**70) in texts[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"records":[{"id":NaN}]}', "not valid JSON"),
        (b'{"records":[{"id":"x"}', "not valid JSON"),
        (b'{"records":{}}', "body must be a JSON object"),
        (b'[{"records":[]}]', "body must be a JSON object"),
        (b'{"records":[1]}', "records[0] is not a JSON object"),
        (b'{"records":[{"id":"x"}]}', "records[0] is missing"),
    ],
)
def test_bad_bodies_are_refused_with_the_same_message(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        read_batch(body)
    assert refused.value.status_code == 400
    assert message in refused.value.message


def _nested_body(levels: int) -> bytes:
    text = json.dumps({"records": [_record(1, request="DEEP")]})
    return text.replace('"DEEP"', "[" * levels + "1" + "]" * levels).encode()


@pytest.mark.parametrize("levels", [app.MAX_DEPTH, 300, 3000])
def test_too_deep_records_are_refused_the_same_way(levels: int) -> None:
    with pytest.raises(BadRequest) as refused:
        read_batch(_nested_body(levels))
    assert refused.value.status_code == 400
    assert refused.value.message.startswith("too deeply nested: ")
    assert f"more than {app.MAX_DEPTH} levels" in refused.value.message


def test_a_record_at_the_nesting_limit_is_read() -> None:
    records, _ = read_batch(_nested_body(app.MAX_DEPTH - 1))
    assert len(records) == 1


def test_lone_surrogates_are_replaced_in_records_and_texts() -> None:
    body = json.dumps({"records": [_record(1, model="m\udc00", prompt=["\ud83d\ude42", "\ud800x"])]}).encode()
    records, texts = read_batch(body)
    assert records[0]["model"] == "m\ufffd"
    assert records[0]["prompt"] == ["🙂", "\ufffdx"]
    assert texts is not None and json.loads(texts[0]) == records[0]
    assert "\\ud800" not in texts[0] and texts[0].encode("utf-8")


def test_too_many_records_are_refused_with_413() -> None:
    body = json.dumps({"records": [_record(n) for n in range(app.MAX_RECORDS + 1)]}).encode()
    with pytest.raises(BadRequest) as refused:
        read_batch(body)
    assert refused.value.status_code == 413
