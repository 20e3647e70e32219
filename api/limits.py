"""Request limits that protect the model: a per-key rate limit and a queue for generations."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class Limited(Exception):
    """Refused for load: `status` 429 (come back later) or 503 (busy), with a Retry-After."""

    def __init__(self, status: int, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = max(1, math.ceil(retry_after))


class RateLimiter:
    """A token bucket per caller: `per_minute` requests, refilled evenly; 0 turns it off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)
        self._lock = threading.Lock()

    def check(self, caller: str) -> None:
        if not self.per_minute:
            return
        rate = self.per_minute / 60.0
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(caller, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                wait = (1.0 - tokens) / rate
                raise Limited(429, f"rate limit of {self.per_minute} requests a minute", wait)
            self._buckets[caller] = (tokens - 1.0, now)


class Permit:
    """One generation slot; releasing twice is harmless (streams release on close and on error)."""

    def __init__(self, gate: GenerationGate) -> None:
        self._gate = gate
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate._release()


class GenerationGate:
    """At most `slots` answers generate at once; up to `queue` more wait up to `timeout` s."""

    def __init__(self, slots: int, queue: int, timeout: float) -> None:
        self.slots = slots
        self.queue = queue
        self.timeout = timeout
        self.active = 0
        self.waiting = 0
        self._cond = threading.Condition()

    def acquire(self) -> Permit:
        with self._cond:
            if self.active >= self.slots and self.waiting >= self.queue:
                raise Limited(429, "too many questions are waiting; try again shortly", self.timeout)
            self.waiting += 1
            try:
                if not self._cond.wait_for(lambda: self.active < self.slots, timeout=self.timeout):
                    raise Limited(503, "the model is busy; try again shortly", self.timeout)
            finally:
                self.waiting -= 1
            self.active += 1
            return Permit(self)

    def _release(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify()
