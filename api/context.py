"""What the routes share: the parts of one app, and the answer path the native and OpenAI routes
both take (question check, generation slot, metrics, errors)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import tiktoken

from api.auth import Auth
from api.errors import GENERATION_FAILED, ApiError
from api.metrics import Metrics
from index.library import Library
from rag.answer import Answerer
from rag.gate import GenerationGate, Permit
from rag.question import question_problem
from rag.records import Answer, Mode, Turn
from rag.retrieval import Retriever
from rag.settings import Settings

log = logging.getLogger("rag.api")


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    answerer: Answerer
    library: Library
    gate: GenerationGate
    metrics: Metrics
    auth: Auth
    encoding: tiktoken.Encoding

    @property
    def retriever(self) -> Retriever:
        return self.answerer.retriever

    def question_ok(self, text: str, param: str) -> str:
        if problem := question_problem(text, self.settings.max_question_chars):
            raise ApiError(422, f"{param}: {problem}", param=param)
        return text

    def generate(self, question: str, history: list[Turn], mode: Mode | None, top_k: int | None) -> Answer:
        permit = self.gate.acquire()
        try:
            answer = self.answerer.ask(question, history, mode, top_k)
        except Exception as exc:
            log.exception("answer failed")
            self.metrics.errors.labels("answer").inc()
            raise ApiError(500, GENERATION_FAILED, "server_error") from exc
        finally:
            permit.release()
        self.metrics.observe(answer)
        return answer

    def streamed(self, question: str, history: list[Turn], mode: Mode | None, top_k: int | None,
                 permit: Permit) -> Iterator[str | Answer]:  # fmt: skip
        """The answer's events; the caller turns a failure mid-stream into an error event (the
        headers are already sent)."""
        try:
            for event in self.answerer.stream(question, history, mode, top_k):
                if isinstance(event, Answer):
                    self.metrics.observe(event)
                yield event
        except Exception:
            log.exception("answer stream failed")
            self.metrics.errors.labels("answer").inc()
            raise
        finally:
            permit.release()
