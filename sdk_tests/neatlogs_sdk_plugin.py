"""A pytest plugin that runs a whole test session with neatlogs tracing every supported SDK.

`pytest -p neatlogs_sdk_plugin` (with this directory on `PYTHONPATH`) calls
`LLMTracker(otel=False).override_api()` before any test runs. With `$NEATLOGS_SDK_REPORT_DIR` set, each
process (every pytest-xdist worker too) writes there how many calls neatlogs recorded and every internal
error neatlogs logged (which it otherwise swallows), with the test that was running.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from neatlogs.llm import LLMTracker

_ENV = "NEATLOGS_SDK_REPORT_DIR"
_INTERNAL_ERROR = "neatlogs internal error"


class _InternalErrors(logging.Handler):
    """Keeps neatlogs' swallowed internal errors; the caller never sees them, this harness must."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.current_test = "(outside any test)"
        self.errors: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith(_INTERNAL_ERROR):
            return
        details = ""
        if record.exc_info:
            details = logging.Formatter().formatException(record.exc_info)
        self.errors.append({"test": self.current_test, "message": message, "traceback": details})


_tracker: LLMTracker | None = None
_errors = _InternalErrors()


def pytest_configure(config: pytest.Config) -> None:
    global _tracker
    logging.getLogger("neatlogs").addHandler(_errors)
    _tracker = LLMTracker(otel=False)
    _tracker.override_api()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, Any]:
    _errors.current_test = item.nodeid
    try:
        return (yield)
    finally:
        _errors.current_test = "(outside any test)"


def _recorded_calls() -> int:
    import neatlogs

    usage = neatlogs.stats().get("usage") or {}
    calls = usage.get("calls")
    return calls if isinstance(calls, int) else 0


def pytest_unconfigure(config: pytest.Config) -> None:
    global _tracker
    directory = os.environ.get(_ENV)
    if _tracker is None:
        return
    # Converting the most recent records runs the readers, as an exporter or a history caller would; the
    # usage statistics count (and read) every record.
    history = _tracker.get_conversation_history()
    calls = _recorded_calls()
    _tracker.stop_instrumenting()
    _tracker = None
    logging.getLogger("neatlogs").removeHandler(_errors)
    if not directory:
        return
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    operations = Counter(f"{r.get('provider')} {r.get('operation')}" for r in history)
    report = {
        "worker": worker,
        "calls": calls,
        "recent_operations": dict(operations),  # of the history's most recent records only
        "errors": _errors.errors,
    }
    (Path(directory) / f"neatlogs-{worker}.json").write_text(json.dumps(report, indent=1))
