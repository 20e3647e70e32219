"""Every metric on tiny cases computed by hand."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    bootstrap_ci,
    contains_answer,
    exact_match,
    has_duplicate_sentence,
    has_fragment,
    hit_at_k,
    mention_recall,
    ndcg_at_k,
    normalize_answer,
    reciprocal_rank,
    token_f1,
)


def test_normalize_like_the_squad_script():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("an apple, a pear") == "apple pear"


def test_exact_match_takes_the_best_accepted_answer():
    assert exact_match("October 1973", ["1973", "October 1973"]) == 1.0
    assert exact_match("in October 1973", ["October 1973"]) == 0.0
    assert exact_match("anything", []) == 0.0


def test_token_f1_by_hand():
    # prediction: "oil prices rose" (3 tokens); gold: "prices rose sharply" (3); common 2
    # precision 2/3, recall 2/3 -> F1 2/3
    assert token_f1("oil prices rose", ["prices rose sharply"]) == pytest.approx(2 / 3)
    assert token_f1("nothing shared", ["prices rose"]) == 0.0
    assert token_f1("The prices rose.", ["prices rose", "oil"]) == 1.0


def test_contains_answer_matches_whole_words_only():
    assert contains_answer("The crisis began in October 1973.", ["October 1973"]) == 1.0
    assert contains_answer("It was 19735 units.", ["1973"]) == 0.0


def test_mention_recall():
    assert mention_recall(
        "Refining and recycling matter.", ["refining", "recycling", "R&D"]
    ) == pytest.approx(2 / 3)
    assert mention_recall("anything", []) == 1.0


def test_ranking_metrics_by_hand():
    relevant = [False, True, False, True]
    assert hit_at_k(relevant, 1) == 0.0
    assert hit_at_k(relevant, 2) == 1.0
    assert reciprocal_rank(relevant) == 0.5
    # DCG = 1/log2(3) + 1/log2(5); ideal = 1/log2(2) + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(relevant, 10) == pytest.approx(expected)
    assert ndcg_at_k([False, False], 10) == 0.0
    assert reciprocal_rank([False, False]) == 0.0


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_data():
    mean, low, high = bootstrap_ci([1.0, 0.0] * 10)
    assert mean == 0.5 and low < 0.5 < high
    _, low_big, high_big = bootstrap_ci([1.0, 0.0] * 500)
    assert high_big - low_big < high - low
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0, 1.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_semantic_similarity_prefers_the_closer_reference():
    from eval.harness import semantic_similarity
    from rag.embeddings import hash_embedder

    embedder = hash_embedder()
    same = semantic_similarity(embedder, "refining capacity in India", ["refining capacity in India"])
    assert same == pytest.approx(1.0)
    best = semantic_similarity(
        embedder, "refining capacity in India", ["weather report", "in India, refining capacity"]
    )
    assert best == pytest.approx(1.0)  # bag of words: same words, any order
    assert semantic_similarity(embedder, "refining capacity", ["zeppelin airship"]) < 0.5


def test_duplicate_sentences_are_compared_as_normalised_words():
    assert has_duplicate_sentence(["Refining matters.", "Recycling too.", "refining  matters"])
    assert not has_duplicate_sentence(["Refining matters.", "Recycling matters."])


@pytest.mark.parametrize(
    ("sentences", "fragment"),
    [
        (["India is thinking of adding refining capacity."], False),
        (["Core technology."], True),
        (["India is thinking of adding refining capacity.", "⚡🇮🇳"], True),
        (["Trade Crypto Anywhere Anytime"], True),
        ([" ".join(["word"] * 81) + "."], True),
        (["we need to have 500 GW of non fissile capacity"], False),  # a clause: no full stop, but a sentence
    ],
)
def test_fragment_rate_sees_what_is_not_a_sentence(sentences, fragment):
    assert has_fragment(sentences) is fragment
