"""Request and response bodies of the HTTP API, with the examples the OpenAPI spec shows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from index.library import DocumentInfo
from index.workspaces import CollectionInfo
from rag.conversations import Conversation
from rag.records import Answer, Filters, Mode, Turn

QUESTION = "What does the author say about refining capacity?"
# Every request that names a collection says so in these words: a body field, a form field, a query.
COLLECTION_HELP = (
    "the collection to use (default: the server's `RAG_COLLECTION`); one the key may not read "
    "answers 404, as one that does not exist"
)
COLLECTION = Field(None, description=COLLECTION_HELP)


class AskRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": QUESTION}, {
            "question": "And what about recycling?",
            "history": [{"question": QUESTION, "answer": "The author asks whether India is thinking of "
                         "adding refining capacity [1]."}],
            "mode": "hybrid", "top_k": 5,
        }, {"question": QUESTION, "collection": "documents",
            "filters": {"path_prefix": "corpus/", "ingested_after": "2026-01-01T00:00:00Z"}}]},
    )  # fmt: skip

    question: str = Field(
        min_length=1, pattern=r"\S", description="the question; follow-ups are read with `history`"
    )
    history: list[Turn] = Field(default_factory=list, description="earlier turns, oldest first")
    mode: Mode | None = Field(None, description="retrieval mode (default: the server's)")
    top_k: int | None = Field(None, ge=1, le=100, description="passages to retrieve (default: the server's)")
    collection: str | None = COLLECTION
    filters: Filters | None = Field(None, description="answer only from documents (and pages) that match")
    conversation_id: str | None = Field(
        None, description="a kept conversation (`POST /v1/conversations`): its turns are the history, and "
        "this answer is added to it"
    )  # fmt: skip


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"query": "refining capacity", "top_k": 3}]}
    )

    query: str = Field(min_length=1, pattern=r"\S")
    top_k: int | None = Field(None, ge=1, le=100)
    mode: Mode | None = None
    collection: str | None = COLLECTION
    filters: Filters | None = None


class Chunk(BaseModel):
    id: str
    doc_id: str
    path: str
    title: str
    chunk: int = Field(description="chunk index within the document")
    n_chunks: int
    char_start: int = Field(description="span of `text` in the cleaned document text")
    char_end: int
    text: str
    score: float = Field(description="the score the mode ranks by (fused for hybrid)")
    dense: float | None = Field(None, description="cosine similarity, when dense retrieval scored it")
    bm25: float | None = None
    page: int | None = Field(None, description="first page (1-based) of a paged document (PDF); else None")
    page_end: int | None = None
    page_label: str = Field("", description="the PDF's own label of `page`, when it has labels")
    page_end_label: str = ""
    pages: str = Field("", description='as a citation shows them: "p. 4", "pp. 4–5"; "" without pages')
    section: str = Field("", description="heading path at the chunk's start")


class RetrieveResponse(BaseModel):
    query: str
    mode: Mode
    filters: Filters | None = None
    chunks: list[Chunk]
    timings: dict[str, float] = Field(description="seconds per stage")


class DocumentList(BaseModel):
    collection: str
    documents: list[DocumentInfo]


class CollectionList(BaseModel):
    collections: list[CollectionInfo] = Field(description="the collections this key may read")


class NewCollection(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "team-research"}]})

    name: str = Field(description="3-63 lower-case letters, digits, - or _")


class CollectionDeleted(BaseModel):
    name: str


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str | None = COLLECTION
    title: str = Field("", max_length=200, description="default: the start of its first question")


class RenameConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)


class ConversationList(BaseModel):
    conversations: list[Conversation]


class ConversationDeleted(BaseModel):
    id: str


class FileResult(BaseModel):
    path: str = Field(description="the file name as uploaded")
    status: Literal["added", "updated", "unchanged", "failed"]
    doc_id: str | None = None
    chunks: int = 0
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)


class UploadResponse(BaseModel):
    collection: str
    results: list[FileResult]
    failed: int


class Deleted(BaseModel):
    collection: str
    doc_id: str
    chunks_removed: int


class Error(BaseModel):
    """Every error has this shape (OpenAI's), so the `openai` client reads it too."""

    class Body(BaseModel):
        message: str
        type: str
        param: str | None = Field(None, description="the request field at fault, if one is")
        code: str | None = None

    error: Body


# -- OpenAI-compatible ------------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text parts carry a question
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    # Clients send many sampling options; they are accepted and ignored (answers are grounded).
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"model": "documents", "messages": [{"role": "user", "content": QUESTION}]}]
        },
    )

    model: str = Field(
        description="the collection to answer from (`GET /v1/models` lists the key's); the server's "
        "model id answers from the default collection"
    )
    filters: Filters | None = Field(None, description="as in `POST /v1/ask` (an extension of OpenAI's API)")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatChoiceMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    rag: Answer = Field(description="sources, quotes and support flags (standard clients ignore it)")


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
