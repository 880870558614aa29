"""Non-streamed Claude calls through the real anthropic SDK on loopback: what returns, raises, is recorded."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from typing import Any

import anthropic
import pydantic
import pytest
import wrapt

import neatlogs
from neatlogs._testing.fake_anthropic import WEATHER_TOOL, FakeAnthropic
from neatlogs.anthropic import AnthropicProvider
from neatlogs.llm import LLMTracker

from ..helpers import assert_contract
from .conftest import ANTHROPIC_KEY

MODEL = "claude-sonnet-5-5"
HELLO: Any = [{"role": "user", "content": "hello there claude"}]


def _ask(client: anthropic.Anthropic, **kwargs: Any) -> Any:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 200)
    kwargs.setdefault("messages", HELLO)
    return client.messages.create(**kwargs)


def test_a_plain_call_returns_the_sdk_message_and_records_the_contract_fields(
    traced: AnthropicProvider, claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    message = _ask(claude, system="Answer briefly.", stop_sequences=["END"])

    assert type(message) is anthropic.types.Message
    (record,) = traced.get_conversation_history()
    assert_contract(record)
    assert (record["provider"], record["operation"], record["model"]) == ("anthropic", "chat", MODEL)
    assert record["prompt"] == [{"role": "system", "content": "Answer briefly."}, *HELLO]
    assert record["completion"]["content"] == message.content[0].text == "Echo: hello there claude"
    assert record["choices"] == [record["completion"]]
    assert record["finish_reason"] == "end_turn" and record["response_id"] == message.id
    assert record["usage"] == {
        "prompt_tokens": message.usage.input_tokens,
        "completion_tokens": message.usage.output_tokens,
        "total_tokens": message.usage.input_tokens + message.usage.output_tokens,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
    }
    assert record["request_id"] == fake_anthropic.requests[0].request_id == message._request_id
    assert record["trace_id"] == "claude-trace" and record["tags"] == ["test"]
    assert record["request"]["stop_sequences"] == ["END"] and record["stream"] is False
    assert ANTHROPIC_KEY not in json.dumps(record)


def test_tool_use_and_thinking_are_merged_into_the_completion(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    message = _ask(
        claude,
        messages=[{"role": "user", "content": "What is the weather in Paris and Tokyo?"}],
        tools=[WEATHER_TOOL],
        thinking={"type": "enabled", "budget_tokens": 100},
    )

    (record,) = traced.get_conversation_history()
    uses = [block for block in message.content if block.type == "tool_use"]
    assert record["finish_reason"] == message.stop_reason == "tool_use"
    assert record["completion"]["thinking"] == "Thinking about: What is the weather in Paris and Tokyo?"
    assert record["completion"]["content"] is None
    assert record["completion"]["tool_calls"] == [
        {
            "id": use.id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(use.input)},
        }
        for use in uses
    ]
    assert [json.loads(c["function"]["arguments"]) for c in record["completion"]["tool_calls"]] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
    ]


def test_cache_tokens_count_in_the_prompt_and_each_part_is_priced_at_its_own_rate(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    words = " ".join(["word"] * 60)
    message = _ask(
        claude,
        messages=[{"role": "user", "content": words}],
        extra_headers={"x-fake-cache-read": "30", "x-fake-cache-write": "20"},
    )

    (record,) = traced.get_conversation_history()
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        10,
        30,
        20,
    )
    assert record["usage"]["prompt_tokens"] == 60
    assert record["usage"]["cache_read_tokens"] == 30 and record["usage"]["cache_write_tokens"] == 20
    # claude-sonnet-5-5: input $2, cache read $0.10, cache write $2.50, output $10 per million tokens
    expected = (10 * 2.0 + 30 * 0.1 + 20 * 2.5 + usage.output_tokens * 10.0) / 1e6
    assert record["cost_usd"] == pytest.approx(expected)


def test_dated_model_names_are_priced_like_their_model(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    message = _ask(claude, model="claude-haiku-4-5-20251001")

    (record,) = traced.get_conversation_history()
    expected = (message.usage.input_tokens * 1.0 + message.usage.output_tokens * 5.0) / 1e6
    assert record["cost_usd"] == pytest.approx(expected)


async def test_an_async_call_is_recorded_the_same(
    traced: AnthropicProvider, async_claude: anthropic.AsyncAnthropic
) -> None:
    message = await async_claude.messages.create(model=MODEL, max_tokens=50, messages=HELLO)

    (record,) = traced.get_conversation_history()
    assert isinstance(message, anthropic.types.Message)
    assert record["completion"]["content"] == "Echo: hello there claude" and record["status"] == "success"


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_api_errors_reach_the_caller_unchanged_and_are_recorded_with_status_and_request_id(
    traced: AnthropicProvider,
    claude: anthropic.Anthropic,
    fake_anthropic: FakeAnthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    fake_anthropic.fail_next(status=status, retry_after=1)
    with pytest.raises(error_class) as raised:
        _ask(claude)

    (record,) = traced.get_conversation_history()
    assert_contract(record)
    assert record["status"] == "error" and record["completion"] is None
    assert record["error"]["type"] == error_class.__name__ and record["error"]["status_code"] == status
    assert record["error"]["request_id"] == raised.value.request_id == fake_anthropic.requests[0].request_id
    assert error_type in record["error"]["message"]
    assert record["rate_limit"]["limit_requests"] == 4000


def test_a_timeout_is_re_raised_and_recorded(
    traced: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    client = anthropic.Anthropic(
        base_url=fake_anthropic.url, api_key=ANTHROPIC_KEY, max_retries=0, timeout=0.2
    )
    with pytest.raises(anthropic.APITimeoutError):
        _ask(client, extra_headers={"x-fake-delay": "1"})

    (record,) = traced.get_conversation_history()
    assert record["status"] == "error" and record["error"]["type"] == "APITimeoutError"


def test_parse_returns_the_parsed_message_and_records_the_json_answer(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    class City(pydantic.BaseModel):
        name: str

    parsed = claude.messages.parse(model=MODEL, max_tokens=100, messages=HELLO, output_format=City)

    assert parsed.parsed_output == City(name="Echo: hello there claude")
    (record,) = traced.get_conversation_history()
    assert json.loads(record["completion"]["content"]) == {"name": "Echo: hello there claude"}
    assert record["operation"] == "chat" and record["request"]["output_format"] == "City"


def test_count_tokens_is_its_own_operation_with_the_count_and_no_cost(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    counted = claude.messages.count_tokens(model=MODEL, system="be brief", messages=HELLO)

    (record,) = traced.get_conversation_history()
    assert_contract(record)
    assert record["operation"] == "count_tokens" and record["input_tokens"] == counted.input_tokens == 5
    assert record["prompt"][0] == {"role": "system", "content": "be brief"}
    assert record["usage"] is None and record["cost_usd"] is None


def test_beta_messages_are_traced_the_same(traced: AnthropicProvider, claude: anthropic.Anthropic) -> None:
    message = claude.beta.messages.create(
        model=MODEL, max_tokens=50, messages=HELLO, betas=["some-beta-2026-01-01"], tools=[WEATHER_TOOL]
    )
    counted = claude.beta.messages.count_tokens(model=MODEL, messages=HELLO, betas=["some-beta-2026-01-01"])

    chat, count = traced.get_conversation_history()
    assert isinstance(message, anthropic.types.beta.BetaMessage)
    assert chat["completion"]["content"] == "Echo: hello there claude"
    assert chat["request"]["betas"] == ["some-beta-2026-01-01"]
    assert count["operation"] == "count_tokens" and count["input_tokens"] == counted.input_tokens


def test_raw_responses_are_returned_as_the_sdk_gives_them_and_recorded_with_headers(
    traced: AnthropicProvider, claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=HELLO)
    message = raw.parse()
    with claude.messages.with_streaming_response.create(
        model=MODEL, max_tokens=50, messages=HELLO
    ) as streamed:
        streamed_message = streamed.parse()
    counted = claude.messages.with_raw_response.count_tokens(model=MODEL, messages=HELLO).parse()

    assert isinstance(raw, anthropic.APIResponse) and isinstance(streamed, anthropic.APIResponse)
    first, second, count = traced.get_conversation_history()
    assert first["completion"]["content"] == message.content[0].text
    assert second["completion"]["content"] == streamed_message.content[0].text
    assert first["request_id"] == fake_anthropic.requests[0].request_id
    assert first["rate_limit"]["limit_requests"] == 4000 and first["rate_limit"]["remaining_requests"] == 3999
    assert first["rate_limit"]["reset_requests"].endswith("Z")
    assert count["input_tokens"] == counted.input_tokens


def test_handle_error_records_a_failed_call_known_only_by_its_kwargs(
    traced: AnthropicProvider,
) -> None:
    error = ValueError("the app gave up")
    traced.handle_error(error, {"model": MODEL, "max_tokens": 10, "messages": HELLO, "system": "x"})
    traced.handle_error(error, {"model": MODEL, "messages": HELLO})

    chat, count = traced.get_conversation_history()
    assert chat["operation"] == "chat" and chat["prompt"][0] == {"role": "system", "content": "x"}
    assert count["operation"] == "count_tokens"
    assert chat["status"] == "error" and chat["error"]["type"] == "ValueError"


def test_undo_override_gives_the_sdk_its_own_functions_back(claude: anthropic.Anthropic) -> None:
    messages_class = type(claude.messages)
    originals = {name: vars(messages_class)[name] for name in ("create", "stream", "parse", "count_tokens")}
    provider = AnthropicProvider(otel=False)
    provider.override()
    assert all(vars(messages_class)[name] is not original for name, original in originals.items())
    provider.undo_override()

    assert {name: vars(messages_class)[name] for name in originals} == originals


def test_a_provider_given_a_client_records_only_that_clients_calls(
    make_anthropic: Callable[..., AnthropicProvider],
    claude: anthropic.Anthropic,
    fake_anthropic: FakeAnthropic,
) -> None:
    other = anthropic.Anthropic(base_url=fake_anthropic.url, api_key=ANTHROPIC_KEY, max_retries=0)
    provider = make_anthropic(client=claude)
    _ask(claude)
    _ask(other)

    assert len(provider.get_conversation_history()) == 1
    with pytest.raises(TypeError, match="anthropic client"):
        AnthropicProvider(client=object(), otel=False)


def test_the_tracker_finds_anthropic_and_traces_it_alongside_openai(
    claude: anthropic.Anthropic,
) -> None:
    tracker = LLMTracker(trace_id="both", otel=False)
    tracker.override_api()
    try:
        _ask(claude)
    finally:
        tracker.stop_instrumenting()

    (record,) = tracker.get_conversation_history()
    assert record["provider"] == "anthropic" and record["trace_id"] == "both"


def test_init_traces_anthropic_when_it_is_imported_only_later(
    tmp_path: Any, fake_anthropic: FakeAnthropic
) -> None:
    import subprocess

    script = f"""
import sys, neatlogs
tracker = neatlogs.init(otel=False)
assert "anthropic" not in sys.modules
import anthropic
client = anthropic.Anthropic(base_url={fake_anthropic.url!r}, api_key="sk-ant-x", max_retries=0)
client.messages.create(model="claude-opus-5-5", max_tokens=20, messages=[{{"role": "user", "content": "hi"}}])
(record,) = neatlogs.get_conversation_history()
print(record["provider"], record["completion"]["content"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "anthropic Echo: hi"


def test_the_public_module_imports_no_sdk() -> None:
    import subprocess

    code = "import sys, neatlogs.anthropic; print('anthropic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_bedrock_and_vertex_clients_share_the_traced_classes() -> None:
    bedrock = anthropic.AnthropicBedrock(aws_region="us-east-1", aws_access_key="a", aws_secret_key="b")
    vertex = anthropic.AnthropicVertex(region="us-east5", project_id="p", access_token="t")

    assert type(bedrock.messages) is anthropic.resources.messages.Messages
    assert type(vertex.messages) is anthropic.resources.messages.Messages
    provider = AnthropicProvider(otel=False)
    provider.override()
    try:  # their beta resources hold copies of the first-party methods: traced too
        assert all(
            isinstance(vars(type(client.beta.messages))["create"], wrapt.FunctionWrapper)
            for client in (bedrock, vertex)
        )
    finally:
        provider.undo_override()
    assert not isinstance(vars(type(bedrock.beta.messages))["create"], wrapt.FunctionWrapper)


def test_usage_statistics_count_anthropic_tokens_cache_reads_cost_and_rate_limits(
    traced: AnthropicProvider, claude: anthropic.Anthropic
) -> None:
    model = f"claude-stats-{uuid.uuid4().hex[:8]}"
    neatlogs.set_prices({model: {"input": 1.0, "cached_input": 0.1, "output": 5.0, "cache_write": 1.25}})
    try:
        plain = _ask(
            claude,
            model=model,
            messages=[{"role": "user", "content": "one two three four"}],
            extra_headers={"x-fake-cache-read": "2", "x-fake-cache-write": "1"},
        )
        stream = _ask(claude, model=model, stream=True)
        list(stream)
        usage = neatlogs.stats()["usage"]["by_model"][model]
    finally:
        neatlogs.set_prices({model: None})

    streamed = traced.get_conversation_history()[1]["usage"]
    assert usage["calls"] == 2
    assert usage["prompt_tokens"] == 4 + streamed["prompt_tokens"]
    assert usage["cached_tokens"] == 2
    assert usage["completion_tokens"] == plain.usage.output_tokens + streamed["completion_tokens"]
    expected = (1 * 1.0 + 2 * 0.1 + 1 * 1.25 + plain.usage.output_tokens * 5.0) / 1e6 + (
        streamed["prompt_tokens"] * 1.0 + streamed["completion_tokens"] * 5.0
    ) / 1e6
    assert usage["cost_usd"] == pytest.approx(expected)
    assert usage["rate_limit_remaining"]["requests"] == 3998  # the stream's headers
