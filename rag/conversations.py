"""Kept conversations: each owner's chats in one collection, every turn with its whole Answer
record (sources, quotes, support), in SQLite beside the collection's feedback.

An owner is who the caller is (`rag.access.Grant.name` with keys; a browser's own id in the UI
without them). Every read and write names the owner, so one owner's conversation is, to any
other, a conversation that does not exist. A connection per call (`rag.sqlite`).
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from rag.records import Answer, Turn
from rag.sqlite import connect

TITLE_CHARS = 80  # a new conversation is titled with the start of its first question

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations (owner, updated_at);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    answer TEXT NOT NULL,
    PRIMARY KEY (conversation_id, n)
);
"""


class Conversation(BaseModel):
    id: str
    collection: str
    title: str
    created_at: str
    updated_at: str
    turns: int = Field(description="questions answered in it")


class ConversationTurn(BaseModel):
    question: str
    answer: Answer


class ConversationRecord(Conversation):
    history: list[ConversationTurn]

    def as_history(self) -> list[Turn]:
        """The turns as the answer path reads a conversation (refusals included, as the UI's)."""
        return [Turn(question=t.question, answer=t.answer.answer) for t in self.history]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ConversationStore:
    def __init__(self, path: Path, collection: str) -> None:
        self.path = path
        self.collection = collection

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, _SCHEMA)

    def create(self, owner: str, title: str = "") -> Conversation:
        conversation_id, now = uuid.uuid4().hex, _now()
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                       (conversation_id, owner, title.strip()[:TITLE_CHARS], now, now))  # fmt: skip
        return Conversation(id=conversation_id, collection=self.collection, title=title.strip()[:TITLE_CHARS],
                            created_at=now, updated_at=now, turns=0)  # fmt: skip

    def list(self, owner: str) -> list[Conversation]:
        """The owner's conversations, the most recently used first."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, COUNT(t.n) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation_id = c.id WHERE c.owner = ? "
                "GROUP BY c.id ORDER BY c.updated_at DESC, c.rowid DESC",
                (owner,),
            ).fetchall()
        return [Conversation(id=i, collection=self.collection, title=t, created_at=c, updated_at=u, turns=n)
                for i, t, c, u, n in rows]  # fmt: skip

    def get(self, owner: str, conversation_id: str) -> ConversationRecord | None:
        if not self.path.exists():
            return None
        with closing(self._connect()) as db:
            head = db.execute(
                "SELECT title, created_at, updated_at FROM conversations WHERE id = ? AND owner = ?",
                (conversation_id, owner),
            ).fetchone()
            if head is None:
                return None
            rows = db.execute(
                "SELECT answer FROM turns WHERE conversation_id = ? ORDER BY n", (conversation_id,)
            ).fetchall()
        answers = [Answer.model_validate_json(a) for (a,) in rows]
        return ConversationRecord(
            id=conversation_id, collection=self.collection, title=head[0], created_at=head[1],
            updated_at=head[2], turns=len(answers),
            history=[ConversationTurn(question=a.question, answer=a) for a in answers],
        )  # fmt: skip

    def append(self, owner: str, conversation_id: str, answer: Answer) -> bool:
        """Add a turn; a conversation without a title takes its first question's start."""
        with closing(self._connect()) as db, db:
            updated = db.execute(
                "UPDATE conversations SET updated_at = ?, title = CASE WHEN title = '' THEN ? ELSE title END "
                "WHERE id = ? AND owner = ?",
                (_now(), answer.question.strip()[:TITLE_CHARS], conversation_id, owner),
            )
            if not updated.rowcount:
                return False
            db.execute(
                "INSERT INTO turns SELECT ?, COALESCE(MAX(n), 0) + 1, ? FROM turns WHERE conversation_id = ?",
                (conversation_id, answer.model_dump_json(), conversation_id),
            )
        return True

    def rename(self, owner: str, conversation_id: str, title: str) -> bool:
        renaming = "UPDATE conversations SET title = ? WHERE id = ? AND owner = ?"
        with closing(self._connect()) as db, db:
            return bool(db.execute(renaming, (title.strip()[:TITLE_CHARS], conversation_id, owner)).rowcount)

    def delete(self, owner: str, conversation_id: str) -> bool:
        if not self.path.exists():
            return False
        with closing(self._connect()) as db, db:
            return bool(db.execute("DELETE FROM conversations WHERE id = ? AND owner = ?",
                                   (conversation_id, owner)).rowcount)  # fmt: skip
