"""Reading a question on its own: kind, expected answer, content words, leaning on context."""

from __future__ import annotations

import pytest

from rag.question import analyse, content_words, names


@pytest.mark.parametrize(
    ("question", "kind", "expects"),
    [
        ("How much non fissile capacity does India need?", "factoid", "number"),
        ("When was the deal announced?", "factoid", "date"),
        ("In which year did KABIL sign its first deal?", "factoid", "date"),
        ("Who heads KABIL?", "factoid", "name"),
        ("Which city hosts the plant?", "factoid", "name"),
        ("Which deal shows why India needs China's expertise?", "factoid", None),
        ("Why is relying on one country dangerous?", "explain", None),
        ("How is India learning battery technology?", "explain", None),
        ("What does the author say about refining capacity?", "explain", None),
        ("Summarize the comments on the deal.", "summary", None),
        ("tl;dr of the thread?", "summary", None),
        ("What is the post about?", "summary", None),
        ("Give me the main points of the article on Warsaw.", "summary", None),
    ],
)
def test_kind_and_expected_answer(question, kind, expects):
    asked = analyse(question)
    assert (asked.kind, asked.expects) == (kind, expects)


def test_content_words_leave_out_framing_and_the_answer_kind():
    assert content_words("What does the author say about refining capacity?") == ["refining", "capacity"]
    assert content_words("How long does each link of the chain take?") == ["link", "chain", "take"]
    assert content_words("In which city is CALB headquartered?") == ["calb", "headquartered"]
    assert content_words("Summarize the post.") == []


def test_names_are_numbers_and_capitalised_words_not_at_a_sentence_start():
    assert names("What did Ashok Leyland pay CALB in 2023?") == ["ashok", "leyland", "calb", "2023"]
    assert names("Which deal is it?") == []


@pytest.mark.parametrize(
    ("question", "leans"),
    [
        ("And what about recycling?", True),
        ("What does it say about the risks?", True),
        ("Why?", True),
        ("What is the capital of Peru?", False),
        ("Which countries should India align with for diversification?", False),
    ],
)
def test_leaning_on_the_conversation(question, leans):
    assert analyse(question).leans_on_context is leans
