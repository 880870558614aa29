"""Generic call wrappers: take timestamps, keep references, hand the record on. Nothing else."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import context as otel_context

from neatlogs._context import CURRENT_SCOPE, IN_TRACED_CALL
from neatlogs._fastpaths import otel_suppress_key
from neatlogs._log import log_internal_error
from neatlogs.dispatch import submit
from neatlogs.providers._core.patchset import PatchSet
from neatlogs.providers._core.streams import Compact, Finish, TracedAsyncStream, TracedStream, finalise
from neatlogs.record.call import CallRecord, Quick, RawChunks, Reader
from neatlogs.record.span import CURRENT_SPAN


class Deferred:
    """What a `CallKind.keep` returns when the provider finishes the record itself, later (a raw
    response whose body the caller has yet to read): what the caller gets in place of the result."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result


def _keep_result(result: Any, record: CallRecord, finish: Finish) -> Any:
    return result


# OpenTelemetry's "suppress instrumentation" flag: set by exporters (ours included) and by callers
# that want a block of code untraced.
_SUPPRESS_KEY = otel_suppress_key()  # None where this opentelemetry-api has none (_fastpaths)


@dataclass(frozen=True)
class CallKind:
    """What a provider tells the generic wrappers about one patched function."""

    provider: str
    operation: str
    reader: Reader
    # instance the method is bound to -> the SDK client it belongs to (for client filters and server)
    client_of: Callable[[Any], Any]
    # call result -> "sync" / "async" stream, or None for a finished response
    stream_kind: Callable[[Any], str | None]
    # the call's kwargs -> a snapshot safe to read later (lists copied, generators materialised)
    snapshot: Callable[[dict[str, Any]], dict[str, Any]]
    # a finished (non-stream) result -> what the record keeps for its reader, or `Deferred`
    keep: Callable[[Any, CallRecord, Finish], Any] = _keep_result
    # what usage statistics need, read cheaply (see `_record.Quick`); None: the full reader is used
    quick: Quick | None = None
    # a streamed chunk -> what the record keeps of it (see `streams.Compact`); None keeps the chunk
    compact: Compact | None = None
    # (a stream, its record) -> the record's `RawChunks` when the stream's events are kept as they
    # come off the wire (the proxy then keeps nothing per chunk), else None
    tap: Callable[[Any, CallRecord], RawChunks | None] | None = None
    # (a stream, its `stream_kind`) -> the iterator whose chunks its own `__next__` / `__iter__` only
    # pass on, which the proxy then reads directly (see `streams._TracedProxy`), or None
    source: Callable[[Any, str], Any] | None = None

    # `start` and `complete` run on every traced call: their work is inline, not in helpers.
    def start(self, instance: Any, args: Any, kwargs: dict[str, Any]) -> Started | None:
        if IN_TRACED_CALL.get():
            return None  # made by a call that is itself traced (LiteLLM -> OpenAI, a helper -> create)
        try:
            current = otel_context.get_current()
            if _SUPPRESS_KEY is not None and current.get(_SUPPRESS_KEY):
                return None
            client = self.client_of(instance)
            request = self.snapshot(kwargs)
            record = CallRecord(
                self.provider, self.operation, self.reader, request, bool(kwargs.get("stream")), client
            )
            record.quick = self.quick
            record.context = current  # the parent of this call's span, whichever thread exports it
            record.scope = CURRENT_SCOPE.get()
            record.parent = CURRENT_SPAN.get()
            return record, args
        except Exception:
            log_internal_error(f"starting a {self.provider} {self.operation} record")
            return None

    def complete(self, patch: PatchSet, record: CallRecord, result: Any) -> Any:
        try:
            record.route = patch.recorders
            stream = self.stream_kind(result)
            if stream is not None:
                # Only the HTTP headers (request id) are read later; the stream itself is not kept.
                record.response = getattr(getattr(result, "response", None), "headers", None)
                tapped = self.tap(result, record) if self.tap is not None else None
                source = self.source(result, stream) if self.source is not None else None
                proxy = TracedStream if stream == "sync" else TracedAsyncStream
                return proxy(result, record, submit, self.compact, tapped, source)
            kept = self.keep(result, record, submit)
            if type(kept) is Deferred:
                return kept.result
            # `finalise`'s work, inline: every traced call that returns runs it
            record.t_end = time.perf_counter_ns()
            record.finished = True
            record.response = kept
            submit(record)
        except Exception:
            log_internal_error(f"recording a {self.provider} {self.operation} call")
        return result


# (the record, the positional arguments to call the SDK with)
Started = tuple[CallRecord, Any]


class Traceable(Protocol):
    """How the generic wrappers begin a record and finish it with the call's result."""

    def start(self, instance: Any, args: Any, kwargs: dict[str, Any]) -> Started | None: ...

    def complete(self, patch: PatchSet, record: CallRecord, result: Any) -> Any: ...


def _begin(kind: CallKind, instance: Any, kwargs: dict[str, Any]) -> CallRecord | None:
    """A record begun as `kind.start` begins one, or None when the call is not traced."""
    started = kind.start(instance, (), kwargs)
    return None if started is None else started[0]


def _fail(patch: PatchSet, record: CallRecord, exc: BaseException) -> None:
    record.route = patch.recorders
    finalise(record, submit, "error", exc)


def sync_wrapper(kind: Traceable) -> Callable[[PatchSet], Callable[..., Any]]:
    """A wrapt wrapper factory for a synchronous SDK method."""

    def factory(patch: PatchSet) -> Callable[..., Any]:
        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not patch.recorders:
                return wrapped(*args, **kwargs)
            started = kind.start(instance, args, kwargs)
            if started is None:
                return wrapped(*args, **kwargs)
            record, args = started
            token = IN_TRACED_CALL.set(True)
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                _fail(patch, record, exc)
                raise
            finally:
                IN_TRACED_CALL.reset(token)
            return kind.complete(patch, record, result)

        return wrapper

    return factory


def async_wrapper(kind: Traceable) -> Callable[[PatchSet], Callable[..., Any]]:
    """A wrapt wrapper factory for an `async def` SDK method."""

    def factory(patch: PatchSet) -> Callable[..., Any]:
        async def traced(wrapped: Any, args: Any, kwargs: Any, record: CallRecord) -> Any:
            token = IN_TRACED_CALL.set(True)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:  # asyncio cancellation too: the call is still recorded
                _fail(patch, record, exc)
                raise
            finally:
                IN_TRACED_CALL.reset(token)
            return kind.complete(patch, record, result)

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not patch.recorders:
                return wrapped(*args, **kwargs)
            started = kind.start(instance, args, kwargs)
            if started is None:
                return wrapped(*args, **kwargs)
            record, args = started
            return traced(wrapped, args, kwargs, record)

        return wrapper

    return factory
