"""Call wrappers and stream proxies for SDKs whose streams are plain iterators, not `openai.Stream`.

openai 0.28 streams are generators and async generators; LiteLLM's `CustomStreamWrapper` is both
a sync and an async iterator. The proxies keep the SDK object's type (`isinstance` holds), take
each chunk by reference, and finalise the record exactly once: at the end, on an error, on
`close()`/`aclose()`, or when the abandoned stream is garbage-collected. Methods the SDK object
lacks stay missing (or fail exactly as they would untraced).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wrapt

from neatlogs._log import log_internal_error
from neatlogs.dispatch import submit
from neatlogs.providers._core.calls import CallKind, Started, _begin
from neatlogs.providers._core.patchset import PatchSet
from neatlogs.providers._core.streams import Finish, finalise, keep_chunk, status_for
from neatlogs.record.call import CallRecord

# (call result, record, finish) -> a stream proxy, or None when the result is a finished response.
WrapStream = Callable[[Any, CallRecord, Finish], Any]


@dataclass(frozen=True)
class IteratorKind:
    """A `CallKind` whose streams are wrapped by `wrap_stream` instead of the openai.Stream proxies."""

    call: CallKind
    wrap_stream: WrapStream
    # Names of the function's positional parameters, for SDK functions called positionally
    # (`litellm.completion("gpt-4o", messages)`); empty when every argument is a keyword.
    parameters: tuple[str, ...] = ()
    # (record, instance, named kwargs) -> None: keeps call-time facts the reader needs (e.g. api_base).
    prepare: Callable[[CallRecord, Any, dict[str, Any]], None] | None = None

    def start(self, instance: Any, args: Any, kwargs: dict[str, Any]) -> Started | None:
        return _start(self, instance, args, kwargs)

    def complete(self, patch: PatchSet, record: CallRecord, result: Any) -> Any:
        return _complete(patch, self, record, result)


def _named(kind: IteratorKind, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if not args or not kind.parameters:
        return kwargs
    named = dict(zip(kind.parameters, args, strict=False))
    named.update(kwargs)
    return named


def _positional(kind: IteratorKind, args: tuple[Any, ...], named: dict[str, Any]) -> tuple[Any, ...]:
    # The snapshot may have materialised a one-shot iterable: the SDK must get those same items.
    count = min(len(args), len(kind.parameters))
    return tuple(named[name] for name in kind.parameters[:count]) + args[count:]


def _start(
    kind: IteratorKind, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[CallRecord, tuple[Any, ...]] | None:
    named = _named(kind, args, kwargs)
    record = _begin(kind.call, instance, named)
    if record is None:
        return None
    if named is not kwargs:
        args = _positional(kind, args, named)
    if kind.prepare is not None:
        try:
            kind.prepare(record, instance, named)
        except Exception:
            log_internal_error(f"starting a {kind.call.provider} {kind.call.operation} record")
    return record, args


def _complete(patch: PatchSet, kind: IteratorKind, record: CallRecord, result: Any) -> Any:
    try:
        record.route = patch.recorders
        proxy = kind.wrap_stream(result, record, submit)
        if proxy is not None:
            return proxy
        record.response = result
        finalise(record, submit, "success", None)
    except Exception:
        log_internal_error(f"recording a {kind.call.provider} {kind.call.operation} call")
    return result


# ---- stream proxies ----


class _IteratorProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    def __init__(self, wrapped: Any, record: CallRecord, finish: Finish) -> None:
        super().__init__(wrapped)
        self._self_record = record
        self._self_finish = finish

    def _self_end(self, status: str, error: BaseException | None) -> None:
        finalise(self._self_record, self._self_finish, status, error)

    def _self_step(self, step: Callable[..., Any], *args: Any) -> Any:
        try:
            chunk = step(*args)
        except StopIteration:
            self._self_end("success", None)
            raise
        except BaseException as exc:
            self._self_end(status_for(exc), exc)
            raise
        keep_chunk(self._self_record, chunk)
        return chunk

    async def _self_astep(self, step: Callable[..., Any], *args: Any) -> Any:
        try:
            chunk = await step(*args)
        except StopAsyncIteration:
            self._self_end("success", None)
            raise
        except BaseException as exc:
            self._self_end(status_for(exc), exc)
            raise
        keep_chunk(self._self_record, chunk)
        return chunk

    # wrapt's ObjectProxy forwards `with`/`async with` to any object; a generator is no context
    # manager, so entering the proxy must fail exactly as entering the generator does.
    def __enter__(self) -> Any:
        wrapped = self.__wrapped__
        if not (hasattr(type(wrapped), "__enter__") and hasattr(type(wrapped), "__exit__")):
            with wrapped:  # raises the interpreter's own TypeError (AttributeError before 3.11)
                pass
        wrapped.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_end("incomplete", None)

    async def __aenter__(self) -> Any:
        wrapped = self.__wrapped__
        if not (hasattr(type(wrapped), "__aenter__") and hasattr(type(wrapped), "__aexit__")):
            async with wrapped:  # raises the interpreter's own error, as above
                pass
        await wrapped.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_end("incomplete", None)

    def __del__(self) -> None:
        if not self._self_record.finished:
            self._self_end("incomplete", None)


class IteratorStream(_IteratorProxy):
    """A proxy for a sync iterator stream (a generator); `isinstance` with its type still holds."""

    def __init__(self, wrapped: Any, record: CallRecord, finish: Finish) -> None:
        super().__init__(wrapped, record, finish)
        self._self_next = wrapped.__next__  # bound once: this runs for every chunk

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self._self_next()
        except StopIteration:
            self._self_end("success", None)
            raise
        except BaseException as exc:
            self._self_end(status_for(exc), exc)
            raise
        keep_chunk(self._self_record, chunk)
        return chunk

    # Generator methods exist on the proxy only where the wrapped object has them.
    @property
    def send(self) -> Callable[[Any], Any]:
        send = self.__wrapped__.send
        return lambda value: self._self_step(send, value)

    @property
    def throw(self) -> Callable[..., Any]:
        throw = self.__wrapped__.throw
        return lambda *args: self._self_step(throw, *args)

    @property
    def close(self) -> Callable[[], Any]:
        close = self.__wrapped__.close

        def traced_close() -> Any:
            try:
                return close()
            finally:
                self._self_end("incomplete", None)

        return traced_close


class AsyncIteratorStream(_IteratorProxy):
    """A proxy for an async iterator stream (an async generator); `isinstance` still holds."""

    def __init__(self, wrapped: Any, record: CallRecord, finish: Finish) -> None:
        super().__init__(wrapped, record, finish)
        self._self_anext = wrapped.__anext__  # bound once: this runs for every chunk

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._self_anext()
        except StopAsyncIteration:
            self._self_end("success", None)
            raise
        except BaseException as exc:
            self._self_end(status_for(exc), exc)
            raise
        keep_chunk(self._self_record, chunk)
        return chunk

    @property
    def asend(self) -> Callable[[Any], Any]:
        asend = self.__wrapped__.asend
        return lambda value: self._self_astep(asend, value)

    @property
    def athrow(self) -> Callable[..., Any]:
        athrow = self.__wrapped__.athrow
        return lambda *args: self._self_astep(athrow, *args)

    @property
    def aclose(self) -> Callable[[], Any]:
        aclose = self.__wrapped__.aclose

        async def traced_aclose() -> Any:
            try:
                return await aclose()
            finally:
                self._self_end("incomplete", None)

        return traced_aclose


class DualIteratorStream(IteratorStream, AsyncIteratorStream):
    """A proxy for an object that is both a sync and an async iterator (LiteLLM's CustomStreamWrapper)."""
