"""The `neatlogs` logger and the guard that keeps neatlogs' own failures away from the caller."""

from __future__ import annotations

import logging

logger = logging.getLogger("neatlogs")

_warned: set[str] = set()


def log_internal_error(where: str) -> None:
    """Log a bug inside neatlogs once per place, with its traceback, and carry on."""
    if where in _warned:
        logger.debug("neatlogs internal error in %s (repeated)", where, exc_info=True)
        return
    _warned.add(where)
    logger.warning("neatlogs internal error in %s; the call itself is unaffected", where, exc_info=True)
