"""The Answer record: everything needed to show, audit and replay one answer."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field


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


class SentenceSupport(BaseModel):
    text: str
    citations: list[int] = Field(default_factory=list, description="passage numbers, after checking")
    support: float = Field(description="best support score over the passages, 0..1")
    supported: bool


class Answer(BaseModel):
    question: str
    condensed_query: str
    answer: str
    refused: bool
    refusal_reason: str | None = None
    sources: list[Source] = Field(default_factory=list)
    sentences: list[SentenceSupport] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    backend: str
    model: str
    settings: dict = Field(default_factory=dict)
    index_version: str = ""
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
