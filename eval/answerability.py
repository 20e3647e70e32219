"""Fit the answerability model (`rag eval --fit-answerability`), holding data out by document.

Training data ships in eval/cases: the SQuAD 2.0 sample over its 11 articles (its unanswerable
questions are on-topic by design, written to look answerable) with hand-written summary
questions about those articles and about subjects they lack, and hand-written natural on-topic
unanswerable and factoid questions about them; the calibration set (the gold set
plus 100 off-topic questions); the hand-written on-topic unanswerable and summary questions
over the sample corpus, and summary-phrased questions about subjects it lacks (so "summarize"
alone never means answerable). Every case is run through the product's own `retrieve` and
`features` steps against its own corpus.

Held out by document: each case belongs to the document it was written against (off-topic
questions group by the file they came from), and every reported number comes from a model that
never saw that group's questions (leave-one-group-out). Both corpora weigh the same in the fit,
in the comparison and in the operating point, so SQuAD's 1,200 questions do not drown the sample
corpus. Logistic regression and a small gradient-boosted model are compared by held-out AUC and
the better one is written (both are JSON evaluated in numpy at run time). The operating point is
the highest threshold whose held-out false-refusal rate over answerable questions (summaries
included), each corpus weighing the same, stays within FALSE_REFUSAL_BUDGET. Writing the
report, the model file and the fold models is eval/answerability_report.py's job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval.cases import CASES, Case, case_kind
from eval.metrics import bootstrap_ci
from rag.answer import Answerer
from rag.answerability import FEATURES, AnswerabilityModel

# (case file, corpus folder), relative to eval/cases.
TRAINING: tuple[tuple[str, str], ...] = (
    ("squad2-dev/questions.jsonl", "squad2-dev/docs"),
    ("squad2-dev/summaries.jsonl", "squad2-dev/docs"),
    ("squad2-dev/natural.jsonl", "squad2-dev/docs"),
    ("calibration.jsonl", "docs"),
    ("sample_unanswerable_summary.jsonl", "docs"),
    ("summaries_off_topic.jsonl", "docs"),
)
SEED = 7
FALSE_REFUSAL_BUDGET = 0.05
GRID = [round(0.01 * i, 2) for i in range(1, 100)]


@dataclass(frozen=True)
class Row:
    case_id: str
    corpus: str
    group: str  # the document the case was written against, or "off-topic"
    kind: str
    answerable: bool
    features: dict[str, float]


def collect(
    answerer: Answerer, cases: Sequence[Case], corpus: str, source: str, progress: Callable = tqdm
) -> list[Row]:
    rows = []
    for case in progress(cases, desc=corpus, unit="case", disable=None):
        found = answerer.retrieve(case.question, case.history)
        if not found.hits:
            continue  # refused by rule before the model (nothing to look up)
        group = group_of(case, corpus, source)
        rows.append(Row(case.id, corpus, group, case_kind(case), case.answerable, answerer.features(found)))
    return rows


def group_of(case: Case, corpus: str, source: str) -> str:
    """What a case is held out with: the document it was written against, or, for off-topic
    questions (about no document), the file they came from."""
    if case_kind(case) == "off-topic" or not case.gold_doc:
        return f"off-topic/{source}"
    return f"{corpus}/{case.gold_doc}"


def _weights(rows: Sequence[Row]) -> np.ndarray:
    """Each corpus weighs the same in total."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.corpus] = counts.get(r.corpus, 0) + 1
    return np.asarray([len(rows) / (len(counts) * counts[r.corpus]) for r in rows])


def _models():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
        "boosted": lambda: HistGradientBoostingClassifier(max_depth=3, max_iter=150, learning_rate=0.05,
                                                          early_stopping=False, random_state=SEED),
    }  # fmt: skip


MODEL_NOTES = {
    "logistic": "StandardScaler + LogisticRegression(C=1.0), corpora weighted equally",
    "boosted": "HistGradientBoostingClassifier(max_depth=3, max_iter=150, learning_rate=0.05), "
    "corpora weighted equally",
}


def _matrix(rows: Sequence[Row]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray([[r.features[f] for f in FEATURES] for r in rows]), np.asarray(
        [r.answerable for r in rows]
    )


def _fit_one(make, x: np.ndarray, y: np.ndarray, w: np.ndarray):
    model = make()
    step = model.steps[-1][0] + "__sample_weight" if hasattr(model, "steps") else "sample_weight"
    return model.fit(x, y, **{step: w})


def held_out(rows: Sequence[Row], make) -> tuple[np.ndarray, dict]:
    """P(answerable) for every row from a model fitted without its group, and those models."""
    x, y = _matrix(rows)
    w = _weights(rows)
    groups = np.asarray([r.group for r in rows])
    out, models = np.zeros(len(rows)), {}
    for group in sorted(set(groups)):
        test = groups == group
        models[group] = _fit_one(make, x[~test], y[~test], w[~test])
        out[test] = models[group].predict_proba(x[test])[:, 1]
    return out, models


def _rate(values: list[bool]) -> dict:
    mean, low, high = bootstrap_ci([float(v) for v in values])
    return {"rate": round(mean, 4), "ci95": [round(low, 4), round(high, 4)], "n": len(values)}


def report_at(rows: Sequence[Row], probability: np.ndarray, threshold: float) -> dict:
    """Refusal per corpus and kind at `threshold`, with intervals: refusal rate for unanswerable
    kinds, false-refusal rate for answerable ones."""
    out: dict[str, dict] = {}
    for corpus in sorted({r.corpus for r in rows}):
        for kind in ("on-topic", "off-topic", "answerable", "summary"):
            refused = [bool(p < threshold) for r, p in zip(rows, probability, strict=True)
                       if r.corpus == corpus and r.kind == kind]  # fmt: skip
            if refused:
                name = "refusal_rate" if kind in ("on-topic", "off-topic") else "false_refusal_rate"
                out.setdefault(corpus, {})[f"{name}[{kind}]"] = _rate(refused)
    return out


def corpus_aucs(rows: Sequence[Row], probability: np.ndarray) -> dict[str, float]:
    """AUC within each corpus: how well it ranks inside one collection, where a threshold acts."""
    from sklearn.metrics import roc_auc_score

    out = {}
    for corpus in sorted({r.corpus for r in rows}):
        mine = [(r.answerable, p) for r, p in zip(rows, probability, strict=True) if r.corpus == corpus]
        if len({a for a, _ in mine}) == 2:
            out[corpus] = round(float(roc_auc_score([a for a, _ in mine], [p for _, p in mine])), 4)
    return out


def _auc(rows: Sequence[Row], probability: np.ndarray) -> float:
    """The mean of the per-corpus AUCs."""
    return round(float(np.mean(list(corpus_aucs(rows, probability).values()))), 4)


def operating_point(rows: Sequence[Row], probability: np.ndarray) -> float:
    """The highest threshold whose held-out false refusal over answerable questions, each corpus
    weighing the same, stays within budget."""
    corpora = sorted({r.corpus for r in rows})
    scores = {
        c: [p for r, p in zip(rows, probability, strict=True) if r.corpus == c and r.answerable]
        for c in corpora
    }
    best = GRID[0]
    for t in GRID:
        rates = [sum(p < t for p in s) / len(s) for s in scores.values() if s]
        if sum(rates) / len(rates) <= FALSE_REFUSAL_BUDGET:
            best = t
    return best


def curve(rows: Sequence[Row], probability: np.ndarray) -> list[dict]:
    points = []
    for t in GRID:
        point: dict = {"threshold": t}
        for corpus, block in report_at(rows, probability, t).items():
            for metric, value in block.items():
                point[f"{corpus} {metric}"] = value["rate"]
        points.append(point)
    return points


def _short(value) -> float:
    """Six significant digits for leaf values (thresholds stay exact: a rounded one flips splits)."""
    return float(f"{float(value):.6g}")


def export(name: str, model, rows: Sequence[Row], threshold: float, fitted: dict) -> dict:
    """The fitted model as the JSON `rag.answerability.AnswerabilityModel` reads; `rows`: what it
    was fitted on (the export is checked against sklearn on them)."""
    x, y = _matrix(rows)
    typical = np.median(x[y], axis=0)
    spec: dict = {
        "kind": name,
        "features": list(FEATURES),
        "threshold": threshold,
        "typical": {f: round(float(v), 6) for f, v in zip(FEATURES, typical, strict=True)},
    }
    if name == "logistic":
        scaler, logistic = model.steps[0][1], model.steps[-1][1]
        spec |= {
            "mean": [round(float(v), 6) for v in scaler.mean_],
            "scale": [round(float(v), 6) for v in scaler.scale_],
            "coef": [round(float(v), 6) for v in logistic.coef_[0]],
            "intercept": round(float(logistic.intercept_[0]), 6),
        }
    else:
        spec["baseline"] = float(np.ravel(model._baseline_prediction)[0])
        spec["trees"] = [
            [[-1, 0, 0, 0, _short(n["value"])] if n["is_leaf"] else
             [int(n["feature_idx"]), float(n["num_threshold"]), int(n["left"]), int(n["right"]), 0]
             for n in predictors[0].nodes]
            for predictors in model._predictors
        ]  # fmt: skip
    spec["fitted"] = fitted
    # The JSON must say what sklearn says: check it on every training row.
    exported = AnswerabilityModel(spec)
    ours = np.asarray([exported.probability(r.features) for r in rows])
    theirs = model.predict_proba(x)[:, 1]
    if not np.allclose(ours, theirs, atol=1e-5):
        raise AssertionError(f"exported {name} model differs from sklearn by {np.abs(ours - theirs).max()}")
    return spec


def fit(rows: Sequence[Row], sources: Sequence[Path]) -> tuple[dict, dict]:
    """(model spec to save, report): held-out comparison, operating point, final fit on all rows."""
    comparison, probabilities, folds = {}, {}, {}
    for name, make in _models().items():
        probabilities[name], folds[name] = held_out(rows, make)
        comparison[name] = {
            "held_out_auc": _auc(rows, probabilities[name]),
            "per_corpus": corpus_aucs(rows, probabilities[name]),
        }
    chosen = max(comparison, key=lambda name: comparison[name]["held_out_auc"])
    probability = probabilities[chosen]
    threshold = operating_point(rows, probability)
    x, y = _matrix(rows)
    final = _fit_one(_models()[chosen], x, y, _weights(rows))
    fitted = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": SEED,
        "model": MODEL_NOTES[chosen],
        "data": [
            {"file": str(p.relative_to(CASES)), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:16]}
            for p in sources
        ],
        "rows": len(rows),
        "groups": sorted({r.group for r in rows}),
        "operating_point": (
            f"highest threshold with held-out false refusal <= {FALSE_REFUSAL_BUDGET}, corpora equal"
        ),
        "held_out_auc": comparison[chosen]["held_out_auc"],
    }
    report = {
        "comparison": comparison,
        "chosen": chosen,
        "threshold": threshold,
        "held_out": report_at(rows, probability, threshold),
        "curve": curve(rows, probability),
        "rows": [
            {
                "id": r.case_id,
                "corpus": r.corpus,
                "group": r.group,
                "kind": r.kind,
                "held_out_probability": round(float(p), 4),
            }
            for r, p in zip(rows, probability, strict=True)
        ],
    }
    # The fold models, so `rag eval --held-out` can answer each case with the one that never saw it.
    report["folds"] = {
        group: export(chosen, model, [r for r in rows if r.group != group], threshold, {"held_out": group})
        for group, model in folds[chosen].items()
    }
    return export(chosen, final, rows, threshold, fitted), report


def training_sets() -> list[tuple[Path, Path]]:
    return [(CASES / cases, CASES / corpus) for cases, corpus in TRAINING]


def label(corpus: Path) -> str:
    """A corpus as reports name it: its folder under eval/cases ("docs", "squad2-dev/docs")."""
    path = corpus.absolute()  # not resolved: eval/cases/docs is a link to the shipped samples
    return str(path.relative_to(CASES)) if path.is_relative_to(CASES) else path.name
