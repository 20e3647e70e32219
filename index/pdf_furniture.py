"""Which lines of a PDF are page furniture, dropped before paragraphs are built: running headers
and footers, bare and printed page numbers, table-of-contents leaders, footnote marks on a line
of their own. The lines kept get their bullet glyphs written as "•". (Rules: index/pdf.py.)"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from index.pdf_lines import Line

EDGE_ZONE = 0.08  # top/bottom share of the page height where running headers and footers sit
RECUR_SHARE = 0.4  # a furniture line recurs on at least this share of pages ...
RECUR_MIN_PAGES = 3  # ... and on at least this many

_EDGE_NUMBER = re.compile(r"^(\d{1,4})\b|\b(\d{1,4})$")  # a number opening or closing an edge line
_PAGE_NUMBER = re.compile(r"^(page\s+)?([0-9]+|[ivxlcdm]+)(\s+(of|/)\s+[0-9]+)?$", re.I)
_LEADER = re.compile(r"(\.\s?){4,}\s*[\w.\-–]{0,10}$")  # "Executive Summary ..... ES-1"
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")  # symbol-font glyphs: bullets, check marks
_BULLETS = "•▪◦●○■□◆◇▸►‣⁃∙·"


def _is_bullet(ch: str) -> bool:
    return ch in _BULLETS or bool(_PRIVATE_USE.match(ch))


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


def strip_furniture(
    raw_pages: list[tuple[list[Line], tuple[float, float]]], body: float
) -> tuple[list[tuple[list[Line], float]], Counter[str]]:
    """Each page's lines without its furniture, with the page's width, and what was dropped, by
    kind. `raw_pages`: each page's lines with its (width, height); `body`: the body font size."""
    by_height = [(lines, size[1]) for lines, size in raw_pages]
    furniture = _furniture(by_height)
    numbering = _numbering(by_height)
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
    return kept_pages, dropped
