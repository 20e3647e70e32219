"""Read a PDF page by page into text as the author wrote it: lines rejoined, furniture dropped.

pypdfium2 (Apache-2.0/BSD, PDFium) gives each page's characters in reading order with their
boxes, font size and weight, and the page labels. The post-pass below is ours:

- running headers and footers: a line in the top or bottom 8 % of its page whose digit-blind
  text recurs on >= 40 % of pages (3 at least), or a bare page number there, or one that
  starts or ends with the page's printed number (when most pages print one), is dropped;
- table-of-contents leaders: a line of dot leaders ending in a page number is dropped;
- bullets: a private-use (symbol font) or bullet glyph becomes "•";
- headings: a line set larger than the body, or wholly bold and short, or numbered ("2.3.4
  Title") and short, is a paragraph of its own and a section heading;
- paragraphs: a line joins the one before unless a gap, an indent, a bullet or a heading starts
  a new one, or the line before ended short (the next line's first word would have fitted);
  a paragraph runs on over a page break when the next page starts in lower case;
- hyphens: a line-end hyphen is joined away only when the joined word occurs elsewhere in the
  document or in the word list (wordfreq), and kept where the document writes the hyphenated
  form, before a capital, or between two common words that are rare as one.

Nothing else is rewritten, so a quote of the output is a quote of the document. Paragraphs are
separated by a blank line; a page's text never holds a single line break.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace

from index.sections import Heading

EDGE_ZONE = 0.08  # top/bottom share of the page height where running headers and footers sit
RECUR_SHARE = 0.4  # a furniture line recurs on at least this share of pages ...
RECUR_MIN_PAGES = 3  # ... and on at least this many
_GAP = 1.45  # a baseline step over this many typical steps is a paragraph gap
_HEADING_SIZE = 1.12  # a line this much larger than the body text is a heading
_MAX_HEADING_CHARS = 120
_COMMON = 3.0  # wordfreq's Zipf scale: 3 is about once per million words

_EDGE_NUMBER = re.compile(r"^(\d{1,4})\b|\b(\d{1,4})$")  # a number opening or closing an edge line
_PAGE_NUMBER = re.compile(r"^(page\s+)?([0-9]+|[ivxlcdm]+)(\s+(of|/)\s+[0-9]+)?$", re.I)
_LEADER = re.compile(r"(\.\s?){4,}\s*[\w.\-–]{0,10}$")  # "Executive Summary ..... ES-1"
_NUMBER = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")
_NUMBERED = re.compile(r"^((\d+\.)*\d+\.?|[A-Z]\.(\d+\.?)*|appendix [A-Z]\.?)\s+\S", re.I)
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")  # symbol-font glyphs: bullets, check marks
_BULLETS = "•▪◦●○■□◆◇▸►‣⁃∙·"
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
_HYPHENS = "-\u00ad\x02\ufffe"  # a hyphen, a soft hyphen, and PDFium's marks for a line-end hyphen
_TRAILING = re.compile(rf"([^\W\d_]+)[{_HYPHENS}]$")
_LEADING = re.compile(r"^([^\W\d_]+)")
_LINE_END = re.compile("\r\n|\ufffe")


class PdfError(Exception):
    """The PDF cannot be read; the message says why, in words a person can act on."""


@dataclass(frozen=True)
class Line:
    text: str
    x0: float
    x1: float
    top: float  # distance from the page's top edge
    bottom: float
    size: float  # font size of its first character
    bold: bool
    first_word: float  # width of its first word


@dataclass
class PdfText:
    pages: list[str]
    joins: list[str]  # what goes between page i and i + 1: "\n\n", " " (a running paragraph) or ""
    labels: list[str]  # the PDF's own page labels ("iv", "A-3"); "" where it has none
    headings: list[Heading]
    title: str | None
    dropped: Counter[str] = field(default_factory=Counter)


def _is_bullet(ch: str) -> bool:
    return ch in _BULLETS or bool(_PRIVATE_USE.match(ch))


def _page_lines(page) -> list[Line]:
    import pypdfium2.raw as raw

    height = page.get_size()[1]
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
        lines: list[Line] = []
        for start, end in _line_spans(text):
            first = next((i for i in range(start, end) if not text[i].isspace()), None)
            if first is not None:
                last = end - 1
                while text[last].isspace():
                    last -= 1
                space = text.find(" ", first, end)
                word_end = (space if space > 0 else last + 1) - 1
                left, b0, _, t0 = textpage.get_charbox(first)
                _, b1, right, t1 = textpage.get_charbox(last)
                _, _, word_right, _ = textpage.get_charbox(word_end)
                lines.append(
                    Line(
                        text=text[start:end].strip(),
                        x0=left,
                        x1=right,
                        top=height - max(t0, t1),
                        bottom=height - min(b0, b1),
                        size=round(raw.FPDFText_GetFontSize(textpage.raw, first), 1),
                        bold=raw.FPDFText_GetFontWeight(textpage.raw, first) >= 600
                        and raw.FPDFText_GetFontWeight(textpage.raw, last) >= 600,
                        first_word=word_right - left,
                    )
                )
    finally:
        textpage.close()
    return [ln for ln in lines if ln.bottom > 0 and ln.top < height]  # text drawn off the page is hidden


def _line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each visual line. PDFium ends a line with CR LF, except after a hyphen
    that ended a line: it writes that hyphen as U+FFFE and runs the next line on."""
    spans, start = [], 0
    for match in _LINE_END.finditer(text):
        end = match.start() + (1 if match.group() == "\ufffe" else 0)
        spans.append((start, end))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def _furniture_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text.casefold()))


def _in_edge(line: Line, height: float) -> bool:
    return line.bottom < height * EDGE_ZONE or line.top > height * (1 - EDGE_ZONE)


def _furniture(pages: list[tuple[list[Line], float]]) -> set[str]:
    """Digit-blind keys of edge lines that recur on enough pages to be running headers or footers."""
    counts: Counter[str] = Counter()
    for lines, height in pages:
        counts.update({_furniture_key(ln.text) for ln in lines if _in_edge(ln, height)})
    need = max(RECUR_MIN_PAGES, RECUR_SHARE * len(pages))
    return {key for key, n in counts.items() if n >= need}


def _edge_numbers(text: str) -> set[int]:
    return {int(n) for match in _EDGE_NUMBER.findall(text) for n in match if n}


def _numbering(pages: list[tuple[list[Line], float]]) -> int | None:
    """The offset between page index and printed page number, when enough edge lines carry one
    ("Chapter 4: Function reference 10" on the 13th page: -2), so that a header naming its
    chapter, which recurs on only a few pages, is still known by its page number."""
    offsets: Counter[int] = Counter()
    for i, (lines, height) in enumerate(pages):
        offsets.update({n - i for ln in lines if _in_edge(ln, height) for n in _edge_numbers(ln.text)})
    if not offsets:
        return None
    offset, count = offsets.most_common(1)[0]
    return offset if count >= max(RECUR_MIN_PAGES, RECUR_SHARE * len(pages)) else None


def _body_size(pages: list[tuple[list[Line], float]]) -> float:
    sizes: Counter[float] = Counter()
    for lines, _ in pages:
        for ln in lines:
            sizes[ln.size] += len(ln.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


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


def read_pdf(data: bytes) -> PdfText:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise PdfError("encrypted PDF: it needs a password, which ingest does not have") from exc
        raise PdfError(f"unreadable PDF ({message})") from exc
    try:
        raw_pages = []
        labels = []
        for index in range(len(document)):
            page = document[index]
            try:
                raw_pages.append((_page_lines(page), page.get_size()))
            finally:
                page.close()
            labels.append(document.get_page_label(index) or "")
        title = (document.get_metadata_value("Title") or "").strip() or None
    finally:
        document.close()
    return _assemble(raw_pages, labels, title)


def _assemble(
    raw_pages: list[tuple[list[Line], tuple[float, float]]], labels: list[str], title: str | None
) -> PdfText:
    if not any(lines for lines, _ in raw_pages):
        raise PdfError("no text layer (a scanned PDF?); OCR is not available")
    by_height = [(lines, size[1]) for lines, size in raw_pages]
    furniture = _furniture(by_height)
    numbering = _numbering(by_height)
    body = _body_size(by_height)
    dropped: Counter[str] = Counter()
    kept_pages: list[tuple[list[Line], float]] = []
    for index, (lines, (width, height)) in enumerate(raw_pages):
        kept = []
        for ln in lines:
            if _in_edge(ln, height) and (
                _furniture_key(ln.text) in furniture
                or _PAGE_NUMBER.match(ln.text)
                or (numbering is not None and index + numbering in _edge_numbers(ln.text))
            ):
                dropped["running_header_footer"] += 1
            elif _LEADER.search(ln.text):
                dropped["toc_leader"] += 1
            elif ln.size < body * 0.9 and ln.text.isdigit():
                dropped["footnote_mark"] += 1  # a superscript reference that PDFium put on a line of its own
            else:
                if _is_bullet(ln.text[0]):
                    ln = replace(ln, text="• " + ln.text[1:].lstrip())
                if _PRIVATE_USE.search(ln.text):  # symbol-font bullets inside a line (table cells)
                    ln = replace(ln, text=_PRIVATE_USE.sub("•", ln.text))
                kept.append(ln)
        kept_pages.append((kept, width))
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
    return PdfText(pages, joins, labels, _levels(found), title, dropped)


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
