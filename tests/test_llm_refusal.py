"""The model's own "not in the documents": recognised when that is the whole reply, not when an
answer merely contains the words."""

from __future__ import annotations

import pytest

from prompts import render
from rag.llm import says_it_does_not_know


@pytest.mark.parametrize(
    "reply",
    [
        render("refusal"),
        "I don't know.",
        "The passages do not mention the 2031 target. I cannot answer that from them.",
        "  The documents don't contain any information about cobalt prices.  ",
    ],
)
def test_a_reply_that_only_declines_is_the_models_refusal(reply: str):
    assert says_it_does_not_know(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "The survey found no information gaps in the supply data [1].",
        "There is no information on cobalt in the report, but lithium refining grew 30 % [2].",
        "China refines most lithium [1]. The documents do not mention Chile's share.",
        "There is no information on cobalt, but lithium refining grew 30 %.",
        "",
    ],
)
def test_an_answer_that_merely_contains_the_words_is_an_answer(reply: str):
    assert not says_it_does_not_know(reply)
