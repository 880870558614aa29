"""The anthropic SDK: which methods to wrap, and how `messages.stream()` is traced.

`create`, `parse` and `count_tokens` of `messages` and `beta.messages` (sync and async) go through the
generic call wrappers; their streams (`stream=True`) through the generic stream proxies, with the SSE
tap keeping their events. `messages.stream()` sends its request only when its manager is entered, with
a request function of the SDK's own that the manager holds: the traced `stream()` hands that function
to the generic wrappers, so the raw stream the SDK's `MessageStream` reads is a traced one. The
`MessageStream` itself is the SDK's, untouched (`isinstance` holds, every helper works); it closes and
reads its raw stream, which finalises the record once, on whichever exit path.

Every client of the SDK built on these resource classes is traced: `Anthropic`, `AsyncAnthropic`,
`AnthropicBedrock`, `AnthropicVertex` and the SDK's other platform clients.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Generator
from typing import Any

from neatlogs._log import log_internal_error, logger
from neatlogs.providers._core.calls import CallKind, async_wrapper, sync_wrapper
from neatlogs.providers._core.patchset import PatchSet, Target, find_attribute
from neatlogs.providers._stainless.events import event_tap
from neatlogs.providers._stainless.raw import RawResponses
from neatlogs.providers.anthropic.readers import (
    compact_event,
    compact_message,
    quick_usage,
    read_count_tokens,
    read_messages,
    settle_events,
    snapshot_kwargs,
    stream_request,
)

_Factory = Callable[[PatchSet], Callable[..., Any]]
_MESSAGE_MODULES = (
    "anthropic.resources.messages.messages",
    "anthropic.resources.beta.messages.messages",
    # Bedrock's and Vertex AI's beta resources copy the first-party methods into classes of their own.
    "anthropic.lib.bedrock._beta_messages",
    "anthropic.lib.vertex._beta_messages",
)


def _find(module: str, name: str) -> Any:
    return find_attribute("anthropic", module, name)


def _method(owner: Any, attribute: str, factory: _Factory) -> list[Target]:
    if owner is None or not callable(getattr(owner, attribute, None)):
        if owner is not None and not owner.__module__.startswith("anthropic.lib."):
            logger.debug("neatlogs: anthropic %s has no %s(); not traced", owner.__name__, attribute)
        return []
    return [(owner, attribute, factory)]


def _client_of(instance: Any) -> Any:
    return getattr(instance, "_client", None)


def _request_slot(manager: Any) -> str | None:
    """The attribute where a stream manager keeps its request (`__api_request`, name-mangled per class)."""
    own = vars(manager)
    for cls in type(manager).__mro__:
        name = f"_{cls.__name__.lstrip('_')}__api_request"
        if name in own:
            return name
    return None


class _TracedRequest:
    """An awaitable that starts the async stream manager's request, traced, only when awaited (an
    unentered manager then leaves nothing more un-awaited than the SDK's own)."""

    __slots__ = ("_run",)

    def __init__(self, run: Callable[[], Any]) -> None:
        self._run = run

    def __await__(self) -> Generator[Any, None, Any]:
        awaited: Generator[Any, None, Any] = self._run().__await__()
        return awaited


def _stream_helper(kind: CallKind, asynchronous: bool) -> _Factory:
    """A wrapper factory for `messages.stream()`: the manager it returns sends a traced request."""

    def factory(patch: PatchSet) -> Callable[..., Any]:
        traced_call = (async_wrapper if asynchronous else sync_wrapper)(kind)(patch)

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            manager = wrapped(*args, **kwargs)
            if not patch.recorders:
                return manager
            try:
                slot = _request_slot(manager)
                if slot is None:
                    logger.debug("neatlogs: this anthropic stream manager keeps no request; not traced")
                    return manager
                original = getattr(manager, slot)
                request = stream_request(kwargs)

                if asynchronous:

                    def send(**_: Any) -> Any:
                        return original  # the SDK's coroutine, awaited by the generic wrapper

                    def run() -> Any:
                        return traced_call(send, instance, (), request)

                    setattr(manager, slot, _TracedRequest(run))
                else:

                    def call(**_: Any) -> Any:
                        return original()

                    setattr(manager, slot, lambda: traced_call(call, instance, (), request))
            except Exception:
                log_internal_error("tracing an anthropic messages.stream()")
            return manager

        return wrapper

    return factory


def _targets() -> list[Target]:
    import anthropic

    sync_stream, async_stream = anthropic.Stream, anthropic.AsyncStream

    def stream_kind(result: Any) -> str | None:
        if isinstance(result, sync_stream):
            return "sync"
        if isinstance(result, async_stream):
            return "async"
        return None

    raw = RawResponses(
        _find("anthropic._legacy_response", "LegacyAPIResponse")
        if _has("anthropic._legacy_response")
        else None,
        _find("anthropic._response", "APIResponse"),
        _find("anthropic._response", "AsyncAPIResponse"),
        (sync_stream, async_stream),
    )
    decoder = _find("anthropic._streaming", "SSEDecoder")
    tap = event_tap(settle_events, decoder) if decoder is not None else None

    def keep_message(result: Any, record: Any, finish: Any) -> Any:
        kept = raw.keep(result, record, finish)
        if kept is not result:
            return kept
        try:
            return compact_message(result)
        except Exception:
            log_internal_error("keeping an anthropic message")
            return result  # kept as it is: the reader reads the SDK object later

    def kind(operation: str, reader: Any, streams: bool) -> CallKind:
        return CallKind(
            "anthropic",
            operation,
            reader,
            _client_of,
            stream_kind,
            snapshot_kwargs,
            keep_message if streams else raw.keep,
            quick_usage if streams else None,
            compact_event if streams else None,
            tap if streams else None,
            None,  # the SDK's Stream reports each event to its own tracing: read through it
        )

    chat = kind("chat", read_messages, True)
    count = kind("count_tokens", read_count_tokens, False)
    targets: list[Target] = []
    for module in _MESSAGE_MODULES:
        sync_owner, async_owner = _find(module, "Messages"), _find(module, "AsyncMessages")
        for attribute in ("create", "parse"):
            targets += _method(sync_owner, attribute, sync_wrapper(chat))
            targets += _method(async_owner, attribute, async_wrapper(chat))
        targets += _method(sync_owner, "count_tokens", sync_wrapper(count))
        targets += _method(async_owner, "count_tokens", async_wrapper(count))
        targets += _method(sync_owner, "stream", _stream_helper(chat, asynchronous=False))
        targets += _method(async_owner, "stream", _stream_helper(chat, asynchronous=True))
    return targets


def _has(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


ANTHROPIC_PATCHES = PatchSet("anthropic", _targets)
