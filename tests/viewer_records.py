"""Records for the viewer's tests, posted over HTTP to a real collector like the exporter does."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import requests


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(trace_id: str = "trace-a", content: str = "hello", **fields: Any) -> dict[str, Any]:
    """A successful chat call record of the contract's shape; `fields` override any key."""
    started = fields.pop("started", None) or datetime.now(timezone.utc) - timedelta(seconds=5)
    duration = fields.get("duration_ms", 120.0)
    base: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "trace_id": trace_id,
        "provider": "openai",
        "operation": "chat",
        "model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "request": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": content}],
            "temperature": 0.2,
        },
        "prompt": [{"role": "user", "content": content}],
        "completion": {"role": "assistant", "content": f"answer to {content}"},
        "choices": [
            {"index": 0, "role": "assistant", "content": f"answer to {content}", "finish_reason": "stop"}
        ],
        "finish_reason": "stop",
        "stream": False,
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 34,
            "total_tokens": 1234,
            "cached_tokens": 1024,
        },
        "cost_usd": 0.000321,
        "tags": ["test"],
        "started_at": iso(started),
        "ended_at": iso(started + timedelta(milliseconds=duration)),
        "duration_ms": duration,
        "ttft_ms": None,
        "status": "success",
        "error": None,
        "parent_id": None,
        "kind": "llm",
    }
    base.update(fields)
    return base


def tool_conversation(trace_id: str = "trace-tools") -> dict[str, Any]:
    """The second call of a tool-using exchange: the prompt holds the call and its result."""
    prompt = [
        {"role": "system", "content": "You answer weather questions."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_weather_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_weather_1", "content": '{"temp_c": 18, "sky": "clear"}'},
    ]
    return record(
        trace_id,
        prompt=prompt,
        request={"model": "gpt-4o", "messages": prompt, "tools": [{"type": "function"}]},
        completion={"role": "assistant", "content": "It is 18 °C and clear in Paris."},
        choices=[
            {
                "index": 0,
                "role": "assistant",
                "content": "It is 18 °C and clear in Paris.",
                "finish_reason": "stop",
            }
        ],
        model="gpt-4o",
    )


def error_record(trace_id: str = "trace-err") -> dict[str, Any]:
    return record(
        trace_id,
        content="this one is rate limited",
        status="error",
        completion=None,
        choices=[],
        finish_reason=None,
        usage=None,
        cost_usd=None,
        error={
            "type": "RateLimitError",
            "message": "Rate limit reached for requests; try again in 1s",
            "status_code": 429,
            "request_id": "req_ratelimited_42",
        },
    )


def post(base_url: str, records: list[dict[str, Any]], key: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = requests.post(f"{base_url}/v1/records", json={"records": records}, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text


def span(
    trace_id: str,
    name: str,
    kind: str = "task",
    input: Any = None,
    output: Any = None,
    parent_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A span record in the wire shape of contract section 6; `fields` override any key."""
    started = fields.pop("started", None) or datetime.now(timezone.utc) - timedelta(seconds=5)
    duration = fields.get("duration_ms", 400.0)
    base: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "trace_id": trace_id,
        "provider": "neatlogs",
        "operation": kind,
        "model": "",
        "response_model": None,
        "request": input,
        "prompt": input,
        "completion": output,
        "choices": [],
        "finish_reason": None,
        "stream": False,
        "usage": None,
        "cost_usd": None,
        "tags": ["test"],
        "started_at": iso(started),
        "ended_at": iso(started + timedelta(milliseconds=duration)),
        "duration_ms": duration,
        "ttft_ms": None,
        "status": "success",
        "error": None,
        "kind": "span",
        "name": name,
        "parent_id": parent_id,
    }
    base.update(fields)
    return base
