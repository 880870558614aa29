"""What the record and the sinks need to know about OpenAI calls (registered as `ProviderTraits`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neatlogs.providers._stainless.ratelimit import read_rate_limit
from neatlogs.record.traits import ProviderTraits

# OpenTelemetry attributes the conventions define for OpenAI only.
_API_TYPE = "openai.api.type"
_REQUEST_SERVICE_TIER = "openai.request.service_tier"
_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"
# The Responses API is a chat operation in the conventions, told apart by openai.api.type.
_API_TYPES = {"chat": "chat_completions", "responses": "responses"}


def _otel_attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    api_type = _API_TYPES.get(str(record.get("operation")))
    if api_type:
        attributes[_API_TYPE] = api_type
    request = record.get("request")
    tier = request.get("service_tier") if isinstance(request, Mapping) else None
    if isinstance(tier, str) and tier != "auto":
        attributes[_REQUEST_SERVICE_TIER] = tier
    fingerprint = record.get("system_fingerprint")
    if isinstance(fingerprint, str):
        attributes[_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    return attributes


def _otel_provider_name(record: Mapping[str, Any]) -> str | None:
    address = record.get("server_address")
    return "azure.ai.openai" if isinstance(address, str) and address.endswith(".openai.azure.com") else None


_CLIENT_CLASSES = ("Completions", "AsyncCompletions")
OPENAI_TRAITS = ProviderTraits(
    rate_limit=read_rate_limit,
    otel_attributes=_otel_attributes,
    otel_provider_name=_otel_provider_name,
    sdk_methods={
        "chat": ("openai.resources.chat.completions", _CLIENT_CLASSES, "create"),
        "completion": ("openai.resources.completions", _CLIENT_CLASSES, "create"),
        "embeddings": ("openai.resources.embeddings", ("Embeddings", "AsyncEmbeddings"), "create"),
        "responses": ("openai.resources.responses", ("Responses", "AsyncResponses"), "create"),
    },
    # opentelemetry-instrumentation-openai-v2 (`...openai_v2`) and OpenLLMetry (`...openai`)
    foreign_instrumentations=("opentelemetry.instrumentation.openai",),
)
