"""Sinks that take records out of the process. None of them imports a provider SDK.

The public functions here are what the rest of neatlogs uses:

- `exporter_sink(settings)` -> a CallSink whose `emit(record)` only enqueues (never blocks, never raises).
  Each distinct (endpoint, api_key) gets one bounded queue and one lazily started daemon thread, so a
  slow collector never delays another endpoint (see docs/exporter.md).
- `flush_all(timeout)` -> bool, `shutdown_all(timeout)`, `exporter_stats()` -> dict.
"""

from __future__ import annotations

from neatlogs.sinks.exporter.batcher import exporter_sink, exporter_stats, flush_all, shutdown_all
from neatlogs.sinks.exporter.settings import ExporterSettings

__all__ = ["ExporterSettings", "exporter_sink", "exporter_stats", "flush_all", "shutdown_all"]
