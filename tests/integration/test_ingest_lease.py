"""The ingest lease through a real `chroma run` server: two `rag ingest` processes with data dirs of
their own (two machines, as far as any local file can tell) into one collection, and takers
racing over HTTP. Expiry is tested with an injected clock in tests/test_store_state.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from app.commands import EXIT_LOCKED
from rag.store_state import LeaseHeld, StoreState

COLLECTION = "documents"


def _state_collection(url: str):
    host, port = url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(
        host=host, port=int(port), settings=ChromaSettings(anonymized_telemetry=False)
    )
    return client.get_or_create_collection(COLLECTION + "__state", embedding_function=None)


def _lease(state) -> dict | None:
    """The newest lease record, as the server holds it."""
    got = state.get(where={"kind": "lease"}, include=["metadatas"])["metadatas"]
    return max(got, key=lambda m: m["generation"], default=None)


def _wait_for(what: str, check, proc: subprocess.Popen, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        assert proc.poll() is None, f"the ingest ended before {what}: {proc.stderr.read()}"
        time.sleep(0.05)
    pytest.fail(f"no {what} within {timeout} s")


def test_two_ingests_on_two_data_dirs_into_one_server_one_writes_the_other_is_refused(
    chroma_server: str, corpus: Path, tmp_path: Path
):
    # The first file is a named pipe: the first ingest blocks reading it, lease held, until the test
    # writes it, so the second ingest surely starts while the first runs.
    pipe, text = tmp_path / "pipe", "The first file arrives late, as from a slow disk.\n"
    os.mkfifo(pipe)
    (corpus / "000_first.txt").symlink_to(pipe)
    env = {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_COLLECTION": COLLECTION,
           "RAG_INGEST_LEASE_SECONDS": "12"}  # fmt: skip
    command = [sys.executable, "-m", "app.cli", "ingest", str(corpus), "--json"]

    def ingest_from(machine: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, env={**env, "RAG_DATA_DIR": str(tmp_path / machine)},
                              capture_output=True, text=True, timeout=180)  # fmt: skip

    first = subprocess.Popen(command, env={**env, "RAG_DATA_DIR": str(tmp_path / "machine-a")},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        state = _state_collection(chroma_server)
        held = _wait_for("lease", lambda: (m := _lease(state)) and not m["released"] and m, first)
        assert held["pid"] == first.pid
        # Past the expiry it took the lease with: only its renewals keep it now.
        _wait_for("renewal", lambda: _lease(state)["expires"] > held["expires"], first, timeout=60)
        _wait_for("expiry of the first lease", lambda: time.time() > held["expires"], first)

        second = ingest_from("machine-b")
        assert second.returncode == EXIT_LOCKED, second.stderr
        holder = f"held by pid {first.pid} on {socket.gethostname()} until 20"
        assert f"another ingest is running into {COLLECTION!r}: {holder}" in second.stderr
        assert state.get(ids=["stamp"])["ids"] == [], "the refused ingest wrote nothing, not even the stamp"

        with open(pipe, "w") as feed:
            feed.write(text)
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    report = json.loads(out)
    assert (report["added"], report["failed"]) == (3, 0)
    assert _lease(state)["released"], "released when it ended"

    # The lease is free again, and the other machine finds everything written once, by the first.
    (corpus / "000_first.txt").unlink()
    (corpus / "000_first.txt").write_text(text)
    again = ingest_from("machine-b")
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert (rerun["unchanged"], rerun["chunks_embedded"]) == (3, 0)
    assert rerun["chunks_in_store"] == report["chunks_in_store"]


def _race(url: str, takers: int) -> tuple[list, list[str]]:
    """`takers` threads, each its own HTTP client, take the lease at once: (leases won, owners named
    by the refusals)."""
    barrier = threading.Barrier(takers)
    won, refused = [], []

    def take() -> None:
        state = StoreState(_state_collection(url), lease_seconds=60)
        barrier.wait()
        try:
            won.append(state.take())
        except LeaseHeld as exc:
            refused.append(exc.record.owner)

    threads = [threading.Thread(target=take) for _ in range(takers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, refused


def test_takers_racing_over_http_get_one_lease(chroma_server: str):
    for round_ in range(5):
        won, refused = _race(chroma_server, takers=8)
        assert len(won) == 1, f"round {round_}: {len(won)} takers hold the lease"
        assert set(refused) == {won[0].record.owner}, "every loser names the winner"
        won[0].release()
