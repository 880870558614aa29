"""LiteLLM: `litellm.completion` / `litellm.acompletion`, streamed or not.

Responses and chunks are OpenAI-shaped (`ModelResponse`, `ModelResponseStream`), so the OpenAI
chat reader reads them; LiteLLM adds the provider it resolved and its own cost estimate in
`_hidden_params`. A streamed call returns a `CustomStreamWrapper`, both a sync and an async iterator.
When LiteLLM calls the OpenAI SDK underneath, that inner call is not recorded again.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from neatlogs.providers._core.calls import CallKind, async_wrapper, sync_wrapper
from neatlogs.providers._core.iterators import DualIteratorStream, IteratorKind
from neatlogs.providers._core.patchset import PatchSet, Target
from neatlogs.providers._core.streams import Finish
from neatlogs.providers.openai.patch import read_chat, snapshot_kwargs
from neatlogs.record.call import CallRecord
from neatlogs.record.traits import well_known_provider

# Connection settings, never request data; the API base is kept apart for the server fields.
_TRANSPORT_KWARGS = frozenset({"api_base", "base_url", "headers", "extra_headers", "client"})
_API_BASE = "api_base"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def snapshot_litellm_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's kwargs without transport settings (the API base kept for the reader). LiteLLM takes
    every provider's credentials as kwargs (api_key, aws_secret_access_key, vertex_credentials, ...):
    the reader leaves them out by the rule every provider's request follows (`_credentials`)."""
    request = {key: value for key, value in snapshot_kwargs(kwargs).items() if key not in _TRANSPORT_KWARGS}
    base = kwargs.get("api_base") or kwargs.get("base_url")
    if isinstance(base, str):
        request[_API_BASE] = base
    return request


def _no_client(instance: Any) -> Any:
    return None  # module functions: no client object to filter on


# ---- reading a call (runs off the hot path) ----


def _server_fields(base: Any) -> dict[str, Any]:
    from urllib.parse import urlsplit

    if not isinstance(base, str) or not base:
        return {}
    try:
        url = urlsplit(base)
        port = url.port
    except ValueError:
        return {}
    if not url.hostname:
        return {}
    return {"server_address": url.hostname, "server_port": port or _DEFAULT_PORTS.get(url.scheme)}


def _hidden(record: CallRecord) -> Mapping[str, Any]:
    response = record.response
    if isinstance(response, dict):  # a stream's record: what the stream wrapper said at the call
        hidden = response.get("hidden")
    else:
        hidden = getattr(response, "_hidden_params", None)
    return hidden if isinstance(hidden, Mapping) else {}


def _request_id(hidden: Mapping[str, Any]) -> str | None:
    headers = hidden.get("additional_headers")
    if not isinstance(headers, Mapping):
        return None
    for name in ("llm_provider-x-request-id", "x-request-id", "llm_provider-request-id"):
        value = headers.get(name)
        if isinstance(value, str):
            return value
    return None


def _stream_cost(chunks: list[Any]) -> Any:
    for chunk in reversed(chunks):
        cost = getattr(getattr(chunk, "usage", None), "cost", None)
        if cost is not None:
            return cost
    return None


def read_litellm_chat(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a `litellm.completion/acompletion` call, with LiteLLM's provider and cost."""
    chunks = record.stream_chunks()
    fields = read_chat(record)
    hidden = _hidden(record)
    request = fields.get("request")
    base = request.pop(_API_BASE, None) if isinstance(request, dict) else None
    fields.update(_server_fields(hidden.get("api_base") or base))
    provider = hidden.get("custom_llm_provider")
    if provider is None and isinstance(record.response, dict):
        provider = record.response.get("custom_llm_provider")
    if provider is None and record.error is not None:
        provider = getattr(record.error, "llm_provider", None)
    if isinstance(provider, str) and provider:
        fields["custom_llm_provider"] = provider
        # OpenTelemetry's gen_ai.provider.name is the vendor LiteLLM routed to, not LiteLLM itself.
        fields["provider_name"] = well_known_provider(provider)
    request_id = _request_id(hidden)
    if request_id is not None:
        fields["request_id"] = request_id
    # A stream wrapper's own response_cost stays 0.0; the cost comes with the last chunk's usage.
    cost = _stream_cost(chunks) if record.stream else hidden.get("response_cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        fields["litellm_cost_usd"] = float(cost)
    return fields


# ---- what to patch ----


def _positional_parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return ()
    names = []
    for parameter in parameters:
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break
        names.append(parameter.name)
    return tuple(names)


def _targets() -> list[Target]:
    # Imported by name: type checkers need not analyse all of LiteLLM.
    litellm: Any = importlib.import_module("litellm")
    stream_type: Any = getattr(litellm, "CustomStreamWrapper", None)
    if stream_type is None:
        stream_type = importlib.import_module(
            "litellm.litellm_core_utils.streaming_handler"
        ).CustomStreamWrapper

    def wrap_stream(result: Any, record: CallRecord, finish: Finish) -> Any:
        if not isinstance(result, stream_type):
            return None
        # References only: the provider LiteLLM resolved and its hidden params (API base, headers).
        record.response = {
            "custom_llm_provider": getattr(result, "custom_llm_provider", None),
            "hidden": getattr(result, "_hidden_params", None),
        }
        return DualIteratorStream(result, record, finish)

    def kind(function: Callable[..., Any]) -> IteratorKind:
        call = CallKind(
            "litellm", "chat", read_litellm_chat, _no_client, lambda result: None, snapshot_litellm_kwargs
        )
        return IteratorKind(call, wrap_stream, _positional_parameters(function))

    return [
        (litellm, "completion", sync_wrapper(kind(litellm.completion))),
        (litellm, "acompletion", async_wrapper(kind(litellm.acompletion))),
    ]


LITELLM_PATCHES = PatchSet("litellm", _targets)
