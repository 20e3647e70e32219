"""Render text articles as two-column, justified, hyphenated PDFs whose true text is known.

    python -m bench.pdf_render eval/cases/squad2-dev/docs eval/pdfs/squad

Each article becomes `<name>.pdf` laid out as a journal page: the title across both columns,
numbered section headings, paragraphs with first-line indents, words broken across lines
with a hyphen, a running header and a page number on every page. Beside it `<name>.json`
holds the truth the PDF evaluation scores against: the title, the headings and paragraphs in
order (as drawn: characters the font lacks become "?"), and the running header.

fpdf2 (LGPL-3.0, a dev dependency, imported only here) draws the pages; reading the committed
PDFs needs nothing of it. `rag bench` draws its long PDF the same way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core
PAGE_W, PAGE_H = 215.9, 279.4  # US Letter, mm
MARGIN, GUTTER = 18.0, 7.0
COLUMN = (PAGE_W - 2 * MARGIN - GUTTER) / 2
BODY, LEADING = 9.5, 4.3  # pt, mm
INDENT = 4.0
SECTION_EVERY = 3  # paragraphs per numbered section
VOWELS = set("aeiouyAEIOUY")


def _section_title(number: int, paragraph: str) -> str:
    words = [w.strip(",.;:()\"'") for w in paragraph.split()[:4]]
    return f"{number} " + " ".join(w for w in words if w)


class _Layout:
    def __init__(self, pdf, header: str) -> None:
        self.pdf, self.header = pdf, header
        self.column, self.y, self.page = 0, 0.0, 0
        self.top = MARGIN + 8

    def new_page(self) -> None:
        pdf = self.pdf
        pdf.add_page()
        self.page += 1
        pdf.set_font("sans", size=7.5)
        pdf.text(MARGIN, 11, self.header)
        pdf.line(MARGIN, 12.5, PAGE_W - MARGIN, 12.5)
        number = str(self.page)
        pdf.text((PAGE_W - pdf.get_string_width(number)) / 2, PAGE_H - 10, number)
        self.column, self.y = 0, self.top

    def x(self) -> float:
        return MARGIN + self.column * (COLUMN + GUTTER)

    def advance(self, height: float) -> None:
        if self.y + height > PAGE_H - MARGIN - 4:
            if self.column == 0:
                self.column, self.y = 1, self.top
            else:
                self.new_page()

    def title(self, text: str) -> None:
        pdf = self.pdf
        pdf.set_font("serif", style="B", size=16)
        pdf.text((PAGE_W - pdf.get_string_width(text)) / 2, self.y + 6, text)
        self.top = self.y = self.y + 14  # the columns start under the title on the first page

    def heading(self, text: str) -> None:
        self.advance(LEADING * 3)
        self.y += LEADING * 0.6
        self.pdf.set_font("serif", style="B", size=10.5)
        self.pdf.text(self.x(), self.y + LEADING, text)
        self.y += LEADING * 1.4

    def paragraph(self, text: str) -> list[str]:
        """Set one paragraph justified; returns the hyphenated breaks it made ("refin-ing")."""
        pdf = self.pdf
        pdf.set_font("serif", size=BODY)
        space = pdf.get_string_width(" ")
        words = text.split(" ")
        breaks: list[str] = []
        first = True
        while words:
            indent = INDENT if first else 0.0
            width = COLUMN - indent
            line: list[str] = []
            used = 0.0
            while words:
                w = pdf.get_string_width(words[0])
                if used + (space if line else 0) + w <= width:
                    used += (space if line else 0) + w
                    line.append(words.pop(0))
                    continue
                head, tail = _hyphenate(words[0], width - used - (space if line else 0), pdf.get_string_width)
                if head:
                    line.append(head)
                    words[0] = tail
                    breaks.append(head + tail)
                break
            if not line:  # a word wider than the column: set it alone
                line.append(words.pop(0))
            self.advance(LEADING)
            x, y = self.x() + indent, self.y + LEADING
            last = not words
            gap = (
                space
                if last or len(line) == 1
                else (width - sum(map(pdf.get_string_width, line))) / (len(line) - 1)
            )
            for word in line:
                pdf.text(x, y, word)
                x += pdf.get_string_width(word) + gap
            self.y += LEADING
            first = False
        self.y += LEADING * 0.25
        return breaks


def _hyphenate(word: str, room: float, measure) -> tuple[str, str]:
    """Split `word` so its head (with a hyphen) fits in `room`: at its own hyphen, else between a
    vowel and a consonant, leaving three letters or more on each side; ("", word) if none fits."""
    if "-" in word[1:-1]:
        cut = word.rindex("-", 0, len(word) - 1) + 1
        if measure(word[:cut]) <= room:
            return word[:cut], word[cut:]
    core = word.rstrip(",.;:!?)\"'”’")
    if len(core) < 7 or not core.isalpha():
        return "", word
    for cut in range(len(core) - 3, 2, -1):
        if core[cut - 1] in VOWELS and core[cut] not in VOWELS and measure(word[:cut] + "-") <= room:
            return word[:cut] + "-", word[cut:]
    return "", word


def render(text: str, title: str, header: str, out: Path) -> dict:
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format="Letter")
    pdf.set_auto_page_break(False)
    pdf.set_title(title)
    pdf.add_font("serif", fname=str(FONT_DIR / "DejaVuSerif.ttf"))
    pdf.add_font("serif", style="B", fname=str(FONT_DIR / "DejaVuSerif-Bold.ttf"))
    pdf.add_font("sans", fname=str(FONT_DIR / "DejaVuSans.ttf"))
    known = set(pdf.fonts["serif"].cmap) if hasattr(pdf.fonts["serif"], "cmap") else None
    layout = _Layout(pdf, header)
    layout.new_page()
    layout.title(title)
    blocks: list[dict] = []
    breaks: list[str] = []
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    for i, paragraph in enumerate(paragraphs):
        if known is not None:
            paragraph = "".join(c if ord(c) in known or c == " " else "?" for c in paragraph)
        if i % SECTION_EVERY == 0:
            heading = _section_title(i // SECTION_EVERY + 1, paragraph)
            layout.heading(heading)
            blocks.append({"kind": "heading", "text": heading})
        breaks += layout.paragraph(paragraph)
        blocks.append({"kind": "paragraph", "text": paragraph})
    pdf.output(str(out))
    return {
        "title": title,
        "running_header": header,
        "pages": layout.page,
        "blocks": blocks,
        "hyphenated": breaks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="folder of .txt articles (paragraphs split by blank lines)")
    parser.add_argument("out", type=Path, help="folder for the PDFs and their truth files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(args.source.glob("*.txt")):
        title = path.stem.replace("_", " ")
        truth = render(
            path.read_text(encoding="utf-8"),
            title,
            f"{title} · SQuAD 2.0 sample articles",
            args.out / f"{path.stem}.pdf",
        )
        (args.out / f"{path.stem}.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n")
        print(f"{path.stem}.pdf: {truth['pages']} pages, {len(truth['hyphenated'])} hyphenated breaks")


if __name__ == "__main__":
    main()
