"""`neatlogs.span(...)`: one step around the calls (a tool, an agent, a task) as a record of its own.

On the caller's thread a span only takes timestamps, keeps references (its input, output and
attributes) and, when it ends, queues its record like a finished call. Turning the input and output
into JSON, masking, cutting and redacting them happens off that thread, by the same rules as a call's
content (`neatlogs.record.capture.build_view`).
"""

from __future__ import annotations

import inspect
import time
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context

from neatlogs._config import check_tags
from neatlogs._context import CURRENT_SCOPE
from neatlogs._log import log_internal_error
from neatlogs.dispatch import submit
from neatlogs.record.call import CallRecord
from neatlogs.record.jsonsafe import to_jsonable
from neatlogs.record.span import CURRENT_SPAN, KINDS, SpanNode, leave
from neatlogs.spans import routes

__all__ = ["Span", "span"]

_NOTHING: Any = object()
_NO_REQUEST: dict[str, Any] = {}  # a span's record reads its content, never its request
_KINDS_TEXT = ", ".join(repr(kind) for kind in KINDS)


def check_kind(kind: Any) -> str:
    """`kind` if it is one of the span kinds; else a TypeError/ValueError listing them."""
    if not isinstance(kind, str):
        raise TypeError(f"kind must be one of {_KINDS_TEXT}; got {type(kind).__name__}: {kind!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {_KINDS_TEXT}; got {kind!r}")
    return kind


def check_name(name: Any) -> str:
    """`name` if it is a non-empty string; else a TypeError/ValueError saying so."""
    if not isinstance(name, str):
        raise TypeError(f"a span's name must be a non-empty string, got {type(name).__name__}: {name!r}")
    if not name.strip():
        raise ValueError("a span's name must be a non-empty string, got an empty one")
    return name


# What a span keeps for its record until the record is converted (off the caller's thread): a list,
# cheaper to make than an object. `signature` set (by `observe`): the input is bound from args, kwargs.
INPUT, OUTPUT, ATTRIBUTES, SIGNATURE, ARGS, KWARGS = range(6)
Content = list[Any]


def content(value: Any = _NOTHING) -> Content:
    """A span's content holder: [input, output, attributes, signature, args, kwargs]."""
    return [value, _NOTHING, None, None, (), None]


def _bound_input(kept: Content) -> Any:
    signature: inspect.Signature | None = kept[SIGNATURE]
    if signature is None:
        return kept[INPUT]
    args, kwargs = kept[ARGS], kept[KWARGS] or {}
    try:
        arguments = dict(signature.bind_partial(*args, **kwargs).arguments)
    except TypeError:  # the call did not fit the signature (it raised TypeError itself)
        return {"args": list(args), "kwargs": kwargs}
    first = next(iter(signature.parameters), None)
    if first in ("self", "cls"):
        arguments.pop(first, None)
    return arguments


def _read_span(record: CallRecord) -> dict[str, Any]:
    """The span's fields of its record dict (contract section 6); runs once, off the caller's thread."""
    fields: dict[str, Any] = {
        "model": "",
        "request": {},
        "prompt": None,
        "completion": None,
        "choices": [],
        "rate_limit": None,  # no HTTP answer to read headers from
    }
    kept = record.response
    if isinstance(kept, list):
        value = _bound_input(kept)
        if value is not _NOTHING:
            fields["request"] = {"input": to_jsonable(value)}
        if kept[OUTPUT] is not _NOTHING:
            fields["completion"] = {"output": to_jsonable(kept[OUTPUT])}
        if kept[ATTRIBUTES]:
            fields["attributes"] = to_jsonable(kept[ATTRIBUTES])
    return fields


def open_step(name: str, kind: str, kept: Content, tags: tuple[str, ...] = ()) -> tuple[CallRecord, SpanNode]:
    """Begin a span's record (caller's thread: timestamps and references) and its node, to make current.

    The parent is the innermost span open here; the trace id and tags, the `trace` block's."""
    record = CallRecord("neatlogs", kind, _read_span, _NO_REQUEST, False)
    parent = CURRENT_SPAN.get()
    scope = CURRENT_SCOPE.get()
    if tags:
        scope_id, scope_tags = scope if scope is not None else (None, ())
        scope = (scope_id, scope_tags + tuple(t for t in tags if t not in scope_tags))
    context = otel_context.get_current()
    node = record.span = SpanNode(name, kind, parent, record.started_ns, context)
    record.parent = parent
    record.scope = scope
    record.context = context
    record.response = kept
    return record, node


def close_step(record: CallRecord, status: str, error: BaseException | None) -> None:
    """End a span's record once and queue it for every active tracker (caller's thread: an append)."""
    if record.finished:
        return
    record.t_end = time.perf_counter_ns()
    record.finished = True
    record.status = status
    record.error = error
    route = routes.ROUTE
    if route:
        record.route = route
        submit(record)


class Span:
    """An open step: `set_output`, `set_attribute`, `id`. Made by `neatlogs.span(...)` and `observe`."""

    __slots__ = ("_content", "_kind", "_name", "_record", "_tags")

    def __init__(self, name: str, kind: str, value: Any, tags: tuple[str, ...]) -> None:
        self._name = name
        self._kind = kind
        self._content = content(value)
        self._tags = tags
        self._record: CallRecord | None = None

    @property
    def id(self) -> str:
        """The span's record id: the `parent_id` of the records made inside it ("" before it starts)."""
        record = self._record
        return record.span.id if record is not None and record.span is not None else ""

    @property
    def name(self) -> str:
        """The step's name."""
        return self._name

    def set_output(self, value: Any) -> None:
        """Record `value` as the step's output (made JSON-safe later, off this thread)."""
        self._content[OUTPUT] = value

    def set_attribute(self, key: str, value: Any) -> None:
        """Keep `key: value` in the record's `attributes` (made JSON-safe later, off this thread)."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"set_attribute: key must be a non-empty string, got {key!r}")
        attributes = self._content[ATTRIBUTES]
        if attributes is None:
            attributes = self._content[ATTRIBUTES] = {}
        attributes[key] = value

    def __del__(self) -> None:
        # Left open (the code that held it died without exiting it): end it, never touching the
        # contextvar of whatever context collects it.
        try:
            record = self._record
            if record is not None and not record.finished:
                close_step(record, "incomplete", None)
        except Exception:
            log_internal_error("ending an abandoned span")

    # ---- with / async with ----

    def __enter__(self) -> Span:
        if self._record is not None:
            raise RuntimeError("a neatlogs span can be entered once; make a new one with neatlogs.span()")
        self._record, node = open_step(self._name, self._kind, self._content, self._tags)
        CURRENT_SPAN.set(node)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        record = self._record
        if record is None or record.span is None:
            return
        leave(record.span)
        if exc is None:
            close_step(record, "success", None)
        elif isinstance(exc, GeneratorExit):  # a generator closed while inside this block
            close_step(record, "incomplete", None)
        else:
            close_step(record, "error", exc)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def span(
    name: str, kind: str = "task", input: Any = None, tags: list[Any] | tuple[Any, ...] | None = None
) -> Span:
    """A step around the calls, as `with` / `async with`: `with neatlogs.span("search", kind="tool") as s:`.

    `kind` is one of "tool", "agent", "task", "retrieval", "workflow". `input` and `s.set_output(...)`
    become the record's `request.input` and `completion.output`; `tags` add to the tracker's. Records
    made inside the block (LLM calls, inner spans) get this span's id as their `parent_id`.
    """
    return Span(check_name(name), check_kind(kind), _NOTHING if input is None else input, check_tags(tags))
