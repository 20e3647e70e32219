"""Collections as workspaces: GET and POST /v1/collections, DELETE /v1/collections/{name}."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated dependencies.
from typing import Annotated

from fastapi import APIRouter, Depends

from api import schemas
from api.auth import Caller
from api.context import ApiContext, no_collection
from api.errors import ERRORS, ApiError
from api.routes.documents import ingest_running
from index.report import IngestLocked
from index.workspaces import CollectionConflict, CollectionInfo, UnknownCollection

MANAGE_ERRORS = ERRORS | {
    403: {"model": schemas.Error, "description": "not an admin key"},
    409: {"model": schemas.Error, "description": "exists already, is the default, or is being ingested into"},
}


def collections_router(ctx: ApiContext) -> APIRouter:
    AnyKey = Annotated[Caller, Depends(ctx.auth.caller)]
    router = APIRouter(prefix="/v1", tags=["collections"])

    @router.get("/collections", response_model=schemas.CollectionList, responses=ERRORS,
                summary="The collections this key may read, with document and chunk counts")  # fmt: skip
    def collections(who: AnyKey) -> schemas.CollectionList:
        return schemas.CollectionList(collections=[ctx.workspaces.info(n) for n in ctx.readable(who)])

    @router.post("/collections", status_code=201, response_model=CollectionInfo,
                 responses=MANAGE_ERRORS, summary="Create an empty collection (admin keys)")  # fmt: skip
    def create(body: schemas.NewCollection, who: AnyKey) -> CollectionInfo:
        ctx.manage(who)
        if body.name == ctx.workspaces.default.answerer.llm.model:
            raise ApiError(422, f"name: {body.name!r} is the model's id, which names the default collection "
                           "in the OpenAI-compatible API", param="name")  # fmt: skip
        try:
            info = ctx.workspaces.create(body.name)
        except CollectionConflict as exc:
            raise ApiError(409, str(exc), "conflict_error", param="name") from exc
        except ValueError as exc:
            raise ApiError(422, f"name: {exc}", param="name") from exc
        return info

    @router.delete("/collections/{name}", response_model=schemas.CollectionDeleted,
                   responses=MANAGE_ERRORS, summary="Delete a collection with its documents, uploads "
                   "and feedback (admin keys)")  # fmt: skip
    def delete(name: str, who: AnyKey) -> schemas.CollectionDeleted:
        ctx.manage(who)
        try:
            ctx.workspaces.delete(ctx.collection(who, name, param="name"))
        except UnknownCollection:
            raise no_collection(name, "name") from None
        except CollectionConflict as exc:
            raise ApiError(409, str(exc), "conflict_error", param="name") from exc
        except IngestLocked as exc:
            raise ingest_running() from exc
        return schemas.CollectionDeleted(name=name)

    return router
