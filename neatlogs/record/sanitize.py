"""One walk over a record dict: a JSON-safe copy with masks applied, base64 omitted and long strings cut.

Every string anywhere in the record is treated the same way (prompt, completion, choices, request, error),
so fields added by new readers are covered without being named here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from neatlogs._fastpaths import json_encoder
from neatlogs.record.jsonsafe import to_jsonable

try:  # the `speedups` extra
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]

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
    """Copies a record, cleaning each string; counts roughly how many characters the copy holds.

    `changed` says whether the copy differs from the input in anything JSON would show (a string
    masked or cut, a key or value converted, a branch too deep): when it stays False, the input's
    JSON text is the copy's too (see `clean_encoded`).
    """

    __slots__ = ("changed", "chars", "mask", "max_string", "short")

    def __init__(self, mask: Callable[[str], str] | None, max_string: int | None) -> None:
        self.mask = mask
        self.max_string = max_string
        self.chars = 0
        self.changed = False
        # Strings shorter than this are neither cut nor searched for base64: at most masked.
        self.short = _DATA_URL_MIN if max_string is None else min(_DATA_URL_MIN, max_string + 1)

    def text(self, text: str) -> str:
        size = len(text)
        if size < self.short:  # the common, short string
            if self.mask is not None:
                masked = self.mask(text)
                if masked is not text:
                    self.changed = self.changed or masked != text
                    text = masked
            self.chars += len(text) + 2
            return text
        original = text
        limit = self.max_string
        text = _omit_base64(text)
        precut = 0
        if limit is not None and len(text) > limit + _MASK_SLACK:
            precut = len(text) - (limit + _MASK_SLACK)
            text = text[: limit + _MASK_SLACK]
        if self.mask is not None:
            text = self.mask(text)
        if limit is not None and len(text) > limit:
            text = text[:limit] + truncation_marker(len(text) - limit + precut)
        if text is not original:
            self.changed = self.changed or text != original
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
            self.changed = True
            return "<too deep>"
        # Leaves are handled inline below: most values are short strings, numbers or None, and a call
        # per leaf would be most of the cost.
        short = self.short if self.mask is None else 0
        if kind is dict:
            chars = 2
            result: dict[str, Any] = {}
            mask = self.mask
            for key, item in value.items():
                if type(key) is str:
                    name = key
                else:
                    name = str(key)
                    self.changed = True
                if mask is not None:  # a key can be a secret too: {"sk-proj-...": ...}
                    masked = mask(name)
                    if masked is not name and masked != name:
                        name = free_key(masked, result)
                        self.changed = True
                item_kind = type(item)
                if item_kind is str:
                    size = len(item)
                    if size < short:
                        chars += len(name) + size + 6
                        result[name] = item
                        continue
                    result[name] = self.text(item)
                elif item is None or item_kind is int or item_kind is bool:
                    chars += 5
                    result[name] = item
                else:
                    result[name] = self.copy(item, depth + 1)
                chars += len(name) + 4
            self.chars += chars
            return result
        if kind is list:
            chars = 2
            items: list[Any] = []
            append = items.append
            for item in value:
                item_kind = type(item)
                if item_kind is str:
                    size = len(item)
                    if size < short:
                        chars += size + 2
                        append(item)
                    else:
                        append(self.text(item))
                elif item is None or item_kind is int or item_kind is bool:
                    chars += 5
                    append(item)
                else:
                    append(self.copy(item, depth + 1))
            self.chars += chars
            return items
        if kind is float and value == value and value not in (float("inf"), float("-inf")):
            self.chars += 24
            return value
        self.changed = True
        if isinstance(value, str):  # a str subclass (an SDK enum, for example)
            return self.text(str(value))
        # Anything a reader left unconverted (tuples, SDK objects, NaN): made JSON-safe, then cleaned.
        converted = to_jsonable(value)
        if isinstance(converted, (dict, list, str)):
            return self.copy(converted, depth + 1)
        self.chars += 24
        return converted


def free_key(name: str, taken: dict[str, Any]) -> str:
    """`name`, numbered when a masked key already took it (two secrets masked alike stay two keys)."""
    candidate, number = name, 2
    while candidate in taken:
        candidate = f"{name} ({number})"
        number += 1
    return candidate


class _NotPlain(Exception):
    """`plain_copy` met something the cleaner would change or convert."""


_INF = float("inf")


def _plain_text(text: str, max_string: int | None) -> None:
    """Raise _NotPlain unless the cleaner (without masks) keeps this long string as it is."""
    if max_string is not None and len(text) > max_string:
        raise _NotPlain
    if _omit_base64(text) != text:
        raise _NotPlain


def _plain_dict(value: dict[Any, Any], short: int, max_string: int | None, depth: int) -> dict[str, Any]:
    for key in value:
        if type(key) is not str:
            raise _NotPlain
    return dict(zip(value, _plain_list(value.values(), short, max_string, depth), strict=True))


def _plain_list(value: Iterable[Any], short: int, max_string: int | None, depth: int) -> list[Any]:
    result: list[Any] = []
    append = result.append
    for item in value:
        kind = type(item)
        if kind is str:
            if len(item) >= short:
                _plain_text(item, max_string)
        elif kind is dict:
            if depth >= _MAX_DEPTH:
                raise _NotPlain
            item = _plain_dict(item, short, max_string, depth + 1)
        elif kind is list:
            if depth >= _MAX_DEPTH:
                raise _NotPlain
            item = _plain_list(item, short, max_string, depth + 1)
        elif kind is float:
            if item - item != 0.0:
                raise _NotPlain
        elif item is not None and kind is not int and kind is not bool:
            raise _NotPlain
        append(item)
    return result


def plain_copy(record: dict[str, Any], max_string: int | None) -> dict[str, Any] | None:
    """A copy of `record` if the cleaner without masks would copy it unchanged; None otherwise.

    The same result as `Cleaner(None, max_string).copy(record)` when that leaves `changed` False,
    at a fraction of the cost: no size counting, and nothing but type checks per value.
    """
    short = _DATA_URL_MIN if max_string is None else min(_DATA_URL_MIN, max_string + 1)
    try:
        return _plain_dict(record, short, max_string, 1)
    except (_NotPlain, RecursionError):
        return None


class EncodedRecord(dict):  # type: ignore[type-arg]
    """A cleaned record that carries its compact JSON text (`json`, as `json_text` makes it), so the
    exporter sends that text instead of encoding the record again.

    The text is only trusted on the object it was made for: copies (copy, deepcopy, pickle) are plain
    dicts, and records must not be changed once built.
    """

    __slots__ = ("json",)

    def __init__(self, record: Mapping[str, Any], text: str) -> None:
        super().__init__(record)
        self.json = text

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self), memo)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


# Compact JSON, NaN refused, no cycle check (a cycle ends in RecursionError); see neatlogs._fastpaths.
_encode_json = json_encoder()


def json_text(value: Any) -> str | None:
    """Compact JSON of `value` as the exporter sends it, or None when the encoder refuses it (an SDK
    object, a cycle, too deep; NaN too, except with orjson, which writes null: the cleaner's `changed`
    decides whether a text stands for a view). With the `speedups` extra (orjson) non-ASCII text stays
    UTF-8 instead of `\\u` escapes; the stdlib's text is exactly `json_size` characters long."""
    try:
        if _orjson is not None:
            return _orjson.dumps(value).decode()
        return _encode_json(value)
    except (TypeError, ValueError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        return None


def json_size_at_most(text: str) -> int:
    """An upper bound of `json_size` for a record whose `json_text` is `text`: exact with the stdlib
    encoder; with orjson's UTF-8 text, at most 6 characters per byte (a `\\uXXXX` escape)."""
    return len(text) if _orjson is None else len(text.encode()) * MAX_BYTES_PER_CHAR


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
