"""Records as the collector and the spool receive them: compact JSON text, then UTF-8 bytes.

One encoder serves both, so a record that can be sent can be spooled and read back. Lone surrogates
(`"\\ud800"`, which ordinary input such as `os.fsdecode` of a file name can produce) have no UTF-8
form: each becomes U+FFFD when the text is turned into bytes, in strings and in keys alike.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from .._sanitize import EncodedRecord

Record = dict[str, Any]

_SURROGATES = "neatlogs.replace_surrogates"
# ensure_ascii=False leaves a lone surrogate as one code point for `to_utf8` to replace; with the
# default escapes it would travel as `\ud800`: valid JSON that no UTF-8 store can keep.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)


_FFFD = "\ufffd".encode()


def _replace_surrogates(error: UnicodeError) -> tuple[bytes, int]:
    # UTF-8 refuses nothing but surrogates, so every refused code point is one. The replacement is
    # bytes: the UTF-8 encoder takes only ASCII from an error handler's str.
    if isinstance(error, UnicodeEncodeError):
        return _FFFD * (error.end - error.start), error.end
    raise error


codecs.register_error(_SURROGATES, _replace_surrogates)


def record_text(record: Record) -> str:
    """One record's compact JSON; lone surrogates are left for `to_utf8`. Raises what the encoder
    raises (TypeError, ValueError, RecursionError, or whatever a value's `str()` raises)."""
    if type(record) is EncodedRecord:
        text: str = record.json
        # The stdlib's text escapes non-ASCII, so a lone surrogate shows as `\udXXX` there (orjson
        # refuses them, and its texts are plain UTF-8). A pair (an emoji) looks the same: such a
        # record is encoded again, which replaces only the lone ones.
        if "\\ud" not in text:
            return text
    return _ENCODER.encode(record)


def to_utf8(text: str) -> bytes:
    """`text` as UTF-8, each lone surrogate replaced by U+FFFD."""
    return text.encode("utf-8", _SURROGATES)


def record_texts(records: list[Record]) -> tuple[list[str], list[Record], list[BaseException]]:
    """The texts of the records that can be encoded, those records, and the errors of the others."""
    texts: list[str] = []
    errors: list[BaseException] = []
    kept: list[Record] | None = None  # records itself until one is left out
    for i, record in enumerate(records):
        try:
            texts.append(record_text(record))
        except Exception as exc:
            if kept is None:
                kept = records[:i]
            errors.append(exc)
            continue
        if kept is not None:
            kept.append(record)
    return texts, (records if kept is None else kept), errors
