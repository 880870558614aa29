"""Which of the SDK's test files run here: all of them except those that cannot say anything about neatlogs.

A rule rather than a list of files, so that a new release's new tests are picked up without an edit.
The exclusions are the SDK's (`_sdks.Sdk.excluded`), each with its reason; they are matched in every
version of the SDK that has the files.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path


def _excluded(relative: str, excluded: Mapping[str, str]) -> str | None:
    for pattern, reason in excluded.items():
        if fnmatch.fnmatchcase(relative, pattern) or relative.startswith(pattern + "/"):
            return reason
    return None


def select(root: Path, excluded: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """(test files to run, excluded file -> reason), paths relative to `root`, sorted."""
    chosen: list[str] = []
    left_out: dict[str, str] = {}
    for path in sorted((root / "tests").rglob("test_*.py")):
        relative = path.relative_to(root).as_posix()
        reason = _excluded(relative, excluded)
        if reason is None:
            chosen.append(relative)
        else:
            left_out[relative] = reason
    return chosen, left_out
