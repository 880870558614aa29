"""A bounded, thread-safe ring of call records: the in-memory conversation history."""

from __future__ import annotations

import copy
import threading
from collections import deque
from typing import Any

from neatlogs.dispatch import drain as drain_dispatcher
from neatlogs.record.call import CallRecord
from neatlogs.record.capture import DEFAULT_SETTINGS, METADATA, CaptureSettings

DEFAULT_HISTORY_SIZE = 1000


class History:
    """Keeps the most recent records; also a sink, so a tracker's history can collect its providers'.

    `capture` holds the settings of the provider or tracker that owns it: `capture.history` says
    whether snapshots show full content or only metadata.
    """

    __slots__ = ("_lock", "_records", "capture")

    # Sampling limits what leaves the process; the history keeps every call.
    sees_every_call = True

    def __init__(
        self, max_records: int = DEFAULT_HISTORY_SIZE, capture: CaptureSettings = DEFAULT_SETTINGS
    ) -> None:
        self._records: deque[CallRecord] = deque(maxlen=max_records)
        self._lock = threading.Lock()
        self.capture = capture

    def emit(self, record: CallRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Copies of the records as dicts, oldest first; `limit` keeps the most recent N."""
        drain_dispatcher()  # calls finished but not yet delivered
        with self._lock:
            records = list(self._records)
        if limit is not None:
            records = records[-limit:] if limit > 0 else []
        if self.capture.history == METADATA:
            return [copy.deepcopy(r.metadata_dict()) for r in records]
        return [copy.deepcopy(r.to_dict()) for r in records]

    @property
    def capacity(self) -> int:
        """How many records the ring keeps."""
        return self._records.maxlen or DEFAULT_HISTORY_SIZE

    def clear(self) -> None:
        drain_dispatcher()
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        drain_dispatcher()
        return len(self._records)
