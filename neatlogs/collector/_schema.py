"""The collector database's schema, its migrations, and the summaries kept beside the records.

Version 0 with a `records` table is the first collector's file (records and a few columns); version 1
is the current `records` layout whose summaries are still to be built; version 2 lacks only the index
of records by `parent_id` (spans' children); version 3 is complete. Setting `PRAGMA user_version = 1`
makes the next start rebuild every summary and the search index from `records` (for instance after
deleting rows by hand).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from neatlogs.collector.rows import _INSERT, Entry, _entries, _no_surrogates, _row

VERSION = 3
_WITHOUT_PARENT_INDEX = 2
_BUILT_RECORDS = 1

logger = logging.getLogger("neatlogs")

_RECORDS = """
CREATE TABLE records (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    trace_id          TEXT NOT NULL,
    started_at        TEXT NOT NULL,
    ended_at          TEXT,
    status            TEXT,
    kind              TEXT NOT NULL,
    parent_id         TEXT,
    name              TEXT,
    model             TEXT,
    provider          TEXT,
    operation         TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    total_tokens      INTEGER,
    cost_usd          REAL,
    duration_ms       REAL,
    ttft_ms           REAL,
    finish_reason     TEXT,
    error_type        TEXT,
    error_message     TEXT,
    record            TEXT NOT NULL
)
"""

# The record's JSON is the last column: the columns before it are read without touching its pages.
# Only records inside a span have a parent: the index of children holds those alone.
_RECORD_INDEXES = """
CREATE INDEX IF NOT EXISTS records_trace_started ON records (trace_id, started_at);
CREATE INDEX IF NOT EXISTS records_started ON records (started_at);
CREATE INDEX IF NOT EXISTS records_errors ON records (started_at, model, error_type, error_message)
    WHERE status = 'error';
CREATE INDEX IF NOT EXISTS records_parent ON records (parent_id, started_at) WHERE parent_id IS NOT NULL;
"""

_SUMMARIES = """
CREATE TABLE summary_state (
    id   INTEGER PRIMARY KEY CHECK (id = 0),
    upto INTEGER NOT NULL
);
INSERT INTO summary_state (id, upto) VALUES (0, 0);
CREATE TABLE record_tags (
    seq INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (seq, tag)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE records_fts USING fts5(text, content='', tokenize='unicode61 remove_diacritics 2');
CREATE TABLE traces (
    trace_id          TEXT PRIMARY KEY,
    calls             INTEGER NOT NULL,
    spans             INTEGER NOT NULL,
    errors            INTEGER NOT NULL,
    incomplete        INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    total_tokens      INTEGER NOT NULL,
    cost_usd          REAL,
    first_at          TEXT NOT NULL,
    last_at           TEXT NOT NULL,
    ended_at          TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX traces_last ON traces (last_at);
CREATE TABLE trace_values (
    trace_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (trace_id, kind, value)
) WITHOUT ROWID;
CREATE INDEX trace_values_value ON trace_values (kind, value);
CREATE TABLE facets (
    kind  TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE TABLE stats_minute (
    minute   INTEGER NOT NULL,
    model    TEXT NOT NULL,
    calls    INTEGER NOT NULL,
    errors   INTEGER NOT NULL,
    tokens   INTEGER NOT NULL,
    cost_usd REAL,
    PRIMARY KEY (minute, model)
) WITHOUT ROWID;
CREATE TABLE stats_hour (
    hour     INTEGER NOT NULL,
    model    TEXT NOT NULL,
    calls    INTEGER NOT NULL,
    errors   INTEGER NOT NULL,
    tokens   INTEGER NOT NULL,
    cost_usd REAL,
    PRIMARY KEY (hour, model)
) WITHOUT ROWID;
CREATE TABLE errors_hour (
    hour       INTEGER NOT NULL,
    error_type TEXT NOT NULL,
    message    TEXT NOT NULL,
    n          INTEGER NOT NULL,
    last_at    TEXT NOT NULL,
    PRIMARY KEY (hour, error_type, message)
) WITHOUT ROWID;
CREATE TABLE latency_hour (
    hour   INTEGER NOT NULL,
    model  TEXT NOT NULL,
    metric INTEGER NOT NULL,
    bin    INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (hour, model, metric, bin)
) WITHOUT ROWID;
CREATE TABLE latency_day (
    day    INTEGER NOT NULL,
    model  TEXT NOT NULL,
    metric INTEGER NOT NULL,
    bin    INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (day, model, metric, bin)
) WITHOUT ROWID;
"""
_SUMMARY_TABLES = (
    "summary_state",
    "record_tags",
    "records_fts",
    "traces",
    "trace_values",
    "facets",
    "stats_minute",
    "stats_hour",
    "errors_hour",
    "latency_hour",
    "latency_day",
)

# The search index's settings (kept in the file): a fold's pending index data (a thousand
# records, a few MB of text) is written as one segment instead of several, and segments are merged
# eight at a time instead of four, so less of each fold goes into rewriting older segments. Neither
# changes what a search finds.
SEARCH_INDEX_SETTINGS = (("automerge", 8), ("hashsize", 8 * 1024 * 1024))

# Latency histograms: bin i holds durations in [R**i, R**(i+1)) ms, R = 1.1; a percentile is
# reported as its bin's geometric middle, so it is within 5% of the true value.
_RATIO = 1.1
_PER_LN = 1.0 / math.log(_RATIO)


def bin_value(index: int) -> float:
    """The value (ms) a histogram bin stands for."""
    return float(_RATIO ** (index + 0.5)) if index > 0 else 1.0


def _bin_sql(column: str) -> str:
    return f"CAST(ln(MAX({column}, 1.0)) * {_PER_LN!r} AS INTEGER)"


# A batch's rows are copied once into a small temporary table (with each row's minute, the one
# date parse), and every summary is folded from that copy: scanning `records` itself means visiting
# a large row per record for each summary.
_BATCH = (
    """
    CREATE TEMP TABLE IF NOT EXISTS fold_batch (
        seq INTEGER PRIMARY KEY, trace_id TEXT, started_at TEXT, ended_at TEXT, status TEXT, kind TEXT,
        model TEXT, provider TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER,
        cost_usd REAL, duration_ms REAL, ttft_ms REAL, error_type TEXT, error_message TEXT, minute INTEGER
    )
    """,
    "DELETE FROM temp.fold_batch",
    """
    INSERT INTO temp.fold_batch
    SELECT seq, trace_id, started_at, ended_at, status, kind, model, provider, prompt_tokens,
           completion_tokens, total_tokens, cost_usd, duration_ms, ttft_ms, error_type, error_message,
           CAST(strftime('%s', started_at) AS INTEGER) / 60
    FROM records WHERE seq BETWEEN ?1 AND ?2
    """,
)

# Each statement folds the batch's rows into a summary.
_SUMMARISE = (
    """
    INSERT INTO traces (trace_id, calls, spans, errors, incomplete, prompt_tokens, completion_tokens,
                        total_tokens, cost_usd, first_at, last_at, ended_at)
    SELECT trace_id, SUM(kind <> 'span'), SUM(kind = 'span'), SUM(status = 'error'),
           SUM(status = 'incomplete'), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),
           COALESCE(SUM(total_tokens), 0), SUM(cost_usd), MIN(started_at), MAX(started_at),
           MAX(COALESCE(ended_at, ''))
    FROM temp.fold_batch WHERE true GROUP BY trace_id
    ON CONFLICT (trace_id) DO UPDATE SET
        calls = calls + excluded.calls,
        spans = spans + excluded.spans,
        errors = errors + excluded.errors,
        incomplete = incomplete + excluded.incomplete,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens,
        total_tokens = total_tokens + excluded.total_tokens,
        cost_usd = CASE WHEN excluded.cost_usd IS NULL THEN cost_usd
                        WHEN cost_usd IS NULL THEN excluded.cost_usd
                        ELSE cost_usd + excluded.cost_usd END,
        first_at = MIN(first_at, excluded.first_at),
        last_at = MAX(last_at, excluded.last_at),
        ended_at = MAX(ended_at, excluded.ended_at)
    """,
    """
    INSERT OR IGNORE INTO trace_values (trace_id, kind, value)
    SELECT trace_id, 'model', model FROM temp.fold_batch WHERE model <> ''
    UNION SELECT trace_id, 'provider', provider FROM temp.fold_batch WHERE provider <> ''
    UNION SELECT trace_id, 'kind', kind FROM temp.fold_batch
    UNION SELECT r.trace_id, 'tag', g.tag FROM record_tags AS g JOIN temp.fold_batch AS r ON r.seq = g.seq
          WHERE g.seq BETWEEN ?1 AND ?2
    """,
    """
    INSERT OR IGNORE INTO facets (kind, value)
    SELECT 'model', model FROM temp.fold_batch WHERE model <> ''
    UNION SELECT 'provider', provider FROM temp.fold_batch WHERE provider <> ''
    UNION SELECT 'tag', tag FROM record_tags WHERE seq BETWEEN ?1 AND ?2
    """,
    *(
        f"""
    INSERT INTO stats_{unit} ({unit}, model, calls, errors, tokens, cost_usd)
    SELECT minute{divisor} AS m, COALESCE(model, '') AS mo, COUNT(*), SUM(status = 'error'),
           COALESCE(SUM(total_tokens), 0), SUM(cost_usd)
    FROM temp.fold_batch WHERE kind = 'llm' AND m IS NOT NULL GROUP BY m, mo
    ON CONFLICT ({unit}, model) DO UPDATE SET
        calls = calls + excluded.calls,
        errors = errors + excluded.errors,
        tokens = tokens + excluded.tokens,
        cost_usd = CASE WHEN excluded.cost_usd IS NULL THEN cost_usd
                        WHEN cost_usd IS NULL THEN excluded.cost_usd
                        ELSE cost_usd + excluded.cost_usd END
    """
        for unit, divisor in (("minute", ""), ("hour", " / 60"))
    ),
    """
    INSERT INTO errors_hour (hour, error_type, message, n, last_at)
    SELECT minute / 60 AS h, COALESCE(error_type, '') AS et, COALESCE(error_message, '') AS em,
           COUNT(*), MAX(started_at)
    FROM temp.fold_batch WHERE status = 'error' AND h IS NOT NULL GROUP BY h, et, em
    ON CONFLICT (hour, error_type, message) DO UPDATE SET
        n = n + excluded.n,
        last_at = MAX(last_at, excluded.last_at)
    """,
    *(
        f"""
    INSERT INTO latency_{unit} ({unit}, model, metric, bin, n)
    SELECT t, mo, metric, b, COUNT(*) FROM (
        SELECT minute / {minutes} AS t, COALESCE(model, '') AS mo, 0 AS metric,
               {_bin_sql("duration_ms")} AS b
        FROM temp.fold_batch WHERE kind = 'llm' AND duration_ms IS NOT NULL
        UNION ALL
        SELECT minute / {minutes}, COALESCE(model, ''), 1, {_bin_sql("ttft_ms")}
        FROM temp.fold_batch WHERE kind = 'llm' AND ttft_ms IS NOT NULL
    ) WHERE t IS NOT NULL GROUP BY t, mo, metric, b
    ON CONFLICT ({unit}, model, metric, bin) DO UPDATE SET n = n + excluded.n
    """
        for unit, minutes in (("hour", 60), ("day", 1440))
    ),
)


def summarise(db: sqlite3.Connection, first: int, last: int) -> None:
    """Fold the records of seq `first` to `last` into the summaries (inside the caller's transaction)."""
    for statement in _BATCH:
        db.execute(statement, (first, last) if "?" in statement else ())
    for statement in _SUMMARISE:
        db.execute(statement, (first, last) if "?" in statement else ())
    db.execute("DELETE FROM temp.fold_batch")
    db.execute("UPDATE summary_state SET upto = MAX(upto, ?)", (last,))


def prepare(db: sqlite3.Connection) -> None:
    """Give a connection the SQL functions the summaries use (`ln` is missing from some SQLite builds)."""
    try:
        db.execute("SELECT ln(2.0)").fetchone()
    except sqlite3.OperationalError:
        db.create_function("ln", 1, math.log, deterministic=True)


def _version(db: sqlite3.Connection) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return int(version)


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return found is not None


def migrate(db: sqlite3.Connection) -> None:
    """Bring the database to the current schema, in one transaction (creating it when empty)."""
    prepare(db)
    version = _version(db)
    if version == VERSION:
        return
    if version > VERSION:
        raise RuntimeError(
            f"the database's schema version {version} is newer than this neatlogs knows ({VERSION}); "
            "upgrade neatlogs to open it"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _version(db)  # another process may have migrated it meanwhile
        if version == 0 and _has_table(db, "records"):
            logger.warning("neatlogs: upgrading the collector's database; this runs once")
            _rebuild_records(db)
        elif version == 0:
            db.execute(_RECORDS)
            _run_script(db, _RECORD_INDEXES)
            _new_summaries(db)
        elif version == _BUILT_RECORDS:
            logger.warning("neatlogs: rebuilding the collector's summaries and search index")
            _build_summaries(db)
        elif version == _WITHOUT_PARENT_INDEX:
            logger.warning("neatlogs: indexing the collector's records by parent span; this runs once")
        _run_script(db, _RECORD_INDEXES)  # whichever are missing
        db.execute(f"PRAGMA user_version = {VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # executescript would commit the migration's transaction; run the statements one by one instead.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _rebuild_records(db: sqlite3.Connection) -> None:
    """The first collector's `records` table rewritten in the current layout (its rowids kept as seq)."""

    db.execute("ALTER TABLE records RENAME TO records_v0")
    for index in ("records_trace_started", "records_started"):
        db.execute(f"DROP INDEX IF EXISTS {index}")
    db.execute(_RECORDS)
    _new_summaries(db)
    cursor = db.execute("SELECT rowid, id, trace_id, record FROM records_v0 ORDER BY rowid")
    while True:
        chunk = cursor.fetchmany(1000)
        if not chunk:
            break
        rows = []
        parsed = []
        for seq, record_id, trace_id, text in chunk:
            record = _loads_or_empty(text)
            record["id"], record["trace_id"] = record_id, trace_id  # the columns are the truth
            row = _row(record, text, seq)
            rows.append((*_no_surrogates(row[:-1]), text))  # the stored text is valid UTF-8 already
            parsed.append((seq, record))
        db.executemany(_INSERT, rows)
        _index(db, parsed)
    db.execute("DROP TABLE records_v0")
    _run_script(db, _RECORD_INDEXES)


def _loads_or_empty(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _new_summaries(db: sqlite3.Connection) -> None:
    for table in _SUMMARY_TABLES:
        db.execute(f"DROP TABLE IF EXISTS {table}")
    _run_script(db, _SUMMARIES)
    set_search_index(db, SEARCH_INDEX_SETTINGS)


def set_search_index(db: sqlite3.Connection, settings: Sequence[tuple[str, int]]) -> None:
    """Store FTS5 settings in the search index (inside the caller's transaction)."""
    for key, value in settings:
        db.execute("INSERT INTO records_fts (records_fts, rank) VALUES (?, ?)", (key, value))


def _build_summaries(db: sqlite3.Connection) -> None:
    """(Re)build the search index and every summary from the `records` table, a chunk at a time."""
    _new_summaries(db)
    cursor = db.execute("SELECT seq, record FROM records ORDER BY seq")
    while True:
        chunk = cursor.fetchmany(1000)
        if not chunk:
            break
        _index(db, [(seq, _loads_or_empty(text)) for seq, text in chunk])


# ---- folding stored records into the search index and summaries ----


def _fold(db: sqlite3.Connection, entries: Sequence[Entry]) -> None:
    """Add stored records (ascending seq, all rows from the last folded one on) to the search
    index, tags and summaries, inside the caller's transaction."""
    if not entries:
        return
    db.executemany("INSERT INTO records_fts (rowid, text) VALUES (?, ?)", [entry[:2] for entry in entries])
    tags = [(seq, tag) for seq, _, record_tags in entries for tag in record_tags]
    if tags:
        db.executemany("INSERT OR IGNORE INTO record_tags (seq, tag) VALUES (?, ?)", tags)
    summarise(db, entries[0][0], entries[-1][0])


def _index(
    db: sqlite3.Connection, pairs: Sequence[tuple[int, Mapping[str, Any]]], clean: bool = True
) -> None:
    """_fold for records given as (seq, record)."""
    _fold(db, _entries(pairs))


def _tune_search_index(db: sqlite3.Connection) -> None:
    """Give a file's search index the settings it lacks (made by an older version), writing only
    then: a read-only file that has them opens as before."""
    found = dict(db.execute("SELECT k, v FROM records_fts_config").fetchall())
    missing = [(key, value) for key, value in SEARCH_INDEX_SETTINGS if found.get(key) != value]
    if not missing:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        set_search_index(db, missing)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# ---------------------------------------------------------------- percentiles
