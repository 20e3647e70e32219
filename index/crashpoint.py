"""Test only: end an ingest hard right after its Nth write to the store.

`RAG_CRASH_AFTER_STEP=N` (N >= 1): right after the Nth store call an `Ingestor` makes (every add
call, heads' included, and every delete call), the process exits with `os._exit(CRASH_EXIT)`: no
`finally`, no flush, what a kill -9 between two writes leaves. `tests/test_kill9.py` crashes a
small ingest after every one of its steps this way.

Read from the process environment, not `Settings`: it is no product setting, so no `.env` file
can turn it on, no results file records it, and the README's settings table leaves it out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

VARIABLE = "RAG_CRASH_AFTER_STEP"
CRASH_EXIT = 86  # a crashed ingest's exit status: a test tells the crash from a failure or a finish


@dataclass
class CrashPoint:
    after: int | None  # the step to exit after; None: never
    steps: int = 0  # writes made so far

    @classmethod
    def from_environment(cls) -> CrashPoint:
        value = os.environ.get(VARIABLE, "").strip()
        if not value:
            return cls(None)
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{VARIABLE} must be a whole number of steps (1 or more), not {value!r}")
        return cls(int(value))

    def passed(self, step: str) -> None:
        """One write is done; exit hard when it is the Nth."""
        self.steps += 1
        if self.steps == self.after:
            os.write(2, f"{VARIABLE}={self.after}: exiting after step {self.steps} ({step})\n".encode())
            os._exit(CRASH_EXIT)
