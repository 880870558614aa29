"""What content leaves a record, per sink: settings, the metadata view, and the redaction pipeline.

A record has two views, each built once, off the caller's thread:

- full: every field, with the built-in masks applied, base64 blobs omitted, long strings cut, then the
  user's `redact` function, then the record size limit;
- metadata: the same without any prompt or completion text (see `strip_content`).

Each sink gets the view its setting names (`CaptureSettings.history` / `.exporter` / `.otel`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from neatlogs._config import check_bool
from neatlogs._log import logger
from neatlogs.record.redact import (
    mask_secrets,
    may_hold_secret,
    repair_redacted,
    required_before_redact,
    text_masker,
)
from neatlogs.record.sanitize import (
    MAX_BYTES_PER_CHAR,
    Cleaner,
    EncodedRecord,
    cut_strings,
    json_size,
    json_size_at_most,
    json_text,
    plain_copy,
)
from neatlogs.record.schema import METADATA_KEYS

FULL = "full"
METADATA = "metadata"
MODES = (FULL, METADATA)
SINK_NAMES = ("history", "exporter", "otel")
CAPTURE_ENV = "NEATLOGS_CAPTURE_CONTENT"
SAMPLE_RATE_ENV = "NEATLOGS_SAMPLE_RATE"
DEFAULT_MAX_STRING_LENGTH = 100_000
DEFAULT_MAX_RECORD_BYTES = 1_000_000
_MIN_STRING_LENGTH = 16
_MIN_RECORD_BYTES = 1024
# The options of this module, as the public constructors take them.
OPTION_NAMES = (
    "capture_content",
    "redact",
    "mask_secrets",
    "mask_pii",
    "max_string_length",
    "max_record_bytes",
    "sample_rate",
)

# Takes a record dict and returns it (or a new dict); returning None means "changed in place".
Redactor = Callable[[dict[str, Any]], "dict[str, Any] | None"]

_MODES_TEXT = '"full" or "metadata"'
_CAPTURE_HELP = (
    f'capture_content must be {_MODES_TEXT}, or per sink a dict such as {{"exporter": "metadata"}} '
    f"(keys: {', '.join(SINK_NAMES)}; values: {_MODES_TEXT})"
)

# ---- settings ----


@dataclasses.dataclass(frozen=True)
class CaptureSettings:
    """Content capture, redaction, size limits and sampling of one provider or tracker."""

    history: str = FULL
    exporter: str = FULL
    otel: str | None = None  # None: the OpenTelemetry sink's own switch (off unless its env var says on)
    redact: Redactor | None = None
    mask_secrets: bool = True
    mask_pii: bool = False
    max_string_length: int | None = DEFAULT_MAX_STRING_LENGTH
    max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES
    sample_rate: float = 1.0
    masker: Callable[[str], str] | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "masker", text_masker(self.mask_secrets, self.mask_pii))

    @classmethod
    def resolve(
        cls,
        capture_content: Any = None,
        redact: Any = None,
        mask_secrets: Any = True,
        mask_pii: Any = False,
        max_string_length: Any = DEFAULT_MAX_STRING_LENGTH,
        max_record_bytes: Any = DEFAULT_MAX_RECORD_BYTES,
        sample_rate: Any = None,
    ) -> CaptureSettings:
        """Check every option (TypeError/ValueError naming it); None capture/sample rate reads the env."""
        if capture_content is not None:
            modes = _parse_capture(capture_content, "capture_content")
        else:
            raw = os.environ.get(CAPTURE_ENV, "").strip()
            modes = _parse_capture(raw, CAPTURE_ENV) if raw else {}
        if sample_rate is None:
            raw = os.environ.get(SAMPLE_RATE_ENV, "").strip()
            sample_rate = _parse_rate_env(raw) if raw else 1.0
            rate = _check_rate(sample_rate, f"{SAMPLE_RATE_ENV}={raw!r}: sample_rate")
        else:
            rate = _check_rate(sample_rate, "sample_rate")
        if redact is not None and not callable(redact):
            raise TypeError(
                "redact must be a function that takes the record dict and returns it (or None after "
                f"changing it in place), or None for no redaction; got {type(redact).__name__}: {redact!r}"
            )
        return cls(
            history=modes.get("history", FULL),
            exporter=modes.get("exporter", FULL),
            otel=modes.get("otel"),
            redact=redact,
            mask_secrets=check_bool(mask_secrets, "mask_secrets"),
            mask_pii=check_bool(mask_pii, "mask_pii"),
            max_string_length=_check_limit(
                max_string_length, "max_string_length", _MIN_STRING_LENGTH, "characters"
            ),
            max_record_bytes=_check_limit(max_record_bytes, "max_record_bytes", _MIN_RECORD_BYTES, "bytes"),
            sample_rate=rate,
        )

    def otel_capture_content(self) -> bool | None:
        """The OTelSink `capture_content` flag these settings ask for (None: the sink's own default)."""
        return None if self.otel is None else self.otel == FULL


DEFAULT_SETTINGS = CaptureSettings()


def _parse_mode(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return FULL if value else METADATA
    if isinstance(value, str) and value.strip().lower() in MODES:
        return value.strip().lower()
    raise ValueError(f"{where}: {_CAPTURE_HELP}; got {value!r}")


def _parse_capture(value: Any, where: str) -> dict[str, str]:
    """capture_content -> {sink: mode}. A single mode: "metadata" is every sink; "full" leaves OTel alone."""
    if isinstance(value, str) and "=" in value:  # the env form: "exporter=metadata,otel=full"
        pairs: dict[str, Any] = {}
        for part in value.split(","):
            name, _, mode = part.partition("=")
            pairs[name.strip().lower()] = mode.strip()
        value = pairs
    if isinstance(value, Mapping):
        modes: dict[str, str] = {}
        for sink, mode in value.items():
            if sink not in SINK_NAMES:
                raise ValueError(f"{where}: unknown sink {sink!r}; {_CAPTURE_HELP}")
            modes[sink] = _parse_mode(mode, f"{where}[{sink!r}]")
        return modes
    if isinstance(value, (str, bool)):
        mode = _parse_mode(value, where)
        if mode == METADATA:
            return dict.fromkeys(SINK_NAMES, METADATA)
        return {"history": FULL, "exporter": FULL}
    raise TypeError(f"{where}: {_CAPTURE_HELP}; got {type(value).__name__}: {value!r}")


def _parse_rate_env(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{SAMPLE_RATE_ENV}={raw!r}: sample_rate must be a number from 0.0 to 1.0") from None


def _check_rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where} must be a number from 0.0 to 1.0, got {type(value).__name__}: {value!r}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{where} must be from 0.0 (keep only errors) to 1.0 (keep every call), got {value!r}"
        )
    return float(value)


def _check_limit(value: Any, name: str, minimum: int, unit: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum} ({unit}) or None for no limit, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} ({unit}) or None for no limit, got {value}")
    return value


# ---- the metadata view ----

# Top-level fields that never hold prompt or completion text. Anything else (new reader fields
# included) is left out of a metadata record until it is listed here.
_METADATA_FIELDS = METADATA_KEYS
# Request parameters that configure a call rather than carry its content.
_METADATA_REQUEST_KEYS = frozenset(
    {
        "model", "temperature", "top_p", "top_k", "n", "stream", "stream_options", "max_tokens",
        "max_completion_tokens", "max_output_tokens", "max_tool_calls", "frequency_penalty",
        "presence_penalty", "seed", "stop", "logprobs", "top_logprobs", "response_format", "text",
        "tool_choice", "parallel_tool_calls", "service_tier", "store", "reasoning_effort", "reasoning",
        "modalities", "encoding_format", "dimensions", "timeout", "truncation", "background",
        "previous_response_id", "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
        "metadata", "verbosity", "include", "best_of", "echo",
        # Anthropic's
        "stop_sequences", "thinking", "betas", "output_config", "output_format", "cache_control", "speed",
    }
)  # fmt: skip
# Keys of a choice (or message) that describe it without its text.
_METADATA_CHOICE_KEYS = frozenset({"index", "role", "finish_reason", "type", "status", "id"})


def _names_only(tools: Any) -> list[Any]:
    """Tool / function definitions reduced to their names."""
    names: list[Any] = []
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function")
        if isinstance(function, Mapping):
            names.append({"type": tool.get("type") or "function", "function": {"name": function.get("name")}})
        else:
            names.append({key: tool[key] for key in ("type", "name") if key in tool})
    return names


def _strip_call(call: Any) -> Any:
    if not isinstance(call, Mapping):
        return None
    stripped = {key: call[key] for key in ("id", "type", "index", "name") if key in call}
    for kind in ("function", "custom"):  # the tool's name stays; its arguments / input do not
        if isinstance(call.get(kind), Mapping):
            stripped[kind] = {"name": call[kind].get("name")}
    return stripped


def _strip_choice(choice: Any) -> Any:
    if not isinstance(choice, Mapping):
        return None  # a legacy completion's text
    stripped = {key: choice[key] for key in _METADATA_CHOICE_KEYS if key in choice}
    calls = choice.get("tool_calls")
    if isinstance(calls, list):
        stripped["tool_calls"] = [_strip_call(call) for call in calls]
    if isinstance(choice.get("function_call"), Mapping):
        stripped["function_call"] = _strip_call(choice["function_call"])
    return stripped


def strip_content(record: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata view of a record: no prompt, completion, message, argument or tool-output text.

    Kept: ids, model, timings, usage, cost, status, finish reasons, tool and function *names*, the
    request's configuration (temperature, max_tokens, ...), and the error (type, status code and its
    message, which providers use to say what went wrong, not to repeat the prompt).
    """
    stripped = {key: value for key, value in record.items() if key in _METADATA_FIELDS}
    stripped["prompt"] = None
    stripped["completion"] = None
    choices = record.get("choices")
    stripped["choices"] = [_strip_choice(c) for c in choices] if isinstance(choices, list) else []
    request = record.get("request")
    kept: dict[str, Any] = {}
    if isinstance(request, Mapping):
        kept = {key: value for key, value in request.items() if key in _METADATA_REQUEST_KEYS}
        for key in ("tools", "functions"):
            if key in request:
                kept[key] = _names_only(request[key])
    stripped["request"] = kept
    error = record.get("error")
    if record.get("kind") == "span" and isinstance(error, Mapping):
        # A step's error message is the application's own text: only its type is metadata.
        stripped["error"] = {"type": error.get("type")}
    stripped["capture"] = METADATA
    return stripped


# ---- building a view ----

# Redact functions whose failure was logged at WARNING level (later failures go to DEBUG).
_failed_redactors: weakref.WeakSet[Any] = weakref.WeakSet()
_failed_redactor_ids: set[int] = set()  # for callables that take no weak reference


def _clean(
    record: Mapping[str, Any], settings: CaptureSettings, masks: bool = True
) -> tuple[dict[str, Any], int]:
    cleaner = Cleaner(settings.masker if masks else None, settings.max_string_length)
    cleaned = cleaner.copy(record)
    return (cleaned if isinstance(cleaned, dict) else {}), cleaner.chars


def _clean_encoded(
    record: Mapping[str, Any], settings: CaptureSettings
) -> tuple[dict[str, Any], int, str | None]:
    """`_clean`, plus the copy's JSON text when it is the record's own (nothing masked, cut or converted).

    The text is made first: one search over it for secrets' markers replaces one per string, and the
    exporter sends it as it is instead of encoding the record again.
    """
    text = json_text(record)
    masker = settings.masker
    if text is not None and masker is mask_secrets and not may_hold_secret(text):
        masker = None
    if text is not None and masker is None and type(record) is dict:
        copied = plain_copy(record, settings.max_string_length)
        if copied is not None:  # nothing to mask, cut or convert: the cleaner would copy it as it is
            return copied, 0, text
    cleaner = Cleaner(masker, settings.max_string_length)
    cleaned = cleaner.copy(record)
    if not isinstance(cleaned, dict):
        return {}, cleaner.chars, None
    return cleaned, cleaner.chars, (None if cleaner.changed else text)


def _first_failure(redact: Redactor) -> bool:
    try:
        if redact in _failed_redactors:
            return False
        _failed_redactors.add(redact)
    except TypeError:
        if id(redact) in _failed_redactor_ids:
            return False
        _failed_redactor_ids.add(id(redact))
    return True


def _log_redactor_failure(redact: Redactor, error: str) -> None:
    if not _first_failure(redact):
        logger.debug("neatlogs: the redact function failed again (%s); content dropped", error)
        return
    logger.warning(
        "neatlogs: the redact function failed (%s); the record keeps its metadata but no content. "
        "Later failures are logged at DEBUG level.",
        error,
        exc_info=True,
    )


def _redact(cleaned: dict[str, Any], settings: CaptureSettings) -> tuple[dict[str, Any], int] | None:
    assert settings.redact is not None
    before = required_before_redact(cleaned)
    try:
        result = settings.redact(cleaned)
        if result is None:
            result = cleaned
        if not isinstance(result, dict):
            raise TypeError(f"redact returned {type(result).__name__}, not the record dict")
    except Exception as exc:
        _log_redactor_failure(settings.redact, f"{type(exc).__name__}: {exc}")
        return None
    # Whatever the redactor put in is made JSON-safe and held to the same limits; a required key it
    # removed or retyped is put back (or emptied, if it may hold content): the record stays valid.
    redacted, chars = _clean(result, settings, masks=False)
    return redacted, chars + repair_redacted(redacted, before, settings.redact)


def _fit(
    record: dict[str, Any], chars: int, settings: CaptureSettings, text: str | None = None
) -> dict[str, Any]:
    """Hold the record to max_record_bytes: shorter strings first, then no content at all.

    `text`, when given, is the record's `json_text`: a record that fits carries it (`EncodedRecord`)."""
    limit = settings.max_record_bytes
    if text is not None:
        if limit is None or json_size_at_most(text) <= limit:
            return EncodedRecord(record, text)
    elif limit is None or chars * MAX_BYTES_PER_CHAR <= limit:
        return record  # cannot be too large: no JSON encoding needed to know
    original = record
    size = json_size(record)
    cut = settings.max_string_length or size
    while size > limit and cut > 256:
        cut //= 4
        record = cut_strings(record, cut)
        size = json_size(record)
    if size > limit:
        record = strip_content(record)
        size = json_size(record)
    if size > limit:
        record = cut_strings(record, 64)
        if json_size(record) > limit:
            record["request"] = {}
    logger.debug("neatlogs: record %s cut to fit max_record_bytes=%d", record.get("id"), limit)
    if text is not None and record is original:
        return EncodedRecord(record, text)
    return record


def build_view(raw: Mapping[str, Any], mode: str, settings: CaptureSettings) -> dict[str, Any]:
    """A view of a raw record dict: content per `mode`, masks, limits, the user's redactor, size limit."""
    source = strip_content(raw) if mode == METADATA else {**raw, "capture": FULL}
    if settings.redact is None:
        cleaned, chars, text = _clean_encoded(source, settings)
        return _fit(cleaned, chars, settings, text)
    cleaned, chars = _clean(source, settings)
    redacted = _redact(cleaned, settings)
    if redacted is None:  # the redactor failed: no content, rather than content it did not see to
        cleaned, chars = _clean(strip_content(raw), settings)
    else:
        cleaned, chars = redacted
    return _fit(cleaned, chars, settings)
