"""The ASGI entry point of `rag serve`: settings from the environment, components, app.

uvicorn imports `api.server:app` as a factory in each worker process, so every worker builds
its own components (model, embedder, store client).
"""

from __future__ import annotations

import sys

from fastapi import FastAPI

from api.app import create_app
from index.components import build_components
from rag.schema import EmbedderMismatch
from rag.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    try:
        components = build_components(settings)
    except EmbedderMismatch as exc:  # a clear line, not a traceback from inside uvicorn
        print(f"rag serve: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return create_app(settings, components, with_ui=settings.ui)
