"""Retrying generator: `AsyncOpenAI` streaming with tenacity retries on rate limits and server errors.

Each attempt is its own traced call, so a generation that failed with 429 and then succeeded leaves
two records, the failure (with its status code and request id) and the success, under the
generation's trace id. The client is made with `max_retries=0`: the SDK's own retries happen inside
one `create()` call, so they would leave a single record and hide the failures.

Runs offline against neatlogs' bundled fake OpenAI server, which is told to fail the first
attempts with 429 and 500; set OPENAI_API_KEY to use the real API. Needs `pip install tenacity`.

    python examples/retrying_generator.py
"""

from __future__ import annotations

import asyncio
import os

import openai
from openai import AsyncOpenAI
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

import neatlogs

# Worth another try; other errors (bad request, authentication) would fail the same way again.
RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)
BACKOFF = wait_random_exponential(multiplier=0.5, max=10)


def log_retry(state: RetryCallState) -> None:
    """Say which attempt failed and how long we wait before the next one."""
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    print(f"  attempt {state.attempt_number} failed: {type(error).__name__}; retrying in {wait:.2f}s")


async def stream_once(client: AsyncOpenAI, prompt: str) -> str:
    """One streamed completion, printed as it arrives; returns its text."""
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts: list[str] = []
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
                print(chunk.choices[0].delta.content, end="", flush=True)
    print()
    return "".join(parts)


async def generate(
    client: AsyncOpenAI,
    prompt: str,
    attempts: int = 4,
    wait: wait_base = BACKOFF,
) -> tuple[str, str]:
    """Stream a completion, retrying RETRYABLE errors; returns (text, trace id of all its attempts)."""
    with neatlogs.trace(tags=["generation"]) as trace_id:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE),
            stop=stop_after_attempt(attempts),
            wait=wait,
            before_sleep=log_retry,
            reraise=True,  # the last SDK exception itself, not tenacity's RetryError
        ):
            with attempt:
                return await stream_once(client, prompt), trace_id
    raise AssertionError("unreachable: tenacity returns or raises")


async def run(prompts: list[str]) -> list[tuple[str, str]]:
    """Generate each prompt in turn; offline, the fake server fails the first attempts (429, then 500)."""
    if os.environ.get("OPENAI_API_KEY"):
        async with AsyncOpenAI(max_retries=0) as client:
            return [await generate(client, prompt) for prompt in prompts]

    from neatlogs._testing.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        fake.fail_next(status=429)
        fake.fail_next(status=500)
        async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-offline-example", max_retries=0) as client:
            return [await generate(client, prompt) for prompt in prompts]


def main() -> None:
    neatlogs.init(tags=["retrying-generator"])
    results = asyncio.run(run(["Write a haiku about retries", "Say thanks in five languages"]))

    for _, trace_id in results:
        print(f"\ntrace {trace_id}:")
        for record in neatlogs.get_conversation_history():
            if record["trace_id"] == trace_id:
                error = record["error"] or {}
                outcome = f"{error.get('type')} {error.get('status_code')}" if error else record["status"]
                print(f"  {record['started_at']}  {outcome:<24} {record['duration_ms']:.0f} ms")
    neatlogs.flush(timeout=10)  # no-op unless NEATLOGS_ENDPOINT is set


if __name__ == "__main__":
    main()
