"""Usage per key and collection: requests, answers, refusals and documents changed, kept in SQLite
under the data dir, so the API and the UI of every worker add to one tally that outlives
restarts (`rag keys usage` and `/metrics` read it).

Keys are recorded by name (`rag.access.Grant.name`), never by the key itself.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from rag.sqlite import connect

Kind = Literal["requests", "answers", "refusals", "documents"]
KINDS: tuple[Kind, ...] = get_args(Kind)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    key TEXT NOT NULL,
    collection TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (key, collection, kind)
)
"""


@dataclass(frozen=True)
class UsageRow:
    key: str
    collection: str
    requests: int
    answers: int
    refusals: int
    documents: int
    last_at: str


class UsageLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, _SCHEMA)

    def add(self, key: str, collection: str, kind: Kind, count: int = 1) -> None:
        if kind not in KINDS:
            raise ValueError(f"usage kind must be one of {KINDS}, not {kind!r}")
        if not count:
            return
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO usage VALUES (?, ?, ?, ?, ?) ON CONFLICT (key, collection, kind) "
                "DO UPDATE SET count = count + excluded.count, last_at = excluded.last_at",
                (key, collection, kind, count, datetime.now(UTC).isoformat(timespec="seconds")),
            )

    def rows(self) -> list[UsageRow]:
        """One row per key and collection, by key then collection."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            found = db.execute("SELECT key, collection, kind, count, last_at FROM usage").fetchall()
        tally: dict[tuple[str, str], dict] = {}
        for key, collection, kind, count, last_at in found:
            row = tally.setdefault((key, collection), dict.fromkeys(KINDS, 0) | {"last_at": ""})
            row[kind] = count
            row["last_at"] = max(row["last_at"], last_at)
        return [UsageRow(key, collection, **row) for (key, collection), row in sorted(tally.items())]
