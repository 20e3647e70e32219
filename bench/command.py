"""`rag bench`, added to the `rag` command through the `rag.commands` entry point (pyproject), so
the CLI in `app` never imports `bench`. The measurements are in `bench.run`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_command(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure ingest, retrieval, serving and the local model; write JSON",
        description="Benchmarks as ratios against the obvious alternatives, measured in one run: "
        "ingest vs plain encoding vs LlamaIndex from_documents, re-ingest, retrieval latency per "
        "stage vs LlamaIndex's default retriever, /v1/ask end to end and server RSS, the local "
        "model's first token and tokens/s. Generated corpora, stores and an embedding cache are "
        "kept in --work, so a second run is faster. See bench/README.md.",
    )
    bench.add_argument("--chunks", type=int, default=10_000, help="store size for latency and serving")
    bench.add_argument(
        "--ingest-chunks", type=int, default=2_000, help="corpus size for ingest throughput (default 2000)"
    )
    bench.add_argument("--queries", type=int, default=200, help="retrieval queries per mode (default 200)")
    bench.add_argument(
        "--parts",
        default="ingest,retrieve,serve,answer,extractive",
        help="comma-separated subset of the parts",
    )
    bench.add_argument("--work", help="working folder (default: RAG_DATA_DIR/bench)")
    bench.add_argument("--out", help="result file (default: bench/results/bench_<chunks>.json)")
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from rag.offline import enforce_offline

    enforce_offline()
    from app.commands import EXIT_OK, EXIT_USAGE, settings_for
    from bench.run import PARTS, BenchConfig, run, summary, write
    from rag.embeddings import build_embedder

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        print(
            f"rag bench: unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}", file=sys.stderr
        )
        return EXIT_USAGE
    settings = settings_for(args)
    work = Path(args.work) if args.work else settings.data_dir / "bench"
    config = BenchConfig(work=work, chunks=args.chunks, ingest_chunks=args.ingest_chunks,
                         queries=args.queries, parts=parts)  # fmt: skip
    results = run(settings, build_embedder(settings), config)
    out = Path(args.out) if args.out else Path("bench") / "results" / f"bench_{args.chunks}.json"
    write(results, out)
    print(summary(results))
    print(f"wrote {out}")
    return EXIT_OK
