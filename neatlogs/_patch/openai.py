"""The OpenAI SDK: which methods to wrap, and how to read their requests, responses and chunks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._jsonsafe import to_jsonable
from .._record import CallRecord
from ._calls import CallKind, async_wrapper, sync_wrapper
from ._patchset import PatchSet, Target

# kwargs that never enter a record: headers may carry credentials (contract, section 2).
_DROPPED_KWARGS = frozenset({"extra_headers"})
# kwargs whose list values the caller may keep mutating after the call (chat history lists).
_SNAPSHOT_KWARGS = ("messages", "prompt", "input", "tools", "functions", "stop")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def snapshot_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Copy the call's kwargs so later mutation by the caller does not rewrite the record."""
    request = dict(kwargs)
    for key in _SNAPSHOT_KWARGS:
        value = kwargs.get(key)
        if value is None or isinstance(value, (str, bytes, dict, tuple)):
            continue
        if isinstance(value, list):
            request[key] = value.copy()
        elif isinstance(value, Iterable) and not hasattr(value, "model_dump"):
            # A one-shot iterable: materialise it once and give the SDK the same items.
            kwargs[key] = request[key] = list(value)
    return request


def _client_of(instance: Any) -> Any:
    return getattr(instance, "_client", None)


# ---- reading a call (runs off the hot path, on whichever thread converts the record) ----


def _server_fields(client: Any) -> dict[str, Any]:
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None)
    if not host:
        return {}
    port = getattr(url, "port", None) or _DEFAULT_PORTS.get(str(getattr(url, "scheme", "")))
    return {"server_address": str(host), "server_port": port}


def _request_fields(record: CallRecord) -> dict[str, Any]:
    request = to_jsonable({k: v for k, v in record.request.items() if k not in _DROPPED_KWARGS})
    fields: dict[str, Any] = {"request": request, "model": request.get("model")}
    fields.update(_server_fields(record.client))
    return fields


def _usage(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    result: dict[str, Any] = {
        "prompt_tokens": getattr(usage, "prompt_tokens", None),
        "completion_tokens": getattr(usage, "completion_tokens", None),
        "total_tokens": getattr(usage, "total_tokens", None),
    }
    cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None)
    if cached is not None:
        result["cached_tokens"] = cached
    reasoning = getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None)
    if reasoning is not None:
        result["reasoning_tokens"] = reasoning
    return result


def _request_id(record: CallRecord) -> str | None:
    response = record.response
    value = getattr(response, "_request_id", None)
    if value is None:
        # A stream's record keeps its HTTP headers as `response`; raw responses carry `.headers`.
        headers = response if record.stream else getattr(response, "headers", None)
        getter = getattr(headers, "get", None)
        value = getter("x-request-id") if callable(getter) else None
    return value if isinstance(value, str) else None


def _tool_calls(tool_calls: Any) -> list[dict[str, Any]]:
    calls = []
    for call in tool_calls or ():
        function = getattr(call, "function", None)
        calls.append(
            {
                "id": getattr(call, "id", None),
                "type": getattr(call, "type", None) or "function",
                "function": {
                    "name": getattr(function, "name", None),
                    "arguments": getattr(function, "arguments", None),
                },
            }
        )
    return calls


def _chat_message(index: int, message: Any, finish_reason: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": index,
        "role": getattr(message, "role", None) or "assistant",
        "content": getattr(message, "content", None),
        "finish_reason": finish_reason,
    }
    tool_calls = _tool_calls(getattr(message, "tool_calls", None))
    if tool_calls:
        choice["tool_calls"] = tool_calls
    function_call = getattr(message, "function_call", None)
    if function_call is not None:
        choice["function_call"] = to_jsonable(function_call)
    refusal = getattr(message, "refusal", None)
    if refusal:
        choice["refusal"] = refusal
    return choice


def _merge_chat_chunks(chunks: list[Any]) -> dict[str, Any]:
    merged: dict[int, dict[str, Any]] = {}
    tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
    usage = model = response_id = None
    for chunk in chunks:
        model = getattr(chunk, "model", None) or model
        response_id = getattr(chunk, "id", None) or response_id
        if getattr(chunk, "usage", None) is not None:
            usage = chunk.usage
        for part in getattr(chunk, "choices", None) or ():
            index = getattr(part, "index", 0) or 0
            choice = merged.setdefault(
                index, {"index": index, "role": "assistant", "content": None, "finish_reason": None}
            )
            if getattr(part, "finish_reason", None):
                choice["finish_reason"] = part.finish_reason
            delta = getattr(part, "delta", None)
            if delta is None:
                continue
            if getattr(delta, "role", None):
                choice["role"] = delta.role
            if getattr(delta, "content", None):
                choice["content"] = (choice["content"] or "") + delta.content
            if getattr(delta, "refusal", None):
                choice["refusal"] = choice.get("refusal", "") + delta.refusal
            function_call = getattr(delta, "function_call", None)
            if function_call is not None:
                merged_call = choice.setdefault("function_call", {"name": None, "arguments": ""})
                merged_call["name"] = getattr(function_call, "name", None) or merged_call["name"]
                merged_call["arguments"] += getattr(function_call, "arguments", None) or ""
            for delta_call in getattr(delta, "tool_calls", None) or ():
                calls = tool_calls.setdefault(index, {})
                call = calls.setdefault(
                    getattr(delta_call, "index", 0) or 0,
                    {"id": None, "type": "function", "function": {"name": None, "arguments": ""}},
                )
                call["id"] = getattr(delta_call, "id", None) or call["id"]
                call["type"] = getattr(delta_call, "type", None) or call["type"]
                function = getattr(delta_call, "function", None)
                if function is not None:
                    call["function"]["name"] = getattr(function, "name", None) or call["function"]["name"]
                    call["function"]["arguments"] += getattr(function, "arguments", None) or ""
    for index, calls in tool_calls.items():
        merged[index]["tool_calls"] = [calls[i] for i in sorted(calls)]
    choices = [merged[i] for i in sorted(merged)]
    return {"choices": choices, "usage": usage, "model": model, "id": response_id}


def read_chat(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a chat completion call (streamed or not)."""
    fields = _request_fields(record)
    fields["prompt"] = fields["request"].get("messages")
    if record.stream and record.chunks:
        merged = _merge_chat_chunks(record.chunks)
        choices, usage = merged["choices"], merged["usage"]
        fields["response_model"], fields["response_id"] = merged["model"], merged["id"]
    elif hasattr(record.response, "choices"):
        response = record.response
        parts = sorted(response.choices or (), key=lambda c: getattr(c, "index", 0) or 0)
        choices = [_chat_message(c.index, c.message, c.finish_reason) for c in parts]
        usage = response.usage
        fields["response_model"], fields["response_id"] = response.model, response.id
    else:
        choices, usage = [], None
    fields["choices"] = choices
    fields["completion"] = choices[0] if choices else None
    fields["finish_reason"] = choices[0]["finish_reason"] if choices else None
    fields["usage"] = _usage(usage)
    fields["request_id"] = _request_id(record)
    return fields


def read_completion(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a legacy (text) completion call (streamed or not)."""
    fields = _request_fields(record)
    fields["prompt"] = fields["request"].get("prompt")
    texts: dict[int, list[str]] = {}
    reasons: dict[int, Any] = {}
    usage = None
    if record.stream and record.chunks:
        for chunk in record.chunks:
            fields["response_model"] = getattr(chunk, "model", None) or fields.get("response_model")
            fields["response_id"] = getattr(chunk, "id", None) or fields.get("response_id")
            usage = getattr(chunk, "usage", None) or usage
            for part in getattr(chunk, "choices", None) or ():
                texts.setdefault(part.index, []).append(part.text or "")
                if part.finish_reason:
                    reasons[part.index] = part.finish_reason
    elif hasattr(record.response, "choices"):
        response = record.response
        for part in response.choices or ():
            texts[part.index] = [part.text or ""]
            reasons[part.index] = part.finish_reason
        usage = response.usage
        fields["response_model"], fields["response_id"] = response.model, response.id
    fields["choices"] = ["".join(texts[i]) for i in sorted(texts)]
    fields["completion"] = fields["choices"][0] if texts else None
    fields["finish_reason"] = reasons.get(min(texts)) if texts else None
    fields["usage"] = _usage(usage)
    fields["request_id"] = _request_id(record)
    return fields


# ---- what to patch ----


def _targets() -> list[Target]:
    import openai
    from openai.resources import AsyncCompletions, Completions
    from openai.resources.chat import AsyncCompletions as AsyncChatCompletions
    from openai.resources.chat import Completions as ChatCompletions

    sync_stream, async_stream = openai.Stream, openai.AsyncStream

    def stream_kind(result: Any) -> str | None:
        if isinstance(result, sync_stream):
            return "sync"
        if isinstance(result, async_stream):
            return "async"
        return None

    def kind(operation: str, reader: Any) -> CallKind:
        return CallKind("openai", operation, reader, _client_of, stream_kind, snapshot_kwargs)

    chat, completion = kind("chat", read_chat), kind("completion", read_completion)
    return [
        (ChatCompletions, "create", sync_wrapper(chat)),
        (AsyncChatCompletions, "create", async_wrapper(chat)),
        (Completions, "create", sync_wrapper(completion)),
        (AsyncCompletions, "create", async_wrapper(completion)),
    ]


OPENAI_PATCHES = PatchSet("openai", _targets)
