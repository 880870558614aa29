"""Streamed Claude calls: `stream=True` and `messages.stream()` keep their types, give the same events,
and are recorded exactly once on every way out (end, break, close, with-exit, error, garbage collection)."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from typing import Any

import anthropic
import pytest
from anthropic.lib.streaming import AsyncMessageStream, MessageStream

from neatlogs._testing.fake_anthropic import WEATHER_TOOL, FakeAnthropic
from neatlogs.anthropic import AnthropicProvider

MODEL = "claude-opus-5-5"
HELLO: Any = [{"role": "user", "content": "tell me a story about neatlogs"}]
CHUNKS = {"x-fake-chunks": "20"}
ANSWER = "Echo: tell me a story about neatlogs"


def _create(client: anthropic.Anthropic, **kwargs: Any) -> Any:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 200)
    kwargs.setdefault("messages", HELLO)
    return client.messages.create(stream=True, **kwargs)


def _stream(client: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 200)
    kwargs.setdefault("messages", HELLO)
    return client.messages.stream(**kwargs)


def _dump(events: list[Any]) -> list[Any]:
    return [event.model_dump() for event in events]


def test_a_create_stream_is_still_an_anthropic_stream_and_yields_the_same_events(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    traced.undo_override()
    plain = _dump(list(_create(claude, extra_headers=CHUNKS)))
    traced.override()

    stream = _create(claude, extra_headers=CHUNKS)
    assert isinstance(stream, anthropic.Stream)
    events = _dump(list(stream))

    strip = [{k: v for k, v in e.items() if k not in ("message", "content_block")} for e in events]
    assert strip == [{k: v for k, v in e.items() if k not in ("message", "content_block")} for e in plain]
    (record,) = traced.get_conversation_history()
    assert record["stream"] is True and record["status"] == "success"
    assert record["completion"]["content"] == ANSWER and record["finish_reason"] == "end_turn"
    assert record["ttft_ms"] is not None and record["ttft_ms"] <= record["duration_ms"]
    assert record["usage"]["completion_tokens"] == events[-2]["usage"]["output_tokens"]
    assert record["usage"]["prompt_tokens"] == events[0]["message"]["usage"]["input_tokens"]
    assert record["rate_limit"]["limit_requests"] == 4000


def test_streamed_tool_input_thinking_and_cache_tokens_are_merged(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    stream = _create(
        claude,
        messages=[{"role": "user", "content": "weather in Oslo and Rome"}],
        tools=[WEATHER_TOOL],
        thinking={"type": "adaptive"},
        extra_headers={**CHUNKS, "x-fake-cache-read": "2", "x-fake-cache-write": "1"},
    )
    starts = [e.content_block for e in stream if e.type == "content_block_start"]

    (record,) = traced.get_conversation_history()
    ids = [block.id for block in starts if block.type == "tool_use"]
    assert record["completion"]["thinking"] == "Thinking about: weather in Oslo and Rome"
    assert [
        (c["id"], json.loads(c["function"]["arguments"])) for c in record["completion"]["tool_calls"]
    ] == [
        (ids[0], {"city": "Oslo"}),
        (ids[1], {"city": "Rome"}),
    ]
    assert record["finish_reason"] == "tool_use"
    assert record["usage"]["cache_read_tokens"] == 2 and record["usage"]["cache_write_tokens"] == 1
    assert record["usage"]["prompt_tokens"] == 5  # input + cache reads + cache writes


def test_breaking_out_then_garbage_collection_records_incomplete_once_with_what_arrived(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    stream = _create(claude, extra_headers=CHUNKS)
    for index, _event in enumerate(stream):
        if index == 8:
            break
    assert traced.get_conversation_history() == []  # still readable: not finished
    del stream
    gc.collect()

    (record,) = traced.get_conversation_history()
    assert record["status"] == "incomplete"
    assert record["completion"]["content"] and ANSWER.startswith(record["completion"]["content"])
    assert record["completion"]["content"] != ANSWER


def test_close_and_with_exit_finalise_once(traced: AnthropicProvider, claude: anthropic.Anthropic) -> None:
    stream = _create(claude, extra_headers=CHUNKS)
    next(stream)
    stream.close()
    stream.close()
    with _create(claude, extra_headers=CHUNKS) as other:
        next(iter(other))
    assert stream.response.is_closed and other.response.is_closed
    del stream, other
    gc.collect()

    assert [r["status"] for r in traced.get_conversation_history()] == ["incomplete", "incomplete"]


def test_an_error_event_mid_stream_raises_the_sdk_error_and_records_it_with_the_partial_answer(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    headers = {**CHUNKS, "x-fake-stream-error-after": "6"}
    traced.undo_override()
    with pytest.raises(anthropic.APIStatusError) as untraced:
        list(_create(claude, extra_headers=headers))
    traced.override()

    with pytest.raises(anthropic.APIStatusError) as raised:
        list(_create(claude, extra_headers=headers))

    assert type(raised.value) is type(untraced.value) and str(raised.value) == str(untraced.value)
    (record,) = traced.get_conversation_history()
    assert record["status"] == "error" and record["error"]["type"] == type(raised.value).__name__
    assert record["completion"]["content"] == ANSWER[: len(record["completion"]["content"])]


def test_a_stream_cut_half_way_raises_the_transport_error_and_records_it(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    headers = {**CHUNKS, "x-fake-disconnect-after": "10"}
    traced.undo_override()
    with pytest.raises(Exception) as untraced:
        list(_create(claude, extra_headers=headers))
    traced.override()

    with pytest.raises(Exception) as raised:
        list(_create(claude, extra_headers=headers))

    assert type(raised.value) is type(untraced.value)
    (record,) = traced.get_conversation_history()
    assert record["status"] == "error" and record["error"]["type"] == type(raised.value).__name__
    assert record["completion"]["content"]


def test_a_slow_stream_has_its_time_to_first_event_and_its_whole_duration(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    list(_create(claude, extra_headers={"x-fake-chunks": "5", "x-fake-chunk-delay": "0.02"}))

    (record,) = traced.get_conversation_history()
    assert record["duration_ms"] >= 0.02 * 10 * 1000 * 0.9
    assert record["ttft_ms"] < record["duration_ms"] / 2


async def test_an_async_create_stream_is_an_async_stream_and_is_recorded(
    traced: AnthropicProvider, async_claude: anthropic.AsyncAnthropic
) -> None:
    stream = await async_claude.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True)
    assert isinstance(stream, anthropic.AsyncStream)
    events = [event async for event in stream]

    (record,) = traced.get_conversation_history()
    assert events[-1].type == "message_stop"
    assert record["completion"]["content"] == ANSWER and record["status"] == "success"


async def test_an_async_stream_left_early_and_closed_is_incomplete_once(
    traced: AnthropicProvider, async_claude: anthropic.AsyncAnthropic
) -> None:
    stream = await async_claude.messages.create(
        model=MODEL, max_tokens=100, messages=HELLO, stream=True, extra_headers=CHUNKS
    )
    async for _event in stream:
        break
    await stream.close()
    await stream.close()
    del stream
    gc.collect()

    assert [r["status"] for r in traced.get_conversation_history()] == ["incomplete"]


# ---- messages.stream() ----


def test_the_stream_helper_keeps_its_type_and_every_helper_works(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    with _stream(claude, extra_headers=CHUNKS) as stream:
        assert isinstance(stream, MessageStream)
        texts = list(stream.text_stream)
        final = stream.get_final_message()
        text = stream.get_final_text()
        stream.until_done()

    assert "".join(texts) == text == ANSWER == final.content[0].text
    (record,) = traced.get_conversation_history()
    assert record["status"] == "success" and record["stream"] is True
    assert record["completion"]["content"] == ANSWER and record["request_id"] == stream.request_id
    assert record["usage"]["completion_tokens"] == final.usage.output_tokens
    assert record["request"]["stream"] is True and record["request"]["max_tokens"] == 200


def test_iterating_the_stream_helper_gives_the_same_events_as_untraced(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    traced.undo_override()
    with _stream(claude) as stream:
        plain = [event.type for event in stream]
    traced.override()

    with _stream(claude) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()

    assert events == plain and "text" in events and final.stop_reason == "end_turn"
    (record,) = traced.get_conversation_history()
    assert record["status"] == "success"


def test_leaving_the_stream_helper_early_records_incomplete_once(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    with _stream(claude, extra_headers=CHUNKS) as stream:
        for index, _event in enumerate(stream):
            if index == 6:
                break
        stream.close()  # then the manager closes it again on exit
    del stream
    gc.collect()

    (record,) = traced.get_conversation_history()
    assert record["status"] == "incomplete" and record["completion"]["content"]


def test_a_stream_helper_entered_and_abandoned_is_recorded_on_garbage_collection(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    stream = _stream(claude, extra_headers=CHUNKS).__enter__()
    next(iter(stream))
    del stream
    gc.collect()

    (record,) = traced.get_conversation_history()
    assert record["status"] == "incomplete"


def test_an_error_inside_the_stream_helper_reaches_the_caller_and_is_recorded(
    traced: AnthropicProvider, claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.fail_next(status=529)
    with pytest.raises(anthropic.OverloadedError), _stream(claude):
        pass
    with (
        pytest.raises(anthropic.APIStatusError),
        _stream(claude, extra_headers={"x-fake-stream-error-after": "4"}) as s,
    ):
        s.get_final_message()

    refused, broken = traced.get_conversation_history()
    assert refused["status"] == "error" and refused["error"]["status_code"] == 529
    assert broken["status"] == "error" and broken["stream"] is True


def test_a_stream_helper_never_entered_sends_and_records_nothing(
    traced: AnthropicProvider, claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    manager = _stream(claude)
    del manager
    gc.collect()

    assert fake_anthropic.requests == [] and traced.get_conversation_history() == []


def test_beta_stream_helper_is_traced(traced: AnthropicProvider, claude: anthropic.Anthropic) -> None:
    with claude.beta.messages.stream(model=MODEL, max_tokens=100, messages=HELLO, betas=["b-1"]) as stream:
        text = stream.get_final_text()

    (record,) = traced.get_conversation_history()
    assert record["completion"]["content"] == text == ANSWER and record["request"]["betas"] == ["b-1"]


async def test_the_async_stream_helper_keeps_its_type_and_records_once(
    traced: AnthropicProvider, async_claude: anthropic.AsyncAnthropic
) -> None:
    async with async_claude.messages.stream(
        model=MODEL, max_tokens=100, messages=HELLO, extra_headers=CHUNKS
    ) as stream:
        assert isinstance(stream, AsyncMessageStream)
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert "".join(texts) == ANSWER == final.content[0].text
    async with async_claude.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as early:
        async for _event in early:
            break
    await asyncio.sleep(0)
    gc.collect()

    done, left = traced.get_conversation_history()
    assert done["status"] == "success" and done["completion"]["content"] == ANSWER
    assert left["status"] == "incomplete"


async def test_an_async_stream_helper_never_entered_sends_nothing_and_warns_as_untraced(
    traced: AnthropicProvider, async_claude: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic
) -> None:
    def abandon() -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            manager = async_claude.messages.stream(model=MODEL, max_tokens=100, messages=HELLO)
            del manager
            gc.collect()
        return [str(w.message) for w in caught if "never awaited" in str(w.message)]

    traced.undo_override()
    plain = abandon()
    traced.override()

    assert len(abandon()) == len(plain) == 1
    assert fake_anthropic.requests == [] and traced.get_conversation_history() == []
