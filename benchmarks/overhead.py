"""Caller-side overhead of neatlogs on OpenAI and Anthropic SDK calls.

One process, the SDK on an in-process mock transport (no sockets), the same calls made
uninstrumented and instrumented in many short alternating rounds (plain-traced, then traced-plain,
so that drift cancels out); "added" is the median over rounds of the traced round's time per call
minus its paired plain round's, and the ratio is 1 + added / untraced (a ratio of the two medians
would mix in the drift that pairing removes).

    python benchmarks/overhead.py [--calls 60] [--rounds 30] [--chunks 20] [--otel] [--exporter]
                                  [--processes 5] [--sdk all|openai|anthropic]

Streams are measured twice: their body read at once (the mock transport's in-memory body), and
one server-sent event per read, as from a server that flushes each event. In the first, tracing on
openai 3.x can measure faster than not tracing: the tap hands the SDK's line splitter's output to
the SDK as a list, which the SDK then walks faster than its own lazy split; the second is the
figure to hold against the targets.

The `observe` rows time an empty function: untraced, the plain function; traced, the same function
decorated with `@neatlogs.observe` while neatlogs traces (each call records a span); `span` rows the
same for an empty `with neatlogs.span(...)` block.

Anthropic rows (when the anthropic SDK is installed) measure `messages.create` plain and streamed, and
`messages.stream()`, with the same number of text deltas, one event per read.

Rows: the default setup (history only, no endpoint), `--otel` (an OpenTelemetry SDK installed and the
OTel sink on), `--exporter` (an endpoint set: records shipped to `neatlogs serve` running in another
process; spans go to a `BatchSpanProcessor` whose exporter lets them go). Columns: wall-clock time
per call, the calling thread's CPU time, and the CPU time that neatlogs' background threads (usage
statistics, OTel, exporter) spent per traced call, which in a real application overlaps with its
network waits. Their work shares the interpreter with the caller, so
whatever of it runs during a round shows up in that round's wall-clock time too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import openai

try:  # openai 3.x is built on httpx2, 1.x and 2.x on httpx
    import httpx2 as httpx_mod  # type: ignore[import-not-found]
except ImportError:
    import httpx as httpx_mod

import neatlogs
from neatlogs.openai import OpenAIProvider
from neatlogs.spans import routes as span_routes

MESSAGES = [{"role": "user", "content": "Say hello in twenty words."}]


def _bodies(chunks: int) -> tuple[bytes, list[bytes]]:
    """A chat completion's JSON body, and a stream's server-sent events (one bytes string each)."""
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
        events.append(f"data: {json.dumps(chunk)}\n\n".encode())
    events.append(b"data: [DONE]\n\n")
    return json.dumps(completion).encode(), events


class _EventReads(httpx_mod.SyncByteStream, httpx_mod.AsyncByteStream):  # type: ignore[misc]
    """A streamed body that arrives one server-sent event per read, as from a server that flushes
    each event (an in-memory body is otherwise read all at once)."""

    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._events)

    async def __aiter__(self) -> Any:
        for event in self._events:
            yield event


def _transport(chunks: int, read_per_event: bool) -> tuple[Any, Any]:
    plain, events = _bodies(chunks)
    sse = b"".join(events)

    def handler(request: Any) -> Any:
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            headers = {"content-type": "text/event-stream"}
            if read_per_event:
                return httpx_mod.Response(200, stream=_EventReads(events), headers=headers)
            return httpx_mod.Response(200, content=sse, headers=headers)
        return httpx_mod.Response(200, content=plain, headers={"content-type": "application/json"})

    return httpx_mod.MockTransport(handler), handler


def _anthropic_bodies(chunks: int) -> tuple[bytes, list[bytes]]:
    """A Claude message's JSON body, and a stream's server-sent events with `chunks` text deltas."""
    usage = {"input_tokens": 9, "output_tokens": chunks, "cache_read_input_tokens": 0}
    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    steps: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    steps += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"w{i} "}}
        for i in range(chunks)
    ]
    steps += [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": chunks}},
        {"type": "message_stop"},
    ]
    events = [f"event: {step['type']}\ndata: {json.dumps(step)}\n\n".encode() for step in steps]
    return json.dumps(message).encode(), events


def _anthropic_clients(chunks: int) -> tuple[Any, Any]:
    """Anthropic clients on a mock transport whose streams arrive one event per read."""
    import anthropic

    plain, events = _anthropic_bodies(chunks)

    def handler(request: Any) -> Any:
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            headers = {"content-type": "text/event-stream", "request-id": "req_bench"}
            return httpx_mod.Response(200, stream=_EventReads(events), headers=headers)
        headers = {"content-type": "application/json", "request-id": "req_bench"}
        return httpx_mod.Response(200, content=plain, headers=headers)

    async def ahandler(request: Any) -> Any:
        return handler(request)

    options: dict[str, Any] = {"api_key": "sk-ant-bench", "base_url": "http://bench.local", "max_retries": 0}
    sync_client = anthropic.Anthropic(
        http_client=httpx_mod.Client(transport=httpx_mod.MockTransport(handler)), **options
    )
    async_client = anthropic.AsyncAnthropic(
        http_client=httpx_mod.AsyncClient(transport=httpx_mod.MockTransport(ahandler)), **options
    )
    return sync_client, async_client


def _anthropic_version() -> str:
    try:
        from importlib.metadata import version

        return f", anthropic {version('anthropic')}"
    except Exception:
        return ""


def _anthropic_cases(
    chunks: int, loop: asyncio.AbstractEventLoop
) -> list[tuple[str, Callable[[int], Timing]]]:
    sync_client, async_client = _anthropic_clients(chunks)
    ask: dict[str, Any] = {"model": "claude-sonnet-5-5", "max_tokens": 100, "messages": MESSAGES}

    def sync_call() -> Any:
        return sync_client.messages.create(**ask)

    async def async_call() -> Any:
        return await async_client.messages.create(**ask)

    def sync_stream() -> Any:
        for _ in sync_client.messages.create(stream=True, **ask):
            pass

    async def async_stream() -> Any:
        async for _ in await async_client.messages.create(stream=True, **ask):
            pass

    def helper_stream() -> Any:
        with sync_client.messages.stream(**ask) as stream:
            for _ in stream.text_stream:
                pass

    deltas = f"{chunks} deltas, a read each"
    return [
        ("anthropic sync", lambda n: _time_sync(sync_call, n)),
        ("anthropic async", lambda n: _time_async(loop, async_call, n)),
        (f"anthropic sync stream ({deltas})", lambda n: _time_sync(sync_stream, n)),
        (f"anthropic async stream ({deltas})", lambda n: _time_async(loop, async_stream, n)),
        (f"anthropic messages.stream() ({deltas})", lambda n: _time_sync(helper_stream, n)),
    ]


def _clients(chunks: int, read_per_event: bool = False) -> tuple[openai.OpenAI, openai.AsyncOpenAI]:
    transport, handler = _transport(chunks, read_per_event)

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


class _ShippedSpans:
    """A span exporter that lets its spans go, as one that ships them does (an in-memory exporter keeps
    every span of the run, a heap that grows for the whole benchmark)."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@contextlib.contextmanager
def _collector_process() -> Iterator[str]:
    """`neatlogs serve` in its own process, so its work does not share this interpreter."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "neatlogs", "serve", "--no-auth", "--port", str(port)]
        process = subprocess.Popen(
            [*command, "--db", os.path.join(tmp, "bench.db")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(url + "/healthz", timeout=1).close()
                    break
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(10)


# (wall-clock µs per call, the calling thread's CPU µs per call, other threads' CPU µs per call). CPU time
# of the calling thread is what neatlogs adds on the caller's path and is far less disturbed by other
# load on the machine.
Timing = tuple[float, float, float]


def _timing(wall: int, cpu: int, process: int, calls: int) -> Timing:
    return wall / calls / 1000, cpu / calls / 1000, (process - cpu) / calls / 1000


def _time_sync(fn: Callable[[], Any], calls: int) -> Timing:
    wall, cpu, process = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
    for _ in range(calls):
        fn()
    return _timing(
        time.perf_counter_ns() - wall,
        time.thread_time_ns() - cpu,
        time.process_time_ns() - process,
        calls,
    )


def _time_async(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], calls: int) -> Timing:
    async def run() -> Timing:
        wall, cpu, process = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
        for _ in range(calls):
            await fn()
        return _timing(
            time.perf_counter_ns() - wall,
            time.thread_time_ns() - cpu,
            time.process_time_ns() - process,
            calls,
        )

    return loop.run_until_complete(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60, help="calls per round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument(
        "--otel", action="store_true", help="also measure with an OpenTelemetry SDK installed"
    )
    parser.add_argument(
        "--exporter", action="store_true", help="also measure with records shipped to a collector"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="repeat the whole run in this many fresh processes (hash seeds 0, 1, ...) and report the "
        "median of their figures",
    )
    parser.add_argument(
        "--sdk", choices=("all", "openai", "anthropic"), default="all", help="which SDK's rows to measure"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one process's rows
    args = parser.parse_args()
    if args.processes > 1:
        _run_processes(args)
        return
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(_collector_process()) if args.exporter else None
        _run(args, endpoint)


def _run_processes(args: argparse.Namespace) -> None:
    """The same run in fresh processes: how fast the untraced SDK runs moves with each process's
    memory layout and hash seed by more than neatlogs adds, so one process alone can mislead."""
    command = [sys.executable, __file__, "--json", "--calls", str(args.calls), "--rounds", str(args.rounds)]
    command += ["--chunks", str(args.chunks)] + ["--otel"] * args.otel + ["--exporter"] * args.exporter
    command += ["--sdk", args.sdk]
    runs: list[list[dict[str, Any]]] = []
    for seed in range(args.processes):
        output = subprocess.run(
            command,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        runs.append([json.loads(line) for line in output.splitlines() if line.startswith("{")])
    print(
        f"openai {openai.__version__}, {args.processes} processes (PYTHONHASHSEED=0..{args.processes - 1}), "
        f"each {args.rounds} rounds x {args.calls} calls; medians over the processes of each one's median"
    )
    print()
    print("| setup | call | untraced µs | traced µs | added µs | ratio | added µs, each process |")
    print("|---|---|---:|---:|---:|---:|---|")
    for rows in zip(*runs, strict=True):
        base, traced, added = (
            statistics.median(row[key] for row in rows) for key in ("base", "traced", "added")
        )
        each = " / ".join(f"{row['added']:+.1f}" for row in rows)
        print(
            f"| {rows[0]['setup']} | {rows[0]['call']} | {base:.1f} | {traced:.1f} | {added:+.1f} | "
            f"{1 + added / base:.3f} | {each} |"
        )


def _run(args: argparse.Namespace, endpoint: str | None) -> None:

    sync_client, async_client = _clients(args.chunks)
    # the same streams, their body arriving one event per read
    sync_reads, async_reads = _clients(args.chunks, read_per_event=True)
    loop = asyncio.new_event_loop()

    def sync_call() -> Any:
        return sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def sync_stream(client: openai.OpenAI) -> Callable[[], Any]:
        def read() -> Any:
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                pass

        return read

    async def async_call() -> Any:
        return await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def async_stream(client: openai.AsyncOpenAI) -> Callable[[], Any]:
        async def read() -> Any:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            async for _ in stream:
                pass

        return read

    def empty(x: int = 1) -> int:
        return x

    observed = neatlogs.observe(kind="tool")(empty)

    async def async_empty(x: int = 1) -> int:
        return x

    async_observed = neatlogs.observe(kind="tool")(async_empty)

    def empty_block() -> None:
        pass

    def span_block() -> None:
        with neatlogs.span("step", kind="tool"):
            pass

    # While the provider traces, span routes are set: the traced round runs the observed function.
    def tracing() -> bool:
        return bool(span_routes.ROUTE)

    chunks = f"{args.chunks} chunks"
    cases: list[tuple[str, Callable[[int], Timing]]] = [
        ("sync", lambda n: _time_sync(sync_call, n)),
        ("async", lambda n: _time_async(loop, async_call, n)),
        (f"sync stream ({chunks}, one read)", lambda n: _time_sync(sync_stream(sync_client), n)),
        (f"async stream ({chunks}, one read)", lambda n: _time_async(loop, async_stream(async_client), n)),
        (f"sync stream ({chunks}, a read each)", lambda n: _time_sync(sync_stream(sync_reads), n)),
        (
            f"async stream ({chunks}, a read each)",
            lambda n: _time_async(loop, async_stream(async_reads), n),
        ),
        ("observe: empty sync function", lambda n: _time_sync(observed if tracing() else empty, n)),
        (
            "observe: empty async function",
            lambda n: _time_async(loop, async_observed if tracing() else async_empty, n),
        ),
        ("span: empty with block", lambda n: _time_sync(span_block if tracing() else empty_block, n)),
    ]
    setups: list[tuple[str, dict[str, Any]]] = [("history only (no endpoint)", {"otel": False})]
    if args.otel:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(_ShippedSpans()))
        setups.append(("OTel sink on (SDK installed)", {"otel": True, "tracer_provider": tracer_provider}))
    if endpoint:
        setups.append(("exporter on (collector process)", {"otel": False, "endpoint": endpoint}))

    # The untraced async stream's own cost moves with the hash seed (docs/overhead.md): say which one ran.
    seed = os.environ.get("PYTHONHASHSEED") or "random"
    # `--json`: one line per row, for `--processes`
    say: Callable[[str], None] = (lambda line: None) if args.json else print
    say(
        f"openai {openai.__version__}{_anthropic_version()}, {args.rounds} rounds x {args.calls} calls, "
        f"medians of paired rounds, PYTHONHASHSEED={seed}"
    )
    say("")
    say(
        "| setup | call | untraced µs | traced µs | added µs | ratio | caller CPU added µs "
        "| background CPU µs |"
    )
    say("|---|---|---:|---:|---:|---:|---:|---:|")
    groups: list[tuple[type[Any], list[tuple[str, Callable[[int], Timing]]]]] = []
    if args.sdk in ("all", "openai"):
        groups.append((OpenAIProvider, cases))
    if args.sdk in ("all", "anthropic"):
        try:
            from neatlogs.anthropic import AnthropicProvider

            groups.append((AnthropicProvider, _anthropic_cases(args.chunks, loop)))
        except ImportError:  # the anthropic SDK is not installed: OpenAI rows only
            if args.sdk == "anthropic":
                raise
    for setup_name, options in setups:
        for provider_class, group in groups:
            _measure(args, say, setup_name, provider_class(trace_id="bench", **options), group)
    if endpoint:
        neatlogs.flush(timeout=30)
        counters = neatlogs.stats()
        say(
            f"\nexporter: sent {counters['sent']}, dropped {counters['dropped']}, failed {counters['failed']}"
        )
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def _measure(
    args: argparse.Namespace,
    say: Callable[[str], None],
    setup_name: str,
    provider: Any,
    cases: list[tuple[str, Callable[[int], Timing]]],
) -> None:
    """One row per case: paired rounds of untraced and traced calls (see the module docstring)."""
    for name, run in cases:
        run(args.calls)  # warm up both paths
        provider.override()
        run(args.calls * 3)
        provider.undo_override()
        gc.collect()
        plain: list[Timing] = []
        traced: list[Timing] = []
        for round_number in range(args.rounds):
            for instrumented in (False, True) if round_number % 2 == 0 else (True, False):
                if instrumented:
                    provider.override()
                    traced.append(run(args.calls))
                    provider.undo_override()
                else:
                    plain.append(run(args.calls))
        added = [t[0] - p[0] for p, t in zip(plain, traced, strict=True)]
        added_cpu = [t[1] - p[1] for p, t in zip(plain, traced, strict=True)]
        base, with_neatlogs = (statistics.median(t[0] for t in runs) for runs in (plain, traced))
        # Background work is bursty (batches), and a traced round's records are often handled
        # during the next plain round: all of it, over the traced calls, is its cost per call.
        background = statistics.fmean(t[2] for t in traced) + statistics.fmean(t[2] for t in plain)
        say(
            f"| {setup_name} | {name} | {base:.1f} | {with_neatlogs:.1f} | "
            f"{statistics.median(added):+.1f} | {1 + statistics.median(added) / base:.3f} | "
            f"{statistics.median(added_cpu):+.1f} | {background:+.1f} |"
        )
        if args.json:
            row = {"setup": setup_name, "call": name, "base": base, "traced": with_neatlogs}
            print(json.dumps({**row, "added": statistics.median(added)}))


if __name__ == "__main__":
    main()
