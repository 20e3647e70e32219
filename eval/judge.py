"""Optional LLM-as-judge: LlamaIndex's CorrectnessEvaluator and FaithfulnessEvaluator, run by a
model behind an OpenAI-compatible URL (`RAG_JUDGE_BASE_URL`). Off unless configured; its scores
are reported under `judge_*` names, apart from the deterministic metrics."""

from __future__ import annotations

from eval.cases import Case
from rag.records import Answer
from rag.settings import Settings


class Judge:
    def __init__(self, settings: Settings) -> None:
        from llama_index.core.evaluation import CorrectnessEvaluator, FaithfulnessEvaluator
        from llama_index.llms.openai_like import OpenAILike

        if not settings.judge_base_url:
            raise ValueError("the LLM judge needs RAG_JUDGE_BASE_URL (an OpenAI-compatible server)")
        llm = OpenAILike(
            model=settings.judge_model or "default",
            api_base=settings.judge_base_url,
            api_key=settings.judge_api_key.get_secret_value() if settings.judge_api_key else "not-needed",
            is_chat_model=True,
            context_window=8192,
            timeout=settings.llm_timeout,
            max_retries=1,
        )
        self.model = settings.judge_model or "default"
        self._correctness = CorrectnessEvaluator(llm=llm)
        self._faithfulness = FaithfulnessEvaluator(llm=llm)

    def score(self, case: Case, answer: Answer) -> dict[str, float]:
        """`judge_correctness` (1-5) against the first accepted answer, `judge_faithful` (0/1)."""
        if answer.refused:
            return {}
        scores: dict[str, float] = {}
        if case.answers:
            result = self._correctness.evaluate(
                query=case.question, response=answer.answer, reference=case.answers[0]
            )
            if result.score is not None:
                scores["judge_correctness"] = float(result.score)
        contexts = [s.text for s in answer.sources if s.cited] or [s.text for s in answer.sources]
        if contexts:
            result = self._faithfulness.evaluate(
                query=case.question, response=answer.answer, contexts=contexts
            )
            if result.passing is not None:
                scores["judge_faithful"] = float(result.passing)
        return scores
