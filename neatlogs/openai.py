"""`OpenAIProvider`: trace every call of the OpenAI SDK with one `override()`."""

from __future__ import annotations

import time
from typing import Any

from ._context import CURRENT_SCOPE
from ._log import log_internal_error
from ._patch.openai import OPENAI_PATCHES, read_chat, read_completion, snapshot_kwargs
from ._patch.openai_embeddings import read_embeddings
from ._patch.openai_responses import read_responses
from ._patch.openai_v0 import (
    is_openai_v0,
    read_chat_v0,
    read_completion_v0,
    select_openai_patches,
    snapshot_for,
)
from ._provider import Instrumentation
from ._record import CallRecord, Reader

__all__ = ["OpenAIProvider"]


def _operation_of(request: dict[str, Any]) -> tuple[str, Reader]:
    """Which API a failed call's kwargs were meant for (handle_error only has the kwargs)."""
    if is_openai_v0():
        return ("chat", read_chat_v0) if "messages" in request else ("completion", read_completion_v0)
    if "messages" in request:
        return "chat", read_chat
    if "prompt" in request:
        return "completion", read_completion
    if "input" in request:
        if "embedding" in str(request.get("model", "")):
            return "embeddings", read_embeddings
        return "responses", read_responses
    return "chat", read_chat


class OpenAIProvider(Instrumentation):
    """Records the OpenAI SDK's calls (all clients, or only `client`) into a history and the sinks."""

    _patches = OPENAI_PATCHES
    _sdk_name = "openai"

    def _check_client(self, client: Any) -> None:
        if client is not None and not hasattr(client, "chat"):
            raise TypeError(
                f"client must be an openai.OpenAI or openai.AsyncOpenAI instance (or None for every client), "
                f"got {type(client).__name__}"
            )

    def override(self) -> None:
        """Patch the OpenAI SDK's classes (idempotent); raises ImportError if openai is not installed."""
        try:
            import openai  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "OpenAIProvider.override() needs the openai package: pip install openai"
            ) from exc
        # openai 0.x has a module-level API of its own; the instance attribute serves undo_override too.
        self._patches = select_openai_patches()
        super().override()

    def handle_error(self, e: BaseException, kwargs: dict[str, Any] | None = None) -> None:
        """Record a failed call made with `kwargs`; never raises."""
        try:
            given = dict(kwargs or {})
            if is_openai_v0():
                import openai

                request = snapshot_for(openai)(given)
            else:
                request = snapshot_kwargs(given)
            operation, reader = _operation_of(request)
            record = CallRecord("openai", operation, reader, request, bool(request.get("stream")))
            record.scope = CURRENT_SCOPE.get()
            record.t_end = time.perf_counter_ns()
            record.finished = True
            record.status = "error"
            record.error = e
            self._recorder.deliver(record)
        except Exception:
            log_internal_error("OpenAIProvider.handle_error")
