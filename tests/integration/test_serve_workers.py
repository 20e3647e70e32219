"""`rag serve --workers 2` on a Chroma server: both workers answer, and both pick up an ingest
made by another process (`rag ingest`), BM25 included."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _rag(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip


def test_two_workers_share_a_chroma_server_and_see_new_ingests(
    chroma_server: str, corpus: Path, tmp_path: Path, port: int
):
    env = {
        **os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_DATA_DIR": str(tmp_path / "data"),
        # The hash embedder: this test is about processes, not about embedding quality.
        "RAG_EMBEDDER": "hash", "RAG_ANSWERABILITY_THRESHOLD": "0.05", "RAG_INDEX_POLL_SECONDS": "0.5",
        "RAG_RATE_LIMIT_PER_MINUTE": "0",
    }  # fmt: skip
    assert _rag("ingest", str(corpus), env=env).returncode == 0
    log = (tmp_path / "serve.log").open("w")
    command = [sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        pids: set[int] = set()
        deadline = time.monotonic() + 240
        while len(pids) < 2:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, f"saw workers {pids}"
            try:  # a fresh connection each time, so the kernel spreads them over the workers
                ready = httpx.get(f"{base}/readyz", timeout=5, headers={"Connection": "close"})
                if ready.status_code == 200:
                    pids.add(ready.json()["pid"])
            except httpx.TransportError:
                time.sleep(0.5)

        more = tmp_path / "more"
        more.mkdir()
        (more / "otters.txt").write_text("The otter sanctuary at Quillhaven opens every spring.")
        assert _rag("ingest", str(more), env=env).returncode == 0
        time.sleep(2)  # four poll intervals

        seen: dict[int, int] = {}
        for _ in range(30):
            with httpx.Client(base_url=base, timeout=30) as client:  # new connection: any worker
                pid = client.get("/readyz").json()["pid"]
                body = client.post("/v1/retrieve", json={"query": "Quillhaven otter", "mode": "bm25"}).json()
            found = any(c["doc_id"] == "more/otters.txt" for c in body["chunks"])
            assert found, f"worker {pid} does not see the new document"
            seen[pid] = seen.get(pid, 0) + 1
        assert set(seen) == pids, f"both workers must answer, and see the new document: {seen}"
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
