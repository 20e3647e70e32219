"""The HTTP API for other teams, native and OpenAI-compatible: `create_app(settings, answerer, ...)`.

This only assembles the app: routes live in `api.routes`, errors in `api.errors`, who may call in
`api.auth`. The staff UI is mounted beside it by `app.server`.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi_offline import FastAPIOffline

from api.auth import Auth, LoginThrottle, LoopbackOnly
from api.context import ApiContext
from api.errors import install_error_handlers
from api.limits import RateLimiter
from api.metrics import Metrics
from api.middleware import BodyLimit, DocsPolicy, RequestMetrics
from api.routes.answers import answers_router
from api.routes.collections import collections_router
from api.routes.conversations import conversations_router
from api.routes.documents import documents_router
from api.routes.openai import openai_router
from api.routes.operations import operations_router
from index.workspaces import Workspaces
from rag.access import load_grants
from rag.gate import GenerationGate
from rag.settings import Settings
from rag.tokens import get_encoding
from rag.usage import UsageLog

log = logging.getLogger("rag.api")
FAVICON = Path(__file__).with_name("favicon.svg")
FAVICON_URL = "/docs-favicon.svg"


def create_app(settings: Settings, workspaces: Workspaces, gate: GenerationGate) -> FastAPI:
    """`gate` is the process's generation limit, shared with the UI (`app.components`)."""
    keys = load_grants(settings)
    usage = UsageLog(settings.usage_path)
    metrics = Metrics(usage)
    metrics.generating.set_function(lambda: gate.active)
    metrics.waiting.set_function(lambda: gate.waiting)
    auth = Auth(
        keys, RateLimiter(settings.rate_limit_per_minute), RateLimiter(settings.failed_keys_per_minute)
    )
    ctx = ApiContext(settings, workspaces, gate, metrics, usage, auth, get_encoding())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Other processes (`rag ingest`, other workers) change the store: poll for their changes.
        # While nothing changed a poll is one small read (the store's change stamp).
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(settings.index_poll_seconds):
                for workspace in workspaces.opened():
                    try:
                        workspace.retriever.warm_up()
                    except Exception:  # a store hiccup (or a collection deleted) must not end the poller
                        log.exception("could not refresh the index of %r", workspace.name)

        threading.Thread(target=poll, name="index-poll", daemon=True).start()
        yield
        stop.set()

    # Swagger UI and ReDoc from an installed package (fastapi-offline), never a CDN: the docs work
    # offline and tell no third party who reads them. The favicon is our own.
    app = FastAPIOffline(
        favicon_url=FAVICON_URL,
        title="Grounded Q&A API",
        version="1.0",
        description="Answers grounded in the ingested documents, each citing the chunks it used "
        "with exact quotes, or a plain refusal when the documents don't hold the answer. "
        "Authenticate with `Authorization: Bearer KEY` when the server has API keys.",
        lifespan=lifespan,
    )
    install_error_handlers(app, metrics)

    @app.get(FAVICON_URL, include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(FAVICON, media_type="image/svg+xml")

    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(DocsPolicy, paths=("/docs", "/redoc"))
    app.add_middleware(RequestMetrics, metrics=metrics)
    if keys:
        app.add_middleware(LoginThrottle, auth=auth)  # the UI's sign-in, once mounted at `/`
    else:
        app.add_middleware(LoopbackOnly)  # added last, so outermost: a refused client reaches nothing
    for router in (
        operations_router,
        answers_router,
        documents_router,
        collections_router,
        conversations_router,
        openai_router,
    ):
        app.include_router(router(ctx))
    return app
