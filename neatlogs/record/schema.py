"""The record's schema, in one place: what every sink, the wire and the collector agree on.

A record is a JSON-safe dict (contract section 2). `Record` types it; `REQUIRED_KEYS` is what the
collector requires of each ingested record; `METADATA_KEYS` is what the metadata view keeps (no prompt
or completion text).
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["METADATA_KEYS", "REQUIRED_KEYS", "ErrorInfo", "Message", "Record", "ToolCall", "Usage"]


class ErrorInfo(TypedDict, total=False):
    """A failed call's exception: class name, masked message, HTTP status and request id."""

    type: str
    message: str
    status_code: int
    request_id: str


class Usage(TypedDict, total=False):
    """Token counts as the API reported them (cached / reasoning / cache writes where it gave them)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int


class ToolCall(TypedDict, total=False):
    """One tool call of an answer; `function.arguments` is JSON text."""

    id: str
    type: str
    function: dict[str, Any]


class Message(TypedDict, total=False):
    """A chat message (prompt entries, the completion and each choice)."""

    role: str
    content: Any
    tool_calls: list[ToolCall]
    thinking: str
    finish_reason: str | None


class _Required(TypedDict):
    id: str
    trace_id: str
    provider: str
    operation: str
    model: str | None
    response_model: str | None
    request: dict[str, Any]
    prompt: list[Any] | str | None
    completion: Message | str | None
    choices: list[Any]
    finish_reason: str | None
    stream: bool
    usage: Usage | None
    cost_usd: float | None
    tags: list[str]
    started_at: str
    ended_at: str
    duration_ms: float
    ttft_ms: float | None
    status: str
    error: ErrorInfo | None


class Record(_Required, total=False):
    """One traced call (or step): the contract's record, as the history, the exporter and sinks see it."""

    rate_limit: dict[str, Any] | None
    capture: str
    request_id: str
    response_id: str
    server_address: str
    server_port: int
    system_fingerprint: str
    service_tier: str
    provider_name: str
    azure_deployment: str
    azure_api_version: str
    input_count: int
    dimensions: int
    custom_llm_provider: str
    litellm_cost_usd: float
    input_tokens: int


REQUIRED_KEYS: tuple[str, ...] = tuple(_Required.__annotations__)
# Everything but the content: the text-bearing keys (request, prompt, completion, choices) are reduced
# to their settings and shapes by the metadata view itself.
_CONTENT_KEYS = frozenset({"request", "prompt", "completion", "choices"})
METADATA_KEYS: frozenset[str] = frozenset(
    key for key in (*REQUIRED_KEYS, *Record.__annotations__) if key not in _CONTENT_KEYS
)
