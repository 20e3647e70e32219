"""Case files: the hand-written gold set and the three readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.cases import read_cases, sample
from index.clean import clean_text

REPO = Path(__file__).resolve().parent.parent
GOLD = REPO / "eval" / "cases" / "sample.jsonl"


def test_gold_set_is_big_and_varied_enough():
    cases = read_cases(GOLD)
    assert len(cases) >= 25
    tags = {t for c in cases for t in c.tags}
    assert {"factoid", "author", "paraphrase", "follow-up", "unanswerable", "injection"} <= tags
    assert any(c.history for c in cases)
    assert len({c.id for c in cases}) == len(cases)


def test_every_gold_quote_is_in_its_cleaned_document():
    docs = REPO / "eval" / "cases" / "docs"
    for case in read_cases(GOLD):
        if not case.answerable:
            assert not case.gold_quotes, case.id
            continue
        text = clean_text((docs / case.gold_doc).read_text()).text
        for quote in case.gold_quotes:
            assert quote in text, (case.id, quote)


def test_squad_derived_records(tmp_path: Path):
    path = tmp_path / "questions.jsonl"
    rows = [
        {"id": "a", "question": "When?", "answers": ["1973"], "answerable": True, "doc": "oil.txt",
         "paragraph": 0, "context": "In 1973 ..."},
        {"id": "b", "question": "Who?", "answers": [], "answerable": False, "doc": "oil.txt",
         "paragraph": 1, "context": "..."},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows))
    answerable, unanswerable = read_cases(path)
    assert (answerable.gold_doc, answerable.gold_quotes) == ("oil.txt", ["1973"])
    assert answerable.is_relevant("docs/oil.txt", "The crisis of 1973 began")
    assert not answerable.is_relevant("docs/other.txt", "The crisis of 1973 began")
    assert not unanswerable.has_retrieval_gold


def test_labelled_rag_dataset(tmp_path: Path):
    path = tmp_path / "rag_dataset.json"
    context = "Refining capacity is being added in several states, according to the ministry report."
    example = {
        "query": "Is refining capacity growing?",
        "reference_answer": "Yes",
        "reference_contexts": [context],
    }
    path.write_text(json.dumps({"examples": [example]}))
    (case,) = read_cases(path)
    assert case.answers == ["Yes"]
    assert case.is_relevant("x/report.txt", context[:120])
    assert not case.is_relevant("x/report.txt", "Something else entirely, about weather and rain.")


def test_a_bad_line_is_named(tmp_path: Path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "ok", "question": "fine?"}\n{"id": "broken"\n')
    with pytest.raises(ValueError, match=r"cases.jsonl:2"):
        read_cases(path)


def test_sample_is_reproducible():
    cases = read_cases(GOLD)
    assert [c.id for c in sample(cases, 5, seed=7)] == [c.id for c in sample(cases, 5, seed=7)]
    assert [c.id for c in sample(cases, 5, seed=7)] != [c.id for c in sample(cases, 5, seed=8)]
    assert sample(cases, None, 7) == cases
