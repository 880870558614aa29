"""The one background worker: a bounded queue drained in batches by one lazily started daemon thread.

The caller's side (`put`) is an append and a length check. The thread wakes when `wake_at` items wait
or every `every` seconds, whichever comes first: waking rarely matters more than handling fast, because
a thread that wants the GIL back while the calling thread is busy slows that thread's every GIL
hand-off (docs/overhead.md). `drain` handles what is queued on the calling thread, in queue order, so a
reader can see everything submitted before it. A forked child starts with an empty queue and no thread.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from neatlogs._log import log_internal_error

__all__ = ["BackgroundWorker", "weak_call"]

T = TypeVar("T")


def weak_call(method: Callable[[], None]) -> Callable[[], None]:
    """Calls `method` while its object lives: at-fork hooks cannot be unregistered."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound()

    return call


class _Marker:
    """Queued by `flush`; set once everything queued before it is handled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class BackgroundWorker(Generic[T]):
    """Hands queued items to `handle` in batches of at most `batch` items, off the caller's thread."""

    def __init__(
        self,
        name: str,
        handle: Callable[[list[T]], None],
        *,
        capacity: int,
        wake_at: int,
        every: float,
        batch: int = 512,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._handle = handle
        self._capacity = capacity
        self._wake_at = wake_at
        self._every = every
        self._batch = batch
        self._on_start = on_start
        self._reset()
        if hasattr(os, "register_at_fork"):
            # The parent's queued items are the parent's; its thread does not exist in the child.
            os.register_at_fork(after_in_child=weak_call(self._reset))

    def _reset(self) -> None:
        self._queue: deque[T | _Marker] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._start_lock = threading.Lock()
        # One thread handles at a time, in queue order; re-entrant because a handler may flush a sink.
        self._handle_lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def thread(self) -> threading.Thread | None:
        """The worker thread, once started."""
        return self._thread

    def put(self, item: T) -> bool:
        """Queue `item` (caller's thread); False when the queue is full and the item was not taken."""
        queue = self._queue
        if len(queue) >= self._capacity:
            return False
        queue.append(item)
        if self._thread is None:
            self._start()
        elif len(queue) >= self._wake_at and not self._wake.is_set():
            self._wake.set()
        return True

    def drain(self, timeout: float | None = None) -> bool:
        """Handle every queued item on this thread; False if another thread held the queue past `timeout`."""
        lock = self._handle_lock
        if not lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return False
        try:
            queue, size = self._queue, self._batch
            while queue:
                items: list[T] = []
                while queue and len(items) < size:
                    item = queue.popleft()
                    if isinstance(item, _Marker):
                        self._handle_batch(items)
                        items = []
                        item.done.set()
                    else:
                        items.append(item)
                self._handle_batch(items)
        finally:
            lock.release()
        return True

    def _handle_batch(self, items: list[T]) -> None:
        if items:
            try:
                self._handle(items)
            except Exception:
                log_internal_error(f"{self.name} worker")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the worker thread handled everything queued before; False when `timeout` ran out."""
        thread = self._thread
        if thread is threading.current_thread():  # a handler flushing would wait on itself
            return not self._queue
        if thread is None:
            if not self._queue:
                return True
            self._start()
            if self._thread is None:  # no thread can start (interpreter exit): handle it here
                return self.drain(timeout)
        marker = _Marker()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Handle what is queued, then end the thread; a later `put` starts a new one. True when both done."""
        done = self.flush(timeout)
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return done
        self._stopping = True
        self._wake.set()
        thread.join(timeout)
        with self._start_lock:
            # Forgotten only once it has exited, so an item never meets two consumers.
            if self._thread is thread and not thread.is_alive():
                self._thread = None
                self._stopping = False
        return done and not thread.is_alive()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: `drain` still handles the queue
                return
            self._thread = thread
        if self._on_start is not None:
            self._on_start()
        self._wake.set()

    def _run(self) -> None:
        wake = self._wake
        while True:
            wake.wait(self._every)
            # Cleared before draining: an item put after this is either drained now or sets wake again.
            wake.clear()
            self.drain()
            if self._stopping:
                return
