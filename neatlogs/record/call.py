"""The call record.

A `CallRecord` is created on the caller's thread and holds only references and timestamps.
Later, on whichever thread first needs it (the exporter's, the stats worker's, or a
`get_conversation_history()` caller), the provider's reader turns it into a raw dict once; the
views sinks see are derived from that, each once: `to_dict()` (full content) and
`metadata_dict()` (no prompt or completion text), both masked, size-limited and redacted as the
recording provider's `CaptureSettings` say (see `_capture.py`).
"""

from __future__ import annotations

import datetime
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

from neatlogs._log import log_internal_error
from neatlogs.record import pricing as _pricing
from neatlogs.record.capture import (
    DEFAULT_SETTINGS,
    FULL,
    METADATA,
    CaptureSettings,
    build_view,
    strip_content,
)
from neatlogs.record.redact import mask_secrets
from neatlogs.record.span import SpanNode
from neatlogs.record.traits import traits_of

# A provider-specific function that reads what a call kept and returns contract fields.
Reader = Callable[["CallRecord"], dict[str, Any]]
# (response, chunks, stream) -> (contract usage dict or None, response model or None), read without
# converting anything; None when it cannot tell (the full reader is used then).
QuickRead = tuple["dict[str, Any] | None", "str | None"]
Quick = Callable[[Any, list[Any], bool], "QuickRead | None"]


class Tally(NamedTuple):
    """What usage statistics need of one call (made on the dispatcher's thread)."""

    model: str
    usage: dict[str, Any] | None
    counts: _pricing.TokenCounts
    cost_usd: float | None


class RawChunks(list):  # type: ignore[type-arg]
    """A stream's lines as the wire had them, kept on the caller's thread, where keeping them costs
    less than reading the SDK's chunks. Off the caller's thread, `settle(lines)` turns them into what
    the provider's reader reads, and `ends(lines)` into the first and last of those only (all that
    usage statistics read); see `CallRecord.tally`."""

    __slots__ = ("ends", "settle")

    def __init__(
        self, settle: Callable[[list[bytes]], list[Any]], ends: Callable[[list[bytes]], list[Any]]
    ) -> None:
        super().__init__()
        self.settle = settle
        self.ends = ends


class PackedChunks:
    """A counted stream's lines, compressed: what a record keeps of them until it is read. Packing
    runs in C (no Python object per line or event is made or kept, and the collector never walks
    it); settling, which decodes every event, waits for a reader."""

    __slots__ = ("packed", "settle")

    def __init__(self, lines: RawChunks) -> None:
        self.settle = lines.settle
        self.packed = zlib.compress(b"\n".join(lines), 1) if lines else b""

    def lines(self) -> list[bytes]:
        """The lines as they were kept (none holds a line break)."""
        return zlib.decompress(self.packed).split(b"\n") if self.packed else []


# Guards building the raw dict (the reader reads SDK objects, then they are released). Views are built
# outside it, from the raw dict, which never changes once built.
_CONVERT_LOCK = threading.Lock()


# second -> "YYYY-MM-DDTHH:MM:SS" for the last seconds formatted: records come in bursts within a
# second, and a record's start and end are often in neighbouring seconds.
_seconds: dict[int, str] = {}


def _iso(ns: int) -> str:
    """ISO 8601 UTC with microseconds and a `Z`, e.g. 2026-11-20T22:41:32.123456Z."""
    second, rest = divmod(ns, 1_000_000_000)
    text = _seconds.get(second)
    if text is None:
        moment = datetime.datetime.fromtimestamp(second, tz=datetime.timezone.utc)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if len(_seconds) >= 4:
            _seconds.clear()
        _seconds[second] = text
    return f"{text}.{rest // 1000:06d}Z"


def error_info(exc: BaseException) -> dict[str, Any]:
    """The contract's `error` dict for an exception: type, message, status code, request id."""
    info: dict[str, Any] = {"type": type(exc).__name__, "message": mask_secrets(str(exc))}
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        info["status_code"] = status
    request_id = getattr(exc, "request_id", None)
    if isinstance(request_id, str):
        info["request_id"] = request_id
    return info


class CallRecord:
    """One traced call: what was asked, what came back, and when."""

    __slots__ = (
        "_facts",
        "_full",
        "_meta",
        "_raw",
        "_source",
        "_view",
        "capture",
        "chunks",
        "client",
        "context",
        "error",
        "finished",
        "operation",
        "parent",
        "prices",
        "provider",
        "quick",
        "read_by_sink",
        "reader",
        "request",
        "response",
        "route",
        "sampled",
        "scope",
        "span",
        "started_ns",
        "status",
        "stream",
        "t_end",
        "t_first",
        "t_start",
        "tags",
        "trace_id",
    )

    def __init__(
        self,
        provider: str,
        operation: str,
        reader: Reader,
        request: dict[str, Any],
        stream: bool,
        client: Any = None,
    ) -> None:
        self.started_ns = time.time_ns()
        self.t_start = time.perf_counter_ns()
        self.t_first: int | None = None
        self.t_end: int | None = None
        self.provider = provider
        self.operation = operation
        self.reader = reader
        self.quick: Quick | None = None  # the provider's cheap usage reader, for statistics
        self.request = request
        self.stream = stream
        self.client = client  # the SDK client, read only by the provider's reader
        self.response: Any = None
        self.chunks: list[Any] | PackedChunks = []
        self.error: BaseException | None = None
        self.status = "success"
        self.finished = False
        self.trace_id = ""
        self.tags: tuple[str, ...] = ()
        self.context: Any = None
        self.scope: tuple[str | None, tuple[str, ...]] | None = None  # from `neatlogs.trace(...)`
        self.parent: SpanNode | None = None  # the innermost span open when the call was made
        self.span: SpanNode | None = None  # set on a span's own record (`neatlogs.spans`)
        self.prices = _pricing.PRICES  # the price table when the call was made, used when it is converted
        self.capture: CaptureSettings = DEFAULT_SETTINGS  # set by the recorder that delivers the record
        self.sampled = True  # False once a recorder's sample rate left it out of the sinks that sample
        self.read_by_sink = False  # True once queued by a sink whose thread converts it (exporter, OTel)
        self.route: tuple[Any, ...] = ()  # the recorders it is delivered to (`_recorder.submit`)
        self._raw: dict[str, Any] | None = None
        self._facts: dict[str, Any] | None = None
        self._full: dict[str, Any] | None = None
        self._meta: dict[str, Any] | None = None
        self._source: CallRecord | None = None  # set on a view made by `view()`
        self._view = FULL

    def copy(self) -> CallRecord:
        """A shallow copy that shares the call's data; used when several recorders see one call."""
        twin = CallRecord.__new__(CallRecord)
        for name in CallRecord.__slots__:
            setattr(twin, name, getattr(self, name))
        twin._raw = twin._facts = twin._full = twin._meta = None
        return twin

    def view(self, mode: str) -> CallRecord:
        """This record as a sink with capture mode `mode` must see it: its `to_dict()` is that view.

        The view shares the call's timings, context and error, and converts through this record, so
        the reader still runs once.
        """
        if mode == FULL and self._source is None:
            return self
        source = self._source or self
        twin = CallRecord.__new__(CallRecord)
        twin.started_ns, twin.t_start, twin.t_first, twin.t_end = (
            self.started_ns,
            self.t_start,
            self.t_first,
            self.t_end,
        )
        twin.provider, twin.operation, twin.reader, twin.stream = (
            self.provider,
            self.operation,
            self.reader,
            self.stream,
        )
        twin.client, twin.context, twin.scope, twin.error = self.client, self.context, self.scope, self.error
        twin.parent, twin.span = self.parent, self.span
        twin.status, twin.finished, twin.trace_id, twin.tags = (
            self.status,
            self.finished,
            self.trace_id,
            self.tags,
        )
        twin.capture, twin.prices, twin.sampled = self.capture, self.prices, self.sampled
        twin.response, twin.chunks, twin.request = None, [], {}  # only `source` reads them
        twin.quick = None
        twin.read_by_sink = self.read_by_sink
        twin._raw = twin._facts = twin._full = twin._meta = None
        twin._source, twin._view = source, mode
        return twin

    def mark_read_by_sink(self) -> None:
        """Called by a sink that queued this record for its own thread to convert soon: counting it
        then leaves its stream unpacked (see `tally`)."""
        (self._source or self).read_by_sink = True

    @property
    def duration_ns(self) -> int:
        """Nanoseconds from the call to its end (0 while it is still running)."""
        return (self.t_end - self.t_start) if self.t_end is not None else 0

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON-safe dict (full content, masked and redacted); built once and cached.

        Callers must not mutate it. On a view made by `view("metadata")` this is the metadata view.
        """
        source = self._source
        if source is not None:
            return source.metadata_dict() if self._view == METADATA else source.to_dict()
        full = self._full
        if full is not None:
            return full
        try:
            raw = self._ensure_raw()
            built = self._full
            if built is None:
                built = build_view(raw, FULL, self.capture) if raw is not None else None
        except Exception:
            log_internal_error("preparing a record's content")
            built = None
        with _CONVERT_LOCK:
            if self._full is None:
                self._full = built if built is not None else self._fallback()
                self._raw = None  # the metadata view can be derived from the full one now
            return self._full

    def metadata_dict(self) -> dict[str, Any]:
        """The record without prompt or completion text (see `_capture.strip_content`); built once."""
        source = self._source
        if source is not None:
            return source.metadata_dict()
        meta = self._meta
        if meta is not None:
            return meta
        try:
            full = self._full
            if full is not None:
                built: dict[str, Any] | None = strip_content(full)
            else:
                raw = self._ensure_raw()
                full = self._full
                if raw is None and full is not None:
                    built = strip_content(full)
                else:
                    built = build_view(raw or {}, METADATA, self.capture)
        except Exception:
            log_internal_error("preparing a record's metadata")
            built = None
        with _CONVERT_LOCK:
            if self._meta is None:
                self._meta = built if built is not None else strip_content(self._fallback())
            return self._meta

    def facts(self) -> dict[str, Any]:
        """What usage statistics need (model, tokens, cost, status, timings, rate limits); unredacted.

        Converts the record (runs the reader) unless it was converted already; see `tally()`."""
        source = self._source
        if source is not None:
            return source.facts()
        facts = self._facts
        if facts is None:
            self._ensure_raw()
            facts = self._facts
        return facts if facts is not None else {}

    def stream_chunks(self) -> list[Any]:
        """The chunks a stream kept, for its reader (which runs under the conversion lock): raw
        (`RawChunks`) or packed (`PackedChunks`) lines are settled first, in place, so that they are
        decoded once."""
        chunks = self.chunks
        if isinstance(chunks, PackedChunks):
            chunks = self.chunks = chunks.settle(chunks.lines())
        elif type(chunks) is RawChunks:
            chunks = self.chunks = chunks.settle(chunks)
        return chunks

    def _pack(self, lines: RawChunks) -> None:
        # Off the caller's thread, once counted: the history may keep the record for long, and
        # decoding every event for it would cost more than anything else neatlogs does per stream.
        try:
            packed = PackedChunks(lines)
        except Exception:
            log_internal_error(f"keeping a {self.provider} {self.operation} stream")
            return
        with _CONVERT_LOCK:  # a reader on another thread may have settled them meanwhile
            if self.chunks is lines and self._facts is None:
                self.chunks = packed

    def tally(self) -> Tally:
        """(model, usage, token counts, cost): read with the provider's quick reader where it can,
        so that counting a call skips the reader, masks and views; from `facts()` otherwise."""
        source = self._source
        if source is not None:
            return source.tally()
        quick = self.quick
        request, response, chunks = self.request, self.response, self.chunks
        if type(chunks) is RawChunks:  # a tapped stream: its first and last chunks, then packed
            lines = chunks
            try:
                chunks = lines.ends(lines)
            except Exception:
                log_internal_error(f"reading a {self.provider} {self.operation} stream")
                quick = None
            if not self.read_by_sink:  # else a sink's thread decodes it soon: packing would be wasted
                self._pack(lines)
        # Conversion sets `_facts` before it lets the SDK objects go: seen unset here, the three
        # references above are still the call's own.
        if quick is not None and self._facts is None and isinstance(chunks, list):
            try:
                read = quick(response, chunks, self.stream)
                if read is not None:
                    usage, response_model = read
                    model = request.get("model")
                    model = model if isinstance(model, str) and model else "unknown"
                    counts = _pricing.token_counts(usage)
                    pricing_model = response_model or model
                    return Tally(
                        model, usage, counts, _pricing.cost_usd(pricing_model, usage, self.prices, counts)
                    )
            except Exception:
                log_internal_error(f"counting a {self.provider} {self.operation} call")
        facts = self.facts()
        usage = facts.get("usage")
        return Tally(
            facts.get("model") or "unknown",
            usage,
            _pricing.token_counts(usage),
            facts.get("cost_usd"),
        )

    def rate_limit(self) -> dict[str, Any] | None:
        """The rate-limit headers of the call's answer, read without converting the record."""
        source = self._source
        if source is not None:
            return source.rate_limit()
        response = self.response
        if self._facts is None:
            read = traits_of(self.provider).rate_limit
            try:
                return read(response, self.stream, self.error) if read is not None else None
            except Exception:
                log_internal_error("reading rate-limit headers")
        limits = self.facts().get("rate_limit")
        return limits if isinstance(limits, dict) else None

    def _ensure_raw(self) -> dict[str, Any] | None:
        """Run the reader once (under the lock, then the SDK objects are released); the raw dict, or
        None once the full view is built and the raw dict was let go."""
        with _CONVERT_LOCK:
            if self._facts is None:
                try:
                    raw = self._build()
                except Exception:
                    log_internal_error("converting a record")
                    raw = self._base()
                self._raw = raw
                self._facts = _facts_of(raw)
                # The SDK objects are no longer needed: let them go so kept records stay small.
                self.response = None
                self.chunks = []
                self.request = {}
            return self._raw

    def _fallback(self) -> dict[str, Any]:
        # Only if building a view failed: the fields that need no reader, masked.
        base = self._base()
        base["capture"] = METADATA
        return base

    def _base(self) -> dict[str, Any]:
        end = self.t_end if self.t_end is not None else self.t_start
        duration_ns = end - self.t_start
        span, parent = self.span, self.parent
        base = {
            "id": span.id if span is not None else uuid.uuid4().hex,
            "trace_id": self.trace_id,
            "parent_id": parent.id if parent is not None else None,
            "kind": "span" if span is not None else "llm",
            "provider": self.provider,
            "operation": self.operation,
            "model": None,
            "response_model": None,
            "request": {},
            "prompt": None,
            "completion": None,
            "choices": [],
            "finish_reason": None,
            "stream": self.stream,
            "usage": None,
            "cost_usd": None,
            "tags": list(self.tags),
            "started_at": _iso(self.started_ns),
            "ended_at": _iso(self.started_ns + duration_ns),
            "duration_ms": duration_ns / 1e6,
            "ttft_ms": (self.t_first - self.t_start) / 1e6 if self.t_first is not None else None,
            "status": self.status,
            "error": error_info(self.error) if self.error is not None else None,
            "rate_limit": None,
        }
        if span is not None:
            base["name"] = span.name
        return base

    def _build(self) -> dict[str, Any]:
        record = self._base()
        read: dict[str, Any] = {}
        try:
            read = self.reader(self)
            record.update(read)
        except Exception:
            log_internal_error(f"reading a {self.provider} {self.operation} call")
        rate_limit = traits_of(self.provider).rate_limit
        if "rate_limit" not in read and rate_limit is not None:  # a reader that found none: not read twice
            try:
                record["rate_limit"] = rate_limit(self.response, self.stream, self.error)
            except Exception:
                log_internal_error("reading rate-limit headers")
        try:
            model = record["response_model"] or record["model"]
            record["cost_usd"] = _pricing.cost_usd(model, record["usage"], self.prices)
        except Exception:
            log_internal_error("pricing a call")
        return record


def _facts_of(raw: dict[str, Any]) -> dict[str, Any]:
    error = raw.get("error")
    model = raw.get("model")
    return {
        "model": model if isinstance(model, str) and model else "unknown",
        "status": raw.get("status"),
        "error_type": error.get("type") if isinstance(error, dict) else None,
        "usage": raw.get("usage") if isinstance(raw.get("usage"), dict) else None,
        "cost_usd": raw.get("cost_usd"),
        "duration_ms": raw.get("duration_ms"),
        "ttft_ms": raw.get("ttft_ms"),
        "rate_limit": raw.get("rate_limit"),
    }
