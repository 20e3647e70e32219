"""`LocalLLM.stream` over a small fake of llama-cpp's chat engine: a reader that stops reading
holds no one up, closing the stream stops the generation, and errors reach the reader."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from rag.llm import LocalLLM, Message
from rag.settings import Settings

PROMPT = [Message("user", "Count, please.")]


class CountingEngine:
    """Streams chat chunks as llama-cpp does (a role chunk, one per token, a finish chunk),
    counting the tokens it generates. With `paced`, each token waits for a `pace` release, so a
    test decides how far the generation may go."""

    def __init__(self, paced: bool = False, fail_after: int | None = None) -> None:
        self.paced = paced
        self.fail_after = fail_after
        self.pace = threading.Semaphore(0)
        self.produced = 0
        self.closed_early = False  # the generator was closed before its last token
        self.finished = threading.Event()  # the generator is done, one way or another

    def create_chat_completion(
        self, *, messages, stream, temperature, repeat_penalty, max_tokens
    ) -> Iterator:
        assert stream and messages == [{"role": "user", "content": "Count, please."}]

        def chunks() -> Iterator[dict]:
            try:
                yield {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}
                for i in range(max_tokens):
                    if self.paced:
                        assert self.pace.acquire(timeout=30), "the test never let the next token go"
                    if i == self.fail_after:
                        raise RuntimeError("llama_decode returned -1")
                    self.produced += 1
                    yield {"choices": [{"delta": {"content": f"w{i} "}, "finish_reason": None}]}
                yield {"choices": [{"delta": {}, "finish_reason": "length"}]}
            except GeneratorExit:
                self.closed_early = True
                raise
            finally:
                self.finished.set()

        return chunks()


def local_llm(engine: CountingEngine, max_tokens: int) -> LocalLLM:
    return LocalLLM(engine, "fake.gguf", Settings(_env_file=None, llm_max_tokens=max_tokens))


def test_a_reader_that_stops_reading_does_not_block_the_next_stream():
    llm = local_llm(CountingEngine(), max_tokens=40)
    stalled = llm.stream(PROMPT, "q", [])
    assert next(stalled) == "w0 "  # and then this client reads no more, and never closes

    second: list[str] = []
    reader = threading.Thread(target=lambda: second.extend(llm.stream(PROMPT, "q", [])), daemon=True)
    reader.start()
    reader.join(30)  # a deadline against a hang, not a timing check
    assert not reader.is_alive(), "the second stream waited for the stalled reader"
    assert "".join(second) == "".join(f"w{i} " for i in range(40))
    # The stalled reader's answer was generated in full meanwhile; it is there when it reads on.
    assert "".join(stalled) == "".join(f"w{i} " for i in range(1, 40))


def test_closing_the_stream_stops_the_generation():
    engine = CountingEngine(paced=True)
    llm = local_llm(engine, max_tokens=500)
    stream = llm.stream(PROMPT, "q", [])
    engine.pace.release()
    assert next(stream) == "w0 "
    stream.close()  # the client went away
    engine.pace.release(500)  # the model could now run to the end, were it still asked to
    assert engine.finished.wait(30)
    assert engine.closed_early and engine.produced <= 2, engine.produced  # the token in flight at most

    # The model is free again: a new stream runs to its end.
    engine.paced = False
    assert len(list(llm.stream(PROMPT, "q", []))) == 500


def test_a_generation_error_reaches_the_reader_after_the_text_before_it():
    engine = CountingEngine(fail_after=3)
    llm = local_llm(engine, max_tokens=10)
    got: list[str] = []
    with pytest.raises(RuntimeError, match="llama_decode"):
        got.extend(llm.stream(PROMPT, "q", []))
    assert got == ["w0 ", "w1 ", "w2 "]
    engine.fail_after = None
    assert len(list(llm.stream(PROMPT, "q", []))) == 10  # the failed generation gave the model back
