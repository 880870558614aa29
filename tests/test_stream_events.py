"""Streamed chat and completion answers are kept as the wire's event text while they stream, and read
(or compacted by the usage statistics' thread) later: the record reads the same either way, also
for an SDK whose streams read their events some other way than neatlogs expects."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs._patch.openai import settle_chat_events
from neatlogs.openai import OpenAIProvider

from .helpers import WEATHER_TOOL, assert_contract, tool_calls_seen

USAGE = {"include_usage": True}


def _text_seen(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _assert_records(record: dict[str, Any], chunks: list[Any], tools: bool) -> None:
    assert_contract(record)
    assert record["status"] == "success" and record["stream"] is True
    if tools:
        assert record["finish_reason"] == "tool_calls"
        assert record["completion"]["tool_calls"] == tool_calls_seen(chunks)
    else:
        assert record["completion"]["content"] == _text_seen(chunks) != ""
    usage = next(c.usage for c in chunks if c.usage is not None)
    assert record["usage"]["total_tokens"] == usage.total_tokens > 0
    assert record["response_model"] == chunks[0].model
    assert record["response_id"] == chunks[0].id
    assert 0 < record["ttft_ms"] <= record["duration_ms"]


def _tokens_counted() -> int:
    model: dict[str, int] = neatlogs.stats()["usage"]["by_model"].get("gpt-4o-mini", {})
    return model.get("total_tokens", 0)


@pytest.fixture
def bypassed_tap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams that decode their events with a decoder of their own making, not `self._decoder`:
    as a future SDK might, which neatlogs cannot tap."""

    def iter_events(self: Any) -> Iterator[Any]:
        yield from self._client._make_sse_decoder().iter_bytes(self.response.iter_bytes())

    async def aiter_events(self: Any) -> AsyncIterator[Any]:
        async for event in self._client._make_sse_decoder().aiter_bytes(self.response.aiter_bytes()):
            yield event

    monkeypatch.setattr(openai.Stream, "_iter_events", iter_events)
    monkeypatch.setattr(openai.AsyncStream, "_iter_events", aiter_events)


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool-calls"])
@pytest.mark.parametrize("counted_first", [False, True], ids=["read-first", "counted-first"])
def test_a_streamed_answer_reads_the_same_whether_counted_or_read_first(
    provider: OpenAIProvider, client: openai.OpenAI, tools: bool, counted_first: bool
) -> None:
    extra: dict[str, Any] = {"tools": [WEATHER_TOOL]} if tools else {}
    messages = [{"role": "user", "content": "weather in Paris and in Rome?" if tools else "hello"}]
    tokens_before = _tokens_counted()
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options=USAGE,
            extra_headers={"x-fake-chunks": "12"},
            **extra,
        )
    )
    if counted_first:  # the statistics' thread compacts the kept events before anyone reads them
        assert _tokens_counted() - tokens_before == chunks[-1].usage.total_tokens
    (record,) = provider.get_conversation_history()
    _assert_records(record, chunks, tools)
    if not counted_first:
        assert _tokens_counted() - tokens_before == record["usage"]["total_tokens"]


@pytest.mark.parametrize("read_by", ["for", "next"])
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool-calls"])
def test_a_stream_that_bypasses_the_event_tap_is_recorded_from_its_chunks(
    bypassed_tap: None, provider: OpenAIProvider, client: openai.OpenAI, tools: bool, read_by: str
) -> None:
    extra: dict[str, Any] = {"tools": [WEATHER_TOOL]} if tools else {}
    messages = [{"role": "user", "content": "weather in Paris and in Rome?" if tools else "hello"}]
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, stream_options=USAGE, **extra
    )
    assert isinstance(stream, openai.Stream)
    if read_by == "for":
        chunks = list(stream)
    else:  # __next__ keeps chunks too once it found the tap bypassed
        chunks = []
        with pytest.raises(StopIteration):
            while True:
                chunks.append(next(stream))

    (record,) = provider.get_conversation_history()
    _assert_records(record, chunks, tools)


async def test_an_async_stream_that_bypasses_the_event_tap_is_recorded_from_its_chunks(
    bypassed_tap: None, provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options=USAGE
    )
    assert isinstance(stream, openai.AsyncStream)
    chunks = [chunk async for chunk in stream]

    (record,) = provider.get_conversation_history()
    _assert_records(record, chunks, tools=False)


# How a stream reaches the client: (the fake server's headers, the least time to first chunk in ms).
# Split: events and lines arrive cut across reads. Keep-alive: proxies hold a stream open with a
# `: comment` before the model answers; the first chunk is the first event, not the comment.
WIRES = {
    "split-7": ({"x-fake-write-size": "7", "x-fake-chunks": "8"}, 0.0),
    "split-5": ({"x-fake-write-size": "5"}, 0.0),
    "keep-alive": ({"x-fake-comment-delay": "0.3"}, 300.0),
}


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool-calls"])
def test_a_stream_is_recorded_whole_however_its_bytes_arrive(
    provider: OpenAIProvider, client: openai.OpenAI, tools: bool, wire: str
) -> None:
    headers, least_ttft_ms = WIRES[wire]
    extra: dict[str, Any] = {"tools": [WEATHER_TOOL]} if tools else {}
    messages = [{"role": "user", "content": "weather in Paris and in Rome?" if tools else "hello"}]
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options=USAGE,
            extra_headers=headers,
            **extra,
        )
    )
    (record,) = provider.get_conversation_history()
    _assert_records(record, chunks, tools)
    assert record["ttft_ms"] >= least_ttft_ms


@pytest.mark.parametrize("wire", WIRES)
async def test_an_async_stream_is_recorded_whole_however_its_bytes_arrive(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI, wire: str
) -> None:
    headers, least_ttft_ms = WIRES[wire]
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options=USAGE,
        extra_headers=headers,
    )
    chunks = [chunk async for chunk in stream]
    (record,) = provider.get_conversation_history()
    _assert_records(record, chunks, tools=False)
    assert record["ttft_ms"] >= least_ttft_ms


def test_a_legacy_completion_stream_reads_the_same_after_it_was_counted(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True, stream_options=USAGE
        )
    )
    neatlogs.stats()
    (record,) = provider.get_conversation_history()
    assert record["completion"] == "".join(c.choices[0].text for c in chunks if c.choices) != ""
    assert record["usage"]["total_tokens"] == chunks[-1].usage.total_tokens > 0


def test_counted_streams_do_not_keep_the_event_text_in_the_history(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    def stream() -> int:
        events = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "a long answer please"}],
            stream=True,
            extra_headers={"x-fake-chunks": "200"},
        )
        return sum(len(chunk.model_dump_json()) for chunk in events)

    stream()  # warm up: imports, pools
    neatlogs.stats()
    gc.collect()
    tracemalloc.start()
    try:
        event_text = sum(stream() for _ in range(10))
        neatlogs.stats()  # counted: what the history keeps is compacted
        gc.collect()
        held = sum(
            stat.size
            for stat in tracemalloc.take_snapshot().statistics("filename")
            if stat.traceback[0].filename.endswith("_streaming.py")  # where the SDK decodes events
        )
    finally:
        tracemalloc.stop()
    assert len(provider.get_conversation_history()) == 11
    assert held < event_text / 5, f"{held} bytes of event text still held for {event_text} streamed"


def test_events_that_are_not_json_are_left_out_and_the_rest_still_read() -> None:
    # The SDK raises on an event that is not JSON, so the record ends with an error; what streamed
    # before it (and "[DONE]", and error events) must not stop the rest being read.
    def event(content: str, **extra: Any) -> str:
        delta = {"content": content, **extra}
        return json.dumps({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta}]})

    events = [event("Hel", role="assistant"), event("lo"), "{not json", event(" there"), "[DONE]"]
    kept = settle_chat_events(events)
    assert kept[1:] == ["lo", " there"] and kept[0][0] == "m"
    assert settle_chat_events([*events[:2], json.dumps({"error": {"message": "boom"}})]) == kept[:2]
