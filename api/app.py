"""The HTTP API for other teams, native and OpenAI-compatible: `create_app(settings, components)`.

`rag serve` mounts the staff UI at `/` beside it. Every error is JSON in OpenAI's shape
(`{"error": {"message", "type", "param", "code"}}`), so the `openai` client reads ours too; no
stack trace ever reaches a client (the server log has it).
"""

# No `from __future__ import annotations`: FastAPI must see the local Annotated dependencies.
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from api import schemas
from api.limits import GenerationGate, Limited, Permit, RateLimiter
from api.metrics import Metrics
from api.security import load_keys
from index.components import Components
from index.library import UploadRejected
from index.sync import IngestLocked
from rag.question import question_problem
from rag.settings import Settings
from rag.tokens import get_encoding
from rag.records import Answer, Turn

log = logging.getLogger("rag.api")

ERRORS = {
    401: {"model": schemas.Error, "description": "missing or wrong API key"},
    422: {"model": schemas.Error, "description": "a field is missing or invalid (`param` names it)"},
    429: {"model": schemas.Error, "description": "rate limit or queue full; see Retry-After"},
}
GENERATION_ERRORS = ERRORS | {503: {"model": schemas.Error, "description": "model busy; see Retry-After"}}
UPLOAD_SLACK = 64 * 1024  # multipart framing around a file


class ApiError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.headers = status, message, type, param, headers


def _error(status: int, message: str, type: str, param: str | None = None, headers=None) -> JSONResponse:
    body = schemas.Error(error=schemas.Error.Body(message=message, type=type, param=param, code=str(status)))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


@dataclass(frozen=True)
class Caller:
    identity: str  # what the rate limit counts by: a key's hash, or the client address
    admin: bool


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(settings: Settings, components: Components, with_ui: bool = False) -> FastAPI:
    keys = load_keys(settings)
    admin_keys_exist = any(keys.values())
    limiter = RateLimiter(settings.rate_limit_per_minute)
    gate = GenerationGate(settings.max_generations, settings.max_queue, settings.queue_timeout)
    metrics = Metrics()
    metrics.generating.set_function(lambda: gate.active)
    metrics.waiting.set_function(lambda: gate.waiting)
    answerer, library, retriever = components.answerer, components.library, components.retriever
    encoding = get_encoding()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Other processes (`rag ingest`, other workers) change the store: poll for their changes.
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(settings.index_poll_seconds):
                try:
                    retriever.warm_up()
                except Exception:  # a store hiccup must not end the poller
                    log.exception("could not refresh the index")

        threading.Thread(target=poll, name="index-poll", daemon=True).start()
        yield
        stop.set()

    app = FastAPI(
        title="Grounded Q&A API",
        version="1.0",
        description="Answers grounded in the ingested documents, each citing the chunks it used "
        "with exact quotes, or a plain refusal when the documents don't hold the answer. "
        "Authenticate with `Authorization: Bearer KEY` when the server has API keys.",
        lifespan=lifespan,
    )

    # -- errors: one JSON shape ------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.type, exc.param, exc.headers)

    @app.exception_handler(Limited)
    async def limited(request: Request, exc: Limited) -> JSONResponse:
        kind = "rate_limit_error" if exc.status == 429 else "overloaded_error"
        return _error(exc.status, str(exc), kind, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = {404: "no such endpoint", 405: "method not allowed", 413: "request body too large"}
        return _error(exc.status_code, message.get(exc.status_code, str(exc.detail)), "invalid_request_error")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first["loc"] if p != "body") or None
        return _error(422, f"{param or 'body'}: {first['msg']}", "invalid_request_error", param)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        metrics.errors.labels("internal").inc()
        return _error(500, "internal error (details are in the server log)", "server_error")

    upload_limit = int(settings.max_file_mb * 1e6) + UPLOAD_SLACK

    def body_limit(method: str, path: str) -> int:
        # JSON requests are small; uploads (ours and the UI's) are bounded by RAG_MAX_FILE_MB.
        json_only = path.startswith("/v1/") and not (method == "POST" and path == "/v1/documents")
        return settings.max_request_kb * 1024 if json_only else upload_limit

    app.add_middleware(_BodyLimit, limit_for=body_limit)
    app.add_middleware(_RequestMetrics, metrics=metrics)

    # -- callers -------------------------------------------------------------------------------

    def caller(request: Request) -> Caller:
        if keys:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = given or request.headers.get("x-api-key", "").strip()
            # compare_digest against every key: the time taken says nothing about which matched
            matched = [k for k in keys if hmac.compare_digest(given.encode(), k.encode())]
            if not given or not matched:
                raise ApiError(401, "invalid or missing API key", "authentication_error",
                               headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
            who = Caller("key:" + hashlib.sha256(matched[0].encode()).hexdigest()[:12], keys[matched[0]])
        else:
            who = Caller("addr:" + (request.client.host if request.client else "?"), admin=True)
        limiter.check(who.identity)
        return who

    AnyKey = Annotated[Caller, Depends(caller)]

    def admin(who: AnyKey) -> Caller:
        if admin_keys_exist and not who.admin:
            raise ApiError(403, "this key may not change documents (admin keys only)", "permission_error")
        return who

    AdminKey = Annotated[Caller, Depends(admin)]

    def question_ok(text: str, param: str) -> str:
        if problem := question_problem(text, settings.max_question_chars):
            raise ApiError(422, f"{param}: {problem}", param=param)
        return text

    def generate(question: str, history: list[Turn], mode, top_k) -> Answer:
        permit = gate.acquire()
        try:
            answer = answerer.ask(question, history, mode, top_k)
        except Exception as exc:
            log.exception("answer failed")
            metrics.errors.labels("answer").inc()
            raise ApiError(500, "the answer could not be generated (details are in the server log)",
                           "server_error") from exc  # fmt: skip
        finally:
            permit.release()
        metrics.observe(answer)
        return answer

    def streamed(question: str, history: list[Turn], mode, top_k, permit: Permit) -> Iterator[str | Answer]:
        """The answer's events; a failure mid-stream becomes an error event (headers are sent)."""
        try:
            for event in answerer.stream(question, history, mode, top_k):
                if isinstance(event, Answer):
                    metrics.observe(event)
                yield event
        except Exception:
            log.exception("answer stream failed")
            metrics.errors.labels("answer").inc()
            raise
        finally:
            permit.release()

    def sse_response(events: Iterator[str], permit: Permit) -> StreamingResponse:
        # The background task also frees the slot when a client leaves before the stream starts.
        return StreamingResponse(
            events, media_type="text/event-stream", background=BackgroundTask(permit.release),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    # -- probes ------------------------------------------------------------------------------

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: store reachable and model loaded",
             responses={503: {"model": schemas.Error}})  # fmt: skip
    def readyz():
        try:
            chunks = retriever.store.client.count()
        except Exception:
            log.exception("store not reachable")
            return _error(503, "the document store is not reachable", "overloaded_error")
        return {"status": "ready", "chunks": chunks, "backend": answerer.llm.backend,
                "model": answerer.llm.model, "index_version": retriever.version,
                "pid": os.getpid()}  # with --workers N, which process answered  # fmt: skip

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}})  # fmt: skip
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # -- native API --------------------------------------------------------------------------

    v1 = APIRouter(prefix="/v1")

    @v1.post("/ask", tags=["answers"], response_model=Answer, responses=GENERATION_ERRORS,
             summary="Answer a question, with sources and exact quotes")  # fmt: skip
    def ask(body: schemas.AskRequest, who: AnyKey) -> Answer:
        question_ok(body.question, "question")
        return generate(body.question, body.history, body.mode, body.top_k)

    @v1.post("/ask/stream", tags=["answers"], response_class=StreamingResponse,
             responses=GENERATION_ERRORS | {200: {"content": {"text/event-stream": {}}, "description":
                 "`event: token` (data {text}) as the answer is generated, then `event: answer` (the "
                 "Answer record); `event: error` if generation fails midway"}},
             summary="Answer a question as server-sent events")  # fmt: skip
    def ask_stream(body: schemas.AskRequest, who: AnyKey) -> StreamingResponse:
        question_ok(body.question, "question")
        permit = gate.acquire()

        def events() -> Iterator[str]:
            try:
                for event in streamed(body.question, body.history, body.mode, body.top_k, permit):
                    if isinstance(event, str):
                        yield _sse("token", {"text": event})
                    else:
                        yield _sse("answer", event.model_dump(mode="json"))
            except Exception:
                message = "the answer could not be generated (details are in the server log)"
                yield _sse("error", {"error": {"message": message, "type": "server_error"}})

        return sse_response(events(), permit)

    @v1.post("/retrieve", tags=["retrieval"], response_model=schemas.RetrieveResponse, responses=ERRORS,
             summary="The chunks retrieval finds for a query, with scores")  # fmt: skip
    def retrieve(body: schemas.RetrieveRequest, who: AnyKey) -> schemas.RetrieveResponse:
        question_ok(body.query, "query")
        mode = body.mode or settings.retrieval_mode
        hits, timings = retriever.retrieve(body.query, mode, body.top_k or settings.top_k)
        chunks = [
            schemas.Chunk(
                id=h.chunk.id, doc_id=h.chunk.doc_id, path=h.chunk.path, title=h.chunk.title,
                chunk=h.chunk.chunk_index, n_chunks=h.chunk.n_chunks, char_start=h.chunk.char_start,
                char_end=h.chunk.char_end, text=h.chunk.text, score=h.score, dense=h.dense, bm25=h.bm25,
                **h.chunk.citation(),
            )
            for h in hits
        ]  # fmt: skip
        return schemas.RetrieveResponse(query=body.query, mode=mode, chunks=chunks, timings=timings)

    @v1.get("/documents", tags=["documents"], response_model=schemas.DocumentList, responses=ERRORS,
            summary="Documents in the store")  # fmt: skip
    def documents(who: AnyKey) -> schemas.DocumentList:
        return schemas.DocumentList(documents=library.documents())

    upload_errors = ERRORS | {
        403: {"model": schemas.Error, "description": "not an admin key (when admin keys are set)"},
        409: {"model": schemas.Error, "description": "another ingest is running; see Retry-After"},
        413: {"model": schemas.Error, "description": "a file is over RAG_MAX_FILE_MB"},
        415: {"model": schemas.Error, "description": "unsupported file type"},
    }

    @v1.post("/documents", tags=["documents"], response_model=schemas.UploadResponse,
             responses=upload_errors,
             summary="Upload files (multipart `files`): stored under the data dir and ingested")  # fmt: skip
    def upload(files: Annotated[list[UploadFile], File(description=".txt .md .html .htm .pdf .docx")],
               who: AdminKey) -> schemas.UploadResponse:  # fmt: skip
        received = [(f.filename or "", f.file.read()) for f in files]
        for name, data in received:  # refuse the whole request before ingesting any of it
            try:
                library.check(name, len(data))
            except UploadRejected as exc:
                status = {"type": 415, "size": 413}.get(exc.kind, 422)
                raise ApiError(status, str(exc), param="files") from exc
        try:
            results = library.upload(received)
        except IngestLocked as exc:
            raise ApiError(409, "another ingest is running; try again shortly", "conflict_error",
                           headers={"Retry-After": "5"}) from exc  # fmt: skip
        out = [
            schemas.FileResult(**{**vars(r), "path": name})
            for r, (name, _) in zip(results, received, strict=True)
        ]
        return schemas.UploadResponse(results=out, failed=sum(r.status == "failed" for r in out))

    @v1.delete("/documents/{doc_id:path}", tags=["documents"], response_model=schemas.Deleted,
               responses=upload_errors | {404: {"model": schemas.Error}},
               summary="Delete a document's chunks (and its file, if it was uploaded)")  # fmt: skip
    def delete(doc_id: str, who: AdminKey) -> schemas.Deleted:
        try:
            removed = library.delete(doc_id)
        except IngestLocked as exc:
            raise ApiError(409, "another ingest is running; try again shortly", "conflict_error",
                           headers={"Retry-After": "5"}) from exc  # fmt: skip
        if not removed:
            raise ApiError(404, f"no document {doc_id!r}", param="doc_id")
        return schemas.Deleted(doc_id=doc_id, chunks_removed=removed)

    # -- OpenAI-compatible -------------------------------------------------------------------

    @v1.get("/models", tags=["openai"], response_model=schemas.ModelList, responses=ERRORS,
            summary="The configured model (OpenAI-compatible)")  # fmt: skip
    def models(who: AnyKey) -> schemas.ModelList:
        return schemas.ModelList(data=[schemas.Model(id=answerer.llm.model, owned_by=answerer.llm.backend)])

    @v1.post("/chat/completions", tags=["openai"], response_model=schemas.ChatCompletion,
             responses=GENERATION_ERRORS | {200: {"content": {"text/event-stream": {}}, "description":
                 "with `stream: true`: OpenAI `chat.completion.chunk` events, then `data: [DONE]`; "
                 "the last chunk carries the Answer record in `rag`"}},
             summary="OpenAI-compatible chat: the last user message is the question")  # fmt: skip
    def chat(body: schemas.ChatCompletionRequest, who: AnyKey):
        question, history = _conversation(body.messages)
        question_ok(question, "messages")
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not body.stream:
            answer = generate(question, history, None, None)
            prompt_tokens = len(encoding.encode(question)) + sum(
                len(encoding.encode(t.question + t.answer)) for t in history
            )
            completion_tokens = len(encoding.encode(answer.answer))
            return schemas.ChatCompletion(
                id=completion_id, created=created, model=answer.model,
                choices=[schemas.ChatChoice(message=schemas.ChatChoiceMessage(content=answer.answer))],
                usage=schemas.Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                    total_tokens=prompt_tokens + completion_tokens),
                rag=answer,
            )  # fmt: skip
        permit = gate.acquire()

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            body = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": answerer.llm.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            sent: list[str] = []
            try:
                for event in streamed(question, history, None, None, permit):
                    if isinstance(event, str):
                        sent.append(event)
                        yield chunk({"content": event})
                    else:
                        if event.refused and "".join(sent).strip() != event.answer:
                            # The model's text was not grounded: say so after it (it is already sent).
                            yield chunk({"content": f"\n\n{event.answer}"})
                        yield chunk({}, "stop", rag=event.model_dump(mode="json"))
            except Exception:
                message = "the answer could not be generated (details are in the server log)"
                yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"
            yield "data: [DONE]\n\n"

        return sse_response(events(), permit)

    app.include_router(v1)

    if with_ui:
        import gradio as gr

        from ui.app import build_ui, mount_options

        def login(user: str, password: str) -> bool:
            # Gradio tells the UI only the user name: "admin" is the name admin keys sign in with.
            return password in keys and (user != "admin" or keys[password] or not admin_keys_exist)

        def may_change_documents(user: str | None) -> bool:
            return not admin_keys_exist or user == "admin"

        app = gr.mount_gradio_app(
            app, build_ui(components, may_change_documents), path="/", auth=login if keys else None,
            auth_message="Sign in with an API key as the password; as user `admin` with an admin key "
            "to upload or delete documents.",
            max_file_size=int(settings.max_file_mb * 1e6), footer_links=[], **mount_options(),
        )  # fmt: skip
    return app


class _TooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, "request body too large")


class _BodyLimit:
    """413 for a body over its limit: at once by Content-Length, or as a chunked body arrives."""

    def __init__(self, app, limit_for) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["method"], scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await _error(413, "request body too large", "invalid_request_error")(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge()  # an HTTPException: the app's handler answers 413
            return message

        await self.app(scope, counted, send)


class _RequestMetrics:
    """Counts every request and times it to its last byte (streams included), by route."""

    OURS = ("/v1/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ours = scope["path"].startswith(self.OURS)
            label = (getattr(scope.get("route"), "path", None) or "unmatched") if ours else "ui"
            self.metrics.requests.labels(label, str(status[0])).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)


def _conversation(messages: list[schemas.ChatMessage]) -> tuple[str, list[Turn]]:
    """The last user message is the question; earlier user/assistant pairs are the history.

    System messages are ignored: the grounding prompt is the server's, not the caller's.
    """
    if messages[-1].role != "user":
        raise ApiError(422, "messages: the last message must be the user's question", param="messages")
    history, pending = [], None
    for message in messages[:-1]:
        if message.role == "user":
            pending = message.text
        elif message.role == "assistant" and pending is not None:
            history.append(Turn(question=pending, answer=message.text))
            pending = None
    return messages[-1].text, history
