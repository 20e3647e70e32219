"""The ASGI entry point of `rag serve`: settings from the environment, components, app.

uvicorn imports `api.server:app` as a factory in each worker process, so every worker builds
its own components (model, embedder, store client).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from index.components import build_components
from rag.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    return create_app(settings, build_components(settings), with_ui=settings.ui)
