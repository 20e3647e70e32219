"""An API app over the sample corpus with the hash embedder and the extractive backend."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from app.components import Components, assemble, build_answerer, build_retriever
from rag.embeddings import hash_embedder
from rag.settings import Settings

SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "index" / "samples" / "corpus"
QUESTION = "What does the author say about refining capacity?"


def components(tmp_path: Path, llm=None, **overrides) -> Components:
    """Real Chroma, BM25 and support checks; `llm` replaces the extractive backend."""
    # The hash embedder's cosines run lower than MiniLM's: its own refusal threshold.
    defaults = {"answerability_threshold": 0.05, "rate_limit_per_minute": 0, "index_poll_seconds": 3600}
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", collection="api_docs", embedder="hash",
        llm="extractive", **(defaults | overrides),
    )  # fmt: skip
    retriever = build_retriever(settings, hash_embedder())
    answerer = build_answerer(settings, retriever)
    if llm is not None:
        answerer.llm = llm
    built = assemble(settings, answerer)
    corpus = tmp_path / "corpus"
    if not corpus.exists():
        shutil.copytree(SAMPLE_CORPUS, corpus)
    built.library.ingestor.ingest([corpus])
    retriever.warm_up()
    return built


def app(tmp_path: Path, llm=None, **overrides) -> FastAPI:
    built = components(tmp_path, llm, **overrides)
    return create_app(built.settings, built.workspaces, built.gate)


def local_client(app: FastAPI, host: str = "127.0.0.1") -> TestClient:
    """A TestClient calling from `host`: TestClient's own "testclient" is no loopback address, so
    an app without keys would refuse it."""
    return TestClient(app, client=(host, 50000))
