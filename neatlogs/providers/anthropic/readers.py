"""Reading Anthropic Messages calls into the record's fields (contract section 7).

What runs on the caller's thread is `compact_event` only (for streams whose events the SSE tap does not
keep, e.g. Bedrock's); everything else runs when a record is converted, off the caller's thread. Each
function reads the SDK's objects and decoded JSON (a raw response's body, a tapped stream's events)
alike, through `get`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, TypedDict

from neatlogs._log import log_internal_error
from neatlogs.providers._stainless.fields import get, payload, request_fields
from neatlogs.providers.anthropic.traits import anthropic_rate_limit
from neatlogs.record.call import CallRecord, QuickRead

try:  # the `speedups` extra decodes a stream's events faster
    import orjson as _orjson
except ImportError:
    _orjson = None  # type: ignore[assignment]

# kwargs whose list values the caller may keep mutating after the call (the conversation so far)
_SNAPSHOT_KWARGS = ("messages", "system", "tools", "stop_sequences", "betas")


class ToolCall(TypedDict):
    """A `tool_use` block in the record's (OpenAI-shaped) tool-call form."""

    id: Any
    type: str
    function: dict[str, Any]


# A streamed event as plain values (`compact_event`); None for events the record does not need.
#   ("start", model, id, usage)            message_start
#   ("block", index, type, id, name, text) content_block_start
#   ("text" | "thinking" | "json", index, piece)  content_block_delta
#   ("stop", stop_reason, usage)           message_delta
Compact = tuple[Any, ...] | None
# (input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens)
UsageParts = tuple[Any, Any, Any, Any]
_DELTA_FIELDS = {"text_delta": ("text", "text"), "thinking_delta": ("thinking", "thinking")}


def snapshot_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Copy the call's kwargs so that the caller's later changes to its lists do not rewrite the record."""
    request = dict(kwargs)
    for key in _SNAPSHOT_KWARGS:
        value = kwargs.get(key)
        if type(value) is list:
            request[key] = value.copy()
        elif (
            value is not None
            and not isinstance(value, (str, bytes, dict, tuple))
            and isinstance(value, Iterable)
        ):
            # a one-shot iterable: materialised once, and the SDK gets the same items
            kwargs[key] = request[key] = list(value)
    return request


def stream_request(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What `messages.stream(**kwargs)` sends (`stream: true`), for a record begun only when its manager
    is entered: the SDK holds the arguments by then, so a one-shot iterable among them is left out
    rather than read before the SDK reads it."""
    request = {**kwargs, "stream": True}
    for key in _SNAPSHOT_KWARGS:
        value = request.get(key)
        if isinstance(value, Iterator):
            request[key] = None
    return request


def _usage_parts(usage: Any) -> UsageParts | None:
    if usage is None:
        return None
    return (
        get(usage, "input_tokens"),
        get(usage, "output_tokens"),
        get(usage, "cache_read_input_tokens"),
        get(usage, "cache_creation_input_tokens"),
    )


def usage_of(parts: UsageParts | None) -> dict[str, Any] | None:
    """The record's usage: the prompt counts every input token, cached or not (contract section 7)."""
    if parts is None:
        return None
    input_tokens, output_tokens, cache_read, cache_write = parts
    counted = [n for n in (input_tokens, cache_read, cache_write) if isinstance(n, int)]
    prompt = sum(counted) if counted else None
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": output_tokens,
        "total_tokens": (prompt or 0) + (output_tokens or 0) if prompt is not None or output_tokens else None,
    }
    if isinstance(cache_read, int):
        usage["cache_read_tokens"] = cache_read
    if isinstance(cache_write, int):
        usage["cache_write_tokens"] = cache_write
    return usage


# ---- a whole message, kept as plain values ----


class CompactMessage(NamedTuple):
    """A `Message` as plain values, made when the call returns: a record kept in a history then holds
    strings and tuples, which the garbage collector does not walk again, rather than the SDK's object
    tree. `blocks` holds (type, id, name, text or tool input) per content block."""

    model: Any
    id: Any
    stop_reason: Any
    request_id: str | None
    usage: UsageParts | None
    blocks: tuple[tuple[Any, Any, Any, Any], ...]

    @property
    def _request_id(self) -> str | None:  # where `_call_fields` finds it on the SDK's own objects
        return self.request_id


_BLOCK_VALUE = {"text": "text", "thinking": "thinking", "tool_use": "input", "server_tool_use": "input"}


def _own_fields(value: Any) -> dict[str, Any]:
    # The SDK's pydantic models keep their fields in `__dict__`: reading them there skips pydantic's
    # slow `__getattr__` for the fields a block type does not have.
    fields = getattr(value, "__dict__", None)
    return fields if type(fields) is dict else {}


def compact_message(body: Any) -> Any:
    """A message as a `CompactMessage`, or `body` itself when it is not shaped like one (attribute
    reads only: runs on the caller's thread)."""
    fields = _own_fields(body)
    content = fields.get("content")
    if type(content) is not list:
        return body
    blocks = []
    for block in content:
        own = _own_fields(block)
        kind: Any = own.get("type")
        field = _BLOCK_VALUE.get(kind, "input" if kind == "mcp_tool_use" else "")
        blocks.append((kind, own.get("id"), own.get("name"), own.get(field) if field else None))
    private = getattr(body, "__pydantic_private__", None)  # where pydantic keeps `_request_id`
    request_id = private.get("_request_id") if type(private) is dict else getattr(body, "_request_id", None)
    usage = _own_fields(fields.get("usage"))
    return CompactMessage(
        fields.get("model"),
        fields.get("id"),
        fields.get("stop_reason"),
        request_id if isinstance(request_id, str) else None,
        (
            usage.get("input_tokens"),
            usage.get("output_tokens"),
            usage.get("cache_read_input_tokens"),
            usage.get("cache_creation_input_tokens"),
        )
        if usage
        else None,
        tuple(blocks),
    )


# ---- streamed events ----


def compact_event(event: Any, kept: list[Any] | None = None) -> Compact:
    """A streamed event (an SDK object or decoded JSON) as the few plain values the record needs."""
    kind = get(event, "type")
    if kind == "content_block_delta":
        delta = get(event, "delta")
        delta_type = get(delta, "type")
        if delta_type == "text_delta":
            return ("text", get(event, "index"), get(delta, "text"))
        if delta_type == "input_json_delta":
            return ("json", get(event, "index"), get(delta, "partial_json"))
        if delta_type == "thinking_delta":
            return ("thinking", get(event, "index"), get(delta, "thinking"))
        return None  # signatures, citations: not part of the record
    if kind == "content_block_start":
        block = get(event, "content_block")
        block_type = get(block, "type")
        text = get(block, "thinking") if block_type == "thinking" else get(block, "text")
        return ("block", get(event, "index"), block_type, get(block, "id"), get(block, "name"), text)
    if kind == "message_start":
        message = get(event, "message")
        return ("start", get(message, "model"), get(message, "id"), _usage_parts(get(message, "usage")))
    if kind == "message_delta":
        return ("stop", get(get(event, "delta"), "stop_reason"), _usage_parts(get(event, "usage")))
    return None


def _decode(events: list[str]) -> list[Any]:
    texts = [data for data in events if data[:1] == "{"]
    try:  # one decode for the whole stream
        text = "[" + ",".join(texts) + "]"
        return list(_orjson.loads(text) if _orjson is not None else json.loads(text))
    except ValueError:  # some event is not JSON (the SDK would have raised on it): one at a time
        decoded = []
        for data in texts:
            try:
                decoded.append(json.loads(data))
            except ValueError:
                continue
        return decoded


def settle_events(events: list[str]) -> list[Any]:
    """A stream's event data (JSON texts, as the SSE tap kept them) as compact events."""
    return [compact for compact in map(compact_event, _decode(events)) if compact is not None]


def _merged_usage(start: UsageParts | None, last: UsageParts | None) -> UsageParts | None:
    # message_delta's counts are cumulative; where it gives one it replaces message_start's
    if start is None or last is None:
        return start or last
    return tuple(b if b is not None else a for a, b in zip(start, last, strict=True))  # type: ignore[return-value]


class _Merged:
    __slots__ = ("blocks", "id", "model", "stop_reason", "usage")

    def __init__(self) -> None:
        self.model: Any = None
        self.id: Any = None
        self.stop_reason: Any = None
        self.usage: UsageParts | None = None
        # index -> [type, id, name, pieces]
        self.blocks: dict[Any, list[Any]] = {}


def merge_events(events: Iterable[Any]) -> _Merged:
    """Compact events merged: text, thinking and tool input per content block; usage and stop reason."""
    merged = _Merged()
    start_usage: UsageParts | None = None
    last_usage: UsageParts | None = None
    blocks = merged.blocks
    for event in events:
        if type(event) is not tuple:  # an SDK event kept as it came (compacting it failed)
            event = compact_event(event)
            if event is None:
                continue
        tag = event[0]
        if tag in ("text", "json", "thinking"):
            block = blocks.get(event[1])
            if block is None:
                block = blocks[event[1]] = [{"json": "tool_use"}.get(tag, tag), None, None, []]
            if event[2]:
                block[3].append(event[2])
        elif tag == "block":
            _, index, block_type, block_id, name, text = event
            blocks[index] = [block_type, block_id, name, [text] if text else []]
        elif tag == "start":
            merged.model, merged.id, start_usage = event[1], event[2], event[3]
        elif tag == "stop":
            merged.stop_reason = event[1] or merged.stop_reason
            last_usage = event[2] if event[2] is not None else last_usage
    merged.usage = _merged_usage(start_usage, last_usage)
    return merged


# ---- the answer ----


def _completion(blocks: Iterable[tuple[Any, Any, Any, str]]) -> dict[str, Any]:
    """The record's completion from (type, id, name, text or input JSON) per content block."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    for block_type, block_id, name, text in blocks:
        if block_type == "text":
            texts.append(text)
        elif block_type in ("thinking", "redacted_thinking"):
            if text:
                thinking.append(text)
        elif block_type in ("tool_use", "server_tool_use", "mcp_tool_use"):
            calls.append(
                {"id": block_id, "type": "function", "function": {"name": name, "arguments": text or "{}"}}
            )
    completion: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        completion["tool_calls"] = calls
    if thinking:
        completion["thinking"] = "".join(thinking)
    return completion


def _block_text(block_type: Any, value: Any) -> str:
    if block_type in ("tool_use", "server_tool_use", "mcp_tool_use"):
        return json.dumps(value if value is not None else {}, ensure_ascii=False, default=str)
    return value if isinstance(value, str) else ""


def _message_blocks(content: Any) -> list[tuple[Any, Any, Any, str]]:
    blocks = []
    for block in content or ():
        block_type = get(block, "type")
        field = _BLOCK_VALUE.get(block_type, "input" if block_type == "mcp_tool_use" else "")
        value = get(block, field) if field else None
        blocks.append((block_type, get(block, "id"), get(block, "name"), _block_text(block_type, value)))
    return blocks


def _prompt(request: dict[str, Any]) -> list[Any] | None:
    messages = request.get("messages")
    system = request.get("system")
    if system is None:
        return messages if isinstance(messages, list) else None
    return [{"role": "system", "content": system}, *(messages if isinstance(messages, list) else ())]


def _vendor(client: Any) -> str | None:
    # Bedrock's and Vertex AI's clients of the SDK serve Claude through the same classes.
    names = {cls.__name__ for cls in type(client).__mro__}
    if "BaseBedrockClient" in names:
        return "aws.bedrock"
    if "BaseVertexClient" in names:
        return "gcp.vertex_ai"
    return None


def _call_fields(record: CallRecord, body: Any, headers: Any) -> dict[str, Any]:
    """`request_id` (body, `request-id` header, error) and `rate_limit` (`anthropic-ratelimit-*`)."""
    if headers is None:
        headers = getattr(getattr(record.error, "response", None), "headers", None)
    request_id = getattr(body, "_request_id", None) if body is not None else None
    if not isinstance(request_id, str):
        getter = getattr(headers, "get", None)
        request_id = getter("request-id") if callable(getter) else None
    if not isinstance(request_id, str):
        request_id = getattr(record.error, "request_id", None)
    return {
        "request_id": request_id if isinstance(request_id, str) else None,
        "rate_limit": anthropic_rate_limit(headers),
    }


def _base_fields(record: CallRecord) -> dict[str, Any]:
    fields = request_fields(record)
    fields["prompt"] = _prompt(fields["request"])
    vendor = _vendor(record.client)
    if vendor is not None:
        fields["provider_name"] = vendor
    elif "server_address" in fields:
        fields["provider_name"] = "anthropic"
    return fields


def read_messages(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a `messages.create` / `stream` / `parse` call (streamed or not, raw)."""
    fields = _base_fields(record)
    body, headers = payload(record)
    completion: dict[str, Any] | None = None
    usage_parts: UsageParts | None = None
    chunks = record.stream_chunks() if record.stream else None
    if chunks:
        merged = merge_events(chunks)
        blocks = [
            (kind, block_id, name, "".join(pieces))
            for _, (kind, block_id, name, pieces) in sorted(
                merged.blocks.items(), key=lambda item: item[0] or 0
            )
        ]
        completion = _completion(blocks)
        fields["finish_reason"] = merged.stop_reason
        fields["response_model"], fields["response_id"] = merged.model, merged.id
        usage_parts = merged.usage
    elif isinstance(body, CompactMessage):
        completion = _completion([(k, i, n, _block_text(k, v)) for k, i, n, v in body.blocks])
        fields["finish_reason"] = body.stop_reason
        fields["response_model"], fields["response_id"] = body.model, body.id
        usage_parts = body.usage
    elif body is not None and get(body, "content") is not None:
        completion = _completion(_message_blocks(get(body, "content")))
        fields["finish_reason"] = get(body, "stop_reason")
        fields["response_model"], fields["response_id"] = get(body, "model"), get(body, "id")
        usage_parts = _usage_parts(get(body, "usage"))
    if completion is not None:
        completion["finish_reason"] = fields.get("finish_reason")
    fields["completion"] = completion
    fields["choices"] = [completion] if completion is not None else []
    fields["usage"] = usage_of(usage_parts)
    fields.update(_call_fields(record, body, headers))
    return fields


def read_count_tokens(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a `messages.count_tokens` call: the prompt and its `input_tokens` (no usage:
    counting is not billed)."""
    fields = _base_fields(record)
    body, headers = payload(record)
    count = get(body, "input_tokens") if body is not None else None
    fields["input_tokens"] = count if isinstance(count, int) else None
    fields.update(_call_fields(record, body, headers))
    return fields


def quick_usage(response: Any, chunks: list[Any], stream: bool) -> QuickRead | None:
    """Usage and model for statistics, read without converting the record (`record.call.Quick`)."""
    try:
        if stream:
            start = next((c for c in chunks if type(c) is tuple and c[0] == "start"), None)
            stops = [c for c in chunks if type(c) is tuple and c[0] == "stop"]
            if start is None and not stops:
                return None if chunks else (None, None)
            last = stops[-1][2] if stops else None
            model = start[1] if start is not None else None
            return usage_of(_merged_usage(start[3] if start is not None else None, last)), model
        if type(response) is CompactMessage:
            return usage_of(response.usage), response.model if isinstance(response.model, str) else None
        if response is None or not hasattr(response, "usage"):
            return None  # a raw response, or nothing: the full reader knows
        model = getattr(response, "model", None)
        return usage_of(_usage_parts(response.usage)), model if isinstance(model, str) else None
    except Exception:
        log_internal_error("counting an anthropic call")
        return None
