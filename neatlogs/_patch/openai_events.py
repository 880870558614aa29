"""Keeping an OpenAI stream's events as the wire had them, rather than reading each chunk.

The SDK's `Stream` / `AsyncStream` decode server-sent events with a decoder of their own (one per
stream, `SSEDecoder.decode` called per line) and turn each event's JSON into a chunk object. A tapped
stream's decoder keeps every event's data, a string it made anyway; nothing is read of it on the
caller's thread. The record's reader, or the usage statistics' thread, decodes those strings later
(`RawChunks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._record import CallRecord, RawChunks


def event_tap(settle: Callable[[list[str]], list[Any]]) -> Callable[[Any, CallRecord], RawChunks | None]:
    """A `CallKind.tap` for OpenAI streams whose events `settle` turns into the reader's chunks."""

    def tap(stream: Any, record: CallRecord) -> RawChunks | None:
        decoder = getattr(stream, "_decoder", None)
        fields = getattr(decoder, "__dict__", None)
        decode = getattr(decoder, "decode", None)
        if type(fields) is not dict or "decode" in fields or not callable(decode):
            return None  # not a decoder this module knows (or tapped already): the proxy keeps chunks
        kept = RawChunks(settle)

        def decode_and_keep(line: str) -> Any:
            event = decode(line)
            if event is not None and not record.finished:  # nothing more once the record ended
                if not kept:
                    record.t_first = time.perf_counter_ns()
                kept.append(event.data)
            return event

        fields["decode"] = decode_and_keep  # this stream's decoder only: the SDK makes one per stream
        record.chunks = kept
        return kept

    return tap
