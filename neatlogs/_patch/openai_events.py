"""Keeping an OpenAI stream's events as the wire had them, rather than reading each chunk.

The SDK's `Stream` / `AsyncStream` decode server-sent events with a decoder of their own (one per
stream, `stream._decoder`) and turn each event's JSON into a chunk object. A tapped stream's decoder
is wrapped: every event's data (a string the decoder made anyway) is appended to the record, and
nothing is read of it on the caller's thread. The record's reader, or the usage statistics'
thread, decodes those strings later (`RawChunks`).

(Hooking `SSEDecoder.decode` per stream instead, through the decoder's instance dict, runs fewer
instructions but measured slower: the SDK's decoder code then loses CPython's specialised
attribute reads.)
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
        return _AsyncKeep(self._decoder.aiter_bytes(iterator), self._record, self._kept)

    def aiter(self, iterator: Any) -> AsyncIterator[Any]:
        return _AsyncKeep(self._decoder.aiter(iterator), self._record, self._kept)

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


class _AsyncKeep:
    """The async twin of `_EventTap._keep`. A class, not an async generator: the SDK leaves its event
    iterator suspended after `[DONE]`, and every abandoned async generator costs the event loop a
    finalizer task (an async generator also costs a first-iteration hook per stream)."""

    __slots__ = ("_events", "_kept", "_next", "_record")

    def __init__(self, events: AsyncIterator[Any], record: CallRecord, kept: RawChunks) -> None:
        self._events = events
        self._next = events.__anext__
        self._record = record
        self._kept = kept

    def __aiter__(self) -> _AsyncKeep:
        return self

    async def __anext__(self) -> Any:
        event = await self._next()
        record = self._record
        if not record.finished:  # as in `_EventTap._keep`
            kept = self._kept
            if not kept:
                record.t_first = time.perf_counter_ns()
            kept.append(event.data)
        return event

    def __getattr__(self, name: str) -> Any:  # aclose(), athrow(), ...: the SDK's own iterator
        return getattr(self._events, name)


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
