"""From a question to a checked, cited Answer: the one line every front end calls.

condense follow-up -> retrieve -> refuse early if nothing is relevant -> pack passages into a
token budget -> prompt -> LLM (streamed) -> check every sentence against the passages -> Answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prompts import render
from rag.llm import LLM, Message, says_it_does_not_know
from rag.retrieval import Hit, Mode, Retriever
from rag.settings import Settings
from rag.support import Support, SupportChecker
from rag.tokens import get_encoding
from rag.types import Answer, SentenceSupport, Source

# Settings recorded with every Answer, so it can be replayed.
_RECORDED = (
    "retrieval_mode", "fusion", "top_k", "rerank_model", "refusal_threshold", "support_threshold",
    "context_tokens", "llm", "llm_model", "llm_temperature", "llm_repeat_penalty", "llm_max_tokens",
    "llm_seed", "chunk_size", "chunk_overlap", "collection", "embedder", "embed_model", "embed_backend",
)  # fmt: skip


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str


class Answerer:
    def __init__(self, retriever: Retriever, llm: LLM, checker: SupportChecker, settings: Settings) -> None:
        self.retriever = retriever
        self.llm = llm
        self.checker = checker
        self.settings = settings
        self._encoding = get_encoding()
        self.refusal = render("refusal")

    def ask(self, question: str, history: Sequence[Turn] = (), mode: Mode | None = None,
            top_k: int | None = None) -> Answer:  # fmt: skip
        answer = None
        for event in self.stream(question, history, mode, top_k):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None  # stream always ends with the Answer
        return answer

    def stream(self, question: str, history: Sequence[Turn] = (), mode: Mode | None = None,
               top_k: int | None = None) -> Iterator[str | Answer]:  # fmt: skip
        """Yield answer text as it is generated, then the final Answer."""
        question = question.strip()
        if not question:
            raise ValueError("question is empty")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        query = self._condense(question, history)
        timings["condense"] = time.perf_counter() - started

        hits, retrieval_timings = self.retriever.retrieve(
            query, mode or self.settings.retrieval_mode, top_k or self.settings.top_k
        )
        timings.update(retrieval_timings)
        timings["retrieve"] = sum(retrieval_timings.values())
        base = {
            "question": question,
            "condensed_query": query,
            "backend": self.llm.backend,
            "model": self.llm.model,
            "settings": self._recorded(mode, top_k),
            "index_version": self.retriever.version,
        }
        best_dense = max((h.dense for h in hits if h.dense is not None), default=None)
        if not hits or best_dense is None or best_dense < self.settings.refusal_threshold:
            yield self.refusal
            why = (
                "nothing in the documents"
                if not hits
                else f"best match {best_dense or 0:.2f} below threshold"
            )
            yield self._refused(base, hits, why, timings, started)
            return

        passages = self._pack(hits)
        messages = [
            Message("system", render("system")),
            Message("user", render("answer", passages=self._numbered(passages), question=query,
                                   refusal=self.refusal)),
        ]  # fmt: skip
        started_generation = time.perf_counter()
        parts: list[str] = []
        for piece in self.llm.stream(messages, query, [h.chunk.text for h in passages]):
            if not parts:
                timings["first_token"] = time.perf_counter() - started_generation
            parts.append(piece)
            yield piece
        text = "".join(parts).strip()
        timings["generate"] = time.perf_counter() - started_generation

        started_check = time.perf_counter()
        checks = self.checker.check(text, [h.chunk.text for h in passages])
        timings["check"] = time.perf_counter() - started_check
        if not text or says_it_does_not_know(text):
            yield self._refused(base, passages, "the model found no answer", timings, started, checks)
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

    # -- steps ---------------------------------------------------------------------------

    def _condense(self, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question
        if self.llm.generative:
            transcript = "\n".join(f"User: {t.question}\nAssistant: {t.answer}" for t in history[-3:])
            prompt = render("condense", history=transcript, question=question)
            condensed = "".join(self.llm.stream([Message("user", prompt)], question, [])).strip()
            return condensed.splitlines()[0].strip() if condensed else question
        # Without a model: carry the last question's words, so "and in China?" finds the topic.
        return f"{history[-1].question} {question}"

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
        return Source(
            n=n, id=c.id, doc_id=c.doc_id, path=c.path, title=c.title, chunk=c.chunk_index,
            char_start=c.char_start, char_end=c.char_end, text=c.text, quote=text,
            quote_start=c.char_start + offset, quote_end=c.char_start + offset + len(text),
            score=hit.score, dense=hit.dense, bm25=hit.bm25, rerank=hit.rerank, cited=cited,
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
        recorded["retrieval_mode"] = mode or self.settings.retrieval_mode
        recorded["top_k"] = top_k or self.settings.top_k
        return {k: (str(v) if v is not None and not isinstance(v, int | float | str | bool) else v)
                for k, v in recorded.items()}  # fmt: skip
