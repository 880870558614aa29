"""A record's prompt and completion as a conversation: messages, tool calls and their results.

Records come from several APIs (chat messages, a legacy prompt string, Responses API input items,
Anthropic content blocks); this turns each into the same few shapes the record page draws.
Nothing is shortened here: long content is collapsed by the page, never cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from neatlogs.collector.viewer.format import pretty_json

_TEXT_PARTS = ("text", "input_text", "output_text")


@dataclass
class ToolCall:
    """A function the model asked for, with its arguments and, when found, its result."""

    id: str
    name: str
    arguments: str
    result: str | None = None


@dataclass
class Message:
    """One bubble of the conversation."""

    role: str
    text: str | None = None
    name: str | None = None
    # Content parts that are not text (images, files, audio, unknown blocks), as pretty JSON.
    extras: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    # For a tool result that matches no call shown here: the call id it answers.
    answers: str | None = None
    thinking: str | None = None
    finish_reason: str | None = None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _tool_call(raw: Any) -> ToolCall:
    if not isinstance(raw, dict):
        return ToolCall(id="", name="?", arguments=pretty_json(raw))
    if raw.get("type") == "tool_use":  # Anthropic content block
        return ToolCall(str(raw.get("id") or ""), str(raw.get("name") or "?"), pretty_json(raw.get("input")))
    function: dict[str, Any] = raw["function"] if isinstance(raw.get("function"), dict) else raw
    call_id = raw.get("id") or raw.get("call_id") or ""
    return ToolCall(str(call_id), str(function.get("name") or "?"), pretty_json(function.get("arguments")))


def _content(message: Message, content: Any, results: dict[str, str]) -> None:
    """Fill a message's text, extras and tool calls from any content shape."""
    if content is None:
        return
    if isinstance(content, str):
        message.text = content
        return
    if not isinstance(content, list):
        message.extras.append(pretty_json(content))
        return
    texts: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if isinstance(part, str):
            texts.append(part)
        elif kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "tool_use":
            message.tool_calls.append(_tool_call(part))
        elif kind == "tool_result" and part.get("tool_use_id") in results:
            continue  # shown under the call it answers
        elif kind == "thinking" and isinstance(part.get("thinking"), str):
            message.thinking = part["thinking"]
        else:
            message.extras.append(pretty_json(part))
    if texts:
        message.text = "\n\n".join(texts)


def _results(items: list[Any]) -> dict[str, str]:
    """Every tool result in the prompt, by the id of the call it answers."""
    found: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("role") == "tool" and item.get("tool_call_id"):
            found[str(item["tool_call_id"])] = pretty_json(_flat(item.get("content")))
        elif item.get("type") == "function_call_output" and item.get("call_id"):
            found[str(item["call_id"])] = pretty_json(item.get("output"))
        elif isinstance(item.get("content"), list):
            for part in item["content"]:
                if isinstance(part, dict) and part.get("type") == "tool_result" and part.get("tool_use_id"):
                    found[str(part["tool_use_id"])] = pretty_json(_flat(part.get("content")))
    return found


def _flat(content: Any) -> Any:
    # Tool results given as text parts read best as their text.
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") in _TEXT_PARTS for p in content
    ):
        return "\n".join(str(p.get("text", "")) for p in content)
    return content


def _message(item: Any, results: dict[str, str], called: set[str]) -> Message | None:
    if not isinstance(item, dict):
        return Message(role="input", text=item if isinstance(item, str) else pretty_json(item))
    kind = item.get("type")
    if kind == "function_call":
        call = _tool_call(item)
        return Message(role="assistant", tool_calls=[call])
    if kind == "function_call_output" or (item.get("role") == "tool" and item.get("tool_call_id")):
        call_id = str(item.get("call_id") or item.get("tool_call_id"))
        if call_id in called:
            return None  # shown under its call
        text = item.get("output") if kind == "function_call_output" else _flat(item.get("content"))
        return Message(role="tool", text=pretty_json(text), answers=call_id, name=item.get("name"))
    role = item.get("role")
    if not isinstance(role, str):
        return Message(role=str(kind or "item"), extras=[pretty_json(item)])
    message = Message(role=role, name=item.get("name") if isinstance(item.get("name"), str) else None)
    _content(message, item.get("content"), results)
    for raw in _list(item.get("tool_calls")):
        message.tool_calls.append(_tool_call(raw))
    if isinstance(item.get("function_call"), dict):  # the older functions API
        message.tool_calls.append(_tool_call(item["function_call"]))
    if isinstance(item.get("thinking"), str):
        message.thinking = item["thinking"]
    content = item.get("content")
    only_results = (
        isinstance(content, list)
        and bool(content)
        and all(isinstance(p, dict) and p.get("type") == "tool_result" for p in content)
    )
    if only_results and message.text is None and not (message.extras or message.tool_calls):
        return None  # an Anthropic user turn holding only results, all shown under their calls
    return message


def _call_ids(items: list[Any]) -> set[str]:
    ids: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call" and item.get("call_id"):
            ids.add(str(item["call_id"]))
        for raw in _list(item.get("tool_calls")):
            if isinstance(raw, dict) and raw.get("id"):
                ids.add(str(raw["id"]))
        for part in _list(item.get("content")):
            if isinstance(part, dict) and part.get("type") == "tool_use" and part.get("id"):
                ids.add(str(part["id"]))
    return ids


def conversation(record: dict[str, Any]) -> list[Message]:
    """The prompt side: system instructions, then every message or input item in order."""
    prompt = record.get("prompt")
    request = record.get("request") if isinstance(record.get("request"), dict) else {}
    messages: list[Message] = []
    instructions = request.get("instructions") if request else None
    if isinstance(instructions, str) and instructions:
        messages.append(Message(role="system", text=instructions))
    if isinstance(prompt, str):  # a legacy completion's prompt, or a Responses API input string
        messages.append(
            Message(role="user" if record.get("operation") == "responses" else "prompt", text=prompt)
        )
        return messages
    if prompt is None:
        return messages
    if not isinstance(prompt, list):
        return [*messages, Message(role="input", text=pretty_json(prompt))]
    results = _results(prompt)
    called = _call_ids(prompt) & results.keys()
    for item in prompt:
        message = _message(item, results, called)
        if message is None:
            continue
        for call in message.tool_calls:
            call.result = results.get(call.id)
        messages.append(message)
    return messages


def answers(record: dict[str, Any]) -> list[Message]:
    """The completion side: every choice, in index order (one for most calls)."""
    choices = record.get("choices")
    if not isinstance(choices, list) or not choices:
        completion = record.get("completion")
        choices = [] if completion is None else [completion]
    out: list[Message] = []
    for choice in choices:
        if isinstance(choice, str):
            out.append(Message(role="assistant", text=choice))
            continue
        if not isinstance(choice, dict):
            out.append(Message(role="assistant", text=pretty_json(choice)))
            continue
        message = _message({**choice, "role": choice.get("role") or "assistant"}, {}, set())
        if message is None:
            continue
        reason = choice.get("finish_reason")
        message.finish_reason = reason if isinstance(reason, str) else None
        out.append(message)
    return out
