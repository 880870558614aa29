"""`with_raw_response` and `with_streaming_response` keep working exactly as untraced, bodies unread by us."""

from __future__ import annotations

import gc
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
import wrapt
from openai._legacy_response import LegacyAPIResponse
from openai._response import APIResponse

from neatlogs.openai import OpenAIProvider

from .conftest import OPENAI_KEY

HI = [{"role": "user", "content": "hi raw"}]
# api -> (the resource on a client, create() kwargs, the text the record's completion holds)
APIS: dict[str, tuple[Callable[[Any], Any], dict[str, Any], Callable[[Any], Any]]] = {
    "chat": (
        lambda c: c.chat.completions,
        {"model": "gpt-4o-mini", "messages": HI},
        lambda record: record["completion"]["content"],
    ),
    "completion": (
        lambda c: c.completions,
        {"model": "gpt-3.5-turbo-instruct", "prompt": "hi raw"},
        lambda record: record["completion"],
    ),
    "responses": (
        lambda c: c.responses,
        {"model": "gpt-4o", "input": "hi raw"},
        lambda record: record["completion"]["content"],
    ),
    "embeddings": (
        lambda c: c.embeddings,
        {"model": "text-embedding-3-small", "input": "hi raw"},
        lambda record: record["dimensions"],
    ),
}
EXPECTED = {
    "chat": "Echo: hi raw",
    "completion": "Echo: hi raw",
    "responses": "Echo: hi raw",
    "embeddings": 8,
}
STREAMING = ["chat", "completion", "responses"]


def _patched_methods() -> list[tuple[type, str]]:
    from openai.lib.streaming.chat import AsyncChatCompletionStream, ChatCompletionStream
    from openai.lib.streaming.responses import AsyncResponseStream, ResponseStream
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.embeddings import AsyncEmbeddings, Embeddings
    from openai.resources.responses import AsyncResponses, Responses

    return [
        *[
            (cls, name)
            for cls in (Completions, AsyncCompletions, Responses, AsyncResponses)
            for name in ("create", "parse")
        ],
        (Embeddings, "create"),
        (AsyncEmbeddings, "create"),
        *[
            (cls, "close")
            for cls in (ChatCompletionStream, AsyncChatCompletionStream, ResponseStream, AsyncResponseStream)
        ],
    ]


def test_every_method_this_needs_is_found_in_the_installed_sdk_and_restored_by_undo(
    make_provider: Callable[..., OpenAIProvider],
) -> None:
    methods = _patched_methods()
    before = [vars(cls)[name] for cls, name in methods]
    provider = make_provider()

    assert all(isinstance(vars(cls)[name], wrapt.FunctionWrapper) for cls, name in methods)
    provider.undo_override()
    assert all(vars(cls)[name] is original for (cls, name), original in zip(methods, before, strict=True))


@pytest.fixture
def other_client(fake_openai: Any) -> Iterator[openai.OpenAI]:
    # The SDK caches `with_raw_response` per resource, bound to `create` as it was when first used: an
    # untraced comparison needs its own client.
    sdk = openai.OpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=0)
    yield sdk
    sdk.close()


def _rate_limit(headers: Any) -> dict[str, int]:
    return {
        "remaining_requests": int(headers["x-ratelimit-remaining-requests"]),
        "remaining_tokens": int(headers["x-ratelimit-remaining-tokens"]),
        "limit_requests": int(headers["x-ratelimit-limit-requests"]),
        "limit_tokens": int(headers["x-ratelimit-limit-tokens"]),
        "reset_requests": headers["x-ratelimit-reset-requests"],
        "reset_tokens": headers["x-ratelimit-reset-tokens"],
    }


@pytest.mark.parametrize("api", list(APIS))
def test_with_raw_response_parse_and_headers_work_and_the_call_is_recorded(
    provider: OpenAIProvider, client: openai.OpenAI, other_client: openai.OpenAI, api: str
) -> None:
    resource, kwargs, content = APIS[api]
    provider.undo_override()
    plain = resource(other_client).with_raw_response.create(**kwargs)
    provider.override()

    raw = resource(client).with_raw_response.create(**kwargs)

    assert type(raw) is type(plain)
    parsed = raw.parse()
    assert type(parsed) is type(plain.parse())
    assert raw.parse() is parsed
    assert raw.http_response.status_code == 200 and raw.headers["x-request-id"].startswith("req_")
    (record,) = provider.get_conversation_history()
    assert record["status"] == "success" and record["stream"] is False
    assert record["request_id"] == raw.headers["x-request-id"]
    assert record["rate_limit"] == _rate_limit(raw.headers)
    assert content(record) == EXPECTED[api]
    assert "x-stainless-raw-response" not in json.dumps(record).lower()


@pytest.mark.parametrize("api", STREAMING)
def test_a_raw_stream_is_recorded_when_the_stream_parse_returned_ends(
    provider: OpenAIProvider, client: openai.OpenAI, api: str
) -> None:
    resource, kwargs, content = APIS[api]
    raw = resource(client).with_raw_response.create(**kwargs, stream=True)
    assert isinstance(raw, LegacyAPIResponse)  # a proxy, as streams are: its record waits for parse()
    assert provider.get_conversation_history() == []

    stream = raw.parse()
    assert isinstance(stream, openai.Stream)
    assert raw.parse() is stream
    events = list(stream)

    assert events
    (record,) = provider.get_conversation_history()
    assert record["stream"] is True and record["status"] == "success"
    assert content(record) == EXPECTED[api]
    assert record["request_id"] == raw.headers["x-request-id"]
    assert record["ttft_ms"] is not None


def test_a_raw_stream_outlives_its_raw_response(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    stream = client.chat.completions.with_raw_response.create(model="m", messages=HI, stream=True).parse()
    gc.collect()  # the raw response is gone; the stream it gave is not finished
    assert provider.get_conversation_history() == []

    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    (record,) = provider.get_conversation_history()
    assert record["status"] == "success" and record["completion"]["content"] == text


def test_a_raw_stream_never_parsed_is_recorded_incomplete_once_dropped(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="m", messages=HI, stream=True)
    request_id = raw.headers["x-request-id"]
    raw.http_response.close()
    del raw
    gc.collect()

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete" and record["request_id"] == request_id
    assert record["completion"] is None


@pytest.mark.parametrize("api", list(APIS))
def test_with_streaming_response_body_is_left_for_the_caller(
    provider: OpenAIProvider, client: openai.OpenAI, api: str
) -> None:
    resource, kwargs, _content = APIS[api]
    with resource(client).with_streaming_response.create(**kwargs) as response:
        assert isinstance(response, APIResponse)
        assert provider.get_conversation_history() == []
        lines = list(response.iter_lines())  # would raise had anyone read the body before
        headers = response.headers

    body = json.loads("".join(lines))
    assert body["object"] in ("chat.completion", "text_completion", "response", "list")
    (record,) = provider.get_conversation_history()
    assert record["status"] == "success"
    assert record["request_id"] == headers["x-request-id"]
    assert record["rate_limit"] == _rate_limit(headers)
    assert record["usage"] is None  # the caller read the body as lines: neatlogs never saw it


@pytest.mark.parametrize("api", list(APIS))
def test_with_streaming_response_parse_records_what_the_caller_parsed(
    provider: OpenAIProvider, client: openai.OpenAI, other_client: openai.OpenAI, api: str
) -> None:
    resource, kwargs, content = APIS[api]
    provider.undo_override()
    with resource(other_client).with_streaming_response.create(**kwargs) as response:
        plain = response.parse()
    provider.override()

    with resource(client).with_streaming_response.create(**kwargs) as response:
        parsed = response.parse()
        (record,) = provider.get_conversation_history()  # ended by parse(), before the block ends

    assert type(parsed) is type(plain)
    assert content(record) == EXPECTED[api]
    assert len(provider.get_conversation_history()) == 1


def test_with_streaming_response_json_read_by_the_caller_is_recorded(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    with client.chat.completions.with_streaming_response.create(model="m", messages=HI) as response:
        data = response.json()

    (record,) = provider.get_conversation_history()
    assert record["completion"]["content"] == data["choices"][0]["message"]["content"]  # type: ignore[index]


@pytest.mark.parametrize("api", STREAMING)
def test_with_streaming_response_of_a_stream_is_recorded_when_the_stream_ends(
    provider: OpenAIProvider, client: openai.OpenAI, api: str
) -> None:
    resource, kwargs, content = APIS[api]
    with resource(client).with_streaming_response.create(**kwargs, stream=True) as response:
        stream = response.parse()
        assert isinstance(stream, openai.Stream)
        assert provider.get_conversation_history() == []
        list(stream)

    (record,) = provider.get_conversation_history()
    assert record["status"] == "success" and content(record) == EXPECTED[api]


def test_with_streaming_response_of_a_stream_left_early_is_incomplete_at_exit(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=HI, stream=True
    ) as response:
        next(iter(response.parse()))

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete"


def test_raw_errors_are_recorded_with_rate_limits_and_reraised(
    provider: OpenAIProvider, client: openai.OpenAI, fake_openai: Any
) -> None:
    fake_openai.fail_next(status=429, times=2)
    with pytest.raises(openai.RateLimitError) as raw_error:
        client.chat.completions.with_raw_response.create(model="m", messages=HI)
    with (
        pytest.raises(openai.RateLimitError) as streaming_error,
        client.responses.with_streaming_response.create(model="m", input="x"),
    ):
        pass

    first, second = provider.get_conversation_history()
    for record, raised in ((first, raw_error), (second, streaming_error)):
        assert record["status"] == "error" and record["error"]["status_code"] == 429
        assert record["request_id"] == raised.value.request_id
        assert record["rate_limit"] == _rate_limit(raised.value.response.headers)


async def test_async_raw_responses_keep_their_sync_parse(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    raw = await async_client.chat.completions.with_raw_response.create(model="m", messages=HI)
    completion = raw.parse()
    raw_stream = await async_client.responses.with_raw_response.create(model="m", input="hi raw", stream=True)
    stream = raw_stream.parse()
    assert isinstance(stream, openai.AsyncStream)
    events = [event async for event in stream]

    first, second = provider.get_conversation_history()
    assert first["completion"]["content"] == completion.choices[0].message.content
    assert second["stream"] is True and second["completion"]["content"] == "Echo: hi raw"
    assert events[-1].type == "response.completed"


async def test_async_streaming_response_parse_is_still_a_coroutine(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    async with async_client.embeddings.with_streaming_response.create(
        model="text-embedding-3-small", input="x"
    ) as response:
        pending = response.parse()
        assert inspect.iscoroutine(pending)
        result = await pending
    async with async_client.chat.completions.with_streaming_response.create(
        model="m", messages=HI, stream=True
    ) as response:
        stream = await response.parse()
        assert isinstance(stream, openai.AsyncStream)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    async with async_client.completions.with_streaming_response.create(model="m", prompt="lines") as response:
        lines = [line async for line in response.iter_lines()]

    first, second, third = provider.get_conversation_history()
    assert first["dimensions"] == len(result.data[0].embedding)
    assert second["completion"]["content"] == text and second["status"] == "success"
    assert json.loads("".join(lines))["object"] == "text_completion"
    assert third["request_id"] and third["usage"] is None
