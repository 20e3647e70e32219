"""Pure-ASGI middleware around the whole app (the UI too): body limits and request metrics."""

from __future__ import annotations

import time

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.metrics import Metrics
from rag.settings import Settings

UPLOAD_SLACK = 64 * 1024  # multipart framing around a file


class _TooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, "request body too large")


class BodyLimit:
    """413 for a body over its limit: at once by Content-Length, or as a chunked body arrives."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.json_limit = settings.max_request_kb * 1024
        self.upload_limit = int(settings.max_file_mb * 1e6) + UPLOAD_SLACK

    def limit_for(self, method: str, path: str) -> int:
        # JSON requests are small; uploads (ours and the UI's) are bounded by RAG_MAX_FILE_MB.
        json_only = path.startswith("/v1/") and not (method == "POST" and path == "/v1/documents")
        return self.json_limit if json_only else self.upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["method"], scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await error_response(413, "request body too large", "invalid_request_error")(
                scope, receive, send
            )
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge()  # an HTTPException: the app's handler answers 413
            return message

        await self.app(scope, counted, send)


class RequestMetrics:
    """Counts every request and times it to its last byte (streams included), by route."""

    OURS = ("/v1/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
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


# The docs pages may load only from this server: ReDoc's bundle links its "powered by" logo from
# cdn.redoc.ly, and the browser then never asks for it. (Swagger UI and ReDoc start from inline
# scripts; ReDoc's search runs in a blob: worker.)
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; font-src 'self'"
)


class DocsPolicy:
    """A Content-Security-Policy of this server only on the interactive API docs."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"content-security-policy", DOCS_POLICY.encode())]  # fmt: skip
            await send(message)

        await self.app(scope, receive, sending)
