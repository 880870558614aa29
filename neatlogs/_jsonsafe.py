"""Turn arbitrary SDK values (pydantic models, sentinels, bytes, ...) into JSON-safe data."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 32
# SDK "argument not given" markers: openai's NotGiven/Omit, httpx's UseClientDefault and friends.
_SENTINEL_NAMES = frozenset({"NotGiven", "Omit", "UseClientDefault", "_NotGiven", "Unset"})
# Keys that carry credentials; their values never reach a record.
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
    depth = _depth + 1
    if isinstance(value, Mapping):
        return {
            str(k): to_jsonable(v, depth)
            for k, v in value.items()
            if not is_sentinel(v) and str(k).lower() not in CREDENTIAL_KEYS
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, depth) for v in value if not is_sentinel(v)]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, depth)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return to_jsonable(dump(mode="json", exclude_unset=True), depth)
        except Exception:
            pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), depth)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return to_jsonable(item(), depth)
        except Exception:
            pass
    return f"<{type(value).__name__}>"
