"""Shared fixtures: real Chroma on disk (and a Chroma server), the hash embedder, copies of the
sample corpus, free ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.local_server import free_port, wait_until_up
from rag.offline import enforce_offline

REPO = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = REPO / "index" / "samples" / "corpus"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(autouse=True, scope="session")
def _offline() -> None:
    enforce_offline()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the sample corpus, safe to edit."""
    target = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, target)
    return target


@pytest.fixture
def make_ingestor(tmp_path: Path) -> Callable:
    """Build an Ingestor over a real on-disk Chroma store, with the hash embedder by default."""
    from index.chunking import Chunker
    from index.sync import Ingestor
    from rag.embeddings import hash_embedder
    from rag.settings import Settings
    from rag.store import open_store

    def build(embedder=None, collection: str = "test_docs", max_file_bytes: int = 25_000_000):
        embedder = embedder or hash_embedder()
        settings = Settings(data_dir=tmp_path / "data", collection=collection, _env_file=None)
        return Ingestor(
            store=open_store(settings),
            embedder=embedder,
            chunker=Chunker(settings.chunk_size, settings.chunk_overlap, fits=embedder.fits),
            max_file_bytes=max_file_bytes,
        )

    return build


def store_rows(store) -> list[tuple[str, str, dict]]:
    """Every (id, text, metadata) in a ChromaVectorStore's collection."""
    got = store.client.get(include=["documents", "metadatas"])
    return list(zip(got["ids"], got["documents"], got["metadatas"], strict=True))


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 embedder from the installed package, loaded once."""
    from rag.embeddings import default_model_dir, sentence_transformer_embedder

    enforce_offline()
    return sentence_transformer_embedder(default_model_dir(), "all-MiniLM-L6-v2")


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(tmp_path / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/api/v2/heartbeat", proc, 60)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
