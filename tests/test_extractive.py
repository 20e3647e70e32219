"""The extractive composer: no fragment, no repeat, shaped by the question, exact quotes."""

from __future__ import annotations

import pytest

from rag.embeddings import hash_embedder
from rag.extractive import ExtractiveComposer, clauses, fragment_reason, said
from rag.question import analyse
from rag.support import Quote, SupportChecker

THREAD = (
    "This is a great read. The Ashok Leyland–CALB deal shows why India still needs China’s expertise "
    "for batteries. There are risks, but learning from them is the fastest way to build domestic skills."
)
POST = (
    "What is holding things back? Core technology.\n\nThe lithium battery industry chain is far more "
    "complex than most people imagine. Each link is a threshold built up over ten or twenty years. "
    "Chinese companies have established advantages in three key areas: mass production processes, raw "
    "material processing, and precision equipment."
)


@pytest.fixture(scope="module")
def composer() -> ExtractiveComposer:
    return ExtractiveComposer(SupportChecker(hash_embedder()))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Core technology.", "fewer than 3 words"),
        ("⚡🇮🇳", "fewer than 3 words"),
        ("What is holding things back?", "a question"),
        ("Trade Crypto Anywhere Anytime", "a heading"),
        ("Reward • Repost • Share • Comment • Follow • Like • Report • Copy • Link.", "a keyword list"),
        ("DegenGamblervip · 5h ago Having more money doesn't help.", "page junk"),
        (" ".join(["word"] * 90) + ".", "a block, not a sentence"),
        ("The lithium battery industry chain is far more complex than most people imagine.", None),
        ("Sales of COVID19 tests and mp3 players rose sharply in 2021.", None),
    ],
)
def test_fragments_are_named(text, reason):
    assert fragment_reason(text) == reason


def test_long_sentences_are_cut_at_clauses_that_stay_exact_quotes():
    text = (
        "What’s your take on India’s target for ensuring energy security - I believe it’s a catch 22 "
        "situation - we need to have 500 GW of non fissile capacity - intermittency of RE required to be "
        "supported by Battery (majorly Li-Io) but India is dependent on China to meet this mission - but on "
        "the other side- have been hearing - India thinking to put tarrif barriers like solar in battery too."
    )
    pieces = clauses(Quote(text, 10))
    assert "we need to have 500 GW of non fissile capacity" in [p.text for p in pieces]
    assert not any(p.text.startswith("What’s") for p in pieces), "a question cut from its mark"
    for p in pieces:
        assert text[p.start - 10 : p.start - 10 + len(p.text)] == p.text


def test_a_sentence_two_overlapping_chunks_hold_is_one_candidate(composer):
    first, second = THREAD, THREAD[30:] + " Over time, India could become cost-competitive."
    candidates, dropped = composer.candidates([(first, "d", 0), (second, "d", 30)], avoid=[])
    texts = [c.quote.text for c in candidates]
    assert len(texts) == len(set(texts))
    assert dropped["repeats"] == 1 and dropped["fragments"] == 1  # the copy, and the cut-off start
    assert sum("fastest way" in t for t in texts) == 1


def test_a_chunk_that_starts_mid_sentence_does_not_offer_its_tail(composer):
    candidates, _ = composer.candidates([(THREAD[60:], "d", 60)], avoid=[])
    assert all(not c.quote.text[0].islower() for c in candidates)


def test_factoid_gets_its_best_sentence_first_and_at_most_two(composer):
    question = analyse("How long does each link take to build up?")
    composition = composer.compose(question, question.text, [(POST, "post", 0), (THREAD, "thread", 0)])
    assert composition.question_kind == "factoid" and composition.expects == "number"
    assert 1 <= len(composition.picks) <= 2
    assert "ten or twenty years" in composition.picks[0].text


def test_summary_is_several_sentences_of_one_document_in_its_order_within_the_budget(composer):
    question = analyse("Summarize the post about the lithium battery industry.")
    composition = composer.compose(question, question.text, [(POST, "post", 0), (THREAD, "thread", 0)])
    assert composition.question_kind == "summary"
    assert 2 <= len(composition.picks) <= 4
    assert {p.n for p in composition.picks} == {1}, "one document's gist"
    starts = [p.start for p in composition.picks]
    assert starts == sorted(starts), "document order"
    assert sum(len(p.text.split()) for p in composition.picks) <= 90
    for p in composition.picks:
        assert POST[p.start : p.start + len(p.text)] == p.text


def test_what_an_earlier_answer_said_is_not_offered_again(composer):
    question = analyse("What does the thread say about the risks?")
    earlier = "There are risks, but learning from them is the fastest way to build domestic skills. [1]"
    composition = composer.compose(question, question.text, [(THREAD, "t", 0)], avoid=said([earlier]))
    assert composition.said_before == 1
    assert all("fastest way" not in p.text for p in composition.picks)


def test_a_question_the_text_answers_at_once_is_one_unit_not_a_fragment(composer):
    candidates, _ = composer.candidates([(POST, "post", 0)], avoid=[])
    assert "What is holding things back? Core technology." in [c.quote.text for c in candidates]


def test_a_factoid_whose_best_sentence_lacks_the_asked_for_kind_adds_one_that_holds_it(composer):
    question = analyse("How long does each link of the lithium battery industry chain take to build up?")
    composition = composer.compose(question, question.text, [(POST, "post", 0)])
    assert any("ten or twenty years" in p.text for p in composition.picks)
    assert len(composition.picks) <= 2


def test_headings_junk_and_lone_symbols_are_never_candidates(composer):
    page = (
        "India’s EV dream will truly take off when we own the chemistry, not just the factory. ⚡🇮🇳\n"
        "Core technology.\nTrade Crypto Anywhere Anytime\nCommunity\n"
        "Having more money can't buy twenty years of technical expertise, that's the reality."
    )
    candidates, dropped = composer.candidates([(page, "page", 0)], avoid=[])
    texts = [c.quote.text for c in candidates]
    assert texts == [
        "India’s EV dream will truly take off when we own the chemistry, not just the factory.",
        "Having more money can't buy twenty years of technical expertise, that's the reality.",
    ]
    assert dropped["fragments"] >= 2


def test_trimming_drops_pictographs_but_keeps_currency():
    (quote,) = clauses(Quote("  $5 billion went to cell factories in 2023. ⚡🇮🇳", 7))
    assert quote.text == "$5 billion went to cell factories in 2023."
    assert quote.start == 9
