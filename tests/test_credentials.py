"""No credential lands in a record: not the OpenAI key, not Authorization headers, not the NeatLogs key."""

from __future__ import annotations

import json
from collections.abc import Callable

import openai

from neatlogs.openai import OpenAIProvider

from .conftest import OPENAI_KEY

NEATLOGS_KEY = "nl-secret-neatlogs-key-42"


def test_records_hold_no_credentials(
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
