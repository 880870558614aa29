"""Viewer benchmark: latency of the collector's query API (and viewer pages, when present) on a big store.

    .venv/bin/python benchmarks/make_store.py /tmp/neatlogs-1m.db          # once: 1,000,000 records
    .venv/bin/python benchmarks/viewer.py /tmp/neatlogs-1m.db [--rounds 40]

The real collector runs in its own process on the file; each query is sent --rounds times over HTTP
(after two warm-up requests) and its median and p95 are reported, client-side (loopback HTTP included).
Prints a markdown table with the targets, and the database's size per record.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

_REPO = Path(__file__).resolve().parent.parent

_COLLECTOR_PROCESS = """
import sys
from neatlogs.collector.server import CollectorServer
with CollectorServer(sys.argv[1]) as server:
    print(server.url, flush=True)
    sys.stdin.read()  # EOF stops the collector
"""


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _time(
    session: requests.Session, url: str, params: dict[str, Any], rounds: int
) -> tuple[float, float, int]:
    """(median ms, p95 ms, bytes of the answer) of GET url."""
    times: list[float] = []
    size = 0
    for n in range(rounds + 2):
        started = time.perf_counter()
        answer = session.get(url, params=params, timeout=120)
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status_code != 200:
            raise SystemExit(f"{url} {params}: {answer.status_code} {answer.text[:300]}")
        size = len(answer.content)
        if n >= 2:
            times.append(elapsed)
    return statistics.median(times), _p95(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a store written by benchmarks/make_store.py")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    facts = json.loads(Path(str(args.path) + ".json").read_text())
    until = datetime.fromisoformat(facts["until"].replace("Z", "+00:00"))

    process = subprocess.Popen(
        [sys.executable, "-c", _COLLECTOR_PROCESS, str(args.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(_REPO)},
    )
    assert process.stdin is not None and process.stdout is not None
    url = process.stdout.readline().strip()
    session = requests.Session()
    try:
        model = session.get(f"{url}/v1/facets", timeout=60).json()["models"][5]
        one = session.get(f"{url}/v1/records", params={"limit": 1}, timeout=60).json()["records"][0]["id"]
        day = {"since": _iso(until - timedelta(days=1)), "until": _iso(until)}
        week = {"since": _iso(until - timedelta(days=7)), "until": _iso(until)}
        big = facts["big_trace"]
        queries: list[tuple[str, str, dict[str, Any], float | None]] = [
            ("/v1/traces (no filter)", "/v1/traces", {"limit": 50}, 100),
            (
                f"/v1/traces model={model} status=error",
                "/v1/traces",
                {"limit": 50, "model": model, "status": "error"},
                100,
            ),
            ("/v1/records (no filter)", "/v1/records", {"limit": 50}, None),
            (
                f"/v1/records model={model} status=error",
                "/v1/records",
                {"limit": 50, "model": model, "status": "error"},
                None,
            ),
            ("/v1/records q=<word in 0.1%>", "/v1/records", {"limit": 50, "q": facts["canary"]}, 200),
            ("/v1/traces q=<word in 0.1%>", "/v1/traces", {"limit": 50, "q": facts["canary"]}, 200),
            ("/v1/stats, 24 h", "/v1/stats", day, 500),
            ("/v1/stats, 7 d", "/v1/stats", week, 500),
            ("/v1/records trace_id=<200 calls>", "/v1/records", {"trace_id": big, "limit": 1000}, 150),
            ("/v1/records/{id}", f"/v1/records/{one}", {}, None),
            ("/v1/traces/{id} (200 calls, tree)", f"/v1/traces/{big}", {}, 150),
            (
                "/v1/records parent_id=<agent of 200 calls>",
                "/v1/records",
                {"parent_id": facts.get("big_agent") or "none", "limit": 50},
                100,
            ),
            ("/v1/records kind=span", "/v1/records", {"kind": "span", "limit": 50}, None),
            ("/v1/facets", "/v1/facets", {}, None),
        ]
        # The viewer's pages, once they exist (issue 18's other half).
        for name, path, target in (
            ("/ (traces page)", "/", 100),
            ("/traces/{id} (200 calls)", f"/traces/{big}", 150),
            ("/records/{agent span} (step page)", f"/records/{facts.get('big_agent') or 'none'}", 150),
        ):
            if session.get(url + path, timeout=60).status_code == 200:
                queries.insert(0, (name, path, {}, target))
        rows = []
        for name, path, params, target in queries:
            median, p95, size = _time(session, url + path, params, args.rounds)
            ok = "" if target is None else ("yes" if p95 <= target else "NO")
            rows.append((name, median, p95, size, target, ok))
    finally:
        process.stdin.close()
        process.wait(30)

    files = [Path(str(args.path) + suffix) for suffix in ("", "-wal")]
    size = sum(file.stat().st_size for file in files if file.exists())
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"{facts['records']:,} records ({facts.get('spans', 0):,} of them spans) in "
        f"{facts['traces']:,} traces; {args.rounds} requests per row\n"
    )
    print("| request | median | p95 | answer | target (p95) | ok |")
    print("|---|---|---|---|---|---|")
    for name, median, p95, answer, target, ok in rows:
        goal = f"<= {target:.0f} ms" if target is not None else ""
        print(f"| {name} | {median:.1f} ms | {p95:.1f} ms | {answer / 1024:,.0f} KiB | {goal} | {ok} |")
    print(
        f"\ndatabase: {size / 1e9:.2f} GB, {size / facts['records']:,.0f} bytes per record "
        f"(generated in {facts['seconds']:.0f} s, "
        f"{facts['records'] / facts['seconds']:,.0f} records/s through RecordStore.add)"
    )


if __name__ == "__main__":
    main()
