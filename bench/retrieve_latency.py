"""Retrieve-stage latency on the sample corpus replicated to N chunks (issue 4).

Replicates the sample corpus into copies until the store holds ~N chunks (real MiniLM
embeddings), then times `Retriever.retrieve` per stage for each mode over a fixed query set.
Writes bench/results/retrieve_latency_<N>.json.

    .venv/bin/python bench/retrieve_latency.py [--chunks 10000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sample_questions import QUESTIONS as SAMPLE  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = SAMPLE


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--work", type=Path, help="reuse this folder (keeps the ingested store)")
    args = parser.parse_args()

    from rag.offline import enforce_offline

    enforce_offline()
    from index.chunking import Chunker
    from index.clean import clean_text
    from index.sync import Ingestor
    from rag.embeddings import build_embedder
    from rag.retrieval import MODES, Retriever
    from rag.settings import Settings
    from rag.store import open_store

    work = args.work or Path(tempfile.mkdtemp(prefix="rag-bench-"))
    settings = Settings(data_dir=work / "data", collection="bench", _env_file=None)
    embedder = build_embedder(settings)
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap, fits=embedder.fits)
    store = open_store(settings)
    sample = sorted((REPO / "index" / "samples" / "corpus").glob("*.txt"))
    per_copy = sum(len(chunker.split(clean_text(p.read_text()).text)) for p in sample)
    corpus = work / "corpus"
    for i in range(max(1, round(args.chunks / per_copy))):
        for p in sample:
            target = corpus / f"copy{i:05d}" / p.name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, target)
    started = time.perf_counter()
    report = Ingestor(store, embedder, chunker, 25_000_000, work / "data" / "ingest.lock").ingest([corpus])
    ingest_s = time.perf_counter() - started  # with --work on a second run: the unchanged re-ingest

    retriever = Retriever(store, embedder, work / "data" / "bm25")
    started = time.perf_counter()
    retriever.warm_up()
    bm25_build_s = time.perf_counter() - started
    rng = random.Random(7)
    queries = [rng.choice(QUESTIONS) for _ in range(args.queries)]
    results = {}
    for mode in MODES:
        retriever.retrieve(QUESTIONS[0], mode)  # warm
        stages: dict[str, list[float]] = {}
        for query in queries:
            started = time.perf_counter()
            _, timings = retriever.retrieve(query, mode)
            timings["total"] = time.perf_counter() - started  # wall time of the whole call
            for stage, seconds in timings.items():
                stages.setdefault(stage, []).append(seconds * 1000)
        results[mode] = {
            stage: {
                "p50_ms": round(statistics.median(v), 2),
                "p95_ms": round(percentile(v, 95), 2),
                "p99_ms": round(percentile(v, 99), 2),
            }
            for stage, v in stages.items()
        }
    out = {
        "what": "Retriever.retrieve per-stage latency, top_k=5, sample corpus replicated",
        "chunks_in_store": store.client.count(),
        "queries": args.queries,
        "ingest_seconds": round(ingest_s, 1),
        "chunks_embedded": report.chunks_embedded,
        "bm25_build_or_load_seconds": round(bm25_build_s, 2),
        "modes": results,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    path = REPO / "bench" / "results" / f"retrieve_latency_{args.chunks}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
