"""Where span records go: the recorder of every active tracker and stand-alone provider.

A span belongs to no SDK, so it cannot follow a provider's patches; trackers and providers add a
recorder here when they start tracing and remove it when they stop. The tuple is replaced on
change, so readers take no lock.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from neatlogs.dispatch import Recorder

_lock = threading.Lock()
ROUTE: tuple[Recorder, ...] = ()


def add(recorder: Recorder) -> None:
    """Send span records to `recorder` from now on (idempotent)."""
    global ROUTE
    with _lock:
        if recorder not in ROUTE:
            ROUTE = (*ROUTE, recorder)


def remove(recorder: Recorder) -> None:
    """Stop sending span records to `recorder`."""
    global ROUTE
    with _lock:
        ROUTE = tuple(r for r in ROUTE if r is not recorder)


def current() -> tuple[Recorder, ...]:
    """The recorders a span ending now goes to."""
    return ROUTE
