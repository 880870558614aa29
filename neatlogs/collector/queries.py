"""Query parameters of the collector's read API: parsed, checked and normalised before any SQL runs.

Standard library only (the store uses it; the HTTP layer is optional).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

STATUSES = ("success", "error", "incomplete")
KINDS = ("llm", "span")
# The most points one /v1/stats series may have; a smaller bucket over a long range is refused.
MAX_POINTS = 2000


class BadRequest(Exception):
    """A request the collector refuses; carries the HTTP status and a message for the client."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _bad(name: str, problem: str) -> BadRequest:
    return BadRequest(400, f"{name}: {problem}")


@dataclass(frozen=True)
class Filters:
    """What a list of records or traces is narrowed to; None means "any"."""

    trace_id: str | None = None
    status: str | None = None
    model: str | None = None
    provider: str | None = None
    tag: str | None = None
    kind: str | None = None
    parent_id: str | None = None  # records only: the children of one span
    since: str | None = None  # ISO 8601 UTC, microseconds, "Z" (the records' own format)
    until: str | None = None  # exclusive
    q: str | None = None  # words to find, as the user typed them


@dataclass
class Page:
    """One page of a list, and the cursor for the next page (None on the last one)."""

    items: list[Any] = field(default_factory=list)
    next_cursor: str | None = None


# ---------------------------------------------------------------- time


def parse_time(name: str, raw: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text (a "Z" suffix or no offset both mean UTC)."""
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise _bad(
            name, f"{raw!r} is not an ISO 8601 time; send e.g. 2026-01-31T09:30:00Z or 2026-01-31"
        ) from None


def format_time(value: datetime) -> str:
    """The records' time format: ISO 8601 UTC with microseconds and a "Z"."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- filters


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value if value else None  # an empty field of a form means "any"


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _text(params, name)
    if value is not None and value not in allowed:
        raise _bad(name, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def search_words(q: str) -> list[str]:
    """The words of a search box's text, as the full-text index splits them."""
    return re.findall(r"\w+", q)


def filters_from(params: Mapping[str, str]) -> Filters:
    """Filters from query parameters; raises BadRequest(400) naming the first bad parameter.

    Unknown parameters are ignored, and an empty value means "no filter", as with HTML forms.
    """
    since = _text(params, "since")
    until = _text(params, "until")
    since_at = parse_time("since", since) if since is not None else None
    until_at = parse_time("until", until) if until is not None else None
    if since_at is not None and until_at is not None and until_at <= since_at:
        raise _bad("until", f"{until!r} is not after since {since!r}; swap them or widen the range")
    q = _text(params, "q")
    if q is not None:
        if len(q) > 1000:
            raise _bad("q", "longer than 1000 characters; search for fewer words")
        if not search_words(q):
            raise _bad("q", f"{q!r} holds no word to search for (letters or digits)")
    return Filters(
        trace_id=_text(params, "trace_id"),
        status=_choice(params, "status", STATUSES),
        model=_text(params, "model"),
        provider=_text(params, "provider"),
        tag=_text(params, "tag"),
        kind=_choice(params, "kind", KINDS),
        parent_id=_text(params, "parent_id"),
        since=format_time(since_at) if since_at is not None else None,
        until=format_time(until_at) if until_at is not None else None,
        q=q,
    )


def fts_query(q: str) -> str:
    """An FTS5 query finding records holding every word of `q` (no FTS5 syntax reaches SQLite)."""
    return " ".join(f'"{word}"' for word in search_words(q))


# ---------------------------------------------------------------- cursors


def encode_cursor(*position: str | int | None) -> str:
    """An opaque cursor for the position after which the next page starts."""
    text = json.dumps(list(position), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(raw: str | None, shape: tuple[type, ...]) -> tuple[Any, ...] | None:
    """The position in a cursor from encode_cursor, checked against `shape`; BadRequest if it is not one."""
    if raw is None or raw == "":
        return None
    problem = _bad("cursor", "not a cursor this API gave out; leave it out to start from the first page")
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        raise problem from None
    if not isinstance(value, list) or len(value) != len(shape):
        raise problem
    for item, kind in zip(value, shape, strict=True):
        if type(item) is not kind:
            raise problem
    return tuple(value)


# ---------------------------------------------------------------- stats parameters

_BUCKET = re.compile(r"(\d{1,6})([mhd])")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}
# Bucket sizes "auto" picks from, smallest first (minutes).
_AUTO_BUCKETS = (1, 5, 15, 30, 60, 180, 360, 720, 1440, 10080)
_AUTO_POINTS = 200


@dataclass(frozen=True)
class StatsRange:
    """A /v1/stats range: whole minutes since (inclusive) to until (exclusive), and a bucket size."""

    since_minute: int  # minutes since the Unix epoch
    until_minute: int
    bucket_minutes: int


def _minute_floor(value: datetime) -> int:
    return int(value.timestamp() // 60)


def _minute_ceil(value: datetime) -> int:
    return -int(-value.timestamp() // 60)


def minute_time(minute: int) -> str:
    """The ISO 8601 time of the start of an epoch minute."""
    return format_time(datetime.fromtimestamp(minute * 60, tz=timezone.utc))


def stats_range(params: Mapping[str, str], now: datetime | None = None) -> StatsRange:
    """The range and bucket of a /v1/stats request (defaults: the last 24 hours, bucket "auto").

    since is rounded down and until up to whole minutes, the resolution of the stored counts.
    """
    now = now or datetime.now(timezone.utc)
    since = _text(params, "since")
    until = _text(params, "until")
    until_at = parse_time("until", until) if until is not None else now
    since_at = parse_time("since", since) if since is not None else until_at - timedelta(hours=24)
    if until_at <= since_at:
        raise _bad("until", f"{until_at.isoformat()} is not after since {since_at.isoformat()}")
    first, end = _minute_floor(since_at), _minute_ceil(until_at)
    span = end - first
    raw = _text(params, "bucket") or "auto"
    if raw == "auto":
        size = next((b for b in _AUTO_BUCKETS if span / b <= _AUTO_POINTS), _AUTO_BUCKETS[-1])
    else:
        match = _BUCKET.fullmatch(raw)
        if match is None or int(match.group(1)) == 0:
            raise _bad("bucket", f"{raw!r} is not a bucket size; send e.g. 1m, 5m, 1h, 1d or auto")
        size = int(match.group(1)) * _UNIT_MINUTES[match.group(2)]
    if span / size > MAX_POINTS:
        raise _bad(
            "bucket",
            f"{raw!r} makes {span // size:,} points over this range, more than {MAX_POINTS}; "
            "use a larger bucket or a shorter range",
        )
    return StatsRange(first, end, size)
