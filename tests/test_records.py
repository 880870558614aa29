"""Non-streamed OpenAI calls become complete, faithful records."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any

import openai
import pytest

from neatlogs.openai import OpenAIProvider

from .helpers import WEATHER_TOOL, assert_contract


def test_chat_call_returns_the_sdk_object_and_records_every_contract_field(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    result = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}], temperature=0.2
    )

    assert type(result).__name__ == "ChatCompletion"
    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["provider"] == "openai" and record["operation"] == "chat"
    assert record["trace_id"] == "test-trace" and record["tags"] == ["test"]
    assert record["model"] == "gpt-4o-mini"
    assert record["response_model"] == result.model
    assert record["prompt"] == [{"role": "user", "content": "hello there"}]
    assert record["completion"]["role"] == "assistant"
    assert record["completion"]["content"] == result.choices[0].message.content
    assert record["finish_reason"] == "stop"
    assert record["stream"] is False and record["ttft_ms"] is None
    assert record["usage"]["prompt_tokens"] == result.usage.prompt_tokens
    assert record["usage"]["total_tokens"] == result.usage.total_tokens
    assert record["cost_usd"] is not None and record["cost_usd"] > 0
    assert record["request"]["temperature"] == 0.2
    assert record["status"] == "success" and record["error"] is None
    assert record["duration_ms"] > 0
    assert record["request_id"] == result._request_id


def test_every_choice_is_recorded_in_index_order(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "two please"}], n=2
    )

    (record,) = provider.get_conversation_history()
    assert [c["index"] for c in record["choices"]] == [0, 1]
    assert [c["content"] for c in record["choices"]] == [c.message.content for c in result.choices]
    assert record["completion"] == record["choices"][0]


def test_tool_calls_are_recorded(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "what is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )

    (record,) = provider.get_conversation_history()
    sdk_calls = result.choices[0].message.tool_calls
    assert sdk_calls, "the fake server should answer with a tool call"
    assert record["finish_reason"] == "tool_calls"
    assert record["completion"]["tool_calls"] == [
        {
            "id": c.id,
            "type": "function",
            "function": {"name": c.function.name, "arguments": c.function.arguments},
        }
        for c in sdk_calls
    ]
    assert record["request"]["tools"][0]["function"]["name"] == "get_weather"


async def test_async_chat_call_is_recorded(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    result = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "async hello"}]
    )

    assert type(result).__name__ == "ChatCompletion"
    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["completion"]["content"] == result.choices[0].message.content


def test_legacy_completion_is_recorded_as_text(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    result = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test", n=2)

    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["operation"] == "completion"
    assert record["prompt"] == "Say this is a test"
    assert record["choices"] == [c.text for c in result.choices]
    assert record["completion"] == result.choices[0].text
    assert record["finish_reason"] == result.choices[0].finish_reason
    assert record["usage"]["completion_tokens"] == result.usage.completion_tokens


async def test_async_legacy_completion_is_recorded(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    result = await async_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="async prompt")

    (record,) = provider.get_conversation_history()
    assert record["operation"] == "completion" and record["completion"] == result.choices[0].text


def test_messages_changed_after_the_call_do_not_rewrite_the_record(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "first"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    messages.append({"role": "assistant", "content": "added later"})
    messages.append({"role": "user", "content": "second"})

    (record,) = provider.get_conversation_history()
    assert record["prompt"] == [{"role": "user", "content": "first"}]


def test_one_shot_iterable_messages_reach_the_api_and_the_record(
    provider: OpenAIProvider, client: openai.OpenAI, fake_openai: Any
) -> None:
    messages = ({"role": "user", "content": text} for text in ["from a generator"])
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    (record,) = provider.get_conversation_history()
    assert record["prompt"] == [{"role": "user", "content": "from a generator"}]
    assert fake_openai.requests[-1].json["messages"] == [{"role": "user", "content": "from a generator"}]


def test_server_address_comes_from_the_client_base_url(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    (record,) = provider.get_conversation_history()
    assert record["server_address"] == "127.0.0.1"
    assert record["server_port"] == client.base_url.port


def test_unknown_model_has_null_cost(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="my-local-llama", messages=[{"role": "user", "content": "hi"}])

    (record,) = provider.get_conversation_history()
    assert record["usage"] is not None
    assert record["cost_usd"] is None


@pytest.mark.parametrize("limit", [None, 2])
def test_history_is_oldest_first_and_limit_keeps_the_most_recent(
    provider: OpenAIProvider, client: openai.OpenAI, limit: int | None
) -> None:
    for text in ["one", "two", "three"]:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

    prompts = [r["prompt"][0]["content"] for r in provider.get_conversation_history(limit=limit)]
    assert prompts == (["one", "two", "three"] if limit is None else ["two", "three"])


def test_history_is_bounded(make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI) -> None:
    provider = make_provider(history_size=3)
    for i in range(5):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"m{i}"}])

    prompts = [r["prompt"][0]["content"] for r in provider.get_conversation_history()]
    assert prompts == ["m2", "m3", "m4"]


def test_history_returns_copies(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    first = provider.get_conversation_history()
    first[0]["prompt"].append("tampered")
    first[0]["status"] = "tampered"
    again = provider.get_conversation_history()
    assert again[0]["status"] == "success" and again[0]["prompt"] == [{"role": "user", "content": "hi"}]
    assert again[0]["id"] == first[0]["id"]


def test_each_call_has_its_own_id(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    ids = [r["id"] for r in provider.get_conversation_history()]
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)


def test_the_history_does_not_keep_the_sdk_response_alive(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    """A record keeps the answer's content, not the SDK's object tree: memory and GC work stay small."""
    response = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    content, alive = response.choices[0].message.content, weakref.ref(response)
    del response
    gc.collect()

    assert alive() is None
    (record,) = provider.get_conversation_history()
    assert record["completion"]["content"] == content and record["usage"]["total_tokens"] > 0
