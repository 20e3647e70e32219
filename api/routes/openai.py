"""OpenAI-compatible: GET /v1/models and POST /v1/chat/completions (streamed or not)."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated dependencies.
import time
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends

from api import schemas
from api.auth import Caller
from api.context import ApiContext
from api.errors import ERRORS, GENERATION_ERRORS, GENERATION_FAILED, ApiError
from api.sse import sse_data, sse_response
from index.workspaces import Workspace
from rag.records import Turn


def openai_router(ctx: ApiContext) -> APIRouter:
    AnyKey = Annotated[Caller, Depends(ctx.auth.caller)]
    router = APIRouter(prefix="/v1")

    llm = ctx.workspaces.default.answerer.llm  # one model answers in every collection

    def workspace(who: Caller, model: str) -> Workspace:
        """`model` names the collection; the model's own id, the default collection."""
        return ctx.workspace(who, None if model == llm.model else model, param="model")

    @router.get("/models", tags=["openai"], response_model=schemas.ModelList, responses=ERRORS,
                summary="The model id (the default collection, when the key reads it) and each "
                "collection the key may read, as models (OpenAI-compatible)")  # fmt: skip
    def models(who: AnyKey) -> schemas.ModelList:
        collections = ctx.readable(who)
        default = (
            [schemas.Model(id=llm.model, owned_by=llm.backend)]
            if ctx.settings.collection in collections
            else []
        )
        return schemas.ModelList(
            data=default + [schemas.Model(id=n, owned_by="collection") for n in collections]
        )

    @router.post("/chat/completions", tags=["openai"], response_model=schemas.ChatCompletion,
                 responses=GENERATION_ERRORS | {200: {"content": {"text/event-stream": {}}, "description":
                     "with `stream: true`: OpenAI `chat.completion.chunk` events, then `data: [DONE]`; "
                     "the last chunk carries the Answer record in `rag`, with `rag.withdrawn` true when "
                     "the support check refused the streamed text (show `rag.answer` instead)"}},
                 summary="OpenAI-compatible chat: the last user message is the question")  # fmt: skip
    def chat(body: schemas.ChatCompletionRequest, who: AnyKey):
        chosen = workspace(who, body.model)
        question, history = _conversation(body.messages)
        ctx.question_ok(question, "messages")
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not body.stream:
            answer = ctx.generate(who, chosen, question, history, None, None, body.filters)
            encoding = ctx.encoding
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
        permit = ctx.gate.acquire()

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return sse_data({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                             "model": llm.model, "choices": [choice], **extra})  # fmt: skip

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            sent: list[str] = []
            try:
                for event in ctx.streamed(who, chosen, question, history, None, None, permit, body.filters):
                    if isinstance(event, str):
                        sent.append(event)
                        yield chunk({"content": event})
                    else:
                        # The support check refused text already sent: the last chunk withdraws it
                        # (`rag.withdrawn`, with the refusal in `rag.answer` as in /v1/ask/stream),
                        # and for clients that read only `content` the refusal follows the text.
                        withdrawn = event.refused and "".join(sent).strip() != event.answer
                        if withdrawn:
                            yield chunk({"content": f"\n\n{event.answer}"})
                        yield chunk({}, "stop", rag=event.model_dump(mode="json") | {"withdrawn": withdrawn})
            except Exception:
                yield sse_data({"error": {"message": GENERATION_FAILED, "type": "server_error"}})
            yield "data: [DONE]\n\n"

        return sse_response(events(), permit)

    return router


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
