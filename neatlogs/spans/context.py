"""The innermost open span of the running thread or asyncio task, carried by a contextvar.

Kept free of other imports: the provider wrappers read `CURRENT_SPAN` on every traced call.
"""

from __future__ import annotations

import contextvars
from typing import Any

# The kinds of step a span can be (contract section 6).
KINDS = ("tool", "agent", "task", "retrieval", "workflow")


class SpanNode:
    """What a record made inside a span needs of it: its id, and for OpenTelemetry its name, kind,
    start time and the OpenTelemetry context its own span hangs from. Immutable once made; the
    contextvar holds it (not the user's handle), so a handle dropped while open can still be collected."""

    __slots__ = ("id", "kind", "name", "otel_context", "parent", "started_ns")

    def __init__(
        self, span_id: str, name: str, kind: str, parent: SpanNode | None, started_ns: int, otel_context: Any
    ) -> None:
        self.id = span_id
        self.name = name
        self.kind = kind
        self.parent = parent
        self.started_ns = started_ns
        self.otel_context = otel_context


CURRENT_SPAN: contextvars.ContextVar[SpanNode | None] = contextvars.ContextVar(
    "neatlogs_current_span", default=None
)


def leave(node: SpanNode) -> None:
    """Make `node`'s parent the current span again, if `node` is current or an ancestor of it here.

    A span ended from another context (a generator collected elsewhere), or after its enclosing span
    already ended, changes nothing here: the chain of open spans is never cut above where it should be.
    """
    current = CURRENT_SPAN.get()
    while current is not None and current is not node:
        current = current.parent
    if current is node:
        CURRENT_SPAN.set(node.parent)
