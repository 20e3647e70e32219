"""Check each answer sentence against the passages: which one supports it, and how well.

Small models neither cite reliably nor stay on the passages, so grounding is decided here, not
by the model. Support of a sentence by a passage is the mean of

- semantic: cosine similarity of the sentence and the passage's best sentence (the embedder);
- lexical: the share of the sentence's content words (stemmed, stopwords removed) found in the
  passage.

A sentence is supported when its best support reaches `threshold` (default 0.5: a paraphrase of
a passage sentence scores ~0.6-0.9, an on-topic invention ~0.3-0.45 on the sample corpus).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

from rag.embeddings import Embedder
from rag.question import stems

CITATION = re.compile(r"\s*\[(\d+)\]")
# "... capacity. [1] Next ..." -> "... capacity [1]. Next ...": a marker after the full stop
# belongs to the sentence before it, not to the start of the next one.
_TRAILING_CITATIONS = re.compile(r"([.!?])((?:\s*\[\d+\])+)")


@dataclass(frozen=True)
class Quote:
    text: str
    start: int  # offset in the passage text


@dataclass(frozen=True)
class Support:
    sentence: str  # without citation markers
    cited: list[int]  # what the model cited, as written (1-based)
    passage: int | None  # best supporting passage (0-based), None when there is none
    score: float  # the best support over all passages
    quotes: dict[int, Quote] = field(default_factory=dict)  # supporting passage -> its best sentence


def blend(semantic: float, lexical: float) -> float:
    """Support and relevance alike: half embedding cosine, half content-word overlap."""
    return 0.5 * semantic + 0.5 * lexical


class SupportChecker:
    """Thread-safe. Sentence splits and sentence vectors are cached (bounded): the same passages
    come back question after question, and the extractive composer embeds the very sentences
    the check embeds again."""

    CACHE = 20_000  # sentence vectors kept (384 floats each: ~30 MB)

    def __init__(self, embedder: Embedder, threshold: float = 0.5) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self._split = split_by_sentence_tokenizer()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._locate = lru_cache(maxsize=4096)(self._find_sentences)

    def sentences(self, text: str) -> list[str]:
        return [s.strip() for s in self._split(text) if s.strip()]

    def terms(self, text: str) -> set[str]:
        """Stemmed content words: what lexical overlap is measured on."""
        return stems(text)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            fresh = dict(zip(missing, self.embedder.unit_vectors(missing), strict=True))
            known |= fresh
            with self._lock:
                self._vectors.update(fresh)
                while len(self._vectors) > self.CACHE:
                    self._vectors.popitem(last=False)
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    def check(self, answer: str, passages: Sequence[str]) -> list[Support]:
        """Split a generated answer into sentences (with the model's [n] markers) and check each."""
        raw = self.sentences(_TRAILING_CITATIONS.sub(r"\2\1", answer))
        return self.check_sentences(
            [CITATION.sub("", s).strip() for s in raw], [_cited(s) for s in raw], passages
        )

    def check_sentences(
        self, clean: list[str], cited: list[list[int]], passages: Sequence[str]
    ) -> list[Support]:
        if not clean or not passages:
            return [Support(s, c, None, 0.0) for s, c in zip(clean, cited, strict=True)]
        units = [(p, s) for p, text in enumerate(passages) for s in self.locate(text)]
        answer_vecs = self.embed(clean)
        unit_vecs = self.embed([s.text for _, s in units])
        semantic = answer_vecs @ unit_vecs.T  # sentences x passage sentences
        passage_terms = [self.terms(text) for text in passages]
        results = []
        for i, sentence in enumerate(clean):
            terms = self.terms(sentence)
            best: dict[int, tuple[float, Quote]] = {}  # passage -> its best-supporting sentence
            for j, (p, quote) in enumerate(units):
                lexical = len(terms & passage_terms[p]) / len(terms) if terms else 0.0
                score = blend(float(semantic[i, j]), lexical)
                if p not in best or score > best[p][0]:
                    best[p] = (score, quote)
            top = max(best, key=lambda p: best[p][0])
            quotes = {p: q for p, (score, q) in best.items() if score >= self.threshold}
            results.append(
                Support(sentence, cited[i], top if quotes else None, round(best[top][0], 4), quotes)
            )
        return results

    def locate(self, text: str) -> tuple[Quote, ...]:
        """The passage's sentences with their offsets (each an exact substring)."""
        return self._locate(text)

    def _find_sentences(self, text: str) -> tuple[Quote, ...]:
        quotes, cursor = [], 0
        for sentence in self.sentences(text):
            start = text.find(sentence, cursor)
            if start < 0:
                continue
            quotes.append(Quote(sentence, start))
            cursor = start + len(sentence)
        return tuple(quotes) or (Quote(text, 0),)


def _cited(sentence: str) -> list[int]:
    return [int(n) for n in CITATION.findall(sentence)]
