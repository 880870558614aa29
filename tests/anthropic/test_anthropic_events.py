"""The SSE tap on the anthropic SDK's decoder: the SDK gets the very events its own decoder yields, and
the tap keeps exactly their data (named events, as Anthropic sends them, read on a fast path)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anthropic
import pytest

from neatlogs.providers._stainless.events import event_tap
from neatlogs.record.call import CallRecord

_NAMED = (
    b"".join(
        b'event: content_block_delta\ndata: {"n": %d, "text": "data: \\nevent: \xc3\xa9"}\n\n' % n
        for n in range(5)
    )
    + b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
)
# a comment, an event with two data lines, an id, and a last event cut off before its blank line
_ODD = (
    _NAMED
    + b': keep-alive\n\nevent: ping\ndata: {"a": 1}\ndata: {"b": 2}\nid: 7\n\n'
    + b'event: message_delta\ndata: {"cut"'
)


def _reads(body: bytes) -> dict[str, list[bytes]]:
    return {
        "one-read": [body],
        "3-byte-reads": [body[i : i + 3] for i in range(0, len(body), 3)],
    }


READS = {
    f"{name}-{how}": r for name, body in (("named", _NAMED), ("odd", _ODD)) for how, r in _reads(body).items()
}


def _fields(events: list[Any]) -> list[tuple[Any, ...]]:
    return [(e.event, e.data, e.id, e.retry) for e in events]


@pytest.mark.parametrize("reads", READS)
def test_the_tapped_anthropic_decoder_yields_the_sdks_events_and_keeps_their_data(reads: str) -> None:
    decoder_class = anthropic._streaming.SSEDecoder
    expected = _fields(list(decoder_class().iter_bytes(iter(READS[reads]))))
    tap = event_tap(lambda data: data, decoder_class)
    assert tap is not None, "this anthropic version's decoder is not tapped"
    stream = SimpleNamespace(_decoder=decoder_class())
    record = CallRecord("anthropic", "chat", lambda record: {}, {}, True)
    assert tap(stream, record) is record.chunks

    assert _fields(list(stream._decoder.iter_bytes(iter(READS[reads])))) == expected
    assert record.chunks.settle(record.chunks) == [data for _, data, _, _ in expected]
