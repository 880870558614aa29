"""`@neatlogs.observe(...)`: a span around every call of a function, generator or coroutine."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar, overload

from neatlogs.record.span import CURRENT_SPAN, leave
from neatlogs.spans.span import (
    ARGS,
    INPUT,
    KWARGS,
    OUTPUT,
    SIGNATURE,
    Content,
    check_kind,
    check_name,
    close_step,
    content,
    open_step,
)

__all__ = ["observe"]

F = TypeVar("F", bound=Callable[..., Any])


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}: {value!r}")
    return value


def _signature(function: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):  # builtins without one: the input is the raw args and kwargs
        return None


class _Step:
    """What every call of one decorated function shares: the span's name and kind, what to capture."""

    __slots__ = ("capture_input", "capture_output", "kind", "name", "signature")

    def __init__(
        self,
        name: str,
        kind: str,
        signature: inspect.Signature | None,
        capture_input: bool,
        capture_output: bool,
    ) -> None:
        self.name = name
        self.kind = kind
        self.signature = signature
        self.capture_input = capture_input
        self.capture_output = capture_output

    def keep(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Content:
        """What one call's span keeps: its arguments, bound to the signature off the caller's thread."""
        kept = content()
        if self.capture_input:
            kept[ARGS] = args
            kept[KWARGS] = kwargs
            if self.signature is not None:
                kept[SIGNATURE] = self.signature
            else:
                kept[INPUT] = {"args": args, "kwargs": kwargs}
        return kept


def _sync(function: Callable[..., Any], step: _Step) -> Callable[..., Any]:
    def traced(*args: Any, **kwargs: Any) -> Any:
        kept = step.keep(args, kwargs)
        record, node = open_step(step.name, step.kind, kept)
        CURRENT_SPAN.set(node)
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:
            leave(node)
            close_step(record, "error", exc)
            raise
        leave(node)
        if step.capture_output:
            kept[OUTPUT] = result
        close_step(record, "success", None)
        return result

    return traced


def _coroutine(function: Callable[..., Any], step: _Step) -> Callable[..., Any]:
    async def traced(*args: Any, **kwargs: Any) -> Any:
        kept = step.keep(args, kwargs)
        record, node = open_step(step.name, step.kind, kept)
        CURRENT_SPAN.set(node)
        try:
            result = await function(*args, **kwargs)
        except BaseException as exc:  # cancellation too: the step is recorded as failed
            leave(node)
            close_step(record, "error", exc)
            raise
        leave(node)
        if step.capture_output:
            kept[OUTPUT] = result
        close_step(record, "success", None)
        return result

    return traced


def _generator(function: Callable[..., Any], step: _Step) -> Callable[..., Any]:
    # The span opens at the first next() and ends once: exhausted, failed, closed or collected. The
    # span is current only while the generator's own code runs, never in the consumer's code.
    def traced(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        inner = function(*args, **kwargs)
        kept = step.keep(args, kwargs)
        record, node = open_step(step.name, step.kind, kept)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = CURRENT_SPAN.set(node)
            try:
                if thrown is not None:
                    exc, thrown = thrown, None
                    item = inner.throw(exc)
                else:
                    item = inner.send(sent)
            except StopIteration as stop:
                if step.capture_output:
                    kept[OUTPUT] = stop.value
                close_step(record, "success", None)
                return stop.value
            except BaseException as exc:
                close_step(record, "error", exc)
                raise
            finally:
                CURRENT_SPAN.reset(token)
            try:
                sent = yield item
            except GeneratorExit:  # closed early, or collected
                token = CURRENT_SPAN.set(node)
                try:
                    inner.close()
                except BaseException as exc:
                    close_step(record, "error", exc)
                    raise
                finally:
                    CURRENT_SPAN.reset(token)
                close_step(record, "incomplete", None)
                raise
            except BaseException as exc:  # thrown in by the consumer: passed on to the generator
                thrown = exc

    return traced


def _async_generator(function: Callable[..., Any], step: _Step) -> Callable[..., Any]:
    async def traced(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        inner = function(*args, **kwargs)
        kept = step.keep(args, kwargs)
        record, node = open_step(step.name, step.kind, kept)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = CURRENT_SPAN.set(node)
            try:
                if thrown is not None:
                    exc, thrown = thrown, None
                    item = await inner.athrow(exc)
                else:
                    item = await inner.asend(sent)
            except StopAsyncIteration:
                close_step(record, "success", None)
                return
            except BaseException as exc:
                close_step(record, "error", exc)
                raise
            finally:
                CURRENT_SPAN.reset(token)
            try:
                sent = yield item
            except GeneratorExit:  # closed early (aclose), or collected
                token = CURRENT_SPAN.set(node)
                try:
                    await inner.aclose()
                except BaseException as exc:
                    close_step(record, "error", exc)
                    raise
                finally:
                    CURRENT_SPAN.reset(token)
                close_step(record, "incomplete", None)
                raise
            except BaseException as exc:
                thrown = exc

    return traced


@overload
def observe(name: F) -> F: ...


@overload
def observe(
    name: str | None = None, kind: str = "task", capture_input: bool = True, capture_output: bool = True
) -> Callable[[F], F]: ...


def observe(
    name: Any = None, kind: str = "task", capture_input: bool = True, capture_output: bool = True
) -> Any:
    """Record every call of the decorated function as a span: `@neatlogs.observe(kind="tool")`.

    Works on functions, `async def` functions, generators and async generators. `name` defaults to
    the function's qualified name; the input is its bound arguments (`capture_input`), the output its
    return value (`capture_output`). `kind`: "tool", "agent", "task", "retrieval" or "workflow".
    """
    if callable(name) and not isinstance(name, str):  # bare @observe
        return observe()(name)
    if name is not None:
        check_name(name)
    check_kind(kind)
    _check_flag(capture_input, "capture_input")
    _check_flag(capture_output, "capture_output")

    def decorate(function: F) -> F:
        if not callable(function):
            raise TypeError(f"observe decorates a function, got {type(function).__name__}: {function!r}")
        span_name = name if name is not None else getattr(function, "__qualname__", None) or repr(function)
        signature = _signature(function) if capture_input else None
        step = _Step(span_name, kind, signature, capture_input, capture_output)
        if inspect.isasyncgenfunction(function):
            traced = _async_generator(function, step)
        elif inspect.isgeneratorfunction(function):
            traced = _generator(function, step)
        elif inspect.iscoroutinefunction(function):
            traced = _coroutine(function, step)
        else:
            traced = _sync(function, step)
        return functools.wraps(function)(traced)  # type: ignore[return-value]

    return decorate
