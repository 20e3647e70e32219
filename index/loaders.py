"""Turn one file into text and a title, or fail with a reason a person can act on.

| extension | reader |
|---|---|
| .pdf | LlamaIndex `PDFReader` (pypdf) |
| .docx | LlamaIndex `DocxReader` (docx2txt) |
| .html .htm | trafilatura: main text only, no menus, scripts or footers |
| .txt .md | UTF-8; other encodings detected by charset-normalizer, with a warning |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tenacity import RetryError

SUPPORTED_EXTENSIONS = frozenset({".txt", ".md", ".html", ".htm", ".pdf", ".docx"})
_MAX_TITLE = 120
_MAX_ACCENTED_SHARE = 0.3  # Western prose: 2-15 % of letters accented; Cyrillic as cp1252: ~100 %


class LoadError(Exception):
    """The file cannot be ingested; the message says why."""


@dataclass(frozen=True)
class LoadedFile:
    text: str
    title: str
    warnings: list[str] = field(default_factory=list)


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
    title = _first_line_title(text, path) if path.suffix.lower() == ".md" else path.stem
    return LoadedFile(text=text, title=title, warnings=warnings)


def _load_html(path: Path, data: bytes) -> LoadedFile:
    import trafilatura

    if looks_binary(data):
        raise LoadError("binary content, not HTML")
    text = trafilatura.extract(data, include_comments=False, include_tables=True)
    if not text:
        raise LoadError("no main text found in the HTML")
    meta = trafilatura.extract_metadata(data)
    title = (meta.title if meta and meta.title else "") or path.stem
    return LoadedFile(text=text, title=title[:_MAX_TITLE])


def _load_pdf(path: Path) -> LoadedFile:
    from llama_index.readers.file import PDFReader

    try:
        pages = PDFReader(return_full_document=True).load_data(path)
    except RetryError as exc:  # PDFReader retries; report what pypdf said, not tenacity's wrapper
        cause = exc.last_attempt.exception() or exc
        raise LoadError(f"unreadable PDF ({type(cause).__name__}: {cause})") from cause
    except Exception as exc:  # pypdf raises many types for broken files
        raise LoadError(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(page.text for page in pages)
    return LoadedFile(text=text, title=_pdf_title(path) or path.stem)


def _pdf_title(path: Path) -> str | None:
    from pypdf import PdfReader

    try:
        title = (PdfReader(path).metadata or {}).get("/Title")
    except Exception:  # a title is optional; the text already loaded
        return None
    if not title:
        return None
    return str(title).strip()[:_MAX_TITLE] or None


def _load_docx(path: Path) -> LoadedFile:
    from llama_index.readers.file import DocxReader

    try:
        docs = DocxReader().load_data(path)
    except Exception as exc:  # docx2txt raises zipfile/KeyError/XML errors for broken files
        raise LoadError(f"unreadable DOCX ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(doc.text for doc in docs)
    return LoadedFile(text=text, title=_first_line_title(text, path))


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
        loaded = _load_pdf(path)
    elif suffix == ".docx":
        loaded = _load_docx(path)
    else:
        raise LoadError(f"unsupported file type {suffix!r}")
    if not loaded.text.strip():
        raise LoadError("no text could be extracted")
    return loaded
