"""Scoring functions for one case, and bootstrap confidence intervals for their means.

Answer scores follow the official SQuAD v2 evaluation script: answers are normalised (lower
case, no punctuation, no articles a/an/the, single spaces) before exact match and token F1, and
the best score over the accepted answers counts.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    return max((float(normalize_answer(prediction) == normalize_answer(a)) for a in answers), default=0.0)


def _f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    return max((_f1(prediction, a) for a in answers), default=0.0)


def contains_answer(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when a normalised accepted answer appears inside the normalised prediction.

    Generative answers are sentences, not spans: EM is near zero for them even when right.
    """
    pred = f" {normalize_answer(prediction)} "
    return float(any(f" {normalize_answer(a)} " in pred for a in answers if normalize_answer(a)))


def _words(sentence: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", sentence)


def has_duplicate_sentence(sentences: Sequence[str]) -> bool:
    """Does one sentence (compared as normalised words) appear twice?"""
    keys = [normalize_answer(s) for s in sentences if normalize_answer(s)]
    return len(keys) != len(set(keys))


def has_fragment(sentences: Sequence[str]) -> bool:
    """Does any answer sentence fail to read as a sentence? Judged independently of the product's
    own filter, so it can catch what that misses: fewer than 3 words, no letters, over 80 words (a
    block, not a sentence), or a short line with no closing punctuation (a heading, a menu item)."""
    for s in sentences:
        words = _words(s)
        closed = s.rstrip().endswith((".", "!", "?", "…", '"', "”", "’", ")", "'"))
        if len(words) < 3 or len(words) > 80 or (not closed and len(words) <= 6):
            return True
    return False


def mention_recall(prediction: str, terms: Sequence[str]) -> float:
    """Share of must-mention terms found (case-insensitive) in the prediction."""
    if not terms:
        return 1.0
    lowered = prediction.lower()
    return sum(term.lower() in lowered for term in terms) / len(terms)


def first_relevant_rank(relevant: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant item, or None."""
    return next((i + 1 for i, hit in enumerate(relevant) if hit), None)


def hit_at_k(relevant: Sequence[bool], k: int) -> float:
    return float(any(relevant[:k]))


def reciprocal_rank(relevant: Sequence[bool]) -> float:
    rank = first_relevant_rank(relevant)
    return 1.0 / rank if rank else 0.0


def ndcg_at_k(relevant: Sequence[bool], k: int = 10) -> float:
    """Binary-relevance nDCG: ideal ranking puts every relevant item first."""
    dcg = sum(1.0 / math.log2(i + 2) for i, hit in enumerate(relevant[:k]) if hit)
    n_relevant = min(sum(relevant), k)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(n_relevant))
    return dcg / ideal if ideal else 0.0


def bootstrap_ci(
    values: Sequence[float], resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap interval of the mean. Empty input gives NaNs."""
    if not values:
        return (math.nan, math.nan, math.nan)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = means[int(tail * resamples)]
    high = means[min(resamples - 1, int((1 - tail) * resamples))]
    return (sum(values) / n, low, high)


def nearest_rank(values: Sequence[float], p: float) -> float:
    """The p-th percentile by nearest rank: a value that occurred (one rule for every latency)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]
