"""Reading a Responses API call (`responses.create`, `.parse`, `.stream()`), streamed or not."""

from __future__ import annotations

from typing import Any

from neatlogs.providers._stainless.fields import call_fields, get, payload, request_fields, usage_reader
from neatlogs.record.call import CallRecord

# Stream events that carry the finished response.
_TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _finish_reason(response: Any, has_tool_calls: bool) -> str | None:
    status = get(response, "status")
    if status == "completed":
        return "tool_calls" if has_tool_calls else "stop"
    if status == "incomplete":
        reason = get(get(response, "incomplete_details"), "reason")
        return _INCOMPLETE_REASONS.get(reason, reason) if isinstance(reason, str) else "length"
    if status == "failed":
        return "error"
    return status if isinstance(status, str) else None


def _tool_call(item: Any) -> dict[str, Any] | None:
    kind = get(item, "type")
    if kind == "function_call":
        function = {"name": get(item, "name"), "arguments": get(item, "arguments")}
        return {"id": get(item, "call_id"), "type": "function", "function": function}
    if kind == "custom_tool_call":
        custom = {"name": get(item, "name"), "input": get(item, "input")}
        return {"id": get(item, "call_id"), "type": "custom", "custom": custom}
    return None


def _completion(texts: list[str], refusals: list[str], calls: list[dict[str, Any]], finish: Any) -> Any:
    completion: dict[str, Any] = {
        "index": 0,
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "finish_reason": finish,
    }
    if calls:
        completion["tool_calls"] = calls
    if refusals:
        completion["refusal"] = "".join(refusals)
    return completion


# A Responses API usage object in the record's usage shape.
response_usage = usage_reader(
    "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"
)


def _from_response(response: Any) -> dict[str, Any]:
    texts: list[str] = []
    refusals: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in get(response, "output") or ():
        if get(item, "type") == "message":
            for part in get(item, "content") or ():
                kind = get(part, "type")
                if kind == "output_text":
                    texts.append(get(part, "text") or "")
                elif kind == "refusal":
                    refusals.append(get(part, "refusal") or "")
            continue
        call = _tool_call(item)
        if call is not None:
            calls.append(call)
    completion = _completion(texts, refusals, calls, _finish_reason(response, bool(calls)))
    fields: dict[str, Any] = {
        "completion": completion,
        "choices": [completion],
        "finish_reason": completion["finish_reason"],
        "usage": response_usage(get(response, "usage")),
        "response_model": get(response, "model"),
        "response_id": get(response, "id"),
    }
    status = get(response, "status")
    if status == "failed":
        error = get(response, "error")
        fields["status"] = "error"
        fields["error"] = {
            "type": "response.failed",
            "message": get(error, "message") or "The response failed.",
            "code": get(error, "code"),
        }
    elif status in ("completed", "incomplete"):
        fields["status"] = "success"  # the whole answer arrived, however the stream was closed after it
    return fields


def _from_events(events: list[Any]) -> dict[str, Any]:
    """The record of a stream: its final response if it came, else what the deltas gave."""
    started: Any = None
    texts: list[str] = []
    items: dict[int, Any] = {}  # output index -> the item as announced or, once done, as finished
    arguments: dict[int, list[str]] = {}
    failure: Any = None
    for event in events:
        kind = get(event, "type")
        if kind in _TERMINAL_EVENTS:
            return _from_response(get(event, "response"))
        if kind == "response.output_text.delta":
            texts.append(get(event, "delta") or "")
        elif kind == "response.function_call_arguments.delta":
            arguments.setdefault(get(event, "output_index") or 0, []).append(get(event, "delta") or "")
        elif kind in ("response.output_item.added", "response.output_item.done"):
            items[get(event, "output_index") or 0] = get(event, "item")
        elif kind == "response.created":
            started = get(event, "response")
        elif kind == "error":
            failure = event
    calls = []
    for index in sorted(items):
        call = _tool_call(items[index])
        if call is None:
            continue
        function = call.get("function")
        if function is not None and not function["arguments"] and index in arguments:
            function["arguments"] = "".join(arguments[index])
        calls.append(call)
    completion = _completion(texts, [], calls, None)
    fields: dict[str, Any] = {
        "completion": completion,
        "choices": [completion],
        "finish_reason": None,
        "usage": None,
        "response_model": get(started, "model"),
        "response_id": get(started, "id"),
    }
    if failure is not None:
        fields["status"] = "error"
        fields["error"] = {
            "type": "error",
            "message": get(failure, "message") or "The stream reported an error.",
            "code": get(failure, "code"),
        }
    return fields


def read_responses(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a Responses API call (streamed or not)."""
    fields = request_fields(record)
    fields["prompt"] = fields["request"].get("input")
    body, headers = payload(record)
    events = record.stream_chunks()
    if events:
        fields.update(_from_events(events))
    elif body is not None and get(body, "output") is not None:
        fields.update(_from_response(body))
    if record.error is not None:
        fields.pop("status", None)  # an exception outranks what the events said
        fields.pop("error", None)
    fields.update(call_fields(record, body, headers))
    return fields
