"""Keeping an OpenAI stream's events as the wire had them, rather than reading each chunk.

The SDK's `Stream` / `AsyncStream` decode server-sent events with a decoder of their own (one per
stream, `stream._decoder`) and turn each event's JSON into a chunk object. A tapped stream's decoder
is wrapped: every event's data (a string the decoder made anyway) is appended to the record, and
nothing is read of it on the caller's thread. The record's reader, or the usage statistics'
thread, decodes those strings later (`RawChunks`).

(Hooking `SSEDecoder.decode` per stream instead, through the decoder's instance dict, runs fewer
instructions but measured slower: the SDK's decoder code then loses CPython's specialised
attribute reads. A class with an `async def __anext__` instead of the async generator `_akeep`
measured slower too: a new coroutine per event.)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .._record import CallRecord, RawChunks


class _EventTap:
    """Stands in for a stream's SSE decoder: passes every event on, keeping its data."""

    __slots__ = ("_decoder", "_kept", "_record")

    def __init__(self, decoder: Any, record: CallRecord, kept: RawChunks) -> None:
        self._decoder = decoder
        self._record = record
        self._kept = kept

    # The SDK's decoders read bytes (openai >= 1.13) or lines (earlier 1.x).
    def iter_bytes(self, iterator: Any) -> Iterator[Any]:
        return self._keep(self._decoder.iter_bytes(iterator))

    def iter(self, iterator: Any) -> Iterator[Any]:
        return self._keep(self._decoder.iter(iterator))

    def aiter_bytes(self, iterator: Any) -> AsyncIterator[Any]:
        return self._akeep(self._decoder.aiter_bytes(iterator))

    def aiter(self, iterator: Any) -> AsyncIterator[Any]:
        return self._akeep(self._decoder.aiter(iterator))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decoder, name)

    def _keep(self, events: Iterator[Any]) -> Iterator[Any]:
        record, kept = self._record, self._kept
        for event in events:
            if not record.finished:  # a stream read on after its record ended keeps nothing more
                if not kept:
                    record.t_first = time.perf_counter_ns()
                kept.append(event.data)
            yield event

    async def _akeep(self, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
        record, kept = self._record, self._kept
        async for event in events:
            if not record.finished:
                if not kept:
                    record.t_first = time.perf_counter_ns()
                kept.append(event.data)
            yield event


def event_tap(settle: Callable[[list[str]], list[Any]]) -> Callable[[Any, CallRecord], RawChunks | None]:
    """A `CallKind.tap` for OpenAI streams whose events `settle` turns into the reader's chunks."""

    def tap(stream: Any, record: CallRecord) -> RawChunks | None:
        decoder = getattr(stream, "_decoder", None)
        if decoder is None or isinstance(decoder, _EventTap):
            return None  # not a stream this module knows how to tap: the proxy keeps its chunks
        kept = RawChunks(settle)
        stream._decoder = _EventTap(decoder, record, kept)
        record.chunks = kept
        return kept

    return tap
