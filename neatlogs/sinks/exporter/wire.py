"""Records as the collector and the spool receive them: compact JSON text, then UTF-8 bytes.

One encoder serves both, so a record that can be sent can be spooled and read back. Lone surrogates
(`"\\ud800"`, which ordinary input such as `os.fsdecode` of a file name can produce) have no UTF-8
form: each becomes U+FFFD when the text is turned into bytes, in strings and in keys alike.
"""

from __future__ import annotations

import codecs
import json
from typing import Any, cast

from neatlogs.record import sanitize as _sanitize
from neatlogs.record.sanitize import EncodedRecord

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


def _made_by_orjson() -> bool:
    # `json_text` makes records' texts with orjson whenever it is installed (the `speedups` extra).
    return getattr(_sanitize, "_orjson", None) is not None


def _own_text(text: str, by_orjson: bool) -> bool:
    """Whether a record's own text can be sent as it is (holds no lone surrogate)."""
    # orjson refuses lone surrogates: its texts never hold one (and only its texts are not ASCII).
    # The stdlib's escape non-ASCII, so one shows as `\udXXX` there; so does a pair (an emoji):
    # such a record is encoded again, which replaces only the lone ones. A search for a backslash
    # (memchr) spares most texts the slower search for three characters.
    return by_orjson or not text.isascii() or "\\" not in text or "\\ud" not in text


def to_utf8(text: str) -> bytes:
    """`text` as UTF-8, each lone surrogate replaced by U+FFFD."""
    return text.encode("utf-8", _SURROGATES)


def record_texts(records: list[Record]) -> tuple[list[str], list[Record], list[BaseException]]:
    """The compact JSON texts of the records that can be encoded (lone surrogates left for `to_utf8`),
    those records, and the errors of the others (TypeError, ValueError, RecursionError, or whatever
    a value's `str()` raises)."""
    by_orjson = _made_by_orjson()
    # The common case, at the cost of a list comprehension: every record has its own text, and
    # none holds a surrogate (see `_own_text`).
    own = [record.json if type(record) is EncodedRecord else None for record in records]
    if None not in own:
        ready = cast("list[str]", own)
        if by_orjson or not any("\\" in text and "\\ud" in text for text in ready):
            return ready, records, []
    texts: list[str] = []
    append = texts.append
    errors: list[BaseException] = []
    kept: list[Record] | None = None  # records itself until one is left out
    for i, record in enumerate(records):
        if type(record) is EncodedRecord and _own_text(record.json, by_orjson):
            append(record.json)
        else:
            try:
                append(_ENCODER.encode(record))
            except Exception as exc:
                if kept is None:
                    kept = records[:i]
                errors.append(exc)
                continue
        if kept is not None:
            kept.append(record)
    return texts, (records if kept is None else kept), errors
