"""`LocalLLM.stream` with the packaged SmolLM2: a stalled reader does not hold the model, and
closing a stream stops llama-cpp's generation (a few dozen tokens each, cheap on two cores)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from rag.gguf import model_path
from rag.llm import LocalLLM, Message
from rag.settings import Settings

PROMPT = [Message("user", "Write a long story about a lighthouse keeper and the sea.")]
MAX_TOKENS = 40


class Counted:
    """The real llama-cpp model, counting the chunks it streams. With `hold` set, it waits after
    its first piece of text until `go_on`, so a test knows how far the model got."""

    def __init__(self, llama) -> None:
        self.llama = llama
        self.hold = False
        self.go_on = threading.Event()
        self.produced = 0
        self.finished = threading.Event()

    def create_chat_completion(self, **kwargs) -> Iterator[dict]:
        self.produced = 0
        self.finished.clear()
        chunks = self.llama.create_chat_completion(**kwargs)

        def counted() -> Iterator[dict]:
            texts = 0
            try:
                for chunk in chunks:
                    self.produced += 1
                    yield chunk
                    texts += bool(chunk["choices"][0]["delta"].get("content"))
                    if self.hold and texts == 1:
                        assert self.go_on.wait(60), "the test never let the model go on"
            finally:
                chunks.close()
                self.finished.set()

        return counted()


@pytest.fixture(scope="module")
def counted(tmp_path_factory) -> tuple[LocalLLM, Counted]:
    tmp = tmp_path_factory.mktemp("local-stream")
    settings = Settings(_env_file=None, data_dir=tmp, llm="local", llm_max_tokens=MAX_TOKENS)
    loaded = LocalLLM.load(model_path("smollm2", tmp / "models"), settings)
    engine = Counted(loaded.engine)
    return LocalLLM(engine, loaded.model, settings), engine


def test_closing_the_stream_stops_the_real_generation(counted):
    llm, engine = counted
    full = list(llm.stream(PROMPT, "", []))
    assert engine.finished.wait(60)
    whole = engine.produced
    assert whole > 10, (whole, "".join(full))  # a story runs on: a long generation to cut

    engine.hold = True  # the model waits after its first piece of text
    stream = llm.stream(PROMPT, "", [])
    first = next(stream)
    upto = engine.produced  # chunks up to and including that first piece
    stream.close()  # the client went away
    engine.go_on.set()  # the model could now run to the end, were it still asked to
    assert engine.finished.wait(60)
    engine.hold = False
    assert first and engine.produced <= upto + 1 < whole, (upto, engine.produced, whole)


def test_a_stalled_reader_does_not_hold_the_model(counted):
    llm, _ = counted
    stalled = llm.stream(PROMPT, "", [])
    next(stalled)  # this client reads no more
    second: list[str] = []
    reader = threading.Thread(target=lambda: second.extend(llm.stream(PROMPT, "", [])), daemon=True)
    reader.start()
    reader.join(120)  # a deadline against a hang, not a timing check
    assert not reader.is_alive(), "the second stream waited for the stalled reader"
    assert "".join(second).strip()
    stalled.close()
