"""Keeping an OpenAI stream's events as the wire had them, rather than reading each chunk.

The SDK's `Stream` / `AsyncStream` decode server-sent events with a decoder of their own (one per
stream, `stream._decoder`, an `SSEDecoder`). A tapped stream gets a decoder of a subclass that also
keeps what it decodes on the record; nothing of it is read on the caller's thread. The record's
reader, or the usage statistics' thread, turns it into events later (`RawChunks`).

Where the decoder splits each network read into lines and decodes them in `_decode_lines` (openai
3.x), the tap's `_decode_lines` keeps the read's lines and decodes them. Otherwise (openai 1.x, 2.x,
whose `iter_bytes` / `aiter_bytes` cut the bytes into events with `_iter_chunks` / `_aiter_chunks`),
its `iter_bytes` / `aiter_bytes` keep each event's lines and decode them. Either way the tap's
generator takes the place of the SDK's own, and decodes each line with the SDK's `decode`, so a tapped
stream runs no more Python calls per read than an untapped one; keeping costs an append. (A test
checks, for every openai version in the matrix, that both yield the very events the SDK's decoder
does.)

The decoder class is private to the SDK, so `sse_decoder_tap` is the one way in (listed with the
standard library's and OpenTelemetry's in `neatlogs._fastpaths`): where the SDK has no such class, or
one whose methods are not the known ones, it gives None and the stream proxy keeps the chunks the SDK
yields instead (the plain path: the same record, read from the SDK's objects).

Why inside the decoder, in a subclass: wrapping the decoder's `iter_bytes` / `aiter_bytes` in a
generator of ours adds a layer per event and, because the SDK leaves its async event generators
unfinished after `[DONE]`, one more async generator per stream for the event loop to finalise in a
task of its own. Setting the methods on the decoder instance instead measured slower: the SDK's
decoder code then loses CPython's specialised attribute reads.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from neatlogs.record.call import CallRecord, RawChunks

# a stream's event data texts -> the chunks its reader reads
Settle = Callable[[list[str]], list[Any]]


def _line_tap_class(decoder_class: Any) -> Any:
    """A subclass of the SDK's decoder class (openai 3.x) that keeps the lines of every network read."""

    class LineTappedDecoder(decoder_class):  # type: ignore[misc,valid-type]
        _neatlogs_tap: tuple[CallRecord, RawChunks]

        def _decode_lines(self, lines: Iterable[bytes]) -> Iterator[Any]:
            record, kept = self._neatlogs_tap
            if not record.finished:  # a stream read on after its record ended keeps nothing more
                # All of a read's lines at once: the SDK splits them lazily, which costs more.
                lines = list(lines)
                kept += lines
            for line in lines:
                event = self.decode(line.decode("utf-8"))
                if event is not None:
                    if record.t_first is None:  # the first event, not a `: keep-alive` comment
                        record.t_first = time.perf_counter_ns()
                    yield event

    return LineTappedDecoder


def _chunk_tap_class(decoder_class: Any) -> Any:
    """A subclass of the SDK's decoder class (openai 1.x, 2.x) that keeps the lines of every event."""

    # Each method decodes its events inline, as the SDK's do: a helper generator would add a level.
    class ChunkTappedDecoder(decoder_class):  # type: ignore[misc,valid-type]
        _neatlogs_tap: tuple[CallRecord, RawChunks]

        def iter_bytes(self, iterator: Iterator[bytes]) -> Iterator[Any]:
            record, kept = self._neatlogs_tap
            for chunk in self._iter_chunks(iterator):
                lines = chunk.splitlines()
                if not record.finished:  # a stream read on after its record ended keeps nothing more
                    kept += lines
                for line in lines:
                    event = self.decode(line.decode("utf-8"))
                    if event is not None:
                        if record.t_first is None:  # the first event, not a `: keep-alive` comment
                            record.t_first = time.perf_counter_ns()
                        yield event

        async def aiter_bytes(self, iterator: AsyncIterator[bytes]) -> AsyncIterator[Any]:
            record, kept = self._neatlogs_tap
            async for chunk in self._aiter_chunks(iterator):
                lines = chunk.splitlines()
                if not record.finished:
                    kept += lines
                for line in lines:
                    event = self.decode(line.decode("utf-8"))
                    if event is not None:
                        if record.t_first is None:
                            record.t_first = time.perf_counter_ns()
                        yield event

    return ChunkTappedDecoder


def _event_data(decoder_class: Any, lines: list[bytes]) -> list[str]:
    """The data of the events in a stream's lines (the SDK's decoder made them, so none holds a line
    break), as a fresh decoder of the SDK's own reads them."""
    # Most streams are nothing but one-line `data: ` events, each ended by one blank line: those are
    # read with bytes methods, much cheaper than decoding line by line on the thread that settles
    # streams (docs/overhead.md). Anything else (comments, other fields, an unfinished last event) is decoded.
    if len(lines) % 2 == 0 and not any(lines[1::2]):
        data_lines = lines[0::2]
        joined = b"\n".join(data_lines)  # no line holds a line break, so each `\ndata: ` starts one
        if joined[:6] == b"data: " and joined.count(b"\ndata: ") == len(data_lines) - 1:
            return joined[6:].decode("utf-8", errors="replace").split("\ndata: ")
    # Named events (`event: `, `data: `, blank: Anthropic's streams) are read the same way.
    if len(lines) % 3 == 0 and not any(lines[2::3]):
        names, data_lines = b"\n".join(lines[0::3]), lines[1::3]
        joined = b"\n".join(data_lines)
        if (
            names[:7] == b"event: "
            and names.count(b"\nevent: ") == len(data_lines) - 1
            and joined[:6] == b"data: "
            and joined.count(b"\ndata: ") == len(data_lines) - 1
        ):
            return joined[6:].decode("utf-8", errors="replace").split("\ndata: ")
    decoder = decoder_class()
    data = []
    for line in lines:
        event = decoder.decode(line.decode("utf-8", errors="replace"))
        if event is not None:
            data.append(event.data)
    return data


def event_tap(settle: Settle, decoder_class: Any) -> Callable[[Any, CallRecord], RawChunks | None] | None:
    """A `CallKind.tap` for OpenAI streams decoded by `decoder_class` (the SDK's `SSEDecoder`), whose
    events' data `settle` turns into the reader's chunks; None for a decoder it does not know."""
    if callable(getattr(decoder_class, "_decode_lines", None)):
        tapped_class = _line_tap_class(decoder_class)
    elif all(callable(getattr(decoder_class, name, None)) for name in ("_iter_chunks", "_aiter_chunks")):
        tapped_class = _chunk_tap_class(decoder_class)
    else:  # a decoder we do not know: the proxy keeps the stream's chunks instead
        return None

    def settle_kept(lines: list[bytes]) -> list[Any]:
        return settle(_event_data(decoder_class, lines))

    def ends_kept(lines: list[bytes]) -> list[Any]:
        # The first event and the last few (the very last may be an error event, which `settle`
        # leaves out), settled together so that they read as they do among all of them.
        events = [data for data in _event_data(decoder_class, lines) if data[:1] == "{"]
        return settle(events if len(events) <= 4 else events[:1] + events[-3:])

    def tap(stream: Any, record: CallRecord) -> RawChunks | None:
        # Only the SDK's own decoder, still unused (the stream is not read yet): a fresh tapped one
        # replaces it. Any other decoder: the proxy keeps the stream's chunks instead.
        if type(getattr(stream, "_decoder", None)) is not decoder_class:
            return None
        kept = RawChunks(settle_kept, ends_kept)
        decoder = tapped_class()
        decoder._neatlogs_tap = (record, kept)
        stream._decoder = decoder
        record.chunks = kept
        return kept

    return tap


def sse_decoder_tap(
    streaming_module: str, settle: Settle
) -> Callable[[Any, CallRecord], RawChunks | None] | None:
    """`event_tap` for the `SSEDecoder` of a Stainless SDK's streaming module (`"openai._streaming"`),
    or None where that module or class is missing or unknown (the proxy keeps the chunks instead)."""
    try:
        decoder_class = getattr(importlib.import_module(streaming_module), "SSEDecoder", None)
    except ImportError:
        decoder_class = None
    if not isinstance(decoder_class, type):
        return None
    return event_tap(settle, decoder_class)
