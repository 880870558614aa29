"""Shared fixtures: a real loopback fake OpenAI server, SDK clients pointed at it, providers that clean up."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import openai
import pytest

from neatlogs._testing.fake_openai import FakeOpenAI
from neatlogs.openai import OpenAIProvider

from .helpers import providers

OPENAI_KEY = "sk-test-fake-openai-key-0123456789"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake_openai: FakeOpenAI) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=0)
    yield sdk
    sdk.close()


@pytest.fixture
def async_client(fake_openai: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=0)


@pytest.fixture
def make_provider() -> Iterator[Callable[..., OpenAIProvider]]:
    """Build overridden providers (otel off unless asked) and always undo them."""
    yield from providers(OpenAIProvider)


@pytest.fixture
def provider(make_provider: Callable[..., OpenAIProvider]) -> OpenAIProvider:
    return make_provider(trace_id="test-trace", tags=["test"])
