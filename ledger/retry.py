"""Retrying transient backend errors (Unavailable) with backoff until they pass or we stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def retrying(action: Callable[[], T], stop: threading.Event, what: str) -> T | None:
    """`action()`'s result, retried on Unavailable with backoff (0.1 s doubling to 5 s);
    None if `stop` is set while the backend is still unavailable."""
    from kernel.errors import Unavailable

    delay = 0.1
    while True:
        try:
            return action()
        except Unavailable as exc:
            if stop.is_set():
                return None
            log.warning("%s: backend unavailable, retrying in %.1f s: %s", what, delay, exc)
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
