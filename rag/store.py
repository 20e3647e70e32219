"""The Chroma store: embedded under the data dir, or a Chroma server when `RAG_CHROMA_URL` is set.

Collections are created with no embedding function (Chroma's default would download an ONNX
model): vectors always come from our `Embedder`.
"""

from __future__ import annotations

from urllib.parse import urlparse

from llama_index.vector_stores.chroma import ChromaVectorStore

from rag import records
from rag.settings import Settings


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
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def open_store(settings: Settings, collection: str | None = None) -> ChromaVectorStore:
    client = chroma_client(settings)
    chroma_collection = client.get_or_create_collection(
        collection or settings.collection,
        embedding_function=None,
        metadata={"hnsw:space": "cosine"},
    )
    return ChromaVectorStore(chroma_collection=chroma_collection)


def readable_versions(store: ChromaVectorStore) -> set[str]:
    """The versions a reader may see: per document, the newest complete one. A half-written
    version has no head yet; a crash between writing a new head and deleting the old version
    leaves two complete ones, of which the newer wins."""
    newest: dict[str, dict] = {}
    for head in head_metadatas(store):
        held = newest.get(head[records.DOC_ID])
        if held is None or head.get(records.INGESTED_AT, "") > held.get(records.INGESTED_AT, ""):
            newest[head[records.DOC_ID]] = head
    return {head[records.VERSION] for head in newest.values()}


def head_metadatas(store: ChromaVectorStore) -> list[dict]:
    """The metadata of every document version's head chunk (chunk 0, written last, so a head
    means its version is complete): one query for the document list and the ingest's check."""
    return store.client.get(where={records.CHUNK_INDEX: 0}, include=["metadatas"])["metadatas"]
