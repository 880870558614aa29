"""A sink that gets a view of each record other than the full one (the exporter under `capture_content`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from neatlogs.record.call import CallRecord
    from neatlogs.sinks.base import CallSink


class ContentView:
    """Wraps a sink so that it converts each record to the given view instead of the full one."""

    __slots__ = ("mode", "sink")

    def __init__(self, sink: CallSink, mode: str) -> None:
        self.sink = sink
        self.mode = mode

    def emit(self, record: CallRecord) -> None:
        """Hand the wrapped sink a view of the record (one small object, no conversion)."""
        self.sink.emit(record.view(self.mode))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)
