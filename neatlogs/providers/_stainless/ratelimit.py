"""Rate-limit headers -> the record's `rate_limit`: OpenAI's `x-ratelimit-*` (and compatible APIs'), or
any provider's own names (`RateLimitHeaders`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# record key -> response header
RateLimitHeaders = Mapping[str, str]
OPENAI_HEADERS: RateLimitHeaders = {
    "limit_requests": "x-ratelimit-limit-requests",
    "limit_tokens": "x-ratelimit-limit-tokens",
    "remaining_requests": "x-ratelimit-remaining-requests",
    "remaining_tokens": "x-ratelimit-remaining-tokens",
    "reset_requests": "x-ratelimit-reset-requests",
    "reset_tokens": "x-ratelimit-reset-tokens",
}
_RESETS = frozenset({"reset_requests", "reset_tokens"})


def rate_limit_from_headers(headers: Any, names: RateLimitHeaders = OPENAI_HEADERS) -> dict[str, Any] | None:
    """The rate-limit fields in a header mapping (httpx.Headers, dict), or None when there are none."""
    getter = getattr(headers, "get", None)
    if not callable(getter) or isinstance(headers, type):
        return None
    found: dict[str, Any] = {}
    for key, header in names.items():
        value = getter(header)
        if not isinstance(value, str) or not value.strip():
            continue
        if key in _RESETS:
            found[key] = value.strip()  # a duration ("6m0s") or a time: kept as the API wrote it
            continue
        try:
            found[key] = int(value.strip())
        except ValueError:
            continue
    return found or None


def headers_of(record_response: Any, stream: bool, error: BaseException | None) -> Any:
    """A finished call's response headers, where neatlogs kept them: streams, raw responses, errors."""
    if error is not None:
        return getattr(getattr(error, "response", None), "headers", None)
    if stream:
        return (
            record_response
            if isinstance(record_response, Mapping) or hasattr(record_response, "get")
            else None
        )
    return getattr(record_response, "headers", None) if hasattr(type(record_response), "headers") else None


def read_rate_limit(response: Any, stream: bool, error: BaseException | None) -> dict[str, Any] | None:
    """A finished call's `rate_limit` from the `x-ratelimit-*` headers neatlogs kept
    (`ProviderTraits.rate_limit`)."""
    return rate_limit_from_headers(headers_of(response, stream, error))
