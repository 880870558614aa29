"""Turn arbitrary SDK values (pydantic models, sentinels, bytes, files, numpy values) into JSON-safe data."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import io
import os
import uuid
from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 32
# numpy arrays larger than this become a short description instead of a (huge) list.
_MAX_ARRAY_ITEMS = 10_000
# SDK "argument not given" markers: openai's NotGiven/Omit, httpx's UseClientDefault and friends.
_SENTINEL_NAMES = frozenset({"NotGiven", "Omit", "UseClientDefault", "_NotGiven", "Unset"})
# Keys that carry credentials: a value under one is left out unless it is a mapping (whose own keys are
# checked). A subset of the rule every request follows (`_credentials`), kept for values converted
# outside a request.
CREDENTIAL_KEYS = frozenset(
    {"api_key", "apikey", "authorization", "proxy-authorization", "x-api-key", "api-key", "openai_api_key"}
)


def is_sentinel(value: Any) -> bool:
    """True for SDK markers that mean "argument not given"."""
    return type(value).__name__ in _SENTINEL_NAMES


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """Return a JSON-safe copy of `value`; never raises."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if _depth > _MAX_DEPTH:
        return "<too deep>"
    try:
        return _convert(value, _depth + 1)
    except Exception:  # a hostile __iter__, __eq__ or property: describe the value rather than fail
        return _describe(value)


def _describe(value: Any) -> str:
    try:
        return f"<{type(value).__name__}>"
    except Exception:
        return "<object>"


def _convert(value: Any, depth: int) -> Any:
    if isinstance(value, Mapping):
        return {
            str(k): to_jsonable(v, depth)
            for k, v in value.items()
            if not is_sentinel(v) and (str(k).lower() not in CREDENTIAL_KEYS or isinstance(v, Mapping))
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, depth) for v in value if not is_sentinel(v)]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{value.nbytes if isinstance(value, memoryview) else len(value)} bytes>"
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, depth)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, decimal.Decimal, os.PathLike)):
        return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    if isinstance(value, io.IOBase):
        # Upload handles: the name says which file; the content is never read.
        name = getattr(value, "name", None)
        return f"<file {os.path.basename(str(name))!r}>" if isinstance(name, (str, os.PathLike)) else "<file>"
    if is_sentinel(value):
        return None
    dump = getattr(value, "model_dump", None)  # pydantic v2 (the openai SDK's models)
    if callable(dump):
        try:
            return to_jsonable(dump(mode="json", exclude_unset=True), depth)
        except Exception:
            pass
    legacy_dump = getattr(value, "dict", None)  # pydantic v1
    if callable(legacy_dump) and hasattr(value, "__fields__"):
        try:
            return to_jsonable(legacy_dump(exclude_unset=True), depth)
        except Exception:
            pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_jsonable(getattr(value, field.name, None), depth)
            for field in dataclasses.fields(value)
            if field.name.lower() not in CREDENTIAL_KEYS
        }
    return _numpy_like(value, depth)


def _numpy_like(value: Any, depth: int) -> Any:
    size = getattr(value, "size", None)
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and isinstance(size, int) and getattr(value, "shape", ()) != ():
        if size > _MAX_ARRAY_ITEMS:
            return f"<{type(value).__name__} shape={tuple(value.shape)} dtype={getattr(value, 'dtype', '?')}>"
        return to_jsonable(tolist(), depth)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return to_jsonable(item(), depth)
        except Exception:
            pass
    return _describe(value)
