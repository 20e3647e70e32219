"""Crash a real `rag ingest` over a mixed corpus (txt, md, html, pdf, docx), read the store as a
server would before anything repairs it, then rerun. A reader must see only complete versions,
never two versions of one document; the rerun must converge to the corpus: no duplicate, nothing
missing, BM25 in step.

- After every write step, deterministically: `RAG_CRASH_AFTER_STEP=N` (index/crashpoint.py) makes
  the ingest exit hard after its Nth store call, for every N of an update that adds, changes and
  removes documents.
- At random moments with SIGKILL, which also lands inside a store call: 3 kills in `make test`, 20
  in `make reliability` (RAG_KILL_POINTS). A kill after the ingest finished is counted, not failed:
  the steps above are the coverage that does not depend on timing.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest
from chromadb.api.shared_system_client import SharedSystemClient
from conftest import store_rows

from index.crashpoint import CRASH_EXIT, VARIABLE
from index.sync import Ingestor
from rag import records
from rag.settings import Settings
from rag.store import open_store, readable_versions

KILL_POINTS = int(os.environ.get("RAG_KILL_POINTS", "3"))
KINDS = (".txt", ".md", ".html", ".pdf", ".docx")
N_FILES = 60  # ~300 chunks: two write batches (index.sync.BATCH_CHUNKS), and crashes between them
COLLECTION = "victim"
# Words every file has, and words of some files only: retrieval then returns chunks of every kind.
QUERIES = ("plant region reported output figure", "File 7, paragraph 12", "Revision 1.")


def _write(folder: Path, i: int, revision: int, kinds: tuple[str, ...]) -> None:
    """File i of the corpus, of kind i % len(kinds), at a revision (each changes its text)."""
    paragraphs = [
        f"File {i}, paragraph {j}: the plant in region {i % 13} reported output figure {i * 31 + j}."
        for j in range(40)
    ] + ([f"Revision {revision}."] if revision else [])
    kind = kinds[i % len(kinds)]
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


def _corpus(folder: Path, n_files: int, revision: int = 0, kinds: tuple[str, ...] = KINDS) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(n_files):
        _write(folder, i, revision, kinds)


def _settings(data_dir: Path, collection: str = COLLECTION) -> Settings:
    return Settings(data_dir=data_dir, collection=collection, embedder="hash", _env_file=None)


def _env(data_dir: Path, collection: str = COLLECTION, **extra: str) -> dict:
    return {**os.environ, "RAG_EMBEDDER": "hash", "RAG_DATA_DIR": str(data_dir),
            "RAG_COLLECTION": collection, **extra}  # fmt: skip


def _ingest(folder: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ingest", str(folder), "--prune"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _open(data_dir: Path, collection: str = COLLECTION):
    """The store as a process that opens it now sees it: a server started after the crash, or
    after the rerun. An embedded Chroma client keeps what it read, and another process's writes
    leave that stale (retrieval then fails, "Error finding id"), so no client is reused."""
    SharedSystemClient.clear_system_cache()
    return open_store(_settings(data_dir, collection))


def _rows(data_dir: Path, collection: str = COLLECTION) -> list[tuple[str, str]]:
    got = _open(data_dir, collection).client.get(include=["documents"])
    return sorted(zip(got["ids"], got["documents"], strict=True))


def _expected(make_ingestor, folder: Path, collection: str) -> list[tuple[str, str]]:
    """What a clean, uninterrupted ingest of the corpus stores (in-process, separate data dir)."""
    ingestor = make_ingestor(collection=collection)
    ingestor.ingest([folder])
    return sorted((i, t) for i, t, _ in store_rows(ingestor.store))


def _bm25_ids(data_dir: Path, collection: str = COLLECTION) -> set[str]:
    """The chunk ids a fresh server process's BM25 index holds (loaded or rebuilt from the store)."""
    from rag.embeddings import hash_embedder
    from rag.retrieval import Retriever

    retriever = Retriever(_open(data_dir, collection), hash_embedder(), data_dir / "bm25" / collection)
    retriever.warm_up()
    return {entry["node_id"] for entry in retriever._view.bm25.corpus}


def _reader_problems(data_dir: Path, collection: str = COLLECTION) -> list[str]:
    """What a reader (a server between the crash and the rerun) sees that it must not: a readable
    or retrieved chunk of a version that is not whole in the store, two versions of one document,
    or an error. Every retrieval mode is asked, dense included."""
    from rag.embeddings import hash_embedder
    from rag.retrieval import Retriever

    store = _open(data_dir, collection)
    metadatas = store.client.get(include=["metadatas"])["metadatas"]
    stored = Counter(m[records.VERSION] for m in metadatas)
    heads = {m[records.VERSION]: int(m[records.N_CHUNKS]) for m in metadatas if m[records.CHUNK_INDEX] == 0}
    problems = [f"readable {v}: {stored[v]} of {heads[v]} chunks stored"
                for v in readable_versions(store) if stored[v] != heads[v]]  # fmt: skip
    retriever = Retriever(store, hash_embedder(), data_dir / "bm25" / (collection + "-reader"))
    seen: set[tuple[str, str, int]] = set()
    for mode, query in itertools.product(("dense", "bm25", "hybrid"), QUERIES):
        try:
            hits, _ = retriever.retrieve(query, mode, top_k=50)
        except Exception as exc:  # an error a server would answer with: a finding, not noise
            problems.append(f"{mode} retrieval of {query!r} failed: {type(exc).__name__}: {exc}")
            continue
        seen |= {(h.chunk.doc_id, h.chunk.version, h.chunk.n_chunks) for h in hits}
    problems += [f"retrieved {doc} {version}: {stored[version]} of {n} chunks stored"
                 for doc, version, n in seen if stored[version] != n]  # fmt: skip
    versions = Counter(doc for doc, _, _ in seen)
    return problems + [f"retrieved {doc}: {n} versions" for doc, n in versions.items() if n > 1]


def _converged(data_dir: Path, expected: list[tuple[str, str]], where: str) -> None:
    got = _rows(data_dir)
    assert [i for i, n in Counter(i for i, _ in got).items() if n > 1] == [], f"duplicates {where}"
    assert got == expected, f"store differs from the corpus {where}"
    assert _bm25_ids(data_dir) == {i for i, _ in got}, f"BM25 out of step {where}"


def _rerun(folder: Path, data_dir: Path) -> Ingestor:
    """The same `rag ingest --prune`, in-process (the composition `rag ingest` uses; no start-up)."""
    from app.components import build_ingestor
    from rag.embeddings import build_embedder

    settings = _settings(data_dir)
    ingestor = build_ingestor(settings, open_store(settings), build_embedder(settings))
    report = ingestor.ingest([folder], prune=True)
    assert report.count("failed") == 0, report.summary()
    return ingestor


def test_crash_after_every_write_step_then_rerun_converges(tmp_path: Path, make_ingestor):
    """One update holds every kind of document: new ones (no older version), changed ones (the
    old version complete until the new one is), and a removed one (--prune)."""
    folder = tmp_path / "corpus"
    _corpus(folder, N_FILES, kinds=(".txt",))  # the kind of file does not change the write steps
    base = tmp_path / "base"  # where every crashed ingest starts from
    proc = _ingest(folder, _env(base))
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    _corpus(folder, N_FILES + 5, revision=1, kinds=(".txt",))
    next(folder.glob("doc000.*")).unlink()

    expected = _expected(make_ingestor, folder, "reference")
    # The update uninterrupted, in-process: how many write steps it makes.
    shutil.copytree(base, tmp_path / "uninterrupted")
    uninterrupted = _rerun(folder, tmp_path / "uninterrupted")
    _converged(tmp_path / "uninterrupted", expected, "after an uninterrupted update")

    steps: list[str] = []
    for step in range(1, uninterrupted._crash.steps + 1):
        data_dir = tmp_path / f"step{step}"
        shutil.copytree(base, data_dir)
        proc = _ingest(folder, _env(data_dir, **{VARIABLE: str(step)}))
        stderr = proc.communicate(timeout=300)[1].decode()
        assert proc.returncode == CRASH_EXIT, stderr
        said = next(line for line in stderr.splitlines() if line.startswith(f"{VARIABLE}={step}:"))
        steps.append(said.rsplit("(", 1)[1].rstrip(")"))
        assert _reader_problems(data_dir) == [], f"a reader after step {step} ({steps[-1]})"
        _rerun(folder, data_dir)
        _converged(data_dir, expected, f"after step {step} ({steps[-1]}) and the rerun")
        shutil.rmtree(data_dir)
    # Per batch (two of them): clear the new ids (the add then upserts), add the chunks, add the
    # heads (the versions are complete), delete the documents' other versions; then --prune.
    assert steps == ["delete", "add", "add", "delete"] * 2 + ["delete"]


def test_kill9_at_random_points_then_rerun_converges(tmp_path: Path, make_ingestor):
    folder = tmp_path / "corpus"
    _corpus(folder, N_FILES)
    data_dir = tmp_path / "victim-data"
    started = time.monotonic()
    proc = _ingest(folder, _env(data_dir, "timing"))
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    full_run = time.monotonic() - started

    rng = random.Random(20261125)
    finished_first = 0
    for point in range(KILL_POINTS):
        if point % 2:
            # Odd rounds kill an update: every file changed, so old versions must be replaced.
            _corpus(folder, N_FILES, revision=point)
        else:
            # Even rounds kill a first ingest into an empty collection.
            collection = f"victim{point}"
        expected = _expected(make_ingestor, folder, f"reference{point}")
        victim_env = _env(data_dir, collection)
        proc = _ingest(folder, victim_env)
        # Python start-up and imports take a while: aim the kills across the rest of the run.
        time.sleep(rng.uniform(0.35, 0.9) * full_run)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        else:
            finished_first += 1
        if _rows(data_dir, collection):
            assert _reader_problems(data_dir, collection) == [], f"a reader after kill point {point}"
        rerun = _ingest(folder, victim_env)
        assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()
        got = _rows(data_dir, collection)
        assert [i for i, n in Counter(i for i, _ in got).items() if n > 1] == []
        assert got == expected, f"store differs from corpus after kill point {point}"
        assert _bm25_ids(data_dir, collection) == {i for i, _ in got}, f"BM25 out of step after {point}"
    if finished_first:
        warnings.warn(f"{finished_first} of {KILL_POINTS} random kills came after the ingest finished",
                      stacklevel=1)  # fmt: skip


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_crash_step_is_refused_naming_the_variable(value: str, monkeypatch):
    from index.crashpoint import CrashPoint

    monkeypatch.setenv(VARIABLE, value)
    with pytest.raises(ValueError, match=VARIABLE):
        CrashPoint.from_environment()
