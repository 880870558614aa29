"""Bounded per-endpoint queues, each drained by one lazily started daemon thread.

The application's thread only appends to a deque (no lock, no I/O). A worker thread per
(endpoint, api key) converts records, batches them by size and time, and hands them to the
`IngestClient`; what it cannot deliver in time goes to the spool or is dropped and counted.
Also here: flush, shutdown, the atexit hook and fork handling.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from pathlib import Path

from neatlogs._log import log_internal_error, logger
from neatlogs.dispatch import drain as drain_dispatcher
from neatlogs.record.call import CallRecord
from neatlogs.sinks.exporter.http import Delivery, IngestClient, Record, describe_unencodable
from neatlogs.sinks.exporter.settings import ExporterSettings
from neatlogs.sinks.exporter.spool import Spool
from neatlogs.worker import weak_call

# After a 401/403 nothing is sent to that endpoint for this long (records are dropped and counted),
# so a wrong key costs one request a minute rather than one per batch.
_AUTH_PAUSE = 60.0
# Each kind of log line appears at most once per this many seconds per endpoint.
_LOG_INTERVAL = 60.0
_LOG_INTERVAL_BY_KIND = {"auth": 600.0}
# How long shutdown waits past its deadline for the worker to write the spool before taking over.
_JOIN_GRACE = 0.25
# After an unexpected error in its loop the worker waits this long (or until a flush or shutdown)
# before going on, so a fault that repeats cannot spin a CPU.
_ERROR_PAUSE = 0.1

_COUNTERS = ("taken", "sent", "dropped", "failed", "retried", "spooled", "spool_bad_files")


class _Stats:
    """Process-wide counters. Workers add once per batch; an emit only touches them when it drops."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(_COUNTERS, 0)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                self.counts[name] += n

    def add_one_drop(self) -> None:
        # The queue-full path of emit: as little work as a correct cross-thread count allows.
        with self.lock:
            self.counts["dropped"] += 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


_STATS = _Stats()


def _records(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"


def _no_deadline() -> float:
    return float("inf")


class EndpointPipeline:
    """One endpoint's queue and worker; its `emit` is the Sink the recorders call."""

    def __init__(self, settings: ExporterSettings) -> None:
        if not settings.endpoint:
            raise ValueError("exporter_sink needs settings with an endpoint")
        self.settings = settings
        self._endpoint: str = settings.endpoint
        self._batch_size = settings.batch_size
        # emit accepts while len(queue) < _limit; shutdown sets it to 0 so later records are dropped.
        self._limit = settings.max_queue_size
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=weak_call(self._after_fork_in_child))

    def _reset(self) -> None:
        """Fresh queue, thread state and locks (also what a forked child starts from)."""
        self._queue: collections.deque[CallRecord] = collections.deque()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._wake = threading.Event()  # a full batch, a flush or a shutdown
        self._kick = threading.Event()  # flush or shutdown: cut a backoff sleep short
        # Guards _taken/_done/_inflight/_ready/_abandoned; flush waits on it.
        self._settled = threading.Condition(threading.Lock())
        self._taken = 0  # records taken off the queue
        self._done = 0  # of those, records whose fate is settled (sent, failed, dropped or spooled)
        self._inflight: list[Record] | None = None  # the batch being delivered
        self._ready: tuple[list[Record], bytes] | None = None  # the next batch, converted and encoded
        self._draining = False  # sending everything, partial batches included (flush or interval)
        self._abandoned = False  # shutdown took over what the worker held
        self._flush_due = False
        self._stop_at: float | None = None  # monotonic deadline once shutdown began
        self._replaying = False
        self._spool_due = True
        self._auth_paused_until = 0.0
        self._logged_at: dict[str, float] = {}
        self._client: IngestClient | None = None
        spool_dir = self.settings.spool_dir
        self._spool = Spool(spool_dir, self._endpoint, self.settings.api_key) if spool_dir else None

    def __repr__(self) -> str:
        return f"EndpointPipeline({self._endpoint!r}, queued={len(self._queue)})"

    # ---- the application's side ----

    def emit(self, record: CallRecord) -> None:
        """Enqueue a finished record; never blocks, never raises, drops and counts when the queue is full."""
        try:
            queue = self._queue
            if len(queue) < self._limit:
                queue.append(record)
                record.mark_read_by_sink()  # converted on this sink's thread soon: not worth packing
                if self._thread is None:
                    self._start()
                elif len(queue) >= self._batch_size and not self._wake.is_set():
                    self._wake.set()
            else:
                self._drop_on_emit()
        except Exception:
            log_internal_error("exporter emit")

    def _drop_on_emit(self) -> None:
        _STATS.add_one_drop()
        if self._stop_at is None and self._may_log("queue_full"):
            self._log(
                "queue_full",
                f"the export queue for {self._endpoint} is full ({self.settings.max_queue_size} records); "
                "dropping new records until the collector catches up",
            )

    def queue_size(self) -> int:
        """Records waiting in this endpoint's queue."""
        return len(self._queue)

    def start_if_spooled(self) -> None:
        """Start the worker now when earlier processes left batches in the spool."""
        if self._spool is not None and self._spool.files():
            with self._settled:
                self._replaying = True
            self._start()
            if self._thread is None:  # could not start: nothing will replay, so nobody should wait
                with self._settled:
                    self._replaying = False

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None or self._stop_at is not None:
                return
            host = self._endpoint.split("://", 1)[-1]
            thread = threading.Thread(target=self._run, name=f"neatlogs-exporter {host}", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: shutdown spools or drops what is queued
                return
            self._thread = thread

    # ---- flush and shutdown (any thread) ----

    def request_flush(self) -> int:
        """Ask the worker to send everything now; returns the settle count that covers it."""
        with self._settled:
            target = self._taken + len(self._queue)
        self._flush_due = True
        self._kick.set()
        self._wake.set()
        return target

    def wait_settled(self, target: int, timeout: float | None) -> bool:
        """Wait until `target` records are settled and no spool replay is running; False on timeout."""
        with self._settled:
            return self._settled.wait_for(lambda: self._done >= target and not self._replaying, timeout)

    def begin_shutdown(self, timeout: float) -> None:
        """Stop accepting records and tell the worker to deliver what it can within `timeout` seconds."""
        self._limit = 0
        self._stop_at = time.monotonic() + max(0.0, timeout)
        self._kick.set()
        self._wake.set()

    def finish_shutdown(self) -> None:
        """Wait for the worker until the deadline; then spool or drop whatever it still holds."""
        stop_at = self._stop_at if self._stop_at is not None else time.monotonic()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, stop_at - time.monotonic()) + _JOIN_GRACE)
        with self._settled:
            # The worker may be stuck in a slow request; from here on its results are ignored.
            self._abandoned = True
            held = (self._inflight or []) + (self._ready[0] if self._ready is not None else [])
            self._inflight = self._ready = None
            waiting = self._pop_all()
        converted = self._convert(waiting)
        if len(converted) < len(waiting):
            self._settle(len(waiting) - len(converted), dropped=len(waiting) - len(converted))
        leftovers = held + converted
        if leftovers:
            self._spool_or_drop(leftovers, "the exporter was shut down")

    # ---- the worker ----

    def _run(self) -> None:
        try:
            self._client = IngestClient(self._endpoint, self.settings.api_key)
            while True:
                # No exception ends the worker: each kind is logged once, the records it held are
                # settled (dropped and counted) where it struck, and the loop goes on.
                try:
                    if self._spool_due:
                        self._replay_spool()
                    self._loop()
                    return  # shut down
                except BaseException as exc:
                    log_internal_error(f"the exporter worker ({type(exc).__name__})")
                self._draining = False
                if self._stop_at is not None:
                    return
                self._kick.wait(_ERROR_PAUSE)
                self._kick.clear()
        except BaseException:
            log_internal_error("starting the exporter worker")
        finally:
            with self._settled:
                self._replaying = False
                self._settled.notify_all()
            if self._client is not None:
                self._client.close()

    def _loop(self) -> None:
        interval = self.settings.flush_interval
        next_flush = time.monotonic() + interval
        while True:
            if self._stop_at is None and not self._flush_due and not self._full_batch_waiting():
                self._wake.wait(max(0.0, next_flush - time.monotonic()))
            self._wake.clear()
            if self._stop_at is not None:
                while self._anything_waiting() and time.monotonic() < self._stop_at:
                    self._send_next()
                return  # finish_shutdown spools or drops the rest
            if self._full_batch_waiting():
                self._send_next()
            elif self._flush_due or time.monotonic() >= next_flush:
                self._flush_due = False  # cleared first: a flush arriving mid-drain gets its own pass
                self._draining = True
                while self._anything_waiting() and self._stop_at is None:
                    self._send_next()
                self._draining = False
                next_flush = time.monotonic() + interval

    def _full_batch_waiting(self) -> bool:
        return self._ready is not None or len(self._queue) >= self._batch_size

    def _anything_waiting(self) -> bool:
        return self._ready is not None or bool(self._queue)

    def _pop_all(self) -> list[CallRecord]:
        # Caller holds _settled, so a flush never sees records that are in neither count.
        taken = [self._queue.popleft() for _ in range(len(self._queue))]
        self._taken += len(taken)
        _STATS.add(taken=len(taken))
        return taken

    def _send_next(self) -> None:
        with self._settled:
            ready, self._ready = self._ready, None
        if ready is None:
            ready = self._take()
        if ready is None:
            return
        batch, body = ready
        try:
            self._deliver(batch, body)
        except BaseException as exc:
            # A bug must not kill the worker or leave a flush waiting for records nobody holds.
            log_internal_error(f"exporter delivery ({type(exc).__name__})")
            with self._settled:
                if self._abandoned or self._inflight is None:
                    return
                self._inflight = None
            self._settle(len(batch), dropped=len(batch))

    def _take(self) -> tuple[list[Record], bytes] | None:
        """Take up to a batch off the queue, convert and encode it (None when nothing was left).

        A record that cannot be converted or encoded is dropped and counted; the rest go on."""
        with self._settled:
            n = min(self._batch_size, len(self._queue))
            records = [self._queue.popleft() for _ in range(n)]
            self._taken += n
        if not n:
            return None
        _STATS.add(taken=n)
        try:
            batch = self._convert(records)
            body, batch, errors = self._client.encode(batch) if batch and self._client else (b"", [], [])
        except BaseException as exc:  # a bug: the records it held are settled, the worker goes on
            log_internal_error(f"preparing an export batch ({type(exc).__name__})")
            self._settle(n, dropped=n)
            return None
        if errors:
            self._report("unencodable", describe_unencodable(errors))
        if len(batch) < n:
            self._settle(n - len(batch), dropped=n - len(batch))
        if not batch:
            return None
        return batch, body

    def _prepare_next(self) -> None:
        """Runs while the collector works on the batch just sent: take and encode the next one."""
        try:
            if self._ready is not None or not self._queue:
                return
            finishing = self._draining or self._stop_at is not None
            if len(self._queue) < self._batch_size and not finishing:
                return  # a partial batch waits for more records or the flush interval
            ready = self._take()
            if ready is None:
                return
            with self._settled:
                abandoned = self._abandoned
                if not abandoned:
                    self._ready = ready
            if abandoned:
                self._spool_or_drop(ready[0], "the exporter was shut down")
        except Exception:
            log_internal_error("preparing the next export batch")

    @staticmethod
    def _convert(records: list[CallRecord]) -> list[Record]:
        batch: list[Record] = []
        for record in records:
            try:
                batch.append(record.to_dict())
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # even SystemExit from a user's redact function
                log_internal_error(f"converting a record for export ({type(exc).__name__})")
        return batch

    def _deliver(self, batch: list[Record], body: bytes | None = None) -> None:
        assert self._client is not None
        now = time.monotonic()
        if now < self._auth_paused_until:
            self._settle(len(batch), failed=len(batch))
            return
        with self._settled:
            abandoned = self._abandoned
            if not abandoned:
                self._inflight = batch
        if abandoned:  # shutdown took over while this batch was being prepared
            self._spool_or_drop(batch, "the exporter was shut down")
            return
        if self._stop_at is not None and now >= self._stop_at:
            result = Delivery(undelivered=batch)
        else:
            self._kick.clear()
            batch_deadline = now + self.settings.retry_deadline
            result = self._client.deliver(
                batch,
                deadline=lambda: (
                    batch_deadline if self._stop_at is None else min(batch_deadline, self._stop_at)
                ),
                wait=self._backoff_wait,
                report=self._report,
                body=body,
                while_waiting=self._prepare_next,
                cutoff=self._stop_deadline,
            )
        if result.auth_refused:
            self._auth_paused_until = time.monotonic() + _AUTH_PAUSE
        with self._settled:
            if self._abandoned:
                return  # shutdown already spooled or dropped this batch
            self._inflight = None
        spooled, dropped = 0, result.dropped
        if result.undelivered:
            waited = f"retrying for {self.settings.retry_deadline:g} s"
            reason = "the exporter was shut down" if self._stop_at is not None else waited
            spooled, undelivered_dropped = self._store_undelivered(result.undelivered, reason)
            dropped += undelivered_dropped
        self._settle(
            len(batch), sent=result.sent, failed=result.failed, retried=result.retried,
            spooled=spooled, dropped=dropped,
        )  # fmt: skip
        if result.sent and self._spool_due and self._stop_at is None:
            self._replay_spool()  # the collector is answering again: send what earlier batches left

    def _stop_deadline(self) -> float:
        return float("inf") if self._stop_at is None else self._stop_at

    def _backoff_wait(self, seconds: float) -> None:
        # An Event, not time.sleep: flush and shutdown cut the wait short. Cleared after each wait so
        # one kick buys one early retry, not a busy loop.
        self._kick.wait(seconds)
        self._kick.clear()

    def _settle(self, n: int, **counts: int) -> None:
        _STATS.add(**counts)
        with self._settled:
            self._done += n
            self._settled.notify_all()

    def _spool_or_drop(self, records: list[Record], reason: str) -> None:
        spooled, dropped = self._store_undelivered(records, reason)
        self._settle(len(records), spooled=spooled, dropped=dropped)

    def _store_undelivered(self, records: list[Record], reason: str) -> tuple[int, int]:
        """Spool `records` if a spool is configured; returns (spooled, dropped)."""
        n = len(records)
        if self._spool is None:
            self._report(
                "dropped", f"dropped {_records(n)} for {self._endpoint} after {reason} (no spool_dir)"
            )
            return 0, n
        try:
            stored = self._spool.write(records)
        except OSError as exc:
            self._report("spool_error", f"could not write the spool in {self._spool.root}: {exc}")
            return 0, n
        if stored is None:
            self._report("spool_full", f"the spool in {self._spool.root} is full; dropped {_records(n)}")
            return 0, n
        if stored < n:
            self._report("unencodable", f"left out {_records(n - stored)} that could not be encoded as JSON")
        if stored:
            self._spool_due = True
            self._report("spooled", f"spooled {_records(stored)} for {self._endpoint} after {reason}")
        return stored, n - stored

    def _replay_spool(self) -> None:
        """Send spooled batches, oldest first, one attempt each; stop at the first that fails."""
        spool, client = self._spool, self._client
        try:
            if spool is None or client is None:
                return
            self._spool_due = False
            for path in spool.files():
                if self._stop_at is not None or time.monotonic() < self._auth_paused_until:
                    self._spool_due = True
                    return
                if not self._replay_file(spool, client, path):
                    self._spool_due = True
                    return
        finally:
            with self._settled:
                self._replaying = False
                self._settled.notify_all()

    def _replay_file(self, spool: Spool, client: IngestClient, path: Path) -> bool:
        """Send one spooled file; False when the collector did not take it (it stays for later).

        A damaged file (a line that is not UTF-8, JSON or a record) is renamed `*.bad` once what
        could be read of it is delivered; its unreadable lines are dropped and counted."""
        try:
            records, bad_lines = spool.read(path)
        except OSError as exc:
            self._report("spool_error", f"could not read spooled batch {path}: {exc}")
            return True  # perhaps readable later; the other files are not held up
        except Exception as exc:  # cannot happen with the reader as written; a file must not stop the rest
            log_internal_error(f"reading a spooled batch ({type(exc).__name__})")
            records, bad_lines = [], 1
        result = Delivery()
        if records:
            result = client.deliver(
                records,
                deadline=_no_deadline,
                wait=self._backoff_wait,
                report=self._report,
                retry=False,
                cutoff=self._stop_deadline,
            )
            if result.undelivered or result.auth_refused:
                # Left on disk for a later attempt: after the next good batch, or the next process.
                if result.auth_refused:
                    self._auth_paused_until = time.monotonic() + _AUTH_PAUSE
                return False
        where = ""
        try:
            if bad_lines:
                try:
                    where = str(spool.set_aside(path))
                except OSError:
                    spool.remove(path)  # cannot be renamed: at least it must not be replayed again
                    where = "nowhere (it could not be renamed, so it was deleted)"
            else:
                spool.remove(path)
        except OSError as exc:
            self._report("spool_error", f"could not remove spooled batch {path}: {exc}")
            where = "nowhere (it could not be renamed or deleted)"
        _STATS.add(sent=result.sent, failed=result.failed, dropped=result.dropped)
        if not bad_lines:
            return True
        _STATS.add(dropped=bad_lines, spool_bad_files=1)
        self._report(
            "spool_bad",
            f"spooled batch {path} is damaged: {bad_lines} unreadable line(s) dropped, "
            f"{len(records)} readable record(s) sent; the file was moved to {where}",
        )
        return True

    def _report(self, kind: str, message: str) -> None:
        """Log a problem at most once per kind per interval for this endpoint; repeats are not logged."""
        if self._may_log(kind):
            self._log(kind, message)

    def _may_log(self, kind: str) -> bool:
        last = self._logged_at.get(kind)
        return last is None or time.monotonic() - last >= _LOG_INTERVAL_BY_KIND.get(kind, _LOG_INTERVAL)

    def _log(self, kind: str, message: str) -> None:
        self._logged_at[kind] = time.monotonic()
        logger.log(logging.ERROR if kind == "auth" else logging.WARNING, "neatlogs exporter: %s", message)

    def _after_fork_in_child(self) -> None:
        # The parent's queue stays the parent's to send: the child starts empty, with its own
        # locks (one may have been held at fork time), thread and HTTP session.
        closed = self._stop_at is not None
        self._reset()
        self._spool_due = False  # the parent replays the spool; the child only once it spools itself
        if closed:
            self._stop_at = time.monotonic()


# ---- the process-wide registry ----

_registry_lock = threading.Lock()
_pipelines: dict[tuple[str, str | None], EndpointPipeline] = {}


def exporter_sink(settings: ExporterSettings) -> EndpointPipeline:
    """The sink for `settings.endpoint`/`settings.api_key`; records emitted to it are sent in the background.

    Sinks for the same (endpoint, api_key) share one queue and worker (created on first use); the first
    settings win. Raises ValueError when `settings.endpoint` is None.
    """
    if not settings.endpoint:
        raise ValueError("exporter_sink needs settings with an endpoint")
    key = (settings.endpoint, settings.api_key)
    with _registry_lock:
        pipeline = _pipelines.get(key)
        if pipeline is not None:
            if pipeline.settings != settings:
                logger.debug(
                    "neatlogs exporter for %s already exists; keeping its settings", settings.endpoint
                )
            return pipeline
        pipeline = _pipelines[key] = EndpointPipeline(settings)
    pipeline.start_if_spooled()
    return pipeline


def flush_all(timeout: float | None = None) -> bool:
    """Deliver everything enqueued so far on every endpoint; False if `timeout` seconds pass first."""
    drain_dispatcher()  # calls finished but not yet handed to their sinks
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    with _registry_lock:
        pipelines = list(_pipelines.values())
    targets = [(pipeline, pipeline.request_flush()) for pipeline in pipelines]
    ok = True
    for pipeline, target in targets:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ok = pipeline.wait_settled(target, remaining) and ok
    return ok


def shutdown_all(timeout: float | None = None) -> None:
    """Deliver what can be delivered within `timeout` (default: each endpoint's exit_timeout), spool or
    drop the rest, and stop every worker. Later records for those endpoints are dropped and counted."""
    drain_dispatcher()
    with _registry_lock:
        pipelines = list(_pipelines.values())
        _pipelines.clear()
    for pipeline in pipelines:
        pipeline.begin_shutdown(pipeline.settings.exit_timeout if timeout is None else timeout)
    for pipeline in pipelines:
        pipeline.finish_shutdown()


def exporter_stats() -> dict[str, int]:
    """Process-wide counters: enqueued, sent, dropped, failed, retried, queue_size (and spooled,
    spool_bad_files)."""
    drain_dispatcher()
    counts = _STATS.snapshot()
    with _registry_lock:
        queued = sum(pipeline.queue_size() for pipeline in _pipelines.values())
    return {
        "enqueued": counts["taken"] + queued,
        "sent": counts["sent"],
        "dropped": counts["dropped"],
        "failed": counts["failed"],
        "retried": counts["retried"],
        "queue_size": queued,
        "spooled": counts["spooled"],
        "spool_bad_files": counts["spool_bad_files"],
    }


def _at_exit() -> None:
    try:
        shutdown_all()
    except Exception:
        log_internal_error("exporter shutdown at exit")


def _after_fork_in_child() -> None:
    global _registry_lock, _STATS
    _registry_lock = threading.Lock()
    _STATS = _Stats()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
