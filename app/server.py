"""The ASGI entry point: settings, components, the API and the staff UI on one app.

uvicorn imports `app.server:app` as a factory in each worker process (`rag serve`, or uvicorn run
by hand), so every worker builds its own components (model, embedder, store client), and every
entry point passes the bind rule: without API keys the app answers loopback clients only
(`api.auth.LoopbackOnly`), whatever address uvicorn was told to bind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys

from fastapi import FastAPI

from api.app import create_app
from api.auth import UI_AUTH_MESSAGE, bind_problem
from app.components import Components, build_components, load_settings
from rag.access import Grant, grant_of_user, load_grants, ui_login
from rag.records import EmbedderMismatch, LocalModelUnavailable
from rag.settings import Settings


def mount_ui(api: FastAPI, settings: Settings, components: Components, keys: dict[str, Grant]) -> FastAPI:
    """The staff UI at `/` beside the API, signed in with the same keys."""
    import gradio as gr

    from ui.app import build_ui, mount_options

    blocks = build_ui(components, lambda user: grant_of_user(keys, user), browser_secret(settings))
    return gr.mount_gradio_app(
        api, blocks, path="/", auth=ui_login(keys), auth_message=UI_AUTH_MESSAGE,
        max_file_size=int(settings.max_file_mb * 1e6), footer_links=[], **mount_options(),
    )  # fmt: skip


def browser_secret(settings: Settings) -> str:
    """The UI's seal on browser ids, kept in the data dir (owner-only) so it outlives restarts."""
    path = settings.data_dir / "ui-browser.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.touch(mode=0o600)
        draft.write_text(secrets.token_hex(32))
        # A hard link appears whole or not at all: of workers starting together, the first one wins.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()


def app() -> FastAPI:
    settings = load_settings()
    try:
        keys = load_grants(settings)
        if problem := bind_problem(settings.host, keys):
            raise ValueError(problem)
        components = build_components(settings)
    except (
        OSError,
        ValueError,
        EmbedderMismatch,
        LocalModelUnavailable,
    ) as exc:  # a clear line, not a traceback from uvicorn
        print(f"rag serve: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    api = create_app(settings, components.workspaces, components.gate)
    return mount_ui(api, settings, components, keys) if settings.ui else api
