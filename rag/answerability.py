"""Do the retrieved passages answer the question? A calibrated probability, decided before any
model runs, for every backend.

The features come from what retrieval already computed (dense cosine, BM25, the fused margin)
and from the words: how much of the question's content (weighted by rarity: corpus IDF and
general-English frequency from `wordfreq`) the best passage and the best sentence cover;
numbers and names the question asks about that no passage contains; whether the sentence that
covers the question holds the kind of answer it asks for (a number for "how many", a date for
"when", a name for "who"); how close the passages' nearest word comes to a question word they
lack (embedding cosine, so a paraphrase is not "missing"). A model over them (gradient-boosted
trees or a logistic regression, whichever measured better held out by document), fitted by
`rag eval --fit-answerability` (eval/answerability.py), is stored as JSON beside this module
and evaluated here in numpy; `RAG_ANSWERABILITY_THRESHOLD` picks the operating point.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.question import NEGATION, Question, content_words, stem
from rag.records import Answerability

MODEL_PATH = Path(__file__).resolve().parent / "answerability_model.json"
PASSAGES = 3  # the top passages whose words and sentences are read

FEATURES = (
    "dense_best", "dense_top3", "bm25_best", "fused_margin", "passage_coverage", "sentence_coverage",
    "rare_missing", "names_missing", "expects_answer", "answer_missing", "negation_mismatch",
    "title_match", "summary", "explain", "summary_coverage", "n_terms", "sentence_dense_best",
    "sentence_rare_missing", "sentence_names_missing", "soft_missing", "soft_coverage",
)  # fmt: skip
SOFT_MATCH = 0.6  # a missing question word counts as present when a passage word is this close (cosine)

# Why a question was judged unanswerable, by the feature that pulled its probability down most.
_REASONS = {
    "dense_best": "no passage is close in meaning",
    "dense_top3": "no passage is close in meaning",
    "bm25_best": "few of its words occur in the documents",
    "fused_margin": "no passage stands out",
    "passage_coverage": "no passage covers what it asks about",
    "sentence_coverage": "no sentence covers what it asks about",
    "rare_missing": "its most specific words are not in the passages",
    "names_missing": "names or numbers it asks about are not in the passages",
    "answer_missing": "the passages hold no answer of the kind it asks for",
    "negation_mismatch": "it asks about a negation the passages don't state",
    "title_match": "it names no document",
    "summary_coverage": "no document is about its topic",
    "sentence_dense_best": "no sentence is close in meaning",
    "sentence_rare_missing": "no sentence holds its most specific words",
    "sentence_names_missing": "no sentence holds the names or numbers it asks about",
    "soft_missing": "a word it asks about has nothing like it in the passages",
    "soft_coverage": "the passages hold little of what it asks about",
}
_NUMBER = re.compile(
    r"\d|\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|trillion|dozen|half|percent)\b",
    re.I,
)
_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\b(january|february|march|april|may|june|july|august|september|"
    r"october|november|december|century|decade|yesterday|today|ago)\b",
    re.I,
)
_NAME = re.compile(r"\b[A-Z][\w'’-]+")


@dataclass(frozen=True)
class Evidence:
    """One retrieved passage as answerability reads it."""

    text: str
    title: str
    sentences: Sequence[str]
    dense: float | None
    bm25: float | None
    score: float


class TermWeights:
    """How much a question word says: rare in this corpus and in English means specific.

    weight = mean of corpus IDF (scaled 0..1 by the IDF of an unseen word) and general rarity
    (1 - Zipf frequency / 8, from wordfreq), so a word common here but rare in English (the
    corpus's own topic) and a word rare here but common in English both count for something.
    """

    def __init__(self, doc_freq: dict[str, int], n_docs: int, stem) -> None:
        self.doc_freq = doc_freq
        self.n_docs = max(n_docs, 1)
        self.stem = stem
        self._unseen = self._idf(0)

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def bm25_ceiling(self, query_stems: set[str]) -> float:
        """The most BM25 could score for these stems (each term's IDF x (k1 + 1), bm25s's k1 = 1.5):
        divides a BM25 score into a share that means the same in any corpus."""
        return 2.5 * sum(self._idf(self.doc_freq.get(s, 0)) for s in query_stems)

    def weight(self, word: str) -> float:
        return (
            _general_rarity(word) * 0.5
            + 0.5 * self._idf(self.doc_freq.get(self.stem(word), 0)) / self._unseen
        )


@lru_cache(maxsize=65536)
def _general_rarity(word: str) -> float:
    from wordfreq import zipf_frequency

    return 1.0 - min(zipf_frequency(word, "en"), 8.0) / 8.0


def _coverage(weights: dict[str, float], stems: dict[str, str], words: set[str]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if stems[t] in words) / total if total else 0.0


def has_answer(kind: str | None, sentence: str, question: Question) -> bool:
    """Does `sentence` hold the kind of answer the question asks for?"""
    if kind == "number":
        return bool(_NUMBER.search(sentence))
    if kind == "date":
        return bool(_DATE.search(sentence))
    if kind == "name":  # a capitalised word, not the sentence's first, the question does not hold
        return any(
            m.start() > 0 and m.group().lower() not in question.names for m in _NAME.finditer(sentence)
        )
    return True


def features(question: Question, evidence: Sequence[Evidence], weights: TermWeights, word_stems,
             embed) -> dict[str, float]:  # fmt: skip
    """The model's inputs; `word_stems(text)` gives a text's set of stemmed words, `embed(texts)`
    their unit vectors (the question's first)."""
    top = list(evidence[:PASSAGES])
    dense = sorted((e.dense for e in evidence if e.dense is not None), reverse=True)
    bm25 = [e.bm25 for e in evidence if e.bm25 is not None]
    scores = [e.score for e in evidence]
    stems = {t: weights.stem(t) for t in question.terms}
    term_weights = {t: weights.weight(t) for t in question.terms}
    words_of = [word_stems(e.text) for e in evidence]
    passage_words = words_of[:PASSAGES]
    everywhere = set().union(*words_of)
    sentences = [(s, word_stems(s)) for e in top for s in e.sentences]
    sentence_cover = [(_coverage(term_weights, stems, words), s) for s, words in sentences]
    ranked = sorted(sentence_cover, key=lambda c: -c[0])[:2]
    best_sentences = [s for c, s in ranked if c >= 0.75 * ranked[0][0]]
    best_words = set().union(*(word_stems(s) for s in best_sentences)) if best_sentences else set()
    best_text = " ".join(best_sentences).lower()
    vectors = embed([question.text, *(s for s, _ in sentences)])
    sentence_dense = float((vectors[1:] @ vectors[0]).max()) if len(vectors) > 1 else -1.0
    soft = _soft_match(question, top, stems, embed)
    texts = " ".join(e.text.lower() + " " + e.title.lower() for e in evidence)
    titles = set().union(*(word_stems(e.title.replace("_", " ")) for e in top)) if top else set()
    passage_coverage = max((_coverage(term_weights, stems, w) for w in passage_words), default=0.0)
    summary = float(question.kind == "summary")
    return {
        "dense_best": dense[0] if dense else -1.0,
        "dense_top3": float(np.mean(dense[:3])) if dense else -1.0,
        "bm25_best": max(bm25, default=0.0) / (weights.bm25_ceiling(word_stems(question.text)) or 1.0),
        "fused_margin": (scores[0] - scores[1]) / (abs(scores[0]) + 1e-9) if len(scores) > 1 else 1.0,
        "passage_coverage": passage_coverage,
        "sentence_coverage": max((c for c, _ in sentence_cover), default=0.0),
        "rare_missing": max((w for t, w in term_weights.items() if stems[t] not in everywhere), default=0.0),
        "names_missing": (
            sum(n not in texts for n in question.names) / len(question.names) if question.names else 0.0
        ),
        "expects_answer": float(question.expects is not None),
        "answer_missing": float(
            question.expects is not None
            and not any(has_answer(question.expects, s, question) for s in best_sentences)
        ),
        "negation_mismatch": float(
            question.negated and not any(NEGATION.search(s) for s in best_sentences)
        ),
        "title_match": _coverage(term_weights, stems, titles),
        "summary": summary,
        "explain": float(question.kind == "explain"),
        "summary_coverage": summary * passage_coverage,
        "n_terms": math.log1p(len(question.terms)),
        "sentence_dense_best": sentence_dense,
        "sentence_rare_missing": max(
            (w for t, w in term_weights.items() if stems[t] not in best_words), default=0.0
        ),
        "sentence_names_missing": (
            sum(n not in best_text for n in question.names) / len(question.names) if question.names else 0.0
        ),
        "soft_missing": max((term_weights[t] * (1 - soft[t]) for t in soft), default=0.0),
        "soft_coverage": (
            sum(w * (1.0 if soft.get(t, 1.0) >= SOFT_MATCH else 0.0) for t, w in term_weights.items())
            / sum(term_weights.values()) if term_weights else 0.0
        ),
    }  # fmt: skip


def missing_words(
    question: Question, evidence: Sequence[Evidence], weights: TermWeights, word_stems
) -> list[str]:
    """The question's content words no retrieved passage (nor its title) holds, most specific first."""
    held = set().union(*(word_stems(e.text) | word_stems(e.title) for e in evidence)) if evidence else set()
    absent = [t for t in question.terms if weights.stem(t) not in held]
    return sorted(absent, key=lambda t: -weights.weight(t))


def _soft_match(
    question: Question, top: Sequence[Evidence], stems: dict[str, str], embed
) -> dict[str, float]:
    """For each question word no top passage holds: its best cosine to a word the passages do hold
    (a paraphrase scores high, a truly absent thing low)."""
    words = {w for e in top for w in content_words(e.text) if not w.isdigit()}
    held = {stem(w) for w in words}
    missing = [t for t in question.terms if stems[t] not in held]
    if not missing or not words:
        return {t: 0.0 for t in missing}
    vocabulary = sorted(words)
    vectors = embed([*missing, *vocabulary])
    similarity = vectors[: len(missing)] @ vectors[len(missing) :].T
    return {t: float(similarity[i].max()) for i, t in enumerate(missing)}


class AnswerabilityModel:
    """A fitted model as JSON, evaluated in pure numpy: either `logistic` (standardised features,
    weights, intercept) or `boosted` (gradient-boosted trees: each node is
    [feature, threshold, left, right, leaf value], a leaf having feature -1)."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.kind: str = spec.get("kind", "logistic")
        self.features: list[str] = spec["features"]
        self.threshold = float(spec["threshold"])
        # Per feature, its median over answerable training questions: the reason for a refusal is
        # the feature whose typical value would raise the probability most.
        self.typical: dict[str, float] = spec.get("typical", {})
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise ValueError(f"answerability model uses unknown features {sorted(unknown)}")
        if self.kind == "logistic":
            self.mean = np.asarray(spec["mean"], dtype=float)
            self.scale = np.asarray(spec["scale"], dtype=float)
            self.coef = np.asarray(spec["coef"], dtype=float)
            self.intercept = float(spec["intercept"])
        elif self.kind == "boosted":
            self.baseline = float(spec["baseline"])
            self.trees = [np.asarray(tree, dtype=float) for tree in spec["trees"]]
        else:
            raise ValueError(f"unknown answerability model kind {self.kind!r}")

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerabilityModel:
        path = Path(path or MODEL_PATH)
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: not a readable answerability model ({exc})") from exc

    def _logit(self, x: np.ndarray) -> float:
        if self.kind == "logistic":
            return self.intercept + float(self.coef @ ((x - self.mean) / self.scale))
        total = self.baseline
        for tree in self.trees:
            node = 0
            while tree[node, 0] >= 0:
                node = int(tree[node, 2] if x[int(tree[node, 0])] <= tree[node, 1] else tree[node, 3])
            total += tree[node, 4]
        return total

    def probability(self, values: dict[str, float]) -> float:
        logit = self._logit(np.asarray([values[f] for f in self.features], dtype=float))
        return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))

    def _holding_back(self, values: dict[str, float], probability: float) -> str | None:
        gains = {f: self.probability(values | {f: v}) - probability for f, v in self.typical.items()}
        best = max(gains, key=gains.get, default=None)
        return best if best is not None and gains[best] > 0 else None

    def decide(self, values: dict[str, float], threshold: float | None = None,
               missing: Sequence[str] = ()) -> Answerability:  # fmt: skip
        """`missing`: the question's words no passage holds, named in a refusal's reason."""
        threshold = self.threshold if threshold is None else threshold
        probability = self.probability(values)
        answerable = probability >= threshold
        if answerable:
            reason = f"answerability {probability:.2f} ≥ {threshold:.2f}"
        else:
            against = self._holding_back(values, probability)
            why = _REASONS.get(against, "it looks unlike the questions these documents answer")
            if missing:
                why += "; not in the passages: " + ", ".join(f"“{w}”" for w in missing[:3])
            reason = f"answerability {probability:.2f} below {threshold:.2f}: {why}"
        return Answerability(
            answerable=answerable,
            probability=round(probability, 4),
            threshold=threshold,
            reason=reason,
            features={k: round(v, 4) for k, v in values.items()},
        )
