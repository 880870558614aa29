"""What every OpenAI reader shares: the request, the server and vendor behind `base_url`, the HTTP
headers (request id, rate limits), and attribute access that works on SDK objects and decoded JSON.

Everything here runs off the caller's thread, when a record is converted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from neatlogs.providers._stainless.ratelimit import rate_limit_from_headers
from neatlogs.providers._stainless.raw import RawResult
from neatlogs.record.call import CallRecord, Quick, QuickRead
from neatlogs.record.credentials import without_credentials
from neatlogs.record.jsonsafe import to_jsonable

_DEFAULT_PORTS = {"https": 443, "http": 80}
# Hosts of vendors that serve the OpenAI API -> the OpenTelemetry `gen_ai.provider.name` value.
_VENDOR_HOSTS = (
    ("api.openai.com", "openai"),
    ("openai.azure.com", "azure.ai.openai"),
    ("cognitiveservices.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.openai"),
    ("openrouter.ai", "openrouter"),
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
)
_DEPLOYMENT_IN_PATH = re.compile(r"/deployments/([^/]+)")


# type -> whether it is a Mapping: an ABC isinstance check costs more than the read it guards.
_IS_MAPPING: dict[type, bool] = {dict: True, type(None): False}


def get(value: Any, name: str) -> Any:
    """`value.name` for SDK objects, `value[name]` for decoded JSON; None when absent."""
    kind = type(value)
    mapping = _IS_MAPPING.get(kind)
    if mapping is None:
        mapping = isinstance(value, Mapping)
        if len(_IS_MAPPING) < 1024:
            _IS_MAPPING[kind] = mapping
    return value.get(name) if mapping else getattr(value, name, None)


# ---- the request and the server ----


def _request_value(key: str, value: Any) -> Any:
    # `parse()` takes pydantic classes; record what goes on the wire, not "<ModelMetaclass>".
    if isinstance(value, type):
        name = value.__name__
        return {"type": "json_schema", "json_schema": {"name": name}} if key == "response_format" else name
    return value


def _is_azure(client: Any) -> bool:
    return any(cls.__name__ == "BaseAzureClient" for cls in type(client).__mro__)


def _vendor(client: Any, host: str) -> str | None:
    if _is_azure(client):
        return "azure.ai.openai"
    for domain, name in _VENDOR_HOSTS:
        if host == domain or host.endswith("." + domain):
            return name
    return None


def server_fields(client: Any, model: Any) -> dict[str, Any]:
    """`server_address`/`server_port` of `client.base_url`, the vendor, and Azure's deployment."""
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None)
    if not host:
        return {}
    port = getattr(url, "port", None) or _DEFAULT_PORTS.get(str(getattr(url, "scheme", "")))
    fields: dict[str, Any] = {
        "server_address": str(host),
        "server_port": port,
        "provider_name": _vendor(client, str(host)),
    }
    if _is_azure(client):
        # The deployment serves the call: configured on the client, in base_url, or else named by `model`.
        found = _DEPLOYMENT_IN_PATH.search(str(getattr(url, "path", "")))
        deployment = getattr(client, "_azure_deployment", None) or (found.group(1) if found else None)
        fields["azure_deployment"] = deployment or (model if isinstance(model, str) else None)
        version = getattr(client, "_api_version", None)
        fields["azure_api_version"] = version if isinstance(version, str) else None
    return fields


def request_fields(record: CallRecord) -> dict[str, Any]:
    """`request` (JSON-safe, no credentials: see `_credentials`), `model`, and the server fields."""
    raw = {k: _request_value(k, v) for k, v in record.request.items()}
    request = without_credentials(to_jsonable(raw))
    fields: dict[str, Any] = {"request": request, "model": request.get("model")}
    fields.update(server_fields(record.client, fields["model"]))
    return fields


# ---- usage ----


def usage_reader(
    prompt: str, completion: str, prompt_details: str, completion_details: str
) -> Callable[[Any], dict[str, Any] | None]:
    """A reader of one API's usage (an SDK object or JSON) into the record's usage shape.

    It reads that shape too (cached and reasoning tokens at the top level of a dict): a usage read
    already, as a `CompactChat` keeps it, reads the same again.
    """

    def read(usage: Any) -> dict[str, Any] | None:
        if usage is None:
            return None
        result: dict[str, Any] = {
            "prompt_tokens": get(usage, prompt),
            "completion_tokens": get(usage, completion),
            "total_tokens": get(usage, "total_tokens"),
        }
        for key, details in (("cached_tokens", prompt_details), ("reasoning_tokens", completion_details)):
            value = get(get(usage, details), key)
            if value is None and type(usage) is dict:
                value = usage.get(key)
            if value is not None:
                result[key] = value
        return result

    return read


# ---- the response: its body and its headers ----


class JSONObject(dict):  # type: ignore[type-arg]
    """A decoded JSON object whose keys also read as attributes, like the SDK's objects: readers that
    use `getattr` read a raw response's body the same way."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _decoded(http: Any) -> Any:
    try:
        content = http.content  # raises, without reading, when nobody has read the body
    except Exception:
        return None
    try:
        return json.loads(content, object_hook=JSONObject)
    except ValueError:
        return None


def payload(record: CallRecord) -> tuple[Any, Any]:
    """(the response body: an SDK object or decoded JSON, or None; the HTTP headers, or None)."""
    kept = record.response
    if isinstance(kept, RawResult):
        if kept.parsed is not None:
            return kept.parsed, kept.headers
        return (_decoded(kept.http) if kept.http is not None else None), kept.headers
    if record.stream:
        return None, kept  # a stream keeps only its headers
    return kept, None


def _error_headers(record: CallRecord) -> Any:
    return getattr(getattr(record.error, "response", None), "headers", None)


def _header(headers: Any, name: str) -> Any:
    getter = getattr(headers, "get", None)
    return getter(name) if callable(getter) else None


def call_fields(record: CallRecord, body: Any, headers: Any) -> dict[str, Any]:
    """`request_id` and `rate_limit`, from the body, the headers, or a failed call's error response."""
    if headers is None:
        headers = _error_headers(record)
    request_id = getattr(body, "_request_id", None) if body is not None else None
    if not isinstance(request_id, str):
        request_id = _header(headers, "x-request-id")
    if not isinstance(request_id, str):
        request_id = getattr(record.error, "request_id", None)
    return {
        "request_id": request_id if isinstance(request_id, str) else None,
        "rate_limit": rate_limit_from_headers(headers),
    }


def quick_usage(usage_of: Callable[[Any], dict[str, Any] | None]) -> Quick:
    """A `Quick` reader for OpenAI-shaped answers: usage and model from the response, or a stream's
    chunks (events carry them in `.response`), without converting anything else."""

    def quick(response: Any, chunks: list[Any], stream: bool) -> QuickRead | None:
        if stream:
            # Usage comes with the last chunk (include_usage) or the final event; the model with the
            # first. Only those two are read: a missing attribute on a pydantic model is slow.
            if not chunks:
                return None, None
            last, first = chunks[-1], chunks[0]
            if type(first) is tuple:  # compact chat chunks: (model, id, fingerprint, usage, choices)
                return usage_of(last[3] if type(last) is tuple else None), first[0]
            usage = getattr(last, "usage", None) or getattr(getattr(last, "response", None), "usage", None)
            model = getattr(first, "model", None) or getattr(getattr(first, "response", None), "model", None)
        elif response is None or hasattr(response, "usage"):
            usage, model = getattr(response, "usage", None), getattr(response, "model", None)
        else:
            return None  # a raw response: only the full reader knows how to read it
        return usage_of(usage), model if isinstance(model, str) else None

    return quick
