"""`rag`: the one console script, and the composition root.

It builds components from `Settings` and hands them to the package that does the work. It is
the one module allowed to import every package, and only inside the command functions, so
`rag --help` stays instant (no torch, no chromadb). tests/test_architecture.py checks both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.settings import Settings
from rag.types import MODES

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    """Settings from the environment, with the command line's overrides (validated like the rest)."""
    overrides = {name: value for name in ("collection", "llm") if (value := getattr(args, name, None))}
    return Settings(**(overrides | extra))


def _ingestor(settings: Settings, store, embedder):
    from index.components import build_ingestor

    return build_ingestor(settings, store, embedder)


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.offline import enforce_offline

    enforce_offline()
    from index.sync import IngestLocked
    from rag.embeddings import build_embedder
    from rag.store import open_store

    settings = _settings(args)
    ingestor = _ingestor(settings, open_store(settings), build_embedder(settings))
    try:
        report = ingestor.ingest([Path(p) for p in args.paths], prune=args.prune)
    except FileNotFoundError as exc:
        print(f"rag ingest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except IngestLocked as exc:
        print(f"rag ingest: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    for f in report.files:
        for warning in f.warnings:
            print(f"warning: {f.path}: {warning}", file=sys.stderr)
        if f.status == "failed":
            print(f"failed: {f.path}: {f.error}", file=sys.stderr)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return EXIT_FAILED if report.count("failed") else EXIT_OK


def cmd_retrieve(args: argparse.Namespace) -> int:
    from rag.offline import enforce_offline

    enforce_offline()
    from rag.embeddings import build_embedder

    settings = _settings(args)
    retriever = _retriever(settings, build_embedder(settings))
    hits, timings = retriever.retrieve(
        args.query, args.mode or settings.retrieval_mode, args.top_k or settings.top_k
    )
    if args.json:
        rows = [{"score": h.score, "dense": h.dense, "bm25": h.bm25, **h.chunk.__dict__} for h in hits]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not hits:
        print("no chunks in the store: run `rag ingest PATH` first")
    for rank, hit in enumerate(hits, 1):
        c = hit.chunk
        scores = "  ".join(
            f"{name} {value:.3f}"
            for name, value in (("dense", hit.dense), ("bm25", hit.bm25))
            if value is not None
        )
        where = f"chunk {c.chunk_index + 1}/{c.n_chunks}  chars {c.char_start}-{c.char_end}"
        where += "".join(f"  {part}" for part in (c.citation()["pages"], c.section) if part)
        print(f"[{rank}] {hit.score:.3f} ({scores})  {c.doc_id}  {where}")
        print("    " + c.text.replace("\n", "\n    "))
    print(f"retrieved in {sum(timings.values()) * 1000:.0f} ms", file=sys.stderr)
    return EXIT_OK


def _retriever(settings: Settings, embedder, check: bool = True):
    """`check`: refuse a store embedded by another model (not before an ingest that re-embeds)."""
    from index.components import build_retriever
    from rag.retrieval import check_embedder

    retriever = build_retriever(settings, embedder)
    if check:
        check_embedder(retriever.store, embedder)
    return retriever


def _answerer(settings: Settings, retriever=None):
    """The answer path; reuses `retriever` (and its loaded embedder) when one is given."""
    from rag.offline import enforce_offline

    enforce_offline()
    from index.components import build_answerer
    from rag.embeddings import build_embedder

    return build_answerer(settings, retriever or _retriever(settings, build_embedder(settings)))


def _print_answer(answer, streamed: str) -> None:
    """Finish what `stream` printed: a refusal notice if the streamed text was withdrawn, sources."""
    print()
    if answer.refused:  # why, and the answer itself if the stream showed something else first
        print(f"\n{answer.answer} ({answer.refusal_reason})" if streamed.strip() != answer.answer
              else f"({answer.refusal_reason})")  # fmt: skip
    unsupported = [s.text for s in answer.sentences if not s.supported]
    if unsupported and not answer.refused:
        print("\nnot supported by the documents:")
        for text in unsupported:
            print(f"  ! {text}")
    if answer.sources:
        print("\nclosest sources:" if answer.refused else "\nsources:")
    for s in answer.sources:
        if answer.refused or s.cited:
            where = f"  {s.locator()}" if s.locator() else ""
            print(f"  [{s.n}] {s.doc_id}{where}  chunk {s.chunk + 1}  chars {s.quote_start}-{s.quote_end}")
            print(f'      "{s.quote}"')
    print(f"\n({answer.backend}: {answer.model}; {answer.timings.get('total', 0):.1f} s)", file=sys.stderr)


def cmd_ask(args: argparse.Namespace) -> int:
    answerer = _answerer(_settings(args))
    if args.json:
        answer = answerer.ask(args.question, mode=args.mode, top_k=args.top_k)
        print(answer.model_dump_json(indent=2))
        return EXIT_OK
    answer, streamed = _stream(answerer.stream(args.question, mode=args.mode, top_k=args.top_k))
    _print_answer(answer, streamed)
    return EXIT_OK


def _stream(events) -> tuple:
    """Print text events as they come; return the final Answer and the text printed."""
    printed = []
    for event in events:
        if isinstance(event, str):
            print(event, end="", flush=True)
            printed.append(event)
        else:
            return event, "".join(printed)
    raise RuntimeError("the answer stream ended without an Answer")


def cmd_chat(args: argparse.Namespace) -> int:
    from rag.types import Turn

    answerer = _answerer(_settings(args))
    history: list[Turn] = []
    print("Ask about your documents; follow-up questions work. Ctrl-D to leave.")
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            print()
            return EXIT_OK
        if not question:
            continue
        answer, streamed = _stream(answerer.stream(question, history, mode=args.mode))
        _print_answer(answer, streamed)
        history.append(Turn(question=question, answer=answer.answer))


def cmd_eval(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from rag.offline import enforce_offline

    enforce_offline()
    from eval import harness, report
    from eval.cases import read_cases, sample

    if args.export_feedback:
        return _export_feedback(Path(args.export_feedback))
    if args.fit_answerability:
        return _fit_answerability(args)
    if args.pdf:
        return _pdf_eval(args)
    if not args.cases:
        print("rag eval: give a case file (or --export-feedback FILE)", file=sys.stderr)
        return EXIT_USAGE
    cases_path = Path(args.cases)
    corpus = Path(args.corpus) if args.corpus else cases_path.parent / "docs"
    if not cases_path.is_file() or not corpus.is_dir():
        print(f"rag eval: need a case file and a corpus folder (got {cases_path}, {corpus})", file=sys.stderr)
        return EXIT_USAGE
    settings, retriever = _eval_retriever(_settings(args), corpus)

    cases = read_cases(cases_path)
    if args.retrieval_only:
        cases = [c for c in cases if c.has_retrieval_gold]  # the rest would score nothing
    cases = sample(cases, args.limit, args.seed)
    modes = list(MODES) if args.mode == "all" else [args.mode or settings.retrieval_mode]
    answerer = None if args.retrieval_only else _answerer(settings, retriever)
    answerer_for = _held_out_answerers(settings, answerer, corpus, cases_path) if args.held_out else None
    judge = None
    if args.judge:
        from eval.judge import Judge

        judge = Judge(settings)
    results = harness.run(cases, retriever, modes, answerer, judge=judge, answerer_for=answerer_for)
    results["meta"] = {
        "cases": str(cases_path),
        "corpus": str(corpus),
        "n_cases": len(cases),
        "limit": args.limit,
        "seed": args.seed,
        "retrieval_only": args.retrieval_only,
        "answerability": "held out: each training case answered by the fold model that never saw its group"
        if args.held_out
        else "the shipped model",
        "judge": f"LLM-as-judge: {judge.model} at {settings.judge_base_url}" if judge else "off",
        "index_version": retriever.version,
        "settings": settings.model_dump(mode="json", exclude={"llm_api_key", "judge_api_key"}),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = (
        Path(args.out)
        if args.out
        else settings.data_dir / "eval" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    )
    report.write(results, out)
    print(report.summary_table(results))
    print(f"\nwrote {out / 'results.json'}, report.md and report.html")
    status = EXIT_OK
    if args.compare:
        lines, regressions = harness.compare(results, json.loads(Path(args.compare).read_text()))
        print(f"\ncompared with {args.compare}:")
        print("\n".join(lines))
        if regressions:
            print(
                f"{len(regressions)} metric(s) dropped beyond the baseline's 95 % interval", file=sys.stderr
            )
            status = EXIT_FAILED
    for rule in args.fail_under or []:
        metric, _, floor = rule.partition("=")
        value = results["modes"][modes[0]].get(metric)
        if value is None or value < float(floor):
            print(f"{metric} = {value} is under {floor}", file=sys.stderr)
            status = EXIT_FAILED
    return status


def _eval_retriever(settings: Settings, corpus: Path):
    """Settings and a warm retriever over `corpus`, ingested into a collection of its own, so
    evaluating never touches the product's documents."""
    import hashlib
    import re

    from rag.embeddings import build_embedder

    tag = hashlib.sha256(str(corpus.resolve()).encode()).hexdigest()[:8]
    collection = f"eval_{re.sub(r'[^A-Za-z0-9_-]', '_', corpus.resolve().name)[:40]}_{tag}"
    settings = settings.model_copy(update={"collection": collection})
    embedder = build_embedder(settings)
    retriever = _retriever(settings, embedder, check=False)  # the ingest below re-embeds if needed
    _ingestor(settings, retriever.store, embedder).ingest([corpus])
    retriever.warm_up()
    return settings, retriever


def _pdf_eval(args: argparse.Namespace) -> int:
    """Text fidelity, the PDF penalty and the real-report checks (eval.pdf_eval), in one run."""
    from datetime import UTC, datetime

    from eval import harness, pdf_eval
    from eval.cases import read_cases
    from eval.corpus_gen import CASES
    from index.chunking import Chunker

    base = _settings(args)
    squad = CASES / "squad2-dev"
    rendered, reports = pdf_eval.FOLDER / "squad", pdf_eval.FOLDER / "nist"
    results: dict = {
        "fidelity": pdf_eval.fidelity(rendered),
        "other_formats": pdf_eval.other_formats(rendered),
    }
    cases = pdf_eval.penalty_cases(read_cases(squad / "questions.jsonl"), rendered, (".txt", ".pdf", ".md"))
    markdown = pdf_eval.write_markdown(rendered, base.data_dir / "eval" / "pdf-markdown" / "squad")
    runs = {}
    for name, suffix, corpus in (
        ("text", ".txt", squad / "docs"),
        ("pdf", ".pdf", rendered),
        ("markdown", ".md", markdown),
    ):
        _, retriever = _eval_retriever(base, corpus)
        runs[name] = harness.run(cases[suffix], retriever, ["hybrid"])
    results["penalty"] = pdf_eval.penalty(runs)
    # As ingest cuts them: a chunk over the embedder's window is split again.
    chunker = Chunker(base.chunk_size, base.chunk_overlap, fits=retriever.embedder.fits)

    def split(text: str) -> list[str]:
        return [c.text for c in chunker.split(text)]

    results["reports"] = pdf_eval.report_checks(reports, split)
    results["reports_pypdf"] = pdf_eval.report_checks(reports, split, read=pdf_eval.pypdf_text)
    results["meta"] = {
        "fidelity_set": str(rendered.relative_to(pdf_eval.FOLDER.parent.parent)),
        "penalty_cases": len(cases[".txt"]),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = (
        Path(args.out)
        if args.out
        else base.data_dir / "eval" / ("pdf-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    )
    pdf_eval.write(results, out)
    print(pdf_eval.markdown(results))
    print(f"wrote {out / 'results.json'} and report.md")
    return EXIT_OK


def _held_out_answerers(settings: Settings, answerer, corpus: Path, cases_path: Path):
    """Per case, an answerer whose answerability model was fitted without the case's group."""
    from eval import answerability
    from rag.answer import Answerer

    folds = answerability.load_folds(settings.data_dir / "answerability-folds")
    built: dict[str, Answerer] = {}

    def answerer_for(case):
        group = answerability.group_of(case, answerability.label(corpus), cases_path.name)
        if group not in folds:
            return answerer  # not a training case: the shipped model never saw it either
        if group not in built:
            built[group] = Answerer(
                answerer.retriever, answerer.llm, answerer.checker, settings, folds[group]
            )
        return built[group]

    return answerer_for


def _fit_answerability(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from eval import answerability
    from eval.cases import read_cases
    from rag.answerability import MODEL_PATH

    rows, sources = [], []
    for cases_path, corpus in answerability.training_sets():
        settings, retriever = _eval_retriever(_settings(args), corpus)
        answerer = _answerer(settings, retriever)
        rows += answerability.collect(
            answerer, read_cases(cases_path), answerability.label(corpus), cases_path.name
        )
        sources.append(cases_path)
    spec, report = answerability.fit(rows, sources)
    out = Path(args.out) if args.out else Path("eval/reports/answerability")
    answerability.write_report(report, spec, out)
    answerability.save_folds(report["folds"], settings.data_dir / "answerability-folds")
    model_out = Path(args.model_out) if args.model_out else MODEL_PATH
    model_out.write_text(answerability.dump_model(spec))
    print(f"held-out AUC {spec['fitted']['held_out_auc']}, operating point {spec['threshold']}")
    for corpus, block in report["held_out"].items():
        for metric, value in block.items():
            print(f"  {corpus:10} {metric:32} {value['rate']:.3f} {value['ci95']} n={value['n']}")
    print(f"wrote {model_out} and {out}/report.md (at {datetime.now(UTC):%H:%M:%S} UTC)")
    return EXIT_OK


def _export_feedback(out: Path) -> int:
    from eval.cases import cases_from_feedback
    from rag.feedback import FeedbackStore

    settings = Settings()
    cases = cases_from_feedback(FeedbackStore(settings.data_dir / "feedback.sqlite3").entries("down"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    print(f"wrote {len(cases)} thumbs-down answer(s) as draft cases to {out}: add `answers` to each")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from rag.offline import enforce_offline

    enforce_offline()
    from eval.bench import PARTS, BenchConfig, run, summary, write
    from rag.embeddings import build_embedder

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        print(
            f"rag bench: unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}", file=sys.stderr
        )
        return EXIT_USAGE
    settings = _settings(args)
    work = Path(args.work) if args.work else settings.data_dir / "bench"
    config = BenchConfig(work=work, chunks=args.chunks, ingest_chunks=args.ingest_chunks,
                         queries=args.queries, parts=parts)  # fmt: skip
    results = run(settings, build_embedder(settings), config)
    out = Path(args.out) if args.out else Path("bench") / "results" / f"bench_{args.chunks}.json"
    write(results, out)
    print(summary(results))
    print(f"wrote {out}")
    return EXIT_OK


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from rag.offline import enforce_offline

    enforce_offline()
    # Workers are separate processes that read settings from the environment: pass overrides on.
    for name in ("host", "port", "llm", "collection"):
        if (value := getattr(args, name, None)) is not None:
            os.environ[f"RAG_{name.upper()}"] = str(value)
    settings = Settings()
    from api.security import load_keys

    try:
        keys = load_keys(settings)
    except (OSError, ValueError) as exc:
        print(f"rag serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not keys and settings.host not in _LOOPBACK:
        print(
            f"rag serve: refusing to bind {settings.host} without API keys: set RAG_API_KEYS or "
            "RAG_API_KEYS_FILE, or keep RAG_HOST=127.0.0.1",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.workers > 1 and not settings.chroma_url:
        print(
            "rag serve: --workers > 1 needs a Chroma server (RAG_CHROMA_URL); the embedded store "
            "is single-process",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.workers > 1 and settings.ui:
        os.environ["RAG_UI"] = "false"
        print("--workers > 1: serving the API only (the UI keeps chat sessions in one process)")
    if not keys:
        print("no API keys configured: serving on 127.0.0.1 only, open to local programs")
    import uvicorn

    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{host}:{settings.port}"
    ui = f"the UI is at {base}/ and " if settings.ui and args.workers == 1 else ""
    print(f"loading models; then {ui}the API at {base}/v1 (docs {base}/docs)")
    uvicorn.run(
        "api.server:app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Grounded Q&A over your documents. Settings come from RAG_* environment "
        "variables or .env (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Options several commands share, as argparse parents.
    collection = argparse.ArgumentParser(add_help=False)
    collection.add_argument("--collection", help="Chroma collection (default: RAG_COLLECTION)")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument(
        "--llm", choices=["local", "openai", "extractive"], help="answer backend (default: RAG_LLM)"
    )

    ingest = commands.add_parser(
        "ingest",
        parents=[collection],
        help="load, clean, chunk and embed files into the store (incremental)",
        description="Sync files into the store: unchanged files are skipped, changed ones "
        "replaced. Supports .txt .md .html .htm .pdf .docx; other files are counted as skipped. "
        "Exit status: 0 all ingested, 1 some files failed, 2 usage error, 3 another ingest "
        "is running.",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    ingest.add_argument(
        "--prune",
        action="store_true",
        help="remove documents whose files are gone from the given folders",
    )
    ingest.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ingest.set_defaults(func=cmd_ingest)

    retrieve = commands.add_parser(
        "retrieve",
        parents=[collection],
        help="show the chunks retrieval finds for a query",
        description="Print the top chunks for a query with fused, dense and BM25 scores and "
        "character spans. The BM25 index is built on first use and rebuilt when the store changed.",
    )
    retrieve.add_argument("query")
    retrieve.add_argument("-k", "--top-k", type=int, help="chunks to show (default: RAG_TOP_K)")
    retrieve.add_argument("--mode", choices=MODES, help="retrieval mode (default: RAG_RETRIEVAL_MODE)")
    retrieve.add_argument("--json", action="store_true", help="print the chunks as JSON")
    retrieve.set_defaults(func=cmd_retrieve)

    ask = commands.add_parser(
        "ask",
        parents=[backend, collection],
        help="answer a question from the documents, with cited sources",
        description="Stream an answer grounded in the ingested documents, then its sources with "
        "the exact quotes. Refuses plainly when the documents don't hold the answer.",
    )
    ask.add_argument("question")
    chat = commands.add_parser(
        "chat",
        parents=[backend, collection],
        help="interactive questions with history (follow-ups work)",
        description="Ask questions in a loop; each follow-up is condensed with the conversation.",
    )
    for sub in (ask, chat):
        sub.add_argument("--mode", choices=MODES, help="retrieval mode (default: RAG_RETRIEVAL_MODE)")
    ask.add_argument("-k", "--top-k", type=int, help="passages to retrieve (default: RAG_TOP_K)")
    ask.add_argument("--json", action="store_true", help="print the whole Answer record as JSON")
    ask.set_defaults(func=cmd_ask)
    chat.set_defaults(func=cmd_chat)

    serve = commands.add_parser(
        "serve",
        parents=[backend, collection],
        help="serve the chat UI at / and the HTTP API at /v1 (one port)",
        description="Start the staff chat UI and the HTTP API (native and OpenAI-compatible) on "
        "RAG_HOST:RAG_PORT (default 127.0.0.1:7860). Without API keys it binds loopback only.",
    )
    serve.add_argument("--host", help="address to bind (default: RAG_HOST)")
    serve.add_argument("--port", type=int, help="port (default: RAG_PORT)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (default 1); more than one needs RAG_CHROMA_URL",
    )
    serve.set_defaults(func=cmd_serve)

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

    evaluate = commands.add_parser(
        "eval",
        parents=[backend],
        help="score retrieval and answers on a case file; compare with a baseline",
        description="Ingest the cases' corpus into its own collection, run every case, write "
        "results.json and report.md, print a summary table. Exit status 1 when --compare finds a "
        "regression or a --fail-under floor is not met.",
    )
    evaluate.add_argument(
        "cases", nargs="?", help="case file: ours (.jsonl), SQuAD-derived (.jsonl) or rag_dataset.json"
    )
    evaluate.add_argument(
        "--export-feedback",
        metavar="FILE",
        help="write the UI's thumbs-down answers as draft cases (JSONL) to FILE, and stop",
    )
    evaluate.add_argument("--corpus", help="documents to ingest (default: docs/ beside the case file)")
    evaluate.add_argument("--limit", type=int, help="sample this many cases (seeded)")
    evaluate.add_argument("--seed", type=int, default=7, help="sampling seed (default 7)")
    evaluate.add_argument("--mode", choices=[*MODES, "all"], help="retrieval mode(s)")
    evaluate.add_argument("--retrieval-only", action="store_true", help="score retrieval, skip answering")
    evaluate.add_argument(
        "--judge",
        action="store_true",
        help="also score answers with an LLM judge (RAG_JUDGE_BASE_URL, RAG_JUDGE_MODEL); off by default",
    )
    evaluate.add_argument(
        "--fit-answerability",
        action="store_true",
        help="refit the answerability model on the shipped training sets (documents held out), write "
        "it (--model-out) and its held-out report and curve (--out, default eval/reports/answerability)",
    )
    evaluate.add_argument(
        "--held-out",
        action="store_true",
        help="answer each training case with the fold model fitted without its document (after "
        "--fit-answerability): honest numbers on the data the model was fitted on",
    )
    evaluate.add_argument(
        "--pdf",
        action="store_true",
        help="the PDF evaluation: text fidelity of the shipped PDF set (ours against pypdf), the PDF "
        "penalty on SQuAD retrieval, and header/leader/glyph checks on real reports (eval/pdfs/)",
    )
    evaluate.add_argument(
        "--model-out", metavar="FILE", help="--fit-answerability: where to write the model (default: rag/)"
    )
    evaluate.add_argument("--out", help="output folder (default: RAG_DATA_DIR/eval/<timestamp>)")
    evaluate.add_argument(
        "--compare", metavar="BASELINE.json", help="fail on a drop beyond the baseline's CI"
    )
    evaluate.add_argument(
        "--fail-under",
        action="append",
        metavar="METRIC=VALUE",
        help="fail when the first mode's metric is lower",
    )
    evaluate.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from rag.schema import EmbedderMismatch

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValidationError as exc:
        print(f"rag: invalid setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EmbedderMismatch as exc:
        print(f"rag {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
