"""The Answer record: everything needed to show, audit and replay one answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, get_args

from pydantic import BaseModel, Field

Mode = Literal["hybrid", "dense", "bm25"]  # how retrieval ranks: dense + BM25 fused, or either alone
MODES: tuple[Mode, ...] = get_args(Mode)


class Turn(BaseModel):
    """One earlier exchange of a conversation, oldest first in a history."""

    question: str
    answer: str


class Source(BaseModel):
    n: int = Field(description="the passage number the answer cites as [n]")
    id: str
    doc_id: str
    path: str
    title: str
    chunk: int = Field(description="chunk index within the document")
    char_start: int = Field(description="chunk span in the cleaned document text")
    char_end: int
    text: str = Field(description="the whole chunk")
    quote: str = Field(description="the sentence of the chunk that supports the answer (exact substring)")
    quote_start: int = Field(description="quote span in the cleaned document text")
    quote_end: int
    score: float = Field(description="the score retrieval ranked by (fused for hybrid)")
    dense: float | None = None
    bm25: float | None = None
    rerank: float | None = None
    cited: bool = False
    page: int | None = Field(
        None, description="first page of the chunk (1-based); None for documents without pages"
    )
    page_end: int | None = Field(None, description="last page of the chunk")
    page_label: str = Field("", description='the PDF\'s own label of `page` ("iv"), when it has labels')
    page_end_label: str = ""
    quote_page: int | None = Field(None, description="the page the quote starts on")
    quote_page_label: str = ""
    pages: str = Field(
        "", description='the chunk\'s pages as a citation shows them: "p. 4", "pp. 4–5"; "" without pages'
    )
    section: str = Field("", description='heading path where the quote sits: "3 Method › 3.2 Masking"')

    def locator(self) -> str:
        """Where the passage sits, as a citation shows it: "pp. 4–5 · 3 Method › 3.2 Masking"."""
        return " · ".join(part for part in (self.pages, self.section) if part)


class SentenceSupport(BaseModel):
    text: str
    citations: list[int] = Field(default_factory=list, description="passage numbers, after checking")
    support: float = Field(description="best support score over the passages, 0..1")
    supported: bool


class Answerability(BaseModel):
    """Whether the passages answer the question, decided before any model runs."""

    answerable: bool
    probability: float = Field(description="P(the passages answer the question), from the fitted model")
    threshold: float = Field(description="refuse below this probability (RAG_ANSWERABILITY_THRESHOLD)")
    reason: str = Field(description="what weighed most against answering, or that it passed")
    features: dict[str, float] = Field(default_factory=dict, description="the model's inputs")


class Pick(BaseModel):
    n: int = Field(description="the passage it was taken from, as cited [n]")
    text: str = Field(description="the sentence (or clause), an exact substring of that passage")
    start: int = Field(description="its offset in the passage text")
    relevance: float


class Composition(BaseModel):
    """How an extractive answer was shaped: what it considered and what it picked."""

    question_kind: str = Field(description="factoid, explain or summary")
    expects: str | None = Field(None, description="the kind of answer a factoid asks for: number, date, name")
    candidates: int = Field(description="sentences considered")
    fragments: int = Field(0, description="sentences dropped as headings, lists, junk or too short")
    repeats: int = Field(0, description="sentences dropped as copies of one already considered")
    said_before: int = Field(0, description="sentences dropped because an earlier answer gave them")
    picks: list[Pick] = Field(default_factory=list)


class Answer(BaseModel):
    question: str
    condensed_query: str
    answer: str
    refused: bool
    refusal_reason: str | None = None
    sources: list[Source] = Field(default_factory=list)
    sentences: list[SentenceSupport] = Field(default_factory=list)
    answerability: Answerability | None = Field(None, description="None when refused before retrieval")
    composition: Composition | None = Field(None, description="extractive answers: how it was shaped")
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    backend: str
    model: str
    settings: dict = Field(default_factory=dict)
    index_version: str = ""
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
