"""The HTTP API (and the staff UI mounted at `/`): `create_app(settings, components)`."""

from __future__ import annotations

from fastapi import FastAPI

from index.components import Components
from rag.settings import Settings


def create_app(settings: Settings, components: Components, with_ui: bool = False) -> FastAPI:
    app = FastAPI(title="Grounded Q&A")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    if with_ui:
        import gradio as gr

        from ui.app import build_ui

        app = gr.mount_gradio_app(app, build_ui(components), path="/")
    return app
