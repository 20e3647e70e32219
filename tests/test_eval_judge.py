"""The optional LLM judge, run by a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import pytest

from eval.cases import Case
from eval.judge import Judge
from rag.records import Answer, Source
from rag.settings import Settings
from support.fake_openai import fake_openai


def _verdict(body: dict) -> str:
    prompt = " ".join(str(m["content"]) for m in body["messages"])
    # CorrectnessEvaluator wants the score on the first line; FaithfulnessEvaluator YES or NO.
    return "4.5\nMatches the reference." if "reference answer" in prompt.lower() else "YES"


def _answer() -> Answer:
    text = "India is thinking of adding refining capacity."
    source = Source(
        n=1, id="d::v::0", doc_id="corpus/a.txt", path="/a.txt", title="a", chunk=0, char_start=0,
        char_end=len(text), text=text, quote=text, quote_start=0, quote_end=len(text), score=0.9, cited=True,
    )  # fmt: skip
    return Answer(
        question="Refining?", condensed_query="Refining?", answer="India may add refining capacity [1].",
        refused=False, sources=[source], backend="extractive", model="extractive",
    )  # fmt: skip


def test_judge_scores_correctness_and_faithfulness():
    with fake_openai(_verdict) as (url, requests):
        judge = Judge(Settings(_env_file=None, judge_base_url=url, judge_model="judge-1"))
        case = Case(id="c", question="Refining?", answers=["India is adding refining capacity"])
        scores = judge.score(case, _answer())
    assert scores == {"judge_correctness": 4.5, "judge_faithful": 1.0}
    assert {r["model"] for r in requests} == {"judge-1"}
    assert len(requests) >= 2


def test_judge_skips_refusals_and_needs_a_url():
    with pytest.raises(ValueError, match="RAG_JUDGE_BASE_URL"):
        Judge(Settings(_env_file=None))
    with fake_openai(_verdict) as (url, requests):
        refused = _answer().model_copy(update={"refused": True})
        assert (
            Judge(Settings(_env_file=None, judge_base_url=url)).score(Case(id="c", question="q"), refused)
            == {}
        )
        assert requests == []
