"""The Responses API (`responses.create`, streamed or not) is traced like chat: same objects, one record."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from neatlogs.openai import OpenAIProvider

from .helpers import assert_contract

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CHUNKS = {"x-fake-chunks": "12"}


def _events(stream: Any) -> list[str]:
    return [event.type for event in stream]


def test_create_returns_the_sdk_response_and_records_input_output_and_usage(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    provider.undo_override()
    plain = client.responses.create(model="gpt-4o", input="hello there", instructions="be brief")
    provider.override()

    result = client.responses.create(model="gpt-4o", input="hello there", instructions="be brief")

    assert type(result) is type(plain)
    assert result.output_text == plain.output_text
    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["operation"] == "responses" and record["provider"] == "openai"
    assert record["prompt"] == "hello there"
    assert record["request"]["instructions"] == "be brief"
    assert record["completion"] == {
        "index": 0,
        "role": "assistant",
        "content": result.output_text,
        "finish_reason": "stop",
    }
    assert record["choices"] == [record["completion"]]
    assert record["finish_reason"] == "stop"
    assert result.usage is not None
    assert record["usage"] == {
        "prompt_tokens": result.usage.input_tokens,
        "completion_tokens": result.usage.output_tokens,
        "total_tokens": result.usage.total_tokens,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert record["response_model"] == result.model and record["response_id"] == result.id
    assert record["request_id"] == result._request_id
    assert record["stream"] is False and record["ttft_ms"] is None


def test_a_list_of_input_items_is_the_prompt(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    items = [
        {"role": "developer", "content": "answer in one word"},
        {"role": "user", "content": [{"type": "input_text", "text": "what is up"}]},
    ]
    client.responses.create(model="gpt-4o", input=items)
    items.append({"role": "user", "content": "mutated after the call"})

    (record,) = provider.get_conversation_history()
    assert record["prompt"] == items[:2]


def test_function_calls_in_the_output_become_tool_calls(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    result = client.responses.create(model="gpt-4o", input="weather in Paris and Rome", tools=[WEATHER])

    calls = [item for item in result.output if item.type == "function_call"]
    assert len(calls) == 2
    (record,) = provider.get_conversation_history()
    assert record["finish_reason"] == "tool_calls"
    assert record["completion"]["content"] is None
    assert record["completion"]["tool_calls"] == [
        {"id": c.call_id, "type": "function", "function": {"name": "get_weather", "arguments": c.arguments}}
        for c in calls
    ]
    assert record["request"]["tools"] == [WEATHER]


def test_an_incomplete_response_finishes_for_length(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    result = client.responses.create(model="gpt-4o", input="one two three four five", max_output_tokens=2)

    assert result.status == "incomplete"
    (record,) = provider.get_conversation_history()
    assert record["status"] == "success"
    assert record["finish_reason"] == "length"
    assert record["completion"]["content"] == result.output_text


def test_stream_stays_an_openai_stream_and_records_the_final_response_once(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    provider.undo_override()
    plain = _events(
        client.responses.create(model="gpt-4o", input="stream it", stream=True, extra_headers=CHUNKS)
    )
    provider.override()

    stream = client.responses.create(model="gpt-4o", input="stream it", stream=True, extra_headers=CHUNKS)
    assert isinstance(stream, openai.Stream)
    events = list(stream)
    final = events[-1]

    assert [e.type for e in events] == plain
    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["stream"] is True and record["status"] == "success"
    assert final.type == "response.completed"
    assert record["completion"]["content"] == final.response.output_text == "Echo: stream it"
    assert record["usage"]["total_tokens"] == final.response.usage.total_tokens
    assert record["response_id"] == final.response.id
    assert 0 < record["ttft_ms"] <= record["duration_ms"]
    assert record["request_id"] == stream.response.headers["x-request-id"]
    assert record["rate_limit"]["remaining_requests"] == int(
        stream.response.headers["x-ratelimit-remaining-requests"]
    )


def test_streamed_function_call_arguments_are_recorded(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    events = list(
        client.responses.create(
            model="gpt-4o", input="weather in Tokyo", tools=[WEATHER], stream=True, extra_headers=CHUNKS
        )
    )

    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(deltas) == {"city": "Tokyo"}
    (record,) = provider.get_conversation_history()
    assert record["finish_reason"] == "tool_calls"
    (call,) = record["completion"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": deltas}


def test_a_stream_cut_short_keeps_the_text_its_deltas_gave(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    received = []
    with pytest.raises(Exception) as raised:  # openai 1.x lets httpx's own error through
        for event in client.responses.create(
            model="gpt-4o",
            input="a rather long sentence to cut",
            stream=True,
            extra_headers={**CHUNKS, "x-fake-disconnect-after": "8"},
        ):
            received.append(event)

    deltas = "".join(e.delta for e in received if e.type == "response.output_text.delta")
    assert deltas and not any(e.type == "response.completed" for e in received)
    (record,) = provider.get_conversation_history()
    assert record["status"] == "error" and record["error"]["type"] == type(raised.value).__name__
    assert record["completion"]["content"] == deltas
    assert record["finish_reason"] is None and record["usage"] is None
    assert record["response_model"] == "gpt-4o"


def test_an_early_break_then_close_is_incomplete_with_partial_text(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    stream = client.responses.create(model="gpt-4o", input="stop me early", stream=True, extra_headers=CHUNKS)
    pieces = []
    for event in stream:
        if event.type == "response.output_text.delta":
            pieces.append(event.delta)
            if len(pieces) == 2:
                break
    assert provider.get_conversation_history() == []
    stream.close()

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete" and record["completion"]["content"] == "".join(pieces)


def test_errors_are_recorded_with_rate_limits_and_reraised_unchanged(
    provider: OpenAIProvider, client: openai.OpenAI, fake_openai: Any
) -> None:
    fake_openai.fail_next(status=500)
    with pytest.raises(openai.InternalServerError) as raised:
        client.responses.create(model="gpt-4o", input="boom")

    (record,) = provider.get_conversation_history()
    assert record["status"] == "error" and record["operation"] == "responses"
    assert record["error"]["status_code"] == 500
    assert record["request_id"] == raised.value.request_id
    headers = raised.value.response.headers
    assert record["rate_limit"]["remaining_tokens"] == int(headers["x-ratelimit-remaining-tokens"])
    assert record["completion"] is None


async def test_async_create_and_stream_are_recorded(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    result = await async_client.responses.create(model="gpt-4o", input="async hello")
    stream = await async_client.responses.create(model="gpt-4o", input="async stream", stream=True)
    assert isinstance(stream, openai.AsyncStream)
    events = [event async for event in stream]

    first, second = provider.get_conversation_history()
    assert first["completion"]["content"] == result.output_text
    assert second["stream"] is True and second["status"] == "success"
    assert second["completion"]["content"] == "Echo: async stream"
    assert events[-1].type == "response.completed"
