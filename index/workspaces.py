"""Collections as workspaces: each a Chroma collection with its own BM25 index, uploads folder,
feedback and kept conversations, served side by side by one process that shares the embedder and the model.

`Workspaces` opens a collection's `Workspace` on first use (through the composition root's
`open_workspace`), keeps it, and creates, lists and deletes collections. `readable` and
`get_for` hold the one rule the API and the UI both answer by: a collection a grant may not read
is, to it, a collection that does not exist.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass

from index.library import Library
from index.report import IngestLocked
from rag.access import Grant
from rag.answer import Answerer
from rag.conversations import ConversationStore
from rag.feedback import FeedbackStore
from rag.records import collection_problem
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import Store, collection_names, drop_collection, open_store, readable_heads
from rag.store_state import LeaseHeld


class UnknownCollection(LookupError):
    """No such collection (the API answers 404, alike for one the caller may not see)."""


class CollectionConflict(ValueError):
    """The collection exists already, is the server's default, or is being ingested into."""


@dataclass(frozen=True)
class Workspace:
    name: str
    answerer: Answerer
    library: Library
    feedback: FeedbackStore
    conversations: ConversationStore

    @property
    def retriever(self) -> Retriever:
        return self.answerer.retriever


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    documents: int
    chunks: int
    default: bool


class Workspaces:
    def __init__(self, settings: Settings, open_workspace: Callable[[Settings], Workspace]) -> None:
        """`open_workspace(settings for one collection)` builds that collection's workspace."""
        self.settings = settings
        self.default_name = settings.collection
        self._open = open_workspace
        self._opened: dict[str, Workspace] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> Workspace:
        return self.get(self.default_name)

    def names(self) -> list[str]:
        return collection_names(self.settings)

    def exists(self, name: str) -> bool:
        return name in self.names()

    def readable(self, grant: Grant) -> list[str]:
        """The collections `grant` may read."""
        return [name for name in self.names() if grant.reads(name)]

    def check(self, grant: Grant, name: str) -> None:
        """UnknownCollection, alike, for a collection that does not exist and one `grant` may not
        read (without opening it)."""
        if not grant.reads(name) or (name != self.default_name and not self.exists(name)):
            raise UnknownCollection(name)

    def get_for(self, grant: Grant, name: str) -> Workspace:
        """The workspace, if `grant` may read it; UnknownCollection alike when it may not."""
        if not grant.reads(name):
            raise UnknownCollection(name)
        return self.get(name)

    def get(self, name: str) -> Workspace:
        """The workspace of an existing collection (the default always exists), or UnknownCollection."""
        with self._lock:
            if name in self._opened and (name == self.default_name or self.exists(name)):
                return self._opened[name]
            if name != self.default_name and not self.exists(name):
                self._opened.pop(name, None)  # deleted by another process
                raise UnknownCollection(name)
            workspace = self._opened[name] = self._open(self.settings.for_collection(name))
            return workspace

    def opened(self) -> list[Workspace]:
        """The workspaces this process has opened (what the index poller keeps fresh)."""
        with self._lock:
            return list(self._opened.values())

    def _store(self, name: str) -> Store:
        """An existing collection's store, without opening its workspace (no model, no BM25)."""
        with self._lock:
            if name in self._opened:
                return self._opened[name].retriever.store
        if name != self.default_name and not self.exists(name):
            raise UnknownCollection(name)
        return open_store(self.settings, name)

    def info(self, name: str) -> CollectionInfo:
        store = self._store(name)
        return CollectionInfo(
            name, len(readable_heads(store)), store.client.count(), name == self.default_name
        )

    def create(self, name: str) -> CollectionInfo:
        """A new, empty collection. ValueError for a bad name, CollectionConflict if it exists."""
        if problem := collection_problem(name):
            raise ValueError(problem)
        with self._lock:
            if name == self.default_name or self.exists(name):
                raise CollectionConflict(f"collection {name!r} already exists")
            open_store(self.settings, name)  # creates it and its state
        return self.info(name)

    def delete(self, name: str) -> None:
        """Delete a collection with everything of it: chunks, BM25 index, uploads, feedback, chats."""
        if name == self.default_name:
            raise CollectionConflict(f"{name!r} is the server's default collection (RAG_COLLECTION)")
        try:
            lease = self._store(name).state.take()  # no ingest may be writing into it
        except LeaseHeld as exc:
            raise IngestLocked(f"{name!r}: an ingest is running in this collection") from exc
        with self._lock:
            try:
                drop_collection(self.settings, name)  # the lease goes with the state collection
            except BaseException:
                lease.release()
                raise
            self._opened.pop(name, None)
        settings = self.settings.for_collection(name)
        for folder in (settings.bm25_dir, settings.workspace_dir):
            shutil.rmtree(folder, ignore_errors=True)
