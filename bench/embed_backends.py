"""Embedding backends (RAG_EMBED_BACKEND) in one run: encode throughput, first use, retrieval quality.

- Throughput: the same chunk texts (the SQuAD sample's documents, cleaned and chunked at the
  product's settings) encoded by every backend through `Embedder.model.get_text_embedding_batch`
  (what ingest calls), in batches of RAG_EMBED_BATCH_SIZE. The machine is shared and noisy, so
  the backends are interleaved: every round runs each backend once over all the chunks, in a
  rotated order, and the ratio to torch is taken within each round (median over rounds). Also the
  p50 latency of one query embedding, and each backend's cosine to the torch vectors.
- First use: `build_embedder` in a fresh process from an empty data dir (the ONNX export and its
  quantisation happen there, once), then again with the export cached, and its resident memory.
- Quality: `rag eval eval/cases/squad2-dev/questions.jsonl --retrieval-only --mode all` per
  backend, each with its own RAG_DATA_DIR so stores never mix; hit@1/hit@5/MRR per mode, the
  hit@5 delta to torch in points and the questions lost/gained at hit@5.
- Decision: the fastest backend whose dense and hybrid hit@5 drop less than 0.5 points vs torch.

Writes bench/results/embed_backends.json and prints a short table.

    .venv/bin/python bench/embed_backends.py [--chunks 400] [--rounds 5] [--skip-eval] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eval.cases import CASES

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = CASES / "squad2-dev" / "questions.jsonl"
MAX_DROP_POINTS = 0.5

# Run in a fresh interpreter: imports, model load and (cold) the export, as `rag ingest` sees them.
_FIRST_USE = """
import json, sys, time
started = time.perf_counter()
from rag.offline import enforce_offline
enforce_offline()
from pathlib import Path
from rag.embeddings import build_embedder
from app.components import load_settings
settings = load_settings(env_file=False, data_dir=Path(sys.argv[1]), embed_backend=sys.argv[2])
embedder = build_embedder(settings)
embedder.model.get_text_embedding("warm up")
seconds = time.perf_counter() - started
import os
from bench.load import memory_kb
rss = memory_kb(os.getpid())["VmRSS"]
print(json.dumps({"seconds": seconds, "rss_mb": rss / 1024}))
"""


def chunk_texts(limit: int, fits) -> list[str]:
    """Up to `limit` chunks spread evenly over the SQuAD sample's documents, as ingest cuts them."""
    from app.components import load_settings
    from bench.run import chunk_texts as ingest_chunks
    from index.chunking import Chunker

    settings = load_settings(env_file=False)
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap, fits=fits)
    texts = ingest_chunks(sorted((QUESTIONS.parent / "docs").glob("*.txt")), chunker)
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def throughput(backends: list[str], texts: list[str], rounds: int, work: Path) -> dict:
    import numpy as np

    from app.components import load_settings
    from rag.embeddings import build_embedder, unit_rows

    embedders = {
        b: build_embedder(load_settings(env_file=False, data_dir=work / b, embed_backend=b)) for b in backends
    }
    vectors = {b: unit_rows(e.model.get_text_embedding_batch(texts)) for b, e in embedders.items()}  # warm
    speeds: dict[str, list[float]] = {b: [] for b in backends}
    ratios: dict[str, list[float]] = {b: [] for b in backends}
    query_ms: dict[str, list[float]] = {b: [] for b in backends}
    for r in range(rounds):
        order = backends[r % len(backends) :] + backends[: r % len(backends)]
        seconds = {}
        for b in order:
            started = time.perf_counter()
            embedders[b].model.get_text_embedding_batch(texts)
            seconds[b] = time.perf_counter() - started
            for text in texts[r::47][:10]:  # single queries, as a search embeds them
                started = time.perf_counter()
                embedders[b].model.get_query_embedding(text[:200])
                query_ms[b].append((time.perf_counter() - started) * 1000)
        for b in backends:
            speeds[b].append(len(texts) / seconds[b])
            ratios[b].append(seconds["torch"] / seconds[b])
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{b} {speeds[b][-1]:.1f}/s" for b in backends))
    result = {}
    for b in backends:
        cosines = (vectors[b] * vectors["torch"]).sum(axis=1)
        result[b] = {
            "embedder": embedders[b].name,
            "median_chunks_per_s": round(statistics.median(speeds[b]), 2),
            "ratio_to_torch": round(statistics.median(ratios[b]), 3),
            "chunks_per_s_per_round": [round(s, 2) for s in speeds[b]],
            "query_ms_p50": round(statistics.median(query_ms[b]), 2),
            "cosine_to_torch": {
                "min": round(float(cosines.min()), 5),
                "p1": round(float(np.percentile(cosines, 1)), 5),
                "mean": round(float(cosines.mean()), 5),
            },
        }
    return result


def first_use(backends: list[str], work: Path) -> dict:
    result = {}
    for b in backends:
        data_dir = work / "first-use" / b
        runs = []
        for _ in ("cold", "warm"):
            out = subprocess.run(
                [sys.executable, "-c", _FIRST_USE, str(data_dir), b],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        records = sorted((data_dir / "models").glob("*/*.onnx.json"))
        result[b] = {
            "cold_start_seconds": round(runs[0]["seconds"], 2),
            "warm_start_seconds": round(runs[1]["seconds"], 2),
            "rss_mb_after_first_embedding": round(runs[1]["rss_mb"]),
            "built": {r.name.removesuffix(".json"): json.loads(r.read_text())["seconds"] for r in records},
        }
        print(f"first use {b}: {result[b]}")
    return result


def evaluate(backends: list[str], work: Path) -> dict:
    rag = Path(sys.executable).parent / "rag"
    results, hit5 = {}, {}
    for b in backends:
        out = work / b / "eval"
        env = {**os.environ, "RAG_EMBED_BACKEND": b, "RAG_DATA_DIR": str(work / b)}
        started = time.perf_counter()
        subprocess.run(
            [str(rag), "eval", str(QUESTIONS), "--retrieval-only", "--mode", "all", "--out", str(out)],
            check=True,
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        data = json.loads((out / "results.json").read_text())
        assert data["meta"]["settings"]["embed_backend"] == b
        results[b] = {
            "modes": {
                mode: {m: data["modes"][mode][m] for m in ("hit@1", "hit@5", "mrr")} for mode in data["modes"]
            },
            "n": data["meta"]["n_cases"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        hit5[b] = {c["id"]: {m: s["hit@5"] for m, s in c["retrieval"].items()} for c in data["cases"]}
        print(f"eval {b}: {results[b]['modes']}")
    for b in backends:  # paired against torch: the same questions, so flips are exact
        base, now = hit5["torch"], hit5[b]
        results[b]["hit@5_delta_points"] = {}
        results[b]["hit@5_lost_gained"] = {}
        for mode in ("dense", "hybrid"):
            delta = results[b]["modes"][mode]["hit@5"] - results["torch"]["modes"][mode]["hit@5"]
            results[b]["hit@5_delta_points"][mode] = round(100 * delta, 2)
            lost = sum(1 for q, h in now.items() if base[q][mode] > h[mode])
            gained = sum(1 for q, h in now.items() if base[q][mode] < h[mode])
            results[b]["hit@5_lost_gained"][mode] = [lost, gained]
    return results


def decide(speed: dict, quality: dict | None) -> dict:
    eligible = [
        b
        for b in speed
        if quality is None
        or all(quality[b]["hit@5_delta_points"][m] > -MAX_DROP_POINTS for m in ("dense", "hybrid"))
    ]
    best = max(eligible, key=lambda b: speed[b]["ratio_to_torch"])
    return {
        "rule": f"fastest backend whose dense and hybrid hit@5 drop < {MAX_DROP_POINTS} points vs torch",
        "eligible": eligible,
        "choice": best if quality is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=400, help="chunk texts to encode per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--skip-eval", action="store_true", help="throughput and first use only")
    parser.add_argument("--work", type=Path, help="data dirs per backend (kept; default: a temp dir)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "embed_backends.json")
    args = parser.parse_args()

    from rag.offline import enforce_offline

    enforce_offline()
    import onnxruntime
    import torch

    from app.components import load_settings
    from rag.embeddings import BACKENDS, build_embedder

    backends = list(BACKENDS)
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-embed-backends-"))
    settings = load_settings(env_file=False)
    fits = build_embedder(load_settings(env_file=False, data_dir=work / "torch")).fits
    texts = chunk_texts(args.chunks, fits)
    print(f"{len(texts)} chunks, batch {settings.embed_batch_size}, {args.rounds} rounds; work dir {work}")

    first = first_use(backends, work)
    speed = throughput(backends, texts, args.rounds, work)
    quality = None if args.skip_eval else evaluate(backends, work)
    result = {
        "what": "RAG_EMBED_BACKEND compared: encode throughput (interleaved rounds), first use, "
        "retrieval quality on the SQuAD sample (1,000 answerable questions)",
        "chunks": len(texts),
        "embed_batch_size": settings.embed_batch_size,
        "rounds": args.rounds,
        "throughput": speed,
        "first_use": first,
        "retrieval": quality,
        "decision": decide(speed, quality),
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"\n{'backend':<11} {'chunks/s':>9} {'x torch':>8} {'query ms':>9} {'cos min':>8} {'cold s':>7}",
        end="",
    )
    print("" if quality is None else f" {'dense h@5':>10} {'hybrid h@5':>11} {'delta pts d/h':>14}")
    for b in backends:
        s, f = speed[b], first[b]
        row = (
            f"{b:<11} {s['median_chunks_per_s']:>9.1f} {s['ratio_to_torch']:>8.2f} {s['query_ms_p50']:>9.1f}"
        )
        row += f" {s['cosine_to_torch']['min']:>8.4f} {f['cold_start_seconds']:>7.1f}"
        if quality is not None:
            q = quality[b]
            d = q["hit@5_delta_points"]
            row += f" {q['modes']['dense']['hit@5']:>10.3f} {q['modes']['hybrid']['hit@5']:>11.3f}"
            row += f" {d['dense']:>+7.1f}/{d['hybrid']:+.1f}"
        print(row)
    print(f"decision: {result['decision']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
