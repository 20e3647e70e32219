"""Evaluation cases and the readers that turn case files into them.

Three formats, told apart by their content:

- ours (JSONL): `id`, `question`, optional `history` ([{question, answer}]), `answers` (any-of),
  `answerable`, optional `gold_doc` (file name), `gold_quotes` (any-of; a retrieved chunk must
  contain one), `must_mention`, `must_not_mention`, `tags`;
- the SQuAD-derived set (JSONL with `doc`, `paragraph`, `context`): the answers are the gold
  quotes, and the gold document is `doc`;
- LlamaIndex `LabelledRagDataset` (`rag_dataset.json`): `query`, `reference_answer`,
  `reference_contexts` (a chunk is relevant when it overlaps one of them).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from pydantic import BaseModel, Field

from rag.feedback import Feedback
from rag.records import Turn

CASES = Path(__file__).resolve().parent / "cases"  # the shipped case files and their corpora


class Case(BaseModel):
    id: str
    question: str
    history: list[Turn] = Field(default_factory=list)
    answers: list[str] = Field(default_factory=list, description="accepted answers, any-of")
    answerable: bool = True
    gold_doc: str | None = Field(None, description="file name of the document that holds the answer")
    gold_quotes: list[str] = Field(default_factory=list, description="a relevant chunk contains one")
    gold_contexts: list[str] = Field(default_factory=list, description="a relevant chunk overlaps one")
    must_mention: list[str] = Field(default_factory=list)
    must_not_mention: list[str] = Field(default_factory=list, description="e.g. what an injection asks for")
    tags: list[str] = Field(default_factory=list)

    @property
    def has_retrieval_gold(self) -> bool:
        return self.answerable and bool(self.gold_doc or self.gold_quotes or self.gold_contexts)

    def is_relevant(self, doc_id: str, text: str) -> bool:
        """Does a retrieved chunk (its document id and text) hold this case's answer?"""
        if self.gold_doc and Path(doc_id).name != self.gold_doc:
            return False
        if self.gold_quotes and not any(q in text for q in self.gold_quotes):
            return False
        if self.gold_contexts and not any(_overlaps(text, c) for c in self.gold_contexts):
            return False
        return self.has_retrieval_gold


Kind = str  # "answerable", "summary" (answerable), "on-topic" or "off-topic" (unanswerable)


def case_kind(case: Case) -> Kind:
    """What a case tests, for refusal split by kind: tags say summary and off-topic; other
    unanswerable cases are on-topic (about what the documents discuss, not answered there)."""
    if case.answerable:
        return "summary" if "summary" in case.tags else "answerable"
    return "off-topic" if "off-topic" in case.tags else "on-topic"


def _overlaps(chunk: str, context: str, probe: int = 80) -> bool:
    return chunk[:probe] in context or context[:probe] in chunk


def _squad(record: dict) -> Case:
    return Case(
        id=record["id"],
        question=record["question"],
        answers=record["answers"],
        answerable=record["answerable"],
        gold_doc=record["doc"],  # unanswerable ones too: the article they were written against
        gold_quotes=record["answers"] if record["answerable"] else [],
        tags=["squad", "answerable" if record["answerable"] else "unanswerable"],
    )


def _labelled_rag(data: dict) -> list[Case]:
    return [
        Case(
            id=f"lrd-{i}",
            question=example["query"],
            answers=[example["reference_answer"]] if example.get("reference_answer") else [],
            gold_contexts=example.get("reference_contexts") or [],
            tags=["labelled-rag-dataset"],
        )
        for i, example in enumerate(data["examples"])
    ]


def read_cases(path: Path) -> list[Case]:
    """Read a case file in any of the three formats; errors name the file and line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if "examples" not in data:
            raise ValueError(f"{path}: a .json case file must be a LabelledRagDataset with 'examples'")
        return _labelled_rag(data)
    cases = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            cases.append(
                _squad(record) if {"doc", "paragraph", "context"} <= record.keys() else Case(**record)
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a valid case ({exc})") from exc
    return cases


def cases_from_feedback(entries: list[Feedback]) -> list[dict]:
    """Thumbs-down answers as draft cases (JSONL records of our format).

    The question, its history and a tag are known; what the right answer is is not. Each record
    keeps the rejected answer and the comment under `review`, for whoever adds `answers` (or sets
    `answerable: false`) before the case joins a gold set; `read_cases` ignores `review`.
    """
    return [
        {
            "id": f"feedback-{entry.id}",
            "question": entry.answer.question,
            "history": [t.model_dump() for t in entry.history],
            "answers": [],
            "answerable": True,
            "tags": ["feedback", "needs-review"],
            "review": {
                "rejected_answer": entry.answer.answer,
                "refused": entry.answer.refused,
                "comment": entry.comment,
                "cited": sorted({s.doc_id for s in entry.answer.sources if s.cited}),
                "created_at": entry.created_at,
            },
        }
        for entry in entries
        if entry.rating == "down"
    ]


def sample(cases: list[Case], limit: int | None, seed: int) -> list[Case]:
    """A reproducible sample: shuffled with `seed`, then the first `limit`."""
    if limit is None or limit >= len(cases):
        return cases
    chosen = list(cases)
    random.Random(seed).shuffle(chosen)
    return chosen[:limit]
