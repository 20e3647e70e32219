"""The Chroma store: embedded under the data dir, or a Chroma server when `RAG_CHROMA_URL` is set.

Collections are created with no embedding function (Chroma's default would download an ONNX
model): vectors always come from our `Embedder`. Beside each data collection NAME lives
NAME__state, the ingest lease and the change stamp (`rag.store_state`).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from urllib.parse import urlparse

from chromadb.errors import NotFoundError
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag import records
from rag.records import collection_problem
from rag.settings import Settings
from rag.store_state import STATE_SUFFIX, StoreState


def chroma_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if not url.hostname:
            raise ValueError(f"RAG_CHROMA_URL is not a URL: {settings.chroma_url!r}")
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    path = embedded_path(settings)
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def embedded_path(settings: Settings) -> Path:
    """Where the embedded store lives (and the name Chroma caches its client under)."""
    return settings.data_dir / "chroma"


class Store(ChromaVectorStore):
    """LlamaIndex's vector store over one collection, with the state every process sharing that
    collection reads and writes through Chroma: `state`, the ingest lease and the change stamp."""

    _state: StoreState = PrivateAttr()
    _settings: Settings = PrivateAttr()
    _name: str = PrivateAttr()
    _seen: str | None = PrivateAttr(default=None)
    _swap: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, settings: Settings, name: str) -> None:
        collection, state = _open(settings, name)
        super().__init__(chroma_collection=collection)
        self._state, self._settings, self._name = state, settings, name
        self._seen = state.stamp_token()

    @property
    def state(self) -> StoreState:
        return self._state

    def refresh(self) -> bool:
        """Reopen the embedded store if another process wrote to it since this one last looked.

        Chroma's embedded client keeps a collection's segments in memory and does not see another
        process's writes: measured, every query after an outside `rag ingest` failed (KeyError
        'doc_id', "Error finding id") until the client was reopened. A Chroma server has no such
        cache. Writes through a stale client were measured fine (an upload right after an outside
        ingest keeps both); reads are what fail, so `Retriever.warm_up` calls this when the stamp moved.
        """
        if self._settings.chroma_url:
            return False
        with self._swap:
            token = self._state.stamp_token()
            if token is None or token == self._seen or token in self._state.own_tokens:
                self._seen = token
                return False
            from chromadb.api.shared_system_client import SharedSystemClient

            # Out of the cache, not stopped: a query already running on the old client finishes.
            SharedSystemClient._identifier_to_system.pop(str(embedded_path(self._settings)), None)
            collection, state = _open(self._settings, self._name)
            state.own_tokens = self._state.own_tokens
            self._collection, self._state, self._seen = collection, state, token
            return True


def _open(settings: Settings, name: str):
    client = chroma_client(settings)
    collection = client.get_or_create_collection(
        name, embedding_function=None, metadata={"hnsw:space": "cosine"}
    )
    state = client.get_or_create_collection(name + STATE_SUFFIX, embedding_function=None)
    return collection, StoreState(state, settings.ingest_lease_seconds)


def collection_names(settings: Settings) -> list[str]:
    """The store's document collections, sorted: the default (whether or not it exists yet) and
    every other collection with a product name (not state, not evaluation corpora)."""
    names = {c.name for c in chroma_client(settings).list_collections()}
    return sorted(
        {settings.collection} | {n for n in names if n + STATE_SUFFIX in names and not collection_problem(n)}
    )


def drop_collection(settings: Settings, name: str) -> None:
    """Delete a collection and its state from the store (its files are the caller's)."""
    client = chroma_client(settings)
    for doomed in (name, name + STATE_SUFFIX):
        with contextlib.suppress(NotFoundError):
            client.delete_collection(doomed)


def open_store(settings: Settings, collection: str | None = None) -> Store:
    return Store(settings, collection or settings.collection)


def readable_heads(store: ChromaVectorStore) -> dict[str, dict]:
    """doc id -> the head metadata of the version a reader may see: the newest complete one. A
    half-written version has no head yet; a crash between writing a new head and deleting the old
    version leaves two complete ones, of which the newer wins."""
    newest: dict[str, dict] = {}
    for head in head_metadatas(store):
        held = newest.get(head[records.DOC_ID])
        if held is None or head.get(records.INGESTED_AT, "") > held.get(records.INGESTED_AT, ""):
            newest[head[records.DOC_ID]] = head
    return newest


def readable_versions(store: ChromaVectorStore) -> set[str]:
    return {head[records.VERSION] for head in readable_heads(store).values()}


def head_metadatas(store: ChromaVectorStore) -> list[dict]:
    """The metadata of every document version's head chunk (chunk 0, written last, so a head
    means its version is complete): one query for the document list and the ingest's check."""
    return store.client.get(where={records.CHUNK_INDEX: 0}, include=["metadatas"])["metadatas"]
