"""What the record and the sinks need to know about Anthropic calls (registered as `ProviderTraits`):
how to read the `anthropic-ratelimit-*` headers."""

from __future__ import annotations

from typing import Any

from neatlogs.providers._stainless.ratelimit import RateLimitHeaders, headers_of, rate_limit_from_headers
from neatlogs.record.traits import ProviderTraits

# record key -> response header (resets are RFC 3339 times, kept as sent)
_HEADERS: RateLimitHeaders = {
    "limit_requests": "anthropic-ratelimit-requests-limit",
    "limit_tokens": "anthropic-ratelimit-tokens-limit",
    "remaining_requests": "anthropic-ratelimit-requests-remaining",
    "remaining_tokens": "anthropic-ratelimit-tokens-remaining",
    "reset_requests": "anthropic-ratelimit-requests-reset",
    "reset_tokens": "anthropic-ratelimit-tokens-reset",
}


def anthropic_rate_limit(headers: Any) -> dict[str, Any] | None:
    """The rate-limit fields in Anthropic's response headers, or None."""
    return rate_limit_from_headers(headers, _HEADERS)


def read_rate_limit(response: Any, stream: bool, error: BaseException | None) -> dict[str, Any] | None:
    """A finished call's `rate_limit` from the `anthropic-ratelimit-*` headers neatlogs kept."""
    return anthropic_rate_limit(headers_of(response, stream, error))


ANTHROPIC_TRAITS = ProviderTraits(rate_limit=read_rate_limit)
