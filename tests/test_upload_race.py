"""Uploads of one name at once, through the API and the UI together: each is one unit (file and
ingest), so afterwards the folder holds exactly what the store holds, and nothing is left over."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from api_fixtures import components, local_client

from api.app import create_app
from rag import records
from rag.store import readable_versions
from ui import handlers

NAME = "harbour.txt"


def _text(n: int) -> bytes:
    return f"The harbour master on shift {n} is Jonas Reef number {n}.".encode()


def test_eight_same_name_uploads_through_api_and_ui_leave_folder_and_store_alike(tmp_path: Path):
    built = components(tmp_path)
    api = create_app(built.settings, built.workspaces, built.gate)
    start = threading.Barrier(8, timeout=30)

    def through_api(n: int) -> str:
        with local_client(api) as client:
            start.wait()
            response = client.post("/v1/documents", files=[("files", (NAME, _text(n), "text/plain"))])
        assert response.status_code == 200, response.text
        return response.json()["results"][0]["status"]

    def through_ui(n: int) -> str:
        start.wait()
        view = handlers.upload(built, [(NAME, _text(n))])
        assert f"✓ **{NAME}**" in view.status, view.status
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(through_api if n % 2 else through_ui, n) for n in range(8)]
        statuses = [c.result() for c in calls]
    assert len(statuses) == 8

    uploads = tmp_path / "data" / "workspaces" / "api_docs" / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == [NAME], "no .part or .previous left behind"
    on_disk = (uploads / NAME).read_text()
    store = built.library.ingestor.store
    readable = readable_versions(store)
    got = store.client.get(where={records.DOC_ID: f"uploads/{NAME}"}, include=["documents", "metadatas"])
    visible = [doc for doc, meta in zip(got["documents"], got["metadatas"], strict=True)
               if meta[records.VERSION] in readable]  # fmt: skip
    assert visible == [on_disk], "the store serves exactly the file the folder holds"
    assert len(got["ids"]) == 1, "older versions were replaced, not kept"
