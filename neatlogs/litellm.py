"""`LiteLLMProvider`: trace every `litellm.completion` / `litellm.acompletion` call with one `override()`."""

from __future__ import annotations

import importlib
import time
from typing import Any

from ._context import CURRENT_SCOPE
from ._log import log_internal_error
from ._patch.litellm import LITELLM_PATCHES, read_litellm_chat, snapshot_litellm_kwargs
from ._provider import Instrumentation
from ._record import CallRecord

__all__ = ["LiteLLMProvider"]


class LiteLLMProvider(Instrumentation):
    """Records LiteLLM's chat calls (streamed or not, sync or async) into a history and the sinks.

    A call LiteLLM makes through the OpenAI SDK is recorded once, as a `"litellm"` call, even
    when an `OpenAIProvider` is active too.
    """

    _patches = LITELLM_PATCHES
    _sdk_name = "litellm"

    def _check_client(self, client: Any) -> None:
        if client is not None:
            raise TypeError(
                f"client must be None for LiteLLMProvider (LiteLLM has no client objects), "
                f"got {type(client).__name__}"
            )

    def override(self) -> None:
        """Patch `litellm.completion` / `acompletion` (idempotent); raises ImportError without litellm."""
        try:
            importlib.import_module("litellm")  # by name: type checkers need not analyse LiteLLM
        except ImportError as exc:
            raise ImportError(
                "LiteLLMProvider.override() needs the litellm package: pip install litellm"
            ) from exc
        super().override()

    def handle_error(self, e: BaseException, kwargs: dict[str, Any] | None = None) -> None:
        """Record a failed call made with `kwargs`; never raises."""
        try:
            request = snapshot_litellm_kwargs(dict(kwargs or {}))
            record = CallRecord("litellm", "chat", read_litellm_chat, request, bool(request.get("stream")))
            record.scope = CURRENT_SCOPE.get()
            record.t_end = time.perf_counter_ns()
            record.finished = True
            record.status = "error"
            record.error = e
            self._recorder.deliver(record)
        except Exception:
            log_internal_error("LiteLLMProvider.handle_error")
