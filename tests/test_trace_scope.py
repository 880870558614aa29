"""`neatlogs.trace(...)`: the calls of one block (a conversation, a request) get its trace id and tags."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs.openai import OpenAIProvider

HI = [{"role": "user", "content": "hi"}]


def test_calls_inside_a_block_get_its_trace_id_and_tags(
    provider: OpenAIProvider, client: openai.OpenAI
) -> None:
    with neatlogs.trace("conversation-1", tags=["sports"]) as trace_id:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
        list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    records = provider.get_conversation_history()
    assert trace_id == "conversation-1"
    assert [r["trace_id"] for r in records] == ["conversation-1", "conversation-1", "test-trace"]
    assert [r["tags"] for r in records] == [["test", "sports"], ["test", "sports"], ["test"]]


def test_blocks_nest_and_a_generated_id_is_yielded(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    with neatlogs.trace(tags=["outer"]) as outer_id, neatlogs.trace(tags=["inner", "outer"]) as inner_id:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    (record,) = provider.get_conversation_history()
    assert inner_id == outer_id and len(outer_id) == 32
    assert record["trace_id"] == outer_id and record["tags"] == ["test", "outer", "inner"]


def test_a_stream_keeps_the_block_it_was_created_in(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    with neatlogs.trace("made-here"):
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    list(stream)

    (record,) = provider.get_conversation_history()
    assert record["trace_id"] == "made-here"


async def test_concurrent_tasks_keep_their_own_trace_ids(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    async def conversation(name: str) -> None:
        with neatlogs.trace(name):
            for _ in range(3):
                await async_client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": name}]
                )
                await asyncio.sleep(0)

    await asyncio.gather(conversation("a"), conversation("b"))

    for record in provider.get_conversation_history():
        assert record["trace_id"] == record["prompt"][0]["content"]


def test_threads_keep_their_own_trace_ids(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    def conversation(name: str) -> None:
        with neatlogs.trace(name):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": name}])

    threads = [threading.Thread(target=conversation, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    records = provider.get_conversation_history()
    assert len(records) == 4 and all(r["trace_id"] == r["prompt"][0]["content"] for r in records)


def test_handle_error_inside_a_block_uses_its_trace_id(provider: OpenAIProvider) -> None:
    with neatlogs.trace("failing-conversation"):
        provider.handle_error(RuntimeError("x"), {"model": "gpt-4o", "messages": HI})

    assert provider.get_conversation_history()[0]["trace_id"] == "failing-conversation"


def test_bad_trace_arguments_are_rejected() -> None:
    with pytest.raises(TypeError, match="trace_id must be a str"), neatlogs.trace(123):  # type: ignore[arg-type]
        pass
    with pytest.raises(TypeError, match="did you mean tags"), neatlogs.trace(tags="x"):  # type: ignore[arg-type]
        pass


async def test_a_block_in_an_async_generator_closed_by_another_task_does_not_raise() -> None:
    async def events() -> Any:
        with neatlogs.trace("conversation-1"):
            yield 1
            yield 2

    generator = events()
    assert await generator.__anext__() == 1
    await asyncio.create_task(generator.aclose())  # as a server does when its client disconnects
