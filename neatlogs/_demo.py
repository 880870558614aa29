"""`neatlogs demo`: a small traced app, the bundled fake OpenAI server and an in-process collector."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from neatlogs._testing.fake_openai import WEATHER_TOOL


def _scenarios(client: Any, async_client: Any, fake: Any) -> list[tuple[str, Callable[[], Any]]]:
    import openai

    def chat() -> Any:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Write a haiku about tidy logs"}]
        )

    def stream() -> Any:
        chunks = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Explain tracing in one sentence"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    def tool_call() -> Any:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
        first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
        call = first.choices[0].message.tool_calls[0]
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        messages.append(
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18, "sky": "clear"}'}
        )
        return client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])

    def async_chat() -> Any:
        async def run() -> Any:
            return await async_client.chat.completions.create(
                model="gpt-4.1-mini", messages=[{"role": "user", "content": "Say hi asynchronously"}]
            )

        return asyncio.run(run())

    def legacy() -> Any:
        return client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time")

    def rate_limited() -> Any:
        fake.fail_next(status=429, retry_after=1)
        try:
            return client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "This one is rate limited"}]
            )
        except openai.RateLimitError as exc:
            return exc

    return [
        ("chat", chat),
        ("stream", stream),
        ("tool call + answer", tool_call),
        ("async chat", async_chat),
        ("legacy completion", legacy),
        ("rate limited (429)", rate_limited),
    ]


def _table(records: list[dict[str, Any]]) -> str:
    header = ("#", "operation", "model", "stream", "in", "out", "cost $", "latency ms", "ttft ms", "status")
    rows = [header]
    for index, record in enumerate(records, 1):
        usage = record.get("usage") or {}
        cost = record.get("cost_usd")
        ttft = record.get("ttft_ms")
        rows.append(
            (
                str(index),
                record["operation"],
                record.get("response_model") or record["model"],
                "yes" if record["stream"] else "",
                str(usage.get("prompt_tokens", "")),
                str(usage.get("completion_tokens", "")),
                f"{cost:.6f}" if cost is not None else "",
                f"{record['duration_ms']:.1f}",
                f"{ttft:.1f}" if ttft is not None else "",
                record["status"] + (f" ({record['error']['type']})" if record.get("error") else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _should_serve(args: argparse.Namespace) -> bool:
    # Someone at a terminal wants to look at the records; a script or CI wants the exit code.
    if getattr(args, "no_serve", False):
        return False
    return sys.stdin.isatty() and sys.stdout.isatty()


def _serve_until_interrupted() -> None:
    print("the viewer keeps running until Ctrl-C", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print()


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the process exit code."""
    try:
        import openai

        from neatlogs.collector.server import CollectorServer
    except ImportError as exc:
        print(f"neatlogs demo needs the demo extra ({exc.name} is missing): pip install 'neatlogs[demo]'")
        return 2
    import neatlogs
    from neatlogs._testing.fake_openai import FakeOpenAI

    calls = max(1, int(getattr(args, "calls", 6) or 6))
    db_path = getattr(args, "db", None) or os.path.join(tempfile.mkdtemp(prefix="neatlogs-demo-"), "demo.db")
    key = "demo-" + secrets.token_hex(8)
    with FakeOpenAI() as fake, CollectorServer(db_path, api_keys={key}) as collector:
        print(f"fake OpenAI API  {fake.base_url}")
        print(f"collector        {collector.url}  (SQLite: {db_path})")
        tracker = neatlogs.init(api_key=key, endpoint=collector.url, tags=["demo"], flush_interval=0.2)
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-demo-not-a-real-key", max_retries=0)
        async_client = openai.AsyncOpenAI(
            base_url=fake.base_url, api_key="sk-demo-not-a-real-key", max_retries=0
        )
        scenarios = _scenarios(client, async_client, fake)
        print(f"\nmaking {calls} traced calls ...")
        for index in range(calls):
            name, run = scenarios[index % len(scenarios)]
            run()
            print(f"  {name}")
        delivered = neatlogs.flush(timeout=10)
        records = sorted(
            collector.store.records(trace_id=tracker.trace_id, limit=1000), key=lambda r: r["started_at"]
        )
        print(f"\nwhat arrived at the collector (trace {tracker.trace_id}):\n")
        print(_table(records))
        stats = neatlogs.stats()
        print(f"\nexporter: sent {stats['sent']}, dropped {stats['dropped']}, failed {stats['failed']}")
        tracker.stop_instrumenting()
        neatlogs.shutdown(timeout=5)
        client.close()
        print(f"\nsee them in the viewer: {collector.url}/traces/{tracker.trace_id}")
        print(f"    (it asks once for this demo collector's key: {key})")
        if _should_serve(args):
            _serve_until_interrupted()
        else:
            print("    the demo's collector stops now; to browse these records later:")
            print(f"    neatlogs serve --no-auth --db {db_path}")
    print("\nnext: `neatlogs serve --no-auth` and set NEATLOGS_ENDPOINT=http://127.0.0.1:7077 in your app")
    return 0 if delivered and len(records) == len(tracker.get_conversation_history()) else 1
