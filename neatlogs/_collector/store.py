"""SQLite storage for call records: one row per record id, plus the columns the queries use."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id                TEXT PRIMARY KEY,
    trace_id          TEXT NOT NULL,
    started_at        TEXT,
    status            TEXT,
    model             TEXT,
    provider          TEXT,
    operation         TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    total_tokens      INTEGER,
    cost_usd          REAL,
    duration_ms       REAL,
    record            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_trace_started ON records (trace_id, started_at);
CREATE INDEX IF NOT EXISTS records_started ON records (started_at);
"""

_INSERT = (
    "INSERT OR IGNORE INTO records (id, trace_id, started_at, status, model, provider, operation,"
    " prompt_tokens, completion_tokens, total_tokens, cost_usd, duration_ms, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_TRACES = """
SELECT trace_id,
       COUNT(*)                                   AS calls,
       SUM(status = 'error')                      AS errors,
       COALESCE(SUM(prompt_tokens), 0)            AS prompt_tokens,
       COALESCE(SUM(completion_tokens), 0)        AS completion_tokens,
       COALESCE(SUM(total_tokens), 0)             AS total_tokens,
       SUM(cost_usd)                              AS cost_usd,
       MIN(started_at)                            AS first_at,
       MAX(started_at)                            AS last_at
FROM records
GROUP BY trace_id
ORDER BY last_at DESC, trace_id
LIMIT ?
"""

_TRACE_KEYS = (
    "trace_id",
    "calls",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "first_at",
    "last_at",
)

Row = tuple[Any, ...]

_INT64 = range(-(2**63), 2**63)
# Owner-only: the records hold prompts and completions.
_FILE_MODE = 0o600
_DIR_MODE = 0o700


class StorageError(Exception):
    """The database cannot be written (read-only, disk full, locked, damaged); the message says why."""


def _row(record: Mapping[str, Any], text: str | None) -> Row:
    # Columns are best-effort copies for filtering and sums; the JSON column is the record itself,
    # so a field of the wrong type becomes NULL here instead of rejecting the record. (Type checks are
    # inline: this runs for every record.)
    get = record.get
    usage = get("usage")
    if type(usage) is dict or isinstance(usage, Mapping):
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        total = usage.get("total_tokens")
    else:
        prompt = completion = total = None
    started, status, model = get("started_at"), get("status"), get("model")
    provider, operation = get("provider"), get("operation")
    cost, duration = get("cost_usd"), get("duration_ms")
    return (
        record["id"],
        record["trace_id"],
        started if isinstance(started, str) else None,
        status if isinstance(status, str) else None,
        model if isinstance(model, str) else None,
        provider if isinstance(provider, str) else None,
        operation if isinstance(operation, str) else None,
        _int(prompt),
        _int(completion),
        _int(total),
        _number(cost),
        _number(duration),
        json.dumps(record, separators=(",", ":"), allow_nan=False) if text is None else text,
    )


def _int(value: Any) -> int | None:
    # bool is an int subclass; a boolean token count is garbage, not 0/1.
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        return value if value in _INT64 else None  # SQLite integers are 64-bit
    return None


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float
            return None
    return None


def _reason(exc: BaseException) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    return f"{exc} ({name})" if name else str(exc)


def _make_private_dirs(directory: Path) -> None:
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for created in reversed(missing):
        created.mkdir(mode=_DIR_MODE, exist_ok=True)
        os.chmod(created, _DIR_MODE)  # whatever the umask


def _create_private(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, _FILE_MODE)  # whatever the umask


def _tighten(path: str) -> None:
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, _FILE_MODE)
    except OSError:
        pass  # not there, or not ours to change


class RecordStore:
    """A thread-safe SQLite file of call records, idempotent on record `id`."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating it, owner-only, if missing) the database at `path`, or ":memory:".

        Raises StorageError when the file cannot be opened or written, so a collector that could
        not store anything fails at start-up rather than at its first batch.
        """
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot store records in {self.path}: {_reason(exc)}") from exc

    def _open(self) -> sqlite3.Connection:
        on_disk = self.path != ":memory:"
        if on_disk:
            _make_private_dirs(Path(self.path).parent)
            _create_private(self.path)
        # One connection behind a lock: writes are serialised by SQLite anyway, and batches are
        # short transactions, so a pool would add complexity without adding throughput.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode is durable against application crashes; only an OS crash or power
            # loss can drop the last few commits, which at-least-once delivery makes acceptable.
            db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints fsync; doing them every ~40 MB of WAL instead of every 4 MB roughly doubles
            # the insert rate. The size limit truncates the WAL file again after each checkpoint.
            db.execute("PRAGMA wal_autocheckpoint=10000")
            db.execute("PRAGMA journal_size_limit=67108864")
            db.executescript(_SCHEMA)
            # A read-only file opens and reads fine; only a write tells. Nothing is left behind.
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("CREATE TABLE neatlogs_write_check (x)")
            finally:
                db.execute("ROLLBACK")
        except BaseException:
            db.close()
            raise
        if on_disk:
            # SQLite gives the -wal and -shm files the database file's mode; these exist now, and
            # files left by an older version are tightened too.
            for suffix in ("", "-wal", "-shm"):
                _tighten(self.path + suffix)
        return db

    def add(self, records: Sequence[Mapping[str, Any]], texts: Sequence[str] | None = None) -> int:
        """Store records in one transaction; return how many were new (known ids are skipped).

        `texts`, if given, are the records' JSON texts (same order), stored instead of re-encoding.
        """
        if texts is None:
            rows = [_row(record, None) for record in records]
        elif len(texts) != len(records):
            raise ValueError(f"{len(records)} records but {len(texts)} texts")
        else:
            rows = [_row(record, text) for record, text in zip(records, texts, strict=True)]
        if not rows:
            return 0
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    cursor = self._db.executemany(_INSERT, rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                # Disk full, read-only, locked, I/O error: the client can retry later, nothing of
                # the batch is stored.
                raise StorageError(_reason(exc)) from exc
            return cursor.rowcount

    def records(
        self, trace_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Full records, newest first, optionally only one trace's and/or one status's."""
        where: list[str] = []
        params: list[Any] = []
        if trace_id is not None:
            where.append("trace_id = ?")
            params.append(trace_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = "SELECT record FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [json.loads(text) for (text,) in rows]

    def traces(self, limit: int = 100) -> list[dict[str, Any]]:
        """Per-trace totals (calls, errors, tokens, cost, first/last start), most recent first.

        `cost_usd` is the sum of the known costs, or None when no call in the trace had a price.
        """
        with self._lock:
            rows = self._db.execute(_TRACES, (limit,)).fetchall()
        return [dict(zip(_TRACE_KEYS, row, strict=True)) for row in rows]

    def count(self) -> int:
        """How many records are stored."""
        with self._lock:
            (total,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(total)

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        with self._lock:
            self._db.close()
