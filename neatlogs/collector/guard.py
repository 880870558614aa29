"""Who may talk to the collector: the Host and Origin checks, the ingest Content-Type, loopback binds.

Browsers are the threat here: a web page can POST to 127.0.0.1 (a "simple" request needs no
permission), and a page whose name is made to resolve to 127.0.0.1 (DNS rebinding) can read the
answers. Pages send an `Origin` header on such requests and the name they used in `Host`; our own
clients (the exporter, curl, scripts) send no `Origin`.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_name(host: str) -> bool:
    """True for `localhost`, `*.localhost`, 127.0.0.0/8 and ::1 (brackets and a final dot allowed)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def binds_loopback_only(host: str) -> bool:
    """True when listening on `host` (resolved as the collector binds it) reaches this machine only."""
    try:
        found = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return False  # binding will fail anyway, with its own message
    return bool(found) and is_loopback_name(str(found[0][4][0]))


def _split_host(value: str) -> tuple[str, int | None] | None:
    """(lower-case name, port or None) of a Host header value; None if it cannot be read."""
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:
        return None
    name = (parts.hostname or "").rstrip(".")
    return (name, port) if name else None


def _split_origin(value: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    name = (parts.hostname or "").rstrip(".")
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if not name or (port is None and default is None):
        return None  # "null" (sandboxed frames, file:// pages) and anything unreadable
    return name, port if port is not None else default  # type: ignore[return-value]


def is_same_origin(origin: str, host: str | None) -> bool:
    """True when the page that sent `Origin` was served from the `Host` the request is addressed to."""
    if host is None:
        return False
    page, target = _split_origin(origin), _split_host(host)
    if page is None or target is None:
        return False
    # Behind a proxy the Host may carry no port while the page's origin has its scheme's default.
    return page[0] == target[0] and (target[1] is None or page[1] == target[1])


def refusal(host: str | None, origin: str | None, loopback_only: bool) -> str | None:
    """Why a request must be refused (a message for the client), or None to let it through."""
    if loopback_only and host is not None:
        target = _split_host(host)
        if target is None or not is_loopback_name(target[0]):
            return (
                f"refused: the Host {host!r} is not a loopback name or address. Without authentication "
                "(--no-auth) the collector only answers requests addressed to localhost, 127.0.0.1 or "
                "[::1], so a web page cannot reach it through DNS rebinding; use one of those, or run "
                "the collector with --api-key."
            )
    if origin is not None and not is_same_origin(origin, host):
        return (
            f"refused: a cross-origin request from a web page ({origin!r}); the collector only answers "
            "pages it serves itself and clients that send no Origin header."
        )
    return None


def json_content_type_problem(content_type: str | None) -> str | None:
    """What is wrong with an ingest request's Content-Type, or None if it is application/json."""
    if content_type is None or not content_type.strip():
        return "missing Content-Type: send the batch with 'Content-Type: application/json'"
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return f"Content-Type must be application/json, got {content_type.strip()!r}"
    return None


class RequestGuard:
    """ASGI middleware answering 403 to cross-origin requests and, if `loopback_only`, to foreign Hosts."""

    def __init__(self, app: ASGIApp, loopback_only: bool) -> None:
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        problem = refusal(host, origin, self.loopback_only)
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": problem}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
