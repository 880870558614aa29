"""Process-wide, reversible patches for one SDK, shared by every recorder that traces it."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

import wrapt

from neatlogs._log import logger
from neatlogs.dispatch import Recorder

# (owner class or module, attribute name, wrapper factory taking the PatchSet)
_INHERITED = object()
Target = tuple[Any, str, Callable[["PatchSet"], Callable[..., Any]]]


class PatchSet:
    """Installs its wrappers when the first recorder subscribes and restores the originals with the last.

    Wrappers read `recorders` on every call; it is a tuple replaced on change, so the hot path
    takes no lock.
    """

    def __init__(self, name: str, targets: Callable[[], list[Target]]) -> None:
        self.name = name
        self.recorders: tuple[Recorder, ...] = ()
        self._targets = targets
        self._originals: list[tuple[Any, str, Any]] = []
        self._lock = threading.Lock()

    def subscribe(self, recorder: Recorder) -> None:
        with self._lock:
            if recorder in self.recorders:
                return
            if not self._originals:
                self._install()
            self.recorders = (*self.recorders, recorder)

    def unsubscribe(self, recorder: Recorder) -> None:
        with self._lock:
            if recorder not in self.recorders:
                return
            self.recorders = tuple(r for r in self.recorders if r is not recorder)
            if not self.recorders:
                self._uninstall()

    def _install(self) -> None:
        for owner, attribute, factory in self._targets():
            # The raw attribute (staticmethod/classmethod objects included) so undo restores it exactly.
            own = vars(owner)
            original = own.get(attribute, _INHERITED)
            target = getattr(owner, attribute) if original is _INHERITED else original
            setattr(owner, attribute, wrapt.FunctionWrapper(target, factory(self)))
            self._originals.append((owner, attribute, original))

    def _uninstall(self) -> None:
        while self._originals:
            owner, attribute, original = self._originals.pop()
            if original is _INHERITED:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)


def find_attribute(sdk: str, module: str, name: str) -> Any:
    """`module.name` of an SDK, or None (logged at DEBUG) when this version of it has no such thing."""
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        found = None
    if found is None:
        logger.debug("neatlogs: %s has no %s.%s here; not traced", sdk, module, name)
    return found
