"""`OpenAIProvider`: trace every call of the OpenAI SDK with one `override()`."""

from __future__ import annotations

import time
from typing import Any

from ._context import CURRENT_SCOPE
from ._log import log_internal_error
from ._patch.openai import OPENAI_PATCHES, read_chat, read_completion, snapshot_kwargs
from ._provider import Instrumentation
from ._record import CallRecord

__all__ = ["OpenAIProvider"]


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
        super().override()

    def handle_error(self, e: BaseException, kwargs: dict[str, Any] | None = None) -> None:
        """Record a failed call made with `kwargs`; never raises."""
        try:
            request = snapshot_kwargs(dict(kwargs or {}))
            is_chat = "messages" in request or "prompt" not in request
            record = CallRecord(
                "openai",
                "chat" if is_chat else "completion",
                read_chat if is_chat else read_completion,
                request,
                bool(request.get("stream")),
            )
            record.scope = CURRENT_SCOPE.get()
            record.t_end = time.perf_counter_ns()
            record.finished = True
            record.status = "error"
            record.error = e
            self._recorder.deliver(record)
        except Exception:
            log_internal_error("OpenAIProvider.handle_error")
