"""The PDF evaluation (`rag eval --pdf`): text fidelity, the PDF penalty, and real reports.

**Fidelity**, on `eval/pdfs/squad/`: each `<name>.pdf` (the SQuAD articles drawn as two-column,
justified, hyphenated pages by `bench/pdf_render.py`) beside a `<name>.json` truth file (title,
headings and paragraphs in order, the running header). Each measure is a share of the
extracted, cleaned text:

| measure | counts | of |
|---|---|---|
| broken_words | word tokens not in the truth ("comprehe nsive", "fine- tuning") | word tokens |
| hard_breaks | sentences holding a single line break (paragraphs are separated by blank lines) | sentences |
| glued_headings | headings of the truth that are not a paragraph of their own | headings |
| furniture_lines | lines holding the running header or a bare page number | lines |

They are scored for the product's reader and, for comparison, for pypdf (the reader before it,
through LlamaIndex's `PDFReader`), both after the same cleaning.

**PDF penalty**: SQuAD retrieval hit@1 / hit@5 over the PDF articles against the same articles
as plain text, in one run, on the same questions (those whose answers the PDFs draw).

**Real reports**, on `eval/pdfs/nist/` (five NIST publications): the chunks ingest would store,
checked for running headers and footers, dot-leader (table of contents) chunks and symbol-font
bullets. What counts as a running header is read off pypdf's text, not ours: a first or last
line of a page that recurs (digits ignored) on 30 % of pages.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from eval.cases import Case

FOLDER = Path(__file__).parent / "pdfs"  # the PDF set (data; this module is eval.pdf_eval)
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(]?[A-Z])")
_PAGE_NUMBER = re.compile(r"^\s*\d{1,4}\s*$")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_DOTS = re.compile(r"(?:\.\s?){4,}")
_REPORT_RECUR = 0.3
_MIN_FURNITURE_CHARS = 12  # shorter recurring lines ("Page", "NIST") are words in prose too


@dataclass
class Fidelity:
    words: int = 0
    broken_words: int = 0
    sentences: int = 0
    hard_breaks: int = 0
    headings: int = 0
    glued_headings: int = 0
    lines: int = 0
    furniture_lines: int = 0

    def add(self, other: Fidelity) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def shares(self) -> dict[str, float]:
        def share(n: int, of: int) -> float:
            return round(n / of, 5) if of else 0.0

        return {
            "broken_words": share(self.broken_words, self.words),
            "hard_breaks": share(self.hard_breaks, self.sentences),
            "glued_headings": share(self.glued_headings, self.headings),
            "furniture_lines": share(self.furniture_lines, self.lines),
        }


def truth_text(truth: dict) -> str:
    return "\n\n".join(b["text"] for b in truth["blocks"])


def score(text: str, truth: dict) -> Fidelity:
    vocabulary = {
        w.casefold()
        for w in _WORD.findall(f"{truth['title']}\n{truth['running_header']}\n{truth_text(truth)}")
    }
    words = [w.casefold() for w in _WORD.findall(text)]
    sentences = [s for p in text.split("\n\n") for s in _SENTENCE_END.split(p) if s.strip()]
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    paragraphs = {p.strip() for p in text.split("\n\n")}
    headings = [b["text"] for b in truth["blocks"] if b["kind"] == "heading"]
    header = truth["running_header"]
    return Fidelity(
        words=len(words),
        broken_words=sum(1 for w in words if w not in vocabulary),
        sentences=len(sentences),
        hard_breaks=sum(1 for s in sentences if "\n" in s.strip()),
        headings=len(headings),
        glued_headings=sum(1 for h in headings if h not in paragraphs),
        lines=len(lines),
        furniture_lines=sum(1 for ln in lines if header in ln or _PAGE_NUMBER.match(ln)),
    )


def truth_files(folder: Path) -> list[tuple[Path, dict]]:
    return [
        (pdf, json.loads(pdf.with_suffix(".json").read_text(encoding="utf-8")))
        for pdf in sorted(folder.glob("*.pdf"))
        if pdf.with_suffix(".json").exists()
    ]


def product_text(path: Path) -> str:
    """The text ingest stores for a PDF: our reader, then cleaning."""
    from index.clean import clean_pages
    from index.loaders import load_file

    loaded = load_file(path, path.read_bytes())
    return clean_pages(loaded.pages, loaded.joins).text


def pypdf_text(path: Path) -> str:
    """The text the previous reader stored: LlamaIndex's PDFReader (pypdf), then cleaning."""
    from llama_index.readers.file import PDFReader

    from index.clean import clean_text

    return clean_text("\n\n".join(p.text for p in PDFReader(return_full_document=True).load_data(path))).text


READERS: dict[str, Callable[[Path], str]] = {"product": product_text, "pypdf": pypdf_text}


def fidelity(folder: Path, readers: dict[str, Callable[[Path], str]] = READERS) -> dict[str, dict]:
    """Fidelity totals per reader over every PDF of `folder` that has a truth file."""
    results = {}
    for name, read in readers.items():
        total = Fidelity()
        for path, truth in truth_files(folder):
            total.add(score(read(path), truth))
        results[name] = {**total.shares(), "counts": asdict(total)}
    return results


def _as_docx(truth: dict) -> bytes:
    import io

    import docx

    document = docx.Document()
    document.add_heading(truth["title"], level=0)
    for block in truth["blocks"]:
        if block["kind"] == "heading":
            document.add_heading(block["text"], level=1)
        else:
            document.add_paragraph(block["text"])
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _as_html(truth: dict) -> bytes:
    from html import escape

    body = "".join(
        f"<h2>{escape(b['text'])}</h2>" if b["kind"] == "heading" else f"<p>{escape(b['text'])}</p>"
        for b in truth["blocks"]
    )
    page = f"<html><head><title>{escape(truth['title'])}</title></head><body><nav>Home</nav>"
    return (page + f"<article><h1>{escape(truth['title'])}</h1>{body}</article></body></html>").encode()


def other_formats(folder: Path) -> dict[str, dict]:
    """The same truth written as DOCX (heading styles) and HTML (h1/h2), read back by the
    product's loaders and scored like the PDFs, with the share of headings found as sections."""
    from index.clean import clean_pages
    from index.loaders import load_file

    results = {}
    for suffix, write in ((".docx", _as_docx), (".html", _as_html)):
        total, headings, found = Fidelity(), 0, 0
        for path, truth in truth_files(folder):
            loaded = load_file(path.with_suffix(suffix), write(truth))
            total.add(score(clean_pages(loaded.pages, loaded.joins).text, truth))
            wanted = [b["text"] for b in truth["blocks"] if b["kind"] == "heading"]
            headings += len(wanted)
            found += len(set(wanted) & {h.text for h in loaded.headings})
        results[suffix.lstrip(".")] = {**total.shares(), "headings_as_sections": round(found / headings, 4)}
    return results


def write_markdown(folder: Path, out: Path) -> Path:
    """The truth of each PDF as Markdown (title, `##` headings, paragraphs): the same article in
    the third format the penalty compares."""
    out.mkdir(parents=True, exist_ok=True)
    for path, truth in truth_files(folder):
        blocks = [f"## {b['text']}" if b["kind"] == "heading" else b["text"] for b in truth["blocks"]]
        (out / f"{path.stem}.md").write_text("\n\n".join([f"# {truth['title']}", *blocks]) + "\n")
    return out


def penalty_cases(cases: list[Case], folder: Path, suffixes: tuple[str, ...]) -> dict[str, list[Case]]:
    """The same questions once per format, each with its gold document in that format. A question
    whose answer the PDF does not draw (a character its font lacks) is left out of all."""
    drawn = {path.stem: truth_text(truth) for path, truth in truth_files(folder)}
    kept = [
        case
        for case in cases
        if case.has_retrieval_gold
        and Path(case.gold_doc or "").stem in drawn
        and all(q in drawn[Path(case.gold_doc or "").stem] for q in case.gold_quotes)
    ]
    return {
        suffix: [c.model_copy(update={"gold_doc": Path(c.gold_doc or "").stem + suffix}) for c in kept]
        for suffix in suffixes
    }


def _pypdf_furniture(path: Path) -> set[str]:
    """Running header and footer lines as pypdf sees them: a page's first or last two lines that
    recur, digits ignored, on 30 % of pages."""
    from pypdf import PdfReader

    pages = [(page.extract_text() or "").splitlines() for page in PdfReader(path).pages]
    counts: Counter[str] = Counter()
    for lines in pages:
        edge = [ln.strip() for ln in lines[:2] + lines[-2:] if len(ln.strip()) >= _MIN_FURNITURE_CHARS]
        counts.update({re.sub(r"\d+", "#", ln) for ln in edge})
    need = max(3, _REPORT_RECUR * len(pages))
    return {line for line, n in counts.items() if n >= need}


def report_checks(
    folder: Path,
    split: Callable[[str], list[str]],
    only: str = "*.pdf",
    read: Callable[[Path], str] = product_text,
) -> dict[str, dict]:
    """Per real PDF (matching `only`): chunks (as `split` cuts the text `read` stores) holding a
    running header or footer, mostly dot leaders, or a symbol-font glyph."""
    out = {}
    for path in sorted(folder.glob(only)):
        chunks = split(read(path))
        furniture = [re.compile(re.escape(line).replace("\\#", r"\d+")) for line in _pypdf_furniture(path)]
        out[path.name] = {
            "chunks": len(chunks),
            "furniture_patterns": len(furniture),
            "with_header_or_footer": sum(1 for c in chunks if any(p.search(c) for p in furniture)),
            "mostly_dot_leaders": sum(1 for c in chunks if sum(map(len, _DOTS.findall(c))) > 0.3 * len(c)),
            "with_symbol_glyphs": sum(1 for c in chunks if _PRIVATE_USE.search(c)),
        }
    return out


def _stat(results: dict, metric: str) -> dict:
    block = results["modes"]["hybrid"]
    low, high = block["ci95"][metric]
    return {"mean": block[metric], "ci95": [low, high], "n": block["n"][metric]}


def penalty(runs: dict[str, dict]) -> dict:
    """hit@1, hit@5 and MRR per format ("text", "pdf", "markdown"), and the drop in points of
    each format from plain text."""
    out = {}
    for metric in ("hit@1", "hit@5", "mrr"):
        row = {name: _stat(results, metric) for name, results in runs.items()}
        row["drop_points"] = {
            name: round(100 * (row["text"]["mean"] - row[name]["mean"]), 2) for name in runs if name != "text"
        }
        out[metric] = row
    return out


def markdown(results: dict) -> str:
    lines = ["# PDF evaluation", "", f"Created {results['meta']['created_at']}.", "", "## Text fidelity", ""]
    lines += [f"On {results['meta']['fidelity_set']} (shares of the stored text; lower is better).", ""]
    readers = list(results["fidelity"])
    lines += ["| measure | " + " | ".join(readers) + " |", "|---|" + "---|" * len(readers)]
    for measure in ("broken_words", "hard_breaks", "glued_headings", "furniture_lines"):
        cells = [f"{100 * results['fidelity'][r][measure]:.3f} %" for r in readers]
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    lines += ["", "The same articles written as DOCX and HTML and read by the product's loaders:", ""]
    lines += [
        "| format | broken words | hard breaks | glued headings | headings as sections |",
        "|---|---|---|---|---|",
    ]
    for fmt, row in results["other_formats"].items():
        lines.append(
            f"| {fmt} | {100 * row['broken_words']:.3f} % | {100 * row['hard_breaks']:.3f} % "
            f"| {100 * row['glued_headings']:.3f} % | {100 * row['headings_as_sections']:.1f} % |"
        )
    lines += ["", "## PDF penalty (SQuAD retrieval, hybrid)", ""]
    n = results["meta"]["penalty_cases"]
    lines += [f"{n} questions, the same articles as text, as PDF and as Markdown, in one run.", ""]
    lines += [
        "| metric | text | PDF | Markdown | drop from text (PDF, Markdown; points) |",
        "|---|---|---|---|---|",
    ]
    for metric, row in results["penalty"].items():
        cells = [
            f"{row[f]['mean']:.3f} [{row[f]['ci95'][0]:.3f}, {row[f]['ci95'][1]:.3f}]"
            for f in ("text", "pdf", "markdown")
        ]
        drops = ", ".join(f"{row['drop_points'][f]:+.2f}" for f in ("pdf", "markdown"))
        lines.append(f"| {metric} | " + " | ".join(cells) + f" | {drops} |")
    lines += ["", "## Real reports (chunks as ingest stores them: ours / pypdf's)", ""]
    lines += [
        "| file | chunks | with a running header/footer | mostly dot leaders | symbol glyphs |",
        "|---|---|---|---|---|",
    ]
    before = results.get("reports_pypdf", {})
    for name, row in results["reports"].items():
        old = before.get(name, {})
        cells = [
            f"{row[key]} / {old.get(key, '-')}"
            for key in ("chunks", "with_header_or_footer", "mostly_dot_leaders", "with_symbol_glyphs")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "report.md").write_text(markdown(results))
