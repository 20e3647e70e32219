"""Answerability: the fitted model file, its features, its decision and the refusals it makes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.answerability import FEATURES, MODEL_PATH, AnswerabilityModel, Evidence, TermWeights, features
from rag.question import analyse, stem, stems

PASSAGE = (
    "The Ashok Leyland–CALB deal shows why India still needs China’s expertise for batteries. "
    "We need to have 500 GW of non fissile capacity."
)


def _embed(texts):
    """Bag-of-words vectors: identical words are close, others are not (a real, tiny embedder)."""
    vocabulary = sorted({w for t in texts for w in stems(t)})
    rows = np.asarray([[w in stems(t) for w in vocabulary] for t in texts], dtype=float)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def _features(question: str) -> dict[str, float]:
    evidence = [
        Evidence(PASSAGE, "thread", [s.strip() + "." for s in PASSAGE.split(".") if s.strip()], 0.5, 3.0, 1.0)
    ]
    weights = TermWeights({stem("india"): 1, stem("batteries"): 1}, 10, stem)
    return features(analyse(question), evidence, weights, stems, _embed)


def test_the_shipped_model_reads_every_feature_and_has_an_operating_point():
    spec = json.loads(MODEL_PATH.read_text())
    model = AnswerabilityModel(spec)
    assert model.features == list(FEATURES)
    assert 0 < model.threshold < 1
    assert spec["fitted"]["held_out_auc"] > 0.5, "fitted with documents held out"


def test_names_and_numbers_the_passages_lack_are_seen():
    assert _features("What did CATL pay for the deal?")["names_missing"] == 1.0
    assert _features("How much capacity does India need?")["answer_missing"] == 0.0  # 500 GW is there
    assert _features("When does India need the capacity?")["answer_missing"] == 1.0  # no date anywhere
    assert _features("Which deal shows why India needs China's expertise?")["passage_coverage"] == 1.0


def test_decision_gives_probability_reason_and_features():
    model = AnswerabilityModel.load()
    good = model.decide(_features("Which deal shows why India still needs China's expertise for batteries?"))
    bad = model.decide(_features("Who is the chairman of the Zorblax Corporation in Lima?"))
    assert good.probability > bad.probability
    assert not model.decide(
        _features("Who is the chairman of the Zorblax Corporation?"), threshold=0.99
    ).answerable
    assert bad.reason.startswith(f"answerability {bad.probability:.2f} below")
    assert set(bad.features) == set(FEATURES)


def test_a_broken_model_file_is_named_in_the_error(tmp_path: Path):
    broken = tmp_path / "model.json"
    broken.write_text('{"features": ["dense_best"]}')
    with pytest.raises(ValueError, match=str(broken)):
        AnswerabilityModel.load(broken)
    broken.write_text(json.dumps({"features": ["shoe_size"], "mean": [0], "scale": [1], "coef": [1],
                                  "intercept": 0, "threshold": 0.5}))  # fmt: skip
    with pytest.raises(ValueError, match="shoe_size"):
        AnswerabilityModel.load(broken)


def test_a_refusal_about_missing_words_names_them():
    from rag.answerability import missing_words

    question = analyse("Who is the chairman of the Zorblax Corporation?")
    evidence = [Evidence(PASSAGE, "thread", [PASSAGE], 0.2, 1.0, 1.0)]
    weights = TermWeights({stem("india"): 1}, 10, stem)
    missing = missing_words(question, evidence, weights, stems)
    assert set(missing) == {"chairman", "zorblax", "corporation"}
    decision = AnswerabilityModel.load().decide(_features(question.text), threshold=0.999, missing=missing)
    assert not decision.answerable
    assert decision.reason.endswith("not in the passages: “zorblax”, “corporation”, “chairman”"), (
        decision.reason
    )
