"""Dense retrieval through LlamaIndex's `VectorStoreIndex` over the Chroma store."""

from __future__ import annotations

from dataclasses import dataclass

from llama_index.core import VectorStoreIndex
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag import schema
from rag.embeddings import Embedder


@dataclass(frozen=True)
class ScoredChunk:
    chunk: schema.StoredChunk
    score: float


def dense_retrieve(
    store: ChromaVectorStore, embedder: Embedder, query: str, top_k: int = 5
) -> list[ScoredChunk]:
    index = VectorStoreIndex.from_vector_store(store, embed_model=embedder.model)
    hits = index.as_retriever(similarity_top_k=top_k).retrieve(query)
    return [
        ScoredChunk(
            chunk=schema.StoredChunk.from_metadata(
                hit.node.node_id, hit.node.get_content(), hit.node.metadata
            ),
            score=float(hit.score or 0.0),
        )
        for hit in hits
    ]
