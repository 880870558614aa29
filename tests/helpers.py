"""Test helpers for every test directory; no LLM SDK imported here (tests/v0 runs on openai 0.28)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from neatlogs._testing.fake_openai import WEATHER_TOOL as WEATHER_TOOL  # the tool the fake server calls

# The contract's required record keys and their types (contract section 2).
REQUIRED = {
    "id": str,
    "trace_id": str,
    "provider": str,
    "operation": str,
    "model": str,
    "response_model": (str, type(None)),
    "request": dict,
    "prompt": (list, str, type(None)),
    "completion": (dict, str, type(None)),
    "choices": list,
    "finish_reason": (str, type(None)),
    "stream": bool,
    "usage": (dict, type(None)),
    "cost_usd": (float, type(None)),
    "tags": list,
    "started_at": str,
    "ended_at": str,
    "duration_ms": float,
    "ttft_ms": (float, type(None)),
    "status": str,
    "error": (dict, type(None)),
}


def _parse_time(value: str) -> datetime.datetime:
    assert value.endswith("Z") and "." in value, value
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")


def assert_contract(record: dict[str, Any]) -> None:
    """Every required key with its type, a known status, ordered times, and JSON-safe."""
    for key, kind in REQUIRED.items():
        assert key in record, f"missing {key}"
        assert isinstance(record[key], kind), f"{key} is {type(record[key]).__name__}"
    assert record["status"] in {"success", "error", "incomplete"}
    assert _parse_time(record["started_at"]) <= _parse_time(record["ended_at"])
    json.dumps(record)


def providers(provider_class: Any) -> Iterator[Callable[..., Any]]:
    """A fixture body: build overridden providers (otel off unless asked), undo them all afterwards."""
    made: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("otel", False)
        provider = provider_class(**options)
        provider.override()
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.undo_override()


def tool_calls_seen(chunks: Iterable[Any]) -> list[dict[str, Any]]:
    """The tool calls a consumer of streamed chat chunks puts together (per index), in the
    record's shape."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = delta.id or call["id"]
            if delta.function:
                call["name"] = delta.function.name or call["name"]
                call["arguments"] += delta.function.arguments or ""
    return [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for _, c in sorted(calls.items())
    ]


def choose_json_library(request: Any, monkeypatch: Any, module: Any, orjson: Any) -> str:
    """For a fixture parametrised ["stdlib", "orjson"]: make `module` use that library (its
    `_orjson` is orjson or None); skips the orjson half where orjson is not installed."""
    if request.param == "orjson" and orjson is None:
        pytest.skip("orjson is not installed")
    monkeypatch.setattr(module, "_orjson", orjson if request.param == "orjson" else None)
    return str(request.param)
