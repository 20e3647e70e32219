"""A PDF page's text from its kept lines: headings found and levelled, lines joined into
paragraphs, line-end hyphens joined away or kept, and pages joined where a paragraph runs on.
(Rules: index/pdf.py.)"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter

from index.pdf_lines import Line
from index.sections import Heading

_GAP = 1.45  # a baseline step over this many typical steps is a paragraph gap
_HEADING_SIZE = 1.12  # a line this much larger than the body text is a heading
_MAX_HEADING_CHARS = 120
_COMMON = 3.0  # wordfreq's Zipf scale: 3 is about once per million words
_NUMBER = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")
_NUMBERED = re.compile(r"^((\d+\.)*\d+\.?|[A-Z]\.(\d+\.?)*|appendix [A-Z]\.?)\s+\S", re.I)
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
_HYPHENS = "-\u00ad\x02\ufffe"  # a hyphen, a soft hyphen, and PDFium's marks for a line-end hyphen
_TRAILING = re.compile(rf"([^\W\d_]+)[{_HYPHENS}]$")
_LEADING = re.compile(r"^([^\W\d_]+)")


class _Vocabulary:
    """Which words the document writes whole, and which it writes hyphenated, away from line ends."""

    def __init__(self, pages: list[list[Line]]) -> None:
        self.words: Counter[str] = Counter()
        for lines in pages:
            for ln in lines:
                self.words.update(w.casefold() for w in _WORD.findall(ln.text.rstrip(_HYPHENS)))

    def join(self, left: str, right: str) -> str:
        """How a word broken across lines as "left-" + "right" is written."""
        whole, hyphenated = left + right, f"{left}-{right}"
        if self.words[hyphenated.casefold()]:
            return hyphenated
        if self.words[whole.casefold()]:
            return whole
        from wordfreq import zipf_frequency

        # Two common words that are rare as one ("self-determination", "full-time") are a
        # compound; anything else ("Petro-leum", "Schu-macker") was hyphenated by the layout.
        compound = min(zipf_frequency(left, "en"), zipf_frequency(right, "en")) >= _COMMON
        return hyphenated if compound and zipf_frequency(whole, "en") < _COMMON else whole


def _columns(lines: list[Line], width: float) -> dict[int, float]:
    """The right edge of each column (left or right half of the page), from its longest lines."""
    edges: dict[int, list[float]] = {}
    for ln in lines:
        edges.setdefault(_column(ln, width), []).append(ln.x1)
    return {c: sorted(xs)[int(0.9 * (len(xs) - 1))] for c, xs in edges.items()}


def _column(line: Line, width: float) -> int:
    return 1 if line.x0 > width * 0.45 else 0


def _is_heading(line: Line, body: float, column_width: float) -> bool:
    text = line.text
    if len(text) > _MAX_HEADING_CHARS or text.endswith((".", ",", ";")) or not any(c.isalpha() for c in text):
        return False
    if line.size >= body * _HEADING_SIZE:
        return True
    # Footnotes are numbered and short too, but set smaller than the body.
    short = line.x1 - line.x0 < column_width * 0.75 and line.size >= body * 0.95
    return short and (line.bold or (bool(_NUMBERED.match(text)) and len(text) < 80))


def _levels(found: list[tuple[str, float]]) -> list[Heading]:
    """Numbered headings take their depth ("2.3.4" is 3); others the depth numbered ones of the
    same or smaller size have, or, in a document without numbers, their size rank."""
    depth_by_size: dict[float, int] = {}
    for text, size in found:
        if number := _NUMBER.match(text):
            depth_by_size[size] = min(depth_by_size.get(size, 99), number.group(1).count(".") + 1)
    sizes = sorted({size for _, size in found}, reverse=True)
    headings = []
    for text, size in found:
        if number := _NUMBER.match(text):
            level = number.group(1).count(".") + 1
        elif depth_by_size:
            deepest = max(depth_by_size.values()) + 1
            level = min((d for s, d in depth_by_size.items() if s <= size), default=deepest)
        else:
            level = sizes.index(size) + 1
        headings.append(Heading(level, text))
    return headings


def page_texts(
    kept_pages: list[tuple[list[Line], float]], body: float
) -> tuple[list[str], list[str], list[Heading]]:
    """(text of each page, what goes between page i and i + 1, the headings) from each page's
    kept lines and width; `body`: the body font size."""
    vocabulary = _Vocabulary([lines for lines, _ in kept_pages])
    found: list[tuple[str, float]] = []
    pages: list[str] = []
    joins: list[str] = []
    ends_in_heading = True
    for lines, width in kept_pages:
        paragraphs = _paragraphs(lines, width, body, vocabulary)
        found.extend((text, size) for text, is_heading, size in paragraphs if is_heading)
        text = "\n\n".join(text for text, _, _ in paragraphs)
        if pages:
            pages[-1], join = _page_join(pages[-1], text, ends_in_heading, vocabulary)
            joins.append(join)
        pages.append(text)
        ends_in_heading = paragraphs[-1][1] if paragraphs else True
    return pages, joins, _levels(found)


def _page_join(before: str, after: str, heading: bool, vocabulary: _Vocabulary) -> tuple[str, str]:
    """How a page's text meets the next page's: a paragraph that runs on (the next page starts
    in lower case) is joined with a space, or with nothing after a line-end hyphen whose word is
    then written whole; otherwise a paragraph break. Returns the first page's text and the join."""
    if heading or not before or not (after[:1].islower() or _TRAILING.search(before[-64:])):
        return before, "\n\n"
    before, join = _meet(before, after, vocabulary)
    return before.replace("\ufffe", "-"), join


def _paragraphs(
    lines: list[Line], width: float, body: float, vocabulary: _Vocabulary
) -> list[tuple[str, bool, float]]:
    """(text, is heading, font size) for each paragraph of one page, in reading order."""
    if not lines:
        return []
    right = _columns(lines, width)
    left = {c: min(ln.x0 for ln in lines if _column(ln, width) == c) for c in right}
    steps = [b.bottom - a.bottom for a, b in itertools.pairwise(lines) if 0 < b.bottom - a.bottom < 4 * body]
    step = statistics.median(steps) if steps else body * 1.2
    paragraphs: list[tuple[list[str], bool, float]] = []
    previous: Line | None = None
    for ln in lines:
        column = _column(ln, width)
        column_width = right[column] - left[column]
        heading = _is_heading(ln, body, column_width)
        if (
            previous is None
            or heading
            or paragraphs[-1][1]
            or _starts_paragraph(previous, ln, width, right, step)
        ):
            if paragraphs and paragraphs[-1][1] and heading and _continues_heading(previous, ln, step):
                paragraphs[-1][0].append(ln.text)
            else:
                paragraphs.append(([ln.text], heading, ln.size))
        else:
            paragraphs[-1][0].append(ln.text)
        previous = ln
    return [(_join(parts, vocabulary), heading, size) for parts, heading, size in paragraphs]


def _continues_heading(previous: Line | None, line: Line, step: float) -> bool:
    return (
        previous is not None
        and previous.size == line.size
        and 0 < line.bottom - previous.bottom <= step * _GAP
    )


def _starts_paragraph(previous: Line, line: Line, width: float, right: dict[int, float], step: float) -> bool:
    if line.text.startswith("• "):
        return True
    same_column = _column(previous, width) == _column(line, width)
    advance = line.bottom - previous.bottom
    if same_column and advance > step * _GAP:
        return True
    if (
        same_column
        and advance > 0
        and line.x0 > previous.x0 + line.size * 0.8
        and not previous.text.startswith("• ")
    ):
        return True  # a first-line indent
    # The line before ended short: the first word of this one would have fitted after it.
    room = right[_column(previous, width)] - previous.x1
    return room > line.first_word + line.size * 0.5


def _join(parts: list[str], vocabulary: _Vocabulary) -> str:
    text = parts[0]
    for part in parts[1:]:
        text, separator = _meet(text, part, vocabulary)
        text += separator + part
    return text.replace("\ufffe", "-")


def _meet(before: str, after: str, vocabulary: _Vocabulary) -> tuple[str, str]:
    """Where a line of a running paragraph meets the next: the first line's text (a line-end
    hyphen dropped when its word is written whole) and what goes between ("" or " ")."""
    if not before or before[-1] not in _HYPHENS:  # the common case, without a regex over the paragraph
        return before, " "
    broken, leading = _TRAILING.search(before[-64:]), _LEADING.match(after)
    if not (broken and leading):
        return before, " "
    if not after[0].islower():  # "Nordrhein-" + "Westfalen": a hyphen before a capital is the word's own
        return before[:-1] + "-", ""
    joined = vocabulary.join(broken.group(1), leading.group(1))
    cut = len(joined) - len(leading.group(1))  # what of the joined word stays on the first line
    return before[: len(before) - len(broken.group())] + joined[:cut], ""
