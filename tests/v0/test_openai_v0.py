"""openai 0.28's module-level API is traced like 1.x: same results, same errors, one record per call."""

from __future__ import annotations

import gc
import json
import types
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from neatlogs.llm import LLMTracker

from ..helpers import assert_contract

HI = [{"role": "user", "content": "hello there"}]
LONG = [{"role": "user", "content": "stream me a long friendly greeting please"}]
CHUNKS = {"x-fake-chunks": "20"}


def _originals(api: Any) -> list[Any]:
    return [
        vars(owner)[name] for owner in (api.ChatCompletion, api.Completion) for name in ("create", "acreate")
    ]


def _content(chunks: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


# ---- finished responses ----


def test_chat_create_returns_the_openai_object_and_records_every_field(provider: Any, api: Any) -> None:
    result = api.ChatCompletion.create(model="gpt-4o-mini", messages=HI, temperature=0.2)

    assert type(result) is api.openai_object.OpenAIObject
    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["provider"] == "openai" and record["operation"] == "chat" and record["status"] == "success"
    assert record["trace_id"] == "test-trace" and record["tags"] == ["test"]
    assert record["model"] == "gpt-4o-mini" and record["response_model"] == result.model
    assert record["prompt"] == HI
    assert record["completion"] == {
        "index": 0,
        "role": "assistant",
        "content": "Echo: hello there",
        "finish_reason": "stop",
    }
    assert record["usage"]["total_tokens"] == result.usage.total_tokens
    assert record["cost_usd"] is not None and record["cost_usd"] > 0
    assert record["request"] == {"model": "gpt-4o-mini", "messages": HI, "temperature": 0.2}
    assert record["server_address"] == "127.0.0.1"
    assert record["stream"] is False and record["ttft_ms"] is None


def test_legacy_completion_create_is_recorded_as_a_completion(provider: Any, api: Any) -> None:
    result = api.Completion.create(model="gpt-3.5-turbo-instruct", prompt="say something nice")

    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["operation"] == "completion"
    assert record["prompt"] == "say something nice"
    assert record["completion"] == result.choices[0].text == "Echo: say something nice"
    assert record["finish_reason"] == "stop"
    assert record["usage"]["prompt_tokens"] == 3


async def test_acreate_is_recorded_for_chat_and_completion(provider: Any, api: Any) -> None:
    chat = await api.ChatCompletion.acreate(model="gpt-4o-mini", messages=HI)
    text = await api.Completion.acreate(model="gpt-3.5-turbo-instruct", prompt="hi")

    first, second = provider.get_conversation_history()
    assert (first["operation"], first["completion"]["content"]) == ("chat", chat.choices[0].message.content)
    assert (second["operation"], second["completion"]) == ("completion", text.choices[0].text)
    assert first["status"] == second["status"] == "success"


def test_the_per_call_api_key_and_api_base_never_enter_the_request(
    provider: Any, api: Any, fake_openai: Any
) -> None:
    api.api_base = "http://unused.invalid/v1"
    api.ChatCompletion.create(
        model="gpt-4o-mini",
        messages=HI,
        api_key="sk-per-call-secret-0123456789",
        api_base=fake_openai.base_url,
    )

    (record,) = provider.get_conversation_history()
    assert "sk-per-call-secret" not in json.dumps(record)
    assert set(record["request"]) == {"model", "messages"}
    assert record["server_address"] == "127.0.0.1"
    assert record["server_port"] == urlsplit(fake_openai.base_url).port


# ---- streams ----


def test_stream_stays_a_generator_with_the_same_chunks_and_records_merged_content(
    provider: Any, api: Any
) -> None:
    provider.undo_override()
    plain = list(api.ChatCompletion.create(model="gpt-4o-mini", messages=LONG, stream=True, headers=CHUNKS))
    provider.override()

    stream = api.ChatCompletion.create(
        model="gpt-4o-mini",
        messages=LONG,
        stream=True,
        headers=CHUNKS,
        stream_options={"include_usage": True},
    )
    assert isinstance(stream, types.GeneratorType)
    traced = list(stream)

    assert [c["choices"] for c in traced if c["choices"]] == [c["choices"] for c in plain]
    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["stream"] is True and record["status"] == "success"
    assert record["completion"]["content"] == _content(traced) == "Echo: " + LONG[0]["content"]
    assert record["usage"]["total_tokens"] > 0 and record["response_model"] == "gpt-4o-mini"
    assert 0 < record["ttft_ms"] <= record["duration_ms"]


def test_legacy_completion_stream_records_the_joined_text(provider: Any, api: Any) -> None:
    chunks = list(api.Completion.create(model="gpt-3.5-turbo-instruct", prompt="a b c d e f", stream=True))

    (record,) = provider.get_conversation_history()
    assert record["completion"] == "".join(c["choices"][0]["text"] for c in chunks) == "Echo: a b c d e f"


async def test_async_stream_stays_an_async_generator_and_is_recorded(provider: Any, api: Any) -> None:
    stream = await api.ChatCompletion.acreate(model="gpt-4o-mini", messages=LONG, stream=True, headers=CHUNKS)
    assert isinstance(stream, types.AsyncGeneratorType)
    chunks = [chunk async for chunk in stream]

    (record,) = provider.get_conversation_history()
    assert record["stream"] is True and record["status"] == "success"
    assert record["completion"]["content"] == _content(chunks) == "Echo: " + LONG[0]["content"]
    assert record["ttft_ms"] is not None


def test_a_stream_abandoned_after_an_early_break_is_recorded_once_as_incomplete(
    provider: Any, api: Any
) -> None:
    stream = api.ChatCompletion.create(model="gpt-4o-mini", messages=LONG, stream=True, headers=CHUNKS)
    for index, _ in enumerate(stream):
        if index == 2:
            break
    assert provider.get_conversation_history() == []
    del stream
    gc.collect()

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete" and record["completion"]["content"]
    gc.collect()
    assert len(provider.get_conversation_history()) == 1


def test_closing_a_stream_finalises_it_once(provider: Any, api: Any) -> None:
    stream = api.ChatCompletion.create(model="gpt-4o-mini", messages=LONG, stream=True)
    next(stream)
    stream.close()
    stream.close()
    with pytest.raises(StopIteration):
        next(stream)

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete"


async def test_aclose_finalises_an_async_stream_once(provider: Any, api: Any) -> None:
    stream = await api.ChatCompletion.acreate(model="gpt-4o-mini", messages=LONG, stream=True)
    await stream.__anext__()
    await stream.aclose()
    del stream
    gc.collect()

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete"


def test_send_and_throw_reach_the_generator_and_are_recorded(provider: Any, api: Any) -> None:
    stream = api.ChatCompletion.create(model="gpt-4o-mini", messages=LONG, stream=True, headers=CHUNKS)
    first = stream.send(None)
    assert first["choices"][0]["delta"]["role"] == "assistant"
    with pytest.raises(KeyError):
        stream.throw(KeyError("stop here"))

    (record,) = provider.get_conversation_history()
    assert record["status"] == "error" and record["error"]["type"] == "KeyError"
    assert record["ttft_ms"] is not None


def test_a_traced_stream_refuses_with_exactly_like_the_generator(provider: Any, api: Any) -> None:
    provider.undo_override()
    plain = api.ChatCompletion.create(model="gpt-4o-mini", messages=HI, stream=True)
    with pytest.raises(Exception) as untraced, plain:
        pass
    plain.close()
    provider.override()
    stream = api.ChatCompletion.create(model="gpt-4o-mini", messages=HI, stream=True)
    with pytest.raises(type(untraced.value)) as traced, stream:
        pass
    stream.close()

    assert str(traced.value) == str(untraced.value)
    assert not hasattr(stream, "aclose") and not hasattr(stream, "__aiter__")


# ---- errors ----


def test_an_api_error_is_raised_unchanged_and_recorded_with_status_and_request_id(
    provider: Any, api: Any, fake_openai: Any
) -> None:
    fake_openai.fail_next(429)
    with pytest.raises(api.error.RateLimitError) as caught:
        api.ChatCompletion.create(model="gpt-4o-mini", messages=HI)

    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["status"] == "error"
    assert record["error"]["type"] == "RateLimitError"
    assert record["error"]["status_code"] == caught.value.http_status == 429
    assert record["error"]["request_id"] == fake_openai.requests[-1].request_id
    assert record["completion"] is None


async def test_an_async_api_error_is_raised_unchanged_and_recorded(
    provider: Any, api: Any, fake_openai: Any
) -> None:
    fake_openai.fail_next(500)
    with pytest.raises(api.error.APIError):
        await api.ChatCompletion.acreate(model="gpt-4o-mini", messages=HI)

    (record,) = provider.get_conversation_history()
    assert record["status"] == "error" and record["error"]["status_code"] == 500


def test_a_stream_request_that_fails_raises_at_the_call_and_is_recorded(
    provider: Any, api: Any, fake_openai: Any
) -> None:
    fake_openai.fail_next(503)
    with pytest.raises(api.error.ServiceUnavailableError):
        api.ChatCompletion.create(model="gpt-4o-mini", messages=HI, stream=True)

    (record,) = provider.get_conversation_history()
    assert record["stream"] is True and record["status"] == "error"


# ---- patching ----


def test_undo_override_restores_the_identical_classmethods(
    make_provider: Callable[..., Any], api: Any
) -> None:
    before = _originals(api)
    provider = make_provider()
    assert all(now is not then for now, then in zip(_originals(api), before, strict=True))
    provider.undo_override()

    assert all(now is then for now, then in zip(_originals(api), before, strict=True))
    api.ChatCompletion.create(model="gpt-4o-mini", messages=HI)
    assert provider.get_conversation_history() == []


def test_the_tracker_traces_openai_0_28_too(api: Any) -> None:
    before = _originals(api)
    tracker = LLMTracker(otel=False, tags=["v0"])
    tracker.override_api()
    try:
        api.ChatCompletion.create(model="gpt-4o-mini", messages=HI)
    finally:
        tracker.stop_instrumenting()

    (record,) = tracker.get_conversation_history()
    assert record["provider"] == "openai" and record["tags"] == ["v0"]
    assert all(now is then for now, then in zip(_originals(api), before, strict=True))


def test_handle_error_uses_the_0_28_readers(provider: Any, api: Any) -> None:
    error = api.error.RateLimitError("slow down", http_status=429, headers={"x-request-id": "req_v0"})
    provider.handle_error(error, {"model": "gpt-4o", "messages": HI, "api_key": "sk-secret-per-call-key"})

    (record,) = provider.get_conversation_history()
    assert record["operation"] == "chat" and record["status"] == "error"
    assert record["error"]["status_code"] == 429 and record["error"]["request_id"] == "req_v0"
    assert "api_key" not in record["request"] and "sk-secret" not in str(record)
