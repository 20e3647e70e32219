"""The composition root: settings and every component are built here, and only here.

`app.cli` (every command), `app.server` (the ASGI factory) and `bench` call these; tests build
their own around fakes. Heavy imports happen inside the functions, so importing this module is
cheap (`rag --help` stays instant).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

from rag.settings import Settings

if TYPE_CHECKING:
    from index.library import Library
    from index.sync import Ingestor
    from index.workspaces import Workspace, Workspaces
    from rag.answer import Answerer
    from rag.conversations import ConversationStore
    from rag.embeddings import Embedder
    from rag.feedback import FeedbackStore
    from rag.gate import GenerationGate
    from rag.llm import LLM
    from rag.retrieval import Retriever


def load_settings(env_file: bool = True, **overrides: object) -> Settings:
    """Settings from `RAG_*` variables and `.env` (unless `env_file=False`), with overrides validated
    like the rest: the one place the product reads its configuration."""
    if env_file:
        return Settings(**overrides)
    return Settings(_env_file=None, **overrides)


@dataclass
class Components:
    """Everything a front end (UI, API) needs, built once per process."""

    settings: Settings
    workspaces: Workspaces  # every collection this process serves, the default first
    gate: GenerationGate  # the one generation limit, shared by the API and the UI

    # The default collection's parts (what the CLI, bench and single-collection tests use).
    @property
    def answerer(self) -> Answerer:
        return self.workspaces.default.answerer

    @property
    def library(self) -> Library:
        return self.workspaces.default.library

    @property
    def feedback(self) -> FeedbackStore:
        return self.workspaces.default.feedback

    @property
    def conversations(self) -> ConversationStore:
        return self.workspaces.default.conversations

    @property
    def retriever(self) -> Retriever:
        return self.answerer.retriever


def build_retriever(settings: Settings, embedder: Embedder, reranker=None) -> Retriever:
    """A retriever over `settings.collection`; a configured reranker is loaded unless one is given."""
    from rag.retrieval import Retriever, build_reranker
    from rag.store import open_store

    reranker = reranker or build_reranker(settings.rerank_model)
    return Retriever(open_store(settings), embedder, settings.bm25_dir, reranker, settings.fusion)


def build_ingestor(settings: Settings, store, embedder: Embedder) -> Ingestor:
    from index.chunking import Chunker
    from index.sync import Ingestor

    return Ingestor(
        store=store,
        embedder=embedder,
        chunker=Chunker(settings.chunk_size, settings.chunk_overlap, fits=embedder.fits),
        max_file_bytes=int(settings.max_file_mb * 1e6),
    )


def build_answerer(
    settings: Settings, retriever: Retriever, wrap_llm: Callable[[LLM], LLM] | None = None
) -> Answerer:
    """`wrap_llm` wraps the configured backend (bench counts its tokens with one)."""
    from rag.answer import Answerer
    from rag.llm import build_llm
    from rag.support import SupportChecker

    checker = SupportChecker(retriever.embedder, settings.support_threshold)
    llm = build_llm(settings, checker)
    return Answerer(retriever, wrap_llm(llm) if wrap_llm else llm, checker, settings)


def assemble(settings: Settings, answerer: Answerer) -> Components:
    """Components around the default collection's answerer (real or fake): every other collection
    gets one like it, sharing its embedder, reranker, model and support checker."""
    from index.workspaces import Workspaces
    from rag.gate import GenerationGate

    gate = GenerationGate(settings.max_generations, settings.max_queue, settings.queue_timeout)
    return Components(settings, Workspaces(settings, partial(open_workspace, settings, answerer)), gate)


def build_workspaces(settings: Settings) -> Workspaces:
    """The store's collections for the command line. Listing, creating and deleting load nothing;
    the first workspace opened loads the default collection's answer path, the others share it."""
    from index.workspaces import Workspaces

    default_answerer = cache(partial(build_answer_path, settings))
    return Workspaces(settings, lambda collection: open_workspace(settings, default_answerer(), collection))


def open_workspace(settings: Settings, answerer: Answerer, collection: Settings) -> Workspace:
    """`collection`'s workspace: the default's around `answerer`, any other's around a sibling
    of it (sharing its embedder, reranker, model and support checker)."""
    if collection.collection == settings.collection:
        return build_workspace(collection, answerer)
    model = answerer.retriever
    retriever = build_retriever(collection, model.embedder, model.reranker)
    return build_workspace(collection, answerer.sibling(retriever, collection))


def build_workspace(settings: Settings, answerer: Answerer) -> Workspace:
    """One collection's library, feedback and conversations around its answerer."""
    from index.library import Library
    from index.workspaces import Workspace
    from rag.conversations import ConversationStore

    retriever = answerer.retriever
    library = Library(
        build_ingestor(settings, retriever.store, retriever.embedder),
        upload_dir=settings.uploads_dir,
        max_file_bytes=int(settings.max_file_mb * 1e6),
        on_change=retriever.warm_up,
    )
    conversations = ConversationStore(settings.conversations_path, settings.collection)
    return Workspace(settings.collection, answerer, library, build_feedback(settings), conversations)


def build_feedback(settings: Settings) -> FeedbackStore:
    from rag.feedback import FeedbackStore

    return FeedbackStore(settings.feedback_path)


def build_components(settings: Settings) -> Components:
    """The real thing: embedder, store, BM25, model, all loaded now (so /readyz means ready)."""
    answerer = build_answer_path(settings)
    answerer.retriever.warm_up()
    return assemble(settings, answerer)


def checked_retriever(settings: Settings, embedder: Embedder) -> Retriever:
    """A retriever that refuses a store embedded by another model (EmbedderMismatch)."""
    from rag.retrieval import check_embedder

    retriever = build_retriever(settings, embedder)
    check_embedder(retriever.store, embedder)
    return retriever


def build_answer_path(settings: Settings) -> Answerer:
    """The answerer over the configured store, offline and checked against its embedder."""
    from rag.offline import enforce_offline

    enforce_offline()
    from rag.embeddings import build_embedder

    return build_answerer(settings, checked_retriever(settings, build_embedder(settings)))


def eval_retriever(settings: Settings, corpus: Path) -> tuple[Settings, Retriever]:
    """Settings and a warm retriever over `corpus`, ingested into a collection of its own
    (`eval.harness.collection_for`), so evaluating never touches the product's documents."""
    from eval.harness import collection_for
    from rag.embeddings import build_embedder

    settings = settings.model_copy(update={"collection": collection_for(corpus)})
    embedder = build_embedder(settings)
    retriever = build_retriever(settings, embedder)  # unchecked: the ingest below re-embeds if needed
    build_ingestor(settings, retriever.store, embedder).ingest([corpus])
    retriever.warm_up()
    return settings, retriever
