"""Build the product's components from `Settings`: the one place that wires them together.

`rag.cli` (every command) and `rag serve`'s app factory call these; tests build their own with
fakes. Heavy imports happen inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.settings import Settings

if TYPE_CHECKING:
    from index.library import Library
    from index.sync import Ingestor
    from rag.answer import Answerer
    from rag.embeddings import Embedder
    from rag.feedback import FeedbackStore
    from rag.retrieval import Retriever


@dataclass
class Components:
    """Everything a front end (UI, API) needs, built once per process."""

    settings: Settings
    answerer: Answerer
    library: Library
    feedback: FeedbackStore

    @property
    def retriever(self) -> Retriever:
        return self.answerer.retriever


def build_retriever(settings: Settings, embedder: Embedder) -> Retriever:
    from rag.retrieval import Retriever, build_reranker
    from rag.store import open_store

    bm25_dir = settings.data_dir / "bm25" / settings.collection
    reranker = build_reranker(settings.rerank_model)
    return Retriever(open_store(settings), embedder, bm25_dir, reranker, settings.fusion)


def build_ingestor(settings: Settings, store, embedder: Embedder) -> Ingestor:
    from index.chunking import Chunker
    from index.sync import Ingestor

    return Ingestor(
        store=store,
        embedder=embedder,
        chunker=Chunker(settings.chunk_size, settings.chunk_overlap, fits=embedder.fits),
        max_file_bytes=int(settings.max_file_mb * 1e6),
        lock_path=settings.data_dir / "ingest.lock",
    )


def build_answerer(settings: Settings, retriever: Retriever) -> Answerer:
    from rag.answer import Answerer
    from rag.llm import build_llm
    from rag.support import SupportChecker

    checker = SupportChecker(retriever.embedder, settings.support_threshold)
    return Answerer(retriever, build_llm(settings, checker), checker, settings)


def assemble(settings: Settings, answerer: Answerer) -> Components:
    """Components around an answerer (real or fake): the library and feedback share its store."""
    from index.library import Library
    from rag.feedback import FeedbackStore

    retriever = answerer.retriever
    ingestor = build_ingestor(settings, retriever.store, retriever.embedder)
    library = Library(
        ingestor,
        upload_dir=settings.data_dir / "uploads",
        max_file_bytes=int(settings.max_file_mb * 1e6),
        on_change=retriever.warm_up,
    )
    return Components(settings, answerer, library, FeedbackStore(settings.data_dir / "feedback.sqlite3"))


def build_components(settings: Settings) -> Components:
    """The real thing: embedder, store, BM25, model, all loaded now (so /readyz means ready)."""
    from rag.offline import enforce_offline

    enforce_offline()
    from rag.embeddings import build_embedder
    from rag.retrieval import check_embedder

    retriever = build_retriever(settings, build_embedder(settings))
    check_embedder(retriever.store, retriever.embedder)
    retriever.warm_up()
    return assemble(settings, build_answerer(settings, retriever))
