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
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import Stemmer
from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

from rag.embeddings import Embedder
from rag.offline import tiktoken_cache_dir

CITATION = re.compile(r"\s*\[(\d+)\]")
# "... capacity. [1] Next ..." -> "... capacity [1]. Next ...": a marker after the full stop
# belongs to the sentence before it, not to the start of the next one.
_TRAILING_CITATIONS = re.compile(r"([.!?])((?:\s*\[\d+\])+)")
_WORD = re.compile(r"\w+", re.UNICODE)


def _stopwords() -> frozenset[str]:
    # NLTK's English list (179 words), shipped inside llama-index-core.
    path = tiktoken_cache_dir().parent / "nltk_cache" / "corpora" / "stopwords" / "english"
    return frozenset(path.read_text(encoding="utf-8").split())


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


class SupportChecker:
    def __init__(self, embedder: Embedder, threshold: float = 0.5) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self._split = split_by_sentence_tokenizer()
        self._stem = Stemmer.Stemmer("english").stemWord
        self._stop = _stopwords()

    def sentences(self, text: str) -> list[str]:
        return [s.strip() for s in self._split(text) if s.strip()]

    def terms(self, text: str) -> set[str]:
        """Stemmed content words: what lexical overlap is measured on."""
        return {self._stem(w) for w in _WORD.findall(text.lower()) if w not in self._stop}

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        return self.embedder.unit_vectors(texts)

    def check(self, answer: str, passages: Sequence[str]) -> list[Support]:
        raw = self.sentences(_TRAILING_CITATIONS.sub(r"\2\1", answer))
        if not raw or not passages:
            return [Support(CITATION.sub("", s).strip(), _cited(s), None, 0.0) for s in raw]
        clean = [CITATION.sub("", s).strip() for s in raw]
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
                score = 0.5 * float(semantic[i, j]) + 0.5 * lexical
                if p not in best or score > best[p][0]:
                    best[p] = (score, quote)
            top = max(best, key=lambda p: best[p][0])
            quotes = {p: q for p, (score, q) in best.items() if score >= self.threshold}
            results.append(
                Support(sentence, _cited(raw[i]), top if quotes else None, round(best[top][0], 4), quotes)
            )
        return results

    def locate(self, text: str) -> list[Quote]:
        """The passage's sentences with their offsets (each an exact substring)."""
        quotes, cursor = [], 0
        for sentence in self.sentences(text):
            start = text.find(sentence, cursor)
            if start < 0:
                continue
            quotes.append(Quote(sentence, start))
            cursor = start + len(sentence)
        return quotes or [Quote(text, 0)]


def _cited(sentence: str) -> list[int]:
    return [int(n) for n in CITATION.findall(sentence)]
