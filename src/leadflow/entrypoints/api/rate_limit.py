"""A token bucket per caller, in memory: enough for one process behind a balancer that
spreads callers; each process enforces its share."""

from __future__ import annotations

import threading
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_second: float, clock: Callable[[], float],
                 burst_seconds: float = 5.0) -> None:
        self.clock = clock
        self.rate = per_second
        self.capacity = max(1.0, per_second * burst_seconds)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, who: str) -> float | None:
        """None when allowed; otherwise seconds until the next call would be."""
        if self.rate <= 0:
            return None
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(who, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[who] = (tokens - 1.0, now)
            return None
