"""A real loopback collector for exporter tests: stores records by id and fails on cue.

Every request is captured (path, headers, raw body, the status answered). Behaviours:
`fail_next(n, status, retry_after=...)`, `max_records` (413 above it), `required_key` (401 without it),
`refuse` (400 for a batch holding a record it picks, naming the first as `records[i]` as the real
collector does, or naming none with `name_refused = False`), `delay` (answer slowly), `down()` / `up()`
(close the port and reopen the same one).
"""

from __future__ import annotations

import collections
import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Captured:
    """One request as the collector saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a slow handler must not hold up down()/stop()
    collector: FakeCollector


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, headers, problem = self.server.collector._answer(self.path, dict(self.headers.items()), body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        payload = b'{"ok": true}' if status < 300 else json.dumps({"error": problem}).encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class FakeCollector:
    """`with FakeCollector() as c:` -> a collector on http://127.0.0.1:<port> (`c.url`)."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self.records: dict[str, dict[str, Any]] = {}
        self.deliveries: collections.Counter[str] = collections.Counter()
        self.requests: list[Captured] = []
        self._script: collections.deque[tuple[int, str | None]] = collections.deque()
        self.max_records: int | None = None
        self.required_key: str | None = None
        self.delay = 0.0
        self.refuse: Callable[[dict[str, Any]], bool] | None = None
        self.name_refused = True
        self._server: _Server | None = None
        self.port = port
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeCollector:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    # ---- cues ----

    def fail_next(self, n: int, status: int, retry_after: str | None = None) -> None:
        """Answer the next `n` requests with `status` (and a Retry-After header if given)."""
        with self._lock:
            self._script.extend([(status, retry_after)] * n)

    def down(self) -> None:
        """Close the port: connections are refused until `up()`."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def up(self) -> None:
        """Listen again, on the same port as before."""
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.collector = self
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server

    # ---- what arrived ----

    def ids(self) -> set[str]:
        with self._lock:
            return set(self.records)

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.requests]

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least `count` distinct records arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.records) >= count:
                    return True
            time.sleep(0.01)
        return False

    # ---- the handler's side ----

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], str]:
        if self.delay:
            time.sleep(self.delay)
        status, extra, problem = self._decide(path, headers, raw)
        with self._lock:
            self.requests.append(Captured(path, headers, raw, status))
        return status, extra, problem

    def _decide(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], str]:
        no = "fake collector says no"
        with self._lock:
            if self._script:
                status, retry_after = self._script.popleft()
                return status, ({"Retry-After": retry_after} if retry_after is not None else {}), no
        if path != "/v1/records":
            return 404, {}, no
        if self.required_key is not None and headers.get("Authorization") != f"Bearer {self.required_key}":
            return 401, {}, no
        try:
            data = gzip.decompress(raw) if headers.get("Content-Encoding") == "gzip" else raw
            records = json.loads(data)["records"]
        except (OSError, ValueError, KeyError, TypeError):
            return 400, {}, "body is not gzip'd JSON"
        if self.max_records is not None and len(records) > self.max_records:
            return 413, {}, no
        refuse = self.refuse
        if refuse is not None:
            for index, record in enumerate(records):
                if refuse(record):
                    return 400, {}, (f"records[{index}] is refused" if self.name_refused else no)
        with self._lock:
            for record in records:
                self.records[record["id"]] = record
                self.deliveries[record["id"]] += 1
        return 200, {}, ""
