"""The `openai` backend against a real OpenAI-compatible server: llama-cpp-python's own
(`python -m llama_cpp.server`, its `server` extra) serving the packaged SmolLM2 on 127.0.0.1.

Answers streamed and not, through the backend, the Answerer and the API; then the failures: a
server that stalls (SIGSTOP) before answering and mid-stream, one that dies mid-stream (SIGKILL),
one that is down, and a 500. llama_cpp.server answers a streamed request 200 before it runs the
model, so it never answers ours with a 500: a small proxy in front of it answers the 500s and
forwards everything else to the real server.

The backend raises `ModelServerError` naming the server and what went wrong; the API answers
500 with its message ("the answer could not be generated") or ends a stream with an error event,
and the server log has the cause.
"""

from __future__ import annotations

import http.client
import json
import logging
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai
import pytest
from api_fixtures import QUESTION, app, local_client

from bench.local_server import free_port, wait_until_up
from rag.gguf import model_path
from rag.llm import Message, ModelServerError, OpenAILLM
from rag.records import Answer
from rag.settings import Settings

# A reply that runs to max_tokens, so the server is still generating when a test stops or kills it.
LONG = [Message("user", "Count from 1 to 500, one number after another, separated by commas.")]
SHORT = [Message("user", "Name three colours.")]


def _start_server(log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    model = model_path("smollm2", log.parent)
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--seed", "0"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(f"{url}/models", proc, timeout=180, log=log)
    except RuntimeError:
        proc.kill()
        raise
    return proc, url


@contextmanager
def _server(log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    proc, url = _start_server(log)
    try:
        yield proc, url
    finally:
        proc.send_signal(signal.SIGCONT)  # a test may have stopped it
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[subprocess.Popen, str]]:
    """One server for the module; tests that kill theirs start their own."""
    with _server(tmp_path_factory.mktemp("llama-server") / "server.log") as running:
        yield running


def _llm(url: str, **overrides) -> OpenAILLM:
    # Temperature 0: greedy decoding, so two requests for the same prompt get the same text.
    values = {"llm_model": "smollm2", "llm_temperature": 0.0, "llm_max_tokens": 12, "llm_timeout": 60.0}
    return OpenAILLM(Settings(_env_file=None, llm="openai", llm_base_url=url, **(values | overrides)))


def _fresh(url: str) -> None:
    """Put the server's model in the same state before each of two requests that must match.
    llama.cpp reuses the KV cache of the previous prompt's common prefix, and the cached and the
    freshly evaluated prefix round differently: greedy text depends on the request before."""
    openai.OpenAI(base_url=url, api_key="not-needed").chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Say hi."}], max_tokens=1
    )


@contextmanager
def _stopped(proc: subprocess.Popen) -> Iterator[None]:
    proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGCONT)


def test_streamed_text_is_exactly_the_servers_answer(server):
    _, url = server
    _fresh(url)
    pieces = list(_llm(url).stream(SHORT, "", []))
    assert len(pieces) > 2, "the text arrives piece by piece"
    _fresh(url)
    whole = openai.OpenAI(base_url=url, api_key="not-needed").chat.completions.create(
        model="smollm2", messages=[{"role": m.role, "content": m.content} for m in SHORT],
        temperature=0.0, max_tokens=12, stream=False,
    )  # fmt: skip
    assert "".join(pieces) == whole.choices[0].message.content
    assert whole.choices[0].finish_reason == "length", "12 tokens cut the list short: max_tokens was sent"


def test_answers_streamed_and_not_through_the_answerer_and_the_api(server, tmp_path: Path):
    _, url = server
    client = local_client(app(tmp_path, llm=_llm(url, llm_max_tokens=24)))

    _fresh(url)
    asked = client.post("/v1/ask", json={"question": QUESTION})
    assert asked.status_code == 200, asked.text
    answer = Answer.model_validate(asked.json())
    assert (answer.backend, answer.model) == ("openai", "smollm2")
    assert answer.timings["generate"] > 0 and answer.sentences, "the model wrote the answer"

    _fresh(url)
    streamed = client.post("/v1/ask/stream", json={"question": QUESTION})
    assert streamed.status_code == 200
    events = _sse(streamed.text)
    tokens = [data["text"] for event, data in events if event == "token"]
    assert len(tokens) > 2, "tokens are streamed one by one"
    assert events[-1][0] == "answer"
    final = Answer.model_validate(events[-1][1])
    # Greedy decoding: the streamed answer is the very text of the non-streamed one.
    assert [s.text for s in final.sentences] == [s.text for s in answer.sentences]


def _sse(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_server_that_stalls_before_answering_times_out(server):
    proc, url = server
    llm = _llm(url, llm_timeout=1.0)
    with _stopped(proc), pytest.raises(ModelServerError) as failed:
        list(llm.stream(SHORT, "", []))
    message = str(failed.value)
    assert url in message and "RAG_LLM_TIMEOUT" in message and "1 s" in message


def test_a_server_that_stalls_mid_stream_times_out(server):
    proc, url = server
    _fresh(url)  # idle: what an earlier test left behind does not hold up the first piece
    pieces = _llm(url, llm_timeout=1.0, llm_max_tokens=400).stream(LONG, "", [])
    assert next(pieces)
    with _stopped(proc), pytest.raises(ModelServerError) as failed:
        list(pieces)
    message = str(failed.value)
    assert url in message and "RAG_LLM_TIMEOUT" in message


@pytest.mark.parametrize("proxied", [False, True], ids=["direct", "behind-an-http1.0-proxy"])
def test_a_server_that_dies_mid_stream_is_a_clear_error(tmp_path: Path, proxied: bool):
    """Direct, the stream breaks off (no last chunk); through an HTTP/1.0 proxy, whose body ends
    when the connection closes, it looks whole: only the missing finish_reason tells."""
    with _server(tmp_path / "server.log") as (proc, url), _proxy(url) as (proxy, _):
        pieces = _llm(proxy if proxied else url, llm_max_tokens=400).stream(LONG, "", [])
        assert next(pieces)
        proc.kill()
        with pytest.raises(ModelServerError) as failed:
            list(pieces)
    message = str(failed.value)
    assert "before the answer was complete" in message and (proxy if proxied else url) in message


class _KillsAfterTheFirstPiece:
    """The real backend, whose server is SIGKILLed once the first piece of the answer arrived."""

    def __init__(self, llm: OpenAILLM, proc: subprocess.Popen) -> None:
        self.llm, self.proc = llm, proc
        self.backend, self.model, self.generative = llm.backend, llm.model, llm.generative

    def stream(self, messages, question, passages):
        pieces = self.llm.stream(messages, question, passages)
        if self.proc.poll() is None:
            yield next(pieces)
            self.proc.kill()
            self.proc.wait()
        yield from pieces


def test_the_api_reports_a_server_that_died_or_is_down(tmp_path: Path, caplog):
    with _server(tmp_path / "server.log") as (proc, url):
        llm = _KillsAfterTheFirstPiece(_llm(url, llm_max_tokens=400), proc)
        client = local_client(app(tmp_path, llm=llm))
        with caplog.at_level(logging.ERROR, logger="rag.api"):
            streamed = client.post("/v1/ask/stream", json={"question": QUESTION})
        events = _sse(streamed.text)
        assert events[0][0] == "token" and events[-1][0] == "error"
        assert events[-1][1]["error"]["message"]
        assert "before the answer was complete" in caplog.text, "the log says what happened"

        caplog.clear()  # the server stays dead: the next question finds it down
        with caplog.at_level(logging.ERROR, logger="rag.api"):
            asked = client.post("/v1/ask", json={"question": QUESTION})
        assert asked.status_code == 500
        error = asked.json()["error"]
        assert error["message"] and error["type"] == "server_error"
        assert f"the model server at {url} could not be reached" in caplog.text


@contextmanager
def _proxy(upstream: str, failures: int = 0) -> Iterator[tuple[str, list[int]]]:
    """An HTTP/1.0 proxy to `upstream` that answers the first `failures` requests 500
    (llama_cpp.server's own error body) and forwards the rest; yields its URL and the statuses
    it answered."""
    answered: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if len(answered) < failures:
                answered.append(500)
                error = {"message": "llama_decode returned -3", "type": "internal_server_error",
                         "param": None, "code": None}  # fmt: skip
                payload = json.dumps({"error": error}).encode()
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            request = urllib.request.Request(upstream + self.path.removeprefix("/v1"), data=body,
                                             headers={"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(request) as response:
                answered.append(response.status)
                self.send_response(response.status)
                self.send_header("Content-Type", response.headers["Content-Type"])
                self.end_headers()  # HTTP/1.0: the body ends when the connection closes
                try:
                    while block := response.read1(4096):
                        self.wfile.write(block)
                        self.wfile.flush()
                except (http.client.IncompleteRead, OSError):
                    pass  # the server died: the body ends here, as far as the client can tell

        def log_message(self, *args) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}/v1", answered
    finally:
        proxy.shutdown()


def test_one_500_is_retried_and_two_are_a_clear_error(server, tmp_path: Path, caplog):
    _, url = server
    _fresh(url)
    direct = "".join(_llm(url).stream(SHORT, "", []))
    _fresh(url)
    with _proxy(url, failures=1) as (proxy, answered):
        assert "".join(_llm(proxy).stream(SHORT, "", [])) == direct
    assert answered == [500, 200], "the backend retries once"

    with _proxy(url, failures=2) as (proxy, answered):
        with pytest.raises(ModelServerError) as failed:
            list(_llm(proxy).stream(SHORT, "", []))
        assert answered == [500, 500]
        assert f"the model server at {proxy} answered 500: llama_decode returned -3" in str(failed.value)

    with _proxy(url, failures=2) as (proxy, answered):
        client = local_client(app(tmp_path, llm=_llm(proxy)))
        with caplog.at_level(logging.ERROR, logger="rag.api"):
            asked = client.post("/v1/ask", json={"question": QUESTION})
    assert asked.status_code == 500 and asked.json()["error"]["message"]
    assert "answered 500: llama_decode returned -3" in caplog.text
