"""Patching is class-level, idempotent and exactly reversible; the tracker finds SDKs imported later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.resources import AsyncCompletions, Completions
from openai.resources.chat import AsyncCompletions as AsyncChatCompletions
from openai.resources.chat import Completions as ChatCompletions

from neatlogs.llm import LLMTracker
from neatlogs.openai import OpenAIProvider

from .conftest import OPENAI_KEY

HI = [{"role": "user", "content": "hi"}]
PATCHED = [ChatCompletions, AsyncChatCompletions, Completions, AsyncCompletions]


def _originals() -> list[Any]:
    return [cls.__dict__["create"] for cls in PATCHED]


def test_undo_override_restores_the_identical_functions(make_provider: Callable[..., OpenAIProvider]) -> None:
    before = _originals()
    provider = make_provider()
    assert all(now is not then for now, then in zip(_originals(), before, strict=True))
    provider.undo_override()
    assert all(now is then for now, then in zip(_originals(), before, strict=True))


def test_override_twice_records_once(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    provider.override()
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert len(provider.get_conversation_history()) == 1


def test_clients_created_before_override_are_traced(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # creates the resource objects
    provider = make_provider()
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert len(provider.get_conversation_history()) == 1


def test_nothing_is_recorded_after_undo(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    provider.undo_override()
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert provider.get_conversation_history() == []


def test_a_provider_bound_to_one_client_ignores_others(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, fake_openai: Any
) -> None:
    other = openai.OpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=0)
    only_client = make_provider(client=client)
    everything = make_provider()
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    other.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert len(only_client.get_conversation_history()) == 1
    assert len(everything.get_conversation_history()) == 2


def test_two_providers_each_keep_their_records_and_undo_independently(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    first, second = make_provider(trace_id="first"), make_provider(trace_id="second")
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    first.undo_override()
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert [r["trace_id"] for r in first.get_conversation_history()] == ["first"]
    assert [r["trace_id"] for r in second.get_conversation_history()] == ["second", "second"]


def test_tracker_traces_openai_and_collects_its_records(client: openai.OpenAI) -> None:
    tracker = LLMTracker(tags=["production"], otel=False)
    tracker.override_api()
    tracker.override_api()
    try:
        tracker.add_tags(["openai", "production"])
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    finally:
        tracker.stop_instrumenting()
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    (record,) = tracker.get_conversation_history()
    assert record["tags"] == ["production", "openai"]
    assert record["trace_id"] == tracker.trace_id
    assert ChatCompletions.__dict__["create"].__class__.__name__ == "function"


def test_tracker_can_restart_after_stop(client: openai.OpenAI) -> None:
    tracker = LLMTracker(otel=False)
    tracker.override_api()
    tracker.stop_instrumenting()
    tracker.override_api()
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    finally:
        tracker.stop_instrumenting()

    assert len(tracker.get_conversation_history()) == 1


def test_override_api_before_openai_is_imported_still_traces_it(fake_openai: Any) -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        from neatlogs.llm import LLMTracker
        tracker = LLMTracker(trace_id="late-import", otel=False)
        tracker.override_api()
        assert "openai" not in sys.modules
        import openai
        client = openai.OpenAI(base_url={fake_openai.base_url!r}, api_key="sk-x", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "late"}}])
        print(json.dumps(tracker.get_conversation_history()))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEATLOGS_")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    (record,) = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["trace_id"] == "late-import" and record["prompt"][0]["content"] == "late"


def test_override_without_openai_installed_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai now raises ImportError
    provider = OpenAIProvider(otel=False)
    with pytest.raises(ImportError, match="pip install openai"):
        provider.override()
