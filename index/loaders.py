"""Turn one file into text and a title, or fail with a reason a person can act on.

| extension | reader | headings |
|---|---|---|
| .pdf | `index.pdf`: pypdfium2, page by page, with our layout post-pass | heading-like lines |
| .docx | python-docx: paragraphs, lists and tables in body order | "Heading N" styles |
| .html .htm | trafilatura: main text only, no menus, scripts or footers | h1-h6 (h1-h3 make sections) |
| .txt .md | UTF-8; other encodings detected by charset-normalizer, with a warning | Markdown `#` lines |

Every reader writes one block per paragraph, separated by blank lines: list items start with
"• ", and a table becomes one line per row with its header repeated ("Site: A; Capacity: 100").
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from index.pdf import PdfError, read_pdf
from index.sections import Heading, markdown_headings

SUPPORTED_EXTENSIONS = frozenset({".txt", ".md", ".html", ".htm", ".pdf", ".docx"})
_MAX_TITLE = 120
_MAX_ACCENTED_SHARE = 0.3  # Western prose: 2-15 % of letters accented; Cyrillic as cp1252: ~100 %


class LoadError(Exception):
    """The file cannot be ingested; the message says why."""


@dataclass(frozen=True)
class LoadedFile:
    """A file's text, page by page for a PDF (one page for other formats), and its headings."""

    pages: list[str]
    title: str
    warnings: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)  # between page i and i + 1 (see index.pdf)
    labels: list[str] = field(default_factory=list)  # the PDF's page labels; "" where none
    headings: list[Heading] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # lines the reader left out, by rule

    @property
    def text(self) -> str:
        text = self.pages[0] if self.pages else ""
        for join, page in zip(self.joins, self.pages[1:], strict=True):
            text += join + page
        return text


_SECTION_LEVELS = 3  # h1-h3 and Heading 1-3 name sections; deeper headings stay plain paragraphs
BULLET = "• "


def table_rows(rows: list[list[str]]) -> list[str]:
    """A table as one line per row, each cell named by its column header (the first row)."""
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    if not body or not any(header):
        return ["; ".join(cell for cell in row if cell) for row in rows if any(row)]
    lines = []
    for row in body:
        cells = [f"{name}: {cell}" if name else cell for name, cell in zip(header, row, strict=False) if cell]
        if cells:
            lines.append("; ".join(cells))
    return lines


def _unique(cells: list[str]) -> list[str]:
    """A merged cell is reported once per grid column it spans; keep it once."""
    return [cell for i, cell in enumerate(cells) if i == 0 or cell != cells[i - 1]]


def looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control > len(sample) * 0.05


def _western_european(data: bytes) -> str | None:
    """cp1252 text, if the bytes read as mostly-ASCII prose with a few accented letters.

    charset-normalizer often picks a sibling code page for short Western text ("grève" becomes
    "grčve" as cp1250), and cp1252 is the commonest legacy encoding. Text in other scripts
    (cp1251 Russian, say) decodes as cp1252 too, but then almost every letter is non-ASCII.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    letters = [c for c in text if c.isalpha()]
    accented = sum(1 for c in letters if ord(c) > 127)
    return text if letters and accented / len(letters) < _MAX_ACCENTED_SHARE else None


def decode_text(data: bytes) -> tuple[str, list[str]]:
    if looks_binary(data):
        raise LoadError("binary content, not text")
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    western = _western_european(data)
    if western is not None:
        return western, ["not UTF-8; decoded as cp1252"]
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("not UTF-8, and no text encoding could be detected")
    return str(best), [f"not UTF-8; decoded as {best.encoding}"]


def _first_line_title(text: str, path: Path) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= _MAX_TITLE else path.stem
    return path.stem


def _load_text(path: Path, data: bytes) -> LoadedFile:
    text, warnings = decode_text(data)
    if path.suffix.lower() == ".md":
        headings = [h for h in markdown_headings(text) if h.level <= _SECTION_LEVELS]
        return LoadedFile(
            pages=[text], title=_first_line_title(text, path), warnings=warnings, headings=headings
        )
    return LoadedFile(pages=[text], title=path.stem, warnings=warnings)


def _load_html(path: Path, data: bytes) -> LoadedFile:
    """trafilatura finds the main text and gives it as XML (head, p, list, table), which keeps
    headings, list items and table rows apart; its plain-text output flattens them."""
    import trafilatura
    from lxml import etree

    if looks_binary(data):
        raise LoadError("binary content, not HTML")
    xml = trafilatura.extract(data, include_comments=False, include_tables=True, output_format="xml")
    if not xml:
        raise LoadError("no main text found in the HTML")
    blocks: list[str] = []
    headings: list[Heading] = []
    for element in etree.fromstring(xml.encode()).find("main"):
        text = " ".join("".join(element.itertext()).split())
        if element.tag == "head":
            level = int((element.get("rend") or "h2").lstrip("h") or 2)
            if level <= _SECTION_LEVELS and text:
                headings.append(Heading(level, text))
            blocks.append(text)
        elif element.tag == "list":
            blocks.extend(
                BULLET + " ".join("".join(item.itertext()).split()) for item in element.iter("item")
            )
        elif element.tag == "table":
            rows = [
                _unique([" ".join("".join(cell.itertext()).split()) for cell in row.iter("cell")])
                for row in element.iter("row")
            ]
            blocks.extend(table_rows(rows))
        else:
            blocks.append(text)
    meta = trafilatura.extract_metadata(data)
    title = (meta.title if meta and meta.title else "") or path.stem
    return LoadedFile(
        pages=["\n\n".join(b for b in blocks if b)], title=title[:_MAX_TITLE], headings=headings
    )


def _load_pdf(path: Path, data: bytes) -> LoadedFile:
    try:
        pdf = read_pdf(data)
    except PdfError as exc:
        raise LoadError(str(exc)) from exc
    return LoadedFile(
        pages=pdf.pages,
        title=(pdf.title or path.stem)[:_MAX_TITLE],
        joins=pdf.joins,
        labels=pdf.labels,
        headings=pdf.headings,
        dropped=dict(pdf.dropped),
    )


def _load_docx(path: Path, data: bytes) -> LoadedFile:
    """python-docx, because LlamaIndex's DocxReader (docx2txt) drops heading styles and runs
    table cells together."""
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        headings: list[Heading] = []
        title = (document.core_properties.title or "").strip()
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                blocks.extend(
                    table_rows([_unique([c.text.strip() for c in row.cells]) for row in block.rows])
                )
                continue
            text = " ".join(block.text.split())
            style = block.style.name if block.style is not None else ""
            if not text:
                continue
            if style == "Title":
                title = title or text
            elif style.startswith("Heading") and style[7:].strip().isdigit():
                level = int(style[7:])
                if level <= _SECTION_LEVELS:
                    headings.append(Heading(level, text))
            elif style.startswith("List") or (block._p.pPr is not None and block._p.pPr.numPr is not None):
                text = BULLET + text
            blocks.append(text)
    except Exception as exc:  # python-docx raises zipfile/KeyError/XML errors for broken files
        raise LoadError(f"unreadable DOCX ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(blocks)
    return LoadedFile(
        pages=[text], title=title[:_MAX_TITLE] or _first_line_title(text, path), headings=headings
    )


def load_file(path: Path, data: bytes) -> LoadedFile:
    """Extract text from a file whose bytes were already read (they are hashed by the caller)."""
    if not data:
        raise LoadError("empty file")
    suffix = path.suffix.lower()
    if suffix in (".txt", ".md"):
        loaded = _load_text(path, data)
    elif suffix in (".html", ".htm"):
        loaded = _load_html(path, data)
    elif suffix == ".pdf":
        loaded = _load_pdf(path, data)
    elif suffix == ".docx":
        loaded = _load_docx(path, data)
    else:
        raise LoadError(f"unsupported file type {suffix!r}")
    if not loaded.text.strip():
        raise LoadError("no text could be extracted")
    return loaded
