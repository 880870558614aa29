"""Sinks that take records out of the process. None of them imports a provider SDK.

The public functions here are what the rest of neatlogs uses:

- `exporter_sink(settings)` -> a Sink whose `emit(record)` only enqueues (never blocks, never raises);
  one background worker per process serves every endpoint.
- `flush_all(timeout)` -> bool, `shutdown_all(timeout)`, `exporter_stats()` -> dict.
"""
