"""The `Sink` protocol: what receives finished records; users may add their own (`init(sinks=...)`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from neatlogs.record.call import CallRecord

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """Receives finished records, in the order they finished, on the dispatcher's thread (not the caller's).

    `emit` should only take a reference or enqueue: it holds up every other sink while it runs. The record's
    `to_dict()` is the contract's record (what the history and the exporter see); an exception from `emit`
    is logged on the `neatlogs` logger and the record goes on to the other sinks. A sink with the attribute
    `sees_every_call = True` also gets the calls that sampling leaves out.
    """

    def emit(self, record: CallRecord) -> None: ...
