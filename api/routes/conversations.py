"""Kept conversations, the caller's own: POST and GET /v1/conversations, GET, PATCH and DELETE
/v1/conversations/{id}. `POST /v1/ask` with `conversation_id` appends to one (`api.routes.answers`)."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated dependencies.
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api import schemas
from api.auth import Caller
from api.context import ApiContext
from api.errors import ERRORS
from rag.conversations import Conversation, ConversationRecord

NOT_FOUND = {404: {"model": schemas.Error, "description": "no such conversation of this key's"}}


def conversations_router(ctx: ApiContext) -> APIRouter:
    AnyKey = Annotated[Caller, Depends(ctx.auth.caller)]
    router = APIRouter(prefix="/v1", tags=["conversations"])

    @router.post("/conversations", status_code=201, response_model=Conversation, responses=ERRORS,
                 summary="Start a conversation in a collection")  # fmt: skip
    def create(body: schemas.NewConversation, who: AnyKey) -> Conversation:
        workspace = ctx.workspace(who, body.collection)
        return workspace.conversations.create(ctx.owner(who), body.title)

    @router.get("/conversations", response_model=schemas.ConversationList, responses=ERRORS,
                summary="This key's conversations, the most recent first")  # fmt: skip
    def conversations(
        who: AnyKey, collection: Annotated[str | None, Query(description="only this collection's")] = None
    ) -> schemas.ConversationList:
        names = [collection] if collection else ctx.readable(who)
        found = [c for n in names for c in ctx.workspace(who, n).conversations.list(ctx.owner(who))]
        return schemas.ConversationList(conversations=sorted(found, key=lambda c: c.updated_at, reverse=True))

    @router.get("/conversations/{conversation_id}", response_model=ConversationRecord,
                responses=ERRORS | NOT_FOUND, summary="A conversation with every Answer record")  # fmt: skip
    def conversation(conversation_id: str, who: AnyKey) -> ConversationRecord:
        return ctx.conversation(who, conversation_id)[1]

    @router.patch("/conversations/{conversation_id}", response_model=Conversation,
                  responses=ERRORS | NOT_FOUND, summary="Rename a conversation")  # fmt: skip
    def rename(conversation_id: str, body: schemas.RenameConversation, who: AnyKey) -> Conversation:
        workspace, _ = ctx.conversation(who, conversation_id)
        workspace.conversations.rename(ctx.owner(who), conversation_id, body.title)
        return ctx.conversation(who, conversation_id)[1]

    @router.delete("/conversations/{conversation_id}", response_model=schemas.ConversationDeleted,
                   responses=ERRORS | NOT_FOUND, summary="Delete a conversation")  # fmt: skip
    def delete(conversation_id: str, who: AnyKey) -> schemas.ConversationDeleted:
        workspace, _ = ctx.conversation(who, conversation_id)
        workspace.conversations.delete(ctx.owner(who), conversation_id)
        return schemas.ConversationDeleted(id=conversation_id)

    return router
