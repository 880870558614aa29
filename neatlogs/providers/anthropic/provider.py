"""`AnthropicProvider`: trace every Claude call of the anthropic SDK with one `override()`."""

from __future__ import annotations

from typing import Any

from neatlogs.providers._core.instrumentation import FailedCall, Instrumentation
from neatlogs.providers.anthropic.patch import ANTHROPIC_PATCHES
from neatlogs.providers.anthropic.readers import read_count_tokens, read_messages, snapshot_kwargs

__all__ = ["AnthropicProvider"]


class AnthropicProvider(Instrumentation):
    """Records the anthropic SDK's Messages calls (all clients, or only `client`) into a history and
    the sinks: `messages.create` / `stream` / `parse` / `count_tokens`, also under `beta`."""

    _patches = ANTHROPIC_PATCHES
    _sdk_name = "anthropic"

    def _check_client(self, client: Any) -> None:
        if client is not None and not hasattr(client, "messages"):
            raise TypeError(
                "client must be an anthropic client (anthropic.Anthropic, anthropic.AsyncAnthropic, ...) "
                f"or None for every client, got {type(client).__name__}"
            )

    def _describe_failure(self, kwargs: dict[str, Any]) -> FailedCall:
        request = snapshot_kwargs(kwargs)
        if "max_tokens" not in request and "messages" in request:
            return FailedCall("count_tokens", read_count_tokens, request)  # the one call without max_tokens
        return FailedCall("chat", read_messages, request)
