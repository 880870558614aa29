"""`LiteLLMProvider`: trace every `litellm.completion` / `litellm.acompletion` call with one `override()`."""

from __future__ import annotations

from typing import Any

from neatlogs.providers._core.instrumentation import FailedCall, Instrumentation
from neatlogs.providers.litellm.patch import LITELLM_PATCHES, read_litellm_chat, snapshot_litellm_kwargs

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

    def _describe_failure(self, kwargs: dict[str, Any]) -> FailedCall:
        return FailedCall("chat", read_litellm_chat, snapshot_litellm_kwargs(kwargs))
