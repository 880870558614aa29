"""SQLite storage for call records: one row per record id, plus the columns and summaries the queries use."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from neatlogs.collector import _schema
from neatlogs.collector._schema import _fold, _tune_search_index, migrate
from neatlogs.collector.queries import (
    STATUSES,
    Filters,
    Page,
    StatsRange,
    decode_cursor,
    encode_cursor,
    fts_query,
    minute_time,
)
from neatlogs.collector.rows import (
    _FOLD_CHARS,
    _FOLD_ROWS,
    _INSERT,
    Entry,
    Row,
    _clean_json,
    _entries,
    _loads,
    _loads_or_empty,
    _no_surrogates,
    _row,
    _text_factory,
)

# The most bytes of records one page of /v1/records holds (a single larger record still comes
# alone): the collector's memory per query stays bounded whatever the records' sizes.
MAX_PAGE_BYTES = 8 * 1024 * 1024
# Up to this many minutes, /v1/stats percentiles are exact (sorted from the records themselves);
# over longer ranges they come from the hourly histograms.
EXACT_PERCENTILE_MINUTES = 60
# Past this many minutes, percentiles come from daily histograms instead of hourly ones.
LONG_RANGE_MINUTES = 2 * 1440
TOP_ERRORS = 10
# The most records below one span that RecordStore.inside counts.
INSIDE_LIMIT = 100_000


def _percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))  # nearest-rank
    return round(sorted_values[rank - 1], 3)


def _histogram_percentile(bins: Mapping[int, int], fraction: float) -> float | None:
    total = sum(bins.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index in sorted(bins):
        seen += bins[index]
        if seen >= rank:
            return round(_schema.bin_value(index), 3)
    return None  # pragma: no cover - the loop always reaches the rank


# ---------------------------------------------------------------- files and storage errors

# Owner-only: the records hold prompts and completions.
_FILE_MODE = 0o600
_DIR_MODE = 0o700


class StorageError(Exception):
    """The database cannot be written (read-only, disk full, locked, damaged); the message says why."""


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


# ---------------------------------------------------------------- the store


class RecordStore:
    """A thread-safe SQLite file of call records, idempotent on record `id`."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating it, owner-only, if missing) the database at `path`, or ":memory:".

        Raises StorageError when the file cannot be opened or written, so a collector that could
        not store anything fails at start-up rather than at its first batch.
        """
        self.path = str(path)
        # One connection behind a lock: writes are serialised by SQLite anyway, and batches are
        # short transactions, so a pool would add complexity without adding throughput.
        self._lock = threading.Lock()
        # Search text and tags of the records stored since the last fold, by seq (see _write).
        self._pending: dict[int, tuple[str, list[str]]] = {}
        self._pending_chars = 0
        try:
            self._db = self._open()
            # Records a run that stopped before folding them in (a crash) left behind: folded in now.
            self._fold_pending(force=True)
            self._reader, self._read_lock = self._open_reader()
        except (sqlite3.Error, OSError, StorageError) as exc:
            raise StorageError(f"cannot store records in {self.path}: {_reason(exc)}") from exc

    def _open(self) -> sqlite3.Connection:
        on_disk = self.path != ":memory:"
        if on_disk:
            _make_private_dirs(Path(self.path).parent)
            _create_private(self.path)
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
            # Each batch touches pages all over the id, trace and summary indexes: keeping 64 MiB of
            # them cached (instead of 2) keeps ingest from slowing down as the file grows.
            db.execute("PRAGMA cache_size=-65536")
            migrate(db)
            _tune_search_index(db)
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

    def _open_reader(self) -> tuple[sqlite3.Connection, threading.Lock]:
        # Queries get their own connection: in WAL mode they read a snapshot while a batch is being
        # written, so a slow query never holds up ingest (nor ingest a query).
        if self.path == ":memory:":
            _schema.prepare(self._db)
            return self._db, self._lock
        reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        reader.text_factory = _text_factory
        reader.execute("PRAGMA cache_size=-32768")  # 32 MiB of pages kept between queries
        _schema.prepare(reader)
        return reader, threading.Lock()

    # ------------------------------------------------------------ writing

    def add(self, records: Sequence[Mapping[str, Any]], texts: Sequence[str] | None = None) -> int:
        """Store records in one transaction; return how many were new (known ids are skipped).

        `texts`, if given, are the records' JSON texts (same order), stored instead of re-encoding.
        """
        if texts is not None and len(texts) != len(records):
            raise ValueError(f"{len(records)} records but {len(texts)} texts")
        if not records:
            return 0
        with self._lock:
            try:
                # IMMEDIATE: the write lock from the start, so what the batch reads (the last seq, the
                # last folded) cannot change under it if another process writes the same file.
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    try:
                        entries = self._write(records, texts, clean=False)
                    except UnicodeEncodeError:
                        # A lone surrogate (a JSON escape like "\ud800") in a field copied to a
                        # column: SQLite's text is UTF-8, so such rows are stored with it replaced.
                        self._db.execute("ROLLBACK")
                        self._db.execute("BEGIN IMMEDIATE")
                        entries = self._write(records, texts, clean=True)
                    new = {seq: (text, tags) for seq, text, tags in entries}
                    chars = self._pending_chars + sum(len(text) for text, _ in new.values())
                    fold = len(self._pending) + len(new) >= _FOLD_ROWS or chars >= _FOLD_CHARS
                    if fold:
                        self._fold_new({**self._pending, **new})
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                # Disk full, read-only, locked, I/O error: the client can retry later, nothing of
                # the batch is stored.
                raise StorageError(_reason(exc)) from exc
            if fold:
                self._pending, self._pending_chars = {}, 0
            else:
                self._pending.update(new)
                self._pending_chars = chars
            return len(entries)

    def _fold_pending(self, force: bool = False) -> None:
        """Fold the records stored since the last fold into the index and summaries (before a read)."""
        if not self._pending and not force:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._fold_new(self._pending)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                # The records are stored; only their search text and summaries wait for a later fold.
                raise StorageError(_reason(exc)) from exc
            self._pending, self._pending_chars = {}, 0

    def _fold_new(self, pending: Mapping[int, tuple[str, list[str]]]) -> None:
        # Every row past the last fold, in seq order: this store's own from memory, any other
        # (stored by a run that stopped first, or by another process) read back from its JSON.
        db = self._db
        ((upto,),) = db.execute("SELECT upto FROM summary_state").fetchall()
        seqs = [seq for (seq,) in db.execute("SELECT seq FROM records WHERE seq > ? ORDER BY seq", (upto,))]
        for start in range(0, len(seqs), 1000):
            chunk = seqs[start : start + 1000]
            missing = [seq for seq in chunk if seq not in pending]
            parsed: dict[int, Entry] = {}
            if missing:
                marks = ",".join("?" * len(missing))
                rows = db.execute(f"SELECT seq, record FROM records WHERE seq IN ({marks})", missing)
                parsed = {
                    entry[0]: entry for entry in _entries([(seq, _loads_or_empty(t)) for seq, t in rows])
                }
            _fold(db, [(seq, *pending[seq]) if seq in pending else parsed[seq] for seq in chunk])

    def _write(
        self, records: Sequence[Mapping[str, Any]], texts: Sequence[str] | None, clean: bool
    ) -> list[Entry]:
        # Stores the rows; their search text and tags are folded into the index and summaries
        # later, a thousand or so at a time: one batch of the exporter (100 records) costs several
        # statements and a new search-index segment, which amortise over ten batches.
        db = self._db
        (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
        (sequence,) = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'records'"
        ).fetchone()
        first = max(last, sequence) + 1
        if texts is None:
            rows = [_row(record, None, first + n) for n, record in enumerate(records)]
        else:
            rows = [
                _row(record, text, first + n)
                for n, (record, text) in enumerate(zip(records, texts, strict=True))
            ]
        if clean:
            rows = [_no_surrogates(row) for row in rows]
        stored: int = db.executemany(_INSERT, rows).rowcount
        if stored == 0:
            return []
        inserted: set[int] | None = None
        if stored != len(rows):  # some ids were known: only the rows that went in are indexed
            inserted = {seq for (seq,) in db.execute("SELECT seq FROM records WHERE seq >= ?", (first,))}
        pairs = [
            (row[0], record)
            for record, row in zip(records, rows, strict=True)
            if inserted is None or row[0] in inserted
        ]
        return _entries(pairs)

    # ------------------------------------------------------------ reading

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def record_texts(
        self, filters: Filters, limit: int, cursor: str | None = None, max_bytes: int = MAX_PAGE_BYTES
    ) -> tuple[list[bytes], str | None]:
        """The JSON texts of a page of records, newest first, and the next page's cursor.

        The page stops early, with a cursor, once it holds `max_bytes` of records (at least one record).
        """
        position = decode_cursor(cursor, (str, int))
        if filters.q is not None or filters.tag is not None:
            self._fold_pending()
        where, params = _record_conditions(filters)
        if position is not None:
            where.append("(r.started_at, r.seq) < (?, ?)")
            params.extend(position)
        sql = "SELECT r.started_at, r.seq FROM records AS r"
        if filters.status == "error" and filters.trace_id is None and filters.q is None:
            # Errors are rare: SQLite, knowing nothing of the data, would walk every record instead.
            # (The index holds each error's model too, for the errors of one model.)
            sql += " INDEXED BY records_errors"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.started_at DESC, r.seq DESC LIMIT ?"
        params.append(limit + 1)
        found: list[bytes] = []
        size = 0
        last: tuple[str, int] | None = None
        more = False
        # The page's positions first, then its records one at a time: a sort (as for `q`) never
        # carries records' text, and the byte bound applies as they are read.
        with self._read_lock:
            positions = self._reader.execute(sql, params).fetchall()
            for started, seq in positions:
                if len(found) == limit:
                    more = True
                    break
                row = self._reader.execute(
                    "SELECT CAST(record AS BLOB) FROM records WHERE seq = ?", (seq,)
                ).fetchone()
                if row is None:  # deleted by hand meanwhile
                    continue
                blob = row[0]
                if found and size + len(blob) > max_bytes:
                    more = True
                    break
                found.append(_clean_json(blob))
                size += len(blob)
                last = (started, seq)
        return found, (encode_cursor(*last) if more and last is not None else None)

    def query_records(self, filters: Filters, limit: int = 100, cursor: str | None = None) -> Page:
        """Full records matching `filters`, newest first, one page (see record_texts for its size bound)."""
        texts, next_cursor = self.record_texts(filters, limit, cursor)
        return Page([json.loads(text) for text in texts], next_cursor)

    def get_record(self, record_id: str) -> dict[str, Any] | None:
        """The record with this id, or None."""
        blob = self.record_text(record_id)
        return json.loads(blob) if blob is not None else None

    def record_text(self, record_id: str) -> bytes | None:
        """The JSON text of the record with this id, or None."""
        rows = self._read("SELECT CAST(record AS BLOB) FROM records WHERE id = ?", (record_id,))
        return _clean_json(rows[0][0]) if rows else None

    def trace_records(
        self, trace_id: str, limit: int = 5000, max_bytes: int = 4 * MAX_PAGE_BYTES
    ) -> list[dict[str, Any]]:
        """Every record of one trace (up to `limit`), oldest first.

        Stops after `max_bytes` of records (at least one record), so a trace of huge prompts cannot
        take the collector's memory; trace_calls lists every call without the prompts.
        """
        found: list[dict[str, Any]] = []
        size = 0
        with self._read_lock:
            for (blob,) in self._reader.execute(
                "SELECT CAST(record AS BLOB) FROM records WHERE trace_id = ?"
                " ORDER BY started_at, seq LIMIT ?",
                (trace_id, limit),
            ):
                size += len(blob)
                if found and size > max_bytes:
                    break
                found.append(_loads(blob))
        return found

    def trace_calls(self, trace_id: str, limit: int = 5000) -> list[dict[str, Any]]:
        """One trace's records, oldest first, as their timeline fields only (no prompt or completion).

        Keys: id, parent_id, kind, name, provider, model, operation, status, started_at, ended_at,
        duration_ms, ttft_ms, prompt_tokens, completion_tokens, total_tokens, cost_usd,
        finish_reason, error_type, error_message (its first 300 characters).
        """
        rows = self._read(
            f"SELECT {', '.join(_CALL_KEYS)} FROM records WHERE trace_id = ?"
            " ORDER BY started_at, seq LIMIT ?",
            (trace_id, limit),
        )
        return [dict(zip(_CALL_KEYS, row, strict=True)) for row in rows]

    def call_fields(self, record_id: str) -> dict[str, Any] | None:
        """One record's timeline fields (as trace_calls gives them), or None if it is not stored."""
        rows = self._read(f"SELECT {', '.join(_CALL_KEYS)} FROM records WHERE id = ?", (record_id,))
        return dict(zip(_CALL_KEYS, rows[0], strict=True)) if rows else None

    def children(self, parent_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The records whose `parent_id` is this one, oldest first, as trace_calls' fields."""
        rows = self._read(
            f"SELECT {', '.join(_CALL_KEYS)} FROM records WHERE parent_id = ?1 AND id <> ?1"
            " ORDER BY started_at, seq LIMIT ?2",
            (parent_id, limit),
        )
        return [dict(zip(_CALL_KEYS, row, strict=True)) for row in rows]

    def child_counts(self, parent_ids: Sequence[str]) -> dict[str, int]:
        """How many records each of these ids is the parent of (ids without children left out)."""
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(parent_ids))
        for start in range(0, len(unique), 500):  # under SQLite's limit of parameters
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for parent, count in self._read(
                f"SELECT parent_id, COUNT(*) FROM records WHERE parent_id IN ({marks}) AND parent_id <> id"
                " GROUP BY parent_id",
                chunk,
            ):
                found[parent] = count
        return found

    def inside(self, span_id: str, limit: int = INSIDE_LIMIT) -> dict[str, Any]:
        """Totals of every record below a span (children, their children, ...): calls, spans,
        errors, tokens and cost (None when no call inside had a price); `complete` is False when
        more than `limit` records were below it and only the first `limit` were counted."""
        # UNION (not UNION ALL): a parent_id cycle ends instead of looping.
        ((calls, spans, errors, prompt, completion, total, cost, found),) = self._read(
            "WITH RECURSIVE below(id) AS ("
            " SELECT id FROM records WHERE parent_id = ?1"
            " UNION SELECT r.id FROM records AS r JOIN below AS b ON r.parent_id = b.id LIMIT ?2)"
            " SELECT COALESCE(SUM(r.kind <> 'span'), 0), COALESCE(SUM(r.kind = 'span'), 0),"
            " COALESCE(SUM(r.status = 'error'), 0), COALESCE(SUM(r.prompt_tokens), 0),"
            " COALESCE(SUM(r.completion_tokens), 0), COALESCE(SUM(r.total_tokens), 0), SUM(r.cost_usd),"
            " COUNT(*)"
            " FROM below AS b JOIN records AS r ON r.id = b.id WHERE r.id <> ?1",
            (span_id, limit + 1),
        )
        return {
            "calls": calls,
            "spans": spans,
            "errors": errors,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": total,
            "cost_usd": cost,
            "complete": found <= limit,
        }

    def query_traces(self, filters: Filters, limit: int = 100, cursor: str | None = None) -> Page:
        """Per-trace summaries, most recently active first; a trace matches if it has a matching record.

        `status` matches a trace by its worst record: error if any failed, incomplete if any was cut
        short, success if all succeeded. `since`/`until` keep traces active in that range.
        """
        self._fold_pending()
        position = decode_cursor(cursor, (str, str))
        driver = self._rare_value(filters)
        where, params = _trace_conditions(filters, skip=driver)
        if position is not None:
            where.append("(t.last_at, t.trace_id) < (?, ?)")
            params.extend(position)
        sql = _TRACES
        if driver is not None:
            # Few traces have this value: start from them (and sort them) rather than walk every
            # trace, newest first, looking for them. CROSS JOIN makes SQLite keep that order.
            sql = sql.replace(
                "FROM traces AS t",
                "FROM trace_values AS d CROSS JOIN traces AS t ON t.trace_id = d.trace_id",
            )
            where[:0] = ["d.kind = ?", "d.value = ?"]
            params[:0] = list(driver)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t.last_at DESC, t.trace_id DESC LIMIT ?"
        params.append(limit + 1)
        rows = self._read(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        traces = [dict(zip(_TRACE_KEYS, row, strict=True)) for row in rows]
        for trace in traces:
            trace["duration_ms"] = _elapsed_ms(trace["first_at"], trace["duration_ms"])
        if traces:
            values: dict[str, dict[str, list[str]]] = {
                t["trace_id"]: {"model": [], "tag": []} for t in traces
            }
            marks = ",".join("?" * len(traces))
            for trace_id, kind, value in self._read(
                "SELECT trace_id, kind, value FROM trace_values"
                f" WHERE trace_id IN ({marks}) AND kind IN ('model', 'tag') ORDER BY trace_id, kind, value",
                list(values),
            ):
                values[trace_id][kind].append(value)
            for trace in traces:
                trace["models"] = values[trace["trace_id"]]["model"]
                trace["tags"] = values[trace["trace_id"]]["tag"]
        last = traces[-1] if traces else None
        next_cursor = encode_cursor(last["last_at"], last["trace_id"]) if more and last else None
        return Page(traces, next_cursor)

    def _rare_value(self, filters: Filters) -> tuple[str, str] | None:
        """The filter's (kind, value) held by the fewest traces, if they are few (see query_traces)."""
        if filters.trace_id is not None:
            return None
        counts = []
        for kind in ("model", "provider", "tag", "kind"):
            value = getattr(filters, kind)
            if value is not None:
                ((count,),) = self._read(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM trace_values WHERE kind = ? AND value = ? LIMIT ?)",
                    (kind, value, _RARE_TRACES + 1),
                )
                counts.append((count, kind, value))
        if not counts:
            return None
        count, kind, value = min(counts)
        return (kind, value) if count <= _RARE_TRACES else None

    def facets(self) -> dict[str, list[str]]:
        """The models, providers and tags seen so far (for filter choices)."""
        self._fold_pending()
        found: dict[str, list[str]] = {"models": [], "providers": [], "tags": []}
        for kind, value in self._read("SELECT kind, value FROM facets ORDER BY kind, value"):
            key = {"model": "models", "provider": "providers", "tag": "tags"}.get(kind)
            if key is not None:
                found[key].append(value)
        return found

    def stats(
        self, since: str | None = None, until: str | None = None, bucket: str | None = None
    ) -> dict[str, Any]:
        """Calls, errors, tokens and cost over time and by model, latency percentiles, top errors.

        Arguments as the /v1/stats parameters (ISO 8601 times, a bucket like "5m" or "auto").
        """
        from neatlogs.collector.queries import stats_range

        params = {
            key: value for key, value in (("since", since), ("until", until), ("bucket", bucket)) if value
        }
        return self.stats_over(stats_range(params))

    def stats_over(self, span: StatsRange) -> dict[str, Any]:
        """`stats` for a parsed range."""
        self._fold_pending()
        first, end, size = span.since_minute, span.until_minute, span.bucket_minutes
        since_at, until_at = minute_time(first), minute_time(end)
        # Whole hours come from the hourly counts, the minutes around them from the per-minute ones.
        hour_first, hour_end = -(-first // 60), end // 60
        if hour_first < hour_end:
            parts = [("hour", hour_first, hour_end), ("minute", first, hour_first * 60)]
            parts.append(("minute", hour_end * 60, end))
        else:
            parts = [("minute", first, end)]
        # Buckets are aligned to multiples of their size since the epoch, so an hour falls in one
        # bucket whenever the size is a whole number of hours.
        series_parts = parts if size % 60 == 0 else [("minute", first, end)]
        buckets: dict[int, list[Any]] = {}
        models: dict[str, list[Any]] = {}
        with self._read_lock:
            db = self._reader
            for unit, low, high in series_parts:
                minute = "hour * 60" if unit == "hour" else "minute"
                for row in db.execute(
                    f"SELECT ({minute}) / ?1 * ?1 AS b, SUM(calls), SUM(errors), SUM(tokens), SUM(cost_usd)"
                    f" FROM stats_{unit} WHERE {unit} >= ?2 AND {unit} < ?3 GROUP BY b",
                    (size, low, high),
                ):
                    _add(buckets, row)
            for unit, low, high in parts:
                for row in db.execute(
                    "SELECT model, SUM(calls), SUM(errors), SUM(tokens), SUM(cost_usd)"
                    f" FROM stats_{unit} WHERE {unit} >= ? AND {unit} < ? GROUP BY model",
                    (low, high),
                ):
                    _add(models, row)
            error_counts: dict[tuple[str, str], list[Any]] = {}
            for unit, low, high in parts:
                if unit == "hour":
                    sql = (
                        "SELECT error_type, message, SUM(n), MAX(last_at) FROM errors_hour"
                        " WHERE hour >= ? AND hour < ? GROUP BY error_type, message"
                    )
                    bounds: tuple[Any, ...] = (low, high)
                else:
                    sql = (
                        "SELECT COALESCE(error_type, '') AS et, COALESCE(error_message, '') AS em,"
                        " COUNT(*), MAX(started_at) FROM records"
                        " WHERE status = 'error' AND started_at >= ? AND started_at < ? GROUP BY et, em"
                    )
                    bounds = (minute_time(low), minute_time(high))
                for kind, message, count, last_at in db.execute(sql, bounds):
                    seen = error_counts.setdefault((kind, message), [0, last_at])
                    seen[0] += count
                    seen[1] = max(seen[1], last_at)
            exact = end - first <= EXACT_PERCENTILE_MINUTES
            latency = (
                _exact_latencies(db, since_at, until_at) if exact else _histogram_latencies(db, first, end)
            )
        series = []
        for start in range(first // size * size, end, size):
            calls, errors, tokens, cost = buckets.get(start, (0, 0, 0, 0.0))
            series.append(
                {
                    "t": minute_time(start),
                    "calls": calls,
                    "errors": errors,
                    "tokens": tokens,
                    "cost_usd": _money(cost),
                }
            )
        model_rows = [(model, *sums) for model, sums in models.items()]
        by_model = []
        totals = {"calls": 0, "errors": 0, "tokens": 0, "cost_usd": 0.0}
        for model, calls, errors, tokens, cost in sorted(model_rows, key=lambda row: (-row[1], row[0])):
            by_model.append(
                {
                    "model": model,
                    "calls": calls,
                    "errors": errors,
                    **latency.get(model, _NO_LATENCY),
                    "tokens": tokens,
                    "cost_usd": _money(cost),
                }
            )
            totals["calls"] += calls
            totals["errors"] += errors
            totals["tokens"] += tokens
            totals["cost_usd"] += cost or 0.0
        totals["cost_usd"] = _money(totals["cost_usd"])
        return {
            "since": since_at,
            "until": until_at,
            "bucket": _size_name(size),
            "percentiles": "exact"
            if exact
            else ("daily histogram" if end - first > LONG_RANGE_MINUTES else "hourly histogram"),
            "totals": {**totals, **latency.get(None, _NO_LATENCY)},
            "series": series,
            "by_model": by_model,
            "top_errors": [
                {"type": kind or None, "message": message or None, "count": count, "last_at": last_at}
                for (kind, message), (count, last_at) in sorted(
                    error_counts.items(), key=lambda item: (-item[1][0], _descending(item[1][1]))
                )[:TOP_ERRORS]
            ],
        }

    # ------------------------------------------------------------ the original queries

    def records(
        self, trace_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Full records, newest first, optionally only one trace's and/or one status's."""
        return list(self.query_records(Filters(trace_id=trace_id, status=status), limit).items)

    def traces(self, limit: int = 100) -> list[dict[str, Any]]:
        """Per-trace totals (calls, errors, tokens, cost, first/last start), most recent first.

        `cost_usd` is the sum of the known costs, or None when no call in the trace had a price.
        """
        return list(self.query_traces(Filters(), limit).items)

    def count(self) -> int:
        """How many records are stored."""
        with self._lock:
            (total,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(total)

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        self._fold_pending()
        with self._lock:
            if self._reader is not self._db:
                with self._read_lock:
                    self._reader.close()
            self._db.close()


# ---------------------------------------------------------------- query building

_CALL_KEYS = (
    "id",
    "parent_id",
    "kind",
    "name",
    "provider",
    "model",
    "operation",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "finish_reason",
    "error_type",
    "error_message",
)

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
    "duration_ms",
    "spans",
)

_TRACES = """
SELECT t.trace_id, t.calls, t.errors, t.prompt_tokens, t.completion_tokens, t.total_tokens, t.cost_usd,
       t.first_at, t.last_at,
       MAX(t.ended_at, t.last_at),
       t.spans
FROM traces AS t
"""

# A traces filter matching at most this many traces is where the traces list starts from.
_RARE_TRACES = 5000
_FTS_MATCH = "SELECT rowid FROM records_fts WHERE records_fts MATCH ?"
_NO_LATENCY = {"p50_ms": None, "p95_ms": None, "ttft_p50_ms": None, "ttft_p95_ms": None}


def _time(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=timezone.utc)


def _elapsed_ms(start: str, end: str) -> float | None:
    """Milliseconds from one record time to another; None if either is not an ISO 8601 time."""
    began, ended = _time(start), _time(end)
    if began is None or ended is None:
        return None
    return round((ended - began).total_seconds() * 1000.0, 3)


def _descending(text: str) -> tuple[int, ...]:
    return tuple(-ord(char) for char in text)


def _size_name(minutes: int) -> str:
    for unit, length in (("d", 1440), ("h", 60)):
        if minutes % length == 0:
            return f"{minutes // length}{unit}"
    return f"{minutes}m"


def _add(sums: dict[Any, list[Any]], row: Row) -> None:
    key, calls, errors, tokens, cost = row
    found = sums.get(key)
    if found is None:
        sums[key] = [calls, errors, tokens, cost or 0.0]
    else:
        found[0] += calls
        found[1] += errors
        found[2] += tokens
        found[3] += cost or 0.0


def _money(value: float | None) -> float:
    return round(value, 9) if value else 0.0


def _record_conditions(filters: Filters) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column in ("trace_id", "model", "provider", "kind", "parent_id"):
        value = getattr(filters, column)
        if value is not None:
            where.append(f"r.{column} = ?")
            params.append(value)
    if filters.status in STATUSES:  # checked: written into the SQL so the errors' index applies
        where.append(f"r.status = '{filters.status}'")
    if filters.tag is not None:
        where.append("EXISTS (SELECT 1 FROM record_tags AS g WHERE g.seq = r.seq AND g.tag = ?)")
        params.append(filters.tag)
    if filters.since is not None:
        where.append("r.started_at >= ?")
        params.append(filters.since)
    if filters.until is not None:
        where.append("r.started_at < ?")
        params.append(filters.until)
    if filters.q is not None:
        where.append(f"r.seq IN ({_FTS_MATCH})")
        params.append(fts_query(filters.q))
    return where, params


_TRACE_STATUS = {
    "error": "t.errors > 0",
    "incomplete": "t.incomplete > 0",
    "success": "t.errors = 0 AND t.incomplete = 0",
}


def _trace_conditions(filters: Filters, skip: tuple[str, str] | None = None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if filters.trace_id is not None:
        where.append("t.trace_id = ?")
        params.append(filters.trace_id)
    if filters.status is not None:
        where.append(_TRACE_STATUS[filters.status])
    for kind in ("model", "provider", "tag", "kind"):
        value = getattr(filters, kind)
        if value is not None and (kind, value) != skip:
            where.append(
                "EXISTS (SELECT 1 FROM trace_values AS v"
                " WHERE v.trace_id = t.trace_id AND v.kind = ? AND v.value = ?)"
            )
            params.extend((kind, value))
    if filters.since is not None:
        where.append("t.last_at >= ?")
        params.append(filters.since)
    if filters.until is not None:
        where.append("t.first_at < ?")
        params.append(filters.until)
    if filters.q is not None:
        where.append(f"t.trace_id IN (SELECT r.trace_id FROM records AS r WHERE r.seq IN ({_FTS_MATCH}))")
        params.append(fts_query(filters.q))
    return where, params


def _latency_entry(durations: list[float], ttfts: list[float]) -> dict[str, float | None]:
    durations.sort()
    ttfts.sort()
    return {
        "p50_ms": _percentile(durations, 0.5),
        "p95_ms": _percentile(durations, 0.95),
        "ttft_p50_ms": _percentile(ttfts, 0.5),
        "ttft_p95_ms": _percentile(ttfts, 0.95),
    }


def _exact_latencies(
    db: sqlite3.Connection, since_at: str, until_at: str
) -> dict[str | None, dict[str, Any]]:
    """Percentiles per model (and None: all models) from the range's records themselves."""
    per_model: dict[str | None, tuple[list[float], list[float]]] = {None: ([], [])}
    for model, duration, ttft in db.execute(
        "SELECT COALESCE(model, ''), duration_ms, ttft_ms FROM records"
        " WHERE started_at >= ? AND started_at < ? AND kind = 'llm'",
        (since_at, until_at),
    ):
        lists = per_model.get(model)
        if lists is None:
            lists = per_model[model] = ([], [])
        for target in (lists, per_model[None]):
            if duration is not None:
                target[0].append(duration)
            if ttft is not None:
                target[1].append(ttft)
    return {model: _latency_entry(*lists) for model, lists in per_model.items()}


def _histogram_latencies(db: sqlite3.Connection, first: int, end: int) -> dict[str | None, dict[str, Any]]:
    """Percentiles per model (and None: all models) from the histograms of the hours (or, past two
    days, the days) the range touches."""
    bins: dict[tuple[str | None, int], dict[int, int]] = {}
    unit, minutes = ("day", 1440) if end - first > LONG_RANGE_MINUTES else ("hour", 60)
    for model, metric, index, count in db.execute(
        f"SELECT model, metric, bin, SUM(n) FROM latency_{unit} WHERE {unit} >= ? AND {unit} < ?"
        " GROUP BY model, metric, bin",
        (first // minutes, -(-end // minutes)),
    ):
        for key in ((model, metric), (None, metric)):
            counts = bins.setdefault(key, {})
            counts[index] = counts.get(index, 0) + count
    models = {model for model, _ in bins}
    found: dict[str | None, dict[str, Any]] = {}
    for model in models:
        durations = bins.get((model, 0), {})
        ttfts = bins.get((model, 1), {})
        found[model] = {
            "p50_ms": _histogram_percentile(durations, 0.5),
            "p95_ms": _histogram_percentile(durations, 0.95),
            "ttft_p50_ms": _histogram_percentile(ttfts, 0.5),
            "ttft_p95_ms": _histogram_percentile(ttfts, 0.95),
        }
    return found
