"""Section paths: headings found again in the cleaned text, nested by level."""

from __future__ import annotations

from index.sections import SEPARATOR, Heading, locate, markdown_headings

TEXT = "Intro.\n\n1 Method\n\nWe mask.\n\n1.1 Masking\n\nDynamic.\n\n2 Results\n\nBetter."


def test_paths_nest_by_level_and_pop_back_at_a_higher_heading():
    headings = [Heading(1, "1 Method"), Heading(2, "1.1 Masking"), Heading(1, "2 Results")]
    sections = locate(TEXT, headings)
    assert sections.path(0) == ""
    assert sections.path(TEXT.index("We mask")) == "1 Method"
    assert sections.path(TEXT.index("Dynamic")) == f"1 Method{SEPARATOR}1.1 Masking"
    assert sections.path(TEXT.index("Better")) == "2 Results"
    start, end = TEXT.index("We mask"), TEXT.index("Better")
    assert [path for _, path in sections.starts_within(start, end)] == [
        f"1 Method{SEPARATOR}1.1 Masking",
        "2 Results",
    ]


def test_a_heading_cleaning_dropped_is_skipped_and_later_ones_still_found():
    headings = [Heading(1, "0 Gone"), Heading(1, "1 Method"), Heading(1, "2 Results")]
    sections = locate(TEXT, headings)
    assert sections.path(TEXT.index("Better")) == "2 Results"
    assert sections.path(TEXT.index("We mask")) == "1 Method"


def test_a_heading_matches_whole_lines_only():
    sections = locate("We used 1 Method here.\n\n1 Method\n\nText.", [Heading(1, "1 Method")])
    assert sections.offsets == [len("We used 1 Method here.\n\n")]


def test_markdown_heading_lines():
    assert markdown_headings("# A\n\ntext\n\n### B ###\n\n#nope\n") == [Heading(1, "A"), Heading(3, "B")]
