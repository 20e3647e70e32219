"""A PDF page's characters, as pypdfium2 (PDFium) gives them, grouped into visual lines with their
boxes, font size and weight: the raw material of the layout post-pass (index/pdf.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile("\r\n|\ufffe")


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


def page_lines(page) -> list[Line]:
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
