"""`neatlogs serve`: the ingest endpoint, its SQLite store and the query API.

`RecordStore` needs only the standard library; the HTTP parts need the `server` extra
(starlette, uvicorn) and are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from neatlogs.collector.store import RecordStore

if TYPE_CHECKING:
    from neatlogs.collector.app import create_app
    from neatlogs.collector.server import CollectorServer, serve

__all__ = ["CollectorServer", "RecordStore", "create_app", "serve"]

_LAZY = {"create_app": ".app", "CollectorServer": ".server", "serve": ".server"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
