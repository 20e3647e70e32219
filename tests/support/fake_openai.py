"""A tiny OpenAI-compatible chat completions server on 127.0.0.1, for tests.

`reply(body) -> str` decides the answer; streaming requests get it word by word as SSE chunks,
then a chunk with the finish reason and `[DONE]`; others get one chat.completion object. Every
request is recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def fake_openai(reply: Callable[[dict], str]) -> Iterator[tuple[str, list[dict]]]:
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            text = reply(body)
            self.send_response(200)
            if body.get("stream"):
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                # Word by word, then the empty delta with the finish reason that real servers end on.
                deltas = [({"content": word + " "}, None) for word in text.split(" ")] + [({}, "stop")]
                for delta, finish in deltas:
                    choice = {"index": 0, "delta": delta, "finish_reason": finish}
                    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0}
                    chunk |= {"model": body["model"], "choices": [choice]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                return
            message = {"role": "assistant", "content": text}
            payload = json.dumps(
                {
                    "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            )  # fmt: skip
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())

        def log_message(self, *args) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    finally:
        server.shutdown()
