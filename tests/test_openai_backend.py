"""The `openai` backend against a tiny OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.answer import Answerer
from rag.llm import OpenAILLM, build_llm
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.support import SupportChecker
from support.fake_openai import fake_openai


def _first_passage_sentence(body: dict) -> str:
    """Echo the first sentence of passage [1] with its citation: a grounded answer."""
    first = re.search(r"^\[1\] (.+?[.?!])", body["messages"][-1]["content"], flags=re.M)
    return f"{first.group(1)} [1]" if first else "The documents don't contain an answer to that."


@pytest.fixture
def fake_server() -> Iterator[tuple[str, list[dict]]]:
    with fake_openai(_first_passage_sentence) as server:
        yield server


def test_openai_backend_streams_a_grounded_answer(make_ingestor, corpus: Path, tmp_path: Path, fake_server):
    url, requests = fake_server
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    settings = Settings(
        _env_file=None, llm="openai", llm_base_url=url, llm_model="team-model", llm_api_key="sk-test",
        answerability_threshold=0.05,
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
    (request,) = requests
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "team-model" and request["stream"] is True
    assert request["auth"] == "Bearer sk-test"
    assert request["messages"][0]["role"] == "system"


def test_openai_backend_needs_a_base_url():
    with pytest.raises(ValueError, match="RAG_LLM_BASE_URL"):
        OpenAILLM(Settings(_env_file=None, llm="openai"))
