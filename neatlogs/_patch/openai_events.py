"""Keeping an OpenAI stream's events as the wire had them, rather than reading each chunk.

The SDK's `Stream` / `AsyncStream` decode server-sent events with a decoder of their own (one per
stream, `stream._decoder`, an `SSEDecoder`), whose `decode(line)` returns each event as it completes.
A tapped stream gets a decoder of a subclass whose `decode` also appends the event's data (a string
the decoder made anyway) to the record; nothing is read of it on the caller's thread. The record's
reader, or the usage statistics' thread, decodes those strings later (`RawChunks`).

Why `decode`, in a subclass: wrapping the decoder's `iter_bytes` / `aiter_bytes` in a generator of
ours adds a layer per event and, because the SDK leaves its async event generators unfinished after
`[DONE]`, one more async generator per stream for the event loop to finalise in a task of its own.
Setting `decode` on the decoder instance instead measured slower: the SDK's decoder code then loses
CPython's specialised attribute reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._record import CallRecord, RawChunks


def _tapped(decoder_class: Any) -> Any:
    """A subclass of the SDK's decoder class that keeps every event's data on the record it serves."""
    decode = decoder_class.decode

    class TappedDecoder(decoder_class):  # type: ignore[misc,valid-type]
        _neatlogs_tap: tuple[CallRecord, RawChunks]

        def decode(self, line: str) -> Any:
            event = decode(self, line)
            if event is not None:
                record, kept = self._neatlogs_tap
                if not record.finished:  # a stream read on after its record ended keeps nothing more
                    if not kept:
                        record.t_first = time.perf_counter_ns()
                    kept.append(event.data)
            return event

    return TappedDecoder


def event_tap(
    settle: Callable[[list[str]], list[Any]], decoder_class: Any
) -> Callable[[Any, CallRecord], RawChunks | None]:
    """A `CallKind.tap` for OpenAI streams decoded by `decoder_class` (the SDK's `SSEDecoder`), whose
    events `settle` turns into the reader's chunks."""
    tapped_class = _tapped(decoder_class)

    def tap(stream: Any, record: CallRecord) -> RawChunks | None:
        # Only the SDK's own decoder, still unused (the stream is not read yet): a fresh tapped one
        # replaces it. Any other decoder: the proxy keeps the stream's chunks instead.
        if type(getattr(stream, "_decoder", None)) is not decoder_class:
            return None
        kept = RawChunks(settle)
        decoder = tapped_class()
        decoder._neatlogs_tap = (record, kept)
        stream._decoder = decoder
        record.chunks = kept
        return kept

    return tap
