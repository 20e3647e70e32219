"""The harness on the gold set (hash embedder, extractive answers) and the regression gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.cases import read_cases
from eval.gate import compare
from eval.harness import RETRIEVAL_METRICS, run
from rag.answer import Answerer
from rag.extractive import ExtractiveComposer
from rag.records import MODES
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.support import SupportChecker

REPO = Path(__file__).resolve().parent.parent
GOLD = REPO / "eval" / "cases" / "sample.jsonl"


@pytest.fixture
def retriever(make_ingestor, tmp_path: Path) -> Retriever:
    ingestor = make_ingestor()
    ingestor.ingest([REPO / "eval" / "cases" / "docs"])
    return Retriever(ingestor.store, ingestor.embedder, tmp_path / "bm25")


def test_retrieval_only_run_scores_every_mode(retriever):
    cases = read_cases(GOLD)
    results = run(cases, retriever, MODES, progress=lambda items, **_: items)
    gold = [c for c in cases if c.has_retrieval_gold]
    for mode in MODES:
        for metric in RETRIEVAL_METRICS:
            block = results["modes"][mode]
            low, high = block["ci95"][metric]
            assert block["n"][metric] == len(gold)
            assert low <= block[metric] <= high
        assert results["modes"][mode]["hit@10"] >= results["modes"][mode]["hit@1"]
    # Two documents, 8 chunks: top-10 retrieval always holds the gold chunk.
    assert results["modes"]["hybrid"]["hit@10"] == 1.0


def test_answer_run_reports_refusals_support_and_records(retriever):
    settings = Settings(_env_file=None, answerability_threshold=0.05, llm="extractive")
    checker = SupportChecker(retriever.embedder)
    answerer = Answerer(retriever, ExtractiveComposer(checker), checker, settings)
    results = run(read_cases(GOLD), retriever, ["hybrid"], answerer, progress=lambda items, **_: items)
    hybrid = results["modes"]["hybrid"]
    for metric in ("em", "f1", "contains_answer", "semantic_similarity", "support_rate", "refusal_rate",
                   "false_refusal_rate"):  # fmt: skip
        assert metric in hybrid, metric
    assert hybrid["no_forbidden"] == 1.0, "the extractive backend cannot be talked into PWNED"
    assert all(
        "record" in case and case["record"]["question"] == case["question"] for case in results["cases"]
    )


def _results(**means: float) -> dict:
    block = dict(means) | {"ci95": {m: [v - 0.02, v + 0.02] for m, v in means.items()}}
    return {"modes": {"hybrid": block | {"n": {m: 50 for m in means}}}}


def test_gate_fails_on_a_synthetic_regression_and_passes_within_noise():
    baseline = _results(**{"hit@5": 0.90, "false_refusal_rate": 0.10})
    _, regressions = compare(_results(**{"hit@5": 0.89, "false_refusal_rate": 0.11}), baseline)
    assert regressions == []
    _, regressions = compare(_results(**{"hit@5": 0.80, "false_refusal_rate": 0.10}), baseline)
    assert len(regressions) == 1 and "hit@5" in regressions[0]
    _, regressions = compare(_results(**{"hit@5": 0.90, "false_refusal_rate": 0.30}), baseline)
    assert len(regressions) == 1 and "false_refusal_rate" in regressions[0]


def test_rag_eval_writes_reports_and_the_gate_sets_the_exit_status(tmp_path: Path):
    env = {**os.environ, "RAG_EMBEDDER": "hash", "RAG_DATA_DIR": str(tmp_path / "data")}

    def rag_eval(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "eval", str(GOLD), "--retrieval-only", "--mode", "all", *extra],
            capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip

    first = rag_eval("--out", str(tmp_path / "run1"))
    assert first.returncode == 0, first.stderr
    results = json.loads((tmp_path / "run1" / "results.json").read_text())
    assert set(results["modes"]) == set(MODES)
    assert "| hit@5 |" in (tmp_path / "run1" / "report.md").read_text()
    assert "<table>" in (tmp_path / "run1" / "report.html").read_text()
    assert (tmp_path / "run1" / "retrieval.png").stat().st_size > 1000

    same = rag_eval("--out", str(tmp_path / "run2"), "--compare", str(tmp_path / "run1" / "results.json"))
    assert same.returncode == 0, same.stdout + same.stderr
    # A baseline that claims much better retrieval: the current run now regresses against it.
    inflated = json.loads((tmp_path / "run1" / "results.json").read_text())
    inflated["modes"]["hybrid"]["mrr"] = 1.0
    inflated["modes"]["hybrid"]["ci95"]["mrr"] = [0.99, 1.0]
    (tmp_path / "inflated.json").write_text(json.dumps(inflated))
    gated = rag_eval("--out", str(tmp_path / "run3"), "--compare", str(tmp_path / "inflated.json"))
    assert gated.returncode == 1
    assert "REGRESSION" in gated.stdout


def test_refusals_are_split_by_kind_and_gated_where_lower_is_better():
    from eval.harness import aggregate

    def record(kind: str, answerable: bool, refused: bool, **answer: float) -> dict:
        return {
            "kind": kind,
            "answerable": answerable,
            "retrieval": {},
            "answer": {"refused": float(refused), **answer},
            "record": {"timings": {"total": 0.1}},
        }

    records = [
        record("on-topic", False, True), record("on-topic", False, False), record("off-topic", False, True),
        record("answerable", True, False, duplicate_sentences=0.0, fragments=1.0, answer_words=20.0),
        record("summary", True, True),
    ]  # fmt: skip
    block = aggregate(records, ["hybrid"], answered=True)["hybrid"]
    assert block["refusal_rate[on-topic]"] == 0.5 and block["refusal_rate[off-topic]"] == 1.0
    assert block["false_refusal_rate[answerable]"] == 0.0 and block["false_refusal_rate[summary]"] == 1.0
    assert block["refusal_precision"] == round(2 / 3, 4)
    assert block["fragments"] == 1.0 and block["answer_words"] == 20.0

    baseline = _results(duplicate_sentences=0.0, fragments=0.0, answer_words=40.0)
    _, regressions = compare(_results(duplicate_sentences=0.3, fragments=0.0, answer_words=10.0), baseline)
    assert len(regressions) == 1 and "duplicate_sentences" in regressions[0], "answer length is not gated"


def test_refusal_curve_runs_over_the_answerability_probability():
    from eval.harness import calibrate

    records = [
        {"answerable": False, "answerability": 0.05},
        {"answerable": False, "answerability": 0.3},
        {"answerable": True, "answerability": 0.6},
        {"answerable": True, "answerability": 0.9},
    ]
    curve = {p["threshold"]: p for p in calibrate(records)["curve"]}
    assert (curve[0.05]["refusal_rate"], curve[0.05]["false_refusal_rate"]) == (0.0, 0.0)
    assert (curve[0.31]["refusal_rate"], curve[0.31]["false_refusal_rate"]) == (1.0, 0.0)
    assert (curve[0.61]["refusal_rate"], curve[0.61]["false_refusal_rate"]) == (1.0, 0.5)
    assert calibrate([r for r in records if r["answerable"]])["curve"] == []
