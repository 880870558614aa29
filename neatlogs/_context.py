"""Per-call trace ids and tags for a block of code, carried by contextvars (threads and asyncio tasks)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from neatlogs._config import check_tags, check_trace_id

# (trace id or None, extra tags) for calls made inside `neatlogs.trace(...)`.
Scope = tuple[str | None, tuple[str, ...]]
CURRENT_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("neatlogs_scope", default=None)
# True while a traced call runs: calls it makes itself (LiteLLM calling OpenAI) are not recorded twice.
IN_TRACED_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "neatlogs_in_traced_call", default=False
)


@contextlib.contextmanager
def trace(trace_id: str | None = None, tags: list[Any] | tuple[Any, ...] | None = None) -> Iterator[str]:
    """Give the calls made inside this block their own trace id (yielded) and extra tags.

    Blocks nest: an inner block without a trace id keeps the outer one; tags add up. Like any
    contextvar, the block's values are visible to whoever runs while it is open: do not `yield` from
    inside it in a generator; open it around the calls instead.
    """
    outer = CURRENT_SCOPE.get()
    outer_id, outer_tags = outer if outer is not None else (None, ())
    scope_id = check_trace_id(trace_id) if trace_id is not None else (outer_id or check_trace_id(None))
    added = check_tags(tags)
    token = CURRENT_SCOPE.set((scope_id, outer_tags + tuple(t for t in added if t not in outer_tags)))
    try:
        yield scope_id
    finally:
        # Closed from another context (an async generator closed by another task): nothing of
        # ours was set there, so there is nothing to undo.
        with contextlib.suppress(ValueError):
            CURRENT_SCOPE.reset(token)
