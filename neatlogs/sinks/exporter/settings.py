"""Exporter settings: explicit arguments, then `NEATLOGS_*` environment variables, then defaults."""

from __future__ import annotations

import dataclasses
import math
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any

# The environment variable behind each setting (contract, section 4).
_ENV = {
    "endpoint": "NEATLOGS_ENDPOINT",
    "api_key": "NEATLOGS_API_KEY",
    "max_queue_size": "NEATLOGS_MAX_QUEUE_SIZE",
    "batch_size": "NEATLOGS_BATCH_SIZE",
    "flush_interval": "NEATLOGS_FLUSH_INTERVAL",
    "retry_deadline": "NEATLOGS_RETRY_DEADLINE",
    "exit_timeout": "NEATLOGS_EXIT_TIMEOUT",
    "spool_dir": "NEATLOGS_SPOOL_DIR",
}
_ENDPOINT_EXAMPLE = '"http://127.0.0.1:7077"'


@dataclass(frozen=True)
class ExporterSettings:
    """Where records go and how the background exporter batches, retries and spools them."""

    endpoint: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)  # never shown by repr()
    max_queue_size: int = 10_000
    batch_size: int = 100
    flush_interval: float = 1.0
    retry_deadline: float = 120.0
    exit_timeout: float = 5.0
    spool_dir: str | None = None

    @classmethod
    def resolve(cls, **given: Any) -> ExporterSettings:
        """Build settings: non-None arguments win over `NEATLOGS_*` variables, which win over defaults."""
        unknown = sorted(set(given) - set(_ENV))
        if unknown:
            raise TypeError(
                f"unknown exporter setting(s) {', '.join(unknown)}; valid names are {', '.join(_ENV)}"
            )
        values: dict[str, Any] = {}
        for name, env_name in _ENV.items():
            value = given.get(name)
            if value is not None:
                values[name] = _check(name, value, source=f"argument {name!r}")
                continue
            raw = os.environ.get(env_name, "").strip()
            if raw:
                values[name] = _check(name, _parse_env(name, env_name, raw), source=env_name)
        return cls(**values)


def _parse_env(name: str, env_name: str, raw: str) -> Any:
    """Environment values are strings; numbers are parsed here so a typo reads as a bad value."""
    if name in ("max_queue_size", "batch_size"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{env_name}={raw!r}: {name} must be a positive integer") from None
    if name in ("flush_interval", "retry_deadline", "exit_timeout"):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{env_name}={raw!r}: {name} must be a number of seconds") from None
    return raw


def _check(name: str, value: Any, source: str) -> Any:
    if name == "endpoint":
        return _check_endpoint(value, source)
    if name == "api_key":
        return _check_api_key(value, source)
    if name in ("max_queue_size", "batch_size"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{source}: {name} must be an int, not {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{source}: {name} must be a positive integer, got {value}")
        return value
    if name in ("flush_interval", "retry_deadline", "exit_timeout"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{source}: {name} must be a number of seconds, not {type(value).__name__}")
        minimum_ok = value > 0 if name == "flush_interval" else value >= 0
        if not math.isfinite(value) or not minimum_ok:
            bound = "greater than 0" if name == "flush_interval" else "0 or more"
            raise ValueError(f"{source}: {name} must be a finite number of seconds {bound}, got {value}")
        return float(value)
    # spool_dir
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{source}: spool_dir must be a str or path, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise ValueError(f"{source}: spool_dir must be a non-empty directory path")
    return path


def _check_endpoint(value: Any, source: str) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"{source}: endpoint must be a str URL such as {_ENDPOINT_EXAMPLE}, not {type(value).__name__}"
        )
    wanted = f"endpoint must be an http(s) URL with a host, such as {_ENDPOINT_EXAMPLE}"
    shown = "<a URL with '@'>" if "@" in value else repr(value)  # userinfo may hold a password
    try:
        parts = urllib.parse.urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"{source}: {wanted}; got {shown}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{source}: {wanted}; got {shown}")
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL would be sent as Basic auth and could end up in logs.
        raise ValueError(f"{source}: endpoint must not contain credentials; pass api_key instead")
    if parts.query or parts.fragment:
        raise ValueError(f"{source}: {wanted}, without a query or fragment; got {shown}")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _check_api_key(value: Any, source: str) -> str:
    # The key itself never appears in a message.
    if not isinstance(value, str):
        raise TypeError(f"{source}: api_key must be a str, not {type(value).__name__}")
    key = value.strip()
    if not key:
        raise ValueError(f"{source}: api_key must not be empty")
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        raise ValueError(f"{source}: api_key must not contain whitespace or control characters")
    return key
