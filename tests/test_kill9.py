"""kill -9 a real `rag ingest` process at several points; each rerun must converge to the corpus."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import store_rows

from rag.settings import Settings
from rag.store import open_store

KILL_POINTS = 6


def _corpus(folder: Path, n_files: int) -> None:
    folder.mkdir()
    for i in range(n_files):
        text = "\n\n".join(
            f"File {i}, paragraph {j}: the plant in region {i % 13} reported output figure {i * 31 + j}."
            for j in range(40)
        )
        (folder / f"doc{i:03d}.txt").write_text(text)


def _ingest(folder: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ingest", str(folder), "--prune"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _rows(data_dir: Path, collection: str) -> list[tuple[str, str]]:
    store = open_store(Settings(data_dir=data_dir, collection=collection, _env_file=None))
    got = store.client.get(include=["documents"])
    return list(zip(got["ids"], got["documents"], strict=True))


def _expected(make_ingestor, folder: Path, collection: str) -> list[tuple[str, str]]:
    """What a clean, uninterrupted ingest of the corpus stores (in-process, separate data dir)."""
    ingestor = make_ingestor(collection=collection)
    ingestor.ingest([folder])
    return sorted((i, t) for i, t, _ in store_rows(ingestor.store))


def test_kill9_at_random_points_then_rerun_converges(tmp_path: Path, make_ingestor):
    folder = tmp_path / "corpus"
    _corpus(folder, 60)
    data_dir = tmp_path / "victim-data"
    env = {**os.environ, "RAG_EMBEDDER": "hash", "RAG_DATA_DIR": str(data_dir)}
    started = time.monotonic()
    proc = _ingest(folder, {**env, "RAG_COLLECTION": "timing"})
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    full_run = time.monotonic() - started

    rng = random.Random(20261125)
    partial_states = 0
    for point in range(KILL_POINTS):
        if point % 2:
            # Odd rounds kill an update: every file changed, so old versions must be replaced.
            for path in folder.glob("*.txt"):
                path.write_text(path.read_text() + f"\n\nRevision {point}.")
        else:
            # Even rounds kill a first ingest into an empty collection.
            collection = f"victim{point}"
        expected = _expected(make_ingestor, folder, f"reference{point}")
        victim_env = {**env, "RAG_COLLECTION": collection}
        # Python start-up and imports take a while: aim the kills across the rest of the run.
        delay = rng.uniform(0.35, 0.9) * full_run
        proc = _ingest(folder, victim_env)
        time.sleep(delay)
        if proc.poll() is not None:
            pytest.fail(f"ingest finished before kill point {point} ({delay:.2f}s); corpus too small")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if sorted(_rows(data_dir, collection)) != expected:
            partial_states += 1
        rerun = _ingest(folder, victim_env)
        assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()
        got = _rows(data_dir, collection)
        assert [i for i, n in Counter(i for i, _ in got).items() if n > 1] == []
        assert sorted(got) == expected, f"store differs from corpus after kill point {point}"
    assert partial_states >= KILL_POINTS // 2, "kills mostly landed after the work was done"
