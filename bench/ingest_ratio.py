"""Ingest throughput vs the encode ceiling, measured in one run (issue 3).

Replicates the sample corpus into N documents, runs `Ingestor.ingest` into a fresh store with
the real embedder, then encodes the very same chunk texts with plain
`SentenceTransformer.encode` (the ceiling). Writes bench/results/ingest_ratio.json.

    .venv/bin/python bench/ingest_ratio.py [--chunks 2000]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000, help="target number of chunks")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest_ratio.json")
    args = parser.parse_args()

    from rag.offline import enforce_offline

    enforce_offline()
    import torch
    from sentence_transformers import SentenceTransformer

    from index.chunking import Chunker
    from index.clean import clean_text
    from index.sync import Ingestor
    from rag.embeddings import build_embedder, default_model_dir
    from rag.settings import Settings
    from rag.store import open_store

    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    settings = Settings(data_dir=work / "data", collection="bench", _env_file=None)
    embedder = build_embedder(settings)
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap, fits=embedder.fits)
    ingestor = Ingestor(open_store(settings), embedder, chunker, 25_000_000, work / "data" / "ingest.lock")

    sample = sorted((REPO / "index" / "samples" / "corpus").glob("*.txt"))
    per_copy = sum(len(chunker.split(clean_text(p.read_text()).text)) for p in sample)
    copies = max(1, round(args.chunks / per_copy))
    corpus = work / "corpus"
    for i in range(copies):
        for p in sample:
            target = corpus / f"copy{i:04d}" / p.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, target)

    embedder.model.get_text_embedding("warm up")  # both sides start warm
    started = time.perf_counter()
    first = ingestor.ingest([corpus])
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    again = ingestor.ingest([corpus])
    reingest_s = time.perf_counter() - started

    texts = ingestor.store.client.get(include=["documents"])["documents"]
    model = SentenceTransformer(str(default_model_dir()), device="cpu")
    model.encode(["warm up"])
    started = time.perf_counter()
    model.encode(texts, batch_size=settings.embed_batch_size, normalize_embeddings=True)
    encode_s = time.perf_counter() - started

    n = first.chunks_embedded
    result = {
        "what": "rag ingest (Ingestor.ingest) vs SentenceTransformer.encode of the same chunk texts",
        "documents": len(first.files),
        "chunks": n,
        "chunk_size_tokens": settings.chunk_size,
        "chunk_overlap_tokens": settings.chunk_overlap,
        "embed_batch_size": settings.embed_batch_size,
        "ingest_seconds": round(ingest_s, 2),
        "ingest_chunks_per_s": round(n / ingest_s, 2),
        "encode_seconds": round(encode_s, 2),
        "encode_chunks_per_s": round(len(texts) / encode_s, 2),
        "ratio_ingest_to_encode": round((n / ingest_s) / (len(texts) / encode_s), 3),
        "reingest_seconds": round(reingest_s, 3),
        "reingest_chunks_embedded": again.chunks_embedded,
        "reingest_speedup": round(ingest_s / reingest_s, 1),
        "machine": {
            "cpus": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
