"""Fitting answerability: documents held out, exports that say what sklearn says, the budget kept."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval import answerability as fit
from eval.answerability_report import load_folds
from rag.answerability import FEATURES, AnswerabilityModel


def _rows(n_groups: int = 6, per_group: int = 30, seed: int = 3) -> list[fit.Row]:
    """Synthetic rows: answerable ones cover the question, unanswerable ones don't (with noise)."""
    rng = random.Random(seed)
    rows = []
    for g in range(n_groups):
        corpus = "a" if g % 2 else "b"
        for i in range(per_group):
            answerable = i % 3 != 0
            values = {f: rng.random() for f in FEATURES}
            values["soft_coverage"] = (0.7 if answerable else 0.3) + rng.gauss(0, 0.15)
            kind = ("summary" if i % 5 == 0 else "answerable") if answerable else "on-topic"
            rows.append(fit.Row(f"{g}-{i}", corpus, f"{corpus}/doc{g}", kind, answerable, values))
    return rows


def test_held_out_predictions_come_from_models_that_never_saw_the_group():
    rows = _rows()
    probability, models = fit.held_out(rows, fit._models()["logistic"])
    assert set(models) == {r.group for r in rows}
    x, _ = fit._matrix(rows)
    for group, model in models.items():
        mine = np.asarray([r.group == group for r in rows])
        assert np.allclose(model.predict_proba(x[mine])[:, 1], probability[mine])
    answerable = np.asarray([r.answerable for r in rows])
    assert probability[answerable].mean() > probability[~answerable].mean() + 0.2


@pytest.mark.parametrize("kind", ["logistic", "boosted"])
def test_the_exported_json_gives_sklearns_probabilities(kind):
    rows = _rows()
    x, y = fit._matrix(rows)
    model = fit._fit_one(fit._models()[kind], x, y, fit._weights(rows))
    spec = fit.export(kind, model, rows, 0.4, {"note": "test"})
    loaded = AnswerabilityModel(json.loads(json.dumps(spec)))
    assert loaded.kind == kind and loaded.threshold == 0.4
    ours = [loaded.probability(r.features) for r in rows]
    assert ours == pytest.approx(list(model.predict_proba(x)[:, 1]), abs=1e-5)


def test_the_operating_point_keeps_false_refusals_within_budget_with_corpora_equal():
    rows = _rows()
    probability, _ = fit.held_out(rows, fit._models()["logistic"])
    t = fit.operating_point(rows, probability)
    rates = []
    for corpus in ("a", "b"):
        scores = [p for r, p in zip(rows, probability, strict=True) if r.corpus == corpus and r.answerable]
        rates.append(sum(p < t for p in scores) / len(scores))
    assert sum(rates) / 2 <= fit.FALSE_REFUSAL_BUDGET
    above = next((g for g in fit.GRID if g > t), None)
    if above is not None:  # the next threshold up would break the budget
        assert fit.operating_point(rows, probability) == t


def test_groups_are_documents_and_off_topic_files():
    from eval.cases import Case

    answerable = Case(id="a", question="q", gold_doc="Warsaw.txt")
    off_topic = Case(id="b", question="q", answerable=False, tags=["off-topic"])
    assert fit.group_of(answerable, "squad2-dev/docs", "questions.jsonl") == "squad2-dev/docs/Warsaw.txt"
    assert fit.group_of(off_topic, "docs", "calibration.jsonl") == "off-topic/calibration.jsonl"


def test_rag_eval_fit_answerability_writes_a_model_a_report_and_fold_models(tmp_path: Path):
    env = {**os.environ, "RAG_EMBEDDER": "hash", "RAG_DATA_DIR": str(tmp_path / "data")}
    model = tmp_path / "model.json"
    command = ["eval", "--fit-answerability", "--model-out", str(model), "--out", str(tmp_path / "report")]
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", *command], capture_output=True, text=True, env=env, timeout=900
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = AnswerabilityModel.load(model)
    assert loaded.features == list(FEATURES) and 0 < loaded.threshold < 1
    report = (tmp_path / "report" / "report.md").read_text()
    assert "refusal_rate[on-topic]" in report and (tmp_path / "report" / "curve.png").stat().st_size > 1000
    folds = load_folds(tmp_path / "data" / "answerability-folds")
    assert "docs/000_6aae78438c92dd18.txt" in folds and "off-topic/calibration.jsonl" in folds
