"""No credential lands in a record, whichever provider made it and wherever in the call it was passed.

Every provider's request goes through one rule (`neatlogs/record/credentials.py`): values under
credential-like names are left out of `request` at any depth (`extra_query` and `extra_body`
included), and a dict key that is itself a secret is masked. Secrets without a known prefix that
follow a name saying what they are (`api-key: <32 hex>`) are masked in free text. The end-to-end
tests check the three places a record goes: the history, a loopback collector (the exporter) and
OpenTelemetry spans with content capture on.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from neatlogs._testing.fake_openai import FakeOpenAI
from neatlogs.litellm import LiteLLMProvider
from neatlogs.openai import OpenAIProvider
from neatlogs.record.redact import mask_secrets, may_hold_secret
from neatlogs.sinks.exporter import flush_all
from neatlogs.sinks.otel.sink import flush_all_otel

from .conftest import OPENAI_KEY
from .fake_collector import FakeCollector
from .helpers import providers

try:  # the `speedups` extra
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]

NEATLOGS_KEY = "nl-secret-neatlogs-key-42"
# Secrets without a known prefix: Azure-style 32-hex keys, base64-ish tokens, passwords.
QUERY_KEY = "q7f3c1a9e5b2d8f4a6c0e1b3d5f7a9c2"
QUERY_API_KEY = "4be1d0c7a2f94e3b8d6c5a1f0e9b7d3c"
SUBSCRIPTION_KEY = "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"
ACCESS_TOKEN = "ya29.a0AfB_byC3kq9LmN2pQ4rS6tU8vW0xY1z"
OAUTH_CODE = "4/0AeaYSHBq7uZx9vJ2kL5mN8pQ1rS3tU6w"
BODY_PASSWORD = "hunter2-correct-horse-battery"
GOOG_KEY = "goog-key-value-xyz-0000111122223333"
BODY_TOKEN = "tok-body-5f6e7d8c9b0a1f2e3d4c5b6a"
CLIENT_SECRET = "cs-nested-client-secret-7788"
LIST_KEY = "list-held-key-aa11bb22cc33dd44"
DICT_KEY_SECRET = "sk-proj-DictKeySecret0123456789abcdef"
FREE_TEXT_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
FREE_TEXT_TOKEN = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg"
ERROR_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
SECRETS = (
    QUERY_KEY,
    QUERY_API_KEY,
    SUBSCRIPTION_KEY,
    ACCESS_TOKEN,
    OAUTH_CODE,
    BODY_PASSWORD,
    GOOG_KEY,
    BODY_TOKEN,
    CLIENT_SECRET,
    LIST_KEY,
    DICT_KEY_SECRET,
    FREE_TEXT_KEY,
    FREE_TEXT_TOKEN,
)
GIT_SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
PROMPT = (
    f"my api-key: {FREE_TEXT_KEY} and the url had ?token={FREE_TEXT_TOKEN}. "
    f"The key point: commit {GIT_SHA} fixed it."
)
MASKED_PROMPT = (
    f"my api-key: [REDACTED] and the url had ?token=[REDACTED]. The key point: commit {GIT_SHA} fixed it."
)
EXTRA_QUERY = {
    "api-version": "2024-06-01",
    "key": QUERY_KEY,
    "api-key": QUERY_API_KEY,
    "subscription-key": SUBSCRIPTION_KEY,
    "access_token": ACCESS_TOKEN,
    "code": OAUTH_CODE,
}
EXTRA_BODY = {
    "password": BODY_PASSWORD,
    "x-goog-api-key": GOOG_KEY,
    "token": BODY_TOKEN,
    "auth": {"client_secret": CLIENT_SECRET, "client_id": "client-id-under-a-credential-name"},
    "api_keys": [LIST_KEY],
    "usage_by_customer": {DICT_KEY_SECRET: 3},
    # Look like credentials to a substring search, and are not.
    "keywords": ["alpha", "beta"],
    "tokenizer": "cl100k_base",
    "code": "print('a body field named code is no query code')",
}


def _assert_clean(record: dict[str, Any]) -> None:
    """No secret anywhere; what is no credential is kept as it was."""
    dumped = json.dumps(record)
    for secret in SECRETS:
        assert secret not in dumped, secret
    request = record["request"]
    assert request["extra_query"] == {"api-version": "2024-06-01"}
    body = request["extra_body"]
    assert {"password", "x-goog-api-key", "token", "auth", "api_keys"}.isdisjoint(body)
    assert body["usage_by_customer"] == {"[REDACTED]": 3}
    assert body["keywords"] == ["alpha", "beta"] and body["tokenizer"] == "cl100k_base"
    assert body["code"] == EXTRA_BODY["code"]
    assert request["max_tokens"] == 200
    assert request["metadata"]["[REDACTED]"] == "tenant"  # LiteLLM adds its own entries to the caller's dict
    assert record["prompt"][0]["content"] == MASKED_PROMPT


def _assert_clean_error(record: dict[str, Any]) -> None:
    assert record["status"] == "error"
    assert ERROR_KEY not in json.dumps(record)
    # openai 1.x puts the whole error body in the message, later versions only its message.
    assert "api-key: [REDACTED] is not valid" in record["error"]["message"]


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    with FakeCollector() as server:
        yield server


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, MeterProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    yield tracer_provider, meter_provider, exporter
    flush_all_otel(5.0)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def _sinks(
    collector: FakeCollector, spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter]
) -> dict[str, Any]:
    """Options sending records to the history, the loopback collector and OTel with content capture."""
    tracer_provider, meter_provider, _ = spans
    return {
        "endpoint": collector.url,
        "api_key": NEATLOGS_KEY,
        "otel": True,
        "tracer_provider": tracer_provider,
        "meter_provider": meter_provider,
        "capture_content": {"otel": "full"},
    }


def _exported(collector: FakeCollector, count: int) -> list[dict[str, Any]]:
    """The records the collector got, after checking its raw bodies hold no secret either."""
    assert flush_all(10)
    assert collector.wait_for(count)
    for request in collector.requests:
        body = gzip.decompress(request.body).decode()
        for secret in (*SECRETS, ERROR_KEY):
            assert secret not in body, secret
    return list(collector.records.values())


def _span_texts(spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter]) -> list[str]:
    """Every neatlogs span's attributes and event attributes, as text."""
    assert flush_all_otel(5.0)
    texts = []
    for span in spans[2].get_finished_spans():
        if span.instrumentation_scope is None or span.instrumentation_scope.name != "neatlogs":
            continue
        parts: list[Any] = [dict(span.attributes or {}), span.status.description]
        parts += [dict(event.attributes or {}) for event in span.events]
        texts.append(json.dumps(parts, default=str))
    return texts


def _assert_spans_clean(texts: list[str], count: int) -> None:
    assert len(texts) == count
    for text in texts:
        for secret in (*SECRETS, ERROR_KEY):
            assert secret not in text, secret
    # Content capture is on: the masked prompt is there, so the spans were checked with content.
    assert any("api-key: [REDACTED]" in text for text in texts)


# ---- OpenAI ----


def test_openai_records_hold_no_credentials(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(api_key=NEATLOGS_KEY)
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"Authorization": "Bearer sk-other-secret-999999", "X-Custom": "visible"},
        extra_body={"api_key": "sk-body-secret-888888"},
    )
    list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "s"}], stream=True
        )
    )

    dumped = json.dumps(provider.get_conversation_history())
    for secret in (OPENAI_KEY, NEATLOGS_KEY, "sk-other-secret-999999", "sk-body-secret-888888", "Bearer"):
        assert secret not in dumped
    assert "extra_headers" not in dumped


def test_openai_credentials_in_query_body_and_dict_keys_reach_no_sink(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    fake_openai: FakeOpenAI,
    collector: FakeCollector,
    spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter],
) -> None:
    provider = make_provider(**_sinks(collector, spans))
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=200,
        metadata={DICT_KEY_SECRET: "tenant"},
        extra_query=EXTRA_QUERY,
        extra_body=EXTRA_BODY,
    )
    sent = fake_openai.requests[-1]
    assert QUERY_KEY in sent.path and sent.json["password"] == BODY_PASSWORD  # the call itself is untouched

    (record,) = provider.get_conversation_history()
    _assert_clean(record)
    assert record["completion"]["content"] == "Echo: " + MASKED_PROMPT
    (exported,) = _exported(collector, 1)
    _assert_clean(exported)
    _assert_spans_clean(_span_texts(spans), 1)


def test_openai_error_message_with_a_key_after_its_name_is_masked(
    make_provider: Callable[..., OpenAIProvider],
    client: openai.OpenAI,
    fake_openai: FakeOpenAI,
    collector: FakeCollector,
    spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter],
) -> None:
    provider = make_provider(**_sinks(collector, spans))
    fake_openai.fail_next(401, message=f"Access denied: api-key: {ERROR_KEY} is not valid")
    with pytest.raises(openai.AuthenticationError, match=ERROR_KEY):  # the caller's exception is untouched
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])

    (record,) = provider.get_conversation_history()
    _assert_clean_error(record)
    (exported,) = _exported(collector, 1)
    _assert_clean_error(exported)
    _assert_spans_clean(_span_texts(spans), 1)


# ---- LiteLLM (through the OpenAI SDK, against the same fake server) ----


@pytest.fixture(scope="module")
def litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no cost map download
    import litellm

    litellm.suppress_debug_info = True
    return litellm


@pytest.fixture
def make_litellm_provider(litellm: Any) -> Iterator[Callable[..., LiteLLMProvider]]:
    yield from providers(LiteLLMProvider)


def _litellm_call(litellm: Any, fake_openai: FakeOpenAI, **kwargs: Any) -> Any:
    return litellm.completion(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": PROMPT}],
        api_base=fake_openai.base_url,
        api_key=OPENAI_KEY,
        num_retries=0,
        max_retries=0,
        **kwargs,
    )


def test_litellm_credentials_in_query_body_and_dict_keys_reach_no_sink(
    make_litellm_provider: Callable[..., LiteLLMProvider],
    litellm: Any,
    fake_openai: FakeOpenAI,
    collector: FakeCollector,
    spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter],
) -> None:
    provider = make_litellm_provider(**_sinks(collector, spans))
    _litellm_call(
        litellm,
        fake_openai,
        max_tokens=200,
        metadata={DICT_KEY_SECRET: "tenant"},
        extra_query=EXTRA_QUERY,
        extra_body=EXTRA_BODY,
    )

    (record,) = provider.get_conversation_history()
    assert record["provider"] == "litellm"
    _assert_clean(record)
    assert OPENAI_KEY not in json.dumps(record)
    (exported,) = _exported(collector, 1)
    _assert_clean(exported)
    _assert_spans_clean(_span_texts(spans), 1)


def test_litellm_error_message_with_a_key_after_its_name_is_masked(
    make_litellm_provider: Callable[..., LiteLLMProvider],
    litellm: Any,
    fake_openai: FakeOpenAI,
    collector: FakeCollector,
    spans: tuple[TracerProvider, MeterProvider, InMemorySpanExporter],
) -> None:
    provider = make_litellm_provider(**_sinks(collector, spans))
    fake_openai.fail_next(401, message=f"Access denied: api-key: {ERROR_KEY} is not valid")
    with pytest.raises(Exception, match=ERROR_KEY):  # LiteLLM's own exception, untouched
        _litellm_call(litellm, fake_openai)

    (record,) = provider.get_conversation_history()
    assert record["provider"] == "litellm"
    _assert_clean_error(record)
    (exported,) = _exported(collector, 1)
    _assert_clean_error(exported)
    _assert_spans_clean(_span_texts(spans), 1)


# ---- which names are credentials ----

LOGIN_TOOL = {
    "type": "function",
    "function": {
        "name": "login",
        "description": "Log in with an API key.",
        "parameters": {
            "type": "object",
            "properties": {"api_key": {"type": "string"}, "password": {"type": "string"}},
            "required": ["api_key", "password"],
        },
    },
}
TOKEN_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "session",
        "schema": {
            "type": "object",
            "properties": {"token": {"$ref": "#/$defs/Token"}, "user": {"type": "string"}},
            "$defs": {"Token": {"type": "string"}},
            "required": ["token", "user"],
            "additionalProperties": False,
        },
    },
}
CREDENTIAL_NAMES = (
    "apiKey",
    "X-API-KEY",
    "Ocp-Apim-Subscription-Key",
    "client_secret",
    "refresh_token",
    "aws_secret_access_key",
    "azure_ad_token",
    "vertex_credentials",
    "Authorization",
    "proxy-authorization",
    "private_key",
    "passwd",
    "Cookie",
)
PLAIN_NAMES = {
    "tokenizer": "cl100k_base",
    "keywords": ["a"],
    "monkey": "business",
    "keyboard_layout": "azerty",
    "author": "someone",
    "prompt_cache_key": "cache-bucket-1",
    "code": "print(1)",
    "signature": "a body field, not a query's",
    "max_tokens_per_tool": 12,
}


@pytest.mark.parametrize("mask_secrets", [True, False])
def test_credential_names_are_matched_by_whole_name_parts_whatever_mask_secrets_says(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI, mask_secrets: bool
) -> None:
    provider = make_provider(mask_secrets=mask_secrets)
    secret_values = {name: f"value-of-{index}-never-recorded" for index, name in enumerate(CREDENTIAL_NAMES)}
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        tools=[LOGIN_TOOL],
        tool_choice="none",
        extra_query={"sig": "sas-signature-never-recorded", "se": "2030-01-01", "code": "oauth-code-never"},
        response_format=TOKEN_FORMAT,
        extra_body={**secret_values, **PLAIN_NAMES, "properties": {"password": "not-a-schema-never"}},
    )

    (record,) = provider.get_conversation_history()
    dumped = json.dumps(record)
    for value in (*secret_values.values(), "sas-signature-never-recorded", "oauth-code-never"):
        assert value not in dumped
    assert record["request"]["extra_body"] == {**PLAIN_NAMES, "properties": {}}
    assert record["request"]["response_format"] == TOKEN_FORMAT
    assert record["request"]["extra_query"] == {"se": "2030-01-01"}
    assert record["request"]["tools"] == [LOGIN_TOOL]  # a schema's property names name data


def test_secret_dict_keys_are_masked_and_stay_apart(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider()
    first, second = "sk-proj-FirstKeyAsName0123456789", "sk-proj-SecondKeyAsName987654321"
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        metadata={first: "one", second: "two", "plain": "three"},
    )

    (record,) = provider.get_conversation_history()
    assert record["request"]["metadata"] == {"[REDACTED]": "one", "[REDACTED] (2)": "two", "plain": "three"}


def test_the_pii_mask_applies_to_dict_keys_too(
    make_provider: Callable[..., OpenAIProvider], client: openai.OpenAI
) -> None:
    provider = make_provider(mask_pii=True)
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        metadata={"jane.doe@example.com": "vip"},
    )

    (record,) = provider.get_conversation_history()
    assert record["request"]["metadata"] == {"[EMAIL]": "vip"}


# ---- secrets in free text, found by the name before them ----

HEX32 = "6f1ed002ab5595859014ebf0951522d9"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"api-key: {HEX32}", "api-key: [REDACTED]"),
        (f"Ocp-Apim-Subscription-Key: {HEX32}\n", "Ocp-Apim-Subscription-Key: [REDACTED]\n"),
        (f'{{"apiKey": "{HEX32}"}}', '{"apiKey": "[REDACTED]"}'),
        (f"https://x.test/?key={HEX32}&v=2", "https://x.test/?key=[REDACTED]&v=2"),
        (f"access_token={HEX32}.", "access_token=[REDACTED]."),
        (f"PASSWORD = '{HEX32}'", "PASSWORD = '[REDACTED]'"),
        (f"client_secret:\t{HEX32}", "client_secret:\t[REDACTED]"),
        (f"the key\n{HEX32}", "the key\n[REDACTED]"),
    ],
)
def test_a_long_value_after_a_credentials_name_is_masked(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "The key point is that a monkey typed tokens on a keyboard, and the secret is patience.",
        f"commit {HEX32}a1b2c3d4 fixed the token refresh",  # a hash not after a credential's name
        f"max_tokens: {HEX32}",
        f"keys {HEX32}",
        "key: abcdefghijklmnopqrstuvwxyzabcdefghij",  # no digit: a word, not a key
        f"key: {HEX32[:31]}",  # too short
        f"monkey={HEX32}",
    ],
)
def test_text_without_a_named_secret_is_left_alone(text: str) -> None:
    assert mask_secrets(text) == text


def _random_texts(count: int) -> list[str]:
    rng = random.Random(17)
    names = ["key", "KEY", "api-key", "apiKey", "Token", "access_token", "password", "passwd", "Secret"]
    names += ["monkey", "tokens", "keyboard", "passw", "keyé"]
    separators = [" ", ":", "=", '"', "'", "\n", "\t", "\r", ": ", '": "', "\\", "é", "\u2003", "-", ""]
    values = [HEX32, HEX32[:31], HEX32 + "9f", "Zm9vYmFy/+_-.~=" * 3, "a" * 40, "a.b" * 12, "7" * 33]
    fragments = names + separators + values + ["hello ", "commit ", "\x0b", "İ", "K"]
    return ["".join(rng.choice(fragments) for _ in range(rng.randint(1, 7))) for _ in range(count)]


def test_the_record_wide_check_sees_every_named_secret_the_mask_would_change() -> None:
    # A record whose JSON text fails `may_hold_secret` is copied without masks: every text the masks
    # would change must make it pass, however JSON escapes it (stdlib or orjson).
    encoders: list[Callable[[Any], str]] = [json.dumps, lambda v: json.dumps(v, ensure_ascii=False)]
    if orjson is not None:
        encoders.append(lambda v: orjson.dumps(v).decode())
    changed = 0
    for text in _random_texts(20_000):
        if mask_secrets(text) == text:
            continue
        changed += 1
        assert may_hold_secret(text), text
        for encode in encoders:
            assert may_hold_secret(encode({"request": {"prompt": [text]}})), text
    assert changed > 100  # the texts exercise the masks
