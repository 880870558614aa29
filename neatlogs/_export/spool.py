"""The on-disk spool: batches that could not be delivered, kept for a later attempt or a later process.

Layout: `<spool_dir>/<16 hex chars>/<time_ns>-<pid>-<n>.jsonl`, one JSON record per line, one file per
batch. The subdirectory name is a hash of (endpoint, api key), so records are only ever resent to the
endpoint, with the key, they were meant for, and the key never appears on disk.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

# The whole spool directory may not grow past this; batches beyond it are dropped and counted.
_MAX_BYTES = 100 * 1024 * 1024
_SUFFIX = ".jsonl"

Record = dict[str, Any]


class Spool:
    """One endpoint's files inside a spool directory."""

    def __init__(self, root: str, endpoint: str, api_key: str | None, max_bytes: int = _MAX_BYTES) -> None:
        digest = hashlib.sha256(f"{endpoint}\0{api_key or ''}".encode()).hexdigest()[:16]
        self.root = Path(root)
        self.dir = self.root / digest
        self._max_bytes = max_bytes
        self._seq = itertools.count()

    def __repr__(self) -> str:
        return f"Spool({str(self.dir)!r})"

    def write(self, records: list[Record]) -> bool:
        """Store a batch atomically (temp file, fsync, rename); False when it would exceed the size bound.

        Raises OSError when the directory cannot be written.
        """
        data = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in records).encode()
        if self._used_bytes() + len(data) > self._max_bytes:
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq)}{_SUFFIX}"
        temp = self.dir / f".{name}.tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.dir / name)  # readers only ever see complete files
        return True

    def files(self) -> list[Path]:
        """Spooled batches, oldest first."""
        try:
            return sorted(p for p in self.dir.iterdir() if p.name.endswith(_SUFFIX) and p.name[0] != ".")
        except OSError:
            return []

    @staticmethod
    def read(path: Path) -> list[Record]:
        """The records in one spooled file; lines that do not parse (a torn write elsewhere) are skipped."""
        records: list[Record] = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
        return records

    @staticmethod
    def remove(path: Path) -> None:
        """Delete a file once its records are settled; a file already gone is fine."""
        path.unlink(missing_ok=True)

    def _used_bytes(self) -> int:
        total = 0
        try:
            for sub in self.root.iterdir():
                if sub.is_dir():
                    total += sum(f.stat().st_size for f in sub.iterdir() if f.is_file())
        except OSError:
            pass
        return total
