"""The on-disk spool: batches that could not be delivered, kept for a later attempt or a later process.

Layout: `<spool_dir>/<16 hex chars>/<time_ns>-<pid>-<n>.jsonl`, one JSON record per line, one file per
batch. The subdirectory name is a hash of (endpoint, api key), so records are only ever resent to the
endpoint, with the key, they were meant for, and the key never appears on disk. Directories the spool
makes are 0700 and its files 0600, whatever the umask: they hold prompts and completions. A file that
cannot be read whole is renamed `<name>.bad` by the exporter and no longer replayed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from neatlogs.sinks.exporter.wire import record_texts, to_utf8

# The whole spool directory may not grow past this; batches beyond it are dropped and counted.
_MAX_BYTES = 100 * 1024 * 1024
_SUFFIX = ".jsonl"
_BAD_SUFFIX = ".bad"
_DIR_MODE = 0o700
_FILE_MODE = 0o600

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

    def write(self, records: list[Record]) -> int | None:
        """Store a batch atomically (temp file, fsync, rename); returns how many records it holds
        (records that cannot be encoded are left out), None when it would exceed the size bound.

        Raises OSError when the directory cannot be written.
        """
        texts, _, _ = record_texts(records)
        if not texts:
            return 0
        data = to_utf8("\n".join(texts) + "\n")
        if self._used_bytes() + len(data) > self._max_bytes:
            return None
        self._make_dir()
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq)}{_SUFFIX}"
        temp = self.dir / f".{name}.tmp"
        # Owner-only whatever the umask: the records hold prompts and completions.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), _FILE_MODE)
        with open(fd, "wb") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, _FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(fd)
        os.replace(temp, self.dir / name)  # readers only ever see complete files
        return len(texts)

    def _make_dir(self) -> None:
        """Create the spool's directories owner-only (0700, whatever the umask); an existing
        `spool_dir` is left as it is, this endpoint's directory inside it is always made 0700."""
        missing: list[Path] = []
        path = self.dir
        while not path.exists() and path.parent != path:
            missing.append(path)
            path = path.parent
        for path in reversed(missing):
            try:
                os.mkdir(path, _DIR_MODE)
            except FileExistsError:
                continue
            os.chmod(path, _DIR_MODE)
        os.chmod(self.dir, _DIR_MODE)  # also one an earlier version made with the umask's mode

    def files(self) -> list[Path]:
        """Spooled batches, oldest first (files set aside as damaged are not among them)."""
        try:
            return sorted(p for p in self.dir.iterdir() if p.name.endswith(_SUFFIX) and p.name[0] != ".")
        except OSError:
            return []

    @staticmethod
    def read(path: Path) -> tuple[list[Record], int]:
        """The records in one spooled file, and how many of its lines could not be read (not UTF-8,
        not JSON, not a record). Raises OSError when the file cannot be read."""
        with open(path, "rb") as handle:
            data = handle.read()
        records: list[Record] = []
        bad = 0
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError is one
                bad += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                bad += 1
        return records, bad

    @staticmethod
    def set_aside(path: Path) -> Path:
        """Rename a damaged file to `<name>.bad`, out of the replay, kept for inspection."""
        target = path.with_name(path.name + _BAD_SUFFIX)
        os.replace(path, target)
        return target

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
