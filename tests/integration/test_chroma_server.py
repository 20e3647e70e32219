"""`rag ingest` and `rag retrieve` through a real `chroma run` server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _rag(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_ingest_and_retrieve_through_a_chroma_server(chroma_server: str, corpus: Path, tmp_path: Path):
    server_env = {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_DATA_DIR": str(tmp_path / "local")}
    first = _rag("ingest", str(corpus), "--json", env=server_env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == 2
    second = _rag("ingest", str(corpus), "--json", env=server_env)
    assert json.loads(second.stdout)["chunks_embedded"] == 0
    # The data lives in the server, not in the local data dir.
    assert not (tmp_path / "local" / "chroma").exists()

    # Same corpus into the embedded store: the server must retrieve exactly the same chunks.
    embedded_env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "embedded")}
    assert _rag("ingest", str(corpus), env=embedded_env).returncode == 0
    question = "What does the author say about refining capacity?"
    via_server = json.loads(_rag("retrieve", question, "-k", "4", "--json", env=server_env).stdout)
    embedded = json.loads(_rag("retrieve", question, "-k", "4", "--json", env=embedded_env).stdout)
    assert len(via_server) == 4
    assert [h["id"] for h in via_server] == [h["id"] for h in embedded]
    assert [h["score"] for h in via_server] == pytest.approx([h["score"] for h in embedded], abs=1e-4)
    assert any("refining capacity" in hit["text"] for hit in via_server)
