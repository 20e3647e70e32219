"""Request limits of the API: a per-key rate limit. The generation queue is `rag.gate`, shared
with the UI."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rag.gate import Limited


class RateLimiter:
    """A token bucket per caller: `per_minute` requests, refilled evenly; 0 turns it off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, caller: str, now: float) -> float:
        tokens, at = self._buckets.get(caller, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60.0)

    def wait(self, caller: str) -> float:
        """Seconds until `caller` may make one more request (0: now), taking nothing."""
        if not self.per_minute:
            return 0.0
        with self._lock:
            tokens = self._tokens(caller, self.clock())
        return max(0.0, (1.0 - tokens) * 60.0 / self.per_minute)

    def check(self, caller: str) -> None:
        """Take one request from `caller`'s bucket, or raise Limited(429) when it is empty."""
        if not self.per_minute:
            return
        with self._lock:
            now = self.clock()
            tokens = self._tokens(caller, now)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                wait = (1.0 - tokens) * 60.0 / self.per_minute
                raise Limited(429, f"rate limit of {self.per_minute} requests a minute", wait)
            self._buckets[caller] = (tokens - 1.0, now)
