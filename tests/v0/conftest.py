"""Fixtures for openai 0.28 (the module-level API); these tests run only where openai < 1 is installed.

Run them with `pytest tests/v0 --confcutdir=tests/v0` in an environment with `openai==0.28.1`:
nothing here (or in what it imports) may need openai >= 1, and the parent conftest is not loaded.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..helpers import providers


def _openai_major() -> int | None:
    try:
        return int(importlib.metadata.version("openai").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


# Under openai >= 1 (the default test run) this directory is not collected at all.
if _openai_major() != 0:
    collect_ignore_glob = ["test_*.py"]


OPENAI_KEY = "sk-test-fake-openai-key-0123456789"


@pytest.fixture
def fake_openai() -> Iterator[Any]:
    from neatlogs._testing.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def api(fake_openai: Any) -> Iterator[Any]:
    """The `openai` module pointed at the fake server (module-wide settings restored afterwards)."""
    import openai

    saved = openai.api_base, openai.api_key
    openai.api_base, openai.api_key = fake_openai.base_url, OPENAI_KEY
    yield openai
    openai.api_base, openai.api_key = saved


@pytest.fixture
def make_provider() -> Iterator[Callable[..., Any]]:
    """Build overridden providers (otel off unless asked) and always undo them."""
    from neatlogs.openai import OpenAIProvider

    yield from providers(OpenAIProvider)


@pytest.fixture
def provider(make_provider: Callable[..., Any]) -> Any:
    return make_provider(trace_id="test-trace", tags=["test"])
