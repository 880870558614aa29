"""Process-wide usage statistics: calls, errors by type, tokens, cost, latency percentiles, rate limits.

Every finished call is counted once, sampled out or not: the dispatcher hands each batch of finished
calls to `USAGE_STATS.count` on its thread. Each call's tally (usage and model, read from the SDK objects
by the provider's quick reader, so nothing is converted) is added up per model; the process totals are
summed from the models' when asked.
"""

from __future__ import annotations

import math
import os
import random
import threading
from typing import TYPE_CHECKING, Any

from neatlogs._log import log_internal_error

if TYPE_CHECKING:
    from neatlogs.record.call import CallRecord, Tally

# Latency samples kept per model (a uniform reservoir: exact percentiles up to this many calls).
_RESERVOIR_SIZE = 1024


class _Reservoir:
    """A bounded uniform sample of a stream of numbers (Vitter's algorithm R)."""

    __slots__ = ("_rng", "seen", "values")

    def __init__(self, rng: random.Random) -> None:
        self.values: list[float] = []
        self.seen = 0
        self._rng = rng

    def add(self, value: float) -> None:
        self.seen += 1
        values = self.values
        if len(values) < _RESERVOIR_SIZE:
            values.append(value)
            return
        slot = int(self._rng.random() * self.seen)  # uniform in [0, seen): keep with probability size/seen
        if slot < _RESERVOIR_SIZE:
            values[slot] = value

    def percentiles(self) -> dict[str, float | None]:
        ordered = sorted(self.values)
        if not ordered:
            return {"p50": None, "p95": None}

        def rank(q: float) -> float:  # nearest rank
            return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)

        return {"p50": rank(0.50), "p95": rank(0.95)}


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

    def add(self, record: CallRecord, tally: Tally) -> float:
        """Count one call: its status and timings from the record, its tokens and cost from `tally`;
        returns its duration in milliseconds."""
        self.calls += 1
        status = record.status
        if status == "error":
            kind = type(record.error).__name__ if record.error is not None else "Error"
            self.errors[kind] = self.errors.get(kind, 0) + 1
        elif status == "incomplete":
            self.incomplete += 1
        usage, cost = tally.usage, tally.cost_usd
        prompt, completion, cached, reasoning = tally.counts
        if prompt is not None or completion is not None:
            prompt, completion = prompt or 0, completion or 0
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            self.cached_tokens += cached
            self.reasoning_tokens += reasoning
            total = usage.get("total_tokens") if usage is not None else None
            self.total_tokens += total if type(total) is int and total > 0 else prompt + completion
            if cost is None:
                self.unpriced_calls += 1  # tokens were used but the model has no price
        if cost is not None:
            self.cost_usd += cost
        t_end = record.t_end
        start = record.t_start
        duration = ((t_end if t_end is not None else start) - start) / 1e6
        self.latency.add(duration)
        t_first = record.t_first
        if t_first is not None:
            self.ttft.add((t_first - start) / 1e6)
        return duration

    def set_rate_limit(self, limits: dict[str, Any] | None) -> None:
        if limits:
            remaining = {
                name: limits[key]
                for name, key in (("requests", "remaining_requests"), ("tokens", "remaining_tokens"))
                if isinstance(limits.get(key), int)
            }
            if remaining:
                self.rate_limit = remaining

    def absorb(self, other: _Totals) -> None:
        """Add another model's counts (for the process totals, computed when asked)."""
        self.calls += other.calls
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        self.incomplete += other.incomplete
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.cached_tokens += other.cached_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cost_usd += other.cost_usd
        self.unpriced_calls += other.unpriced_calls

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
    """The process-wide aggregate. The dispatcher hands it every finished call once (`count`), in
    batches, off the caller's thread; `snapshot` is the reader's side."""

    sees_every_call = True

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            # A forked child counts its own calls.
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()  # guards the totals
        self._rng = random.Random()
        self._latency = _Reservoir(self._rng)  # every call's, for the process totals
        self._models: dict[str, _Totals] = {}
        self._uncounted = 0

    def count_uncounted(self) -> None:
        """One call finished that could not be queued for counting (the dispatcher was full)."""
        with self._lock:
            self._uncounted += 1

    def count(self, batch: list[CallRecord]) -> None:
        """Add up a batch of finished calls (dispatcher's thread)."""
        models = self._models
        # Rate limits: only the latest call's per model matter, so a batch reads one each.
        latest: dict[str, CallRecord] = {}
        with self._lock:
            for record in batch:
                if record.span is not None:  # a step, not an LLM call: nothing to count
                    continue
                try:
                    tally = record.tally()
                    model = tally.model
                    totals = models.get(model)
                    if totals is None:
                        totals = models[model] = _Totals(self._rng)
                    self._latency.add(totals.add(record, tally))
                    latest[model] = record
                except Exception:
                    log_internal_error("counting a call in the usage statistics")
            for model, record in latest.items():
                try:
                    models[model].set_rate_limit(record.rate_limit())
                except Exception:
                    log_internal_error("reading rate limits for the usage statistics")

    def snapshot(self) -> dict[str, Any]:
        """The statistics of every call counted so far (`neatlogs.stats()` drains the dispatcher first)."""
        with self._lock:
            total = _Totals(self._rng)
            for totals in self._models.values():
                total.absorb(totals)
            total.latency = self._latency
            result = total.snapshot(per_model=False)
            result["uncounted"] = self._uncounted
            result["by_model"] = {
                model: t.snapshot(per_model=True) for model, t in sorted(self._models.items())
            }
        return result


USAGE_STATS = UsageStats()
