"""One JSON shape for every error, OpenAI's (`{"error": {"message", "type", "param", "code"}}`),
so the `openai` client reads ours too; no stack trace ever reaches a client (the server log has it).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api import schemas
from api.metrics import Metrics
from rag.gate import Limited

log = logging.getLogger("rag.api")

# OpenAPI `responses` docs of the errors most routes can give.
ERRORS = {
    401: {"model": schemas.Error, "description": "missing or wrong API key"},
    404: {"model": schemas.Error, "description": "no such collection, or one this key may not read"},
    422: {"model": schemas.Error, "description": "a field is missing or invalid (`param` names it)"},
    429: {"model": schemas.Error, "description": "rate limit or queue full; see Retry-After"},
}
GENERATION_ERRORS = ERRORS | {503: {"model": schemas.Error, "description": "model busy; see Retry-After"}}
GENERATION_FAILED = "the answer could not be generated (details are in the server log)"


class ApiError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.headers = status, message, type, param, headers


def error_response(status: int, message: str, type: str, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = schemas.Error(error=schemas.Error.Body(message=message, type=type, param=param, code=str(status)))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.headers)

    @app.exception_handler(Limited)
    async def limited(request: Request, exc: Limited) -> JSONResponse:
        kind = "rate_limit_error" if exc.status == 429 else "overloaded_error"
        return error_response(exc.status, str(exc), kind, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = {404: "no such endpoint", 405: "method not allowed", 413: "request body too large"}
        return error_response(
            exc.status_code, message.get(exc.status_code, str(exc.detail)), "invalid_request_error"
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first["loc"] if p != "body") or None
        return error_response(422, f"{param or 'body'}: {first['msg']}", "invalid_request_error", param)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        metrics.errors.labels("internal").inc()
        return error_response(500, "internal error (details are in the server log)", "server_error")
