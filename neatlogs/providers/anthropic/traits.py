"""What the record and the sinks need to know about Anthropic calls (registered as `ProviderTraits`):
how to read the `anthropic-ratelimit-*` headers."""

from __future__ import annotations

from typing import Any

from neatlogs.providers._stainless.ratelimit import headers_of
from neatlogs.record.traits import ProviderTraits

# record key -> response header
_HEADERS = {
    "limit_requests": "anthropic-ratelimit-requests-limit",
    "limit_tokens": "anthropic-ratelimit-tokens-limit",
    "remaining_requests": "anthropic-ratelimit-requests-remaining",
    "remaining_tokens": "anthropic-ratelimit-tokens-remaining",
    "reset_requests": "anthropic-ratelimit-requests-reset",
    "reset_tokens": "anthropic-ratelimit-tokens-reset",
}
_RESETS = frozenset({"reset_requests", "reset_tokens"})


def rate_limit_from_headers(headers: Any) -> dict[str, Any] | None:
    """The rate-limit fields in Anthropic's headers (resets kept as sent: RFC 3339 times), or None."""
    getter = getattr(headers, "get", None)
    if not callable(getter) or isinstance(headers, type):
        return None
    found: dict[str, Any] = {}
    for key, header in _HEADERS.items():
        value = getter(header)
        if not isinstance(value, str) or not value.strip():
            continue
        if key in _RESETS:
            found[key] = value.strip()
            continue
        try:
            found[key] = int(value.strip())
        except ValueError:
            continue
    return found or None


def read_rate_limit(response: Any, stream: bool, error: BaseException | None) -> dict[str, Any] | None:
    """A finished call's `rate_limit` from the headers neatlogs kept (`ProviderTraits.rate_limit`)."""
    return rate_limit_from_headers(headers_of(response, stream, error))


ANTHROPIC_TRAITS = ProviderTraits(rate_limit=read_rate_limit)
