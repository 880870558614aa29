"""LiteLLM calls are traced as one `litellm` record each, even when LiteLLM calls a traced OpenAI SDK.

LiteLLM talks to the fake OpenAI server through the real OpenAI SDK (`model="openai/..."`).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from neatlogs.litellm import LiteLLMProvider
from neatlogs.llm import LLMTracker
from neatlogs.openai import OpenAIProvider

from .helpers import assert_contract, providers

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("litellm") is None, reason="litellm is not installed"
)

MODEL = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "hello there"}]
LONG = [{"role": "user", "content": "stream me a long friendly greeting please"}]
LITELLM_KEY = "sk-litellm-call-key-0123456789"


@pytest.fixture(scope="session")
def litellm() -> Any:
    # Offline: the bundled model cost map instead of a download at import (set before the first import).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False  # older releases only; harmless elsewhere
    litellm.suppress_debug_info = True
    return litellm


@pytest.fixture
def call(litellm: Any, fake_openai: Any) -> Callable[..., Any]:
    """`litellm.completion` against the fake OpenAI server, no retries."""

    def completion(*args: Any, **kwargs: Any) -> Any:
        if not args:  # positional model and messages are given together
            kwargs.setdefault("model", MODEL)
            kwargs.setdefault("messages", HI)
        return litellm.completion(*args, **_connection(fake_openai, kwargs))

    return completion


@pytest.fixture
def acall(litellm: Any, fake_openai: Any) -> Callable[..., Any]:
    """`litellm.acompletion` against the fake OpenAI server, no retries."""

    def acompletion(**kwargs: Any) -> Any:
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("messages", HI)
        return litellm.acompletion(**_connection(fake_openai, kwargs))

    return acompletion


def _connection(fake_openai: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "api_base": fake_openai.base_url,
        "api_key": LITELLM_KEY,
        "num_retries": 0,
        "max_retries": 0,
        **kwargs,
    }


@pytest.fixture
def make_litellm_provider(litellm: Any) -> Iterator[Callable[..., LiteLLMProvider]]:
    yield from providers(LiteLLMProvider)


@pytest.fixture
def litellm_provider(make_litellm_provider: Callable[..., LiteLLMProvider]) -> LiteLLMProvider:
    return make_litellm_provider(trace_id="litellm-trace", tags=["litellm"])


@pytest.fixture
def tracker(litellm: Any) -> Iterator[LLMTracker]:
    """A tracker tracing both the OpenAI SDK and LiteLLM."""
    tracked = LLMTracker(otel=False)
    tracked.override_api()
    yield tracked
    tracked.stop_instrumenting()


def _content(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# ---- finished responses ----


def test_completion_returns_litellms_response_and_records_provider_model_usage_and_costs(
    litellm_provider: LiteLLMProvider, call: Callable[..., Any], litellm: Any, fake_openai: Any
) -> None:
    response = call(temperature=0.2)

    assert isinstance(response, litellm.ModelResponse)
    (record,) = litellm_provider.get_conversation_history()
    assert_contract(record)
    assert record["provider"] == "litellm" and record["operation"] == "chat" and record["status"] == "success"
    assert record["trace_id"] == "litellm-trace" and record["tags"] == ["litellm"]
    assert record["model"] == MODEL and record["response_model"] == response.model == "gpt-4o-mini"
    assert record["custom_llm_provider"] == record["provider_name"] == "openai"
    assert record["prompt"] == HI
    assert record["completion"]["content"] == response.choices[0].message.content == "Echo: hello there"
    assert record["usage"]["total_tokens"] == response.usage.total_tokens
    assert record["cost_usd"] is not None and record["cost_usd"] > 0
    assert record["litellm_cost_usd"] == response._hidden_params["response_cost"]
    assert record["request_id"] == fake_openai.requests[-1].request_id
    assert record["server_address"] == "127.0.0.1"
    assert record["request"]["temperature"] == 0.2
    assert "api_base" not in record["request"] and LITELLM_KEY not in json.dumps(record)


def test_positional_model_and_messages_are_recorded(
    litellm_provider: LiteLLMProvider, call: Callable[..., Any]
) -> None:
    call(MODEL, LONG)

    (record,) = litellm_provider.get_conversation_history()
    assert record["model"] == MODEL and record["prompt"] == LONG


async def test_acompletion_is_recorded(litellm_provider: LiteLLMProvider, acall: Callable[..., Any]) -> None:
    response = await acall()

    (record,) = litellm_provider.get_conversation_history()
    assert record["provider"] == "litellm" and record["status"] == "success"
    assert record["completion"]["content"] == response.choices[0].message.content


# ---- streams ----


def test_stream_stays_a_custom_stream_wrapper_and_records_merged_content(
    litellm_provider: LiteLLMProvider, call: Callable[..., Any], litellm: Any
) -> None:
    stream = call(messages=LONG, stream=True, stream_options={"include_usage": True})

    assert isinstance(stream, litellm.CustomStreamWrapper)
    chunks = list(stream)
    (record,) = litellm_provider.get_conversation_history()
    assert_contract(record)
    assert record["stream"] is True and record["status"] == "success"
    assert record["completion"]["content"] == _content(chunks) == "Echo: " + LONG[0]["content"]
    assert record["finish_reason"] == "stop" and record["usage"]["total_tokens"] > 0
    assert record["custom_llm_provider"] == "openai"
    assert 0 < record["ttft_ms"] <= record["duration_ms"]


async def test_async_stream_is_recorded_when_iterated_with_async_for(
    litellm_provider: LiteLLMProvider, acall: Callable[..., Any], litellm: Any
) -> None:
    stream = await acall(messages=LONG, stream=True)
    assert isinstance(stream, litellm.CustomStreamWrapper)
    chunks = [chunk async for chunk in stream]

    (record,) = litellm_provider.get_conversation_history()
    assert record["status"] == "success"
    assert record["completion"]["content"] == _content(chunks) == "Echo: " + LONG[0]["content"]


def test_a_stream_abandoned_after_an_early_break_is_recorded_once_as_incomplete(
    litellm_provider: LiteLLMProvider, call: Callable[..., Any]
) -> None:
    stream = call(messages=LONG, stream=True, extra_headers={"x-fake-chunks": "20"})
    for index, _ in enumerate(stream):
        if index == 2:
            break
    assert litellm_provider.get_conversation_history() == []
    if hasattr(stream, "close"):  # LiteLLM 1.110 and later
        stream.close()
        assert len(litellm_provider.get_conversation_history()) == 1
    del stream
    gc.collect()

    (record,) = litellm_provider.get_conversation_history()
    assert record["status"] == "incomplete"
    gc.collect()
    assert len(litellm_provider.get_conversation_history()) == 1


async def test_an_async_stream_closed_or_abandoned_early_is_recorded_once_as_incomplete(
    litellm_provider: LiteLLMProvider, acall: Callable[..., Any]
) -> None:
    stream = await acall(messages=LONG, stream=True, extra_headers={"x-fake-chunks": "20"})
    for _ in range(3):
        await stream.__anext__()
    if hasattr(stream, "aclose"):  # newer LiteLLM releases only
        await stream.aclose()
        assert len(litellm_provider.get_conversation_history()) == 1
    del stream
    gc.collect()

    (record,) = litellm_provider.get_conversation_history()
    assert record["status"] == "incomplete" and record["completion"]["content"]


def test_the_stream_proxy_lacks_what_the_wrapper_lacks(
    litellm_provider: LiteLLMProvider, call: Callable[..., Any], litellm: Any
) -> None:
    litellm_provider.undo_override()
    plain = call(stream=True)
    litellm_provider.override()
    traced = call(stream=True)

    for name in ("close", "aclose", "send", "throw", "asend", "athrow"):
        assert hasattr(traced, name) == hasattr(plain, name), name
    if _wrapper_is_a_context_manager(litellm):  # LiteLLM 1.110 and later: `with` closes the stream
        with plain as entered:
            assert entered is plain
        with traced as entered:
            assert entered is traced
    else:
        with pytest.raises(Exception) as untraced, plain:
            pass
        with pytest.raises(type(untraced.value)), traced:
            pass
        list(plain), list(traced)


def _wrapper_is_a_context_manager(litellm: Any) -> bool:
    # Asked of LiteLLM's class: the traced stream's type has `__enter__` always, failing where LiteLLM's does.
    wrapper = litellm.CustomStreamWrapper
    return hasattr(wrapper, "__enter__") and hasattr(wrapper, "__exit__")


def test_a_stream_left_inside_a_with_block_is_recorded_once_as_incomplete_and_a_finished_one_as_success(
    litellm_provider: LiteLLMProvider, call: Callable[..., Any], litellm: Any
) -> None:
    left = call(messages=LONG, stream=True, extra_headers={"x-fake-chunks": "20"})
    if not _wrapper_is_a_context_manager(litellm):  # before 1.110 `with` fails, as it does untraced
        with pytest.raises((TypeError, AttributeError)), left:  # AttributeError before Python 3.11
            pass
        list(left)
        (record,) = litellm_provider.get_conversation_history()
        assert record["status"] == "success"
        return
    with left:
        next(left), next(left)
    (record,) = litellm_provider.get_conversation_history()
    assert record["status"] == "incomplete" and record["completion"]["content"]

    with call(messages=LONG, stream=True) as finished:
        chunks = list(finished)
    del left, finished
    gc.collect()

    first, second = litellm_provider.get_conversation_history()
    assert first["status"] == "incomplete"
    assert second["status"] == "success" and second["completion"]["content"] == _content(chunks)


async def test_an_async_stream_left_inside_an_async_with_block_is_recorded_once_as_incomplete(
    litellm_provider: LiteLLMProvider, acall: Callable[..., Any], litellm: Any
) -> None:
    stream = await acall(messages=LONG, stream=True, extra_headers={"x-fake-chunks": "20"})
    if not hasattr(litellm.CustomStreamWrapper, "__aexit__"):  # before LiteLLM 1.110
        with pytest.raises((TypeError, AttributeError)):
            async with stream:
                pass
        [chunk async for chunk in stream]
        (record,) = litellm_provider.get_conversation_history()
        assert record["status"] == "success"
        return
    async with stream as entered:
        assert entered is stream
        for _ in range(3):
            await stream.__anext__()
    assert len(litellm_provider.get_conversation_history()) == 1
    del stream, entered
    gc.collect()

    (record,) = litellm_provider.get_conversation_history()
    assert record["status"] == "incomplete" and record["completion"]["content"]


# ---- one call, one record, with the OpenAI SDK traced too ----


@pytest.fixture
def sdk_model(litellm: Any) -> Iterator[str]:
    """A model of a LiteLLM custom provider that answers with the OpenAI SDK's `chat.completions.create`.

    LiteLLM 1.80's own `openai/` route calls the SDK's `create` (with_raw_response); 1.110's posts with
    the client's low-level `post()`, which neatlogs does not trace. This provider keeps an OpenAI SDK
    call underneath a LiteLLM call whatever LiteLLM's own route does.
    """
    import openai

    class OpenAISDKProvider(litellm.CustomLLM):  # type: ignore[misc]
        def completion(
            self, model: str, messages: list[Any], api_base: str, *args: Any, **kwargs: Any
        ) -> Any:
            client = openai.OpenAI(base_url=api_base, api_key=kwargs["api_key"], max_retries=0)
            response = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            return litellm.ModelResponse(**response.model_dump())

    before = litellm.custom_provider_map
    litellm.custom_provider_map = [{"provider": "sdk-underneath", "custom_handler": OpenAISDKProvider()}]
    # Not an OpenAI model name: LiteLLM 1.80 sends those to its OpenAI route, whatever the provider.
    yield "sdk-underneath/echo"
    litellm.custom_provider_map = before


@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
def test_with_openai_traced_too_a_litellm_call_makes_one_record(
    tracker: LLMTracker, call: Callable[..., Any], fake_openai: Any, stream: bool
) -> None:
    result = call(stream=stream)
    if stream:
        list(result)

    (record,) = tracker.get_conversation_history()
    assert record["provider"] == "litellm" and record["stream"] is stream
    assert record["completion"]["content"] == "Echo: hello there"
    assert len(fake_openai.requests) == 1


def test_with_openai_traced_too_a_litellm_call_that_calls_the_openai_sdk_makes_one_record(
    tracker: LLMTracker, call: Callable[..., Any], fake_openai: Any, sdk_model: str
) -> None:
    response = call(model=sdk_model)

    (record,) = tracker.get_conversation_history()
    assert record["provider"] == "litellm" and record["model"] == sdk_model
    assert record["completion"]["content"] == response.choices[0].message.content == "Echo: hello there"
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
async def test_with_openai_traced_too_a_litellm_async_call_makes_one_record(
    tracker: LLMTracker, acall: Callable[..., Any], fake_openai: Any, stream: bool
) -> None:
    result = await acall(stream=stream)
    if stream:
        [chunk async for chunk in result]

    (record,) = tracker.get_conversation_history()
    assert record["provider"] == "litellm" and record["stream"] is stream
    assert record["completion"]["content"] == "Echo: hello there"


def test_without_the_litellm_provider_the_openai_call_underneath_is_recorded(
    call: Callable[..., Any], sdk_model: str
) -> None:
    openai_only = OpenAIProvider(otel=False)
    openai_only.override()
    try:
        call(model=sdk_model)
    finally:
        openai_only.undo_override()

    (record,) = openai_only.get_conversation_history()
    assert record["provider"] == "openai" and record["model"] == "gpt-4o-mini"


# ---- errors ----


def test_an_error_is_raised_unchanged_and_recorded_with_status_and_provider(
    litellm_provider: LiteLLMProvider, call: Callable[..., Any], litellm: Any, fake_openai: Any
) -> None:
    litellm_provider.undo_override()
    fake_openai.fail_next(429)
    with pytest.raises(Exception) as untraced:
        call()
    litellm_provider.override()
    fake_openai.fail_next(429)
    with pytest.raises(type(untraced.value)) as traced:
        call()

    assert isinstance(traced.value, litellm.RateLimitError)
    (record,) = litellm_provider.get_conversation_history()
    assert_contract(record)
    assert record["status"] == "error" and record["error"]["type"] == "RateLimitError"
    assert record["error"]["status_code"] == 429
    assert record["custom_llm_provider"] == "openai"
    assert LITELLM_KEY not in json.dumps(record)


async def test_an_async_error_is_recorded(
    litellm_provider: LiteLLMProvider, acall: Callable[..., Any], litellm: Any, fake_openai: Any
) -> None:
    fake_openai.fail_next(500)
    with pytest.raises(litellm.InternalServerError):
        await acall()

    (record,) = litellm_provider.get_conversation_history()
    assert record["status"] == "error" and record["error"]["status_code"] == 500


def test_handle_error_records_a_failure_without_credentials(litellm_provider: LiteLLMProvider) -> None:
    kwargs = {
        "model": MODEL,
        "messages": HI,
        "api_key": LITELLM_KEY,
        "aws_secret_access_key": "aws-secret-value",
        "azure_ad_token": "azure-token-value",
        "max_tokens": 5,
    }
    litellm_provider.handle_error(RuntimeError("boom"), kwargs)

    (record,) = litellm_provider.get_conversation_history()
    assert record["status"] == "error" and record["error"]["type"] == "RuntimeError"
    assert record["request"] == {"model": MODEL, "messages": HI, "max_tokens": 5}


# ---- patching ----


def test_undo_override_restores_the_identical_functions(
    make_litellm_provider: Callable[..., LiteLLMProvider], litellm: Any
) -> None:
    before = litellm.completion, litellm.acompletion
    provider = make_litellm_provider()
    assert litellm.completion is not before[0] and litellm.acompletion is not before[1]
    provider.undo_override()

    assert (litellm.completion, litellm.acompletion) == before
    assert vars(litellm)["completion"] is before[0]


def test_a_client_filter_is_refused() -> None:
    with pytest.raises(TypeError, match="client must be None"):
        LiteLLMProvider(client=object(), otel=False)
