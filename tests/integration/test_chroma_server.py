"""`rag ingest` and `rag retrieve` through a real `chroma run` server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
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
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "chroma run exited"
            assert time.monotonic() < deadline, "chroma server did not start in 60 s"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _rag(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=env, timeout=600
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
