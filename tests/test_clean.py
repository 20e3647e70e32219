"""Unit tests for index.clean: normalisation, junk-line rules, repeated paragraphs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from index.clean import MIN_DEDUP_CHARS, clean_text, normalise

SAMPLES = Path(__file__).resolve().parent.parent / "index" / "samples" / "corpus"

BEFORE = "The new plant in Chennai opened in March and hired three hundred people."
AFTER = "Its first batteries are expected to reach customers early next year."


def read_sample(prefix: str) -> str:
    (path,) = SAMPLES.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


def lines_of(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


def between_prose(*lines: str) -> str:
    return "\n".join([BEFORE, *lines, AFTER])


DISCLAIMER = (
    "This page may contain third-party content, which is provided for information purposes only "
    "and should not be considered as an endorsement of its views. See Disclaimer for details."
)


@pytest.mark.parametrize(
    ("rule", "junk"),
    [
        ("view_original", ["View Original"]),
        ("view_original", ["View OriginalReply0"]),
        ("widget", ["Repost"]),
        ("widget", ["Like 12"]),
        ("widget", ["  • Share"]),
        ("counter", ["5"]),
        ("counter", ["0/400"]),
        ("relative_time", ["· 5h ago"]),
        ("relative_time", ["3 days ago"]),
        ("comment_author", ["ChainPoetvip", "· 5h ago"]),
        ("language_menu", ["English", "简体中文", "Español"]),
        ("language_menu", ["• English", "• Tiếng Việt", "• Português (Brasil)", "• 日本語"]),
        ("disclaimer", [DISCLAIMER]),
        ("app_promo", ["Scan to download Gate App"]),
        ("app_promo", ["qrCode"]),
    ],
)
def test_junk_rule_drops_its_lines(rule: str, junk: list[str]) -> None:
    result = clean_text(between_prose(*junk))
    assert result.text == f"{BEFORE}\n{AFTER}"
    assert rule in result.dropped


@pytest.mark.parametrize(
    "prose",
    [
        "Share prices fell 5% after the report.",
        "I will reply to the comment tomorrow.",
        "English is spoken in 58 countries.",
        "This is not financial advice, but the numbers speak for themselves.",
        "2023 was a turning point.",
        "Like many others, she followed the story for years.",
        "The app lets you scan a QR code to pay at the counter.",
        "Comments on the draft are due by Friday.",
        "Prices rose 5h after the open and fell 2 days later.",
    ],
)
def test_prose_mentioning_junk_words_is_kept(prose: str) -> None:
    result = clean_text(between_prose(prose))
    assert result.text == between_prose(prose)
    assert result.dropped == {}


@pytest.mark.parametrize("languages", [["English"], ["English", "Deutsch"]])
def test_short_run_of_language_names_is_kept(languages: list[str]) -> None:
    """Fewer than three language names in a row is prose (a word list, a heading), not a menu."""
    assert clean_text(between_prose(*languages)).text == between_prose(*languages)


def test_one_word_line_not_above_a_timestamp_is_kept() -> None:
    assert clean_text(between_prose("Summary")).text == between_prose("Summary")


def test_sample_with_repeated_paragraphs_keeps_each_paragraph_once() -> None:
    raw = read_sample("000")
    cleaned = clean_text(raw)
    counts = Counter(lines_of(cleaned.text))
    assert set(counts) == set(lines_of(normalise(raw)))
    assert set(counts.values()) == {1}
    assert "Glad you liked it :)" in counts
    assert cleaned.dropped == {"duplicate": 8}


def test_sample_with_page_junk_keeps_article_and_comments_only() -> None:
    text = clean_text(read_sample("004")).text
    for junk in (
        "View Original",
        "Reward",
        "0/400",
        "简体中文",
        "See Disclaimer",
        "· 5h ago",
        "DegenGamblervip",
    ):
        assert junk not in text
    for kept in (
        "In the new energy sector, ambition often outpaces strength.",
        "What is holding things back? Core technology.",
        "this principle applies across all industries.",
        "Having lots of money makes you want to overtake on the bend",
        "Basically, it's just trying to get something for nothing, but it's not that easy.",
        "Why haven't Indians figured this out yet?",
    ):
        assert kept in text


SENTENCE = "The committee approved the budget for the coming financial year."


@pytest.mark.parametrize(
    "variant",
    [
        SENTENCE,
        SENTENCE.upper(),
        "the committee approved the budget, for the coming financial year!!",
        "  The  committee   approved the budget for the coming financial year . ",
        "• The committee approved the budget for the coming financial year.",
    ],
)
def test_near_exact_duplicate_is_dropped(variant: str) -> None:
    result = clean_text("\n".join([SENTENCE, AFTER, variant]))
    assert result.text == f"{SENTENCE}\n{AFTER}"
    assert result.dropped == {"duplicate": 1}


def test_short_repeated_lines_are_kept() -> None:
    raw = "Yes.\nDid it work?\nYes.\nyes"
    assert clean_text(raw).text == raw


@pytest.mark.parametrize(("length", "deduped"), [(MIN_DEDUP_CHARS - 1, False), (MIN_DEDUP_CHARS, True)])
def test_dedup_threshold(length: int, deduped: bool) -> None:
    line = "ab" * (length // 2) + "c" * (length % 2)
    assert len(line) == length
    result = clean_text(f"{line}\n{line}")
    assert result.text == (line if deduped else f"{line}\n{line}")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ﬁnance", "finance"),
        ("ＡＢＣ １２３", "ABC 123"),
        ("ten\u00a0euros", "ten euros"),
        ("one\r\ntwo\rthree", "one\ntwo\nthree"),
        ("zero\u200bwidth\u200c join\u200d\u2060", "zerowidth join"),
        ("\ufeffbom", "bom"),
        ("bell\x07 null\x00 del\x7f c1\x85", "bell null del c1"),
        ("many    spaces\t\tand tabs", "many spaces and tabs"),
        ("  padded line  \n\tsecond ", "padded line\nsecond"),
        ("e\u0301", "é"),
        ("e\u200b\u0301", "é"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_blank_line_runs_collapse_to_one_paragraph_break() -> None:
    assert clean_text(f"\n\n{BEFORE}\n\n\n\n{AFTER}\n \n").text == f"{BEFORE}\n\n{AFTER}"


@given(st.text())
def test_clean_text_output_is_tidy(raw: str) -> None:
    text = clean_text(raw).text
    assert "\n\n\n" not in text
    assert text == text.strip()


@given(st.text())
@example("e\u200b\u0301")  # an invisible character between a letter and its combining accent
@example("a\x01\u0308")
def test_clean_text_is_idempotent(raw: str) -> None:
    once = clean_text(raw).text
    assert clean_text(once).text == once


def test_clean_text_is_idempotent_across_a_split_language_menu() -> None:
    once = clean_text("English\nEnglish\n5\nEnglish").text
    assert clean_text(once).text == once
