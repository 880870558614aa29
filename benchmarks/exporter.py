"""Exporter benchmark: end-to-end throughput, caller-side emit cost, and memory with the collector down.

    .venv/bin/python benchmarks/exporter.py [--records 50000]

1. records/s from `emit` to rows in the real collector's SQLite store (neatlogs serve, in-process);
   (median and range of --runs runs: the collector's SQLite commits make single runs noisy);
2. ns per `emit` on the caller's thread (median of several runs), accepting and when the queue is full;
3. RSS across 200,000 emits while the collector is down and the queue is bounded.
Prints a markdown table. Targets: >= 20,000 records/s, emit <= 2 us, RSS flat within 10 MB.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_REPO))

from neatlogs.collector.server import CollectorServer  # noqa: E402
from neatlogs.record.call import CallRecord  # noqa: E402
from neatlogs.sinks.exporter import (  # noqa: E402
    ExporterSettings,
    exporter_sink,
    exporter_stats,
    flush_all,
    shutdown_all,
)

_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that answers briefly."},
    {"role": "user", "content": "What is the capital of France, and why is it famous?"},
]


def _reader(record: CallRecord) -> dict[str, Any]:
    # A chat call's fields, about the size of a real short exchange (~1 KB of JSON).
    return {
        "model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "request": {
            "model": "gpt-4o-mini",
            "messages": _MESSAGES,
            "temperature": 0.2,
            "n": record.request["n"],
        },
        "prompt": _MESSAGES,
        "completion": {"role": "assistant", "content": "Paris: the Eiffel Tower, the Louvre, and its cafes."},
        "choices": [{"role": "assistant", "content": "Paris: the Eiffel Tower, the Louvre, and its cafes."}],
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 31, "completion_tokens": 14, "total_tokens": 45},
    }


def _record(n: int) -> CallRecord:
    record = CallRecord("openai", "chat", _reader, request={"n": n}, stream=False)
    record.t_end = record.t_start + 350_000_000
    return record


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # peak, KB on Linux, bytes on macOS
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


_COLLECTOR_PROCESS = """
import sys
from neatlogs.collector.server import CollectorServer
with CollectorServer(sys.argv[1]) as server:
    print(server.url, flush=True)
    for line in sys.stdin:  # each line asks for the stored count; EOF stops the collector
        print(server.store.count(), flush=True)
"""


class _CollectorProcess:
    """The real collector (`CollectorServer`) in its own process, as it runs in production."""

    def __init__(self, db_path: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _COLLECTOR_PROCESS, str(db_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(_REPO)},
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        self.url = self._stdout.readline().strip()

    def count(self) -> int:
        self._stdin.write("count\n")
        self._stdin.flush()
        return int(self._stdout.readline())

    def close(self) -> None:
        self._stdin.close()
        self._proc.wait(30)


def _run_end_to_end(url: str, count: Callable[[], int], total: int, batch_size: int) -> float:
    settings = ExporterSettings.resolve(endpoint=url, max_queue_size=total, batch_size=batch_size)
    sink = exporter_sink(settings)
    records = [_record(n) for n in range(total)]
    started = time.perf_counter()
    for record in records:
        sink.emit(record)
    if not flush_all(300):
        raise SystemExit("end-to-end: flush timed out")
    while count() < total:
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    shutdown_all(5)
    return total / elapsed


def end_to_end(total: int, batch_size: int, in_process: bool) -> float:
    """Records per second from the first emit until the collector's SQLite store holds them all."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        if in_process:  # the collector shares this process's GIL: a worst case
            with CollectorServer(db) as server:
                return _run_end_to_end(server.url, server.store.count, total, batch_size)
        collector = _CollectorProcess(db)
        try:
            return _run_end_to_end(collector.url, collector.count, total, batch_size)
        finally:
            collector.close()


def emit_cost(runs: int = 9, per_run: int = 5_000) -> tuple[float, float]:
    """Median ns per emit: (accepted into the queue with a live worker, dropped because the queue is full)."""
    with tempfile.TemporaryDirectory() as tmp, CollectorServer(Path(tmp) / "emit.db") as server:
        sink = exporter_sink(ExporterSettings.resolve(endpoint=server.url, max_queue_size=per_run * 2))
        accepted = []
        for _ in range(runs):
            records = [_record(n) for n in range(per_run)]
            started = time.perf_counter_ns()
            for record in records:
                sink.emit(record)
            accepted.append((time.perf_counter_ns() - started) / per_run)
            flush_all(30)
        shutdown_all(5)
    full = exporter_sink(ExporterSettings.resolve(endpoint=_closed_port_url(), max_queue_size=100))
    dropped = []
    records = [_record(n) for n in range(per_run)]
    for record in records[:100]:
        full.emit(record)
    for _ in range(runs):
        started = time.perf_counter_ns()
        for record in records:
            full.emit(record)
        dropped.append((time.perf_counter_ns() - started) / per_run)
    shutdown_all(0)
    return statistics.median(accepted), statistics.median(dropped)


def rss_with_collector_down(total: int = 200_000, queue: int = 10_000) -> tuple[float, float, float]:
    """RSS (MB) after filling the queue, after `total` emits, and the queue size reported at the end."""
    sink = exporter_sink(
        ExporterSettings.resolve(endpoint=_closed_port_url(), max_queue_size=queue, retry_deadline=600)
    )
    for n in range(queue * 2):  # fill the queue and warm allocator pools
        sink.emit(_record(n))
    warm = _rss_mb()
    for n in range(total):
        sink.emit(_record(n))
    end = _rss_mb()
    queued = exporter_stats()["queue_size"]
    shutdown_all(0)
    return warm, end, queued


def _json_library() -> str:
    """Which encoder/parser the exporter and the collector use: orjson with the `speedups` extra."""
    try:
        import orjson
    except ImportError:
        return "stdlib json (install neatlogs[speedups] for orjson)"
    return f"orjson {orjson.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="records per end-to-end run")
    parser.add_argument("--runs", type=int, default=3, help="end-to-end runs per row (median, range)")
    args = parser.parse_args()

    logging.getLogger("neatlogs").setLevel(logging.ERROR)  # the collector-down runs warn by design

    def rates(batch_size: int, in_process: bool) -> tuple[float, str]:
        got = sorted(end_to_end(args.records, batch_size, in_process) for _ in range(args.runs))
        return statistics.median(
            got
        ), f"{statistics.median(got):,.0f} records/s ({got[0]:,.0f}-{got[-1]:,.0f})"

    rate_100, shown_100 = rates(100, in_process=False)
    rate_500, shown_500 = rates(500, in_process=False)
    _, shown_same = rates(100, in_process=True)
    accept_ns, drop_ns = emit_cost()
    warm, end, queued = rss_with_collector_down()

    rows = [
        ("end to end, batch_size=100 (default)", shown_100, ">= 20,000", rate_100 >= 20_000),
        ("end to end, batch_size=500", shown_500, ">= 20,000", rate_500 >= 20_000),
        ("end to end, collector in the same process", shown_same, "(shares the GIL)", True),
        ("emit, accepted (median)", f"{accept_ns:,.0f} ns", "<= 2,000 ns", accept_ns <= 2_000),
        ("emit, queue full (median)", f"{drop_ns:,.0f} ns", "<= 2,000 ns", drop_ns <= 2_000),
        (
            "RSS, 200,000 emits, collector down",
            f"{warm:.1f} -> {end:.1f} MB ({end - warm:+.1f}); queue {queued:,}",
            "within 10 MB",
            abs(end - warm) <= 10,
        ),
    ]
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, JSON: {_json_library()}; end to end: "
        f"median (min-max) of {args.runs} runs of {args.records:,} records, the collector in its own "
        "process unless noted\n"
    )
    print("| measure | result | target | ok |")
    print("|---|---|---|---|")
    for name, result, target, ok in rows:
        print(f"| {name} | {result} | {target} | {'yes' if ok else 'NO'} |")


if __name__ == "__main__":
    main()
