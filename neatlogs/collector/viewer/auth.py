"""Sessions for the viewer's pages: a key typed once into a form becomes an opaque cookie.

The cookie holds a random token, never the key. Tokens live in this process's memory (a restart
logs everyone out) and remember which key made them, so a token made for one collector does not
open another in the same process, and a token stops working when its key is no longer accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Collection

from starlette.requests import Request

COOKIE = "neatlogs_session"
SESSION_SECONDS = 7 * 24 * 3600
# Logins beyond this many live sessions push out the oldest: memory stays bounded whatever happens.
_MAX_SESSIONS = 10_000

_lock = threading.Lock()
# sha256(token) -> (expires at, sha256(key)); insertion order is age order.
_sessions: dict[str, tuple[float, str]] = {}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def matching_key(key: str, api_keys: Collection[str]) -> str | None:
    """The accepted key equal to `key`, compared in constant time against every key."""
    found: str | None = None
    for candidate in api_keys:
        if hmac.compare_digest(key.encode(), candidate.encode()):
            found = candidate
    return found


def start_session(key: str) -> str:
    """A new session token for an accepted key (the caller checked it)."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    with _lock:
        for stale in [t for t, (expires, _) in _sessions.items() if expires <= now]:
            del _sessions[stale]
        while len(_sessions) >= _MAX_SESSIONS:
            del _sessions[next(iter(_sessions))]
        _sessions[_digest(token)] = (now + SESSION_SECONDS, _digest(key))
    return token


def end_session(request: Request) -> None:
    """Forget the request's session token, if it has one."""
    token = request.cookies.get(COOKIE)
    if token:
        with _lock:
            _sessions.pop(_digest(token), None)


def session_ok(request: Request, api_keys: Collection[str] | None) -> bool:
    """True when the request carries a live session made with one of `api_keys`."""
    if api_keys is None:
        return True
    token = request.cookies.get(COOKIE)
    if not token:
        return False
    with _lock:
        found = _sessions.get(_digest(token))
    if found is None or found[0] <= time.time():
        return False
    return any(hmac.compare_digest(found[1], _digest(key)) for key in api_keys)


def same_origin(request: Request) -> bool:
    """Whether a form post comes from one of our own pages (a guard against cross-site posts)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:  # every current browser sends it; it cannot be set by a page's script
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        # Browsers send Origin on every POST; its absence means a non-browser client, which
        # cannot ride on someone's cookie anyway.
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")
