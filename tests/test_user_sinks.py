"""Users' own sinks (`neatlogs.init(sinks=[...])`, the public `neatlogs.Sink` protocol)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs.llm import LLMTracker
from neatlogs.openai import OpenAIProvider
from neatlogs.record.schema import REQUIRED_KEYS


class Collecting:
    """A user's sink: keeps what it is given and the thread it was given it on."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.threads: set[str] = set()

    def emit(self, record: neatlogs.Record) -> None:
        self.threads.add(threading.current_thread().name)
        self.records.append(dict(record))


class SeesEverything(Collecting):
    sees_every_call = True


class Broken:
    def emit(self, record: neatlogs.Record) -> None:
        raise RuntimeError("the user's sink is broken")


def _ask(client: openai.OpenAI, content: str = "my secret plan") -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}]
    )


@pytest.fixture
def tracker() -> Iterator[Callable[..., LLMTracker]]:
    made: list[LLMTracker] = []

    def make(**options: Any) -> LLMTracker:
        made.append(neatlogs.init(otel=False, **options))
        return made[-1]

    yield make
    for tracked in made:
        tracked.stop_instrumenting()


def test_a_user_sink_gets_every_call_as_the_contract_record_and_never_holds_up_the_call(
    tracker: Callable[..., LLMTracker], client: openai.OpenAI
) -> None:
    gate = threading.Event()

    class Slow(Collecting):
        def emit(self, record: neatlogs.Record) -> None:
            gate.wait(5.0)
            super().emit(record)

    sink = Slow()
    assert isinstance(sink, neatlogs.Sink)
    tracker(sinks=[sink], tags=["mine"])
    started = time.monotonic()
    answers = [_ask(client) for _ in range(3)]
    assert time.monotonic() - started < 2.5  # a sink blocked for 5 s per record held nothing up
    gate.set()

    assert neatlogs.flush(10)
    assert len(sink.records) == 3
    record = sink.records[0]
    assert set(REQUIRED_KEYS) <= set(record)
    assert record["provider"] == "openai" and record["tags"] == ["mine"]
    assert record["completion"]["content"] == answers[0].choices[0].message.content


def test_a_user_sink_sees_what_the_exporter_would_send_metadata_and_redaction(
    tracker: Callable[..., LLMTracker], client: openai.OpenAI
) -> None:
    metadata, redacted = Collecting(), Collecting()
    tracker(sinks=[metadata], capture_content={"exporter": "metadata"})
    _ask(client)
    assert neatlogs.flush(10)
    (record,) = metadata.records
    assert record["prompt"] is None and "my secret plan" not in repr(record)

    def redact(record: dict[str, Any]) -> None:
        record["prompt"] = "[redacted]"

    tracker(sinks=[redacted], redact=redact)
    _ask(client)
    assert neatlogs.flush(10)
    (record,) = redacted.records
    assert record["prompt"] == "[redacted]"


def test_a_sink_that_raises_is_logged_and_the_call_and_other_sinks_go_on(
    tracker: Callable[..., LLMTracker], client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    after = Collecting()
    tracked = tracker(sinks=[Broken(), after])
    with caplog.at_level(logging.WARNING, logger="neatlogs"):
        answer = _ask(client)
        assert neatlogs.flush(10)
    assert isinstance(answer, openai.types.chat.ChatCompletion)
    assert len(after.records) == 1 and len(tracked.get_conversation_history()) == 1
    assert "your sink Broken raised" in caplog.text and "the user's sink is broken" in caplog.text


def test_a_user_sink_may_change_its_record_without_changing_anyone_elses(
    tracker: Callable[..., LLMTracker], client: openai.OpenAI
) -> None:
    class Mutating:
        def emit(self, record: neatlogs.Record) -> None:
            record["model"] = "changed by a sink"

    seen = Collecting()
    tracked = tracker(sinks=[Mutating(), seen])
    _ask(client)
    assert neatlogs.flush(10)
    assert seen.records[0]["model"] == "gpt-4o-mini"
    assert tracked.get_conversation_history()[0]["model"] == "gpt-4o-mini"


def test_sampled_out_calls_reach_only_sinks_that_ask_for_every_call(
    tracker: Callable[..., LLMTracker], client: openai.OpenAI
) -> None:
    sampled, everything = Collecting(), SeesEverything()
    tracker(sinks=[sampled, everything], sample_rate=0.0)
    for _ in range(3):
        _ask(client)
    assert neatlogs.flush(10)
    assert sampled.records == [] and len(everything.records) == 3


@pytest.mark.parametrize(
    ("sinks", "message"),
    [
        (Collecting(), "sinks must be a list of objects with an emit(record) method"),
        ([Collecting(), "print"], "sinks[1] has no emit(record) method"),
    ],
)
def test_bad_sinks_are_a_type_error_saying_what_a_sink_is(sinks: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        LLMTracker(sinks=sinks)
    with pytest.raises(TypeError, match="sinks must be"):
        OpenAIProvider(sinks="not a list")  # type: ignore[arg-type]
