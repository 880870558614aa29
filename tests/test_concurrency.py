"""Many threads and asyncio tasks calling at once: every call recorded once, none mixed up."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import openai

from neatlogs.openai import OpenAIProvider


def test_calls_from_many_threads_are_all_recorded(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    def worker(n: int) -> None:
        for i in range(10):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"thread {n} call {i}"}]
            )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    records = provider.get_conversation_history()
    assert len(records) == 80 and len({r["id"] for r in records}) == 80
    for record in records:  # each record's answer belongs to its own prompt
        assert record["prompt"][0]["content"] in record["completion"]["content"]


async def test_concurrent_tasks_are_all_recorded(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    async def one(i: int, stream: bool) -> Any:
        messages = [{"role": "user", "content": f"task {i}"}]
        if not stream:
            return await async_client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        result = await async_client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True
        )
        return [c async for c in result]

    await asyncio.gather(*(one(i, stream=i % 2 == 0) for i in range(40)))

    records = provider.get_conversation_history()
    assert len(records) == 40
    assert {r["prompt"][0]["content"] for r in records} == {f"task {i}" for i in range(40)}
    assert all(r["prompt"][0]["content"] in r["completion"]["content"] for r in records)
    assert sum(r["stream"] for r in records) == 20
