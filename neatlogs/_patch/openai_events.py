"""Keeping an OpenAI stream's events as the wire had them, rather than reading each chunk.

The SDK's `Stream` / `AsyncStream` decode server-sent events with a decoder of their own (one per
stream, `stream._decoder`, an `SSEDecoder`). A tapped stream gets a decoder of a subclass that also
keeps what it decodes on the record; nothing of it is read on the caller's thread. The record's
reader, or the usage statistics' thread, turns it into events later (`RawChunks`).

Where the decoder splits each network read into lines and hands them to `_decode_lines` (openai
3.x), the tap keeps those lines, one call per read. Otherwise (openai 1.x, 2.x) it keeps each
event's data as `decode(line)` completes it, one call per line.

Why inside the decoder, in a subclass: wrapping the decoder's `iter_bytes` / `aiter_bytes` in a
generator of ours adds a layer per event and, because the SDK leaves its async event generators
unfinished after `[DONE]`, one more async generator per stream for the event loop to finalise in a
task of its own. Setting the methods on the decoder instance instead measured slower: the SDK's
decoder code then loses CPython's specialised attribute reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from .._record import CallRecord, RawChunks

# a stream's event data texts -> the chunks its reader reads
Settle = Callable[[list[str]], list[Any]]


def _event_tap_class(decoder_class: Any) -> Any:
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


def _line_tap_class(decoder_class: Any) -> Any:
    """A subclass of the SDK's decoder class that keeps the lines of every network read."""
    decode_lines = decoder_class._decode_lines

    class LineTappedDecoder(decoder_class):  # type: ignore[misc,valid-type]
        _neatlogs_tap: tuple[CallRecord, RawChunks]

        def _decode_lines(self, lines: Iterable[bytes]) -> Any:
            record, kept = self._neatlogs_tap
            if record.finished:  # a stream read on after its record ended keeps nothing more
                return decode_lines(self, lines)
            lines = list(lines)  # the SDK splits the read lazily; it decodes the same list below
            if record.t_first is None:  # the first read with an event's data (not a comment)
                for line in lines:
                    if line[:5] == b"data:":
                        record.t_first = time.perf_counter_ns()
                        break
            kept += lines
            return decode_lines(self, lines)

    return LineTappedDecoder


def _event_data(decoder_class: Any, lines: list[bytes]) -> list[str]:
    """The data of the events in a stream's lines, decoded by a fresh decoder of the SDK's own."""
    decoder = decoder_class()
    data = []
    for line in lines:
        event = decoder.decode(line.decode("utf-8", errors="replace"))
        if event is not None:
            data.append(event.data)
    return data


def event_tap(settle: Settle, decoder_class: Any) -> Callable[[Any, CallRecord], RawChunks | None]:
    """A `CallKind.tap` for OpenAI streams decoded by `decoder_class` (the SDK's `SSEDecoder`), whose
    events' data `settle` turns into the reader's chunks."""
    settle_kept: Callable[[list[Any]], list[Any]]
    if callable(getattr(decoder_class, "_decode_lines", None)):
        tapped_class = _line_tap_class(decoder_class)

        def settle_kept(lines: list[bytes]) -> list[Any]:
            return settle(_event_data(decoder_class, lines))

    else:
        tapped_class = _event_tap_class(decoder_class)
        settle_kept = settle

    def tap(stream: Any, record: CallRecord) -> RawChunks | None:
        # Only the SDK's own decoder, still unused (the stream is not read yet): a fresh tapped one
        # replaces it. Any other decoder: the proxy keeps the stream's chunks instead.
        if type(getattr(stream, "_decoder", None)) is not decoder_class:
            return None
        kept = RawChunks(settle_kept)
        decoder = tapped_class()
        decoder._neatlogs_tap = (record, kept)
        stream._decoder = decoder
        record.chunks = kept
        return kept

    return tap
