"""A long-running process on the embedded store (a server) keeps working after another process
(`rag ingest`) changes it: Chroma's embedded client caches segments and must be reopened."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from api_fixtures import SAMPLE_CORPUS, components

from rag import records
from rag.records import MODES
from rag.store import readable_versions

# What a process started now sees: every doc id in the store, as a list literal.
LIST_DOC_IDS = """
import sys
from rag.settings import Settings
from rag.store import open_store
settings = Settings(_env_file=None, data_dir=sys.argv[1], collection="api_docs", embedder="hash")
print(sorted({m["doc_id"] for m in open_store(settings).client.get(include=["metadatas"])["metadatas"]}))
"""


def _rag_ingest(folder: Path, data_dir: Path) -> None:
    env = {**os.environ, "RAG_EMBEDDER": "hash", "RAG_DATA_DIR": str(data_dir), "RAG_COLLECTION": "api_docs"}
    done = subprocess.run([sys.executable, "-m", "app.cli", "ingest", str(folder), "--prune"], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_server_process_reads_and_writes_correctly_after_an_outside_ingest(tmp_path: Path):
    built = components(tmp_path)  # ingests tmp_path/corpus in this process, as a server would
    retriever, library = built.retriever, built.library
    assert all(retriever.retrieve("refining capacity", mode, 3)[0] for mode in MODES)

    outside = tmp_path / "outside"
    shutil.copytree(SAMPLE_CORPUS, outside)
    for path in sorted(outside.iterdir()):
        path.write_text(path.read_text() + "\n\nA closing note on refinery maintenance schedules.\n")
    _rag_ingest(outside, tmp_path / "data")  # another process: adds a second folder's documents

    retriever.warm_up()  # what the server's poll does
    readable = readable_versions(retriever.store)
    for mode in MODES:
        hits, _ = retriever.retrieve("refinery maintenance schedules", mode, 5)
        assert hits and {h.chunk.version for h in hits} <= readable, mode
    assert any(h.chunk.doc_id.startswith("outside/") for h in hits)

    # Writing after the outside change goes through a client that sees it, and loses nothing.
    result = library.upload([("notes.txt", b"The harbour master is Jonas Reef.")])[0]
    assert result.status == "added", result
    docs = {d.doc_id for d in library.documents()}
    assert "uploads/notes.txt" in docs and any(d.startswith("outside/") for d in docs)
    got = retriever.store.client.get(where={records.DOC_ID: "uploads/notes.txt"}, include=["documents"])
    assert got["documents"] == ["The harbour master is Jonas Reef."]
    retriever.warm_up()
    hits, _ = retriever.retrieve("harbour master Jonas Reef", "hybrid", 3)
    assert hits[0].chunk.doc_id == "uploads/notes.txt"


def test_an_upload_right_after_an_outside_ingest_keeps_both(tmp_path: Path):
    built = components(tmp_path)
    outside = tmp_path / "outside"
    shutil.copytree(SAMPLE_CORPUS, outside)
    _rag_ingest(outside, tmp_path / "data")
    for path in sorted((tmp_path / "corpus").iterdir()):  # and updates what this process ingested
        path.write_text(path.read_text() + "\n\nA closing note on refinery maintenance schedules.\n")
    _rag_ingest(tmp_path / "corpus", tmp_path / "data")

    # No poll in between: the upload itself must write through a client that sees the change.
    uploaded = built.library.upload([("notes.txt", b"The harbour master is Jonas Reef.")])
    assert uploaded[0].status == "added"
    fresh = subprocess.run([sys.executable, "-c", LIST_DOC_IDS, str(tmp_path / "data")],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    seen = eval(fresh.stdout)  # a list literal we printed
    corpus = sorted(p.name for p in SAMPLE_CORPUS.iterdir())
    assert seen == sorted(
        [*(f"corpus/{n}" for n in corpus), *(f"outside/{n}" for n in corpus), "uploads/notes.txt"]
    )
