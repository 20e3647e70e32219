"""Unit tests for index.chunking: exact spans, coverage, token bounds, overlap and the fits guard."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from index.chunking import _MIN_CHUNK_TOKENS, Chunk, Chunker
from index.clean import clean_text
from rag.tokens import get_encoding

SUBJECTS = ["The harbour master", "A young engineer", "The city council", "Our neighbour", "The old bakery"]
VERBS = ["noticed", "questioned", "repaired", "described", "ignored", "celebrated", "measured"]
OBJECTS = ["the broken lighthouse", "a new budget for schools", "the winter storm", "forty crates of apples"]
TAILS = [
    "before dawn",
    "after a long debate",
    "without much fuss",
    "on the third attempt",
    "despite the rain",
]


def sentence(rng: random.Random, n: int) -> str:
    """A plausible sentence; the running number n keeps every sentence distinct."""
    parts = [rng.choice(words) for words in (SUBJECTS, VERBS, OBJECTS, TAILS)]
    return f"{' '.join(parts)} (entry {n})."


def long_text(sentences: int = 400, seed: int = 0) -> str:
    """Paragraphs of 2-8 distinct sentences, separated by blank lines."""
    rng = random.Random(seed)
    paragraphs, n = [], 0
    while n < sentences:
        size = rng.randint(2, 8)
        paragraphs.append(" ".join(sentence(rng, n + k) for k in range(size)))
        n += size
    return "\n\n".join(paragraphs)


def short_sentences(count: int = 150) -> str:
    return " ".join(f"Item {n} is {'red' if n % 3 else 'blue'}." for n in range(count))


def n_tokens(text: str) -> int:
    return len(get_encoding().encode(text))


def assert_exact_spans(text: str, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
    starts = [chunk.start for chunk in chunks]
    assert starts == sorted(set(starts)), "starts must be strictly increasing"


def uncovered(text: str, chunks: list[Chunk]) -> list[int]:
    """Positions of non-whitespace characters that no chunk contains."""
    covered = [False] * len(text)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    return [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]


@pytest.fixture(scope="module")
def text() -> str:
    return long_text()


@pytest.mark.parametrize(("chunk_size", "overlap"), [(64, 0), (128, 20), (256, 50)])
def test_chunks_are_exact_covering_and_within_size(text: str, chunk_size: int, overlap: int) -> None:
    chunks = Chunker(chunk_size, overlap).split(text)
    assert len(chunks) > n_tokens(text) // chunk_size  # the text really was split
    assert_exact_spans(text, chunks)
    assert uncovered(text, chunks) == []
    assert max(n_tokens(chunk.text) for chunk in chunks) <= chunk_size


def test_overlap_makes_consecutive_chunks_share_text() -> None:
    text = short_sentences()
    chunks = Chunker(48, 16).split(text)
    assert len(chunks) > 3
    assert any(nxt.start < prev.end for prev, nxt in pairwise(chunks))


def test_no_overlap_means_disjoint_chunks() -> None:
    chunks = Chunker(48, 0).split(short_sentences())
    assert all(nxt.start >= prev.end for prev, nxt in pairwise(chunks))


@pytest.mark.parametrize("max_chars", [120, 200, 400])
def test_fits_guard_splits_until_every_chunk_fits(text: str, max_chars: int) -> None:
    """The embedder's limit (here: characters) is stricter than chunk_size, so most pieces are re-split.

    Neighbouring pieces overlap and both get re-split: the result must still be in text order,
    without a span twice (checked by assert_exact_spans).
    """
    chunks = Chunker(256, 32, fits=lambda piece: len(piece) <= max_chars).split(text)
    assert max(len(chunk.text) for chunk in chunks) <= max_chars
    assert_exact_spans(text, chunks)
    assert uncovered(text, chunks) == []


@pytest.mark.timeout(60)
def test_fits_guard_that_never_accepts_still_terminates(text: str) -> None:
    calls = 0

    def never_fits(_piece: str) -> bool:
        nonlocal calls
        calls += 1
        return False

    chunks = Chunker(128, 20, fits=never_fits).split(text)
    assert calls > 0
    assert max(n_tokens(chunk.text) for chunk in chunks) <= _MIN_CHUNK_TOKENS  # the floor it stops at
    assert_exact_spans(text, chunks)
    assert uncovered(text, chunks) == []


@pytest.mark.parametrize(("chunk_size", "overlap"), [(100, 100), (100, 150), (16, 16)])
def test_overlap_not_below_size_is_rejected(chunk_size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk_overlap"):
        Chunker(chunk_size, overlap)


PROSE = [
    "The committee met on Tuesday.",
    "Prices rose by 4% in March, then fell again!",
    "Was the bridge ever finished?",
    "Dr. Smith arrived at 10 a.m. and left early.",
    "她说：我们明天见。",
    "Line one\nline two of the same thought.",
    "",
]


def fits_in(max_chars: int | None):
    return (lambda piece: len(piece) <= max_chars) if max_chars else (lambda _piece: True)


@settings(max_examples=50, deadline=None)
@given(
    parts=st.lists(st.one_of(st.text(), st.sampled_from(PROSE)), max_size=40),
    separator=st.sampled_from([" ", "\n", "\n\n", ""]),
    max_chars=st.sampled_from([None, 60]),
)
# Many tokens per character: the splitter starts a piece where the previous one started.
@example(parts=["𐀀\U000107bb", "ﯬ𐀀𐀀", "000<", "00𐀀", ":", "00¨ÅØ𐀀", "0𐀀0"], separator="\n\n", max_chars=None)
def test_spans_index_cleaned_text_exactly(parts: list[str], separator: str, max_chars: int | None) -> None:
    text = clean_text(separator.join(parts)).text
    chunks = Chunker(24, 6, fits=fits_in(max_chars)).split(text)
    assert_exact_spans(text, chunks)
    if text.strip():
        assert chunks
