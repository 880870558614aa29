"""Where a finished call goes: a recorder stamps it with its trace id and tags and hands it to its sinks."""

from __future__ import annotations

from typing import Any, Protocol

from ._log import log_internal_error
from ._record import CallRecord


class Sink(Protocol):
    """Receives finished records on the caller's thread; must only take a reference or enqueue."""

    def emit(self, record: CallRecord) -> None: ...


class Recorder:
    """One provider's view of the calls it traces: its trace id, tags, client filter and sinks."""

    __slots__ = ("client", "sinks", "tags", "trace_id")

    def __init__(self, trace_id: str, tags: tuple[str, ...], sinks: list[Sink], client: Any = None) -> None:
        self.trace_id = trace_id
        self.tags = tags
        self.sinks = sinks
        self.client = client

    def wants(self, client: Any) -> bool:
        """True when this recorder traces calls made through `client`."""
        return self.client is None or self.client is client

    def deliver(self, record: CallRecord) -> None:
        scope = record.scope
        if scope is None:
            record.trace_id = self.trace_id
            record.tags = self.tags
        else:
            record.trace_id = scope[0] or self.trace_id
            record.tags = self.tags + tuple(t for t in scope[1] if t not in self.tags)
        for sink in self.sinks:
            try:
                sink.emit(record)
            except Exception:
                log_internal_error(f"sink {type(sink).__name__}")


def dispatch(recorders: tuple[Recorder, ...], client: Any, record: CallRecord) -> None:
    """Hand a finished record to every recorder that wants it (a copy each after the first)."""
    first = True
    for recorder in recorders:
        if recorder.wants(client):
            recorder.deliver(record if first else record.copy())
            first = False
