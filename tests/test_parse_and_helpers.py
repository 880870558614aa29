"""The SDK's helpers (`parse()`, `stream()`) give one record per call and hand back what they always did."""

from __future__ import annotations

import gc
import json
from typing import Any

import openai
import pydantic

from neatlogs.openai import OpenAIProvider

HELLO = [{"role": "user", "content": "hello helper"}]
CHUNKS = {"x-fake-chunks": "10"}


class Answer(pydantic.BaseModel):
    text: str
    confidence: float


def _chat_parsers(client: openai.OpenAI) -> list[Any]:
    # `beta.chat.completions` is the older path (the only one before openai 1.92); both must be traced.
    return [client.chat.completions, client.beta.chat.completions]


def test_chat_parse_records_one_call_and_leaves_the_parsed_object_alone(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    provider.undo_override()
    plain = [c.parse(model="gpt-4o", messages=HELLO, response_format=Answer) for c in _chat_parsers(client)]
    provider.override()

    results = [c.parse(model="gpt-4o", messages=HELLO, response_format=Answer) for c in _chat_parsers(client)]

    for result, untraced in zip(results, plain, strict=True):
        assert type(result) is type(untraced)
        assert result.choices[0].message.parsed == Answer(text="Echo: hello helper", confidence=0)
    records = provider.get_conversation_history()
    assert len(records) == 2
    for record, result in zip(records, results, strict=True):
        assert record["operation"] == "chat" and record["status"] == "success"
        assert json.loads(record["completion"]["content"]) == {"text": "Echo: hello helper", "confidence": 0}
        assert record["request"]["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "Answer"},
        }
        assert record["response_id"] == result.id


async def test_async_chat_parse_records_one_call(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    result = await async_client.chat.completions.parse(model="gpt-4o", messages=HELLO, response_format=Answer)

    assert result.choices[0].message.parsed == Answer(text="Echo: hello helper", confidence=0)
    (record,) = provider.get_conversation_history()
    assert record["completion"]["content"] == result.choices[0].message.content


def test_chat_stream_helper_read_to_the_end_is_one_successful_record(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    provider.undo_override()
    with client.chat.completions.stream(model="gpt-4o", messages=HELLO, extra_headers=CHUNKS) as stream:
        plain = [event.type for event in stream]
    provider.override()

    with client.chat.completions.stream(model="gpt-4o", messages=HELLO, extra_headers=CHUNKS) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()

    assert events == plain
    (record,) = provider.get_conversation_history()
    assert record["stream"] is True and record["status"] == "success"
    assert record["completion"]["content"] == final.choices[0].message.content == "Echo: hello helper"
    assert record["ttft_ms"] is not None


def test_chat_stream_helper_left_early_is_recorded_when_the_block_ends(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=HELLO, extra_headers=CHUNKS) as stream:
        for event in stream:
            if event.type == "content.delta" and event.delta:
                break
        assert provider.get_conversation_history() == []

    (record,) = provider.get_conversation_history()  # recorded at exit, while `stream` is still alive
    assert record["status"] == "incomplete" and record["completion"]["content"]
    del stream
    gc.collect()
    assert len(provider.get_conversation_history()) == 1


def test_chat_stream_helper_parses_into_the_format_and_records_the_json(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=HELLO, response_format=Answer) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.parsed == Answer(text="Echo: hello helper", confidence=0)
    (record,) = provider.get_conversation_history()
    assert json.loads(record["completion"]["content"]) == {"text": "Echo: hello helper", "confidence": 0}
    assert record["request"]["response_format"]["type"] == "json_schema"


async def test_async_chat_stream_helper_gives_one_record_at_exit(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    manager = async_client.chat.completions.stream(model="gpt-4o", messages=HELLO, extra_headers=CHUNKS)
    async with manager as stream:
        async for event in stream:
            if event.type == "content.delta":
                break

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete"

    async with async_client.chat.completions.stream(model="gpt-4o", messages=HELLO) as stream:
        final = await stream.get_final_completion()

    _first, second = provider.get_conversation_history()
    assert second["status"] == "success"
    assert second["completion"]["content"] == final.choices[0].message.content


def test_responses_parse_records_one_call_and_keeps_output_parsed(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    provider.undo_override()
    plain = client.responses.parse(model="gpt-4o", input="parse me", text_format=Answer)
    provider.override()

    result = client.responses.parse(model="gpt-4o", input="parse me", text_format=Answer)

    assert type(result) is type(plain)
    assert result.output_parsed == Answer(text="Echo: parse me", confidence=0)
    (record,) = provider.get_conversation_history()
    assert record["operation"] == "responses"
    assert json.loads(record["completion"]["content"]) == {"text": "Echo: parse me", "confidence": 0}
    assert record["request"]["text_format"] == "Answer"
    assert record["usage"]["total_tokens"] == result.usage.total_tokens  # type: ignore[union-attr]


async def test_async_responses_parse_is_recorded(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    result = await async_client.responses.parse(model="gpt-4o", input="async parse", text_format=Answer)

    assert result.output_parsed == Answer(text="Echo: async parse", confidence=0)
    (record,) = provider.get_conversation_history()
    assert record["completion"]["content"] == result.output_text


def test_responses_stream_helper_gives_one_record_with_the_final_response(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    with client.responses.stream(model="gpt-4o", input="helper stream", extra_headers=CHUNKS) as stream:
        for event in stream:
            if event.type == "response.completed":
                break  # the whole answer is in: leaving now is not an incomplete call
        final = stream.get_final_response()

    (record,) = provider.get_conversation_history()
    assert record["stream"] is True and record["status"] == "success"
    assert record["completion"]["content"] == final.output_text == "Echo: helper stream"
    assert record["usage"]["total_tokens"] == final.usage.total_tokens  # type: ignore[union-attr]


def test_responses_stream_helper_left_early_is_incomplete_at_exit(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    with client.responses.stream(model="gpt-4o", input="leave me early", extra_headers=CHUNKS) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                break

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete" and record["completion"]["content"]


async def test_async_responses_stream_helper_gives_one_record(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    async with async_client.responses.stream(model="gpt-4o", input="async helper") as stream:
        final = await stream.get_final_response()

    (record,) = provider.get_conversation_history()
    assert record["status"] == "success" and record["completion"]["content"] == final.output_text
