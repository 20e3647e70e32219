"""Run cases through retrieval (every requested mode) and, unless retrieval-only, the answer path.

Per case: the ranking metrics of each mode, and for answers EM/F1, answer containment,
must-mention recall, support and citation precision from the Answer's own checks, refusal, and
the Answer record itself (replayable). Aggregates are means with 95 % bootstrap intervals.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from eval.cases import Case, case_kind
from eval.judge import Judge
from eval.metrics import (
    bootstrap_ci,
    contains_answer,
    exact_match,
    has_duplicate_sentence,
    has_fragment,
    hit_at_k,
    mention_recall,
    ndcg_at_k,
    nearest_rank,
    reciprocal_rank,
    token_f1,
)
from rag import records
from rag.answer import Answerer, carry_topic
from rag.embeddings import Embedder
from rag.records import EVAL_PREFIX, Answer, Mode
from rag.retrieval import Hit, Retriever
from rag.store import head_metadatas

RANK_DEPTH = 10
RETRIEVAL_METRICS = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10")
ANSWER_METRICS = (
    "em", "f1", "contains_answer", "must_mention", "no_forbidden", "support_rate", "citation_precision",
    "semantic_similarity", "judge_correctness", "judge_faithful", "duplicate_sentences", "fragments",
    "answer_words",
)  # fmt: skip
REFUSAL_KINDS = ("on-topic", "off-topic")  # unanswerable: refusal_rate[kind]
ANSWER_KINDS = ("answerable", "summary")  # answerable: false_refusal_rate[kind]


def _ranking(case: Case, hits: list[Hit]) -> dict[str, float]:
    relevant = [case.is_relevant(h.chunk.doc_id, h.chunk.text) for h in hits]
    return {
        "hit@1": hit_at_k(relevant, 1),
        "hit@3": hit_at_k(relevant, 3),
        "hit@5": hit_at_k(relevant, 5),
        "hit@10": hit_at_k(relevant, 10),
        "mrr": reciprocal_rank(relevant),
        "ndcg@10": ndcg_at_k(relevant, 10),
    }


def semantic_similarity(embedder: Embedder, answer: str, references: Sequence[str]) -> float:
    """Best cosine between the answer and an accepted answer, with the retrieval embedder."""
    vectors = embedder.unit_vectors([answer, *references])
    return round(float((vectors[1:] @ vectors[0]).max()), 4)


def answer_scores(case: Case, answer: Answer) -> dict[str, float]:
    scores: dict[str, float] = {"refused": float(answer.refused)}
    if case.answerable and case.answers:
        text = "" if answer.refused else answer.answer
        scores |= {
            "em": exact_match(text, case.answers),
            "f1": token_f1(text, case.answers),
            "contains_answer": contains_answer(text, case.answers),
        }
    if case.must_mention:
        scores["must_mention"] = mention_recall("" if answer.refused else answer.answer, case.must_mention)
    if case.must_not_mention:
        scores["no_forbidden"] = float(mention_recall(answer.answer, case.must_not_mention) == 0.0)
    if answer.sentences and not answer.refused:
        scores["support_rate"] = sum(s.supported for s in answer.sentences) / len(answer.sentences)
        cited = [s for s in answer.sentences if s.citations]
        if cited:
            scores["citation_precision"] = sum(s.supported for s in cited) / len(cited)
        texts = [s.text for s in answer.sentences]
        scores["duplicate_sentences"] = float(has_duplicate_sentence(texts))
        scores["fragments"] = float(has_fragment(texts))
        scores["answer_words"] = float(sum(len(t.split()) for t in texts))
    return scores


def run(
    cases: Sequence[Case],
    retriever: Retriever,
    modes: Sequence[Mode],
    answerer: Answerer | None = None,
    progress: Callable = tqdm,
    judge: Judge | None = None,
    answerer_for: Callable[[Case], Answerer] | None = None,
) -> dict:
    """Score `cases`; returns {"modes": {mode: aggregates}, "calibration": ..., "cases": [...],
    "never_retrieved": [doc ids no case retrieved in the first mode's top 10]}."""
    rows = []
    retrieved_docs: set[str] = set()
    for case in progress(cases, desc="cases", unit="case", disable=None):
        record: dict = {"id": case.id, "question": case.question, "tags": case.tags, "retrieval": {}}
        record["answerable"], record["kind"] = case.answerable, case_kind(case)
        for i, mode in enumerate(modes):
            if i > 0 and not case.has_retrieval_gold:
                continue
            # No model to condense with here: the answer path's own rule without one.
            query = carry_topic(case.question, [t.question for t in case.history])
            hits, _ = retriever.retrieve(query, mode, top_k=RANK_DEPTH)
            if i == 0:
                retrieved_docs |= {h.chunk.doc_id for h in hits}
            if case.has_retrieval_gold:
                record["retrieval"][mode] = _ranking(case, hits)
        if answerer is not None:
            history = case.history
            chosen = answerer_for(case) if answerer_for else answerer
            answer = chosen.ask(case.question, history, mode=modes[0])
            record["answer"] = answer_scores(case, answer) | (judge.score(case, answer) if judge else {})
            if case.answerable and case.answers and not answer.refused:
                record["answer"]["semantic_similarity"] = semantic_similarity(
                    retriever.embedder, answer.answer, case.answers
                )
            record["record"] = answer.model_dump()
            record["answerability"] = answer.answerability.probability if answer.answerability else 0.0
        rows.append(record)
    return {
        "modes": aggregate(rows, modes, answered=answerer is not None),
        "calibration": calibrate(rows),
        "never_retrieved": sorted(_all_docs(retriever) - retrieved_docs),
        "cases": rows,
    }


def _all_docs(retriever: Retriever) -> set[str]:
    return {m[records.DOC_ID] for m in head_metadatas(retriever.store)}


def calibrate(rows: list[dict], step: float = 0.01) -> dict:
    """Refusal over a grid of answerability thresholds on these cases: what `--fit-answerability`
    fits on its own data, shown here for any case set (refused at t when P(answerable) < t)."""
    scored = [r for r in rows if "answerability" in r]
    unanswerable = [r["answerability"] for r in scored if not r["answerable"]]
    answerable = [r["answerability"] for r in scored if r["answerable"]]
    if not unanswerable or not answerable:
        return {"curve": [], "note": "needs answered runs over answerable and unanswerable cases"}
    curve = []
    for i in range(1, round(1 / step)):
        t = round(i * step, 4)
        curve.append({
            "threshold": t,
            "refusal_rate": round(sum(p < t for p in unanswerable) / len(unanswerable), 4),
            "false_refusal_rate": round(sum(p < t for p in answerable) / len(answerable), 4),
        })  # fmt: skip
    return {"curve": curve}


@dataclass(frozen=True)
class Stat:
    mean: float
    low: float  # 95 % bootstrap interval
    high: float
    n: int


def _put(block: dict, metric: str, values: list[float]) -> None:
    """Store a metric in a mode's block: the mean under its name (a plain number), its interval
    under `ci95` and its case count under `n`."""
    mean, low, high = bootstrap_ci(values)
    block[metric] = round(mean, 4)
    block.setdefault("ci95", {})[metric] = [round(low, 4), round(high, 4)]
    block.setdefault("n", {})[metric] = len(values)


def stat(block: dict, metric: str) -> Stat | None:
    """Read a metric back from a mode's block, or None when it was not measured."""
    if not isinstance(block.get(metric), int | float) or metric not in block.get("ci95", {}):
        return None
    low, high = block["ci95"][metric]
    return Stat(block[metric], low, high, block["n"][metric])


def metric_names(block: dict) -> list[str]:
    return list(block.get("ci95", {}))


def aggregate(rows: list[dict], modes: Sequence[Mode], answered: bool) -> dict:
    out: dict[str, dict] = {mode: {} for mode in modes}
    for mode in modes:
        scored = [r["retrieval"][mode] for r in rows if mode in r["retrieval"]]
        for metric in RETRIEVAL_METRICS if scored else ():
            _put(out[mode], metric, [s[metric] for s in scored])
    if answered:
        # The answer path ran with the first mode only.
        primary = out[modes[0]]
        answers = [r for r in rows if "answer" in r]
        for metric in ANSWER_METRICS:
            values = [r["answer"][metric] for r in answers if metric in r["answer"]]
            if values:
                _put(primary, metric, values)
        unanswerable = [r["answer"]["refused"] for r in answers if not r["answerable"]]
        answerable = [r["answer"]["refused"] for r in answers if r["answerable"]]
        if unanswerable:
            _put(primary, "refusal_rate", unanswerable)
        if answerable:
            _put(primary, "false_refusal_rate", answerable)
        for kind in REFUSAL_KINDS + ANSWER_KINDS:
            values = [r["answer"]["refused"] for r in answers if r["kind"] == kind]
            name = "refusal_rate" if kind in REFUSAL_KINDS else "false_refusal_rate"
            if values and len(values) < len(answers):  # only worth a row when kinds are mixed
                _put(primary, f"{name}[{kind}]", values)
        refused = [float(not r["answerable"]) for r in answers if r["answer"]["refused"]]
        if refused and unanswerable:
            _put(primary, "refusal_precision", refused)  # of the refusals, how many were right
        stages: dict[str, list[float]] = {}
        for r in answers:
            for stage, seconds in r["record"]["timings"].items():
                stages.setdefault(stage, []).append(seconds * 1000)
        if stages:
            primary["latency_ms"] = {
                stage: {"p50": round(nearest_rank(v, 50), 1), "p95": round(nearest_rank(v, 95), 1)}
                for stage, v in stages.items()
            }
    return out


def collection_for(corpus: Path) -> str:
    """The collection an evaluation corpus is ingested into: its own, named after the folder and a
    hash of its path, so evaluating never touches the product's documents."""
    resolved = corpus.resolve()
    tag = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    return f"{EVAL_PREFIX}{re.sub(r'[^A-Za-z0-9_-]', '_', resolved.name)[:40]}_{tag}"
