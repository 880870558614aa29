"""`LLMTracker`: find the installed LLM SDKs and trace them all, including ones imported later."""

from __future__ import annotations

import importlib
import sys
import threading
import weakref
from typing import Any

import wrapt

from neatlogs._config import check_optional_limit, check_tags, check_trace_id
from neatlogs._log import log_internal_error
from neatlogs.dispatch import Recorder
from neatlogs.providers import PROVIDERS
from neatlogs.providers._core.instrumentation import Instrumentation, SinkSet
from neatlogs.sinks.base import Sink
from neatlogs.sinks.history import DEFAULT_HISTORY_SIZE
from neatlogs.spans import routes as span_routes

__all__ = ["LLMTracker"]


class LLMTracker:
    """Traces every supported LLM SDK in the process with one `override_api()` call."""

    def __init__(
        self,
        api_key: str | None = None,
        endpoint: str | None = None,
        tags: list[Any] | tuple[Any, ...] | None = None,
        trace_id: str | None = None,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        otel: bool = True,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        sinks: list[Sink] | None = None,
        **exporter_options: Any,
    ) -> None:
        self._trace_id = check_trace_id(trace_id)
        self._tags = check_tags(tags)
        sink_set = SinkSet(
            api_key, endpoint, history_size, otel, tracer_provider, meter_provider, exporter_options, sinks
        )
        self._history = sink_set.history
        self._sinks = sink_set.sinks
        # The tracker's spans go to its history and sinks (its providers' own histories hold calls).
        self._span_recorder = Recorder(
            self._trace_id, self._tags, [sink_set.history, *sink_set.sinks], capture=sink_set.capture
        )
        self._providers: dict[str, Instrumentation] = {}
        self._hooked: set[str] = set()
        self._active = False
        self._lock = threading.RLock()

    @property
    def trace_id(self) -> str:
        """The trace id stamped on every record."""
        return self._trace_id

    @property
    def tags(self) -> list[str]:
        """The tags stamped on every record."""
        return list(self._tags)

    def add_tags(self, tags: list[Any] | tuple[Any, ...]) -> None:
        """Add tags to every record from now on (duplicates are ignored)."""
        added = check_tags(tags)
        with self._lock:
            self._tags = check_tags([*self._tags, *added])
            for provider in self._providers.values():
                provider._recorder.tags = self._tags
            self._span_recorder.tags = self._tags

    def override_api(self) -> None:
        """Trace every supported SDK that is installed, now or when it is first imported (idempotent)."""
        with self._lock:
            if self._active:
                return
            self._active = True
            span_routes.add(self._span_recorder)
            for module_name in PROVIDERS:
                if module_name not in self._hooked:
                    self._hooked.add(module_name)
                    # Fires at once when the SDK is already imported, else right after its import.
                    wrapt.register_post_import_hook(_import_hook(self, module_name), module_name)
                elif module_name in sys.modules:
                    self._attach(module_name)

    def stop_instrumenting(self) -> None:
        """Stop tracing; the SDKs' original functions are restored once nothing else traces them."""
        with self._lock:
            self._active = False
            span_routes.remove(self._span_recorder)
            for provider in self._providers.values():
                provider.undo_override()
            self._providers.clear()

    def get_conversation_history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Copies of the records of every SDK this tracker traced, oldest first."""
        return self._history.snapshot(check_optional_limit(limit))

    def _attach(self, module_name: str) -> None:
        with self._lock:
            if not self._active or module_name in self._providers:
                return
            module_path, class_name = PROVIDERS[module_name].split(":")
            provider_class = getattr(importlib.import_module(module_path), class_name)
            provider = provider_class._attached(self._trace_id, self._tags, self._history, self._sinks)
            provider.override()
            self._providers[module_name] = provider


def _import_hook(tracker: LLMTracker, module_name: str) -> Any:
    # A weak reference: a registered import hook must not keep a discarded tracker alive.
    ref = weakref.ref(tracker)

    def hook(module: Any) -> None:
        live = ref()
        if live is None:
            return
        try:
            live._attach(module_name)
        except Exception:
            # An import hook that raises would break the application's own `import openai`.
            log_internal_error(f"instrumenting {module_name} on import")

    return hook
