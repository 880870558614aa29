"""Tweet generator: an async OpenAI wrapper with a prompt template, a validator and a rate limiter.

Every generation is one traced call with its own trace id, tagged with its request's category
(`neatlogs.trace(tags=[category])`), so the records can be grouped per category: calls, tokens,
cost and latency. A reply the validator rejects is still in the records, as the model sent it.
Each generation is a span (`neatlogs.observe`) holding its model call and its validation step, so
a rejected tweet shows which step failed and why.

Runs offline against neatlogs' bundled fake OpenAI server; set OPENAI_API_KEY to use the real API
(and NEATLOGS_ENDPOINT to send the records to a collector).

    python examples/tweet_generator.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI

import neatlogs

PROMPT = "Write one tweet about {topic} for an audience interested in {category}. No hashtags."
MAX_LENGTH = 280
REQUESTS = [
    ("sports", "the last minute of a cup final"),
    ("tech", "a database that never loses a write"),
    ("food", "fresh bread on a Sunday"),
    ("sports", "running in the rain"),
    ("tech", "logs that explain themselves"),
    ("food", "the perfect espresso"),
]


class InvalidTweet(ValueError):
    """The model's reply is not a tweet we can post."""


@dataclass(frozen=True)
class Tweet:
    """A validated tweet and the trace id of the call that wrote it."""

    category: str
    text: str
    trace_id: str


@neatlogs.observe(kind="task")
def validate_tweet(text: str | None) -> str:
    """The reply without surrounding quotes and space; InvalidTweet if empty, too long or with hashtags."""
    tweet = (text or "").strip().strip('"').strip()
    if not tweet:
        raise InvalidTweet("the model returned no text")
    if len(tweet) > MAX_LENGTH:
        raise InvalidTweet(f"{len(tweet)} characters, the limit is {MAX_LENGTH}")
    if "#" in tweet:
        raise InvalidTweet("hashtags are not wanted")
    return tweet


class RateLimiter:
    """Lets at most `rate` requests start per second, evenly spaced."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next_start = 0.0

    async def wait(self) -> None:
        """Sleep until this request's turn to start."""
        now = time.monotonic()
        start = max(now, self._next_start)
        self._next_start = start + self._interval
        await asyncio.sleep(start - now)


class TweetGenerator:
    """Writes tweets with an `AsyncOpenAI` client, one traced call per tweet."""

    def __init__(self, client: AsyncOpenAI, model: str = "gpt-4o-mini", rate: float = 5.0) -> None:
        self._client = client
        self._model = model
        self._limiter = RateLimiter(rate)

    async def generate(self, category: str, topic: str) -> Tweet:
        """One tweet; raises InvalidTweet when the reply does not pass `validate_tweet`."""
        await self._limiter.wait()
        with neatlogs.trace(tags=[category]) as trace_id:
            return await self._write(category, topic, trace_id)

    @neatlogs.observe(kind="workflow", name="write-tweet")
    async def _write(self, category: str, topic: str, trace_id: str) -> Tweet:
        response = await self._client.chat.completions.create(
            model=self._model,
            messages=[{"role": "user", "content": PROMPT.format(topic=topic, category=category)}],
            temperature=0.9,
        )
        return Tweet(category, validate_tweet(response.choices[0].message.content), trace_id)

    async def generate_all(self, requests: Sequence[tuple[str, str]]) -> list[Tweet | InvalidTweet]:
        """Tweets for (category, topic) pairs, concurrently; a rejected reply is returned as its error."""

        async def one(category: str, topic: str) -> Tweet | InvalidTweet:
            try:
                return await self.generate(category, topic)
            except InvalidTweet as exc:
                return exc

        return list(await asyncio.gather(*(one(category, topic) for category, topic in requests)))


def summarise(records: list[dict[str, Any]], categories: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per category: calls, total tokens, cost in USD and mean latency in ms, from neatlogs records."""
    summary = {}
    calls = [r for r in records if r.get("kind", "llm") == "llm"]  # the steps (spans) are not calls
    for category in categories:
        mine = [r for r in calls if category in r["tags"]]
        summary[category] = {
            "calls": len(mine),
            "tokens": sum((r["usage"] or {}).get("total_tokens", 0) for r in mine),
            "cost_usd": sum(r["cost_usd"] or 0.0 for r in mine),
            "latency_ms": sum(r["duration_ms"] for r in mine) / max(1, len(mine)),
        }
    return summary


@contextlib.asynccontextmanager
async def openai_client() -> AsyncIterator[AsyncOpenAI]:
    """The real API when OPENAI_API_KEY is set, else neatlogs' fake OpenAI server on loopback."""
    if os.environ.get("OPENAI_API_KEY"):
        async with AsyncOpenAI() as client:
            yield client
        return
    from neatlogs._testing.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-offline-example") as client:
            yield client


async def run(requests: Sequence[tuple[str, str]], rate: float = 5.0) -> list[Tweet | InvalidTweet]:
    """Generate tweets for `requests` with a fresh client."""
    async with openai_client() as client:
        return await TweetGenerator(client, rate=rate).generate_all(requests)


def main() -> None:
    neatlogs.init(tags=["tweet-generator"])
    results = asyncio.run(run(REQUESTS))
    for result in results:
        if isinstance(result, Tweet):
            print(f"[{result.category:<6}] {result.text}  (trace {result.trace_id[:8]})")
        else:
            print(f"[rejected] {result}")

    categories = sorted({category for category, _ in REQUESTS})
    print(f"\n{'category':<9}{'calls':>6}{'tokens':>8}{'cost $':>12}{'latency ms':>12}")
    for category, row in summarise(neatlogs.get_conversation_history(), categories).items():
        print(
            f"{category:<9}{row['calls']:>6}{row['tokens']:>8}{row['cost_usd']:>12.6f}{row['latency_ms']:>12.1f}"
        )
    neatlogs.flush(timeout=10)  # no-op unless NEATLOGS_ENDPOINT is set


if __name__ == "__main__":
    main()
