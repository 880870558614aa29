"""OpenTelemetry GenAI semantic conventions: attribute names and record-dict -> attribute conversion.

Pure functions over the contract's record dict; nothing here imports OpenTelemetry or a provider SDK.
Names follow the GenAI conventions (Development status) of open-telemetry/semantic-conventions-genai,
as shipped in opentelemetry-semantic-conventions 0.66b (`gen_ai_attributes`, `gen_ai_metrics`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from neatlogs.record.traits import traits_of, well_known_provider

# ---- attribute names ----
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # deprecated predecessor of gen_ai.provider.name, still read by older backends
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_TOP_K = "gen_ai.request.top_k"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
REQUEST_SEED = "gen_ai.request.seed"
REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"
OUTPUT_TYPE = "gen_ai.output.type"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
# The released conventions' name (their main branch renames it gen_ai.usage.cache_write.input_tokens).
USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

NEATLOGS_RECORD_ID = "neatlogs.record_id"
NEATLOGS_TRACE_ID = "neatlogs.trace_id"
NEATLOGS_TAGS = "neatlogs.tags"
NEATLOGS_COST_USD = "neatlogs.cost_usd"
NEATLOGS_TTFT_MS = "neatlogs.ttft_ms"
NEATLOGS_STATUS = "neatlogs.status"
NEATLOGS_REQUEST_ID = "neatlogs.request_id"

# ---- metrics ----
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
# The ExplicitBucketBoundaries the conventions ask for.
DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BUCKETS: tuple[float, ...] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip

# neatlogs operation -> gen_ai.operation.name. The Responses API is a chat operation in the conventions
# (told apart by openai.api.type).
OPERATION_NAMES = {
    "chat": "chat",
    "completion": "text_completion",
    "embeddings": "embeddings",
    "responses": "chat",
}
_JSON_OUTPUT_FORMATS = frozenset({"json_object", "json_schema"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _put(attributes: dict[str, Any], key: str, value: Any) -> None:
    # OpenTelemetry rejects None attribute values (and logs a warning each time), so they are left out.
    if value is not None and value != "" and value != []:
        attributes[key] = value


def operation_name(record: Mapping[str, Any]) -> str:
    """gen_ai.operation.name for a record's operation."""
    operation = str(record.get("operation") or "")
    return OPERATION_NAMES.get(operation, operation)


def provider_name(record: Mapping[str, Any]) -> str:
    """gen_ai.provider.name: the well-known value for the record's provider (Azure told by its host)."""
    named = record.get("provider_name")  # set by the reader when it knows the vendor (LiteLLM's route)
    if isinstance(named, str) and named:
        return named
    provider = str(record.get("provider") or "")
    namer = traits_of(provider).otel_provider_name
    named = namer(record) if namer is not None else None
    return named or well_known_provider(provider)


def span_name(record: Mapping[str, Any]) -> str:
    """`{gen_ai.operation.name} {gen_ai.request.model}`, or the operation alone without a model."""
    model = record.get("model")
    operation = operation_name(record)
    return f"{operation} {model}" if isinstance(model, str) and model else operation


def error_type(record: Mapping[str, Any]) -> str | None:
    """error.type for a failed call (the exception class name); None unless the call failed."""
    if record.get("status") != "error":
        return None
    error = record.get("error")
    kind = error.get("type") if isinstance(error, Mapping) else None
    return str(kind) if kind else "_OTHER"


def sampling_attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes the conventions want at span creation time, so samplers can see them."""
    attributes: dict[str, Any] = {}
    provider = provider_name(record)
    _put(attributes, OPERATION_NAME, operation_name(record))
    _put(attributes, PROVIDER_NAME, provider)
    _put(attributes, SYSTEM, provider)
    model = record.get("model")
    _put(attributes, REQUEST_MODEL, model if isinstance(model, str) else None)
    address = record.get("server_address")
    if isinstance(address, str) and address:
        attributes[SERVER_ADDRESS] = address
        _put(attributes, SERVER_PORT, _integer(record.get("server_port")))
    return attributes


def _stop_sequences(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _output_type(request: Mapping[str, Any]) -> str | None:
    response_format = request.get("response_format")
    if response_format is None:  # the Responses API puts it under text.format
        text = request.get("text")
        response_format = text.get("format") if isinstance(text, Mapping) else None
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind in _JSON_OUTPUT_FORMATS:
        return "json"
    return "text" if kind == "text" else None


def _request_attributes(record: Mapping[str, Any], attributes: dict[str, Any]) -> None:
    request = record.get("request")
    if not isinstance(request, Mapping):
        return
    _put(attributes, REQUEST_TEMPERATURE, _number(request.get("temperature")))
    _put(attributes, REQUEST_TOP_P, _number(request.get("top_p")))
    _put(attributes, REQUEST_TOP_K, _number(request.get("top_k")))
    _put(attributes, REQUEST_FREQUENCY_PENALTY, _number(request.get("frequency_penalty")))
    _put(attributes, REQUEST_PRESENCE_PENALTY, _number(request.get("presence_penalty")))
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        limit = _integer(request.get(key))
        if limit is not None:
            attributes[REQUEST_MAX_TOKENS] = limit
            break
    _put(attributes, REQUEST_STOP_SEQUENCES, _stop_sequences(request.get("stop")))
    _put(attributes, REQUEST_SEED, _integer(request.get("seed")))
    count = _integer(request.get("n"))
    if count is not None and count != 1:
        attributes[REQUEST_CHOICE_COUNT] = count
    _put(attributes, OUTPUT_TYPE, _output_type(request))
    if record.get("operation") == "embeddings":
        encoding = request.get("encoding_format")
        _put(attributes, REQUEST_ENCODING_FORMATS, [encoding] if isinstance(encoding, str) else None)
        _put(attributes, EMBEDDINGS_DIMENSION_COUNT, _integer(request.get("dimensions")))


def finish_reasons(record: Mapping[str, Any]) -> list[str]:
    """Every choice's finish reason, in choice order (legacy completions give only the first one's)."""
    reasons = [
        str(choice["finish_reason"])
        for choice in record.get("choices") or ()
        if isinstance(choice, Mapping) and choice.get("finish_reason")
    ]
    first = record.get("finish_reason")
    if not reasons and first:
        reasons = [str(first)]
    return reasons


def usage_tokens(record: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(input tokens, output tokens) as the API reported them; None where it did not."""
    usage = record.get("usage")
    if not isinstance(usage, Mapping):
        return None, None
    prompt = _integer(usage.get("prompt_tokens"))
    completion = _integer(usage.get("completion_tokens"))
    return (
        prompt if prompt is not None else _integer(usage.get("input_tokens")),
        completion if completion is not None else _integer(usage.get("output_tokens")),
    )


def _response_attributes(record: Mapping[str, Any], attributes: dict[str, Any]) -> None:
    _put(attributes, RESPONSE_ID, record.get("response_id"))
    _put(attributes, RESPONSE_MODEL, record.get("response_model"))
    _put(attributes, RESPONSE_FINISH_REASONS, finish_reasons(record))
    input_tokens, output_tokens = usage_tokens(record)
    _put(attributes, USAGE_INPUT_TOKENS, input_tokens)
    _put(attributes, USAGE_OUTPUT_TOKENS, output_tokens)
    usage = record.get("usage")
    if isinstance(usage, Mapping):
        cache_read = _integer(usage.get("cached_tokens"))
        if cache_read is None:  # Anthropic's cache reads and writes
            cache_read = _integer(usage.get("cache_read_tokens"))
        _put(attributes, USAGE_CACHE_READ_INPUT_TOKENS, cache_read)
        _put(attributes, USAGE_CACHE_CREATION_INPUT_TOKENS, _integer(usage.get("cache_write_tokens")))
        _put(attributes, USAGE_REASONING_OUTPUT_TOKENS, _integer(usage.get("reasoning_tokens")))
    ttft_ms = _number(record.get("ttft_ms"))
    if ttft_ms is not None:
        attributes[RESPONSE_TIME_TO_FIRST_CHUNK] = ttft_ms / 1000.0
        attributes[NEATLOGS_TTFT_MS] = ttft_ms


def span_attributes(record: Mapping[str, Any], capture_content: bool) -> dict[str, Any]:
    """Every span attribute for a record (the sampling ones included); content only if asked."""
    attributes = sampling_attributes(record)
    vendor_attributes = traits_of(str(record.get("provider") or "")).otel_attributes
    if vendor_attributes is not None:
        attributes.update(vendor_attributes(record))
    if record.get("stream"):
        attributes[REQUEST_STREAM] = True
    _request_attributes(record, attributes)
    _response_attributes(record, attributes)
    _put(attributes, ERROR_TYPE, error_type(record))
    _put(attributes, NEATLOGS_RECORD_ID, record.get("id"))
    _put(attributes, NEATLOGS_TRACE_ID, record.get("trace_id"))
    tags = record.get("tags")
    if isinstance(tags, list) and tags:
        attributes[NEATLOGS_TAGS] = [str(tag) for tag in tags]
    _put(attributes, NEATLOGS_COST_USD, _number(record.get("cost_usd")))
    _put(attributes, NEATLOGS_STATUS, record.get("status"))
    _put(attributes, NEATLOGS_REQUEST_ID, record.get("request_id"))
    if capture_content:
        attributes.update(content_attributes(record))
    return attributes


def metric_attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes of the gen_ai.client.* metrics: low-cardinality fields only."""
    attributes = sampling_attributes(record)
    attributes.pop(SYSTEM, None)
    _put(attributes, RESPONSE_MODEL, record.get("response_model"))
    _put(attributes, ERROR_TYPE, error_type(record))
    return attributes


# ---- message content in the conventions' JSON format (gen-ai-input/output-messages.json) ----


def _arguments(raw: Any) -> Any:
    # The conventions want tool-call arguments as an object where the model produced valid JSON.
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _data_url_part(url: str, modality: str) -> dict[str, Any]:
    header, _, payload = url.partition(",")
    mime = header[len("data:") :].split(";", 1)[0] or None
    return {"type": "blob", "modality": modality, "mime_type": mime, "content": payload}


def _content_part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "content": part}
    if not isinstance(part, Mapping):
        return None
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
        return {"type": "text", "content": part["text"]}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "text", "content": part["refusal"]}
    if kind in ("image_url", "input_image"):
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        if isinstance(url, str):
            if url.startswith("data:"):
                return _data_url_part(url, "image")
            return {"type": "uri", "modality": "image", "uri": url}
    if kind == "input_audio" and isinstance(part.get("input_audio"), Mapping):
        audio = part["input_audio"]
        mime = f"audio/{audio['format']}" if isinstance(audio.get("format"), str) else None
        return {"type": "blob", "modality": "audio", "mime_type": mime, "content": audio.get("data")}
    # Anthropic's content blocks
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": part.get("id"),
            "name": part.get("name") or "",
            "arguments": part.get("input"),
        }
    if kind == "tool_result":
        return {"type": "tool_call_response", "id": part.get("tool_use_id"), "response": part.get("content")}
    if kind == "thinking" and isinstance(part.get("thinking"), str):
        return {"type": "reasoning", "content": part["thinking"]}
    if kind == "image" and isinstance(part.get("source"), Mapping):
        source = part["source"]
        if source.get("type") == "base64":
            return {
                "type": "blob",
                "modality": "image",
                "mime_type": source.get("media_type"),
                "content": source.get("data"),
            }
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return {"type": "uri", "modality": "image", "uri": source["url"]}
    if kind in ("file", "input_file"):
        file = part.get("file") if isinstance(part.get("file"), Mapping) else part
        if isinstance(file, Mapping) and isinstance(file.get("file_id"), str):
            return {"type": "file", "modality": "document", "file_id": file["file_id"]}
    return {**part, "type": str(kind or "unknown")}  # a GenericPart keeps what it had


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, (str, Mapping)):
        content = [content]
    if not isinstance(content, Sequence):
        return [{"type": "text", "content": str(content)}]
    return [part for part in (_content_part(item) for item in content) if part is not None]


def _tool_call_parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for call in message.get("tool_calls") or ():
        if not isinstance(call, Mapping):
            continue
        raw_function = call.get("function")
        function: Mapping[str, Any] = raw_function if isinstance(raw_function, Mapping) else {}
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name") or "",
                "arguments": _arguments(function.get("arguments")),
            }
        )
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        parts.append(
            {
                "type": "tool_call",
                "id": None,
                "name": legacy.get("name") or "",
                "arguments": _arguments(legacy.get("arguments")),
            }
        )
    return parts


def _chat_message(message: Any) -> dict[str, Any] | None:
    if not isinstance(message, Mapping):
        return None
    item_type = message.get("type")
    # Responses API input items that are not messages.
    if item_type == "function_call":
        part = {
            "type": "tool_call",
            "id": message.get("call_id"),
            "name": message.get("name") or "",
            "arguments": _arguments(message.get("arguments")),
        }
        return {"role": "assistant", "parts": [part]}
    if item_type == "function_call_output":
        part = {"type": "tool_call_response", "id": message.get("call_id"), "response": message.get("output")}
        return {"role": "tool", "parts": [part]}
    role = str(message.get("role") or "user")
    if role in ("tool", "function"):
        part = {
            "type": "tool_call_response",
            "id": message.get("tool_call_id"),
            "response": message.get("content"),
        }
        result: dict[str, Any] = {"role": "tool", "parts": [part]}
    else:
        if role == "developer":  # the newer name of the system role
            role = "system"
        parts = _content_parts(message.get("content"))
        if isinstance(message.get("thinking"), str):  # a completion's merged thinking (Anthropic)
            parts.insert(0, {"type": "reasoning", "content": message["thinking"]})
        if isinstance(message.get("refusal"), str):
            parts.append({"type": "text", "content": message["refusal"]})
        result = {"role": role, "parts": parts + _tool_call_parts(message)}
    if isinstance(message.get("name"), str):
        result["name"] = message["name"]
    return result


def input_messages(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The prompt in the conventions' input-messages format."""
    prompt = record.get("prompt")
    if prompt is None:
        return []
    if isinstance(prompt, str):
        return [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    if not isinstance(prompt, list):
        return []
    if record.get("operation") == "completion":  # a batch of legacy prompts (text or token ids)
        texts = [item if isinstance(item, str) else json.dumps(item) for item in prompt]
        return [{"role": "user", "parts": [{"type": "text", "content": text}]} for text in texts]
    return [message for message in (_chat_message(item) for item in prompt) if message is not None]


def _missing_finish_reason(record: Mapping[str, Any]) -> str:
    # The output schema requires a finish reason; say why there is none rather than invent "stop".
    status = record.get("status")
    return "error" if status == "error" else "incomplete" if status == "incomplete" else "unknown"


def output_messages(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every choice in the conventions' output-messages format."""
    fallback = _missing_finish_reason(record)
    messages: list[dict[str, Any]] = []
    for index, choice in enumerate(record.get("choices") or ()):
        if isinstance(choice, Mapping):
            message = _chat_message({**choice, "role": choice.get("role") or "assistant"})
            if message is None:
                continue
            message["finish_reason"] = str(choice.get("finish_reason") or fallback)
        else:
            first = record.get("finish_reason") if index == 0 else None
            message = {
                "role": "assistant",
                "parts": _content_parts(choice),
                "finish_reason": str(first or fallback),
            }
        messages.append(message)
    return messages


def _tool_definitions(request: Mapping[str, Any]) -> list[Any]:
    definitions = []
    for tool in request.get("tools") or ():
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function")
        # Chat Completions nests the function; the Responses API flattens it.
        definitions.append({"type": tool.get("type") or "function", **(function or tool)})
    return definitions


def content_attributes(record: Mapping[str, Any]) -> dict[str, str]:
    """gen_ai.input.messages / output.messages / system_instructions / tool.definitions as JSON strings."""
    if record.get("operation") == "embeddings":
        return {}
    attributes: dict[str, str] = {}
    raw_request = record.get("request")
    request: Mapping[str, Any] = raw_request if isinstance(raw_request, Mapping) else {}
    inputs = input_messages(record)
    if inputs:
        attributes[INPUT_MESSAGES] = _dumps(inputs)
    outputs = output_messages(record)
    if outputs:
        attributes[OUTPUT_MESSAGES] = _dumps(outputs)
    instructions = request.get("instructions")
    if isinstance(instructions, str) and instructions:
        attributes[SYSTEM_INSTRUCTIONS] = _dumps([{"type": "text", "content": instructions}])
    tools = _tool_definitions(request)
    if tools:
        attributes[TOOL_DEFINITIONS] = _dumps(tools)
    return attributes


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
