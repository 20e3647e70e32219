"""Native answers: POST /v1/ask, /v1/ask/stream and /v1/retrieve."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated dependencies.
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from api import schemas
from api.auth import Caller
from api.context import ApiContext
from api.errors import ERRORS, GENERATION_ERRORS, GENERATION_FAILED
from api.sse import sse_event, sse_response
from rag.records import Answer


def answers_router(ctx: ApiContext) -> APIRouter:
    AnyKey = Annotated[Caller, Depends(ctx.auth.caller)]
    router = APIRouter(prefix="/v1")

    @router.post("/ask", tags=["answers"], response_model=Answer, responses=GENERATION_ERRORS,
                 summary="Answer a question, with sources and exact quotes")  # fmt: skip
    def ask(body: schemas.AskRequest, who: AnyKey) -> Answer:
        workspace, history, keep = ctx.asking(who, body)
        ctx.question_ok(body.question, "question")
        answer = ctx.generate(who, workspace, body.question, history, body.mode, body.top_k, body.filters)
        keep(answer)
        return answer

    @router.post("/ask/stream", tags=["answers"], response_class=StreamingResponse,
                 responses=GENERATION_ERRORS | {200: {"content": {"text/event-stream": {}}, "description":
                     "`event: token` (data {text}) as the answer is generated, then `event: answer` (the "
                     "Answer record); `event: error` if generation fails midway"}},
                 summary="Answer a question as server-sent events")  # fmt: skip
    def ask_stream(body: schemas.AskRequest, who: AnyKey) -> StreamingResponse:
        workspace, history, keep = ctx.asking(who, body)
        ctx.question_ok(body.question, "question")
        permit = ctx.gate.acquire()

        def events() -> Iterator[str]:
            try:
                for event in ctx.streamed(
                    who, workspace, body.question, history, body.mode, body.top_k, permit, body.filters
                ):
                    if isinstance(event, str):
                        yield sse_event("token", {"text": event})
                    else:
                        keep(event)
                        yield sse_event("answer", event.model_dump(mode="json"))
            except Exception:
                yield sse_event("error", {"error": {"message": GENERATION_FAILED, "type": "server_error"}})

        return sse_response(events(), permit)

    @router.post("/retrieve", tags=["retrieval"], response_model=schemas.RetrieveResponse, responses=ERRORS,
                 summary="The chunks retrieval finds for a query, with scores")  # fmt: skip
    def retrieve(body: schemas.RetrieveRequest, who: AnyKey) -> schemas.RetrieveResponse:
        workspace = ctx.workspace(who, body.collection)
        ctx.question_ok(body.query, "query")
        mode = body.mode or ctx.settings.retrieval_mode
        top_k = body.top_k or ctx.settings.top_k
        hits, timings = workspace.retriever.retrieve(body.query, mode, top_k, body.filters)
        chunks = [
            schemas.Chunk(
                id=h.chunk.id, doc_id=h.chunk.doc_id, path=h.chunk.path, title=h.chunk.title,
                chunk=h.chunk.chunk_index, n_chunks=h.chunk.n_chunks, char_start=h.chunk.char_start,
                char_end=h.chunk.char_end, text=h.chunk.text, score=h.score, dense=h.dense, bm25=h.bm25,
                **h.chunk.citation(),
            )
            for h in hits
        ]  # fmt: skip
        return schemas.RetrieveResponse(
            query=body.query, mode=mode, filters=body.filters, chunks=chunks, timings=timings
        )

    return router
