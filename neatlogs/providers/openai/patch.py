"""The OpenAI SDK: which methods to wrap, and how to read chat and legacy completion calls.

Readers of the other APIs live beside this module: `openai_responses`, `openai_embeddings`; raw
responses and the SDK's helper streams are handled in `openai_raw`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from neatlogs._log import log_internal_error, logger
from neatlogs.providers._core.calls import CallKind, async_wrapper, sync_wrapper
from neatlogs.providers._core.patchset import PatchSet, Target, find_attribute
from neatlogs.providers._core.streams import Finish
from neatlogs.providers._stainless.events import sse_decoder_tap
from neatlogs.providers._stainless.fields import (
    JSONObject,
    call_fields,
    get,
    payload,
    quick_usage,
    request_fields,
    usage_reader,
)
from neatlogs.providers._stainless.raw import RawResponses, helper_async_close_wrapper, helper_close_wrapper
from neatlogs.providers.openai.embeddings import read_embeddings
from neatlogs.providers.openai.responses import read_responses, response_usage
from neatlogs.record.call import CallRecord

try:  # the `speedups` extra: decodes a stream's events several times faster
    import orjson as _orjson
except ImportError:
    _orjson = None  # type: ignore[assignment]

# kwargs whose list values the caller may keep mutating after the call (chat history lists).
_SNAPSHOT_KWARGS = ("messages", "prompt", "input", "tools", "functions", "stop")


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


_usage = usage_reader(
    "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"
)


class CompactChat(NamedTuple):
    """A chat completion as plain values: what `read_chat` reads of it (see `compact_chat_completion`).

    `choices` holds one (index, finish_reason, role, content, refusal, tool_calls, function_call) tuple
    per choice; `tool_calls` is None or (id, type, name, arguments) tuples, `function_call` None or
    (name, arguments); `usage` is already in the record's shape.
    """

    model: Any
    id: Any
    system_fingerprint: Any
    request_id: str | None
    usage: dict[str, Any] | None
    choices: tuple[tuple[Any, ...], ...]

    @property
    def _request_id(self) -> str | None:  # where `call_fields` finds it on the SDK's own objects
        return self.request_id


def _usage_attributes(usage: Any) -> dict[str, Any] | None:
    """What `_usage` reads, read as attributes only (the caller's thread: one call, not one a field)."""
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


def _tool_call(call: Any) -> tuple[Any, Any, Any, Any]:
    function = getattr(call, "function", None)  # None for a custom tool: no name or arguments
    return (
        getattr(call, "id", None),
        getattr(call, "type", None),
        getattr(function, "name", None),
        getattr(function, "arguments", None),
    )


def compact_chat_completion(body: Any) -> Any:
    """A chat completion as a `CompactChat`, or `body` itself when it is not shaped like one.

    Runs on the caller's thread when a call returns: a record then keeps strings and numbers rather
    than the SDK's object tree, which the garbage collector would otherwise walk for as long as the
    record lives in a history. `read_chat` reads every non-streamed chat answer through it. Attribute
    reads only (the SDK's objects, openai 0.28's, and a raw response's JSON as `JSONObject`s).
    """
    choices = getattr(body, "choices", None)
    if type(choices) is not list:
        return body
    compact = []
    for choice in choices:
        message = getattr(choice, "message", None)
        tool_calls = getattr(message, "tool_calls", None)
        legacy = getattr(message, "function_call", None)
        compact.append(
            (
                getattr(choice, "index", None) or 0,
                getattr(choice, "finish_reason", None),
                getattr(message, "role", None),
                getattr(message, "content", None),
                getattr(message, "refusal", None),
                tuple(_tool_call(call) for call in tool_calls) if tool_calls else None,
                None
                if legacy is None
                else (getattr(legacy, "name", None), getattr(legacy, "arguments", None)),
            )
        )
    request_id = getattr(body, "_request_id", None)
    return CompactChat(
        getattr(body, "model", None),
        getattr(body, "id", None),
        getattr(body, "system_fingerprint", None),
        request_id if isinstance(request_id, str) else None,
        _usage_attributes(getattr(body, "usage", None)),
        tuple(compact),
    )


def _chat_message(part: tuple[Any, ...]) -> dict[str, Any]:
    index, finish_reason, role, content, refusal, calls, function_call = part
    choice: dict[str, Any] = {
        "index": index,
        "role": role or "assistant",
        "content": content,
        "finish_reason": finish_reason,
    }
    if calls:
        choice["tool_calls"] = [
            {
                "id": call_id,
                "type": call_type or "function",
                "function": {"name": name, "arguments": arguments},
            }
            for call_id, call_type, name, arguments in calls
        ]
    if function_call is not None:
        choice["function_call"] = {"name": function_call[0], "arguments": function_call[1]}
    if refusal:
        choice["refusal"] = refusal
    return choice


def compact_chat_chunk(chunk: Any, kept: list[Any] | None = None) -> Any:
    """A chat chunk as plain values: what the merge needs and nothing more.

    Reads the SDK's chunk objects (openai 0.28's too) and decoded JSON events alike. A chunk that
    only adds text to the first choice, with the same model, id and fingerprint as the stream's
    first chunk (`kept[0]`), is kept as that text alone: most chunks of a stream. Any other chunk is
    a tuple (model, id, fingerprint, usage, choices).
    """
    if kept:
        text = _continuation(chunk, kept[0])
        if text is not None:
            return text
    choices: Any = get(chunk, "choices") or ()
    parts = []
    for part in choices:
        delta = get(part, "delta")
        calls = function_call = role = content = refusal = None
        if delta is not None:
            role, content, refusal = get(delta, "role"), get(delta, "content"), get(delta, "refusal")
            deltas = get(delta, "tool_calls")
            if deltas:
                calls = tuple(
                    (
                        get(call, "index") or 0,
                        get(call, "id"),
                        get(call, "type"),
                        get(get(call, "function"), "name"),
                        get(get(call, "function"), "arguments"),
                    )
                    for call in deltas
                )
            legacy = get(delta, "function_call")
            if legacy is not None:
                function_call = (get(legacy, "name"), get(legacy, "arguments"))
        index, finish_reason = get(part, "index") or 0, get(part, "finish_reason")
        parts.append((index, finish_reason, role, content, refusal, calls, function_call))
    return (
        get(chunk, "model"),
        get(chunk, "id"),
        get(chunk, "system_fingerprint"),
        get(chunk, "usage"),
        tuple(parts),
    )


def _fields(value: Any) -> Any:
    # Decoded JSON is its own fields; the SDK's pydantic models keep theirs in `__dict__` (reading
    # them there skips attribute lookup on the model class).
    return value if type(value) is dict else getattr(value, "__dict__", None)


def _continuation(chunk: Any, first: Any) -> str | None:
    """The text of a chunk that carries nothing else new (see `compact_chat_chunk`), else None."""
    fields = _fields(chunk)
    if type(fields) is not dict or type(first) is not tuple:
        return None
    choices = fields.get("choices")
    if (
        type(choices) is not list
        or len(choices) != 1
        or fields.get("usage") is not None
        or fields.get("model") != first[0]
        or fields.get("id") != first[1]
        or fields.get("system_fingerprint") != first[2]
    ):
        return None
    part = _fields(choices[0])
    if type(part) is not dict or part.get("index") != 0 or part.get("finish_reason") is not None:
        return None
    delta = _fields(part.get("delta"))
    if type(delta) is not dict:
        return None
    content = delta.get("content")
    if (
        type(content) is not str
        or delta.get("role") is not None
        or delta.get("tool_calls") is not None
        or delta.get("function_call") is not None
        or delta.get("refusal") is not None
    ):
        return None
    return content


def _decoded_events(events: list[str], object_hook: Any = None) -> list[Any]:
    """The JSON objects among a stream's events (not "[DONE]", not error events), decoded."""
    texts = [data for data in events if data[:1] == "{"]
    try:  # one decode for the whole stream: a C call per event costs more than the parsing
        decoded = _decode("[" + ",".join(texts) + "]", object_hook)
    except ValueError:  # some event is not JSON (the SDK would have raised on it): one at a time
        decoded = []
        for data in texts:
            try:
                decoded.append(json.loads(data, object_hook=object_hook))
            except ValueError:
                continue
    return [chunk for chunk in decoded if "error" not in chunk]


def _decode(text: str, object_hook: Any) -> Any:
    if object_hook is None and _orjson is not None:
        return _orjson.loads(text)
    return json.loads(text, object_hook=object_hook)


def settle_completion_events(events: list[str]) -> list[Any]:
    """A legacy completion stream's events (JSON texts) as chunks that read like the SDK's."""
    return _decoded_events(events, JSONObject)


def settle_chat_events(events: list[str]) -> list[Any]:
    """A chat stream's events (JSON texts, as a stream's tap kept them) as compact chunks."""
    kept: list[Any] = []
    for chunk in _decoded_events(events):
        kept.append(compact_chat_chunk(chunk, kept))
    return kept


def _merge_chat_chunks(chunks: list[Any]) -> dict[str, Any]:
    merged: dict[int, dict[str, Any]] = {}
    tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
    usage = model = response_id = fingerprint = None
    for chunk in chunks:
        if type(chunk) is str:  # more text for the first choice, nothing else new
            first_choice = merged.get(0)
            if first_choice is not None:
                first_choice["content"] = (first_choice["content"] or "") + chunk
                continue
            chunk = (None, None, None, None, ((0, None, None, chunk, None, None, None),))
        chunk_model, chunk_id, chunk_fingerprint, chunk_usage, parts = (
            chunk if type(chunk) is tuple else compact_chat_chunk(chunk)
        )
        model = chunk_model or model
        response_id = chunk_id or response_id
        fingerprint = chunk_fingerprint or fingerprint
        if chunk_usage is not None:
            usage = chunk_usage
        for index, finish_reason, role, content, refusal, calls, function_call in parts:
            choice = merged.setdefault(
                index, {"index": index, "role": "assistant", "content": None, "finish_reason": None}
            )
            if finish_reason:
                choice["finish_reason"] = finish_reason
            if role:
                choice["role"] = role
            if content:
                choice["content"] = (choice["content"] or "") + content
            if refusal:
                choice["refusal"] = choice.get("refusal", "") + refusal
            if function_call is not None:
                merged_call = choice.setdefault("function_call", {"name": None, "arguments": ""})
                merged_call["name"] = function_call[0] or merged_call["name"]
                merged_call["arguments"] += function_call[1] or ""
            for call_index, call_id, call_type, name, arguments in calls or ():
                call = tool_calls.setdefault(index, {}).setdefault(
                    call_index, {"id": None, "type": "function", "function": {"name": None, "arguments": ""}}
                )
                call["id"] = call_id or call["id"]
                call["type"] = call_type or call["type"]
                call["function"]["name"] = name or call["function"]["name"]
                call["function"]["arguments"] += arguments or ""
    for index, calls_by_index in tool_calls.items():
        merged[index]["tool_calls"] = [calls_by_index[i] for i in sorted(calls_by_index)]
    choices = [merged[i] for i in sorted(merged)]
    return {"choices": choices, "usage": usage, "model": model, "id": response_id, "fingerprint": fingerprint}


def read_chat(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a chat completion call (streamed or not, parsed, raw)."""
    fields = request_fields(record)
    fields["prompt"] = fields["request"].get("messages")
    body, headers = payload(record)
    choices: list[dict[str, Any]] = []
    usage = None
    chunks = record.stream_chunks() if record.stream else None
    if chunks:
        merged = _merge_chat_chunks(chunks)
        choices, usage = merged["choices"], merged["usage"]
        fields["response_model"], fields["response_id"] = merged["model"], merged["id"]
        fields["system_fingerprint"] = merged["fingerprint"]
    else:
        chat = body if isinstance(body, CompactChat) else compact_chat_completion(body)
        if isinstance(chat, CompactChat):
            choices = [_chat_message(part) for part in sorted(chat.choices, key=lambda part: part[0])]
            usage = chat.usage
            fields["response_model"], fields["response_id"] = chat.model, chat.id
            fields["system_fingerprint"] = chat.system_fingerprint
    fields["choices"] = choices
    fields["completion"] = choices[0] if choices else None
    fields["finish_reason"] = choices[0]["finish_reason"] if choices else None
    fields["usage"] = _usage(usage)  # the same shape again for a CompactChat's
    fields.update(call_fields(record, body, headers))
    return fields


def read_completion(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a legacy (text) completion call (streamed or not, raw)."""
    fields = request_fields(record)
    fields["prompt"] = fields["request"].get("prompt")
    body, headers = payload(record)
    texts: dict[int, list[str]] = {}
    reasons: dict[int, Any] = {}
    usage = None
    chunks = record.stream_chunks() if record.stream else None
    if chunks:
        for chunk in chunks:
            fields["response_model"] = getattr(chunk, "model", None) or fields.get("response_model")
            fields["response_id"] = getattr(chunk, "id", None) or fields.get("response_id")
            usage = getattr(chunk, "usage", None) or usage
            for part in getattr(chunk, "choices", None) or ():
                index = get(part, "index") or 0
                texts.setdefault(index, []).append(get(part, "text") or "")
                if get(part, "finish_reason"):
                    reasons[index] = get(part, "finish_reason")
    elif get(body, "choices") is not None:
        for part in get(body, "choices") or ():
            index = get(part, "index") or 0
            texts[index] = [get(part, "text") or ""]
            reasons[index] = get(part, "finish_reason")
        usage = get(body, "usage")
        fields["response_model"], fields["response_id"] = get(body, "model"), get(body, "id")
    fields["choices"] = ["".join(texts[i]) for i in sorted(texts)]
    fields["completion"] = fields["choices"][0] if texts else None
    fields["finish_reason"] = reasons.get(min(texts)) if texts else None
    fields["usage"] = _usage(usage)
    fields.update(call_fields(record, body, headers))
    return fields


# ---- what to patch ----
# Classes move between SDK versions: each is looked for where the known versions keep it, and what a
# version lacks is skipped (logged at DEBUG).

_Factory = Callable[[PatchSet], Callable[..., Any]]
_STREAMING = "openai._streaming"


def _find(module: str, name: str) -> Any:
    return find_attribute("openai", module, name)


def _method(owner: Any, attribute: str, factory: _Factory) -> list[Target]:
    if owner is None or not callable(getattr(owner, attribute, None)):
        if owner is not None:
            logger.debug("neatlogs: openai %s has no %s(); not traced", owner.__name__, attribute)
        return []
    return [(owner, attribute, factory)]


def _targets() -> list[Target]:
    import openai

    sync_stream, async_stream = openai.Stream, openai.AsyncStream

    def stream_kind(result: Any) -> str | None:
        if isinstance(result, sync_stream):
            return "sync"
        if isinstance(result, async_stream):
            return "async"
        return None

    # The SDK's own `__next__`/`__iter__` (and async ones) only pass on the chunks of `stream._iterator`.
    plain_sync = (sync_stream.__next__, sync_stream.__iter__)
    plain_async = (async_stream.__anext__, async_stream.__aiter__)

    def stream_source(stream: Any, kind: str) -> Any:
        cls = type(stream)
        if kind == "sync":
            plain = (cls.__next__, cls.__iter__) == plain_sync
        else:
            plain = (cls.__anext__, cls.__aiter__) == plain_async
        return getattr(stream, "_iterator", None) if plain else None

    legacy = _find("openai._legacy_response", "LegacyAPIResponse")
    api_response = _find("openai._response", "APIResponse")
    async_api_response = _find("openai._response", "AsyncAPIResponse")
    raw = RawResponses(legacy, api_response, async_api_response, (sync_stream, async_stream))

    def keep_chat(result: Any, record: CallRecord, finish: Finish) -> Any:
        kept = raw.keep(result, record, finish)
        if kept is not result:
            return kept
        try:
            return compact_chat_completion(result)
        except Exception:
            log_internal_error("keeping a chat completion")
            return result  # kept as it is: the reader reads the SDK object later

    def both(operation: str, reader: Any, usage_of: Any, tap: Any = None) -> tuple[_Factory, _Factory]:
        chat = operation == "chat"
        kind = CallKind(
            "openai",
            operation,
            reader,
            _client_of,
            stream_kind,
            snapshot_kwargs,
            keep_chat if chat else raw.keep,
            quick_usage(usage_of),
            compact_chat_chunk if chat else None,
            tap,
            stream_source,
        )
        return sync_wrapper(kind), async_wrapper(kind)

    # Streams keep their events from the SDK's private decoder where it is known; else (None) the
    # proxy keeps the chunks.
    chat_tap = sse_decoder_tap(_STREAMING, settle_chat_events)
    completion_tap = sse_decoder_tap(_STREAMING, settle_completion_events)
    chat_sync, chat_async = both("chat", read_chat, _usage, chat_tap)
    completion_sync, completion_async = both("completion", read_completion, _usage, completion_tap)
    responses_sync, responses_async = both("responses", read_responses, response_usage)
    embeddings_sync, embeddings_async = both("embeddings", read_embeddings, _usage)

    targets: list[Target] = []
    for module in ("openai.resources.chat.completions", "openai.resources.beta.chat.completions"):
        beta = "beta" in module
        sync_owner, async_owner = _find(module, "Completions"), _find(module, "AsyncCompletions")
        if not beta:  # the beta resource (openai < 1.92) streams through chat.completions.create
            targets += _method(sync_owner, "create", chat_sync) + _method(async_owner, "create", chat_async)
        targets += _method(sync_owner, "parse", chat_sync) + _method(async_owner, "parse", chat_async)
    targets += _method(_find("openai.resources.completions", "Completions"), "create", completion_sync)
    targets += _method(_find("openai.resources.completions", "AsyncCompletions"), "create", completion_async)
    responses = _find("openai.resources.responses", "Responses")
    async_responses = _find("openai.resources.responses", "AsyncResponses")
    for attribute in ("create", "parse"):  # responses.stream() goes through create
        targets += _method(responses, attribute, responses_sync)
        targets += _method(async_responses, attribute, responses_async)
    targets += _method(_find("openai.resources.embeddings", "Embeddings"), "create", embeddings_sync)
    targets += _method(_find("openai.resources.embeddings", "AsyncEmbeddings"), "create", embeddings_async)

    for module, sync_name, async_name in (
        ("openai.lib.streaming.chat", "ChatCompletionStream", "AsyncChatCompletionStream"),
        ("openai.lib.streaming.responses", "ResponseStream", "AsyncResponseStream"),
    ):
        targets += _method(_find(module, sync_name), "close", helper_close_wrapper)
        targets += _method(_find(module, async_name), "close", helper_async_close_wrapper)
    return targets


OPENAI_PATCHES = PatchSet("openai", _targets)
