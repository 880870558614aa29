"""A span's node (what the records made inside it know of it) and the innermost open span of the
running thread or asyncio task, carried by a contextvar (`neatlogs.spans` opens and closes them).

Here, beside the record, because every record has a parent: the provider wrappers read `CURRENT_SPAN`
on every traced call, the OTel sink reads the nodes. Only the standard library is imported.
"""

from __future__ import annotations

import contextvars
import itertools
import os
from typing import Any

# The kinds of step a span can be (contract section 6).
KINDS = ("tool", "agent", "task", "retrieval", "workflow")


def _new_prefix() -> None:
    global _prefix
    _prefix = os.urandom(8).hex()


# Span ids: 16 random hex digits per process (new in a forked child) and a counter, so that making one
# on the caller's thread costs a counter step; the text is made when a record is converted.
_prefix = ""
_new_prefix()
_numbers = itertools.count(1)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_prefix)


class SpanNode:
    """What a record made inside a span needs of it: its id, and for OpenTelemetry its name, kind,
    start time and the OpenTelemetry context its own span hangs from. Immutable once made; the
    contextvar holds it (not the user's handle), so a handle dropped while open can still be collected."""

    __slots__ = ("_number", "_prefix", "kind", "name", "otel_context", "parent", "started_ns")

    def __init__(
        self, name: str, kind: str, parent: SpanNode | None, started_ns: int, otel_context: Any
    ) -> None:
        self._prefix = _prefix
        self._number = next(_numbers)
        self.name = name
        self.kind = kind
        self.parent = parent
        self.started_ns = started_ns
        self.otel_context = otel_context

    @property
    def id(self) -> str:
        """The span's record id: 32 hex digits, unique across processes."""
        return f"{self._prefix}{self._number:016x}"


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
