"""Caller-side overhead of neatlogs on OpenAI SDK calls.

One process, the SDK on an in-process mock transport (no sockets), the same calls made
uninstrumented and instrumented in alternating rounds; medians of the per-call time.

    python benchmarks/overhead.py [--calls 300] [--rounds 7] [--chunks 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import openai

try:  # openai 3.x is built on httpx2, 1.x and 2.x on httpx
    import httpx2 as httpx_mod  # type: ignore[import-not-found]
except ImportError:
    import httpx as httpx_mod

from neatlogs.openai import OpenAIProvider

MESSAGES = [{"role": "user", "content": "Say hello in twenty words."}]


def _bodies(chunks: int) -> tuple[bytes, bytes]:
    completion = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
    events = []
    for i in range(chunks):
        delta: dict[str, Any] = {"content": f"w{i} "}
        if i == 0:
            delta["role"] = "assistant"
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if i == chunks - 1 else None}],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n")
    events.append("data: [DONE]\n\n")
    return json.dumps(completion).encode(), "".join(events).encode()


def _transport(chunks: int) -> tuple[Any, Any]:
    plain, sse = _bodies(chunks)

    def handler(request: Any) -> Any:
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            return httpx_mod.Response(200, content=sse, headers={"content-type": "text/event-stream"})
        return httpx_mod.Response(200, content=plain, headers={"content-type": "application/json"})

    return httpx_mod.MockTransport(handler), handler


def _clients(chunks: int) -> tuple[openai.OpenAI, openai.AsyncOpenAI]:
    transport, handler = _transport(chunks)

    async def ahandler(request: Any) -> Any:
        return handler(request)

    sync_client = openai.OpenAI(
        api_key="sk-bench",
        base_url="http://bench.local/v1",
        http_client=httpx_mod.Client(transport=transport),
    )
    async_client = openai.AsyncOpenAI(
        api_key="sk-bench",
        base_url="http://bench.local/v1",
        http_client=httpx_mod.AsyncClient(transport=httpx_mod.MockTransport(ahandler)),
    )
    return sync_client, async_client


def _time_sync(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls / 1000


def _time_async(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], calls: int) -> float:
    async def run() -> float:
        start = time.perf_counter_ns()
        for _ in range(calls):
            await fn()
        return (time.perf_counter_ns() - start) / calls / 1000

    return loop.run_until_complete(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument(
        "--otel", action="store_true", help="also measure with an OpenTelemetry SDK installed"
    )
    args = parser.parse_args()

    sync_client, async_client = _clients(args.chunks)
    loop = asyncio.new_event_loop()

    def sync_call() -> Any:
        return sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def sync_stream() -> Any:
        for _ in sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            pass

    async def async_call() -> Any:
        return await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    async def async_stream() -> Any:
        stream = await async_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        async for _ in stream:
            pass

    cases: list[tuple[str, Callable[[int], float]]] = [
        ("sync", lambda n: _time_sync(sync_call, n)),
        ("async", lambda n: _time_async(loop, async_call, n)),
        (f"sync stream ({args.chunks} chunks)", lambda n: _time_sync(sync_stream, n)),
        (f"async stream ({args.chunks} chunks)", lambda n: _time_async(loop, async_stream, n)),
    ]
    setups: list[tuple[str, dict[str, Any]]] = [("neatlogs (history, no endpoint)", {"otel": False})]
    if args.otel:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
        setups.append(("neatlogs + OTel sink on", {"otel": True, "tracer_provider": tracer_provider}))

    print(f"openai {openai.__version__}, {args.calls} calls x {args.rounds} rounds, medians")
    print()
    print("| setup | call | untraced µs | traced µs | added µs | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for setup_name, options in setups:
        provider = OpenAIProvider(trace_id="bench", history_size=1000, **options)
        for name, run in cases:
            run(args.calls // 5)  # warm up both paths
            provider.override()
            run(args.calls // 5)
            provider.undo_override()
            plain: list[float] = []
            traced: list[float] = []
            for _ in range(args.rounds):
                gc.collect()
                plain.append(run(args.calls))
                provider.override()
                gc.collect()
                traced.append(run(args.calls))
                provider.undo_override()
            base, with_neatlogs = statistics.median(plain), statistics.median(traced)
            print(
                f"| {setup_name} | {name} | {base:.1f} | {with_neatlogs:.1f} | "
                f"{with_neatlogs - base:+.1f} | {with_neatlogs / base:.3f} |"
            )
    loop.close()


if __name__ == "__main__":
    main()
