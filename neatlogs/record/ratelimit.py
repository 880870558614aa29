"""Rate-limit headers -> the record's `rate_limit`: `x-ratelimit-*` (OpenAI and compatible APIs) and
`anthropic-ratelimit-*` (Anthropic, whose resets are RFC 3339 times)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# record key -> response header
_HEADERS = {
    "limit_requests": "x-ratelimit-limit-requests",
    "limit_tokens": "x-ratelimit-limit-tokens",
    "remaining_requests": "x-ratelimit-remaining-requests",
    "remaining_tokens": "x-ratelimit-remaining-tokens",
    "reset_requests": "x-ratelimit-reset-requests",
    "reset_tokens": "x-ratelimit-reset-tokens",
}
# Anthropic's names for the same fields, read where the OpenAI ones are absent.
_ANTHROPIC_HEADERS = {
    "limit_requests": "anthropic-ratelimit-requests-limit",
    "limit_tokens": "anthropic-ratelimit-tokens-limit",
    "remaining_requests": "anthropic-ratelimit-requests-remaining",
    "remaining_tokens": "anthropic-ratelimit-tokens-remaining",
    "reset_requests": "anthropic-ratelimit-requests-reset",
    "reset_tokens": "anthropic-ratelimit-tokens-reset",
}
_RESETS = frozenset({"reset_requests", "reset_tokens"})


def rate_limit_from_headers(headers: Any) -> dict[str, Any] | None:
    """The rate-limit fields in a header mapping (httpx.Headers, dict), or None when there are none."""
    getter = getattr(headers, "get", None)
    if not callable(getter) or isinstance(headers, type):
        return None
    found: dict[str, Any] = {}
    for key, header in _HEADERS.items():
        value = getter(header)
        if value is None:
            value = getter(_ANTHROPIC_HEADERS[key])
        if not isinstance(value, str) or not value.strip():
            continue
        if key in _RESETS:
            found[key] = value.strip()  # a duration such as "6m0s"; kept as the API wrote it
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
