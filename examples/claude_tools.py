"""A tool-using Claude conversation, traced end to end.

Claude is given a weather tool; it answers with `tool_use` blocks (streamed with `messages.stream()`,
thinking included), the tools run, their results go back as `tool_result` blocks, and Claude answers.
Every call of the conversation is recorded under one trace id (the conversation id): the records show
the system prompt, the tool calls Claude made with their arguments, its thinking, the tool results it
was given, the usage with cache tokens, and the cost.

Runs offline against neatlogs' bundled fake Anthropic server; set ANTHROPIC_API_KEY to use the real API.

    python examples/claude_tools.py
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from typing import Any

import anthropic
from anthropic.types import MessageParam, ToolParam

import neatlogs

MODEL = "claude-sonnet-5-5"
SYSTEM = "You are a concise assistant. Use the tools for facts you do not know."
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}},
        "required": ["city"],
    },
}


def get_weather(city: str) -> dict[str, Any]:
    """A stand-in for a weather API: the same answer for the same city."""
    seed = sum(map(ord, city))
    return {"city": city, "temp_c": 5 + seed % 25, "sky": ("clear", "cloudy", "rain")[seed % 3]}


TOOLS = {"get_weather": get_weather}


def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run a tool Claude asked for; problems go back to Claude as an error it can read."""
    try:
        return TOOLS[name](**arguments)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def converse(
    client: anthropic.Anthropic, question: str, conversation_id: str, max_steps: int = 5
) -> tuple[str, list[dict[str, Any]]]:
    """Answer `question` with the tools Claude asks for; (the answer, the tool results it was given)."""
    messages: list[MessageParam] = [{"role": "user", "content": question}]
    results: list[dict[str, Any]] = []
    with neatlogs.trace(conversation_id):
        for _ in range(max_steps):
            with client.messages.stream(
                model=MODEL,
                max_tokens=1024,
                system=SYSTEM,
                messages=messages,
                tools=[WEATHER_TOOL],
                thinking={"type": "enabled", "budget_tokens": 512},
            ) as stream:
                for text in stream.text_stream:
                    print(text, end="", flush=True)
                message = stream.get_final_message()
            uses = [block for block in message.content if block.type == "tool_use"]
            if message.stop_reason != "tool_use" or not uses:
                print()
                return "".join(b.text for b in message.content if b.type == "text"), results
            messages.append({"role": "assistant", "content": message.content})  # type: ignore[typeddict-item]
            replies: list[Any] = []
            for use in uses:
                result = call_tool(use.name, dict(use.input))  # type: ignore[arg-type]
                results.append(result)
                print(f"  [tool] {use.name}({json.dumps(use.input)}) -> {json.dumps(result)}")
                replies.append({"type": "tool_result", "tool_use_id": use.id, "content": json.dumps(result)})
            messages.append({"role": "user", "content": replies})
    raise RuntimeError(f"no answer after {max_steps} steps")


def main() -> None:
    neatlogs.init(tags=["claude-tools"])
    with contextlib.ExitStack() as stack:
        options: dict[str, Any] = {}
        if not os.environ.get("ANTHROPIC_API_KEY"):
            from neatlogs._testing.fake_anthropic import FakeAnthropic

            fake = stack.enter_context(FakeAnthropic())
            options = {"base_url": fake.url, "api_key": "sk-ant-offline-example"}
        client = stack.enter_context(anthropic.Anthropic(**options))
        conversation_id = "conversation-" + uuid.uuid4().hex[:8]
        question = "What is the weather in Paris and Tokyo?"
        print(f"> {question}")
        converse(client, question, conversation_id)

    records = [r for r in neatlogs.get_conversation_history() if r["trace_id"] == conversation_id]
    print(f"\n{len(records)} Claude calls recorded under trace {conversation_id}:")
    for record in records:
        calls = (record["completion"] or {}).get("tool_calls") or []
        asked = ", ".join(f"{c['function']['name']}({c['function']['arguments']})" for c in calls)
        usage = record["usage"] or {}
        print(
            f"  {record['status']:<8} finish={record['finish_reason']:<9} tokens={usage.get('total_tokens')} "
            f"cost=${record['cost_usd'] or 0:.6f} {record['duration_ms']:.0f} ms  {asked}"
        )
    neatlogs.flush(timeout=10)  # no-op unless NEATLOGS_ENDPOINT is set


if __name__ == "__main__":
    main()
