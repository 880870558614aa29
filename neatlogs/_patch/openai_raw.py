"""Raw OpenAI responses (`with_raw_response`, `with_streaming_response`): traced without reading a body.

A raw response whose body is already in memory (`with_raw_response`, not streamed) is recorded at
once; its reader decodes that body later, off the caller's thread. Any other raw response defers
its record to the caller: it ends when the caller parses it (`.parse()` of a non-streamed call), when
the stream that `.parse()` returns ends, when the response is closed, or when it is collected.
neatlogs never calls `.parse()`, `.read()` or iterates a body on the caller's behalf.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from .._log import log_internal_error
from .._record import CallRecord
from ._calls import DEFERRED
from ._patchset import PatchSet
from .streams import Finish, TracedAsyncStream, TracedStream, end_incomplete, finalise


class RawResult:
    """What a record keeps of a raw response: its headers, and its body where the caller has one."""

    __slots__ = ("headers", "http", "parsed")

    def __init__(self, headers: Any, http: Any = None, parsed: Any = None) -> None:
        self.headers = headers
        self.http = http  # the HTTP response; its content is read only if someone already read it
        self.parsed = parsed  # what the caller's own `.parse()` returned


class _Pending:
    """A deferred record and how it ends; at most one stream proxy per raw response."""

    __slots__ = ("collected", "finish", "headers", "record", "stream")

    def __init__(self, record: CallRecord, finish: Finish, headers: Any, collected: Any) -> None:
        self.record = record
        self.finish = finish
        self.headers = headers
        self.collected = collected  # weakref.finalize: ends the record if the response is collected
        self.stream: Any = None

    def _release(self) -> None:
        # The finalizer holds the record; once the record is settled it must not keep it alive.
        self.collected.detach()

    def adopt(self, result: Any, stream_classes: tuple[type, type]) -> Any:
        """What the caller gets from `.parse()`: a traced stream, or the parsed object untouched."""
        if self.stream is not None:
            # `.parse()` caches: give back the same proxy for the same stream.
            return self.stream if result is self.stream.__wrapped__ else result
        record = self.record
        if record.finished:
            return result
        sync_stream, async_stream = stream_classes
        if isinstance(result, sync_stream):
            self.stream = TracedStream(result, record, self.finish)
        elif isinstance(result, async_stream):
            self.stream = TracedAsyncStream(result, record, self.finish)
        else:
            record.response = RawResult(self.headers, None, result)
            finalise(record, self.finish, "success", None)
            self._release()
            return result
        self._release()  # the stream proxy finalises the record from now on
        return self.stream

    def closed(self, response: Any) -> None:
        """The caller closed the raw response (or left its `with` block)."""
        if self.stream is not None:
            end_incomplete(self.stream)
            return
        record = self.record
        if not record.finished:
            # The body is the caller's: kept by reference, decoded later only if they read it whole.
            record.response = RawResult(self.headers, getattr(response, "http_response", None), None)
            finalise(record, self.finish, "success", None)
        self._release()


class RawResponses:
    """Tracks the raw responses whose records are deferred; one per installed patch set."""

    def __init__(
        self, legacy: type | None, deferred: tuple[type, ...], stream_classes: tuple[type, type]
    ) -> None:
        self._legacy: Any = legacy
        self._deferred: Any = deferred
        self._streams = stream_classes
        self._pending: weakref.WeakKeyDictionary[Any, _Pending] = weakref.WeakKeyDictionary()

    def keep(self, result: Any, record: CallRecord, finish: Finish) -> Any:
        """The `CallKind.keep` hook: what a record keeps of a finished result, or DEFERRED."""
        legacy = self._legacy
        if legacy is not None and isinstance(result, legacy):
            if not record.stream:
                http = result.http_response
                return RawResult(http.headers, http)  # the SDK has read this body already
        elif not (self._deferred and isinstance(result, self._deferred)):
            return result
        headers = result.http_response.headers
        record.response = RawResult(headers)
        collected = weakref.finalize(result, finalise, record, finish, "incomplete", None)
        collected.atexit = False  # an abandoned response at exit is not worth a record mid-shutdown
        self._pending[result] = _Pending(record, finish, headers, collected)
        return DEFERRED

    def parse_wrapper(self, patch: PatchSet) -> Callable[..., Any]:
        """wrapt wrapper for a synchronous `.parse()`."""
        deferred, pending_of, streams = self._pending, self._pending.get, self._streams

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            # The SDK parses every answer through here: an empty table costs one len().
            pending = pending_of(instance) if deferred else None
            if pending is None:
                return wrapped(*args, **kwargs)
            result = wrapped(*args, **kwargs)
            try:
                return pending.adopt(result, streams)
            except Exception:
                log_internal_error("tracing a raw response's parse()")
                return result

        return wrapper

    def async_parse_wrapper(self, patch: PatchSet) -> Callable[..., Any]:
        """wrapt wrapper for an `async def parse()`: the caller still gets one coroutine to await."""
        deferred, pending_of, streams = self._pending, self._pending.get, self._streams

        async def adopt_later(coroutine: Any, pending: _Pending) -> Any:
            result = await coroutine
            try:
                return pending.adopt(result, streams)
            except Exception:
                log_internal_error("tracing a raw response's parse()")
                return result

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            pending = pending_of(instance) if deferred else None
            if pending is None:
                return wrapped(*args, **kwargs)
            return adopt_later(wrapped(*args, **kwargs), pending)

        return wrapper

    def close_wrapper(self, patch: PatchSet) -> Callable[..., Any]:
        """wrapt wrapper for a synchronous `.close()` of a raw response."""
        deferred, pending_of = self._pending, self._pending.get

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            pending = pending_of(instance) if deferred else None
            if pending is None:
                return wrapped(*args, **kwargs)
            try:
                return wrapped(*args, **kwargs)
            finally:
                _closed(pending, instance)

        return wrapper

    def async_close_wrapper(self, patch: PatchSet) -> Callable[..., Any]:
        """wrapt wrapper for an `async def close()` of a raw response."""
        deferred, pending_of = self._pending, self._pending.get

        async def close_then(coroutine: Any, pending: _Pending, instance: Any) -> Any:
            try:
                return await coroutine
            finally:
                _closed(pending, instance)

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            pending = pending_of(instance) if deferred else None
            if pending is None:
                return wrapped(*args, **kwargs)
            return close_then(wrapped(*args, **kwargs), pending, instance)

        return wrapper


def _closed(pending: _Pending, response: Any) -> None:
    try:
        pending.closed(response)
    except Exception:
        log_internal_error("tracing a raw response's close()")


# ---- SDK helper streams (`chat.completions.stream()`, `responses.stream()`) ----
# They close the HTTP response directly, not the stream they wrap: their close() must end its record.


def helper_close_wrapper(patch: PatchSet) -> Callable[..., Any]:
    """wrapt wrapper for a helper stream's synchronous `close()`."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            return wrapped(*args, **kwargs)
        finally:
            end_incomplete(getattr(instance, "_raw_stream", None))

    return wrapper


def helper_async_close_wrapper(patch: PatchSet) -> Callable[..., Any]:
    """wrapt wrapper for a helper stream's `async def close()`."""

    async def close_then(coroutine: Any, instance: Any) -> Any:
        try:
            return await coroutine
        finally:
            end_incomplete(getattr(instance, "_raw_stream", None))

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not isinstance(getattr(instance, "_raw_stream", None), TracedAsyncStream):
            return wrapped(*args, **kwargs)
        return close_then(wrapped(*args, **kwargs), instance)

    return wrapper
