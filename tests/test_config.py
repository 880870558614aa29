"""Wrong arguments fail at construction with a message that names the argument and the fix."""

from __future__ import annotations

from typing import Any

import pytest

import neatlogs
from neatlogs.llm import LLMTracker
from neatlogs.openai import OpenAIProvider


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"trace_id": 42}, TypeError, "trace_id must be a str"),
        ({"trace_id": "  "}, ValueError, "trace_id must be a non-empty"),
        ({"tags": "production"}, TypeError, r"did you mean tags=\['production'\]"),
        ({"tags": {"env": "prod"}}, TypeError, "tags must be a list"),
        ({"tags": ["ok", {"nested": 1}]}, TypeError, r"tags\[1\] must be a string"),
        ({"tags": ["ok", ""]}, ValueError, r"tags\[1\] is empty"),
        ({"history_size": 0}, ValueError, "history_size must be a positive int"),
        ({"history_size": "10"}, TypeError, "history_size must be a positive int"),
        ({"otel": "yes"}, TypeError, "otel must be True or False"),
        ({"client": "not a client"}, TypeError, "client must be an openai.OpenAI"),
        ({"endpoint": "localhost:7077"}, ValueError, "endpoint"),
        ({"batch_sise": 10}, TypeError, "batch_sise"),
    ],
)
def test_bad_provider_arguments_are_rejected_with_a_clear_message(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        OpenAIProvider(**kwargs)


def test_scalar_tags_become_strings_and_duplicates_collapse() -> None:
    provider = OpenAIProvider(tags=["prod", 3, 2.5, True, "prod"], otel=False)
    assert provider.tags == ["prod", "3", "2.5", "True"]


def test_trace_id_defaults_to_a_fresh_hex_id() -> None:
    first, second = OpenAIProvider(otel=False), OpenAIProvider(otel=False)
    assert len(first.trace_id) == 32 and first.trace_id != second.trace_id


def test_tracker_add_tags_checks_its_argument() -> None:
    tracker = LLMTracker(otel=False)
    with pytest.raises(TypeError, match="did you mean tags"):
        tracker.add_tags("production")  # type: ignore[arg-type]


def test_history_limit_is_checked() -> None:
    provider = OpenAIProvider(otel=False)
    with pytest.raises(ValueError, match="limit must be >= 0"):
        provider.get_conversation_history(limit=-1)
    with pytest.raises(TypeError, match="limit must be an int"):
        provider.get_conversation_history(limit="3")  # type: ignore[arg-type]
    assert provider.get_conversation_history(limit=0) == []


def test_init_rejects_unknown_options() -> None:
    with pytest.raises(TypeError, match="flush_intervall"):
        neatlogs.init(flush_intervall=2)
