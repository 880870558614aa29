"""Remake the viewer's screenshots in docs/img/ (used by docs/viewer.md and the README).

    python scripts/screenshots.py            # needs the `demo` extra, playwright and Debian's chromium

Starts the fake OpenAI server and a collector on a temporary database, makes traced calls through
the real SDK and exporter (the demo's scenarios), adds copies of them spread over the last hour so
the list and the dashboard have something to show, then photographs each page in headless Chromium.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import openai
import requests

import neatlogs
from neatlogs._demo import _scenarios
from neatlogs._testing.fake_openai import FakeOpenAI
from neatlogs.collector import CollectorServer

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TAGS = [["checkout", "prod"], ["support-bot", "prod"], ["nightly-eval"], ["support-bot", "staging"]]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _traced_calls(url: str) -> str:
    """The demo's scenarios, traced and exported to the collector; returns their trace id."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    with FakeOpenAI() as fake:
        tracker = neatlogs.init(endpoint=url, tags=["checkout", "prod"], flush_interval=0.2, otel=False)
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-screenshots", max_retries=0)
        async_client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-screenshots", max_retries=0)
        with neatlogs.trace("checkout-assistant-7f3a91"):
            for _, run in _scenarios(client, async_client, fake):
                run()
        neatlogs.flush(timeout=10)
        tracker.stop_instrumenting()
        client.close()
    return "checkout-assistant-7f3a91"


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _history(url: str, seed_trace: str) -> None:
    """Copies of the real records, as if earlier traces had run over the last hour.

    A step is copied with everything inside it (new ids, the same shape, times stretched alike),
    so the copies' trees are whole: no step without its calls, no call whose step is missing.
    """
    rng = random.Random(7)
    real = requests.get(f"{url}/v1/records", params={"trace_id": seed_trace, "limit": 100}, timeout=10).json()
    records: list[dict[str, Any]] = real["records"]
    known = {record["id"] for record in records}
    inside: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        inside.setdefault(record.get("parent_id") or "", []).append(record)
    roots = [r for r in records if r.get("parent_id") is None or r.get("parent_id") not in known]
    now = datetime.now(timezone.utc)
    copies: list[dict[str, Any]] = []
    for n in range(24):
        kind = rng.choice(["support", "checkout", "eval", "search"])
        trace = f"{kind}-{uuid.UUID(int=rng.getrandbits(128)).hex[:10]}"
        start = now - timedelta(minutes=58 - n * 2.4, seconds=rng.random() * 30)
        tags = rng.choice(TAGS)
        for root in rng.sample(roots, min(len(roots), rng.randint(1, 4))):
            if root["status"] == "error" and rng.random() < 0.6:
                continue
            stretch = rng.uniform(8, 40)
            origin = _moment(root["started_at"])
            subtree, parents = [root], {root["id"]: None}
            for record in subtree:  # grows as it is walked: breadth first
                for kid in inside.get(record["id"], []):
                    if kid["id"] not in parents:
                        parents[kid["id"]] = record["id"]
                        subtree.append(kid)
            renamed = {record["id"]: uuid.uuid4().hex for record in subtree}
            for record in subtree:
                copy = dict(record, id=renamed[record["id"]], trace_id=trace, tags=tags)
                parent = parents[record["id"]]
                copy["parent_id"] = renamed[parent] if parent is not None else None
                began = start + (_moment(record["started_at"]) - origin) * stretch
                duration = record["duration_ms"] * stretch
                copy["started_at"] = _iso(began)
                copy["ended_at"] = _iso(began + timedelta(milliseconds=duration))
                copy["duration_ms"] = duration
                if copy.get("ttft_ms") is not None:
                    copy["ttft_ms"] = duration * rng.uniform(0.15, 0.4)
                copies.append(copy)
            start += timedelta(milliseconds=root["duration_ms"] * stretch + rng.uniform(5, 200))
    requests.post(f"{url}/v1/records", json={"records": copies}, timeout=10).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"), help="where the PNGs go")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        CollectorServer(Path(tmp) / "shots.db", api_keys=None) as server,
    ):
        trace = _traced_calls(server.url)
        _history(server.url, trace)
        records = requests.get(f"{server.url}/v1/records", params={"trace_id": trace}, timeout=10).json()
        by_kind = {}
        for record in records["records"]:
            if record.get("kind") == "span":
                # The demo's steps (once its scenarios use neatlogs.observe): a tool's page if any.
                if record.get("operation") == "tool" or "step" not in by_kind:
                    by_kind["step"] = record["id"]
            elif record["status"] == "error":
                by_kind["error"] = record["id"]
            elif record.get("prompt") and any(
                m.get("role") == "tool" for m in record["prompt"] if isinstance(m, dict)
            ):
                by_kind["tools"] = record["id"]
        shots = {
            "viewer-traces.png": ("/", None),
            "viewer-trace.png": (f"/traces/{trace}", None),
            "viewer-call.png": (f"/records/{by_kind['tools']}", None),
            "viewer-error.png": (f"/records/{by_kind['error']}", None),
            "viewer-dashboard.png": ("/dashboard?range=1h", "#chart-calls svg"),
        }
        if "step" in by_kind:
            shots["viewer-step.png"] = (f"/records/{by_kind['step']}", None)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 860}, device_scale_factor=1)
            for name, (path, ready) in shots.items():
                page.goto(server.url + path)
                if ready:
                    page.locator(ready).wait_for()
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(out / name), full_page=False)
                print(f"wrote {out / name}")
            browser.close()
    neatlogs.shutdown(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
