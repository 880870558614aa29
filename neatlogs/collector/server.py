"""Running the collector: in-process on a background thread, or in the foreground for the CLI."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from neatlogs.collector.app import DEFAULT_MAX_BODY_BYTES, create_app
from neatlogs.collector.guard import binds_loopback_only
from neatlogs.collector.store import RecordStore

_START_TIMEOUT = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one); raises OSError if taken."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening before uvicorn starts means a client told the URL can connect at once.
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def unauthenticated_network_problem(host: str) -> str | None:
    """Why serving on `host` without authentication is refused, or None if `host` is loopback only."""
    if binds_loopback_only(host):
        return None
    return (
        f"refusing to listen on {host} without authentication: anyone on the network could read and "
        "write records. Give API keys (--api-key), listen on 127.0.0.1, or, on a network you trust, "
        "add --allow-unauthenticated-network."
    )


def address_of(sock: socket.socket) -> str:
    """The address a socket is bound to, as host:port ("0.0.0.0:7077", "[::]:7077")."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def url_of(sock: socket.socket) -> str:
    """The http:// base URL a local client should use to reach a socket bound by `bind`."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _config(app: Starlette, own_logging: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # In-process, leave the host application's logging configuration alone.
        log_config=uvicorn.config.LOGGING_CONFIG if own_logging else None,
        timeout_graceful_shutdown=5,
    )


class CollectorServer:
    """The collector on a background thread; `with CollectorServer(path) as server: server.url`."""

    def __init__(
        self,
        db_path: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: set[str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        allow_unauthenticated_network: bool = False,
    ) -> None:
        if api_keys is None and not allow_unauthenticated_network:
            problem = unauthenticated_network_problem(host)
            if problem is not None:
                raise ValueError(problem)
        self.host = host
        self.port = port
        self.store = RecordStore(db_path)
        self._app = create_app(self.store, api_keys, max_body_bytes, allow_unauthenticated_network)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. "http://127.0.0.1:54321" (available once started)."""
        if self._url is None:
            raise RuntimeError("the collector is not started; call start() first")
        return self._url

    def start(self) -> CollectorServer:
        """Bind, start serving on a daemon thread, and return once requests are being answered."""
        if self._thread is not None:
            return self
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(_config(self._app, own_logging=False))
        thread = threading.Thread(
            target=self._run, args=(server, sock), name="neatlogs-collector", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        self._wait_started(server, thread, sock)
        self._url = url_of(sock)
        return self

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit included: uvicorn exits on startup failure
            self._failure = exc
        finally:
            sock.close()

    def _wait_started(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the collector did not start: {self._failure!r}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving, wait for in-flight requests, and close the store. Idempotent."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=_START_TIMEOUT)
        self._server = self._thread = None
        self.store.close()

    def __enter__(self) -> CollectorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    host: str,
    port: int,
    db_path: str | Path,
    api_keys: set[str] | None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    on_listening: Callable[[str, str], None] | None = None,
    allow_unauthenticated_network: bool = False,
) -> None:
    """Run the collector in the foreground until Ctrl-C/SIGTERM.

    `on_listening(url, address)` is called once bound: the URL local clients should use and the
    address actually listened on (they differ for 0.0.0.0). The store is opened (and its write
    check done) before binding; a StorageError or OSError means the collector did not start.
    """
    store = RecordStore(db_path)
    try:
        sock = bind(host, port)
        try:
            if on_listening is not None:
                on_listening(url_of(sock), address_of(sock))
            app = create_app(store, api_keys, max_body_bytes, allow_unauthenticated_network)
            uvicorn.Server(_config(app, own_logging=True)).run(sockets=[sock])
        finally:
            sock.close()
    finally:
        store.close()
