"""kill -9 a real `rag ingest` process at random points over a mixed corpus (txt, md, html, pdf,
docx); each rerun must converge to the corpus: no duplicate, nothing missing, BM25 in step.

`make test` kills at 6 points; `make reliability` at 20 (RAG_KILL_POINTS)."""

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

from rag import records
from rag.settings import Settings
from rag.store import open_store

KILL_POINTS = int(os.environ.get("RAG_KILL_POINTS", "6"))
KINDS = (".txt", ".md", ".html", ".pdf", ".docx")


def _write(folder: Path, i: int, revision: int) -> None:
    """File i of the corpus, of kind i % 5, at a revision (each revision changes its text)."""
    paragraphs = [
        f"File {i}, paragraph {j}: the plant in region {i % 13} reported output figure {i * 31 + j}."
        for j in range(40)
    ] + ([f"Revision {revision}."] if revision else [])
    kind = KINDS[i % len(KINDS)]
    path = folder / f"doc{i:03d}{kind}"
    if kind == ".pdf":
        from fpdf import FPDF

        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("helvetica", size=10)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 5, paragraph, new_x="LMARGIN", new_y="NEXT")
        pdf.output(str(path))
    elif kind == ".docx":
        import docx

        document = docx.Document()
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
        document.save(str(path))
    elif kind == ".html":
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        path.write_text(
            f"<html><head><title>Doc {i}</title></head><body><article>{body}</article></body></html>"
        )
    else:
        path.write_text("\n\n".join(paragraphs))


def _corpus(folder: Path, n_files: int, revision: int = 0) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(n_files):
        _write(folder, i, revision)


def _bm25_ids(data_dir: Path, collection: str) -> set[str]:
    """The chunk ids a fresh server process's BM25 index holds (loaded or rebuilt from the store)."""
    from rag.embeddings import hash_embedder
    from rag.retrieval import Retriever

    store = open_store(Settings(data_dir=data_dir, collection=collection, _env_file=None))
    retriever = Retriever(store, hash_embedder(), data_dir / "bm25" / collection)
    retriever.warm_up()
    return {entry["node_id"] for entry in retriever._bm25.corpus}


def _reader_problems(data_dir: Path, collection: str) -> list[str]:
    """What a reader (a server between the kill and the rerun) would see that it must not: chunks
    of a version that is not whole in the store, or two versions of one document."""
    from rag.embeddings import hash_embedder
    from rag.retrieval import Retriever

    store = open_store(Settings(data_dir=data_dir, collection=collection, _env_file=None))
    stored = Counter(m[records.VERSION] for m in store.client.get(include=["metadatas"])["metadatas"])
    retriever = Retriever(store, hash_embedder(), data_dir / "bm25" / (collection + "-reader"))
    # What BM25 serves, read off its index: after a kill -9 Chroma's vector segment can be
    # unreadable until the rerun ("Nothing found on disk", even for get(include=["embeddings"])), a
    # finding of its own; the dense side's version filter is tested in tests/test_retrieval.py.
    retriever.warm_up()
    in_bm25 = retriever._bm25.corpus if retriever._bm25 else []  # no version complete yet
    seen = [(e[records.DOC_ID], e[records.VERSION], int(e[records.N_CHUNKS])) for e in in_bm25]
    problems = [f"{doc} {version}: {stored[version]} of {n} chunks" for doc, version, n in set(seen)
                if stored[version] != n]  # fmt: skip
    versions = Counter(doc for doc, _ in {(doc, version) for doc, version, _ in seen})
    return problems + [f"{doc}: {n} versions" for doc, n in versions.items() if n > 1]


def _ingest(folder: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ingest", str(folder), "--prune"],
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
            _corpus(folder, 60, revision=point)
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
            if _rows(data_dir, collection):
                assert _reader_problems(data_dir, collection) == [], f"a reader after kill point {point}"
        rerun = _ingest(folder, victim_env)
        assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()
        got = _rows(data_dir, collection)
        assert [i for i, n in Counter(i for i, _ in got).items() if n > 1] == []
        assert sorted(got) == expected, f"store differs from corpus after kill point {point}"
        assert _bm25_ids(data_dir, collection) == {i for i, _ in got}, f"BM25 out of step after {point}"
    assert partial_states >= KILL_POINTS // 2, "kills mostly landed after the work was done"
