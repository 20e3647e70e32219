"""From a question to a checked, cited Answer: the one line every front end calls.

condense a follow-up (only when it leans on the conversation) -> retrieve -> decide
answerability (a fitted model, before any LLM runs) -> pack passages into a token budget ->
compose (extractive) or prompt + LLM (streamed) -> check every sentence against the passages
-> Answer.

`retrieve` and `assess` are public steps, so evaluation and fitting call the very same code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from prompts import render
from rag.answerability import AnswerabilityModel, Evidence, TermWeights, features, missing_words
from rag.extractive import answer_text, normalise, said
from rag.llm import LLM, Message, says_it_does_not_know
from rag.question import Question, analyse, stems
from rag.records import Answer, Answerability, Composition, Filters, Mode, SentenceSupport, Source, Turn
from rag.retrieval import Hit, Retriever
from rag.settings import Settings
from rag.support import Quote, Support, SupportChecker
from rag.tokens import get_encoding

# Settings recorded with every Answer, so it can be replayed.
_RECORDED = (
    "retrieval_mode", "fusion", "top_k", "rerank_model", "answerability_threshold", "answerability_model",
    "support_threshold", "context_tokens", "llm", "llm_model", "llm_temperature", "llm_repeat_penalty",
    "llm_max_tokens", "llm_seed", "chunk_size", "chunk_overlap", "collection", "embedder", "embed_model",
    "embed_backend",
)  # fmt: skip
CONTEXT_TURNS = 3  # a follow-up may lean on this many earlier turns
NO_SENTENCE = "no sentence of the passages answers it"  # the extractive composer picked nothing


def carry_topic(question: str, earlier: Sequence[str]) -> str:
    """A follow-up without a model to condense it: the earlier questions back to the last one
    that stood on its own, then the follow-up; a question that stands on its own is kept as is."""
    if not earlier or not analyse(question).leans_on_context:
        return question
    carried: list[str] = []
    for asked in reversed(earlier[-CONTEXT_TURNS:]):
        carried.insert(0, asked)
        if not analyse(asked).leans_on_context:
            break
    return " ".join([*carried, question])


@dataclass(frozen=True)
class Retrieval:
    question: Question  # what the user asked, read on its own
    query: str  # what was retrieved with: the question, or it with the earlier topic carried in
    hits: list[Hit]
    timings: dict[str, float]


class Answerer:
    def __init__(self, retriever: Retriever, llm: LLM, checker: SupportChecker, settings: Settings,
                 answerability: AnswerabilityModel | None = None) -> None:  # fmt: skip
        self.retriever = retriever
        self.llm = llm
        self.checker = checker
        self.settings = settings
        self.answerability = answerability or AnswerabilityModel.load(settings.answerability_model)
        self._encoding = get_encoding()
        self.refusal = render("refusal")

    def sibling(self, retriever: Retriever, settings: Settings) -> Answerer:
        """An answerer like this one (same model, checker and answerability) over another retriever."""
        return Answerer(retriever, self.llm, self.checker, settings, self.answerability)

    def ask(self, question: str, history: Sequence[Turn] = (), mode: Mode | None = None,
            top_k: int | None = None, filters: Filters | None = None) -> Answer:  # fmt: skip
        answer = None
        for event in self.stream(question, history, mode, top_k, filters):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None  # stream always ends with the Answer
        return answer

    def stream(self, question: str, history: Sequence[Turn] = (), mode: Mode | None = None,
               top_k: int | None = None, filters: Filters | None = None,
               ) -> Iterator[str | Answer]:  # fmt: skip
        """Yield answer text as it is generated, then the final Answer. With `filters`, only chunks
        that pass them are retrieved (and the Answer records them)."""
        question = question.strip()
        if not question:
            raise ValueError("question is empty")
        started = time.perf_counter()
        found = self.retrieve(question, history, mode, top_k, filters)
        timings = dict(found.timings)
        base = {
            "question": question,
            "condensed_query": found.query,
            "backend": self.llm.backend,
            "model": self.llm.model,
            "settings": self._recorded(mode, top_k),
            "index_version": self.retriever.version,
            "filters": filters,
        }
        if not found.hits and not stems(found.query):
            yield self.refusal
            why = "the question has no content words to look up"
            yield self._refused(base, found.hits, why, timings, started)
            return
        if not found.hits:
            yield self.refusal
            yield self._refused(base, [], "nothing in the documents", timings, started)
            return
        started_assess = time.perf_counter()
        decision = self.assess(found)
        timings["assess"] = time.perf_counter() - started_assess
        base["answerability"] = decision
        if not decision.answerable:
            yield self.refusal
            yield self._refused(base, found.hits, decision.reason, timings, started)
            return

        passages = self._pack(found.hits)
        texts = [h.chunk.text for h in passages]
        started_generation = time.perf_counter()
        if self.llm.generative:
            parts: list[str] = []
            for piece in self.llm.stream(self._prompt(found.query, passages), found.query, texts):
                if not parts:
                    timings["first_token"] = time.perf_counter() - started_generation
                parts.append(piece)
                yield piece
            text = "".join(parts).strip()
            timings["generate"] = time.perf_counter() - started_generation
            started_check = time.perf_counter()
            checks = self.checker.check(text, texts)
        else:
            located = [(h.chunk.text, h.chunk.doc_id, h.chunk.char_start) for h in passages]
            composition = self.llm.compose(
                found.question, found.query, located, avoid=self._said_before(question, history)
            )
            base["composition"] = composition
            text = answer_text(composition)
            timings["compose"] = time.perf_counter() - started_generation
            if text:
                yield text
            started_check = time.perf_counter()
            checks = self._check_picks(composition, texts)
        timings["check"] = time.perf_counter() - started_check
        if not text or says_it_does_not_know(text):
            why = "the model found no answer" if self.llm.generative else NO_SENTENCE
            yield self._refused(base, passages, why, timings, started, checks)
            return
        if not any(c.passage is not None for c in checks):
            why = "no sentence is supported by the passages"
            yield self._refused(base, passages, why, timings, started, checks)
            return
        sentences = [self._sentence(c, len(passages)) for c in checks]
        cited = {n for s in sentences for n in s.citations}
        sources = [self._source(n, hit, checks, n in cited) for n, hit in enumerate(passages, 1)]
        timings["total"] = time.perf_counter() - started
        yield Answer(
            **base, answer=text, refused=False, sources=sources, sentences=sentences, timings=timings
        )

    def retrieve(self, question: str, history: Sequence[Turn] = (), mode: Mode | None = None,
                 top_k: int | None = None, filters: Filters | None = None) -> Retrieval:  # fmt: skip
        """The question read, condensed when it leans on the conversation, and retrieved."""
        asked = analyse(question)
        started = time.perf_counter()
        query = self.condense(question, asked, history)
        timings = {"condense": time.perf_counter() - started}
        if not stems(query):
            return Retrieval(asked, query, [], timings)  # only stopwords or punctuation: nothing to look up
        hits, retrieval_timings = self.retriever.retrieve(
            query, mode or self.settings.retrieval_mode, top_k or self.settings.top_k, filters
        )
        timings |= retrieval_timings
        timings["retrieve"] = sum(retrieval_timings.values())
        return Retrieval(asked, query, hits, timings)

    def assess(self, found: Retrieval) -> Answerability:
        """Answerability of what was retrieved, from the fitted model (see rag.answerability)."""
        question, evidence, weights = self._evidence(found)
        values = features(question, evidence, weights, stems, self.checker.embed)
        missing = missing_words(question, evidence, weights, stems)
        return self.answerability.decide(values, self.settings.answerability_threshold, missing)

    def features(self, found: Retrieval) -> dict[str, float]:
        """What answerability is decided on (and fitted from)."""
        question, evidence, weights = self._evidence(found)
        return features(question, evidence, weights, stems, self.checker.embed)

    def _evidence(self, found: Retrieval) -> tuple[Question, list[Evidence], TermWeights]:
        """What answerability reads: the question retrieved with, its passages, the word weights."""
        question = analyse(found.query) if found.query != found.question.text else found.question
        evidence = [
            Evidence(h.chunk.text, h.chunk.title, [q.text for q in self.checker.locate(h.chunk.text)],
                     h.dense, h.bm25, h.score)
            for h in found.hits
        ]  # fmt: skip
        return question, evidence, self.retriever.term_weights()

    def condense(self, question: str, asked: Question, history: Sequence[Turn]) -> str:
        """The question to retrieve with. A follow-up that leans on the conversation (pronouns,
        "and what about ...", no topic of its own) carries the earlier topic in; one that stands
        on its own is retrieved as it is."""
        if not history or not asked.leans_on_context:
            return question
        turns = history[-CONTEXT_TURNS:]
        if self.llm.generative:
            transcript = "\n".join(f"User: {t.question}\nAssistant: {t.answer}" for t in turns)
            prompt = render("condense", history=transcript, question=question)
            condensed = "".join(self.llm.stream([Message("user", prompt)], question, [])).strip()
            return condensed.splitlines()[0].strip() if condensed else question
        return carry_topic(question, [t.question for t in turns])

    @staticmethod
    def _said_before(question: str, history: Sequence[Turn]) -> list[str]:
        """What earlier answers said, unless the same question is asked again."""
        if any(normalise(t.question) == normalise(question) for t in history):
            return []
        return said([t.answer for t in history])

    def _prompt(self, query: str, passages: list[Hit]) -> list[Message]:
        return [
            Message("system", render("system")),
            Message("user", render("answer", passages=self._numbered(passages), question=query,
                                   refusal=self.refusal)),
        ]  # fmt: skip

    def _check_picks(self, composition: Composition, texts: list[str]) -> list[Support]:
        """Support of the picked sentences; each quotes exactly the span it was taken from."""
        checks = self.checker.check_sentences(
            [p.text for p in composition.picks], [[p.n] for p in composition.picks], texts
        )
        return [
            replace(c, passage=p.n - 1, quotes={**c.quotes, p.n - 1: Quote(p.text, p.start)})
            if c.passage is not None else c
            for c, p in zip(checks, composition.picks, strict=True)
        ]  # fmt: skip

    def _pack(self, hits: list[Hit]) -> list[Hit]:
        """Best hits first, no chunk twice, within the token budget (the first always fits)."""
        packed, seen, used = [], set(), 0
        for hit in hits:
            if hit.chunk.id in seen:
                continue
            tokens = len(self._encoding.encode(hit.chunk.text))
            if packed and used + tokens > self.settings.context_tokens:
                break
            packed.append(hit)
            seen.add(hit.chunk.id)
            used += tokens
        return packed

    @staticmethod
    def _numbered(passages: list[Hit]) -> str:
        return "\n\n".join(f"[{n}] {hit.chunk.text}" for n, hit in enumerate(passages, 1))

    def _sentence(self, check: Support, n_passages: int) -> SentenceSupport:
        # Keep the model's citations that exist and support the sentence; otherwise cite the
        # passage the checker found (none when nothing supports it).
        citations = [n for n in check.cited if 1 <= n <= n_passages and n - 1 in check.quotes]
        if check.passage is not None and not citations:
            citations = [check.passage + 1]
        return SentenceSupport(
            text=check.sentence, citations=citations, support=check.score, supported=check.passage is not None
        )

    @staticmethod
    def _source(n: int, hit: Hit, checks: list[Support], cited: bool) -> Source:
        c = hit.chunk
        quote = next((s.quotes[n - 1] for s in checks if n - 1 in s.quotes), None)
        text, offset = (quote.text, quote.start) if quote else (c.text.split("\n")[0], 0)
        quoted = c.page_at(c.char_start + offset)
        return Source(
            n=n, id=c.id, doc_id=c.doc_id, path=c.path, title=c.title, chunk=c.chunk_index,
            char_start=c.char_start, char_end=c.char_end, text=c.text, quote=text,
            quote_start=c.char_start + offset, quote_end=c.char_start + offset + len(text),
            score=hit.score, dense=hit.dense, bm25=hit.bm25, rerank=hit.rerank, cited=cited,
            quote_page=quoted.number if quoted else None, quote_page_label=quoted.label if quoted else "",
            **c.citation() | {"section": c.section_at(c.char_start + offset)},
        )  # fmt: skip

    def _refused(self, base: dict, hits: list[Hit], why: str, timings: dict, started: float,
                 checks: Sequence[Support] = ()) -> Answer:  # fmt: skip
        timings["total"] = time.perf_counter() - started
        sentences = [self._sentence(c, len(hits)) for c in checks]
        sources = [self._source(n, hit, [], False) for n, hit in enumerate(hits[:3], 1)]
        # What the model said, if anything, stays in `sentences` with its support flags.
        return Answer(
            **base, answer=self.refusal, refused=True, refusal_reason=why, sources=sources,
            sentences=sentences, timings=timings,
        )  # fmt: skip

    def _recorded(self, mode: Mode | None, top_k: int | None) -> dict:
        recorded = {name: getattr(self.settings, name) for name in _RECORDED}
        recorded["answerability_threshold"] = (
            self.settings.answerability_threshold
            if self.settings.answerability_threshold is not None
            else self.answerability.threshold
        )
        recorded["retrieval_mode"] = mode or self.settings.retrieval_mode
        recorded["top_k"] = top_k or self.settings.top_k
        return {k: (str(v) if v is not None and not isinstance(v, int | float | str | bool) else v)
                for k, v in recorded.items()}  # fmt: skip
