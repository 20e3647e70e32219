"""The document store: GET and POST /v1/documents, DELETE /v1/documents/{doc_id}."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated dependencies.
from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile

from api import schemas
from api.auth import Caller
from api.context import ApiContext
from api.errors import ERRORS, ApiError
from index.library import UploadRejected
from index.report import IngestLocked

UPLOAD_ERRORS = ERRORS | {
    403: {"model": schemas.Error, "description": "not an admin key (when admin keys are set)"},
    409: {"model": schemas.Error, "description": "another ingest is running; see Retry-After"},
    413: {"model": schemas.Error, "description": "a file is over RAG_MAX_FILE_MB"},
    415: {"model": schemas.Error, "description": "unsupported file type"},
}


def _ingest_running() -> ApiError:
    return ApiError(409, "another ingest is running; try again shortly", "conflict_error",
                    headers={"Retry-After": "5"})  # fmt: skip


def documents_router(ctx: ApiContext) -> APIRouter:
    AnyKey = Annotated[Caller, Depends(ctx.auth.caller)]
    AdminKey = Annotated[Caller, Depends(ctx.auth.admin)]
    router = APIRouter(prefix="/v1")

    @router.get("/documents", tags=["documents"], response_model=schemas.DocumentList, responses=ERRORS,
                summary="Documents in the store")  # fmt: skip
    def documents(who: AnyKey) -> schemas.DocumentList:
        return schemas.DocumentList(documents=ctx.library.documents())

    @router.post("/documents", tags=["documents"], response_model=schemas.UploadResponse,
                 responses=UPLOAD_ERRORS, summary="Upload files (multipart `files`): stored under the "
                 "data dir and ingested")  # fmt: skip
    def upload(files: Annotated[list[UploadFile], File(description=".txt .md .html .htm .pdf .docx")],
               who: AdminKey) -> schemas.UploadResponse:  # fmt: skip
        received = [(f.filename or "", f.file.read()) for f in files]
        for name, data in received:  # refuse the whole request before ingesting any of it
            try:
                ctx.library.check(name, len(data))
            except UploadRejected as exc:
                status = {"type": 415, "size": 413}.get(exc.kind, 422)
                raise ApiError(status, str(exc), param="files") from exc
        try:
            results = ctx.library.upload(received)
        except IngestLocked as exc:
            raise _ingest_running() from exc
        out = [
            schemas.FileResult(**{**vars(r), "path": name})
            for r, (name, _) in zip(results, received, strict=True)
        ]
        return schemas.UploadResponse(results=out, failed=sum(r.status == "failed" for r in out))

    @router.delete("/documents/{doc_id:path}", tags=["documents"], response_model=schemas.Deleted,
                   responses=UPLOAD_ERRORS | {404: {"model": schemas.Error}},
                   summary="Delete a document's chunks (and its file, if it was uploaded)")  # fmt: skip
    def delete(doc_id: str, who: AdminKey) -> schemas.Deleted:
        try:
            removed = ctx.library.delete(doc_id)
        except IngestLocked as exc:
            raise _ingest_running() from exc
        if not removed:
            raise ApiError(404, f"no document {doc_id!r}", param="doc_id")
        return schemas.Deleted(doc_id=doc_id, chunks_removed=removed)

    return router
