"""The fake OpenAI server, exercised with the real openai SDK over real sockets."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from neatlogs._testing.fake_openai import FakeOpenAI, count_tokens

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
USER_WEATHER: Any = [{"role": "user", "content": "What is the weather in Paris and Tokyo?"}]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def client(server: FakeOpenAI) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    yield sdk
    sdk.close()


def _user(text: str) -> Any:
    return [{"role": "user", "content": text}]


# ---- chat, non-streamed ------------------------------------------------------------------------------


def test_chat_echoes_the_last_user_message_with_real_fields(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    messages: Any = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    completion = raw.parse()

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.system_fingerprint
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello there"
    assert choice.message.refusal is None
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == count_tokens("Be brief. hello there") == 4
    assert usage.completion_tokens == 3
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0

    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-ratelimit-remaining-requests"]) > 0
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) > 0
    recorded = server.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/chat/completions")
    assert recorded.json["messages"] == messages
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.request_id == raw.headers["x-request-id"]


def test_chat_n_gives_one_distinct_choice_per_index(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="m", messages=_user("hi"), n=3)

    assert [c.index for c in completion.choices] == [0, 1, 2]
    contents = [c.message.content for c in completion.choices]
    assert contents[0] == "Echo: hi"
    assert len(set(contents)) == 3
    assert completion.usage is not None
    assert completion.usage.completion_tokens == sum(count_tokens(c or "") for c in contents)


def test_chat_max_tokens_cuts_the_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="m", messages=_user("one two three four"), max_tokens=2)

    assert completion.choices[0].message.content == "Echo: one"
    assert completion.choices[0].finish_reason == "length"


def test_chat_weather_question_calls_get_weather_in_parallel_then_uses_the_results(
    client: openai.OpenAI,
) -> None:
    first = client.chat.completions.create(model="m", messages=USER_WEATHER, tools=[WEATHER_TOOL])

    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert message.tool_calls is not None
    tool_calls: Any = message.tool_calls
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in tool_calls]
    assert calls == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})]
    assert all(c.id.startswith("call_") and c.type == "function" for c in message.tool_calls)
    assert len({c.id for c in message.tool_calls}) == 2

    follow_up: Any = [
        *USER_WEATHER,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "18C sunny"},
        {"role": "tool", "tool_call_id": message.tool_calls[1].id, "content": "25C rain"},
    ]
    final = client.chat.completions.create(model="m", messages=follow_up, tools=[WEATHER_TOOL])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "According to the tool: 18C sunny; 25C rain"


def test_chat_tool_choice_none_and_no_weather_answer_with_text(client: openai.OpenAI) -> None:
    none = client.chat.completions.create(
        model="m", messages=USER_WEATHER, tools=[WEATHER_TOOL], tool_choice="none"
    )
    plain = client.chat.completions.create(model="m", messages=_user("hello"), tools=[WEATHER_TOOL])

    assert none.choices[0].message.tool_calls is None
    assert plain.choices[0].message.content == "Echo: hello"


def test_script_chat_queues_the_next_answers(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.script_chat(content="scripted")
    server.script_chat(tool_calls=[{"name": "lookup", "arguments": {"q": "x"}, "id": "call_1"}])
    server.script_chat(finish_reason="content_filter")

    first = client.chat.completions.create(model="m", messages=_user("a"))
    second = client.chat.completions.create(model="m", messages=_user("b"))
    third = client.chat.completions.create(model="m", messages=_user("c"))
    fourth = client.chat.completions.create(model="m", messages=_user("d"))

    assert first.choices[0].message.content == "scripted"
    tool_calls: Any = second.choices[0].message.tool_calls
    assert tool_calls is not None
    assert (tool_calls[0].id, tool_calls[0].function.name, tool_calls[0].function.arguments) == (
        "call_1",
        "lookup",
        '{"q": "x"}',
    )
    assert second.choices[0].finish_reason == "tool_calls"
    assert (third.choices[0].message.content, third.choices[0].finish_reason) == ("Echo: c", "content_filter")
    assert (fourth.choices[0].message.content, fourth.choices[0].finish_reason) == ("Echo: d", "stop")


# ---- chat, streamed ----------------------------------------------------------------------------------


def test_chat_stream_with_usage_and_chunk_count(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m",
        messages=_user("tell me a long story please"),
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-chunks": "20"},
    )
    chunks = list(stream)

    assert isinstance(stream, openai.Stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 20
    assert "".join(pieces) == "Echo: tell me a long story please"
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finished] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + 7
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="m", messages=_user("hi"), stream=True))

    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_chat_stream_n2_interleaves_choices(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="m", messages=_user("hi there"), n=2, stream=True))

    order = [c.choices[0].index for c in chunks]
    assert order[:4] == [0, 1, 0, 1]
    texts = {0: "", 1: ""}
    for chunk in chunks:
        texts[chunk.choices[0].index] += chunk.choices[0].delta.content or ""
    assert texts[0] == "Echo: hi there"
    assert texts[1] != texts[0]


def test_chat_stream_helper_reassembles_parallel_tool_calls(client: openai.OpenAI) -> None:
    completions: Any = client.chat.completions
    helper = getattr(completions, "stream", None) or client.beta.chat.completions.stream
    with helper(model="m", messages=USER_WEATHER, tools=[WEATHER_TOOL]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()

    assert final.choices[0].finish_reason == "tool_calls"
    calls = final.choices[0].message.tool_calls
    assert calls is not None
    assert [c.function.parsed_arguments for c in calls] == [{"city": "Paris"}, {"city": "Tokyo"}]


def test_chat_stream_tool_call_deltas_look_like_the_real_api(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m",
        messages=USER_WEATHER,
        tools=[WEATHER_TOOL],
        stream=True,
        extra_headers={"x-fake-interleave-tools": "1"},
    )
    deltas = [d for chunk in stream for choice in chunk.choices for d in choice.delta.tool_calls or []]

    openings = [d for d in deltas if d.id is not None]
    assert [(d.index, d.type, d.function and d.function.name) for d in openings] == [
        (0, "function", "get_weather"),
        (1, "function", "get_weather"),
    ]
    assert all(d.function is not None and d.function.arguments == "" for d in openings)
    fragments = [d for d in deltas if d.id is None]
    assert all(d.type is None and d.function is not None and d.function.name is None for d in fragments)
    assert [d.index for d in fragments[:4]] == [0, 1, 0, 1]
    arguments = {0: "", 1: ""}
    for delta in fragments:
        assert delta.function is not None
        arguments[delta.index] += delta.function.arguments or ""
    assert json.loads(arguments[0]) == {"city": "Paris"}
    assert json.loads(arguments[1]) == {"city": "Tokyo"}


def test_stream_disconnect_after_makes_iteration_raise(client: openai.OpenAI) -> None:
    received = []
    stream = client.chat.completions.create(
        model="m",
        messages=_user("hello there"),
        stream=True,
        extra_headers={"x-fake-disconnect-after": "3"},
    )
    # openai 1.x lets httpx's protocol error through; later SDKs wrap it in APIConnectionError.
    with pytest.raises(Exception) as raised:
        for chunk in stream:
            received.append(chunk)

    assert not isinstance(raised.value, StopIteration)
    assert len(received) == 3


def test_non_streamed_disconnect_raises_connection_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(
            model="m", messages=_user("x"), extra_headers={"x-fake-disconnect-after": "0"}
        )


# ---- legacy completions, embeddings, responses -------------------------------------------------------


def test_legacy_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say hi", n=2)

    assert completion.object == "text_completion"
    assert [(c.index, c.text) for c in completion.choices] == [(0, "Echo: say hi"), (1, "Echo: say hi [1]")]
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 2 + 7


def test_legacy_completions_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.completions.create(
            model="m", prompt="say hi", stream=True, stream_options={"include_usage": True}
        )
    )

    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Echo: say hi"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_embeddings(client: openai.OpenAI) -> None:
    single = client.embeddings.create(model="text-embedding-3-small", input="hello world")
    batch = client.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "bye"], encoding_format="float"
    )
    wide = client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=16)

    assert single.object == "list"
    assert len(single.data[0].embedding) == 8
    # The SDK asks for base64 by default and decodes it; the numbers must match the float encoding.
    assert single.data[0].embedding == pytest.approx(batch.data[0].embedding)
    assert [d.index for d in batch.data] == [0, 1]
    assert batch.data[0].embedding != batch.data[1].embedding
    assert batch.usage.prompt_tokens == batch.usage.total_tokens == 3
    assert len(wide.data[0].embedding) == 16


def test_responses(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o", input="hi you", instructions="be kind")

    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == "gpt-4o"
    assert response.output_text == "Echo: hi you"
    assert response.usage is not None
    assert response.usage.input_tokens == 4
    assert response.usage.output_tokens == 3
    assert response.usage.total_tokens == 7
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0


def test_responses_stream_events(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(model="gpt-4o", input=[{"role": "user", "content": "stream me"}], stream=True)
    )

    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 5
    assert "".join(d.delta for d in deltas) == "Echo: stream me"
    assert "response.output_text.done" in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed: Any = events[-1]
    assert completed.response.output_text == "Echo: stream me"


def test_responses_stream_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4o", input="helper") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()

    assert final.output_text == "Echo: helper"
    assert final.status == "completed"


# ---- errors, delays, server life ---------------------------------------------------------------------


def test_fail_next_429_raises_rate_limit_error_with_request_id(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    server.fail_next(status=429, times=2, retry_after=2, message="slow down")

    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model="m", messages=_user("x"))
        error = raised.value
        assert error.status_code == 429
        assert error.request_id is not None and error.request_id.startswith("req_")
        assert error.request_id == server.requests[-1].request_id
        assert error.response.headers["retry-after"] == "2"
        assert error.body == {
            "message": "slow down",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    assert client.chat.completions.create(model="m", messages=_user("x")).choices[0].message.content


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_x_fake_status_fails_one_request(
    client: openai.OpenAI, status: int, error_type: type[openai.APIStatusError]
) -> None:
    with pytest.raises(error_type) as raised:
        client.embeddings.create(model="e", input="x", extra_headers={"x-fake-status": str(status)})

    assert raised.value.status_code == status
    assert client.embeddings.create(model="e", input="x").data


def test_unknown_path_is_an_openai_style_404(server: FakeOpenAI) -> None:
    request = urllib.request.Request(server.base_url + "/nope", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)

    assert raised.value.code == 404
    assert raised.value.headers["x-request-id"].startswith("req_")
    body = json.loads(raised.value.read())
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] == "Invalid URL (POST /v1/nope)"


def test_missing_model_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.post("/chat/completions", body={"messages": _user("x")}, cast_to=object)


def test_delay_slows_replies_without_blocking_others(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.delay = 0.15
    started = time.monotonic()
    client.chat.completions.create(model="m", messages=_user("slow"))
    assert time.monotonic() - started >= 0.15
    server.delay = 0.0

    slow_done = threading.Event()

    def slow() -> None:
        client.chat.completions.create(
            model="m", messages=_user("slow"), extra_headers={"x-fake-delay": "0.4"}
        )
        slow_done.set()

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.05)
    fast_started = time.monotonic()
    client.chat.completions.create(model="m", messages=_user("fast"))
    assert time.monotonic() - fast_started < 0.25
    assert not slow_done.is_set()
    worker.join(5)
    assert slow_done.is_set()


def test_delay_beyond_the_client_timeout_raises_timeout(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="m", messages=_user("x"), timeout=0.1, extra_headers={"x-fake-delay": "2"}
        )


def test_stop_leaves_no_threads_and_restart_keeps_the_port() -> None:
    before = set(threading.enumerate())
    server = FakeOpenAI().start()
    base_url = server.base_url
    sdk = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    # The SDK keeps this connection alive; stop() must still end its handler thread.
    sdk.chat.completions.create(model="m", messages=_user("x"))
    server.stop()
    assert set(threading.enumerate()) - before == set()

    server.start()
    try:
        assert server.base_url == base_url
        assert sdk.chat.completions.create(model="m", messages=_user("again")).choices[0].message.content
    finally:
        sdk.close()
        server.stop()
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(RuntimeError):
        _ = server.base_url


# ---- async client ------------------------------------------------------------------------------------


async def test_async_client_chat_stream_and_responses(server: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as sdk:
        completion = await sdk.chat.completions.create(model="m", messages=_user("async hi"))
        assert completion.choices[0].message.content == "Echo: async hi"

        stream = await sdk.chat.completions.create(
            model="m", messages=USER_WEATHER, tools=[WEATHER_TOOL], stream=True
        )
        assert isinstance(stream, openai.AsyncStream)
        arguments: dict[int, str] = {}
        async for chunk in stream:
            for delta in chunk.choices[0].delta.tool_calls or []:
                assert delta.function is not None
                arguments[delta.index] = arguments.get(delta.index, "") + (delta.function.arguments or "")
        assert {i: json.loads(a) for i, a in arguments.items()} == {
            0: {"city": "Paris"},
            1: {"city": "Tokyo"},
        }

        events = [e async for e in await sdk.responses.create(model="gpt-4o", input="hey", stream=True)]
        assert events[-1].type == "response.completed"

        server.fail_next(429)
        with pytest.raises(openai.RateLimitError):
            await sdk.embeddings.create(model="e", input="x")


async def test_many_simultaneous_connections_are_all_served(server: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as sdk:

        async def one(i: int) -> str | None:
            completion = await sdk.chat.completions.create(model="m", messages=_user(f"task {i}"))
            return completion.choices[0].message.content

        answers = await asyncio.gather(*(one(i) for i in range(60)))

    assert answers == [f"Echo: task {i}" for i in range(60)]
