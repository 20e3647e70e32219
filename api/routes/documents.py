"""A collection's documents: GET and POST /v1/documents, DELETE /v1/documents/{doc_id}."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated dependencies.
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from api import schemas
from api.auth import Caller
from api.context import ApiContext
from api.errors import ERRORS, ApiError
from index.library import UploadRejected
from index.report import IngestLocked

UPLOAD_ERRORS = ERRORS | {
    403: {"model": schemas.Error, "description": "this key may not change documents in the collection"},
    409: {"model": schemas.Error, "description": "another ingest is running; see Retry-After"},
    413: {"model": schemas.Error, "description": "a file is over RAG_MAX_FILE_MB"},
    415: {"model": schemas.Error, "description": "unsupported file type"},
}


InQuery = Annotated[str | None, Query(description=schemas.COLLECTION_HELP)]
InForm = Annotated[str | None, Form(description=schemas.COLLECTION_HELP)]


def ingest_running() -> ApiError:
    return ApiError(409, "another ingest is running; try again shortly", "conflict_error",
                    headers={"Retry-After": "5"})  # fmt: skip


def documents_router(ctx: ApiContext) -> APIRouter:
    AnyKey = Annotated[Caller, Depends(ctx.auth.caller)]
    router = APIRouter(prefix="/v1")

    @router.get("/documents", tags=["documents"], response_model=schemas.DocumentList, responses=ERRORS,
                summary="A collection's documents")  # fmt: skip
    def documents(who: AnyKey, collection: InQuery = None) -> schemas.DocumentList:
        workspace = ctx.workspace(who, collection)
        return schemas.DocumentList(collection=workspace.name, documents=workspace.library.documents())

    @router.post("/documents", tags=["documents"], response_model=schemas.UploadResponse,
                 responses=UPLOAD_ERRORS, summary="Upload files (multipart `files`): stored under the "
                 "data dir and ingested")  # fmt: skip
    def upload(files: Annotated[list[UploadFile], File(description=".txt .md .html .htm .pdf .docx")],
               who: AnyKey, collection: InForm = None) -> schemas.UploadResponse:  # fmt: skip
        workspace = ctx.workspace(who, collection, write=True)
        received = [(f.filename or "", f.file.read()) for f in files]
        for name, data in received:  # refuse the whole request before ingesting any of it
            try:
                workspace.library.check(name, len(data))
            except UploadRejected as exc:
                status = {"type": 415, "size": 413}.get(exc.kind, 422)
                raise ApiError(status, str(exc), param="files") from exc
        try:
            results = workspace.library.upload(received)
        except IngestLocked as exc:
            raise ingest_running() from exc
        out = [
            schemas.FileResult(**{**vars(r), "path": name})
            for r, (name, _) in zip(results, received, strict=True)
        ]
        ctx.count(who, workspace.name, "documents", sum(r.changed for r in results))
        failed = sum(r.status == "failed" for r in out)
        return schemas.UploadResponse(collection=workspace.name, results=out, failed=failed)

    @router.delete("/documents/{doc_id:path}", tags=["documents"], response_model=schemas.Deleted,
                   responses=UPLOAD_ERRORS | {404: {"model": schemas.Error}},
                   summary="Delete a document's chunks (and its file, if it was uploaded)")  # fmt: skip
    def delete(
        doc_id: str,
        who: AnyKey,
        collection: InQuery = None,
    ) -> schemas.Deleted:
        workspace = ctx.workspace(who, collection, write=True)
        try:
            removed = workspace.library.delete(doc_id)
        except IngestLocked as exc:
            raise ingest_running() from exc
        if not removed:
            raise ApiError(404, f"no document {doc_id!r}", param="doc_id")
        ctx.count(who, workspace.name, "documents")
        return schemas.Deleted(collection=workspace.name, doc_id=doc_id, chunks_removed=removed)

    return router
