"""Failed calls are recorded and the caller gets the very same exception; neatlogs' own bugs never surface."""

from __future__ import annotations

import logging
import socket
from typing import Any

import openai
import pytest

import neatlogs.providers.openai.patch as openai_patch
from neatlogs.openai import OpenAIProvider

from .conftest import OPENAI_KEY

HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, openai.RateLimitError), (500, openai.InternalServerError), (400, openai.BadRequestError)],
)
def test_api_errors_are_recorded_and_reraised_unchanged(
    provider: OpenAIProvider, client: openai.OpenAI, fake_openai: Any, status: int, error_class: type
) -> None:
    fake_openai.fail_next(status=status)
    with pytest.raises(error_class) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    (record,) = provider.get_conversation_history()
    assert record["status"] == "error"
    assert record["error"]["type"] == error_class.__name__
    assert record["error"]["status_code"] == status
    assert record["error"]["request_id"] == raised.value.request_id and raised.value.request_id
    assert record["error"]["message"]
    assert record["completion"] is None and record["prompt"] == HI


async def test_async_api_error_is_recorded(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI, fake_openai: Any
) -> None:
    fake_openai.fail_next(status=429)
    with pytest.raises(openai.RateLimitError):
        await async_client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    (record,) = provider.get_conversation_history()
    assert record["error"]["type"] == "RateLimitError" and record["error"]["status_code"] == 429


def test_the_raised_exception_is_the_sdks_own_object(
    provider: OpenAIProvider, client: openai.OpenAI, fake_openai: Any
) -> None:
    fake_openai.fail_next(status=500)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    except openai.InternalServerError as exc:
        # Re-raised by a bare `raise`: the traceback still ends inside the SDK, not in neatlogs.
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        assert "openai" in frames[-1] and "neatlogs" not in frames[-1]
    else:
        pytest.fail("expected InternalServerError")


def test_timeout_is_recorded(provider: OpenAIProvider, fake_openai: Any) -> None:
    slow = openai.OpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        slow.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers={"x-fake-delay": "2"})

    (record,) = provider.get_conversation_history()
    assert record["status"] == "error" and record["error"]["type"] == "APITimeoutError"


def test_connection_error_is_recorded(provider: OpenAIProvider) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=OPENAI_KEY, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        dead.chat.completions.create(model="gpt-4o-mini", messages=HI)

    (record,) = provider.get_conversation_history()
    assert record["error"]["type"] == "APIConnectionError"
    assert record["server_port"] == port


def test_handle_error_records_a_failure_and_never_raises(provider: OpenAIProvider) -> None:
    provider.handle_error(ValueError("boom"), {"model": "gpt-4o", "messages": HI})
    provider.handle_error(RuntimeError("odd input"), None)
    provider.handle_error(RuntimeError("odd kwargs"), {"messages": object(), "model": 3})

    records = provider.get_conversation_history()
    assert [r["error"]["type"] for r in records] == ["ValueError", "RuntimeError", "RuntimeError"]
    assert records[0]["status"] == "error" and records[0]["model"] == "gpt-4o"
    assert records[0]["error"]["message"] == "boom"


def test_a_bug_inside_neatlogs_is_logged_and_never_reaches_the_caller(
    provider: OpenAIProvider,
    client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_usage(usage: Any) -> Any:
        raise RuntimeError("bug in neatlogs")

    monkeypatch.setattr(openai_patch, "_usage", broken_usage)
    with caplog.at_level(logging.WARNING, logger="neatlogs"):
        result = client.chat.completions.create(model="gpt-4o-mini", messages=HI)
        (record,) = provider.get_conversation_history()

    assert result.choices[0].message.content
    assert record["status"] == "success" and record["trace_id"] == "test-trace"
    assert any(r.name == "neatlogs" and "internal error" in r.getMessage() for r in caplog.records)


def test_error_messages_never_carry_a_key(provider: OpenAIProvider) -> None:
    provider.handle_error(
        openai.OpenAIError(f"Incorrect API key provided: {OPENAI_KEY}"), {"model": "gpt-4o", "messages": HI}
    )

    (record,) = provider.get_conversation_history()
    assert OPENAI_KEY not in record["error"]["message"]
    assert "[REDACTED]" in record["error"]["message"]


@pytest.mark.parametrize(
    ("kwargs", "operation"),
    [
        ({"model": "gpt-4o", "messages": HI}, "chat"),
        ({"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}, "completion"),
        ({"model": "gpt-4.1", "input": "hi"}, "responses"),
        ({"model": "text-embedding-3-small", "input": ["a", "b"]}, "embeddings"),
    ],
)
def test_handle_error_tells_the_api_from_the_kwargs(
    provider: OpenAIProvider, kwargs: dict[str, Any], operation: str
) -> None:
    provider.handle_error(RuntimeError("failed"), kwargs)

    (record,) = provider.get_conversation_history()
    assert (
        record["operation"] == operation
        and record["status"] == "error"
        and record["model"] == kwargs["model"]
    )
