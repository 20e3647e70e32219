"""`rag eval`: the gold-set run and its gate, the PDF evaluation, refitting answerability, and
exporting feedback as draft cases. The work is in `eval`; this builds components and prints."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from app.commands import EXIT_FAILED, EXIT_OK, EXIT_USAGE, settings_for
from rag.records import MODES
from rag.settings import Settings


def _out(args: argparse.Namespace, settings: Settings, prefix: str = "") -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(args.out) if args.out else settings.data_dir / "eval" / (prefix + stamp)


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.offline import enforce_offline

    enforce_offline()
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
    return _gold_run(args, cases_path, corpus)


def _gold_run(args: argparse.Namespace, cases_path: Path, corpus: Path) -> int:
    from app.components import build_answerer, eval_retriever
    from eval import gate, harness, report
    from eval.cases import read_cases, sample

    settings, retriever = eval_retriever(settings_for(args), corpus)
    cases = read_cases(cases_path)
    if args.retrieval_only:
        cases = [c for c in cases if c.has_retrieval_gold]  # the rest would score nothing
    cases = sample(cases, args.limit, args.seed)
    modes = list(MODES) if args.mode == "all" else [args.mode or settings.retrieval_mode]
    answerer = None if args.retrieval_only else build_answerer(settings, retriever)
    answerer_for = _held_out_answerers(settings, answerer, corpus, cases_path) if args.held_out else None
    judge = None
    if args.judge:
        from eval.judge import Judge

        judge = Judge(settings)
    results = harness.run(cases, retriever, modes, answerer, judge=judge, answerer_for=answerer_for)
    results["meta"] = gate.metadata(
        settings,
        cases=str(cases_path),
        corpus=str(corpus),
        n_cases=len(cases),
        limit=args.limit,
        seed=args.seed,
        retrieval_only=args.retrieval_only,
        answerability="held out: each training case answered by the fold model that never saw its group"
        if args.held_out
        else "the shipped model",
        judge=f"LLM-as-judge: {judge.model} at {settings.judge_base_url}" if judge else "off",
        index_version=retriever.version,
    )
    out = _out(args, settings)
    report.write(results, out)
    print(report.summary_table(results))
    print(f"\nwrote {out / 'results.json'}, report.md and report.html")
    status = EXIT_OK
    if args.compare:
        lines, regressions = gate.compare(results, json.loads(Path(args.compare).read_text()))
        print(f"\ncompared with {args.compare}:")
        print("\n".join(lines))
        if regressions:
            print(
                f"{len(regressions)} metric(s) dropped beyond the baseline's 95 % interval", file=sys.stderr
            )
            status = EXIT_FAILED
    for failed in gate.floors(results, modes[0], args.fail_under or []):
        print(failed, file=sys.stderr)
        status = EXIT_FAILED
    return status


def _pdf_eval(args: argparse.Namespace) -> int:
    """Text fidelity, the PDF penalty and the real-report checks (eval.pdf_eval), in one run."""
    from app.components import eval_retriever
    from eval import gate, harness, pdf_eval
    from eval.cases import CASES, read_cases
    from index.chunking import Chunker

    base = settings_for(args)
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
        _, retriever = eval_retriever(base, corpus)
        runs[name] = harness.run(cases[suffix], retriever, ["hybrid"])
    results["penalty"] = pdf_eval.penalty(runs)
    # As ingest cuts them: a chunk over the embedder's window is split again.
    chunker = Chunker(base.chunk_size, base.chunk_overlap, fits=retriever.embedder.fits)

    def split(text: str) -> list[str]:
        return [c.text for c in chunker.split(text)]

    results["reports"] = pdf_eval.report_checks(reports, split)
    results["reports_pypdf"] = pdf_eval.report_checks(reports, split, read=pdf_eval.pypdf_text)
    results["meta"] = gate.metadata(
        base,
        fidelity_set=str(rendered.relative_to(pdf_eval.FOLDER.parent.parent)),
        penalty_cases=len(cases[".txt"]),
    )
    out = _out(args, base, "pdf-")
    pdf_eval.write(results, out)
    print(pdf_eval.markdown(results))
    print(f"wrote {out / 'results.json'} and report.md")
    return EXIT_OK


def _held_out_answerers(settings: Settings, answerer, corpus: Path, cases_path: Path):
    """Per case, an answerer whose answerability model was fitted without the case's group."""
    from eval import answerability
    from eval.answerability_report import load_folds
    from rag.answer import Answerer

    folds = load_folds(settings.data_dir / "answerability-folds")
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
    from app.components import build_answerer, eval_retriever
    from eval import answerability
    from eval.answerability_report import dump_model, save_folds, write_report
    from eval.cases import read_cases
    from rag.answerability import MODEL_PATH

    rows, sources = [], []
    for cases_path, corpus in answerability.training_sets():
        settings, retriever = eval_retriever(settings_for(args), corpus)
        answerer = build_answerer(settings, retriever)
        rows += answerability.collect(
            answerer, read_cases(cases_path), answerability.label(corpus), cases_path.name
        )
        sources.append(cases_path)
    spec, report = answerability.fit(rows, sources)
    out = Path(args.out) if args.out else Path("eval/reports/answerability")
    write_report(report, spec, out)
    save_folds(report["folds"], settings.data_dir / "answerability-folds")
    model_out = Path(args.model_out) if args.model_out else MODEL_PATH
    model_out.write_text(dump_model(spec))
    print(f"held-out AUC {spec['fitted']['held_out_auc']}, operating point {spec['threshold']}")
    for corpus, block in report["held_out"].items():
        for metric, value in block.items():
            print(f"  {corpus:10} {metric:32} {value['rate']:.3f} {value['ci95']} n={value['n']}")
    print(f"wrote {model_out} and {out}/report.md (at {datetime.now(UTC):%H:%M:%S} UTC)")
    return EXIT_OK


def _export_feedback(out: Path) -> int:
    from app.components import build_feedback
    from eval.cases import cases_from_feedback

    cases = cases_from_feedback(build_feedback(settings_for(argparse.Namespace())).entries("down"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    print(f"wrote {len(cases)} thumbs-down answer(s) as draft cases to {out}: add `answers` to each")
    return EXIT_OK
