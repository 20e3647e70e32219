"""The product's small SQLite files (feedback, kept conversations, usage): one way to open them.

A connection per call: the UI and the API call from worker threads and processes, and SQLite
serialises the writes itself (waiting up to `TIMEOUT_S` for another writer).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

TIMEOUT_S = 10


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to `path` (its folder made if needed), with `schema` applied and foreign keys on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=TIMEOUT_S)
    connection.execute("PRAGMA foreign_keys = ON")
    connection.executescript(schema)
    return connection
