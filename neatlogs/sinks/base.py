"""What receives finished records: `CallSink` inside neatlogs, the public `Sink` for users' own sinks."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from neatlogs._log import logger

if TYPE_CHECKING:
    from neatlogs.record.call import CallRecord
    from neatlogs.record.schema import Record

__all__ = ["CallSink", "Sink"]

_failed: set[str] = set()  # sink classes whose failure was logged at WARNING


class CallSink(Protocol):
    """Receives finished `CallRecord`s (not yet converted), in the order they finished, on the
    dispatcher's thread; must only take a reference or enqueue."""

    def emit(self, record: CallRecord) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Your own destination for records: `neatlogs.init(sinks=[MySink()])`.

    `emit` gets each finished record as the contract's dict (docs/records.md), after content capture,
    masking, limits and your `redact` (as the exporter sends it), in the order the calls finished, never
    on the thread that made the call: on neatlogs' background thread (or one calling `neatlogs.flush()`).
    Keep it quick (hand slow work to a queue of your own): it holds up the other sinks. An exception it
    raises is logged on the `neatlogs` logger and the record goes on. Sampled-out calls are not emitted
    unless the sink has `sees_every_call = True`.
    """

    def emit(self, record: Record) -> None: ...


class UserSink:
    """Adapts a user's `Sink` to a `CallSink`: hands it the record dict of the exporter's view."""

    __slots__ = ("metadata_only", "sees_every_call", "sink")

    def __init__(self, sink: Sink, metadata_only: bool) -> None:
        self.sink = sink
        self.metadata_only = metadata_only
        self.sees_every_call = getattr(sink, "sees_every_call", False) is True

    def emit(self, record: CallRecord) -> None:
        view: Any = record.metadata_dict() if self.metadata_only else record.to_dict()
        try:
            self.sink.emit(copy.deepcopy(view))  # the views are shared with the other sinks
        except Exception:
            kind = type(self.sink).__name__
            first = kind not in _failed
            _failed.add(kind)
            logger.log(
                logging.WARNING if first else logging.DEBUG,
                "neatlogs: your sink %s raised while taking a record; the call and the other sinks are "
                "unaffected%s",
                kind,
                "" if first else " (repeated)",
                exc_info=True,
            )


def check_sinks(sinks: Any) -> list[Sink]:
    """The user's `sinks` option as a list; TypeError naming what is wrong."""
    if sinks is None:
        return []
    if not isinstance(sinks, (list, tuple)):
        raise TypeError(
            f"sinks must be a list of objects with an emit(record) method (neatlogs.Sink), "
            f"got {type(sinks).__name__}"
        )
    for index, sink in enumerate(sinks):
        if not callable(getattr(sink, "emit", None)):
            raise TypeError(
                f"sinks[{index}] has no emit(record) method: a sink is an object with one "
                f"(neatlogs.Sink), got {type(sink).__name__}"
            )
    return list(sinks)
