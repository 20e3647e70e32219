"""The extractive answer: passage sentences chosen for the question and shaped by its kind.

No generative model runs. Candidates are the passages' sentences (very long ones cut at clause
boundaries), minus fragments (headings, keyword lists, page junk, lone symbols), minus repeats
(overlapping chunks hold the same sentence) and minus what earlier answers already said. Each
is scored by relevance to the question: the support checker's blend of embedding cosine and
the share of the question's content words it holds.

- factoid (who / what / which / when / where / how many / how much): the best sentence, then at
  most one more when it adds something asked for (a question word or the kind of answer the
  first lacks).
- explain and summary: 2-4 sentences by maximal marginal relevance (relevant, not alike), within
  a word budget, put back in document order, grouped by source.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.answerability import has_answer
from rag.question import Question, stems
from rag.records import Composition, Pick
from rag.support import Quote, SupportChecker, blend

WORD_BUDGET = 90  # explain / summary answers
MAX_PICKS = 4
LONG_SENTENCE = 40  # words: cut at clause boundaries above this
MMR_LAMBDA = 0.7
RELATIVE_FLOOR = {"explain": 0.75, "summary": 0.0}  # a pick scores at least this share of the best
NO_ANSWER_KIND = 0.75  # factoid: relevance kept by a sentence without the kind of answer asked for
ANSWER_KIND_FLOOR = 0.6  # factoid: a second sentence that holds the asked-for kind scores this share
SECOND_FACTOID = 0.85  # factoid: a second sentence scores at least this share of the best
MIN_RELEVANCE = 0.15  # below this a sentence shares nothing with the question

_LETTER_WORD = re.compile(r"[^\W\d_]{2,}|\b[^\W\d_]\b", re.UNICODE)
_TERMINAL = (".", "!", "…", '"', "”", "’", "'", ")", "]", "»")
_CLAUSE = re.compile(r"\s+[-–—]\s*|\s*[–—]\s+|;\s+|:\s+|,\s+(?=(?:but|while|whereas|although|though|yet)\b)")
_LIST_SEPARATORS = re.compile(r"[•·|,/]")
# "5h ago", "OriginalReply0" (widget words glued to counters); case-sensitive, so "COVID19" and
# "mp3" are words, not junk.
_PAGE_JUNK = re.compile(r"\b\d+\s?(?:s|m|h|d|w|mo|y)\s+ago\b|[a-z][A-Z][a-z]+\d|\b(?:Reply|Repost|Share)\d")
_CITATION = re.compile(r"\s*\[\d+\]")
_INTERROGATIVE = re.compile(r"(what|what’s|what's|why|how|who|which|where|when|any thoughts)\b", re.I)


def normalise(sentence: str) -> str:
    """The form two copies of one sentence share: lower case, words only."""
    return " ".join(re.findall(r"\w+", sentence.lower()))


def fragment_reason(text: str) -> str | None:
    """Why `text` cannot be an answer sentence, or None when it can."""
    words = _LETTER_WORD.findall(text)
    if len(words) < 3:
        return "fewer than 3 words"
    stripped = text.rstrip()
    if stripped.endswith("?"):
        return "a question"
    if not stripped.endswith(_TERMINAL) and len(words) <= 8:
        return "a heading"
    segments = [s for s in _LIST_SEPARATORS.split(text) if s.strip()]
    if len(segments) >= 4 and len(words) / len(segments) <= 2.5:
        return "a keyword list"
    visible = [c for c in text if not c.isspace()]
    if sum(c.isalpha() for c in visible) < 0.6 * len(visible) or _PAGE_JUNK.search(text):
        return "page junk"
    if len(words) > 2 * LONG_SENTENCE:
        return "a block, not a sentence"
    return None


def _trim(text: str, start: int) -> tuple[str, int]:
    """Drop leading/trailing spaces and pictographs (emoji, flags, bullets): still an exact
    substring. Currency and math signs stay: "$5 billion" keeps its "$"."""

    def junk(c: str) -> bool:
        category = unicodedata.category(c)
        return c.isspace() or category in ("So", "Sk", "Mn") or category[0] in "ZC"

    lo, hi = 0, len(text)
    while lo < hi and junk(text[lo]):
        lo += 1
    while hi > lo and junk(text[hi - 1]):
        hi -= 1
    return text[lo:hi], start + lo


def _lines(quote: Quote) -> list[Quote]:
    """The sentence splitter keeps line breaks inside a sentence; in cleaned text a line is a
    paragraph of its own (a comment, a menu item), so a candidate never spans two."""
    pieces, offset = [], 0
    for line in quote.text.split("\n"):
        if line.strip():
            pieces.append(Quote(line, quote.start + offset))
        offset += len(line) + 1
    return pieces


def _answered_questions(text: str, sentences: Sequence[Quote]) -> list[Quote]:
    """A question the text answers at once ("What is holding things back? Core technology.") is
    one unit: alone, the question is no answer and the answer is a fragment."""
    units: list[Quote] = []
    i = 0
    while i < len(sentences):
        current = sentences[i]
        following = sentences[i + 1] if i + 1 < len(sentences) else None
        if (
            following is not None
            and current.text.rstrip().endswith("?")
            and len(_LETTER_WORD.findall(following.text)) < 6
            and "\n" not in text[current.start : following.start]
        ):
            end = following.start + len(following.text)
            units.append(Quote(text[current.start : end], current.start))
            i += 2
            continue
        units.append(current)
        i += 1
    return units


def clauses(quote: Quote) -> list[Quote]:
    """A long sentence's clauses that can stand alone (6+ words); a short one as it is."""
    text, start = _trim(quote.text, quote.start)
    if len(_LETTER_WORD.findall(text)) <= LONG_SENTENCE:
        return [Quote(text, start)]
    pieces, cursor = [], 0
    for cut in [*_CLAUSE.finditer(text), None]:
        end = cut.start() if cut else len(text)
        piece, offset = _trim(text[cursor:end], start + cursor)
        # A clause that opens with a question word is a question cut from its question mark.
        if len(_LETTER_WORD.findall(piece)) >= 6 and not _INTERROGATIVE.match(piece):
            pieces.append(Quote(piece, offset))
        cursor = cut.end() if cut else len(text)
    return pieces


@dataclass(frozen=True)
class Candidate:
    passage: int  # 0-based
    quote: Quote  # offset in the passage text
    order: tuple[int, int]  # (rank of its document among the passages, offset in the document)


class ExtractiveComposer:
    """The `extractive` backend: no model, the answer is composed from passage sentences."""

    backend = "extractive"
    model = "extractive"
    generative = False

    def __init__(self, checker: SupportChecker) -> None:
        self.checker = checker

    def candidates(
        self, passages: Sequence[tuple[str, str, int]], avoid: Sequence[str]
    ) -> tuple[list[Candidate], dict]:
        """Sentences of the passages (text, doc id, char start in the document) that may answer,
        less those inside `avoid` (normalised texts of earlier answers)."""
        chosen: list[Candidate] = []
        seen: list[str] = []
        dropped = {"fragments": 0, "repeats": 0, "said_before": 0}
        doc_rank: dict[str, int] = {}
        for p, (text, doc_id, doc_start) in enumerate(passages):
            rank = doc_rank.setdefault(doc_id, len(doc_rank))
            lines = [line for s in self.checker.locate(text) for line in _lines(s)]
            for sentence in _answered_questions(text, lines):
                for quote in clauses(sentence):
                    # A chunk that starts mid-sentence (overlap) begins with a tail, not a sentence.
                    starts_chunk = not text[: quote.start].strip()
                    if fragment_reason(quote.text) or (
                        starts_chunk and doc_start > 0 and quote.text[0].islower()
                    ):
                        dropped["fragments"] += 1
                        continue
                    key = normalise(quote.text)
                    if any(key in said for said in avoid):
                        dropped["said_before"] += 1
                        continue
                    if any(key in other or other in key for other in seen):
                        dropped["repeats"] += 1
                        continue
                    seen.append(key)
                    chosen.append(Candidate(p, quote, (rank, doc_start + quote.start)))
        return chosen, dropped

    def compose(self, question: Question, query: str, passages: Sequence[tuple[str, str, int]],
                avoid: Sequence[str] = ()) -> Composition:  # fmt: skip
        candidates, dropped = self.candidates(passages, avoid)
        if not candidates:
            return Composition(question_kind=question.kind, expects=question.expects, candidates=0, **dropped)
        texts = [c.quote.text for c in candidates]
        vectors = self.checker.embed([query, *texts])
        cosine = vectors[1:] @ vectors[0]
        wanted = {s for t in question.terms for s in stems(t)} or stems(query)
        held = [stems(t) & wanted for t in texts]
        relevance = np.asarray(
            [
                blend(float(cosine[i]), len(held[i]) / len(wanted) if wanted else 0.0)
                for i in range(len(texts))
            ]
        )
        if question.kind == "factoid":
            picked = self._factoid(question, texts, held, relevance)
        else:
            if question.kind == "summary":  # the gist of one document: the one that matches best
                doc = candidates[int(np.argmax(relevance))].order[0]
                relevance = np.where([c.order[0] == doc for c in candidates], relevance, -np.inf)
            picked = self._covering(vectors[1:], texts, relevance, question.kind)
            picked.sort(key=lambda i: candidates[i].order)
        return Composition(
            question_kind=question.kind,
            expects=question.expects,
            candidates=len(candidates),
            **dropped,
            picks=[
                Pick(n=candidates[i].passage + 1, text=texts[i], start=candidates[i].quote.start,
                     relevance=round(float(relevance[i]), 4))
                for i in picked
            ],
        )  # fmt: skip

    def _factoid(
        self, question: Question, texts: list[str], held: list[set[str]], relevance: np.ndarray
    ) -> list[int]:
        if question.expects is not None:  # "how long" wants the sentence with the number in it
            relevance = relevance * np.asarray(
                [1.0 if has_answer(question.expects, t, question) else NO_ANSWER_KIND for t in texts]
            )
        ranked = [int(i) for i in np.argsort(-relevance) if relevance[i] >= MIN_RELEVANCE]
        if not ranked:
            return []
        best = ranked[0]
        if question.expects is not None and not has_answer(question.expects, texts[best], question):
            # The best sentence lacks what was asked for (a number, a date, a name): add the best
            # one that holds it, if it is about the question at all.
            holding = [i for i in ranked[1:] if has_answer(question.expects, texts[i], question)]
            if holding and relevance[holding[0]] >= ANSWER_KIND_FLOOR * relevance[best]:
                return [best, holding[0]]
        for i in ranked[1:3]:
            if relevance[i] < SECOND_FACTOID * relevance[best]:
                break
            if held[i] - held[best]:  # it holds a question word the first lacks
                return [best, i]
        return [best]

    @staticmethod
    def _covering(vectors: np.ndarray, texts: list[str], relevance: np.ndarray, kind: str) -> list[int]:
        """Maximal marginal relevance within the word budget: 2-4 sentences when there are.
        A summary needs no word of the question in its sentences (answerability already found
        the document); an explanation does."""
        floor = RELATIVE_FLOOR[kind] * float(relevance.max())
        if kind != "summary":
            floor = max(MIN_RELEVANCE, floor)
        pool = [i for i in range(len(texts)) if np.isfinite(relevance[i]) and relevance[i] >= floor]
        picked: list[int] = []
        words = 0
        while pool and len(picked) < MAX_PICKS:

            def marginal(i: int) -> float:
                alike = max((float(vectors[i] @ vectors[j]) for j in picked), default=0.0)
                return MMR_LAMBDA * float(relevance[i]) - (1 - MMR_LAMBDA) * alike

            i = max(pool, key=marginal)
            pool.remove(i)
            length = len(texts[i].split())
            if picked and words + length > WORD_BUDGET:
                continue
            picked.append(i)
            words += length
        return picked


def answer_text(composition: Composition) -> str:
    """The answer as the user reads it: each sentence followed by its citation."""
    return " ".join(f"{p.text} [{p.n}]" for p in composition.picks)


def said(answers: Sequence[str]) -> list[str]:
    """Earlier answers, normalised, so a follow-up does not repeat their sentences."""
    return [normalise(_CITATION.sub(" ", a)) for a in answers if a.strip()]
