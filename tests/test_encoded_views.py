"""A view whose cleaning changed nothing carries its JSON text; the exporter sends that text as it is."""

from __future__ import annotations

import collections
import copy
import enum
import gzip
import itertools
import json
import pickle
import random
from typing import Any

import pytest

from neatlogs.record import sanitize as _sanitize
from neatlogs.record.capture import FULL, METADATA, CaptureSettings, _clean, _fit, build_view
from neatlogs.record.named_secrets import may_hold_named_secret
from neatlogs.record.redact import _SECRET_MARKER, SECRET_MARKERS, may_hold_secret
from neatlogs.record.sanitize import Cleaner, EncodedRecord, json_text, plain_copy
from neatlogs.sinks.exporter.http import encode

from .helpers import choose_json_library

SDK = {"name": "neatlogs", "version": "0.0.0"}
ORJSON = _sanitize._orjson


@pytest.fixture(params=["stdlib", "orjson"], autouse=True)
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with the stdlib's encoder and with orjson (the `speedups` extra) when installed."""
    return choose_json_library(request, monkeypatch, _sanitize, ORJSON)


def _same_json(text: str, value: Any, encoder: str) -> None:
    expected = json.dumps(value, separators=(",", ":"), default=str)
    if encoder == "stdlib":
        assert text == expected
    else:
        assert json.loads(text) == json.loads(expected)


class Role(str, enum.Enum):
    USER = "user"


def _raw(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "abc",
        "trace_id": "t",
        "provider": "openai",
        "operation": "chat",
        "model": "gpt-4o-mini",
        "request": {
            "model": "gpt-4o-mini",
            "temperature": 0.2,
            "messages": [{"role": "user", "content": "x"}],
        },
        "prompt": [{"role": "user", "content": "hi"}],
        "completion": {"role": "assistant", "content": "hello"},
        "choices": [{"role": "assistant", "content": "hello"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "tags": ["a"],
        "stream": False,
        "started_at": "2026-01-01T00:00:00.000000Z",
        "ended_at": "2026-01-01T00:00:01.000000Z",
        "status": "success",
        "error": None,
    }
    record.update(fields)
    return record


def _slow_view(raw: dict[str, Any], mode: str, settings: CaptureSettings) -> dict[str, Any]:
    """The view as the plain cleaner builds it (a string at a time), without any JSON text."""
    from neatlogs.record.capture import strip_content

    source = strip_content(raw) if mode == METADATA else {**raw, "capture": FULL}
    cleaned, chars = _clean(source, settings)
    return _fit(cleaned, chars, settings)


SECRET = "sk-proj-" + "a1B2c3D4" * 4
CASES = {
    "plain": _raw(),
    "secret in the prompt": _raw(prompt=[{"role": "user", "content": f"my key is {SECRET}"}]),
    "secret in an error": _raw(error={"type": "AuthenticationError", "message": f"Bearer {SECRET}"}),
    "aws secret name": _raw(prompt="aws_secret_access_key=" + "A" * 40),
    "mixed-case aws name (not a marker)": _raw(prompt="Aws_Secret_Access_Key=" + "A" * 40),
    "long string": _raw(prompt="x " * 400),
    "longer than the limit": _raw(prompt="y" * 5000),
    "data url": _raw(prompt="data:image/png;base64," + "Q" * 600),
    "str enum": _raw(model=Role.USER),
    "tuple": _raw(tags=("a", "b")),
    "int key": _raw(request={1: "one"}),
    "nan": _raw(cost_usd=float("nan")),
    "object": _raw(request={"file": object()}),
    "non-ascii": _raw(prompt="héllo wörld ✓ 🙂"),
    "deep": _raw(request=json.loads("[" * 70 + "]" * 70)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("mode", [FULL, METADATA])
@pytest.mark.parametrize(
    "settings",
    [
        CaptureSettings(),
        CaptureSettings(mask_pii=True),
        CaptureSettings(mask_secrets=False),
        CaptureSettings(max_string_length=1000, max_record_bytes=4096),
    ],
    ids=["default", "pii", "no-masks", "small-limits"],
)
def test_a_view_is_what_the_cleaner_makes_and_its_text_is_its_json(
    name: str, mode: str, settings: CaptureSettings, encoder: str
) -> None:
    raw = CASES[name]
    view = build_view(raw, mode, settings)
    assert view == _slow_view(raw, mode, settings)
    assert json.dumps(view, default=str) == json.dumps(_slow_view(raw, mode, settings), default=str)
    if type(view) is EncodedRecord:
        _same_json(view.json, view, encoder)


def test_only_views_that_cleaning_left_alone_carry_their_text() -> None:
    settings = CaptureSettings()
    assert type(build_view(CASES["plain"], FULL, settings)) is EncodedRecord
    assert type(build_view(CASES["non-ascii"], FULL, settings)) is EncodedRecord
    assert type(build_view(CASES["long string"], FULL, settings)) is EncodedRecord
    for name in ("secret in the prompt", "longer than the limit", "str enum", "tuple", "int key", "nan"):
        assert type(build_view(CASES[name], FULL, settings)) is not EncodedRecord, name
    # A redactor may change the view after cleaning: its views never carry a text.
    redacting = CaptureSettings(redact=lambda record: record)
    assert type(build_view(CASES["plain"], FULL, redacting)) is not EncodedRecord


def test_masks_still_apply_when_the_record_has_a_secret() -> None:
    view = build_view(CASES["secret in the prompt"], FULL, CaptureSettings())
    assert SECRET not in json.dumps(view)
    assert "[REDACTED]" in view["prompt"][0]["content"]


def test_the_body_is_the_same_bytes_with_or_without_texts(encoder: str) -> None:
    settings = CaptureSettings()
    views = [build_view({**CASES["plain"], "id": str(n)}, FULL, settings) for n in range(5)]
    assert all(type(view) is EncodedRecord for view in views)
    plain = [dict(view) for view in views]
    expected = json.dumps({"records": plain, "sdk": SDK}, separators=(",", ":"), default=str)
    _same_json(gzip.decompress(encode(views, SDK)).decode(), {"records": plain, "sdk": SDK}, encoder)
    assert gzip.decompress(encode(plain, SDK)).decode() == expected
    mixed = [*views[:2], plain[2], *views[3:]]  # one record without a text: the batch is encoded whole
    assert gzip.decompress(encode(mixed, SDK)).decode() == expected


def test_copies_of_an_encoded_view_are_plain_dicts() -> None:
    view = build_view(CASES["plain"], FULL, CaptureSettings())
    assert type(view) is EncodedRecord
    for twin in (copy.copy(view), copy.deepcopy(view), pickle.loads(pickle.dumps(view))):
        assert type(twin) is dict
        assert twin == view
    deep = copy.deepcopy(view)
    assert deep["prompt"] is not view["prompt"]


def test_json_text_refuses_what_is_not_plain_json(encoder: str) -> None:
    text = json_text({"a": [1, 2.5, None, True, "é"]})
    assert text == (
        '{"a":[1,2.5,null,true,"\\u00e9"]}' if encoder == "stdlib" else '{"a":[1,2.5,null,true,"é"]}'
    )
    if encoder == "stdlib":  # orjson writes NaN as null: the cleaner then keeps the view from its text
        assert json_text({"a": float("nan")}) is None
    assert json_text({"a": 2**70}) is None or encoder == "stdlib"
    assert json_text({"a": object()}) is None
    cycle: list[Any] = []
    cycle.append(cycle)
    assert json_text(cycle) is None


def test_the_marker_check_agrees_with_the_marker_pattern() -> None:
    rng = random.Random(7)
    alphabet = "skeyJxoAKISZwgh_purcAWSECRTaw -."
    texts = ["", "Bearer x", "ghx_", *SECRET_MARKERS]
    texts += [f"a {marker} b" for marker in SECRET_MARKERS] + [marker[:-1] for marker in SECRET_MARKERS]
    texts += ["".join(p) for p in itertools.product("skA-", repeat=3)]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(20_000)]
    for text in texts:
        expected = _SECRET_MARKER.search(text) is not None or may_hold_named_secret(text)
        assert may_hold_secret(text) == expected, text


def test_a_record_near_the_size_limit_is_measured_exactly() -> None:
    # orjson's text only bounds the escaped size: a record close to the limit is measured with
    # json_size, and kept whole (with its text) when it fits.
    settings = CaptureSettings(max_record_bytes=4096)
    raw = _raw(prompt="é" * 1000)  # 2,000 UTF-8 bytes, 6,000 characters escaped
    view = build_view(raw, FULL, settings)
    assert view == _slow_view(raw, FULL, settings)
    small = _raw(prompt="é" * 300)  # 1,800 characters escaped: fits
    view = build_view(small, FULL, settings)
    assert view["prompt"] == "é" * 300
    assert type(view) is EncodedRecord


PLAIN_CASES = {
    "plain": _raw(),
    "float": _raw(cost_usd=0.5, request={"temperature": 0.0, "top_p": -0.0}),
    "long string kept": _raw(prompt="x " * 400),
    "long string cut": _raw(prompt="y" * 200_000),
    "data url": _raw(prompt="data:image/png;base64," + "Q" * 600),
    "bare base64": _raw(prompt="QUJD" * 300),
    "str enum": _raw(model=Role.USER),
    "int enum": _raw(usage={"prompt_tokens": enum.IntEnum("N", "ONE").ONE}),
    "float subclass": _raw(cost_usd=type("F", (float,), {})(0.5)),
    "dict subclass": _raw(request=collections.OrderedDict(model="m")),
    "list subclass": _raw(tags=type("L", (list,), {})(["a"])),
    "tuple": _raw(tags=("a", "b")),
    "int key": _raw(request={1: "one"}),
    "nan": _raw(cost_usd=float("nan")),
    "inf in a list": _raw(request={"stop": [float("inf")]}),
    "object": _raw(request={"file": object()}),
    "deep": _raw(request=json.loads("[" * 70 + "]" * 70)),
    "just deep enough": _raw(request=json.loads("[" * 62 + "1" + "]" * 62)),
}


@pytest.mark.parametrize("name", list(PLAIN_CASES))
@pytest.mark.parametrize("max_string", [None, 100_000, 16])
def test_plain_copy_is_the_cleaners_copy_when_that_changes_nothing(name: str, max_string: int | None) -> None:
    record = {**PLAIN_CASES[name], "capture": FULL}
    cleaner = Cleaner(None, max_string)
    expected = cleaner.copy(record)
    copied = plain_copy(record, max_string)
    if copied is None:
        return  # the cleaner decides (plain_copy may decline more than it must, never less)
    assert not cleaner.changed
    assert copied == expected
    assert json.dumps(copied) == json.dumps(expected)
    assert copied["request"] is not record["request"]  # a copy, not the record's own objects
    assert [type(value) for value in copied.values()] == [type(value) for value in expected.values()]


def test_plain_copy_declines_what_the_cleaner_would_change() -> None:
    for name in ("long string cut", "data url", "bare base64", "str enum", "int enum", "float subclass"):
        assert plain_copy({**PLAIN_CASES[name]}, 100_000) is None, name
    for name in (
        "dict subclass",
        "list subclass",
        "tuple",
        "int key",
        "nan",
        "inf in a list",
        "object",
        "deep",
    ):
        assert plain_copy({**PLAIN_CASES[name]}, 100_000) is None, name
    assert plain_copy({**PLAIN_CASES["plain"]}, 100_000) is not None
    assert plain_copy({**PLAIN_CASES["long string kept"]}, 100_000) is not None
