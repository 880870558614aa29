"""Error handling: the OpenAI SDK's typed errors, and what neatlogs records for each.

Four calls that fail: a wrong key (401 `AuthenticationError`), a rate limit (429 `RateLimitError`),
a bad request (400 `BadRequestError`) and a reply slower than the client's timeout
(`APITimeoutError`). Tracing changes nothing about them: the very same exception reaches your
`except`, and the record says `status: "error"` with the error's type, message, HTTP status code
and request id (the id OpenAI support asks for).

The client is made with `max_retries=0` so that each call is one attempt. With the SDK's default
(2 retries for 408/409/429/5xx and timeouts), a call that fails and is retried inside `create()`
leaves one record, with the final outcome and the time of all attempts.

Runs offline against neatlogs' bundled fake OpenAI server, which is told to fail each call; set
OPENAI_API_KEY to use the real API (where the rate limit cannot be caused on purpose: it is skipped).

    python examples/error_handling.py
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import openai
from openai import OpenAI

import neatlogs
from neatlogs._testing.fake_openai import FakeOpenAI

MODEL = "gpt-4o-mini"
HELLO: list[Any] = [{"role": "user", "content": "Hello"}]


def wrong_key(client: OpenAI, fake: FakeOpenAI | None) -> None:
    """401: a wrong or revoked key."""
    if fake:
        fake.fail_next(status=401)  # the fake server takes any key; the real API does not
    client.with_options(api_key="sk-this-key-is-wrong-000000").chat.completions.create(
        model=MODEL, messages=HELLO
    )


def rate_limited(client: OpenAI, fake: FakeOpenAI | None) -> None:
    """429: too many requests or tokens per minute."""
    if fake:
        fake.fail_next(status=429, retry_after=1)
    client.chat.completions.create(model=MODEL, messages=HELLO)


def bad_request(client: OpenAI, fake: FakeOpenAI | None) -> None:
    """400: a request the API refuses, here one without messages."""
    client.chat.completions.create(model=MODEL, messages=[])


def too_slow(client: OpenAI, fake: FakeOpenAI | None) -> None:
    """No reply within the client's timeout."""
    headers = {"x-fake-delay": "2"} if fake else {}  # the fake server answers after 2 s
    client.with_options(timeout=0.3 if fake else 0.001).chat.completions.create(
        model=MODEL, messages=HELLO, extra_headers=headers
    )


SCENARIOS: list[Callable[[OpenAI, FakeOpenAI | None], None]] = [
    wrong_key,
    rate_limited,
    bad_request,
    too_slow,
]


def advice(error: openai.OpenAIError) -> str:
    """What an application does about each kind of error."""
    if isinstance(error, openai.AuthenticationError):
        return "check OPENAI_API_KEY; retrying will not help"
    if isinstance(error, openai.RateLimitError):
        return f"back off, retry after {error.response.headers.get('retry-after', 'a while')} s"
    if isinstance(error, openai.BadRequestError):
        return f"fix the request (param: {error.param})"
    if isinstance(error, openai.APITimeoutError):
        return "retry, or allow more time"
    return "unexpected: log it and give up"


def run(client: OpenAI, fake: FakeOpenAI | None) -> dict[str, openai.OpenAIError]:
    """Run every scenario (tagged with its name) and return the error each one raised, by name."""
    errors: dict[str, openai.OpenAIError] = {}
    for scenario in SCENARIOS:
        if fake is None and scenario is rate_limited:
            continue
        with neatlogs.trace(tags=[scenario.__name__]):
            try:
                scenario(client, fake)
            except (openai.APIStatusError, openai.APITimeoutError) as error:
                errors[scenario.__name__] = error
    return errors


@contextlib.contextmanager
def openai_client() -> Iterator[tuple[OpenAI, FakeOpenAI | None]]:
    """The real API when OPENAI_API_KEY is set, else neatlogs' fake OpenAI server on loopback."""
    if os.environ.get("OPENAI_API_KEY"):
        with OpenAI(max_retries=0) as client:
            yield client, None
        return
    with FakeOpenAI() as fake, OpenAI(base_url=fake.base_url, api_key="sk-offline", max_retries=0) as client:
        yield client, fake


def main() -> None:
    neatlogs.init(tags=["error-handling"])
    with openai_client() as (client, fake):
        errors = run(client, fake)

    records = neatlogs.get_conversation_history()
    for name, error in errors.items():
        print(f"{name}: {type(error).__name__} -> {advice(error)}")
        (record,) = [r for r in records if name in r["tags"]]
        print(f"  record: status={record['status']} duration={record['duration_ms']:.0f} ms")
        for key, value in (record["error"] or {}).items():
            print(f"    error.{key}: {value}")
    neatlogs.flush(timeout=10)  # no-op unless NEATLOGS_ENDPOINT is set


if __name__ == "__main__":
    main()
