"""Stream proxies: the caller keeps the SDK's own stream type; each chunk is kept as it goes by.

A proxied stream's record is finalised exactly once: at its end, on an error, on `close()`,
on leaving `with`/`async with`, or when the abandoned stream is garbage-collected.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import wrapt

from neatlogs._log import log_internal_error, logger
from neatlogs.record.call import CallRecord, RawChunks

Finish = Callable[[CallRecord], None]
# (a streamed chunk, the chunks kept so far) -> what the record keeps of it (plain values)
Compact = Callable[[Any, list[Any]], Any]


def finalise(record: CallRecord, finish: Finish, status: str, error: BaseException | None) -> None:
    """End a record once (a stream's, or any call's off the hot path): stamp its end, status and
    error and hand it on; later calls do nothing."""
    if record.finished:
        return
    record.finished = True
    record.t_end = time.perf_counter_ns()
    record.status = status
    record.error = error
    try:
        finish(record)
    except Exception:
        log_internal_error("finishing a record")


def status_for(exc: BaseException) -> str:
    """The record status for a stream that ended with `exc`."""
    # A consumer that stops reading (GeneratorExit) or is cancelled did not see the stream fail.
    return "incomplete" if isinstance(exc, GeneratorExit) else "error"


class _TracedProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """What both stream proxies hold: the record, how to finish it, and what every chunk needs."""

    _self_read_chunk = "__next__"  # the wrapped stream's method that reads one chunk

    def __init__(
        self,
        wrapped: Any,
        record: CallRecord,
        finish: Finish,
        compact: Compact | None = None,
        tapped: RawChunks | None = None,
        source: Any = None,
    ) -> None:
        super().__init__(wrapped)
        self._self_record = record
        self._self_finish = finish
        # The iterator whose chunks the SDK stream's own `__next__` / `__iter__` only pass on: reading
        # it directly spares a generator (and, async, a coroutine) per chunk. None: read the stream.
        self._self_source = source
        # what every chunk needs, bound once
        reader = wrapped if source is None else source
        self._self_step = (getattr(reader, self._self_read_chunk), record, compact, tapped)

    def _self_kept(self, chunk: Any) -> Any:
        """Keep a chunk that `__next__` / `__anext__` read, and return it (the generators that
        `for` / `async for` use keep theirs inline, as `_iterate` says why)."""
        step, record, compact, tapped = self._self_step
        if tapped is not None and not tapped:  # the tap saw nothing: keep chunks from now on
            _untap(record, tapped)
            tapped = None
            self._self_step = (step, record, compact, None)
        if tapped is None:
            keep_chunk(record, chunk, compact)
        return chunk

    def __del__(self) -> None:
        record = self._self_record
        if not record.finished:
            finalise(record, self._self_finish, "incomplete", None)


class TracedStream(_TracedProxy):
    """A sync stream proxy; `isinstance(proxy, openai.Stream)` still holds."""

    def __iter__(self) -> Iterator[Any]:
        # A generator, as the SDK's own `Stream.__iter__` is: resuming one costs less per chunk than
        # calling `__next__`. The record stays open when the loop is left early (GeneratorExit): it
        # ends on close(), on leaving `with`, or when the stream is collected, as with `__next__`.
        _, record, compact, tapped = self._self_step
        source = self._self_source
        chunks = iter(self.__wrapped__) if source is None else source
        return _iterate(self, chunks, record, self._self_finish, compact, tapped)

    def __next__(self) -> Any:
        step, record, _, _ = self._self_step
        try:
            chunk = step()
        except StopIteration:
            finalise(record, self._self_finish, "success", None)
            raise
        except BaseException as exc:
            finalise(record, self._self_finish, status_for(exc), exc)
            raise
        return self._self_kept(chunk)

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            finalise(self._self_record, self._self_finish, "incomplete", None)

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            finalise(self._self_record, self._self_finish, "incomplete", None)


class TracedAsyncStream(_TracedProxy):
    """An async stream proxy; `isinstance(proxy, openai.AsyncStream)` still holds."""

    _self_read_chunk = "__anext__"

    def __aiter__(self) -> AsyncIterator[Any]:
        # An async generator, as the SDK's own `AsyncStream.__aiter__` is (see TracedStream.__iter__).
        # (A class with an `async def __anext__` instead starts no async generator and leaves none to
        # finalise, but measured slower (a new coroutine per chunk; docs/overhead.md).)
        _, record, compact, tapped = self._self_step
        source = self._self_source
        chunks = self.__wrapped__.__aiter__() if source is None else source
        return _aiterate(self, chunks, record, self._self_finish, compact, tapped)

    async def __anext__(self) -> Any:
        step, record, _, _ = self._self_step
        try:
            chunk = await step()
        except StopAsyncIteration:
            finalise(record, self._self_finish, "success", None)
            raise
        except BaseException as exc:
            finalise(record, self._self_finish, status_for(exc), exc)
            raise
        return self._self_kept(chunk)

    async def __aenter__(self) -> TracedAsyncStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            finalise(self._self_record, self._self_finish, "incomplete", None)

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            finalise(self._self_record, self._self_finish, "incomplete", None)

    @property
    def aclose(self) -> Callable[[], Any]:
        # Only where the SDK has it (openai 3.x): an AttributeError here falls back to the SDK's own.
        wrapped_aclose = self.__wrapped__.aclose

        async def aclose() -> Any:
            try:
                return await wrapped_aclose()
            finally:
                finalise(self._self_record, self._self_finish, "incomplete", None)

        return aclose


def end_incomplete(stream: Any) -> None:
    """Finalise a traced stream that its consumer closed by other means (an SDK helper closing the
    HTTP response itself); does nothing for anything else or a stream already finalised."""
    if isinstance(stream, _TracedProxy):
        finalise(stream._self_record, stream._self_finish, "incomplete", None)


def keep_chunk(record: CallRecord, chunk: Any, compact: Compact | None = None) -> None:
    """Keep a streamed chunk (compacted when `compact` is given) on a record still open; the first
    one stamps the time to first chunk. A stream read on after its record ended keeps nothing more."""
    if record.finished:
        return
    kept: list[Any] = record.chunks  # type: ignore[assignment]  # packed only once finished
    if not kept:
        record.t_first = time.perf_counter_ns()
    if compact is None:
        kept.append(chunk)
        return
    try:
        kept.append(compact(chunk, kept))
    except Exception:
        log_internal_error("keeping a streamed chunk")
        kept.append(chunk)


def _untap(record: CallRecord, tapped: RawChunks) -> None:
    """A chunk arrived but the stream's tap kept nothing: the SDK reads its events some other way (a
    version we do not know). The record keeps chunks instead, from this one on."""
    if record.chunks is tapped:
        record.chunks = []
        logger.debug("neatlogs: this SDK's stream bypassed the event tap; keeping its chunks instead")


def _iterate(
    stream: TracedStream,
    chunks: Iterator[Any],
    record: CallRecord,
    finish: Finish,
    compact: Compact | None,
    tapped: RawChunks | None,
) -> Iterator[Any]:
    # `stream` is held so that the proxy (whose collection ends an abandoned record) lives as long as
    # the loop over it does. A tapped stream's events are kept by the tap: per chunk, two checks
    # (inline: a call per chunk would cost more than the rest of this loop).
    try:
        for chunk in chunks:
            if tapped is not None and not tapped:  # the tap saw nothing: keep chunks from now on
                _untap(record, tapped)
                tapped = None
            if tapped is None:
                keep_chunk(record, chunk, compact)
            yield chunk
    except GeneratorExit:
        raise  # the consumer left the loop early: not the stream's end
    except BaseException as exc:
        finalise(record, finish, status_for(exc), exc)
        raise
    finalise(record, finish, "success", None)


async def _aiterate(
    stream: TracedAsyncStream,
    chunks: AsyncIterator[Any],
    record: CallRecord,
    finish: Finish,
    compact: Compact | None,
    tapped: RawChunks | None,
) -> AsyncIterator[Any]:
    # `stream` is held as in `_iterate`
    try:
        async for chunk in chunks:
            if tapped is not None and not tapped:  # the tap saw nothing: keep chunks from now on
                _untap(record, tapped)
                tapped = None
            if tapped is None:
                keep_chunk(record, chunk, compact)
            yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        finalise(record, finish, status_for(exc), exc)
        raise
    finalise(record, finish, "success", None)
