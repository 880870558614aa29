"""openai < 1.0 (0.28.x): the module-level `openai.ChatCompletion` / `openai.Completion` API.

Responses and chunks are `OpenAIObject`s (dicts with attribute access), so the 1.x readers read
them as they are; streams are generators and async generators. Errors are `openai.error.*`,
which carry `http_status` and the response headers instead of 1.x's `status_code`.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from neatlogs.providers._core.calls import CallKind, async_wrapper, sync_wrapper
from neatlogs.providers._core.iterators import AsyncIteratorStream, IteratorKind, IteratorStream
from neatlogs.providers._core.patchset import PatchSet, Target
from neatlogs.providers._core.streams import Finish
from neatlogs.providers.openai.patch import OPENAI_PATCHES, read_chat, read_completion, snapshot_kwargs
from neatlogs.record.call import CallRecord, error_info

# Per-call connection settings 0.28 takes as kwargs: credentials and transport, never request data.
_TRANSPORT_KWARGS = frozenset(
    {
        "api_key",
        "api_base",
        "api_type",
        "api_version",
        "organization",
        "headers",
        "request_id",
        "request_timeout",
    }
)
# Where the record keeps the API base the call went to (the reader turns it into server fields).
_API_BASE = "api_base"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def is_openai_v0() -> bool:
    """True when the installed openai is a 0.x release (the module-level API, no `openai.OpenAI`)."""
    import openai

    version = str(getattr(openai, "__version__", "") or "")
    return version.startswith("0.") or not hasattr(openai, "OpenAI")


def select_openai_patches() -> PatchSet:
    """The OpenAI patch set that fits the installed openai: 0.x's module-level API, or 1.x and later."""
    return OPENAI_V0_PATCHES if is_openai_v0() else OPENAI_PATCHES


def snapshot_for(openai: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The kwargs snapshot for 0.x: transport settings left out, the API base as it is at the call."""

    def snapshot(kwargs: dict[str, Any]) -> dict[str, Any]:
        request = {k: v for k, v in snapshot_kwargs(kwargs).items() if k not in _TRANSPORT_KWARGS}
        base = kwargs.get("api_base")
        # The module-wide setting as it is at the call, not when the record is read.
        request[_API_BASE] = base if base is not None else getattr(openai, "api_base", None)
        return request

    return snapshot


def _no_client(instance: Any) -> Any:
    return None  # 0.x has no client objects: every provider without a client filter records the call


def _server_fields(base: Any) -> dict[str, Any]:
    if not isinstance(base, str) or not base:
        return {}
    url = urlsplit(base)
    if not url.hostname:
        return {}
    return {"server_address": url.hostname, "server_port": url.port or _DEFAULT_PORTS.get(url.scheme)}


def _error_fields(exc: BaseException) -> dict[str, Any]:
    info = error_info(exc)
    status = getattr(exc, "http_status", None)
    if "status_code" not in info and isinstance(status, int):
        info["status_code"] = status
    if "request_id" not in info:
        # 0.x reads a `request-id` header; the API (and the fake) send `x-request-id`.
        getter = getattr(getattr(exc, "headers", None), "get", None)
        request_id = getter("x-request-id") if callable(getter) else None
        if isinstance(request_id, str):
            info["request_id"] = request_id
    return info


def _v0_fields(record: CallRecord, fields: dict[str, Any]) -> dict[str, Any]:
    request = fields.get("request")
    if isinstance(request, dict):
        fields.update(_server_fields(request.pop(_API_BASE, None)))
        if not fields.get("model"):
            # Azure deployments are named by `engine` / `deployment_id` instead of `model`.
            fields["model"] = request.get("engine") or request.get("deployment_id")
    if record.error is not None:
        fields["error"] = _error_fields(record.error)
    return fields


def read_chat_v0(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a 0.x `ChatCompletion.create/acreate` call (streamed or not)."""
    return _v0_fields(record, read_chat(record))


def read_completion_v0(record: CallRecord) -> dict[str, Any]:
    """Contract fields of a 0.x `Completion.create/acreate` call (streamed or not)."""
    return _v0_fields(record, read_completion(record))


def _wrap_stream(result: Any, record: CallRecord, finish: Finish) -> Any:
    if isinstance(result, types.GeneratorType):
        return IteratorStream(result, record, finish)
    if isinstance(result, types.AsyncGeneratorType):
        return AsyncIteratorStream(result, record, finish)
    return None


def _targets() -> list[Target]:
    # Typed as Any: the openai that type checkers see is 1.x or later, which has none of these.
    openai: Any = importlib.import_module("openai")
    snapshot = snapshot_for(openai)

    def kind(operation: str, reader: Any) -> IteratorKind:
        call = CallKind("openai", operation, reader, _no_client, lambda result: None, snapshot)
        return IteratorKind(call, _wrap_stream)

    chat, completion = kind("chat", read_chat_v0), kind("completion", read_completion_v0)
    return [
        (openai.ChatCompletion, "create", sync_wrapper(chat)),
        (openai.ChatCompletion, "acreate", async_wrapper(chat)),
        (openai.Completion, "create", sync_wrapper(completion)),
        (openai.Completion, "acreate", async_wrapper(completion)),
    ]


OPENAI_V0_PATCHES = PatchSet("openai-v0", _targets)
