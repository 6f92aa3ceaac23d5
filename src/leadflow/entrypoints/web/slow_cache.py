"""Keeps what took long to compute for a short while: on a large install the dashboard's
funnel reads millions of stage changes, and showing figures a minute old beats making
everyone who opens the page wait seconds. What is quick to compute is never kept, so a small
install always shows what is true now."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


class SlowResultCache:
    def __init__(self, *, slow_seconds: float, keep_seconds: float,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.slow_seconds = slow_seconds
        self.keep_seconds = keep_seconds
        self._timer = timer
        self._lock = threading.Lock()
        self._kept: dict[Hashable, tuple[float, Any, float]] = {}

    def get(self, key: Hashable, compute: Callable[[], Any], *, as_of: float
            ) -> tuple[Any, float | None]:
        """``compute()``'s result, and None; or a kept result and the ``as_of`` time it was
        computed at, when computing it last took longer than ``slow_seconds`` and that was
        less than ``keep_seconds`` ago."""
        now = self._timer()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and now - kept[0] < self.keep_seconds:
            return kept[1], kept[2]
        value = compute()
        took = self._timer() - now
        with self._lock:
            if took > self.slow_seconds:
                self._kept[key] = (self._timer(), value, as_of)
            else:
                self._kept.pop(key, None)
        return value, None
