"""The call record.

A `CallRecord` is created on the caller's thread and holds only references and timestamps.
`to_dict()` turns it into the contract's JSON-safe dict exactly once, later, on whichever
thread first needs it (the exporter's, or a `get_conversation_history()` caller).
"""

from __future__ import annotations

import datetime
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ._log import log_internal_error
from ._pricing import cost_usd
from ._redact import mask_secrets

# A provider-specific function that reads what a call kept and returns contract fields.
Reader = Callable[["CallRecord"], dict[str, Any]]

_CONVERT_LOCK = threading.Lock()


def _iso(ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_info(exc: BaseException) -> dict[str, Any]:
    """The contract's `error` dict for an exception: type, message, status code, request id."""
    info: dict[str, Any] = {"type": type(exc).__name__, "message": mask_secrets(str(exc))}
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        info["status_code"] = status
    request_id = getattr(exc, "request_id", None)
    if isinstance(request_id, str):
        info["request_id"] = request_id
    return info


class CallRecord:
    """One traced call: what was asked, what came back, and when."""

    __slots__ = (
        "_dict",
        "chunks",
        "client",
        "context",
        "error",
        "finished",
        "operation",
        "provider",
        "reader",
        "request",
        "response",
        "scope",
        "started_ns",
        "status",
        "stream",
        "t_end",
        "t_first",
        "t_start",
        "tags",
        "trace_id",
    )

    def __init__(
        self,
        provider: str,
        operation: str,
        reader: Reader,
        request: dict[str, Any],
        stream: bool,
        client: Any = None,
    ) -> None:
        self.started_ns = time.time_ns()
        self.t_start = time.perf_counter_ns()
        self.t_first: int | None = None
        self.t_end: int | None = None
        self.provider = provider
        self.operation = operation
        self.reader = reader
        self.request = request
        self.stream = stream
        self.client = client  # the SDK client, read only by the provider's reader
        self.response: Any = None
        self.chunks: list[Any] = []
        self.error: BaseException | None = None
        self.status = "success"
        self.finished = False
        self.trace_id = ""
        self.tags: tuple[str, ...] = ()
        self.context: Any = None
        self.scope: tuple[str | None, tuple[str, ...]] | None = None  # from `neatlogs.trace(...)`
        self._dict: dict[str, Any] | None = None

    def copy(self) -> CallRecord:
        """A shallow copy that shares the call's data; used when several recorders see one call."""
        twin = CallRecord.__new__(CallRecord)
        for name in CallRecord.__slots__:
            setattr(twin, name, getattr(self, name))
        twin._dict = None
        return twin

    @property
    def duration_ns(self) -> int:
        """Nanoseconds from the call to its end (0 while it is still running)."""
        return (self.t_end - self.t_start) if self.t_end is not None else 0

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON-safe dict; built once and cached. Callers must not mutate it."""
        built = self._dict
        if built is None:
            with _CONVERT_LOCK:
                built = self._dict
                if built is None:
                    built = self._dict = self._build()
                    # The SDK objects are no longer needed: let them go so kept records stay small.
                    self.response = None
                    self.chunks = []
                    self.request = {}
        return built

    def _build(self) -> dict[str, Any]:
        end = self.t_end if self.t_end is not None else self.t_start
        duration_ns = end - self.t_start
        record: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "trace_id": self.trace_id,
            "provider": self.provider,
            "operation": self.operation,
            "model": None,
            "response_model": None,
            "request": {},
            "prompt": None,
            "completion": None,
            "choices": [],
            "finish_reason": None,
            "stream": self.stream,
            "usage": None,
            "cost_usd": None,
            "tags": list(self.tags),
            "started_at": _iso(self.started_ns),
            "ended_at": _iso(self.started_ns + duration_ns),
            "duration_ms": duration_ns / 1e6,
            "ttft_ms": (self.t_first - self.t_start) / 1e6 if self.t_first is not None else None,
            "status": self.status,
            "error": error_info(self.error) if self.error is not None else None,
        }
        try:
            record.update(self.reader(self))
        except Exception:
            log_internal_error(f"reading a {self.provider} {self.operation} call")
        try:
            record["cost_usd"] = cost_usd(record["response_model"] or record["model"], record["usage"])
        except Exception:
            log_internal_error("pricing a call")
        return record
