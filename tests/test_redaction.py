"""Redaction: built-in masks for secrets (on) and personal data (opt-in), and the user's redact function."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
import requests

import neatlogs
from neatlogs.collector.server import CollectorServer
from neatlogs.openai import OpenAIProvider
from neatlogs.record.redact import mask_pii, mask_secrets

OPENAI_STYLE_KEY = "sk-proj-Zx81kP0qWc3eV7bN2mL5aS9dF4gH6jK1"
ANTHROPIC_KEY = "sk-ant-api03-Qw3rTy7uIo9pAs1dFg5hJk2lZx8cVb4nM"
BEARER = "eyJ0eXAiOi.payload-part.sig_nature-123"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
SECRETS_PROMPT = (
    f"debug this: OPENAI_API_KEY={OPENAI_STYLE_KEY} and {ANTHROPIC_KEY}; curl -H 'Authorization: Bearer "
    f"{BEARER}'; aws_access_key_id={AWS_KEY_ID} aws_secret_access_key={AWS_SECRET}; session {JWT}"
)
PII_PROMPT = "reach jane.doe@example.com or +1 415 555 2671 about order 2024-01-15"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorServer]:
    with CollectorServer(tmp_path_factory.mktemp("redaction") / "records.db") as server:
        yield server


def _ask(client: openai.OpenAI, text: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], **kwargs
    )


def test_secrets_in_prompts_and_completions_are_masked_by_default(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider()
    response = _ask(client, SECRETS_PROMPT, user=f"token {JWT}")
    assert OPENAI_STYLE_KEY in (response.choices[0].message.content or "")  # the fake echoes the prompt

    (record,) = provider.get_conversation_history()
    dumped = json.dumps(record)
    for secret in (OPENAI_STYLE_KEY, ANTHROPIC_KEY, BEARER, AWS_KEY_ID, AWS_SECRET, JWT):
        assert secret not in dumped
    assert "OPENAI_API_KEY=[REDACTED]" in record["prompt"][0]["content"]
    assert "aws_secret_access_key=[REDACTED]" in record["completion"]["content"]
    assert record["request"]["user"] == "token [REDACTED]"


def test_ordinary_words_that_contain_key_prefixes_are_left_alone(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider()
    text = "the task-management-service and disk-encryption-setting need a Bearer of good news"
    _ask(client, text)

    (record,) = provider.get_conversation_history()
    assert record["prompt"][0]["content"] == text


def test_mask_secrets_false_keeps_prompts_verbatim(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(mask_secrets=False)
    _ask(client, SECRETS_PROMPT)

    (record,) = provider.get_conversation_history()
    assert record["prompt"][0]["content"] == SECRETS_PROMPT


def test_personal_data_is_kept_unless_mask_pii_is_on(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    default = make_provider()
    masked = make_provider(mask_pii=True)
    _ask(client, PII_PROMPT, user="jane.doe@example.com")

    assert default.get_conversation_history()[0]["prompt"][0]["content"] == PII_PROMPT
    (record,) = masked.get_conversation_history()
    assert record["prompt"][0]["content"] == "reach [EMAIL] or [PHONE] about order 2024-01-15"
    assert record["completion"]["content"] == "Echo: reach [EMAIL] or [PHONE] about order 2024-01-15"
    assert record["request"]["user"] == "[EMAIL]"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call (415) 555-2671 or 415.555.2671", "call [PHONE] or [PHONE]"),
        ("+44 20 7946 0958 / +33 6 12 34 56 78", "[PHONE] / [PHONE]"),
        ("write to a.b-c+tag@mail.example.org.", "write to [EMAIL]."),
        (
            "on 2024-01-15 10:30, v1.2.3, host 192.168.100.200",
            "on 2024-01-15 10:30, v1.2.3, host 192.168.100.200",
        ),
        ("order 1234567890 costs 1,234,567.89", "order 1234567890 costs 1,234,567.89"),
    ],
)
def test_pii_masks_catch_common_formats_and_leave_dates_versions_and_ids(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


def test_secret_masks_leave_text_without_a_marker_untouched() -> None:
    text = "A long answer without anything secret in it. " * 1000
    assert mask_secrets(text) is text


def test_the_redact_function_sees_every_record_before_history_and_exporter(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, collector: CollectorServer
) -> None:
    def redact(record: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(record).replace("Acme Corp", "[CUSTOMER]")
        return dict(json.loads(text), tags=[*record["tags"], "redacted"])

    trace_id = uuid.uuid4().hex
    provider = make_provider(trace_id=trace_id, endpoint=collector.url, redact=redact)
    _ask(client, "summarise the Acme Corp contract")

    (kept,) = provider.get_conversation_history()
    assert neatlogs.flush(10)
    (sent,) = collector.store.records(trace_id=trace_id)
    for record in (kept, sent):
        assert "Acme" not in json.dumps(record)
        assert record["prompt"][0]["content"] == "summarise the [CUSTOMER] contract"
        assert record["tags"] == ["redacted"]


def test_a_redactor_may_change_the_record_in_place_and_return_none(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    def redact(record: dict[str, Any]) -> None:
        record["request"].pop("user", None)

    provider = make_provider(redact=redact)
    _ask(client, "hi", user="customer-42")

    (record,) = provider.get_conversation_history()
    assert "user" not in record["request"] and record["prompt"][0]["content"] == "hi"


def test_a_redactor_cannot_remove_what_identifies_the_record(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    def redact(record: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": "gone", "request": {"odd": {1, 2}}}

    provider = make_provider(trace_id="kept-trace", redact=redact)
    _ask(client, "hi")

    (record,) = provider.get_conversation_history()
    assert record["trace_id"] == "kept-trace" and len(record["id"]) == 32
    assert record["status"] == "success" and record["provider"] == "openai"
    assert record["prompt"] == "gone" and record["request"] == {"odd": [1, 2]}  # made JSON-safe
    json.dumps(record)


def test_a_redactor_that_raises_drops_the_content_not_the_call(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    def redact(record: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("redactor bug")

    provider = make_provider(redact=redact)
    with caplog.at_level(logging.DEBUG, logger="neatlogs"):
        response = _ask(client, "my secret plan")
        _ask(client, "another secret plan")
        records = provider.get_conversation_history()

    assert response.choices[0].message.content == "Echo: my secret plan"
    assert len(records) == 2
    for record in records:
        assert record["capture"] == "metadata" and record["prompt"] is None
        assert "secret plan" not in json.dumps(record)
        assert record["usage"]["total_tokens"] > 0 and record["status"] == "success"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "redact" in r.getMessage()]
    assert len(warnings) == 1 and "RuntimeError: redactor bug" in warnings[0].getMessage()


def test_a_redactor_that_returns_something_else_drops_the_content(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(redact=lambda record: "not a dict")
    _ask(client, "my secret plan")

    (record,) = provider.get_conversation_history()
    assert record["capture"] == "metadata" and "secret plan" not in json.dumps(record)


def test_the_redactor_runs_off_the_calling_thread(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    collector: CollectorServer,
) -> None:
    threads: list[str] = []

    def redact(record: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return record

    make_provider(trace_id=uuid.uuid4().hex, endpoint=collector.url, redact=redact)
    _ask(client, "hi")
    calls_during_the_call = list(threads)
    assert neatlogs.flush(10)

    assert calls_during_the_call == []
    assert threads and all(name.startswith("neatlogs-exporter") for name in threads)


@pytest.mark.parametrize("value", ["mask", 3, ["a"]])
def test_redact_must_be_callable(value: Any) -> None:
    with pytest.raises(TypeError, match="redact must be a function that takes the record dict"):
        OpenAIProvider(redact=value, otel=False)


@pytest.mark.parametrize("name", ["mask_secrets", "mask_pii"])
def test_mask_switches_must_be_booleans(name: str) -> None:
    with pytest.raises(TypeError, match=f"{name} must be True or False"):
        options: Any = {name: "yes"}
        OpenAIProvider(otel=False, **options)


def _stored(collector: CollectorServer, trace: str) -> list[dict[str, Any]]:
    found = requests.get(f"{collector.url}/v1/records", params={"trace_id": trace, "limit": 100}, timeout=10)
    assert found.status_code == 200, found.text
    records: list[dict[str, Any]] = found.json()["records"]
    return records


def test_a_redactor_that_removes_or_breaks_required_keys_still_sends_a_valid_record(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    collector: CollectorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def redact(record: dict[str, Any]) -> dict[str, Any]:
        for key in ("model", "prompt", "usage", "choices", "duration_ms", "error", "ttft_ms"):
            record.pop(key, None)
        record["id"] = ""
        record["completion"] = 42  # not a dict, str or null
        record["request"] = ["not", "a", "dict"]
        return record

    trace = uuid.uuid4().hex
    provider = make_provider(trace_id=trace, endpoint=collector.url, redact=redact)
    with caplog.at_level(logging.WARNING, logger="neatlogs"):
        _ask(client, "my secret plan")
        _ask(client, "another secret plan")
        assert neatlogs.flush(10)

    stored = _stored(collector, trace)
    assert len(stored) == 2
    for record in stored + provider.get_conversation_history():
        assert len(record["id"]) == 32 and record["duration_ms"] > 0
        assert record["model"] is None and record["prompt"] is None and record["completion"] is None
        assert record["choices"] == [] and record["usage"] is None and record["request"] == {}
        assert "secret plan" not in json.dumps(record)
    warnings = [r.getMessage() for r in caplog.records if "required record keys" in r.getMessage()]
    assert len(warnings) == 1 and "model" in warnings[0] and "id" in warnings[0]


def test_a_redactor_that_makes_a_record_unencodable_costs_only_that_record(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, collector: CollectorServer
) -> None:
    def redact(record: dict[str, Any]) -> dict[str, Any]:
        if "poison" in json.dumps(record["prompt"]):
            record["request"]["huge"] = 10**5000  # more digits than Python turns into text
        return record

    trace = uuid.uuid4().hex
    make_provider(trace_id=trace, endpoint=collector.url, redact=redact)
    before = neatlogs.stats()
    for text in ("one", "poison", "three"):
        _ask(client, text)
    assert neatlogs.flush(10)
    _ask(client, "after")
    assert neatlogs.flush(10)

    prompts = sorted(r["prompt"][0]["content"] for r in _stored(collector, trace))
    assert prompts == ["after", "one", "three"]
    assert neatlogs.stats()["dropped"] - before["dropped"] == 1


def test_a_redactor_that_raises_systemexit_costs_only_that_record(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, collector: CollectorServer
) -> None:
    def redact(record: dict[str, Any]) -> dict[str, Any]:
        if "exit" in json.dumps(record["prompt"]):
            raise SystemExit(3)
        return record

    trace = uuid.uuid4().hex
    make_provider(trace_id=trace, endpoint=collector.url, redact=redact)
    before = neatlogs.stats()
    _ask(client, "please exit")
    assert neatlogs.flush(10)
    _ask(client, "still here")
    assert neatlogs.flush(10)

    assert [r["prompt"][0]["content"] for r in _stored(collector, trace)] == ["still here"]
    assert neatlogs.stats()["dropped"] - before["dropped"] == 1
