"""Anthropic fixtures: a real loopback fake Anthropic API, SDK clients on it, providers that clean up."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import anthropic
import pytest

from neatlogs._testing.fake_anthropic import FakeAnthropic
from neatlogs.anthropic import AnthropicProvider

from ..helpers import providers

ANTHROPIC_KEY = "sk-ant-api03-test-fake-anthropic-key-0123456789"


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def claude(fake_anthropic: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    sdk = anthropic.Anthropic(base_url=fake_anthropic.url, api_key=ANTHROPIC_KEY, max_retries=0)
    yield sdk
    sdk.close()


@pytest.fixture
def async_claude(fake_anthropic: FakeAnthropic) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key=ANTHROPIC_KEY, max_retries=0)


@pytest.fixture
def make_anthropic() -> Iterator[Callable[..., AnthropicProvider]]:
    """Build overridden providers (otel off unless asked) and always undo them."""
    yield from providers(AnthropicProvider)


@pytest.fixture
def traced(make_anthropic: Callable[..., AnthropicProvider]) -> AnthropicProvider:
    return make_anthropic(trace_id="claude-trace", tags=["test"])
