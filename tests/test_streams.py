"""Traced streams stay the SDK's streams and are finalised exactly once, however they end."""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import openai
import pytest

from neatlogs.openai import OpenAIProvider

from .helpers import WEATHER_TOOL, assert_contract, tool_calls_seen

HELLO = [{"role": "user", "content": "stream me a greeting please"}]
CHUNKS = {"x-fake-chunks": "20"}


def _stream(client: openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", HELLO)
    return client.chat.completions.create(model="gpt-4o-mini", stream=True, **kwargs)


def test_stream_is_still_an_openai_stream_and_yields_the_same_chunks(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    provider.undo_override()
    plain = [c.model_dump(exclude={"id", "created"}) for c in _stream(client, extra_headers=CHUNKS)]
    provider.override()

    stream = _stream(client, extra_headers=CHUNKS)
    assert isinstance(stream, openai.Stream)
    traced = [c.model_dump(exclude={"id", "created"}) for c in stream]
    assert traced == plain


def test_read_to_the_end_records_merged_content_ttft_and_usage(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    pieces = []
    for chunk in _stream(client, extra_headers=CHUNKS, stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)

    (record,) = provider.get_conversation_history()
    assert_contract(record)
    assert record["stream"] is True and record["status"] == "success"
    assert record["completion"]["content"] == "".join(pieces) and len(pieces) >= 10
    assert record["completion"]["role"] == "assistant"
    assert record["finish_reason"] == "stop"
    assert record["usage"]["total_tokens"] > 0
    assert 0 < record["ttft_ms"] <= record["duration_ms"]
    assert record["response_model"]


def test_stream_without_include_usage_has_no_usage(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    list(_stream(client))

    (record,) = provider.get_conversation_history()
    assert record["usage"] is None and record["completion"]["content"]


def test_parallel_tool_call_deltas_are_merged_per_index(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    messages = [{"role": "user", "content": "weather in Paris and in Rome?"}]
    chunks = list(_stream(client, messages=messages, tools=[WEATHER_TOOL]))

    (record,) = provider.get_conversation_history()
    calls = tool_calls_seen(chunks)
    assert len(calls) == 2, "the fake server answers two parallel tool calls"
    assert record["finish_reason"] == "tool_calls"
    assert record["completion"]["tool_calls"] == calls


def test_streamed_choices_are_merged_per_index(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    texts: dict[int, str] = {}
    for chunk in _stream(client, n=2):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")

    (record,) = provider.get_conversation_history()
    assert [c["content"] for c in record["choices"]] == [texts[0], texts[1]]
    assert texts[0] != texts[1]


def test_early_break_then_garbage_collection_records_incomplete_once(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    stream = _stream(client, extra_headers=CHUNKS)
    for index, _chunk in enumerate(stream):
        if index == 2:
            break
    assert provider.get_conversation_history() == []  # not finished yet: still readable
    del stream
    gc.collect()

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete"
    assert record["completion"]["content"]  # partial content kept


def test_a_loop_left_early_and_resumed_records_the_whole_answer_once(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    provider.undo_override()
    plain = [c.choices[0].delta.content or "" for c in _stream(client, extra_headers=CHUNKS)]
    provider.override()

    stream = _stream(client, extra_headers=CHUNKS)
    pieces: list[str] = []
    for chunk in stream:
        pieces.append(chunk.choices[0].delta.content or "")
        if len(pieces) == 3:
            break
    pieces.append(next(stream).choices[0].delta.content or "")  # one chunk read directly
    for chunk in stream:  # then on where the first loop stopped
        pieces.append(chunk.choices[0].delta.content or "")
    gc.collect()

    (record,) = provider.get_conversation_history()
    assert pieces == plain
    assert record["status"] == "success" and record["completion"]["content"] == "".join(plain)


async def test_an_async_loop_left_early_and_resumed_records_the_whole_answer_once(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    def ask() -> Any:
        return async_client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers=CHUNKS
        )

    provider.undo_override()
    plain = [c.choices[0].delta.content or "" async for c in await ask()]
    provider.override()

    stream = await ask()
    pieces: list[str] = []
    async for chunk in stream:
        pieces.append(chunk.choices[0].delta.content or "")
        if len(pieces) == 3:
            break
    async for chunk in stream:
        pieces.append(chunk.choices[0].delta.content or "")
    gc.collect()

    (record,) = provider.get_conversation_history()
    assert pieces == plain
    assert record["status"] == "success" and record["completion"]["content"] == "".join(plain)


def test_with_block_exit_finalises_once(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    with _stream(client, extra_headers=CHUNKS) as stream:
        assert isinstance(stream, openai.Stream)
        next(iter(stream))
    assert stream.response.is_closed
    gc.collect()

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete"


def test_with_block_read_to_the_end_is_success(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    with _stream(client) as stream:
        for _ in stream:
            pass

    (record,) = provider.get_conversation_history()
    assert record["status"] == "success"


def test_close_finalises_once_and_closes_the_response(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    stream = _stream(client, extra_headers=CHUNKS)
    next(stream)
    stream.close()
    stream.close()
    assert stream.response.is_closed
    del stream
    gc.collect()

    records = provider.get_conversation_history()
    assert [r["status"] for r in records] == ["incomplete"]


def test_stream_broken_mid_way_raises_the_sdk_error_and_records_it(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    provider.undo_override()
    with pytest.raises(Exception) as untraced:
        list(_stream(client, extra_headers={**CHUNKS, "x-fake-disconnect-after": "3"}))
    provider.override()

    with pytest.raises(Exception) as traced:
        list(_stream(client, extra_headers={**CHUNKS, "x-fake-disconnect-after": "3"}))

    assert type(traced.value) is type(untraced.value)
    (record,) = provider.get_conversation_history()
    assert record["status"] == "error"
    assert record["error"]["type"] == type(traced.value).__name__


async def test_async_stream_is_an_async_stream_and_is_recorded(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers=CHUNKS
    )
    assert isinstance(stream, openai.AsyncStream)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]

    (record,) = provider.get_conversation_history()
    assert record["status"] == "success" and record["completion"]["content"] == "".join(pieces)
    assert record["ttft_ms"] is not None


async def test_async_with_early_exit_is_incomplete(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers=CHUNKS
    )
    async with stream as entered:
        assert entered is stream
        async for _ in entered:
            break

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete"


async def test_async_close_finalises_once(provider: OpenAIProvider, async_client: openai.AsyncOpenAI) -> None:
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers=CHUNKS
    )
    await stream.__anext__()
    await stream.close()
    await stream.close()
    del stream
    gc.collect()

    assert [r["status"] for r in provider.get_conversation_history()] == ["incomplete"]


async def test_abandoned_async_stream_is_recorded_on_garbage_collection(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers=CHUNKS
    )
    await stream.__anext__()
    await stream.response.aclose()  # release the connection, as an application's cleanup would
    del stream
    gc.collect()

    assert [r["status"] for r in provider.get_conversation_history()] == ["incomplete"]


async def test_cancelling_a_task_mid_stream_still_records_the_call(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI, fake_openai: Any
) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        stream = await async_client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers=CHUNKS
        )
        async for _ in stream:
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        pytest.fail("the task should have been cancelled")
    del task  # the application lets go of the task; the abandoned stream goes with it
    for _ in range(3):  # let the loop finish closing the SDK's generators
        await asyncio.sleep(0)
        gc.collect()

    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete" and record["ttft_ms"] is not None


async def test_cancelling_a_pending_call_records_it_and_propagates_cancellation(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    task = asyncio.create_task(
        async_client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, extra_headers={"x-fake-delay": "5"}
        )
    )
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    (record,) = provider.get_conversation_history()
    assert record["status"] == "error" and record["error"]["type"] == "CancelledError"


def test_legacy_completion_stream_is_merged(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    stream = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="count", stream=True)
    assert isinstance(stream, openai.Stream)
    text = "".join(c.choices[0].text for c in stream if c.choices)

    (record,) = provider.get_conversation_history()
    assert (
        record["operation"] == "completion" and record["completion"] == text and record["status"] == "success"
    )


async def test_async_legacy_completion_stream_is_merged(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    stream = await async_client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="count", stream=True
    )
    text = "".join([c.choices[0].text async for c in stream if c.choices])

    (record,) = provider.get_conversation_history()
    assert record["completion"] == text and record["stream"] is True


async def test_the_iterator_of_a_traced_async_stream_can_be_closed_like_the_sdks(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers=CHUNKS
    )
    chunks = stream.__aiter__()
    first = await chunks.__anext__()
    await chunks.aclose()  # as contextlib.aclosing() would
    await stream.close()

    assert first.choices[0].delta.role == "assistant"
    (record,) = provider.get_conversation_history()
    assert record["status"] == "incomplete"


def test_a_stream_class_whose_own_iteration_does_more_is_iterated_through_it(
    provider: OpenAIProvider, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # neatlogs reads a stream's chunks past the SDK's own `__iter__` only while that method just passes
    # them on; one that does more (here: counts them) must still run.
    counted = []
    plain_iter = openai.Stream.__iter__

    def counting_iter(self: Any) -> Any:
        for chunk in plain_iter(self):
            counted.append(chunk)
            yield chunk

    monkeypatch.setattr(openai.Stream, "__iter__", counting_iter)
    chunks = list(_stream(client, extra_headers=CHUNKS))

    assert counted == chunks != []
    (record,) = provider.get_conversation_history()
    assert record["status"] == "success" and record["completion"]["content"]


async def test_an_async_stream_class_whose_own_iteration_does_more_is_iterated_through_it(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = []
    plain_aiter = openai.AsyncStream.__aiter__

    async def counting_aiter(self: Any) -> Any:
        async for chunk in plain_aiter(self):
            counted.append(chunk)
            yield chunk

    monkeypatch.setattr(openai.AsyncStream, "__aiter__", counting_aiter)
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers=CHUNKS
    )
    chunks = [chunk async for chunk in stream]

    assert counted == chunks != []
    (record,) = provider.get_conversation_history()
    assert record["status"] == "success" and record["completion"]["content"]


async def test_a_traced_async_stream_leaves_the_event_loop_no_more_generators_to_finalise(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    # openai 3.x leaves its event generators unfinished after `[DONE]`; the event loop closes each in
    # a task of its own. Tracing must not add one (the event tap sits inside the SDK's decoder).
    loop = asyncio.get_running_loop()
    finalised: list[str] = []
    firstiter, finalizer = loop._asyncgen_firstiter_hook, loop._asyncgen_finalizer_hook  # type: ignore[attr-defined]
    sys.set_asyncgen_hooks(firstiter, lambda agen: (finalised.append(agen.__qualname__), finalizer(agen)))

    async def finalised_by_one_stream() -> int:
        finalised.clear()
        async for _ in await async_client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers=CHUNKS
        ):
            pass
        for _ in range(50):  # let the event loop close what the stream left behind
            await asyncio.sleep(0)
        gc.collect()
        return len(finalised)

    try:
        provider.undo_override()
        untraced = await finalised_by_one_stream()
        provider.override()
        traced = await finalised_by_one_stream()
    finally:
        sys.set_asyncgen_hooks(firstiter, finalizer)

    assert traced == untraced, finalised  # openai 3.x leaves 3 or more, older versions none
    assert len(provider.get_conversation_history()) == 1
