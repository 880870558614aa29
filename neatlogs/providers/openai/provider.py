"""`OpenAIProvider`: trace every call of the OpenAI SDK with one `override()`."""

from __future__ import annotations

from typing import Any

from neatlogs.providers._core.instrumentation import FailedCall, Instrumentation
from neatlogs.providers._core.patchset import PatchSet
from neatlogs.providers.openai.embeddings import read_embeddings
from neatlogs.providers.openai.patch import OPENAI_PATCHES, read_chat, read_completion, snapshot_kwargs
from neatlogs.providers.openai.responses import read_responses
from neatlogs.providers.openai.v0 import (
    is_openai_v0,
    read_chat_v0,
    read_completion_v0,
    select_openai_patches,
    snapshot_for,
)
from neatlogs.record.call import Reader

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

    def _select_patches(self) -> PatchSet:
        # openai 0.x has a module-level API of its own.
        return select_openai_patches()

    def _describe_failure(self, kwargs: dict[str, Any]) -> FailedCall:
        if is_openai_v0():
            import openai

            request = snapshot_for(openai)(kwargs)
        else:
            request = snapshot_kwargs(kwargs)
        operation, reader = _operation_of(request)
        return FailedCall(operation, reader, request)
