"""The answer path with real Chroma, BM25 and the hash embedder; LLMs are small real fakes."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from index.clean import clean_text
from rag.answer import Answerer
from rag.extractive import ExtractiveComposer
from rag.llm import Message
from rag.records import Answer, Turn
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.support import SupportChecker

QUESTION = "What does the author say about refining capacity?"


class ScriptedLLM:
    """A generative backend that says what it is told and records every prompt it got."""

    backend = "scripted"
    model = "scripted-1"
    generative = True

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[Sequence[Message]] = []

    def stream(self, messages: Sequence[Message], question: str, passages: Sequence[str]) -> Iterator[str]:
        self.prompts.append(messages)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        for word in reply.split(" "):
            yield word + " "


@pytest.fixture
def build(make_ingestor, corpus: Path, tmp_path: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])

    def answerer(llm=None, **overrides) -> Answerer:
        # The hash embedder's cosines run lower than MiniLM's: its own refusal threshold.
        settings = Settings(
            _env_file=None, **({"answerability_threshold": 0.05, "llm": "extractive"} | overrides)
        )
        retriever = Retriever(ingestor.store, ingestor.embedder, tmp_path / "bm25")
        checker = SupportChecker(ingestor.embedder, settings.support_threshold)
        return Answerer(retriever, llm or ExtractiveComposer(checker), checker, settings)

    return answerer


def _cleaned(path: str) -> str:
    return clean_text(Path(path).read_text()).text


def test_extractive_answer_cites_an_exact_quote_from_the_right_document(build):
    answer = build().ask(QUESTION)
    assert not answer.refused, (answer.refusal_reason, answer.sentences)
    cited = [s for s in answer.sources if s.cited]
    assert cited and all(s.doc_id.endswith("000_6aae78438c92dd18.txt") for s in cited)
    for source in cited:
        assert "refining" in source.quote
        assert _cleaned(source.path)[source.quote_start : source.quote_end] == source.quote
    assert all(s.supported for s in answer.sentences)


def test_off_topic_question_is_refused_without_calling_the_llm(build):
    llm = ScriptedLLM("Lima is the capital of Peru [1].")
    answer = build(llm).ask("zeppelin airship helium mooring mast")
    assert answer.refused
    assert llm.prompts == []
    assert answer.refusal_reason.startswith("answerability ")
    assert answer.answerability and answer.answerability.probability < answer.answerability.threshold
    assert set(answer.answerability.features) >= {"dense_best", "soft_coverage", "names_missing"}
    assert answer.answer == "The documents don't contain an answer to that."
    assert answer.sources, "a refusal still shows the closest sources"


def test_invented_sentence_is_marked_unsupported_and_bad_citations_dropped(build):
    llm = ScriptedLLM(
        "India is thinking of adding refining capacity [1]. "
        "The moon is made of green cheese and orbits Jupiter [7]."
    )
    answer = build(llm).ask(QUESTION)
    assert not answer.refused
    first, second = answer.sentences
    assert first.supported and first.citations
    assert not second.supported
    assert 7 not in second.citations, "passage 7 does not exist"


def test_answer_with_no_supported_sentence_is_a_refusal(build):
    answer = build(ScriptedLLM("The moon is made of green cheese.")).ask(QUESTION)
    assert answer.refused
    assert answer.refusal_reason == "no sentence is supported by the passages"
    assert answer.sentences and not answer.sentences[0].supported
    assert answer.sources


def test_model_saying_it_does_not_know_is_a_refusal(build):
    answer = build(ScriptedLLM("The documents don't contain an answer to that.")).ask(QUESTION)
    assert answer.refused
    assert answer.refusal_reason == "the model found no answer"


def test_uncited_supported_sentence_gets_the_checker_citation(build):
    answer = build(ScriptedLLM("India is thinking of adding refining capacity.")).ask(QUESTION)
    (sentence,) = answer.sentences
    assert sentence.supported and len(sentence.citations) == 1
    source = answer.sources[sentence.citations[0] - 1]
    assert source.cited and "refining capacity" in source.quote


def test_stream_yields_text_then_the_same_answer_as_ask(build):
    answerer = build()
    events = list(answerer.stream(QUESTION))
    *text, final = events
    assert all(isinstance(t, str) for t in text) and isinstance(final, Answer)
    assert "".join(text).strip() == final.answer
    again = answerer.ask(QUESTION)
    volatile = {"timings", "created_at"}
    assert final.model_dump(exclude=volatile) == again.model_dump(exclude=volatile)


def test_follow_up_is_condensed_through_a_generative_llm(build):
    llm = ScriptedLLM(
        "Is India adding refining capacity?", "India is thinking of adding refining capacity [1]."
    )
    history = [
        Turn(
            question="What does the author say about India and batteries?",
            answer="India needs China's expertise.",
        )
    ]
    answer = build(llm).ask("and refining?", history)
    assert answer.condensed_query == "Is India adding refining capacity?"
    condense_prompt = llm.prompts[0][-1].content
    assert "India and batteries" in condense_prompt and "and refining?" in condense_prompt


def test_follow_up_without_a_generative_llm_carries_the_last_question(build):
    history = [Turn(question="What does the author say about refining capacity?", answer="...")]
    answer = build().ask("and recycling?", history)
    assert answer.condensed_query == "What does the author say about refining capacity? and recycling?"


def test_context_is_packed_within_the_token_budget(build):
    from rag.tokens import get_encoding

    llm = ScriptedLLM("India is thinking of adding refining capacity [1].")
    answer = build(llm, context_tokens=64).ask(QUESTION)
    assert len(answer.sources) == 1, "the first passage always fits; the next would exceed 64 tokens"
    prompt = llm.prompts[-1][-1].content
    assert re.findall(r"^\[(\d+)\] ", prompt, flags=re.M) == ["1"]
    assert len(get_encoding().encode(answer.sources[0].text)) > 64


def test_answer_record_carries_settings_index_version_and_timings(build):
    answer = build().ask(QUESTION)
    assert answer.settings["retrieval_mode"] == "hybrid"
    assert answer.settings["answerability_threshold"] == 0.05
    assert len(answer.index_version) == 16
    assert {"retrieve", "assess", "compose", "check", "total"} <= answer.timings.keys()
    assert answer.backend == "extractive"


def test_empty_question_is_an_error(build):
    with pytest.raises(ValueError, match="empty"):
        build().ask("   ")


def test_a_model_citation_to_a_passage_that_does_not_support_is_replaced(build):
    sources = build().ask(QUESTION).sources
    good = next(s.n for s in sources if "refining capacity" in s.text)
    bad = next(s.n for s in sources if "refining" not in s.text)
    answer = build(ScriptedLLM(f"India is thinking of adding refining capacity [{bad}].")).ask(QUESTION)
    assert answer.sentences[0].citations == [good]


@pytest.mark.parametrize("mode", ["dense", "bm25"])
def test_every_retrieval_mode_can_answer(build, mode):
    answer = build().ask(QUESTION, mode=mode)
    assert not answer.refused, answer.refusal_reason
    assert answer.settings["retrieval_mode"] == mode


@pytest.mark.parametrize("question", ["the of and to?", "???", "... !!"])
def test_a_question_of_only_stopwords_or_punctuation_is_refused_with_its_reason(build, question):
    llm = ScriptedLLM("anything [1].")
    answer = build(llm).ask(question)
    assert answer.refused and answer.refusal_reason == "the question has no content words to look up"
    assert llm.prompts == []


def test_a_question_longer_than_the_embedders_window_is_still_answered(build):
    long_question = QUESTION + " " + " ".join(["Please consider the whole comment thread carefully."] * 60)
    answerer = build(answerability_threshold=0.01)
    assert not answerer.retriever.embedder.fits(long_question)
    answer = answerer.ask(long_question)
    assert not answer.refused, answer.refusal_reason
    assert any("refining" in s.text for s in answer.sentences)


def test_extractive_answer_records_how_it_was_shaped_and_why_it_passed(build):
    answer = build().ask(QUESTION)
    assert answer.composition and answer.composition.question_kind == "explain"
    assert answer.composition.candidates >= len(answer.composition.picks) >= 1
    assert [s.text for s in answer.sentences] == [p.text for p in answer.composition.picks]
    assert answer.answerability and answer.answerability.answerable
    texts = [s.text for s in answer.sentences]
    assert len(texts) == len(set(texts))


def test_a_follow_up_that_stands_on_its_own_is_not_mixed_with_the_last_question(build):
    history = [Turn(question=QUESTION, answer="India is thinking of adding refining capacity. [1]")]
    answer = build().ask("Which countries should India align with for diversification?", history)
    assert answer.condensed_query == "Which countries should India align with for diversification?"


def test_a_follow_up_does_not_repeat_the_previous_answer_unless_asked_again(build):
    answerer = build()
    first = answerer.ask(QUESTION)
    history = [Turn(question=QUESTION, answer=first.answer)]
    follow_up = answerer.ask("And what about recycling?", history)
    said = {s.text for s in first.sentences}
    assert not follow_up.refused, follow_up.refusal_reason
    assert said.isdisjoint(s.text for s in follow_up.sentences)
    again = answerer.ask(QUESTION, history)
    assert [s.text for s in again.sentences] == [s.text for s in first.sentences]


def test_extractive_refuses_when_no_passage_sentence_answers_even_past_answerability(build):
    answer = build(answerability_threshold=0.0).ask("zeppelin airship helium mooring mast")
    assert answer.answerability and answer.answerability.answerable
    assert answer.refused and answer.refusal_reason == "no sentence of the passages answers it"
    assert answer.composition is not None and answer.composition.picks == []


def test_carry_topic_walks_back_to_the_last_question_that_stood_on_its_own():
    from rag.answer import carry_topic

    earlier = [
        "Which deal shows why India needs China's expertise?",
        "What does the author say about refining capacity?",
        "And recycling?",
    ]
    assert carry_topic("What does it say about the risks?", earlier) == " ".join(
        [*earlier[1:], "What does it say about the risks?"]
    )
    assert (
        carry_topic("Which countries should India align with?", earlier)
        == "Which countries should India align with?"
    )
    assert carry_topic("And cells?", []) == "And cells?"
