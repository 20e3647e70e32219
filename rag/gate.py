"""The generation limit of one process, shared by every front end: the API and the UI take their
slots from the same `GenerationGate`, built once by the composition root."""

from __future__ import annotations

import math
import threading


class Limited(Exception):
    """Refused for load: `status` 429 (come back later) or 503 (busy), with a Retry-After."""

    def __init__(self, status: int, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = max(1, math.ceil(retry_after))


class Permit:
    """One generation slot; releasing twice is harmless (streams release on close and on error)."""

    def __init__(self, gate: GenerationGate) -> None:
        self._gate = gate
        self.held = True

    def release(self) -> None:
        self._gate._release(self)


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

    def _release(self, permit: Permit) -> None:
        # Checked and cleared under the gate's lock: a stream's close and its error path (or a
        # response's background task) may release the same permit from different threads.
        with self._cond:
            if not permit.held:
                return
            permit.held = False
            self.active -= 1
            self._cond.notify()
