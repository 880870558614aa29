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

import wrapt

from neatlogs._log import log_internal_error
from neatlogs.providers._core.calls import Deferred
from neatlogs.providers._core.patchset import PatchSet
from neatlogs.providers._core.streams import Finish, TracedAsyncStream, TracedStream, end_incomplete, finalise
from neatlogs.record.call import CallRecord


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


class _TracedRaw(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """A raw response whose record waits for the caller (`isinstance` still holds): its `parse()`
    ends the record, or returns a traced stream that will."""

    def __init__(self, wrapped: Any, pending: _Pending, streams: tuple[type, type]) -> None:
        super().__init__(wrapped)
        self._self_pending = pending
        self._self_streams = streams

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_adopt(self.__wrapped__.parse(*args, **kwargs))

    def _self_adopt(self, result: Any) -> Any:
        try:
            return self._self_pending.adopt(result, self._self_streams)
        except Exception:
            log_internal_error("tracing a raw response's parse()")
            return result


class _TracedClosableRaw(_TracedRaw):
    """A raw response with a `close()` (not the legacy one), which ends its record too."""

    def close(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.__wrapped__.close(*args, **kwargs)
        finally:
            _closed(self._self_pending, self.__wrapped__)


class _TracedAsyncRaw(_TracedRaw):
    """An async raw response: `parse()` and `close()` are coroutines, as the SDK's are."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_adopt(await self.__wrapped__.parse(*args, **kwargs))

    async def close(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self.__wrapped__.close(*args, **kwargs)
        finally:
            _closed(self._self_pending, self.__wrapped__)


class RawResponses:
    """Defers the records of raw responses: the caller gets each in a proxy that ends its record.

    Proxies rather than wrapping the response classes' `parse()`: the SDK parses every answer with it,
    and a class-level wrapper would cost every call for the few that are raw.
    """

    def __init__(
        self,
        legacy: type | None,
        sync_response: type | None,
        async_response: type | None,
        stream_classes: tuple[type, type],
    ) -> None:
        self._legacy: Any = legacy
        self._proxies: tuple[tuple[Any, type[_TracedRaw]], ...] = tuple(
            (cls, proxy)
            for cls, proxy in ((async_response, _TracedAsyncRaw), (sync_response, _TracedClosableRaw))
            if cls is not None
        )
        self._raw_types = tuple(cls for cls in (legacy, sync_response, async_response) if cls is not None)
        self._streams = stream_classes

    def keep(self, result: Any, record: CallRecord, finish: Finish) -> Any:
        """The `CallKind.keep` hook: what a record keeps of a finished result, or `Deferred`."""
        if not isinstance(result, self._raw_types):  # most calls: one check
            return result
        legacy = self._legacy
        if legacy is not None and isinstance(result, legacy):
            if not record.stream:
                http = result.http_response
                return RawResult(http.headers, http)  # the SDK has read this body already
            proxy: type[_TracedRaw] = _TracedRaw  # a raw stream; LegacyAPIResponse has no close()
        else:
            found = next((proxy for cls, proxy in self._proxies if isinstance(result, cls)), None)
            if found is None:
                return result
            proxy = found
        headers = result.http_response.headers
        record.response = RawResult(headers)
        collected = weakref.finalize(result, finalise, record, finish, "incomplete", None)
        collected.atexit = False  # an abandoned response at exit is not worth a record mid-shutdown
        return Deferred(proxy(result, _Pending(record, finish, headers, collected), self._streams))


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
