"""Fold the outcome plugin's report lines into one outcome per test, and compare two runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

NOT_RUN = "not run"


@dataclass
class Outcome:
    """How one test ended: `passed`, `failed`, `error`, `skipped`, `xfailed`, `xpassed`, `collection error`,
    with ` + teardown error` appended when its teardown failed too."""

    outcome: str
    message: str = ""


def _phase_outcome(line: dict[str, object]) -> str:
    when, result, xfail = line["when"], line["outcome"], bool(line.get("xfail"))
    if when == "collect":
        return "collection error"
    if result == "failed":
        return "failed" if when == "call" else "error"
    if result == "skipped":
        return "xfailed" if xfail else "skipped"
    return "xpassed" if xfail else "passed"


def load(path: Path) -> dict[str, Outcome]:
    """Per test id, its outcome in the run that wrote `path`."""
    outcomes: dict[str, Outcome] = {}
    if not path.exists():
        return outcomes
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        result = _phase_outcome(line)
        message = str(line.get("message", ""))
        known = outcomes.get(line["id"])
        if known is None:
            outcomes[line["id"]] = Outcome(result, message)
        elif line["when"] == "teardown" and result == "error":
            known.outcome += " + teardown error"
            known.message = known.message or message
    return outcomes


@dataclass
class Difference:
    """A test whose outcome with neatlogs is not its outcome without it."""

    test: str
    plain: Outcome
    traced: Outcome


def differences(plain: dict[str, Outcome], traced: dict[str, Outcome]) -> list[Difference]:
    """Every test that ended differently in the two runs (or ran in only one), sorted by id."""
    result = []
    for test in sorted(plain.keys() | traced.keys()):
        a = plain.get(test, Outcome(NOT_RUN))
        b = traced.get(test, Outcome(NOT_RUN))
        if a.outcome != b.outcome:
            result.append(Difference(test, a, b))
    return result


def tally(outcomes: dict[str, Outcome]) -> dict[str, int]:
    """How many tests ended in each way."""
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    return dict(sorted(counts.items()))
