"""Streamed chat and completion answers are kept as the wire's event text while they stream, and read
(or compacted by the usage statistics' thread) later: the record reads the same either way, also
for an SDK whose streams read their events some other way than neatlogs expects."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs.openai import OpenAIProvider
from neatlogs.providers._stainless.events import event_tap
from neatlogs.providers.openai.patch import settle_chat_events
from neatlogs.record.call import CallRecord

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


def _stream_chat(client: openai.OpenAI, tools: bool, headers: dict[str, str]) -> list[Any]:
    """A streamed chat answer (with usage), read whole: text, or tool calls."""
    extra: dict[str, Any] = {"tools": [WEATHER_TOOL]} if tools else {}
    messages = [{"role": "user", "content": "weather in Paris and in Rome?" if tools else "hello"}]
    return list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options=USAGE,
            extra_headers=headers,
            **extra,
        )
    )


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
    tokens_before = _tokens_counted()
    chunks = _stream_chat(client, tools, {"x-fake-chunks": "12"})
    if counted_first:  # the statistics' thread reads and packs the kept lines before anyone reads them
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
    chunks = _stream_chat(client, tools, headers)
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


@pytest.mark.parametrize("decoder", ["orjson", "json"])
def test_a_chat_streams_events_settle_the_same_with_either_json_decoder(
    decoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if decoder == "json":  # as without the `speedups` extra
        monkeypatch.setattr(neatlogs.providers.openai.patch, "_orjson", None)
    events = [
        json.dumps(
            {
                "id": "c1",
                "model": "m",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hé"}}],
            }
        ),
        json.dumps({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "llo ✓"}}]}),
        json.dumps(
            {
                "id": "c1",
                "model": "m",
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            }
        ),
        "[DONE]",
    ]
    kept = settle_chat_events(events)
    assert kept[0][:2] == ("m", "c1") and kept[1] == "llo ✓"
    assert kept[2][3] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


# Where the SDK splits and decodes events, and where neatlogs keeps what it kept of them (packed
# lines, or the compact chunks they settle into).
_KEEPS_EVENT_TEXT = (
    "_streaming.py",
    "/neatlogs/_record.py",
    "/neatlogs/_patch/openai_events.py",
    "/neatlogs/_patch/openai.py",
)


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
            if stat.traceback[0].filename.endswith(_KEEPS_EVENT_TEXT)
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


# Byte streams as servers send them, each as the reads that bring it: the tapped decoder must yield
# the very events the SDK's own decoder does, in every openai version. The first holds what is rare
# in an OpenAI stream (comments, other fields, line ends, an unfinished last event); the second is
# the common case, nothing but one-line `data: ` events, which neatlogs reads another way.
_ODD_BODY = (
    b": keep-alive\n\n"
    b'data: {"a": 1}\n\n'
    b"event: delta\nid: 7\nretry: 1500\ndata: first line\ndata: second line\n\n"
    b"data: h\xc3\xa9llo \xe2\x9c\x93\n\n"  # UTF-8, cut across reads below
    b"data: crlf\r\n\r\n"
    b"data: cr\r\r"
    b"data:no space\n\n"
    b"data: [DONE]\n\n"
    b"data: no blank line at the end"
)
_DATA_BODY = (
    b"".join(b'data: {"n": %d, "text": "data: \xc3\xa9"}\n\n' % n for n in range(5)) + b"data: [DONE]\n\n"
)


def _reads(body: bytes) -> dict[str, list[bytes]]:
    events = body.split(b"\n\n")
    return {
        "one-read": [body],
        "event-per-read": [event + b"\n\n" for event in events[:-1]] + [events[-1]],
        "3-byte-reads": [body[i : i + 3] for i in range(0, len(body), 3)],
        "byte-reads": [body[i : i + 1] for i in range(len(body))],
    }


_READS = {
    f"{name}-{how}": reads
    for name, body in (("odd", _ODD_BODY), ("data-only", _DATA_BODY))
    for how, reads in _reads(body).items()
}


def _tapped_stream() -> tuple[Any, CallRecord]:
    decoder_class = openai._streaming.SSEDecoder
    tap = event_tap(lambda data: data, decoder_class)  # settles into the events' data texts
    assert tap is not None, "this openai version's decoder is not tapped"
    stream = SimpleNamespace(_decoder=decoder_class())
    record = CallRecord("openai", "chat", lambda record: {}, {}, True)
    assert tap(stream, record) is record.chunks
    return stream, record


def _fields(events: list[Any]) -> list[tuple[Any, ...]]:
    return [(e.event, e.data, e.id, e.retry) for e in events]


@pytest.mark.parametrize("reads", _READS)
def test_the_tapped_decoder_yields_the_sdks_events_and_keeps_their_data(reads: str) -> None:
    expected = _fields(list(openai._streaming.SSEDecoder().iter_bytes(iter(_READS[reads]))))
    assert len(expected) in (6, 7)  # of the odd body, the last event is unfinished

    stream, record = _tapped_stream()
    assert _fields(list(stream._decoder.iter_bytes(iter(_READS[reads])))) == expected
    assert record.chunks.settle(record.chunks) == [data for _, data, _, _ in expected]
    assert record.t_first is not None

    async def read_async() -> list[Any]:
        async def reads_of() -> AsyncIterator[bytes]:
            for read in _READS[reads]:
                yield read

        return [event async for event in stream._decoder.aiter_bytes(reads_of())]

    stream, record = _tapped_stream()
    assert _fields(asyncio.run(read_async())) == expected
    assert record.chunks.settle(record.chunks) == [data for _, data, _, _ in expected]
