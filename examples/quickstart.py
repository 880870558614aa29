"""Quickstart: trace OpenAI calls with the provider API and read them back from the history.

Runs offline against neatlogs' bundled fake OpenAI server; set OPENAI_API_KEY to use the real API.

    python examples/quickstart.py
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

from openai import OpenAI

from neatlogs.openai import OpenAIProvider

SUMMARY_KEYS = ("operation", "model", "stream", "status", "usage", "cost_usd", "duration_ms", "ttft_ms")


@contextlib.contextmanager
def openai_client() -> Iterator[OpenAI]:
    """The real API when OPENAI_API_KEY is set, else neatlogs' fake OpenAI server on loopback."""
    if os.environ.get("OPENAI_API_KEY"):
        with OpenAI() as client:
            yield client
        return
    from neatlogs._testing.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake, OpenAI(base_url=fake.base_url, api_key="sk-offline-example") as client:
        yield client


def run(client: OpenAI) -> list[dict[str, Any]]:
    """Make a plain and a streamed call with tracing on; return their records, oldest first."""
    provider = OpenAIProvider(trace_id="quickstart", tags=["example", "openai"])
    provider.override()  # every OpenAI client in the process is traced from here on
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Name three colours"}]
        )
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Count to five"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices:
                print(chunk.choices[0].delta.content or "", end="", flush=True)
        print()
        return provider.get_conversation_history(limit=10)
    finally:
        provider.undo_override()  # the SDK's own functions again


def main() -> None:
    with openai_client() as client:
        records = run(client)
    for record in records:
        summary = {key: record[key] for key in SUMMARY_KEYS}
        summary["completion"] = record["completion"]["content"] if record["completion"] else None
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
