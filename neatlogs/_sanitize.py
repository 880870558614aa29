"""One walk over a record dict: a JSON-safe copy with masks applied, base64 omitted and long strings cut.

Every string anywhere in the record is treated the same way (prompt, completion, choices, request, error),
so fields added by new readers are covered without being named here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ._jsonsafe import to_jsonable

# Payloads of data URLs (`data:image/png;base64,...`) at least this long are replaced by their size.
_DATA_URL_MIN = 256
# Strings at least this long made only of base64 characters (audio, images without a data: prefix) too.
_BARE_BASE64_MIN = 1024
_DATA_URL = re.compile(
    rf"(data:[\w.+\-]*/?[\w.+\-]*(?:;[\w.+\-]+=?[\w.+\-]*)*;base64,)([A-Za-z0-9+/=_\-]{{{_DATA_URL_MIN},}})"
)
_BARE_BASE64 = re.compile(r"[A-Za-z0-9+/\-_]+={0,2}")
# How much longer than the limit a string is kept while masking, so a key that straddles the cut is still
# seen whole by the masks (no credential format is this long).
_MASK_SLACK = 512
_MAX_DEPTH = 64


def truncation_marker(cut: int) -> str:
    """What replaces the end of a string that was cut."""
    return f"...[truncated {cut} chars]"


def _omit_base64(text: str) -> str:
    if "base64," in text:
        text = _DATA_URL.sub(lambda m: f"{m.group(1)}[base64 omitted: {len(m.group(2))} chars]", text)
    if len(text) >= _BARE_BASE64_MIN and _BARE_BASE64.fullmatch(text):
        return f"[base64 omitted: {len(text)} chars]"
    return text


class Cleaner:
    """Copies a record, cleaning each string; counts roughly how many characters the copy holds."""

    __slots__ = ("chars", "mask", "max_string")

    def __init__(self, mask: Callable[[str], str] | None, max_string: int | None) -> None:
        self.mask = mask
        self.max_string = max_string
        self.chars = 0

    def text(self, text: str) -> str:
        size = len(text)
        limit = self.max_string
        if size < _DATA_URL_MIN and (limit is None or size <= limit):  # the common, short string
            if self.mask is not None:
                text = self.mask(text)
            self.chars += len(text) + 2
            return text
        text = _omit_base64(text)
        precut = 0
        if limit is not None and len(text) > limit + _MASK_SLACK:
            precut = len(text) - (limit + _MASK_SLACK)
            text = text[: limit + _MASK_SLACK]
        if self.mask is not None:
            text = self.mask(text)
        if limit is not None and len(text) > limit:
            text = text[:limit] + truncation_marker(len(text) - limit + precut)
        self.chars += len(text) + 2
        return text

    def copy(self, value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if kind is str:
            return self.text(value)
        if value is None or kind is bool or kind is int:
            self.chars += 5
            return value
        if depth > _MAX_DEPTH:
            return "<too deep>"
        if kind is dict:
            chars = 2
            result: dict[str, Any] = {}
            for key, item in value.items():
                name = key if type(key) is str else str(key)
                chars += len(name) + 4
                # Leaves inline: most values are strings, numbers or None, and a call per leaf is most
                # of the cost.
                item_kind = type(item)
                if item_kind is str:
                    result[name] = self.text(item)
                elif item is None or item_kind is int or item_kind is bool:
                    chars += 5
                    result[name] = item
                else:
                    result[name] = self.copy(item, depth + 1)
            self.chars += chars
            return result
        if kind is list:
            self.chars += 2
            return [self.text(item) if type(item) is str else self.copy(item, depth + 1) for item in value]
        if kind is float and value == value and value not in (float("inf"), float("-inf")):
            self.chars += 24
            return value
        if isinstance(value, str):  # a str subclass (an SDK enum, for example)
            return self.text(str(value))
        # Anything a reader left unconverted (tuples, SDK objects, NaN): made JSON-safe, then cleaned.
        converted = to_jsonable(value)
        if isinstance(converted, (dict, list, str)):
            return self.copy(converted, depth + 1)
        self.chars += 24
        return converted


def cut_strings(value: Any, limit: int) -> Any:
    """A copy of `value` with every string longer than `limit` cut (with a marker)."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + truncation_marker(len(value) - limit)
    if isinstance(value, dict):
        return {key: cut_strings(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [cut_strings(item, limit) for item in value]
    return value


def json_size(record: Mapping[str, Any]) -> int:
    """Bytes of the record as the exporter sends it (compact JSON, non-ASCII escaped), before gzip."""
    return len(json.dumps(record, separators=(",", ":"), default=str))


# A character takes at most this many bytes in that JSON (a \uXXXX escape).
MAX_BYTES_PER_CHAR = 6
