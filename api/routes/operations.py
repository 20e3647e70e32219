"""Probes and metrics, open without a key: /healthz, /readyz, /metrics."""

import logging
import os

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api import schemas
from api.context import ApiContext
from api.errors import error_response

log = logging.getLogger("rag.api")


def operations_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: store reachable and model loaded",
                responses={503: {"model": schemas.Error}})  # fmt: skip
    def readyz():
        try:
            chunks = ctx.retriever.store.client.count()
        except Exception:
            log.exception("store not reachable")
            return error_response(503, "the document store is not reachable", "overloaded_error")
        llm = ctx.workspaces.default.answerer.llm
        return {"status": "ready", "chunks": chunks, "backend": llm.backend, "model": llm.model,
                "index_version": ctx.retriever.version,
                "pid": os.getpid()}  # with --workers N, which process answered  # fmt: skip

    prometheus_text = {200: {"content": {"text/plain": {}}, "description": "Prometheus text"}}

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
                responses=prometheus_text)  # fmt: skip
    def prometheus() -> Response:
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
