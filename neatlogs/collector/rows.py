"""A record as the store keeps it: its row, its search text, its index entries and summaries."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Stored records are folded into the search index and summaries once this many (or this many
# characters of search text) are waiting, or before a query that reads them.
_FOLD_ROWS = 1000
_FOLD_CHARS = 4_000_000

Row = tuple[Any, ...]

_INSERT = (
    "INSERT OR IGNORE INTO records (seq, id, trace_id, started_at, ended_at, status, kind, parent_id,"
    " name, model, provider, operation, prompt_tokens, completion_tokens, total_tokens, cost_usd,"
    " duration_ms, ttft_ms, finish_reason, error_type, error_message, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ERROR_MESSAGE_CHARS = 300
# Keys whose values are not words anyone searches for (roles, ids, image data).
_UNSEARCHED = frozenset(
    ("role", "type", "id", "index", "image_url", "url", "tool_call_id", "call_id", "detail")
)
_INT64 = range(-(2**63), 2**63)
_SURROGATE = re.compile("[\ud800-\udfff]")


# ---------------------------------------------------------------- building a row


def _str(value: Any) -> str | None:
    return value if type(value) is str or isinstance(value, str) else None


def _words(value: Any, out: list[str], depth: int = 0) -> None:
    kind = type(value)
    if kind is str:
        if value and not value.startswith("data:"):  # inline images and files: no words
            out.append(value)
    elif kind is list or kind is tuple:
        if depth < 16:
            for item in value:
                if type(item) is dict and len(item) == 2 and type(item.get("content")) is str:
                    out.append(item["content"])  # a plain chat message, the common case
                else:
                    _words(item, out, depth + 1)
    elif kind is dict and depth < 16:
        for key, item in value.items():
            if key not in _UNSEARCHED:
                _words(item, out, depth + 1)


def _search_text(record: Mapping[str, Any], error: Any) -> str:
    """The text full-text search looks in: prompt (or a span's input), completion, error and span name."""
    out: list[str] = []
    prompt = record.get("prompt")
    if prompt is None and record.get("kind") == "span":
        prompt = record.get("request")  # the SDK sends a span's input as {"input": ...} there
    _words(prompt, out)
    _words(record.get("completion"), out)
    if error is not None:
        message = error.get("message")
        if type(message) is str:
            out.append(message)
    name = record.get("name")
    if type(name) is str:
        out.append(name)
    return "\n".join(out)


def _row(record: Mapping[str, Any], text: str | None, seq: int) -> Row:
    # Columns are best-effort copies for filtering and sums; the JSON column is the record itself,
    # so a field of the wrong type becomes NULL here instead of rejecting the record. (Type checks are
    # inline: this runs for every record.)
    get = record.get
    usage = get("usage")
    if type(usage) is dict or isinstance(usage, Mapping):
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        total = usage.get("total_tokens")
    else:
        prompt = completion = total = None
    error = get("error")
    if type(error) is dict or isinstance(error, Mapping):
        error_type = _str(error.get("type"))
        message = _str(error.get("message"))
        error_message = message[:_ERROR_MESSAGE_CHARS] if message is not None else None
    else:
        error = error_type = error_message = None
    started, kind = get("started_at"), get("kind")
    return (
        seq,
        record["id"],
        record["trace_id"],
        started if type(started) is str else "",
        _str(get("ended_at")),
        _str(get("status")),
        "span" if kind == "span" else "llm",  # a record without `kind` is a call (contract 6)
        _str(get("parent_id")),
        _str(get("name")),
        _str(get("model")),
        _str(get("provider")),
        _str(get("operation")),
        _int(prompt),
        _int(completion),
        _int(total),
        _number(get("cost_usd")),
        _number(get("duration_ms")),
        _number(get("ttft_ms")),
        _str(get("finish_reason")),
        error_type,
        error_message,
        json.dumps(record, separators=(",", ":"), allow_nan=False) if text is None else text,
    )


def _extras(record: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The record's search text and its string tags."""
    error = record.get("error")
    text = _search_text(record, error if type(error) is dict else None)
    tags = record.get("tags")
    if type(tags) is list and tags:
        return text, [tag for tag in tags if type(tag) is str]
    return text, []


def _int(value: Any) -> int | None:
    # bool is an int subclass; a boolean token count is garbage, not 0/1.
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        return value if value in _INT64 else None  # SQLite integers are 64-bit
    return None


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float
            return None
    return None


def _clean_str(value: str) -> str:
    if value.isascii() or _SURROGATE.search(value) is None:
        return value
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _no_surrogates(value: Any) -> Any:
    """`value` with lone surrogates (which UTF-8 cannot hold) replaced by U+FFFD, in every string."""
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, list):
        return [_no_surrogates(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_no_surrogates(item) for item in value)
    if isinstance(value, dict):
        return {_no_surrogates(key): _no_surrogates(item) for key, item in value.items()}
    return value


def _clean_json(blob: bytes) -> bytes:
    """A stored record's JSON as UTF-8 bytes any JSON parser accepts: escaped lone surrogates replaced."""
    if b"\\ud" not in blob and b"\\uD" not in blob:
        return blob
    value = _no_surrogates(json.loads(blob))
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _loads(blob: bytes) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(_clean_json(blob))
    return found


def _loads_or_empty(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _text_factory(data: bytes) -> str:
    # Text a foreign tool wrote as invalid UTF-8 is read with replacement characters, not an error.
    return data.decode("utf-8", "replace")


Entry = tuple[int, str, list[str]]  # seq, search text, tags: what a stored record adds to the index


def _entries(pairs: Sequence[tuple[int, Mapping[str, Any]]]) -> list[Entry]:
    """The search text and tags of stored records (seq, record), lone surrogates replaced."""
    found: list[Entry] = []
    for seq, record in pairs:
        text, tags = _extras(record)
        found.append((seq, _clean_str(text), [_clean_str(tag) for tag in tags]))
    return found
