"""The harness on the gold set (hash embedder, extractive answers) and the regression gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.cases import read_cases
from eval.harness import RETRIEVAL_METRICS, compare, run
from rag.answer import Answerer
from rag.llm import ExtractiveLLM
from rag.retrieval import MODES, Retriever
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
    settings = Settings(_env_file=None, refusal_threshold=0.1, llm="extractive")
    checker = SupportChecker(retriever.embedder)
    answerer = Answerer(retriever, ExtractiveLLM(checker), checker, settings)
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
            [sys.executable, "-m", "rag.cli", "eval", str(GOLD), "--retrieval-only", "--mode", "all", *extra],
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


def test_calibration_picks_the_threshold_that_separates_best():
    from eval.harness import calibrate

    records = [
        {"answerable": False, "best_dense": 0.0},
        {"answerable": False, "best_dense": 0.1},
        {"answerable": True, "best_dense": 0.3},
        {"answerable": True, "best_dense": 0.5},
    ]
    result = calibrate(records)
    # Every t in (0.1, 0.3] refuses both unanswerable cases and no answerable one; the lowest wins.
    assert result["recommended"] == 0.11
    assert (result["refusal_rate"], result["false_refusal_rate"]) == (1.0, 0.0)
    assert calibrate([r for r in records if r["answerable"]])["recommended"] is None


def test_rag_eval_calibrate_writes_the_threshold_to_dot_env(tmp_path: Path):
    env = {**os.environ, "RAG_EMBEDDER": "hash", "RAG_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / ".env").write_text("RAG_TOP_K=4\nRAG_REFUSAL_THRESHOLD=0.9\n")
    command = ["eval", str(GOLD), "--retrieval-only", "--calibrate", "--out", "run"]
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    recommended = json.loads((tmp_path / "run" / "results.json").read_text())["calibration"]["recommended"]
    lines = (tmp_path / ".env").read_text().splitlines()
    assert lines == ["RAG_TOP_K=4", f"RAG_REFUSAL_THRESHOLD={recommended}"]
    assert (tmp_path / "run" / "refusal_curve.png").stat().st_size > 1000
