"""Reading an embeddings call. The vectors are never stored: only how many inputs, and their size."""

from __future__ import annotations

from typing import Any

from neatlogs.providers._stainless.fields import call_fields, get, payload, request_fields
from neatlogs.record.call import CallRecord


def _input_count(inputs: Any) -> int | None:
    if isinstance(inputs, str):
        return 1
    if isinstance(inputs, list):
        # A flat list of token ids is one input; a list of strings or of token lists is a batch.
        return 1 if inputs and all(isinstance(item, int) for item in inputs) else len(inputs)
    return None


def _dimensions(vector: Any) -> int | None:
    if isinstance(vector, list):
        return len(vector)
    if isinstance(vector, str):  # base64 of little-endian float32s
        size = len(vector) * 3 // 4 - len(vector) + len(vector.rstrip("="))
        return size // 4
    return None


def read_embeddings(record: CallRecord) -> dict[str, Any]:
    """Contract fields of an embeddings call, plus `input_count` and `dimensions`."""
    fields = request_fields(record)
    inputs = fields["request"].get("input")
    fields["prompt"] = inputs
    fields["input_count"] = _input_count(inputs)
    dimensions = fields["request"].get("dimensions")
    body, headers = payload(record)
    usage = None
    if body is not None:
        fields["response_model"] = get(body, "model")
        data = get(body, "data")
        if dimensions is None and isinstance(data, list) and data:
            dimensions = _dimensions(get(data[0], "embedding"))
        raw_usage = get(body, "usage")
        if raw_usage is not None:
            usage = {
                "prompt_tokens": get(raw_usage, "prompt_tokens"),
                "total_tokens": get(raw_usage, "total_tokens"),
            }
    fields["dimensions"] = dimensions if isinstance(dimensions, int) else None
    fields["usage"] = usage
    fields.update(call_fields(record, body, headers))
    return fields
