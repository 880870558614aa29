"""Where a finished call goes: one queue and one background thread hand it to every sink.

The caller's thread only queues the record (`submit`). The dispatcher's thread (`neatlogs-dispatch`)
hands each record to every `Recorder` that wants it (its provider's trace id, tags, capture settings and
sampling, then its sinks), then counts the batch in the process-wide usage statistics. Whoever reads a
history, the statistics or flushes a sink calls `drain()` first, so it sees every call finished before.
"""

from __future__ import annotations

import random
from typing import Any

from neatlogs._log import log_internal_error
from neatlogs.record.call import CallRecord
from neatlogs.record.capture import DEFAULT_SETTINGS, CaptureSettings
from neatlogs.sinks.base import CallSink
from neatlogs.sinks.stats import USAGE_STATS
from neatlogs.worker import BackgroundWorker

__all__ = ["DISPATCHER", "Recorder", "drain", "submit"]

# Records waiting to be delivered; beyond this (the thread cannot keep up) a call is delivered on the
# caller's thread and left out of the usage statistics (counted as `uncounted`).
_MAX_PENDING = 100_000
# The thread hands records on in batches: as soon as this many wait, else every `_DELIVER_EVERY` seconds.
_WAKE_AT = 1024
_DELIVER_EVERY = 2.0


def _sees_every_call(sink: CallSink) -> bool:
    # In-process sinks (the conversation history) keep sampled-out calls: sampling limits what leaves
    # the process, and an application may rely on its history.
    return getattr(sink, "sees_every_call", False) is True


class Recorder:
    """One provider's view of the calls it traces: trace id, tags, client filter, capture settings, sinks."""

    __slots__ = ("_always", "_sampled", "capture", "client", "sample_rate", "sinks", "tags", "trace_id")

    def __init__(
        self,
        trace_id: str,
        tags: tuple[str, ...],
        sinks: list[CallSink],
        client: Any = None,
        capture: CaptureSettings = DEFAULT_SETTINGS,
    ) -> None:
        self.trace_id = trace_id
        self.tags = tags
        self.sinks = sinks
        self.client = client
        self.capture = capture
        self.sample_rate = capture.sample_rate
        self._always = [sink for sink in sinks if _sees_every_call(sink)]
        self._sampled = [sink for sink in sinks if not _sees_every_call(sink)]

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
        record.capture = self.capture
        rate = self.sample_rate
        # Errors are always kept; a sampled-out call still counts in neatlogs.stats() and stays in histories.
        sampled = rate >= 1.0 or record.status == "error" or (rate > 0.0 and random.random() < rate)
        record.sampled = sampled
        for sink in self._always:
            try:
                sink.emit(record)
            except Exception:
                log_internal_error(f"sink {type(sink).__name__}")
        if sampled:
            for sink in self._sampled:
                try:
                    sink.emit(record)
                except Exception:
                    log_internal_error(f"sink {type(sink).__name__}")


def _route(record: CallRecord) -> None:
    # every recorder that wants the record gets it (a copy each after the first)
    client = record.client
    first = True
    for recorder in record.route:
        if recorder.wants(client):
            recorder.deliver(record if first else record.copy())
            first = False


def _deliver(batch: list[CallRecord]) -> None:
    for record in batch:
        try:
            _route(record)
        except Exception:
            log_internal_error("delivering a finished call")
    USAGE_STATS.count(batch)


DISPATCHER: BackgroundWorker[CallRecord] = BackgroundWorker(
    "neatlogs-dispatch", _deliver, capacity=_MAX_PENDING, wake_at=_WAKE_AT, every=_DELIVER_EVERY
)


def submit(record: CallRecord) -> None:
    """Queue a finished record for the recorders of its `route` (caller's thread: an append); it is
    delivered, then counted once in the usage statistics, off the caller's thread, in submission order."""
    if not DISPATCHER.put(record):
        USAGE_STATS.count_uncounted()
        try:
            _route(record)
        except Exception:
            log_internal_error("delivering a finished call")


def drain() -> None:
    """Deliver every record submitted so far, on this thread (readers and flushes call it first)."""
    DISPATCHER.drain()
