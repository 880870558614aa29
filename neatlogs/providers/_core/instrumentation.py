"""What every provider and the tracker share: settings, sinks, a recorder and a history."""

from __future__ import annotations

import dataclasses
import importlib
import threading
from typing import Any, NamedTuple

from neatlogs._config import check_bool, check_optional_limit, check_positive_int, check_tags, check_trace_id
from neatlogs._context import CURRENT_SCOPE
from neatlogs._log import log_internal_error, logger
from neatlogs.dispatch import Recorder, submit
from neatlogs.providers._core.patchset import PatchSet
from neatlogs.providers._core.streams import finalise
from neatlogs.record.call import CallRecord, Reader
from neatlogs.record.capture import (
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_MAX_STRING_LENGTH,
    METADATA,
    OPTION_NAMES,
    CaptureSettings,
    Redactor,
)
from neatlogs.record.span import CURRENT_SPAN
from neatlogs.sinks.base import CallSink, Sink, UserSink, check_sinks
from neatlogs.sinks.history import DEFAULT_HISTORY_SIZE, History
from neatlogs.sinks.views import ContentView
from neatlogs.spans import routes as span_routes

_no_endpoint_logged = threading.Event()


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(capture options, exporter options); an unknown name is a TypeError listing every valid one."""
    from neatlogs.sinks.exporter.settings import ExporterSettings

    exporter_names = [field.name for field in dataclasses.fields(ExporterSettings)]
    unknown = sorted(set(options) - set(OPTION_NAMES) - set(exporter_names))
    if unknown:
        valid = ", ".join(
            [
                *exporter_names,
                *OPTION_NAMES,
                "history_size",
                "otel",
                "tracer_provider",
                "meter_provider",
                "sinks",
            ]
        )
        raise TypeError(f"unknown setting(s) {', '.join(unknown)}; valid names are {valid}")
    capture = {name: value for name, value in options.items() if name in OPTION_NAMES}
    exporter = {name: value for name, value in options.items() if name not in OPTION_NAMES}
    return capture, exporter


class SinkSet:
    """The sinks a traced call goes to (history, exporter, OpenTelemetry), built from the settings.

    `exporter_options` may also hold the capture options (`capture_content`, `redact`, `mask_secrets`,
    `mask_pii`, `max_string_length`, `max_record_bytes`, `sample_rate`; see `_capture.CaptureSettings`).
    """

    def __init__(
        self,
        api_key: str | None,
        endpoint: str | None,
        history_size: int,
        otel: bool,
        tracer_provider: Any,
        meter_provider: Any,
        exporter_options: dict[str, Any],
        sinks: Any = None,
    ) -> None:
        check_positive_int(history_size, "history_size")
        user_sinks = check_sinks(sinks)
        check_bool(otel, "otel")
        from neatlogs.sinks.exporter.settings import ExporterSettings

        capture_options, exporter_options = _split_options(exporter_options)
        self.capture = CaptureSettings.resolve(**capture_options)
        self.settings = ExporterSettings.resolve(endpoint=endpoint, api_key=api_key, **exporter_options)
        self.history = History(history_size, self.capture)
        self.sinks: list[CallSink] = []
        if self.settings.endpoint:
            from neatlogs.sinks.exporter import exporter_sink

            sink = exporter_sink(self.settings)
            # The exporter's queue is shared per endpoint; the view is chosen per provider, here.
            self.sinks.append(ContentView(sink, METADATA) if self.capture.exporter == METADATA else sink)
        elif not _no_endpoint_logged.is_set():
            _no_endpoint_logged.set()
            logger.info(
                "neatlogs: no endpoint configured (endpoint= or NEATLOGS_ENDPOINT); records stay in this "
                "process (conversation history%s)",
                " and OpenTelemetry" if otel else "",
            )
        metadata_only = self.capture.exporter == METADATA  # what leaves the process, as the exporter
        self.sinks.extend(UserSink(sink, metadata_only) for sink in user_sinks)
        if otel:
            from neatlogs.sinks.otel.sink import OTelSink

            self.sinks.append(
                OTelSink(
                    tracer_provider=tracer_provider,
                    meter_provider=meter_provider,
                    capture_content=self.capture.otel_capture_content(),
                )
            )


class FailedCall(NamedTuple):
    """What a provider knows of a failed call from its kwargs alone (`Instrumentation.handle_error`)."""

    operation: str
    reader: Reader
    request: dict[str, Any]


class Instrumentation:
    """Base of the public providers: one SDK's patches, this object's recorder and history."""

    _patches: PatchSet
    _sdk_name: str

    def __init__(
        self,
        trace_id: str | None = None,
        client: Any = None,
        api_key: str | None = None,
        tags: list[Any] | tuple[Any, ...] | None = None,
        endpoint: str | None = None,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        otel: bool = True,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        capture_content: str | dict[str, str] | bool | None = None,
        redact: Redactor | None = None,
        mask_secrets: bool = True,
        mask_pii: bool = False,
        max_string_length: int | None = DEFAULT_MAX_STRING_LENGTH,
        max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES,
        sample_rate: float | None = None,
        sinks: list[Sink] | None = None,
        **exporter_options: Any,
    ) -> None:
        trace_id = check_trace_id(trace_id)
        tag_tuple = check_tags(tags)
        self._check_client(client)
        options = {
            "capture_content": capture_content,
            "redact": redact,
            "mask_secrets": mask_secrets,
            "mask_pii": mask_pii,
            "max_string_length": max_string_length,
            "max_record_bytes": max_record_bytes,
            "sample_rate": sample_rate,
            **exporter_options,
        }
        sink_set = SinkSet(
            api_key, endpoint, history_size, otel, tracer_provider, meter_provider, options, sinks
        )
        self._history = sink_set.history
        recorded: list[CallSink] = [sink_set.history, *sink_set.sinks]
        self._recorder = Recorder(trace_id, tag_tuple, recorded, client, sink_set.capture)
        # Spans made while this provider traces go to its sinks too, whichever client it filters on.
        self._span_recorder: Recorder | None = Recorder(trace_id, tag_tuple, recorded, None, sink_set.capture)

    @classmethod
    def _attached(cls, trace_id: str, tags: tuple[str, ...], history: History, sinks: list[CallSink]) -> Any:
        """A provider made by a tracker: its own history, then the tracker's history and sinks.

        The tracker's capture settings travel with its history.
        """
        self = cls.__new__(cls)
        self._history = History(history.capacity, history.capture)
        self._recorder = Recorder(trace_id, tags, [self._history, history, *sinks], capture=history.capture)
        self._span_recorder = None  # the tracker routes spans to its own history and sinks, once
        return self

    def _check_client(self, client: Any) -> None:
        return None

    @property
    def trace_id(self) -> str:
        """The trace id stamped on every record of this provider."""
        return self._recorder.trace_id

    @property
    def tags(self) -> list[str]:
        """The tags stamped on every record of this provider."""
        return list(self._recorder.tags)

    def override(self) -> None:
        """Start tracing the SDK (idempotent); raises ImportError, saying what to install, without it."""
        try:
            importlib.import_module(self._sdk_name)
        except ImportError as exc:
            raise ImportError(
                f"{type(self).__name__}.override() needs the {self._sdk_name} package: "
                f"pip install {self._sdk_name}"
            ) from exc
        self._patches = self._select_patches()
        self._patches.subscribe(self._recorder)
        if self._span_recorder is not None:
            span_routes.add(self._span_recorder)

    def _select_patches(self) -> PatchSet:
        """The patch set that fits the installed SDK version."""
        return self._patches

    def _describe_failure(self, kwargs: dict[str, Any]) -> FailedCall:
        """What is known of a failed call known only by its kwargs."""
        raise NotImplementedError

    def handle_error(self, e: BaseException, kwargs: dict[str, Any] | None = None) -> None:
        """Record a failed call made with `kwargs`; never raises."""
        try:
            operation, reader, request = self._describe_failure(dict(kwargs or {}))
            record = CallRecord(self._sdk_name, operation, reader, request, bool(request.get("stream")))
            record.scope = CURRENT_SCOPE.get()
            record.parent = CURRENT_SPAN.get()
            record.client = self._recorder.client  # a provider's own failure: whichever client it traces
            record.route = (self._recorder,)
            finalise(record, submit, "error", e)
        except Exception:
            log_internal_error(f"{type(self).__name__}.handle_error")

    def undo_override(self) -> None:
        """Stop tracing; once no provider traces the SDK, its original functions are restored."""
        self._patches.unsubscribe(self._recorder)
        if self._span_recorder is not None:
            span_routes.remove(self._span_recorder)

    def get_conversation_history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Copies of this provider's records, oldest first; `limit` keeps the most recent N."""
        return self._history.snapshot(check_optional_limit(limit))
