"""Agent with tools, streamed as Server-Sent Events from a small ASGI (Starlette) endpoint.

`POST /chat {"message": "...", "conversation_id": "..."}` runs a function-calling loop (tool schema,
streamed `tool_calls`, tool results sent back, final answer) and streams it to the caller as
`text/event-stream` events: `tool_call`, `tool_result`, `token` and `done`. Every model call of one
conversation is traced under one trace id, the conversation id, and the records show the tool calls
the model made and the tool results it was given. The agent and its tool are spans
(`neatlogs.observe`): the records form a tree, the agent's step holding its model calls and tool runs.

Runs offline against neatlogs' bundled fake OpenAI server; set OPENAI_API_KEY to use the real API.

    python examples/agent_tools.py          # asks its endpoint one question, prints events and records
    python examples/agent_tools.py --serve  # serves on http://127.0.0.1:8000 until Ctrl-C, then:
    curl -N localhost:8000/chat -H 'content-type: application/json' -d '{"message": "Weather in Oslo?"}'
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import requests
import uvicorn
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

import neatlogs

MODEL = "gpt-4o-mini"
SYSTEM = "You are a concise assistant. Use the tools for facts you do not know."
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}},
            "required": ["city"],
        },
    },
}


@neatlogs.observe(kind="tool")
def get_weather(city: str) -> dict[str, Any]:
    """A stand-in for a weather API: the same answer for the same city."""
    seed = sum(map(ord, city))
    return {"city": city, "temp_c": 5 + seed % 25, "sky": ("clear", "cloudy", "rain")[seed % 3]}


TOOLS = {"get_weather": get_weather}


def call_tool(name: str, arguments: str) -> dict[str, Any]:
    """Run a tool the model asked for; problems go back to the model as an error it can read."""
    try:
        return TOOLS[name](**json.loads(arguments))
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


@neatlogs.observe(kind="agent", name="weather-agent", capture_input=False)
async def agent(
    client: AsyncOpenAI, question: str, conversation_id: str, max_steps: int = 5
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Answer `question`, using tools as needed; yields (event, data) pairs as they happen.

    Run it with `conversation(...)`, which puts each of its steps in the conversation's trace."""
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": question},
    ]
    for _ in range(max_steps):
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=messages,
            tools=[WEATHER_TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        async with stream:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    text.append(delta.content)
                    yield "token", {"text": delta.content}
                for part in delta.tool_calls or []:
                    call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = part.id or call["id"]
                    if part.function is not None:
                        call["name"] += part.function.name or ""
                        call["arguments"] += part.function.arguments or ""
        if not calls:
            yield "done", {"conversation_id": conversation_id, "answer": "".join(text)}
            return
        messages.append(
            {
                "role": "assistant",
                "content": "".join(text) or None,
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls.values()
                ],
            }
        )
        for call in calls.values():
            yield "tool_call", call
            result = call_tool(call["name"], call["arguments"])
            yield "tool_result", {"id": call["id"], "name": call["name"], "result": result}
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
    yield "error", {"message": f"no answer after {max_steps} model calls"}


async def conversation(
    client: AsyncOpenAI, question: str, conversation_id: str
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """`agent`'s events, each of its steps run inside the conversation's trace.

    One `neatlogs.trace` block per step, not one around the loop: a `with` spanning a `yield` would
    be left by whichever task finally closes this generator.
    """
    steps = agent(client, question, conversation_id)
    while True:
        with neatlogs.trace(conversation_id):
            try:
                event = await steps.__anext__()
            except StopAsyncIteration:
                return
        yield event


def create_app(**client_options: Any) -> Starlette:
    """The ASGI app; `client_options` (base_url, api_key, ...) go to the `AsyncOpenAI` client."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncOpenAI(**client_options) as client:
            app.state.client = client
            yield

    async def chat(request: Request) -> StreamingResponse:
        body = await request.json()
        conversation_id = body.get("conversation_id") or uuid.uuid4().hex
        client = request.app.state.client

        async def events() -> AsyncIterator[str]:
            async for event, data in conversation(client, body["message"], conversation_id):
                yield f"event: {event}\ndata: {json.dumps(data)}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/chat", chat, methods=["POST"])], lifespan=lifespan)


@contextlib.contextmanager
def serve_in_background(app: Starlette) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="agent-server", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def ask(url: str, message: str, conversation_id: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """POST `message` to the endpoint and yield its Server-Sent Events as (event, data) as they arrive."""
    body = {"message": message, "conversation_id": conversation_id}
    with requests.post(f"{url}/chat", json=body, stream=True, timeout=60) as response:
        response.raise_for_status()
        event = "message"
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                yield event, json.loads(line.removeprefix("data:"))


def print_tree(records: list[dict[str, Any]], parent: str | None = None, depth: int = 0) -> None:
    """Print records as the tree their `parent_id`s make, each level in the order it started."""
    children = sorted((r for r in records if r.get("parent_id") == parent), key=lambda r: r["started_at"])
    for record in children:
        if record.get("kind") == "span":
            line = f"{record['operation']} {record['name']}"
        else:
            tool_calls = (record["completion"] or {}).get("tool_calls") or []
            asked = ", ".join(f"{c['function']['name']}({c['function']['arguments']})" for c in tool_calls)
            tokens = (record["usage"] or {}).get("total_tokens")
            line = f"llm {record['model']} finish={record['finish_reason']} tokens={tokens} {asked}"
        print(f"  {'  ' * depth}{record['status']:<8} {record['duration_ms']:6.1f} ms  {line}")
        print_tree(records, record["id"], depth + 1)


def main() -> None:
    neatlogs.init(tags=["agent"])
    with contextlib.ExitStack() as stack:
        options: dict[str, Any] = {}
        if not os.environ.get("OPENAI_API_KEY"):
            from neatlogs._testing.fake_openai import FakeOpenAI

            fake = stack.enter_context(FakeOpenAI())
            options = {"base_url": fake.base_url, "api_key": "sk-offline-example"}
        app = create_app(**options)
        if "--serve" in sys.argv[1:]:
            uvicorn.run(app, host="127.0.0.1", port=8000)
            return
        url = stack.enter_context(serve_in_background(app))

        conversation_id = "conversation-" + uuid.uuid4().hex[:8]
        question = "What is the weather in Paris and Tokyo?"
        print(f"> {question}")
        for event, data in ask(url, question, conversation_id):
            if event == "token":
                print(data["text"], end="", flush=True)
            elif event == "done":
                print()
            else:
                print(f"  [{event}] {json.dumps(data)}")

    records = [r for r in neatlogs.get_conversation_history() if r["trace_id"] == conversation_id]
    calls = [r for r in records if r.get("kind", "llm") == "llm"]
    print(f"\n{len(calls)} model calls recorded under trace {conversation_id}, as a tree of steps:")
    print_tree(records)
    neatlogs.flush(timeout=10)  # no-op unless NEATLOGS_ENDPOINT is set


if __name__ == "__main__":
    main()
