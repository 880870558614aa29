"""Process-wide usage statistics: calls, errors by type, tokens, cost, latency percentiles, rate limits.

Every finished call is observed once, sampled out or not. The caller's thread only appends the record to a
queue; a daemon thread (`neatlogs-stats`) reads each record's facts (which runs the provider's reader once,
the same conversion the history and the exporter use) and adds them up per model. `snapshot()` first
counts whatever is still queued, so `neatlogs.stats()` includes every call finished before it.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ._log import log_internal_error
from ._pricing import token_counts

if TYPE_CHECKING:
    from ._record import CallRecord

# Latency samples kept per model (a uniform reservoir: exact percentiles up to this many calls).
_RESERVOIR_SIZE = 1024
# Records waiting to be counted; beyond this (the worker cannot keep up) calls are counted as uncounted.
_MAX_PENDING = 100_000
# After a wake-up the worker waits this long so that it counts records in batches.
_BATCH_DELAY = 0.2


class _Reservoir:
    """A bounded uniform sample of a stream of numbers (Vitter's algorithm R)."""

    __slots__ = ("_rng", "seen", "values")

    def __init__(self, rng: random.Random) -> None:
        self.values: list[float] = []
        self.seen = 0
        self._rng = rng

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < _RESERVOIR_SIZE:
            self.values.append(value)
            return
        slot = self._rng.randrange(self.seen)
        if slot < _RESERVOIR_SIZE:
            self.values[slot] = value

    def percentiles(self) -> dict[str, float | None]:
        ordered = sorted(self.values)
        if not ordered:
            return {"p50": None, "p95": None}

        def rank(q: float) -> float:  # nearest rank
            return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)

        return {"p50": rank(0.50), "p95": rank(0.95)}


def _integer(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class _Totals:
    """Counts for one model (or all of them)."""

    __slots__ = (
        "cached_tokens",
        "calls",
        "completion_tokens",
        "cost_usd",
        "errors",
        "incomplete",
        "latency",
        "prompt_tokens",
        "rate_limit",
        "reasoning_tokens",
        "total_tokens",
        "ttft",
        "unpriced_calls",
    )

    def __init__(self, rng: random.Random) -> None:
        self.calls = 0
        self.errors: dict[str, int] = {}
        self.incomplete = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.total_tokens = 0
        self.cached_tokens = 0
        self.reasoning_tokens = 0
        self.cost_usd = 0.0
        self.unpriced_calls = 0
        self.latency = _Reservoir(rng)
        self.ttft = _Reservoir(rng)
        self.rate_limit: dict[str, int] | None = None

    def add(self, facts: dict[str, Any]) -> None:
        self.calls += 1
        status = facts.get("status")
        if status == "error":
            kind = str(facts.get("error_type") or "Error")
            self.errors[kind] = self.errors.get(kind, 0) + 1
        elif status == "incomplete":
            self.incomplete += 1
        counts = facts.get("tokens")  # token_counts(usage), when whoever made the facts had it already
        prompt, completion, cached, reasoning = (
            counts if counts is not None else token_counts(facts.get("usage"))
        )
        self.prompt_tokens += prompt or 0
        self.completion_tokens += completion or 0
        self.cached_tokens += cached
        self.reasoning_tokens += reasoning
        usage = facts.get("usage") or {}
        total = _integer(usage.get("total_tokens")) or (prompt or 0) + (completion or 0)
        self.total_tokens += total
        cost = facts.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            self.cost_usd += cost
        elif prompt is not None or completion is not None:
            self.unpriced_calls += 1  # tokens were used but the model has no price
        duration = facts.get("duration_ms")
        if isinstance(duration, (int, float)):
            self.latency.add(float(duration))
        ttft = facts.get("ttft_ms")
        if isinstance(ttft, (int, float)):
            self.ttft.add(float(ttft))
        limits = facts.get("rate_limit")
        if isinstance(limits, dict):
            remaining = {
                name: limits[key]
                for name, key in (("requests", "remaining_requests"), ("tokens", "remaining_tokens"))
                if isinstance(limits.get(key), int)
            }
            if remaining:
                self.rate_limit = remaining

    def snapshot(self, per_model: bool) -> dict[str, Any]:
        result: dict[str, Any] = {
            "calls": self.calls,
            "errors": dict(self.errors),
            "incomplete": self.incomplete,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": round(self.cost_usd, 10),
            "unpriced_calls": self.unpriced_calls,
            "latency_ms": self.latency.percentiles(),
        }
        if per_model:
            result["ttft_ms"] = self.ttft.percentiles()
            result["rate_limit_remaining"] = dict(self.rate_limit) if self.rate_limit else None
        return result


class UsageStats:
    """The process-wide aggregate; `observe` is the caller's side, `snapshot` the reader's."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            # A forked child counts its own calls; the parent's queue and thread are not its own.
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._pending: deque[CallRecord] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._count_lock = threading.Lock()  # one thread counts at a time, in arrival order
        self._lock = threading.Lock()  # guards the totals
        self._rng = random.Random()
        self._total = _Totals(self._rng)
        self._models: dict[str, _Totals] = {}
        self._uncounted = 0

    def observe(self, record: CallRecord) -> None:
        """Queue a finished call to be counted (caller's thread: an append and a flag check)."""
        pending = self._pending
        if len(pending) >= _MAX_PENDING:
            with self._lock:
                self._uncounted += 1
            return
        pending.append(record)
        if self._thread is None:
            self._start()
        elif not self._wake.is_set():
            self._wake.set()

    def snapshot(self) -> dict[str, Any]:
        """The statistics so far, every call observed before this one included."""
        self._count_pending()
        with self._lock:
            result = self._total.snapshot(per_model=False)
            result["uncounted"] = self._uncounted
            result["by_model"] = {
                model: t.snapshot(per_model=True) for model, t in sorted(self._models.items())
            }
        return result

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="neatlogs-stats", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: snapshot() still counts the queue
                return
            self._thread = thread
        self._wake.set()

    def _run(self) -> None:
        wake = self._wake
        while True:
            wake.wait()
            time.sleep(_BATCH_DELAY)
            wake.clear()
            try:
                self._count_pending()
            except Exception:
                log_internal_error("counting usage statistics")

    def _count_pending(self) -> None:
        pending = self._pending
        with self._count_lock:
            while pending:
                record = pending.popleft()
                try:
                    facts = record.facts()
                except Exception:
                    log_internal_error("reading a record for usage statistics")
                    continue
                model = str(facts.get("model") or "unknown")
                with self._lock:
                    self._total.add(facts)
                    totals = self._models.get(model)
                    if totals is None:
                        totals = self._models[model] = _Totals(self._rng)
                    totals.add(facts)


USAGE = UsageStats()


def usage_stats() -> dict[str, Any]:
    """Process-wide usage figures (see `neatlogs.stats()`)."""
    return USAGE.snapshot()
