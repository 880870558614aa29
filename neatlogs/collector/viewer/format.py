"""How the pages write numbers and times: durations, dollars, token counts, relative times."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

_DASH = "\u2013"  # what a missing number shows as


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from a record's ISO 8601 text, or None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    """The contract's time format: ISO 8601 UTC with microseconds and a Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ms(value: Any) -> str:
    """A duration in milliseconds, written with the unit a person reads fastest."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return _DASH
    if value == 0:
        return "0 ms"
    if value < 10:
        return f"{value:.1f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.2f} s"
    minutes, seconds = divmod(value / 1000, 60)
    return f"{int(minutes)} min {seconds:02.0f} s"


def usd(value: Any) -> str:
    """Dollars: enough decimals that a single cheap call does not show as $0.00."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return _DASH
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.6f}"
    if abs(value) < 1:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def count(value: Any) -> str:
    """An integer with thousands separators, or a dash when absent."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return _DASH
    return f"{int(value):,}"


def ago(value: Any, now: datetime | None = None) -> str:
    """'12 s ago', '5 min ago', ... for an ISO time; the exact time goes in a title beside it."""
    moment = parse_time(value)
    if moment is None:
        return _DASH
    seconds = ((now or datetime.now(timezone.utc)) - moment).total_seconds()
    if seconds < 0:
        return "just now" if seconds > -5 else exact(value)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = int(seconds // size)
            return f"{amount} {unit} ago" if unit != "d" or amount < 30 else exact(value)
    return f"{int(seconds)} s ago"


def exact(value: Any) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS.mmm UTC'."""
    moment = parse_time(value)
    if moment is None:
        return _DASH if value is None else str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def pretty_json(value: Any) -> str:
    """Indented JSON for people; JSON text (tool arguments, tool results) is parsed first."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if isinstance(parsed, str):
            return parsed
        value = parsed
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


RANGES: dict[str, tuple[str, timedelta | None]] = {
    "15m": ("last 15 min", timedelta(minutes=15)),
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(hours=24)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
    "all": ("all time", None),
    "custom": ("custom…", None),
}
DEFAULT_RANGE = "7d"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def clean_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record with the fields the pages read coerced to their contract types.

    Records are validated for their keys only; a field of the wrong type must draw as absent,
    not break the page. The raw JSON on the page is always the record as stored.
    """
    view = dict(record)
    for key in ("id", "trace_id"):
        view[key] = str(record.get(key, ""))
    for key in (
        "provider", "operation", "model", "response_model", "finish_reason", "started_at", "ended_at",
        "status", "kind", "name", "parent_id", "request_id", "response_id",
    ):  # fmt: skip
        view[key] = _text(record.get(key))
    for key in ("duration_ms", "ttft_ms", "cost_usd"):
        view[key] = _num(record.get(key))
    for key in ("usage", "error", "rate_limit", "request"):
        view[key] = record.get(key) if isinstance(record.get(key), dict) else None
    if record.get("error") is not None and view["error"] is None:
        view["error"] = {"type": "error", "message": pretty_json(record.get("error"))}
    if view["error"] is not None:
        error = view["error"]
        view["error"] = {
            "type": _text(error.get("type")) or "error",
            "message": error.get("message") if isinstance(error.get("message"), str) else pretty_json(error),
            "status_code": error.get("status_code") if isinstance(error.get("status_code"), int) else None,
            "request_id": _text(error.get("request_id")),
        }
    view["stream"] = record.get("stream") is True
    tags = record.get("tags")
    view["tags"] = [str(tag) for tag in tags] if isinstance(tags, list) else []
    return view
