"""Embeddings calls are recorded with their inputs and usage, and never with their vectors."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from neatlogs.openai import OpenAIProvider

from .helpers import assert_contract

MODEL = "text-embedding-3-small"


def _vector_values(result: Any) -> list[str]:
    # Distinctive pieces of the vectors as they would appear in JSON.
    return [repr(value) for item in result.data for value in item.embedding[:3]]


def test_create_returns_the_sdk_object_and_records_inputs_usage_and_dimensions(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    provider.undo_override()
    plain = client.embeddings.create(model=MODEL, input=["hello world", "bye"])
    provider.override()

    result = client.embeddings.create(model=MODEL, input=["hello world", "bye"])

    assert type(result) is type(plain)
    assert [d.embedding for d in result.data] == [d.embedding for d in plain.data]
    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["operation"] == "embeddings" and record["status"] == "success"
    assert record["prompt"] == ["hello world", "bye"]
    assert record["input_count"] == 2
    assert record["dimensions"] == len(result.data[0].embedding) == 8
    assert record["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert record["response_model"] == MODEL
    assert record["request_id"] == result._request_id


def test_vectors_are_never_in_the_record(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model=MODEL, input="keep my vector out", encoding_format="float")

    (record,) = provider.get_conversation_history()
    assert record["completion"] is None and record["choices"] == []
    text = json.dumps(record)
    assert not any(value in text for value in _vector_values(result))
    assert set(record["request"]) == {"model", "input", "encoding_format"}


def test_dimensions_come_from_the_request_when_given(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    client.embeddings.create(model=MODEL, input="x", dimensions=16)

    (record,) = provider.get_conversation_history()
    assert record["dimensions"] == 16 and record["request"]["dimensions"] == 16


def test_base64_vectors_still_give_their_dimensions(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model=MODEL, input="b64 please", encoding_format="base64")

    assert isinstance(result.data[0].embedding, str)
    (record,) = provider.get_conversation_history()
    assert record["dimensions"] == 8
    assert result.data[0].embedding not in json.dumps(record)


@pytest.mark.parametrize(
    ("inputs", "count"),
    [("one text", 1), ([1, 2, 3], 1), ([[1, 2], [3, 4, 5]], 2), (["a", "b", "c"], 3)],
)
def test_token_id_inputs_are_counted_per_input(
    provider: OpenAIProvider, client: openai.OpenAI, inputs: Any, count: int
) -> None:
    result = client.embeddings.create(model=MODEL, input=inputs)

    assert len(result.data) == count
    (record,) = provider.get_conversation_history()
    assert record["prompt"] == inputs and record["input_count"] == count


def test_errors_are_recorded_and_reraised_unchanged(
    provider: OpenAIProvider, client: openai.OpenAI, fake_openai: Any
) -> None:
    fake_openai.fail_next(status=429)
    with pytest.raises(openai.RateLimitError) as raised:
        client.embeddings.create(model=MODEL, input="too many")

    (record,) = provider.get_conversation_history()
    assert record["status"] == "error" and record["error"]["status_code"] == 429
    assert record["request_id"] == raised.value.request_id
    assert record["rate_limit"]["remaining_requests"] >= 0
    assert record["usage"] is None and record["input_count"] == 1


async def test_async_create_is_recorded(provider: OpenAIProvider, async_client: openai.AsyncOpenAI) -> None:
    result = await async_client.embeddings.create(model=MODEL, input=["async", "batch", "of three"])

    (record,) = provider.get_conversation_history()
    assert record["input_count"] == 3 and record["dimensions"] == len(result.data[0].embedding)
    assert record["usage"]["total_tokens"] == result.usage.total_tokens
