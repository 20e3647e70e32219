"""The `openai` backend against a tiny OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from rag.answer import Answerer
from rag.llm import OpenAILLM, build_llm
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.support import SupportChecker


class _FakeOpenAI(BaseHTTPRequestHandler):
    """Streams back the first sentence of passage [1] with its citation, OpenAI-style."""

    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        prompt = body["messages"][-1]["content"]
        first = re.search(r"^\[1\] (.+?[.?!])", prompt, flags=re.M)
        reply = f"{first.group(1)} [1]" if first else "The documents don't contain an answer to that."
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for word in reply.split(" "):
            chunk = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def fake_server() -> Iterator[str]:
    _FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_openai_backend_streams_a_grounded_answer(
    make_ingestor, corpus: Path, tmp_path: Path, fake_server: str
):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    settings = Settings(
        _env_file=None, llm="openai", llm_base_url=fake_server, llm_model="team-model", llm_api_key="sk-test",
        refusal_threshold=0.1,
    )  # fmt: skip
    checker = SupportChecker(ingestor.embedder)
    llm = build_llm(settings, checker)
    assert isinstance(llm, OpenAILLM)
    answerer = Answerer(
        Retriever(ingestor.store, ingestor.embedder, tmp_path / "bm25"), llm, checker, settings
    )

    events = list(answerer.stream("What does the author say about refining capacity?"))
    answer = events[-1]
    assert len(events) > 3, "tokens arrive one by one"
    assert not answer.refused
    assert (answer.backend, answer.model) == ("openai", "team-model")
    assert answer.sentences[0].supported and answer.sentences[0].citations == [1]
    (request,) = _FakeOpenAI.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "team-model" and request["stream"] is True
    assert request["auth"] == "Bearer sk-test"
    assert request["messages"][0]["role"] == "system"


def test_openai_backend_needs_a_base_url():
    with pytest.raises(ValueError, match="RAG_LLM_BASE_URL"):
        OpenAILLM(Settings(_env_file=None, llm="openai"))
