"""Which of the SDK's test files run here: all of them except those that cannot say anything about neatlogs.

A rule rather than a list of files, so that a new release's new tests are picked up without an edit.
What runs is the SDK's (`_sdks.Sdk`): the files under its `selected` paths, less its `excluded` ones,
each left-out file with its reason; they are matched in every version of the SDK that has the files.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from _sdks import Sdk


def _matches(relative: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(relative, pattern) or relative.startswith(pattern + "/")


def _left_out(relative: str, sdk: Sdk) -> str | None:
    for pattern, reason in sdk.excluded.items():
        if _matches(relative, pattern):
            return reason
    if not any(_matches(relative, pattern) for pattern in sdk.selected):
        return sdk.unselected or "not selected"
    return None


def select(root: Path, sdk: Sdk) -> tuple[list[str], dict[str, str]]:
    """(test files to run, left-out file -> reason), paths relative to `root`, sorted."""
    chosen: list[str] = []
    left_out: dict[str, str] = {}
    for path in sorted((root / "tests").rglob("test_*.py")):
        relative = path.relative_to(root).as_posix()
        reason = _left_out(relative, sdk)
        if reason is None:
            chosen.append(relative)
        else:
            left_out[relative] = reason
    return chosen, left_out
