"""Size limits: long strings cut with a marker, base64 blobs omitted, a maximum record size; odd values."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import pathlib
import uuid
from collections.abc import Callable
from typing import Any

import openai
import pydantic
import pytest

from neatlogs.openai import OpenAIProvider
from neatlogs.record.jsonsafe import to_jsonable
from neatlogs.record.sanitize import json_size

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40).decode()


def _ask(client: openai.OpenAI, content: Any, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}], **kwargs
    )


def test_long_strings_are_cut_with_a_marker_saying_how_much(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(max_string_length=100)
    text = "word " * 400  # 2,000 characters
    _ask(client, text)

    (record,) = provider.get_conversation_history()
    assert record["prompt"][0]["content"] == text[:100] + "...[truncated 1900 chars]"
    assert record["completion"]["content"].endswith("...[truncated 1906 chars]")  # "Echo: " + text
    assert record["request"]["messages"][0]["content"] == record["prompt"][0]["content"]


def test_strings_are_kept_whole_up_to_the_default_limit(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider()
    text = "word " * 10_000
    _ask(client, text)

    (record,) = provider.get_conversation_history()
    assert record["prompt"][0]["content"] == text


def test_no_limit_when_max_string_length_is_none(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(max_string_length=None, max_record_bytes=None)
    text = "word " * 30_000  # 150,000 characters: above the default limit
    _ask(client, text)

    (record,) = provider.get_conversation_history()
    assert record["prompt"][0]["content"] == text


def test_base64_images_are_replaced_by_their_size(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider()
    content = [
        {"type": "text", "text": "what is in this picture?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": PNG, "format": "wav"}},
    ]
    _ask(client, content)

    (record,) = provider.get_conversation_history()
    parts = record["prompt"][0]["content"]
    assert parts[0] == {"type": "text", "text": "what is in this picture?"}
    assert parts[1]["image_url"] == {
        "url": f"data:image/png;base64,[base64 omitted: {len(PNG)} chars]",
        "detail": "low",
    }
    assert parts[2]["input_audio"]["data"] == f"[base64 omitted: {len(PNG)} chars]"
    assert json_size(record) < 3000


def test_a_record_larger_than_max_record_bytes_is_cut_to_fit(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(max_record_bytes=8192)
    messages: Any = [{"role": "user", "content": f"message {i}: " + "lorem ipsum " * 300} for i in range(10)]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    (record,) = provider.get_conversation_history()
    assert json_size(record) <= 8192
    assert record["capture"] == "full" and len(record["prompt"]) == 10
    assert record["prompt"][0]["content"].startswith("message 0: lorem ipsum")
    assert "...[truncated" in record["prompt"][0]["content"]
    assert record["usage"]["prompt_tokens"] > 3000


def test_a_record_that_cannot_fit_with_content_keeps_its_metadata(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(max_record_bytes=4096)
    messages: Any = [{"role": "user", "content": f"message {i}"} for i in range(400)]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    (record,) = provider.get_conversation_history()
    assert json_size(record) <= 4096
    assert record["capture"] == "metadata" and record["prompt"] is None
    assert record["usage"]["prompt_tokens"] == 800 and record["status"] == "success"


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("max_string_length", 0, ValueError, "max_string_length must be an int >= 16"),
        ("max_string_length", "1k", TypeError, "max_string_length must be an int >= 16"),
        ("max_record_bytes", 100, ValueError, r"max_record_bytes must be an int >= 1024 \(bytes\) or None"),
        ("max_record_bytes", 2.5, TypeError, "max_record_bytes must be an int"),
    ],
)
def test_bad_limits_fail_at_construction(name: str, value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        OpenAIProvider(otel=False, **{name: value})


# ---- values that are not JSON ----


class Colour(enum.Enum):
    RED = "red"


class Settings(pydantic.BaseModel):
    depth: int = 3
    label: str = "x"


@dataclasses.dataclass
class Point:
    x: int
    y: float
    api_key: str = "sk-hidden-dataclass-key-123"


class NumpyLikeScalar:
    """The numpy scalar protocol (`item()`, shape `()`), without depending on numpy."""

    shape = ()
    size = 1

    def item(self) -> float:
        return 2.5

    def tolist(self) -> float:
        return 2.5


class NotGiven:
    """Named like the openai SDK's "argument not given" sentinel."""


class Hostile:
    def __iter__(self) -> Any:
        raise RuntimeError("no")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("no attributes either")


def test_values_that_are_not_json_become_something_sensible(tmp_path: pathlib.Path) -> None:
    upload = tmp_path / "photo.png"
    upload.write_bytes(b"\x89PNG")
    with upload.open("rb") as handle:
        converted = to_jsonable(
            {
                "bytes": b"\x00\x01\x02",
                "model": Settings(depth=5),
                "point": Point(1, 2.0),
                "scalar": NumpyLikeScalar(),
                "sentinel": NotGiven(),
                "in_list": [1, NotGiven(), 2],
                "file": handle,
                "upload": ("photo.png", handle, "image/png"),
                "path": upload,
                "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
                "money": decimal.Decimal("1.10"),
                "id": uuid.UUID(int=1),
                "colour": Colour.RED,
                "set": {3},
                "nan": float("nan"),
                "hostile": Hostile(),
                "Authorization": "Bearer abc",
            }
        )
    assert converted == {
        "bytes": "<3 bytes>",
        "model": {"depth": 5},
        "point": {"x": 1, "y": 2.0},
        "scalar": 2.5,
        "in_list": [1, 2],
        "file": "<file 'photo.png'>",
        "upload": ["photo.png", "<file 'photo.png'>", "image/png"],
        "path": str(upload),
        "when": "2026-01-02T03:04:05+00:00",
        "money": "1.10",
        "id": "00000000-0000-0000-0000-000000000001",
        "colour": "red",
        "set": [3],
        "nan": "nan",
        "hostile": "<Hostile>",
    }
    json.dumps(converted)


def test_a_failed_call_with_unusual_arguments_is_still_recorded(
    make_provider: Callable[..., OpenAIProvider], tmp_path: pathlib.Path
) -> None:
    provider = make_provider()
    with (tmp_path / "doc.txt").open("w") as handle:
        provider.handle_error(
            ValueError("bad input"),
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "file": handle,
             "extra_body": {"blob": b"\xff" * 10, "cfg": Settings()}, "seed": NumpyLikeScalar()},
        )  # fmt: skip

    (record,) = provider.get_conversation_history()
    assert record["status"] == "error" and record["error"]["message"] == "bad input"
    assert record["request"]["file"] == "<file 'doc.txt'>"
    assert record["request"]["extra_body"] == {"blob": "<10 bytes>", "cfg": {}}
    assert record["request"]["seed"] == 2.5
