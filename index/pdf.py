"""Read a PDF page by page into text as the author wrote it: lines rejoined, furniture dropped.

pypdfium2 (Apache-2.0/BSD, PDFium) gives each page's characters in reading order with their
boxes, font size and weight, and the page labels (grouped into lines in index/pdf_lines.py).
The post-pass is ours (index/pdf_furniture.py, then index/pdf_paragraphs.py):

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

from collections import Counter
from dataclasses import dataclass, field

from index.pdf_furniture import strip_furniture
from index.pdf_lines import Line, page_lines
from index.pdf_paragraphs import page_texts
from index.sections import Heading


class PdfError(Exception):
    """The PDF cannot be read; the message says why, in words a person can act on."""


@dataclass
class PdfText:
    pages: list[str]
    joins: list[str]  # what goes between page i and i + 1: "\n\n", " " (a running paragraph) or ""
    labels: list[str]  # the PDF's own page labels ("iv", "A-3"); "" where it has none
    headings: list[Heading]
    title: str | None
    dropped: Counter[str] = field(default_factory=Counter)


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
                raw_pages.append((page_lines(page), page.get_size()))
            finally:
                page.close()
            labels.append(document.get_page_label(index) or "")
        title = (document.get_metadata_value("Title") or "").strip() or None
    finally:
        document.close()
    return _assemble(raw_pages, labels, title)


def _body_size(raw_pages: list[tuple[list[Line], tuple[float, float]]]) -> float:
    """The body text's font size: the one most characters are set in."""
    sizes: Counter[float] = Counter()
    for lines, _ in raw_pages:
        for ln in lines:
            sizes[ln.size] += len(ln.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _assemble(
    raw_pages: list[tuple[list[Line], tuple[float, float]]], labels: list[str], title: str | None
) -> PdfText:
    if not any(lines for lines, _ in raw_pages):
        raise PdfError("no text layer (a scanned PDF?); OCR is not available")
    body = _body_size(raw_pages)
    kept_pages, dropped = strip_furniture(raw_pages, body)
    pages, joins, headings = page_texts(kept_pages, body)
    return PdfText(pages, joins, labels, headings, title, dropped)
