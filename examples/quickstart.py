"""Quickstart: trace OpenAI calls with the provider API and read them back from the history.

Runs offline against neatlogs' bundled fake OpenAI server; set OPENAI_API_KEY to use the real API.

    python examples/quickstart.py
"""

from __future__ import annotations

import contextlib
import json
import os

from openai import OpenAI

from neatlogs.openai import OpenAIProvider


def main() -> None:
    with contextlib.ExitStack() as stack:
        if os.environ.get("OPENAI_API_KEY"):
            client = OpenAI()
        else:
            from neatlogs._testing.fake_openai import FakeOpenAI

            fake = stack.enter_context(FakeOpenAI())
            client = OpenAI(base_url=fake.base_url, api_key="sk-offline-demo")

        provider = OpenAIProvider(trace_id="quickstart", tags=["example", "openai"])
        provider.override()  # every OpenAI client in the process is traced from here on

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

        for record in provider.get_conversation_history(limit=10):
            summary = {
                key: record[key]
                for key in (
                    "operation",
                    "model",
                    "stream",
                    "status",
                    "usage",
                    "cost_usd",
                    "duration_ms",
                    "ttft_ms",
                )
            }
            summary["completion"] = record["completion"]["content"] if record["completion"] else None
            print(json.dumps(summary, indent=2))

        provider.undo_override()


if __name__ == "__main__":
    main()
