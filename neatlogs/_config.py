"""Argument checks for the public API: wrong input fails at the call that gave it, saying how to fix it."""

from __future__ import annotations

import uuid
from typing import Any

_SCALARS = (str, int, float, bool)


def check_trace_id(value: Any) -> str:
    """A trace id: a non-empty str, or None for a fresh uuid4 hex."""
    if value is None:
        return uuid.uuid4().hex
    if not isinstance(value, str):
        raise TypeError(f"trace_id must be a str, got {type(value).__name__}: {value!r}")
    if not value.strip():
        raise ValueError("trace_id must be a non-empty string (or None for a generated one)")
    return value


def check_tags(value: Any, name: str = "tags") -> tuple[str, ...]:
    """Tags: a list or tuple of scalars, kept as strings."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{name} must be a list of strings, not a single string; did you mean {name}=[{value!r}]?"
        )
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list (or tuple) of strings, got {type(value).__name__}: {value!r}")
    tags: list[str] = []
    for index, tag in enumerate(value):
        if not isinstance(tag, _SCALARS):
            raise TypeError(
                f"{name}[{index}] must be a string, number or boolean, got {type(tag).__name__}: {tag!r}"
            )
        text = tag if isinstance(tag, str) else str(tag)
        if not text.strip():
            raise ValueError(f"{name}[{index}] is empty; tags must be non-empty strings")
        if text not in tags:
            tags.append(text)
    return tuple(tags)


def check_positive_int(value: Any, name: str) -> int:
    """A positive int setting (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}: {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def check_optional_limit(value: Any) -> int | None:
    """The `limit` of get_conversation_history: None or an int >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"limit must be an int or None, got {type(value).__name__}: {value!r}")
    if value < 0:
        raise ValueError(f"limit must be >= 0, got {value}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """A plain True/False switch."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}: {value!r}")
    return value
