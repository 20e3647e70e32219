"""The HTTP API through FastAPI's TestClient, and the real `openai` client against a real server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from api_fixtures import QUESTION, app, components, local_client
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import bind_problem
from app.components import build_ingestor
from bench.local_server import free_port
from index.clean import clean_text
from rag.access import load_grants
from rag.llm import Message
from rag.records import Answer


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with local_client(app(tmp_path)) as c:
        yield c


def _events(text: str) -> list[tuple[str, dict]]:
    """Parse server-sent events into (event, data) pairs."""
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def test_ask_returns_an_answer_with_exact_quotes(client: TestClient):
    response = client.post("/v1/ask", json={"question": QUESTION})
    assert response.status_code == 200
    answer = Answer.model_validate(response.json())
    assert not answer.refused and "refining" in answer.answer
    cited = [s for s in answer.sources if s.cited]
    assert cited
    for source in cited:
        cleaned = clean_text(Path(source.path).read_text()).text
        assert cleaned[source.quote_start : source.quote_end] == source.quote


def test_stream_sends_tokens_then_the_same_answer_as_ask(client: TestClient):
    response = client.post("/v1/ask/stream", json={"question": QUESTION, "mode": "bm25", "top_k": 3})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"token"}
    final = events[-1][1]
    assert "".join(d["text"] for _, d in events[:-1]).strip() == final["answer"]
    assert final["settings"]["retrieval_mode"] == "bm25" and final["settings"]["top_k"] == 3
    asked = client.post("/v1/ask", json={"question": QUESTION, "mode": "bm25", "top_k": 3}).json()
    assert asked["answer"] == final["answer"]


def test_follow_up_uses_history(client: TestClient):
    history = [{"question": QUESTION, "answer": "It asks about adding refining capacity."}]
    answer = client.post("/v1/ask", json={"question": "and India?", "history": history}).json()
    assert answer["condensed_query"] != "and India?" and "refining" in answer["condensed_query"]


def test_off_topic_question_is_refused_plainly(client: TestClient):
    answer = client.post("/v1/ask", json={"question": "zeppelin airship helium mooring mast"}).json()
    assert answer["refused"] and answer["answer"] == "The documents don't contain an answer to that."


def test_retrieve_returns_scored_chunks(client: TestClient):
    body = client.post(
        "/v1/retrieve", json={"query": "refining capacity", "top_k": 2, "mode": "hybrid"}
    ).json()
    assert len(body["chunks"]) == 2
    assert body["chunks"][0]["score"] >= body["chunks"][1]["score"]
    assert any("refining" in c["text"] for c in body["chunks"])
    assert {"embed", "dense", "bm25", "fuse"} <= set(body["timings"])


def test_chat_completions_in_openai_shape_with_sources_in_an_extra_field(client: TestClient):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": QUESTION}]
    body = client.post("/v1/chat/completions", json={"model": "extractive", "messages": messages}).json()
    assert body["object"] == "chat.completion"
    assert "refining" in body["choices"][0]["message"]["content"]
    assert body["rag"]["sources"] and body["usage"]["completion_tokens"] > 0

    streamed = client.post(
        "/v1/chat/completions", json={"model": "extractive", "messages": messages, "stream": True}
    )
    lines = [line.removeprefix("data: ") for line in streamed.text.split("\n\n") if line]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == body["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["rag"]["sources"]


def test_models_lists_the_configured_model(client: TestClient):
    assert client.get("/v1/models").json()["data"][0] == {
        "id": "extractive", "object": "model", "created": 0, "owned_by": "extractive"
    }  # fmt: skip


def test_probes_and_metrics(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["chunks"] > 0
    client.post("/v1/ask", json={"question": QUESTION})
    client.post("/v1/ask", json={"question": "zeppelin airship helium mooring mast"})
    client.post("/v1/ask", json={})
    metrics = client.get("/metrics").text
    assert 'rag_requests_total{route="/v1/ask",status="200"} 2.0' in metrics
    assert 'rag_requests_total{route="/v1/ask",status="422"} 1.0' in metrics
    assert "rag_refusals_total 1.0" in metrics
    assert 'rag_stage_seconds_count{stage="embed"} 2.0' in metrics


# -- the bind rule: no API keys, loopback clients only ---------------------------------------

NOT_LOOPBACK = (
    "this server has no API keys, so it answers only loopback clients; set RAG_API_KEYS to serve "
    "other machines"
)


def test_without_keys_only_loopback_clients_are_answered(tmp_path: Path):
    served = app(tmp_path)
    with local_client(served, "203.0.113.5") as remote:
        for path in ("/v1/documents", "/healthz"):
            refused = remote.get(path)
            assert refused.status_code == 403
            assert refused.json() == {"error": {"message": NOT_LOOPBACK, "type": "permission_error",
                                                "param": None, "code": "403"}}  # fmt: skip
    for host in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        with local_client(served, host) as local:
            assert local.get("/v1/documents").status_code == 200, host
            assert local.get("/healthz").status_code == 200, host


def test_with_keys_remote_clients_need_a_key_not_loopback(tmp_path: Path):
    with local_client(app(tmp_path, api_keys="good-key"), "203.0.113.5") as remote:
        assert remote.get("/v1/documents").status_code == 401
        assert remote.get("/v1/documents", headers={"Authorization": "Bearer good-key"}).status_code == 200


def test_bind_problem_only_without_keys_off_loopback():
    assert bind_problem("0.0.0.0", {}) == (
        "refusing to bind 0.0.0.0 without API keys: set RAG_API_KEYS or RAG_API_KEYS_FILE, or keep "
        "RAG_HOST=127.0.0.1"
    )
    assert bind_problem("0.0.0.0", {"k": False}) is None
    assert bind_problem("127.0.0.1", {}) is None


# -- errors and limits ---------------------------------------------------------------------


def test_unauthorised_requests_get_401_without_detail(tmp_path: Path):
    with local_client(app(tmp_path, api_keys="good-key")) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "good-ke"}):
            response = c.post("/v1/ask", json={"question": QUESTION}, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["message"] == "invalid or missing API key"
            assert "good-key" not in response.text
        ok = c.post("/v1/ask", json={"question": QUESTION}, headers={"Authorization": "Bearer good-key"})
        assert ok.status_code == 200
        assert c.get("/healthz").status_code == 200  # probes stay open


def test_document_changes_can_be_limited_to_admin_keys(tmp_path: Path):
    with local_client(app(tmp_path, api_keys="reader", api_admin_keys="boss")) as c:
        files = [("files", ("note.txt", b"The lighthouse keeper is Ada Quill.", "text/plain"))]
        reader = {"Authorization": "Bearer reader"}
        assert c.get("/v1/documents", headers=reader).status_code == 200
        denied = c.post("/v1/documents", files=files, headers=reader)
        assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
        assert (
            c.post("/v1/documents", files=files, headers={"Authorization": "Bearer boss"}).status_code == 200
        )


def test_keys_file_with_admin_marks(tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# team keys\nalpha\nbeta admin  # ops\n")
    with local_client(app(tmp_path, api_keys_file=keys)) as c:
        files = [("files", ("n.txt", b"The lighthouse keeper is Ada Quill.", "text/plain"))]
        assert c.post("/v1/documents", files=files, headers={"X-API-Key": "alpha"}).status_code == 403
        assert c.post("/v1/documents", files=files, headers={"X-API-Key": "beta"}).status_code == 200


def test_oversized_bodies_get_413(tmp_path: Path):
    with local_client(app(tmp_path, max_request_kb=1, max_file_mb=0.001)) as c:
        big = c.post("/v1/ask", json={"question": "x" * 2000})
        assert big.status_code == 413 and big.json()["error"]["message"] == "request body too large"
        chunked = c.post("/v1/ask", content=iter([b'{"question": "', b"x" * 2000, b'"}']),
                         headers={"Content-Type": "application/json"})  # fmt: skip
        assert chunked.status_code == 413 and chunked.json()["error"]["type"] == "invalid_request_error"
        upload = c.post("/v1/documents", files=[("files", ("big.txt", b"word " * 1000, "text/plain"))])
        assert upload.status_code == 413 and "big.txt" in upload.json()["error"]["message"]
        assert not (tmp_path / "data" / "workspaces" / "api_docs" / "uploads" / "big.txt").exists()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "q" * 101}, "question"),
        ({"question": QUESTION, "top_k": 0}, "top_k"),
        ({"question": QUESTION, "mode": "psychic"}, "mode"),
        ({"question": QUESTION, "surprise": 1}, "surprise"),
    ],
)
def test_invalid_requests_get_422_naming_the_field(tmp_path: Path, body: dict, param: str):
    with local_client(app(tmp_path, max_question_chars=100)) as c:
        response = c.post("/v1/ask", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["param"] == param


def test_chat_needs_a_user_message_last(client: TestClient):
    messages = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "hi"}]
    response = client.post("/v1/chat/completions", json={"model": "extractive", "messages": messages})
    assert response.status_code == 422 and response.json()["error"]["param"] == "messages"
    assert (
        client.post("/v1/chat/completions", json={"model": "extractive", "messages": []}).status_code == 422
    )


def test_rate_limit_gives_429_with_retry_after(tmp_path: Path):
    with local_client(app(tmp_path, rate_limit_per_minute=2)) as c:
        codes = [c.post("/v1/retrieve", json={"query": "refining"}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = c.post("/v1/retrieve", json={"query": "refining"})
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["type"] == "rate_limit_error"


class HeldLLM:
    """Generates only when released, so a test can hold every generation slot."""

    backend, model, generative = "held", "held-1", True

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def stream(self, messages: Sequence[Message], question: str, passages: Sequence[str]) -> Iterator[str]:
        self.started.release()
        self.release.wait(30)
        yield "Refining capacity is discussed [1]."


def test_busy_model_queues_then_gives_429_and_503(tmp_path: Path):
    llm = HeldLLM()
    with local_client(app(tmp_path, llm, max_generations=1, max_queue=1, queue_timeout=1)) as c:
        results: list[int] = []
        first = threading.Thread(
            target=lambda: results.append(c.post("/v1/ask", json={"question": QUESTION}).status_code)
        )
        first.start()
        assert llm.started.acquire(timeout=10)  # the only slot is now busy
        waiting = threading.Thread(
            target=lambda: results.append(c.post("/v1/ask", json={"question": QUESTION}).status_code)
        )
        waiting.start()
        time.sleep(0.3)  # let it join the queue (the queue holds one)
        full = c.post("/v1/ask", json={"question": QUESTION})
        assert full.status_code == 429 and "Retry-After" in full.headers
        waiting.join(10)
        assert results == [503]  # waited longer than RAG_QUEUE_TIMEOUT
        llm.release.set()
        first.join(10)
        assert results == [503, 200]
        assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 200  # slot came back


class BrokenLLM:
    backend, model, generative = "broken", "broken-1", True

    def stream(self, messages, question, passages) -> Iterator[str]:
        raise RuntimeError("secret internal detail /srv/model.gguf")
        yield ""


def test_model_failure_is_a_json_500_without_the_trace(tmp_path: Path):
    with local_client(app(tmp_path, BrokenLLM())) as c:
        response = c.post("/v1/ask", json={"question": QUESTION})
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"
        assert "secret" not in response.text and "Traceback" not in response.text
        streamed = c.post("/v1/ask/stream", json={"question": QUESTION})
        assert _events(streamed.text)[-1][0] == "error" and "secret" not in streamed.text
        assert 'rag_errors_total{type="answer"} 2.0' in c.get("/metrics").text
        # the slot was given back both times
        assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 500


# -- documents -----------------------------------------------------------------------------


def test_upload_makes_a_document_answerable_and_delete_removes_it(client: TestClient, tmp_path: Path):
    note = b"The lighthouse on Skerry Point is kept by Ada Quill, who logs the tides every dawn."
    response = client.post("/v1/documents", files=[("files", ("lighthouse.md", note, "text/markdown"))])
    assert response.status_code == 200
    assert response.json()["results"][0] | {"warnings": []} == {
        "path": "lighthouse.md", "status": "added", "doc_id": "uploads/lighthouse.md", "chunks": 1,
        "error": None, "warnings": [],
    }  # fmt: skip
    answer = client.post("/v1/ask", json={"question": "Who keeps the lighthouse on Skerry Point?"}).json()
    assert "Ada Quill" in answer["answer"]
    assert "uploads/lighthouse.md" in [d["doc_id"] for d in client.get("/v1/documents").json()["documents"]]

    deleted = client.delete("/v1/documents/uploads/lighthouse.md")
    assert deleted.json() == {
        "collection": "api_docs",
        "doc_id": "uploads/lighthouse.md",
        "chunks_removed": 1,
    }
    assert not (tmp_path / "data" / "workspaces" / "api_docs" / "uploads" / "lighthouse.md").exists()
    assert "uploads/lighthouse.md" not in [
        d["doc_id"] for d in client.get("/v1/documents").json()["documents"]
    ]
    assert client.delete("/v1/documents/uploads/lighthouse.md").status_code == 404


def test_upload_path_traversal_stays_inside_the_upload_folder(client: TestClient, tmp_path: Path):
    for name in ("../../x.txt", "..\\..\\y.txt", "/etc/z.txt", ".hidden.txt"):
        body = b"The vault code word is pumpernickel."
        response = client.post("/v1/documents", files=[("files", (name, body, "text/plain"))])
        assert response.status_code == 200, response.text
    uploads = tmp_path / "data" / "workspaces" / "api_docs" / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == ["hidden.txt", "x.txt", "y.txt", "z.txt"]
    outside = [
        p for p in tmp_path.rglob("*") if p.name in {"x.txt", "y.txt", "z.txt"} and uploads not in p.parents
    ]
    assert outside == []


def test_unsupported_or_nameless_uploads_are_refused_before_ingesting(client: TestClient, tmp_path: Path):
    files = [("files", ("ok.txt", b"Fine text here.", "text/plain")), ("files", ("tool.exe", b"MZ", "x"))]
    bad_type = client.post("/v1/documents", files=files)
    assert bad_type.status_code == 415 and "tool.exe" in bad_type.json()["error"]["message"]
    assert not (
        tmp_path / "data" / "workspaces" / "api_docs" / "uploads" / "ok.txt"
    ).exists()  # nothing of the request was kept
    nameless = client.post("/v1/documents", files=[("files", ("..", b"text", "text/plain"))])
    assert nameless.status_code == 422


def test_a_corrupt_file_fails_alone(client: TestClient):
    files = [("files", ("broken.pdf", b"%PDF-1.7 not really", "application/pdf")),
             ("files", ("good.txt", b"The harbour master is Jonas Reef.", "text/plain"))]  # fmt: skip
    body = client.post("/v1/documents", files=files).json()
    assert [r["status"] for r in body["results"]] == ["failed", "added"] and body["failed"] == 1
    assert "broken.pdf" in body["results"][0]["path"] and body["results"][0]["error"]


def test_server_picks_up_another_process_ingest(tmp_path: Path):
    """An ingest outside the server (`rag ingest`, another worker) shows up, BM25 included."""
    built = components(tmp_path, index_poll_seconds=0.2)
    with local_client(create_app(built.settings, built.workspaces, built.gate)) as c:
        extra = tmp_path / "more"
        extra.mkdir()
        (extra / "otter.txt").write_text("The otter sanctuary opens at Quillhaven every spring.")
        other = build_ingestor(built.settings, built.retriever.store, built.retriever.embedder)
        other.ingest([extra])
        deadline = time.monotonic() + 10
        found = []
        while time.monotonic() < deadline and not found:
            chunks = c.post("/v1/retrieve", json={"query": "Quillhaven otter", "mode": "bm25"}).json()[
                "chunks"
            ]
            found = [ch for ch in chunks if ch["doc_id"] == "more/otter.txt"]
            time.sleep(0.1)
        assert found, "BM25 never saw the other process's document"


# -- the real openai client against a real server ------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app(tmp_path, api_keys="k1"), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(10)


def test_openai_client_gets_an_answer_with_sources(served: str):
    from openai import AuthenticationError, OpenAI

    client = OpenAI(base_url=served, api_key="k1", max_retries=0)
    assert [m.id for m in client.models.list()] == ["extractive", "api_docs"]
    completion = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": QUESTION}]
    )
    assert "refining" in completion.choices[0].message.content
    rag = completion.model_extra["rag"]
    assert any(s["cited"] and "refining" in s["quote"] for s in rag["sources"])

    stream = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == completion.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["rag"]["sources"]

    with pytest.raises(AuthenticationError) as failed:
        OpenAI(base_url=served, api_key="nope", max_retries=0).models.list()
    assert failed.value.status_code == 401


def test_ui_sign_in_needs_a_key_with_its_name_as_the_user(tmp_path: Path):
    from app.server import mount_ui

    built = components(tmp_path, api_keys="reader", api_admin_keys="boss")
    api = create_app(built.settings, built.workspaces, built.gate)
    with local_client(mount_ui(api, built.settings, built, load_grants(built.settings))) as c:

        def login(user: str, key: str) -> int:
            return c.post("/login", data={"username": user, "password": key}).status_code

        assert login("reader", "wrong") != 200
        assert login("reader", "reader") == 200, "a key without a name= is named after its role"
        assert login("ann", "reader") != 200, "the user name is the key's name"
        assert login("admin", "reader") != 200, "a reader key must not sign in as admin"
        assert login("admin", "boss") == 200
        assert c.get("/v1/models").status_code == 401, "the UI session is no API key"


def test_load_loop_counts_requests_statuses_and_latency(served: str):
    from bench.load import run

    result = run(served.removesuffix("/v1"), clients=2, seconds=1.5, mix={"ask": 1, "retrieve": 1},
                 api_key="k1")  # fmt: skip
    summary = result.summary()
    assert summary["requests"] > 2 and summary["server_errors"] == 0
    assert set(summary["kinds"]) == {"ask", "retrieve"}
    for kind in summary["kinds"].values():
        assert kind["statuses"] == {"200": kind["requests"]} and kind["p50_ms"] > 0


def test_a_failed_replacement_keeps_the_previous_upload_and_a_locked_one_leaves_nothing(
    client: TestClient, tmp_path: Path
):
    from rag.settings import Settings
    from rag.store import open_store

    uploads = tmp_path / "data" / "workspaces" / "api_docs" / "uploads"
    good = b"The harbour master is Jonas Reef."
    client.post("/v1/documents", files=[("files", ("harbour.txt", good, "text/plain"))])
    broken = client.post(
        "/v1/documents", files=[("files", ("harbour.txt", b"\x00\x01\x02" * 50, "text/plain"))]
    )
    assert broken.json()["results"][0]["status"] == "failed"
    assert (uploads / "harbour.txt").read_bytes() == good, "the folder still matches the store"
    assert (
        "Jonas Reef"
        in client.post("/v1/ask", json={"question": "Who is the harbour master?"}).json()["answer"]
    )

    store = open_store(Settings(_env_file=None, data_dir=tmp_path / "data", collection="api_docs"))
    with store.state.take().kept():  # another process's ingest holds the lease
        locked = client.post("/v1/documents", files=[("files", ("new.txt", good, "text/plain"))])
    assert locked.status_code == 409 and locked.headers["Retry-After"] == "5"
    assert sorted(p.name for p in uploads.iterdir()) == ["harbour.txt"], "no stray or hidden files"


def test_pdf_pages_and_sections_ride_in_retrieve_ask_and_the_openai_field(client: TestClient):
    from pdf_fixtures import turbine_report

    files = [("files", ("harbour.pdf", turbine_report(), "application/pdf"))]
    assert client.post("/v1/documents", files=files).json()["results"][0]["status"] == "added"
    question = "How much power does the Zorblax turbine produce?"
    retrieved = client.post("/v1/retrieve", json={"query": question, "mode": "bm25", "top_k": 1}).json()
    (chunk,) = retrieved["chunks"]
    assert chunk["doc_id"] == "uploads/harbour.pdf" and 1 <= chunk["page"] <= 2 == chunk["page_end"]
    assert chunk["pages"] == ("pp. 1–2" if chunk["page"] == 1 else "p. 2")
    answer = client.post("/v1/ask", json={"question": question}).json()
    (source,) = [s for s in answer["sources"] if s["cited"] and s["doc_id"] == "uploads/harbour.pdf"]
    assert source["quote_page"] == 2 and source["section"] == "2 Turbines" and source["pages"]
    messages = [{"role": "user", "content": question}]
    body = client.post("/v1/chat/completions", json={"model": "extractive", "messages": messages}).json()
    assert any(s["quote_page"] == 2 for s in body["rag"]["sources"] if s["cited"])
