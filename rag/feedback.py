"""Thumbs up/down on answers, kept with the whole Answer record (SQLite under the data dir).

A connection per call (`rag.sqlite`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from rag.records import Answer, Turn
from rag.sqlite import connect

Rating = Literal["up", "down"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    history TEXT NOT NULL DEFAULT '[]',
    answer TEXT NOT NULL
)
"""


class Feedback(BaseModel):
    id: int
    created_at: str
    rating: Rating
    comment: str
    history: list[Turn]  # the conversation before this answer
    answer: Answer


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, _SCHEMA)

    def add(self, answer: Answer, rating: Rating, comment: str = "",
            history: Sequence[Turn] = ()) -> int:  # fmt: skip
        if rating not in ("up", "down"):
            raise ValueError(f"rating must be 'up' or 'down', not {rating!r}")
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "INSERT INTO feedback (created_at, rating, comment, question, history, answer) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    rating,
                    comment.strip(),
                    answer.question,
                    json.dumps([t.model_dump() for t in history]),
                    answer.model_dump_json(),
                ),
            )
            return int(cursor.lastrowid)

    def entries(self, rating: Rating | None = None) -> list[Feedback]:
        if not self.path.exists():
            return []
        query = "SELECT id, created_at, rating, comment, history, answer FROM feedback"
        with closing(self._connect()) as db:
            rows = db.execute(query + (" WHERE rating = ?" if rating else "") + " ORDER BY id",
                              (rating,) if rating else ()).fetchall()  # fmt: skip
        return [
            Feedback(id=i, created_at=at, rating=r, comment=c, history=[Turn(**t) for t in json.loads(h)],
                     answer=Answer.model_validate_json(a))
            for i, at, r, c, h, a in rows
        ]  # fmt: skip
