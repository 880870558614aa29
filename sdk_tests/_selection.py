"""Which of the SDK's test files run here: all of them except those that cannot say anything about neatlogs.

A rule rather than a list of files, so that a new release's new tests are picked up without an edit.
Every exclusion names its reason; the files are matched in every openai version that has them.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

# path or glob relative to the unpacked sdist (a directory: everything below it) -> why it is left out
EXCLUDED: dict[str, str] = {
    "tests/api_resources": "calls the Prism mock server of the OpenAPI spec on 127.0.0.1:4010",
    "tests/lib/test_fine_tuning_positional_arguments.py": "calls the Prism mock server on 127.0.0.1:4010",
    "tests/test_uv_workflows.py": "packaging policy: needs uv, CI=true and GitHub workflows the sdist lacks",
    "tests/lib/test_microphone.py": "needs sounddevice and the PortAudio system library",
    # These start fresh interpreters (import-time checks, the example scripts), where neatlogs is not
    # active, and take most of a run's time.
    "tests/test_lazy_imports.py": "subprocesses only: what a fresh `import openai` loads",
    "tests/lib/test_realtime_example_keepalive.py": "subprocesses only: runs the realtime example scripts",
    "tests/test_mtls_http_client.py": "subprocesses only: runs the mTLS example scripts",
    # Certificates and workload identity at the transport, below every method neatlogs wraps.
    "tests/test_tls_hostname.py": "TLS transport only",
    "tests/test_x509_*.py": "X.509 workload identity at the transport only",
}


def _excluded(relative: str) -> str | None:
    for pattern, reason in EXCLUDED.items():
        if fnmatch.fnmatchcase(relative, pattern) or relative.startswith(pattern + "/"):
            return reason
    return None


def select(root: Path) -> tuple[list[str], dict[str, str]]:
    """(test files to run, excluded file -> reason), paths relative to `root`, sorted."""
    chosen: list[str] = []
    left_out: dict[str, str] = {}
    for path in sorted((root / "tests").rglob("test_*.py")):
        relative = path.relative_to(root).as_posix()
        reason = _excluded(relative)
        if reason is None:
            chosen.append(relative)
        else:
            left_out[relative] = reason
    return chosen, left_out
