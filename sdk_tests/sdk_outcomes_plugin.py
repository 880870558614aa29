"""A pytest plugin loaded in both runs: writes every test's outcome to `$NEATLOGS_SDK_OUTCOMES` (JSON lines).

One line per report phase; `run.py` folds them into one outcome per test. Under pytest-xdist only the
controller writes, since every worker's reports reach it.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

import pytest

_ENV = "NEATLOGS_SDK_OUTCOMES"
_out: IO[str] | None = None


def _message(report: Any) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        return str(longrepr[2])
    return str(longrepr or "")


def _write(line: dict[str, Any]) -> None:
    if _out is not None:
        _out.write(json.dumps(line) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    global _out
    path = os.environ.get(_ENV)
    if path and not hasattr(config, "workerinput"):
        _out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in pytest_unconfigure


def pytest_unconfigure(config: pytest.Config) -> None:
    global _out
    if _out is not None:
        _out.close()
        _out = None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.passed and report.when != "call":
        return
    line = {"id": report.nodeid, "when": report.when, "outcome": report.outcome, "xfail": False}
    if hasattr(report, "wasxfail"):
        line["xfail"] = True
    if not report.passed:
        line["message"] = _message(report)[:500]
    _write(line)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _write(
            {"id": report.nodeid, "when": "collect", "outcome": "failed", "message": _message(report)[:500]}
        )
