"""The PDF reader: layout post-pass, pages and labels, bad files; scored on real PDFs too."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fpdf import FPDF
from pdf_fixtures import HEADER, PROSE, report_pdf
from pypdf import PdfWriter

from eval import pdf_eval
from index.chunking import Chunker
from index.clean import clean_pages
from index.loaders import LoadError, load_file
from index.pdf import PdfError, read_pdf
from index.pdf_paragraphs import _Vocabulary


def stored(data: bytes, name: str = "report.pdf") -> tuple[str, list[int], object]:
    loaded = load_file(Path(name), data)
    cleaned = clean_pages(loaded.pages, loaded.joins)
    return cleaned.text, cleaned.page_starts, loaded


def test_running_headers_and_page_numbers_are_dropped():
    text, _, loaded = stored(report_pdf([[("para", PROSE * 2)] for _ in range(5)]))
    assert HEADER not in text
    assert not any(line.strip().isdigit() for line in text.split("\n"))
    assert loaded.dropped["running_header_footer"] == 10
    assert PROSE.split(". ")[0] in text


def test_a_header_naming_its_chapter_is_known_by_its_page_number():
    def chapter_header(number: int) -> str:  # each chapter's header is on two pages only
        return f"Chapter {(number + 1) // 2}: Part {'ABC'[(number - 1) // 2]} {number}"

    pages = [[("para", f"Page {n} holds this. " + PROSE)] for n in range(1, 7)]
    text, _, _ = stored(report_pdf(pages, header=chapter_header))
    assert "Chapter" not in text and "Page 6 holds this." in text


def test_wrapped_lines_are_unwrapped_and_paragraphs_kept():
    page = [("para", PROSE * 3), ("para", "A second, short paragraph.")]
    text, starts, _ = stored(report_pdf([page, page, page]))  # three pages: the header is furniture
    assert text[: starts[1]].split("\n\n")[:2] == [(PROSE * 3).strip(), "A second, short paragraph."]


def test_headings_are_paragraphs_of_their_own_with_levels():
    page = [("heading", "1 Cargo"), ("para", PROSE), ("heading", "1.1 Containers"), ("para", PROSE)]
    text, _, loaded = stored(report_pdf([page]))
    assert text.split("\n\n")[1:3] == ["1 Cargo", PROSE.strip()]  # after the (one-page) header
    assert [(h.level, h.text) for h in loaded.headings] == [(1, "1 Cargo"), (2, "1.1 Containers")]


def test_bullet_glyphs_become_plain_list_markers():
    text, _, _ = stored(
        report_pdf(
            [[("para", PROSE), ("bullet", "Dredging finished in May."), ("bullet", "The ferry ran daily.")]]
        )
    )
    assert "• Dredging finished in May.\n\n• The ferry ran daily." in text


def test_a_paragraph_running_over_a_page_break_is_one_paragraph_and_pages_are_mapped():
    first = PROSE + "The new cranes were delivered in"
    second = "and were working by March, two months ahead of plan."
    text, starts, loaded = stored(
        report_pdf([[("para", first)], [("para", second)], [("para", PROSE)]], labels="r")
    )
    assert f"delivered in {second}" in text
    assert text[starts[1] :].startswith("and were working")
    assert loaded.labels == ["i", "ii", "iii"]


def test_page_metadata_of_every_chunk_matches_where_its_text_sits():
    pages = [[("para", f"Page {n} says: " + PROSE * 4)] for n in range(1, 6)]
    text, starts, loaded = stored(report_pdf(pages))
    from rag import records

    for chunk in Chunker(64, 8).split(text):
        meta = records.page_metadata(starts, loaded.labels, chunk.start, chunk.end)
        first = text.rfind("Page ", 0, chunk.start + len("Page "))
        # The chunk starts on the page whose "Page n says" came last before it.
        assert meta[records.PAGE] == (int(text[first + 5]) if first >= 0 else 1)
        assert meta[records.PAGE] <= meta[records.PAGE_END]


@pytest.mark.parametrize(
    ("left", "right", "elsewhere", "written"),
    [
        ("petro", "leum", "", "petroleum"),  # a word of the word list: the layout's hyphen
        ("Schu", "macker", "", "Schumacker"),  # not a word, nor two: the layout's hyphen
        ("self", "determination", "", "self-determination"),  # two common words, rare as one
        ("fine", "tuning", "fine-tuning helps", "fine-tuning"),  # the document writes it so
        ("data", "base", "the database", "database"),
    ],
)
def test_a_line_end_hyphen_is_kept_only_where_the_word_has_one(left, right, elsewhere, written):
    from index.pdf_lines import Line

    lines = [Line(elsewhere, 0, 1, 0, 1, 10, False, 1)] if elsewhere else []
    assert _Vocabulary([lines]).join(left, right) == written


def test_encrypted_truncated_and_scanned_pdfs_fail_with_one_clear_line():
    data = report_pdf([[("para", PROSE)]])
    locked = PdfWriter(clone_from=io.BytesIO(data))
    locked.encrypt("secret")
    buffer = io.BytesIO()
    locked.write(buffer)
    with pytest.raises(PdfError, match=r"^encrypted PDF: it needs a password"):
        read_pdf(buffer.getvalue())
    with pytest.raises(PdfError, match=r"^unreadable PDF \("):
        read_pdf(data[: len(data) // 2])
    scanned = FPDF()
    scanned.add_page()
    scanned.rect(20, 20, 100, 100, style="F")  # a picture of a page: no characters at all
    with pytest.raises(LoadError, match=r"^no text layer \(a scanned PDF\?\); OCR is not available$"):
        load_file(Path("scan.pdf"), bytes(scanned.output()))


# --- the shipped PDF set ------------------------------------------------------------------------


def test_fidelity_on_a_two_column_hyphenated_article_meets_the_targets():
    path = pdf_eval.FOLDER / "squad" / "1973_oil_crisis.pdf"
    truth = dict(pdf_eval.truth_files(path.parent))[path]
    shares = pdf_eval.score(pdf_eval.product_text(path), truth).shares()
    assert shares["broken_words"] <= 0.0005
    assert shares["hard_breaks"] <= 0.01
    assert shares["glued_headings"] <= 0.03
    assert shares["furniture_lines"] <= 0.001
    # The reader before this one fails the same check: the measure can tell them apart.
    assert pdf_eval.score(pdf_eval.pypdf_text(path), truth).shares()["hard_breaks"] > 0.5


def test_a_real_report_has_no_running_header_leader_chunk_or_symbol_glyph():
    chunker = Chunker(400, 40)
    report = pdf_eval.report_checks(
        pdf_eval.FOLDER / "nist", lambda text: [c.text for c in chunker.split(text)], only="SP800-61rev2.pdf"
    )["SP800-61rev2.pdf"]
    assert report["furniture_patterns"] >= 1 and report["chunks"] > 100
    assert (
        report["with_header_or_footer"] == report["mostly_dot_leaders"] == report["with_symbol_glyphs"] == 0
    )


# --- through ingest -------------------------------------------------------------------------------


def test_bad_pdfs_fail_one_by_one_with_a_clear_line_and_the_rest_is_ingested(make_ingestor, tmp_path: Path):
    from conftest import store_rows

    from rag import records

    folder = tmp_path / "reports"
    folder.mkdir()
    last = "The third page closes the report with thanks to the crews."
    good = report_pdf(
        [[("heading", "1 Cargo"), ("para", PROSE * 3)], [("para", PROSE * 2)], [("para", last)]]
    )
    (folder / "good.pdf").write_bytes(good)
    locked = PdfWriter(clone_from=io.BytesIO(good))
    locked.encrypt("secret")
    with open(folder / "encrypted.pdf", "wb") as handle:
        locked.write(handle)
    (folder / "truncated.pdf").write_bytes(good[: len(good) // 2])
    scanned = FPDF()
    scanned.add_page()
    scanned.rect(20, 20, 100, 100, style="F")
    (folder / "scanned.pdf").write_bytes(bytes(scanned.output()))
    thick = FPDF()
    thick.set_font("Helvetica", size=11)
    for n in range(2000):
        thick.add_page()
        thick.text(20, 20, f"Page {n + 1} of the long appendix.")
    (folder / "appendix.pdf").write_bytes(bytes(thick.output()))
    size_mb = (folder / "appendix.pdf").stat().st_size / 1e6
    ingestor = make_ingestor(max_file_bytes=int(size_mb * 1e6) - 1)

    report = ingestor.ingest([folder])
    results = {Path(f.path).name: f for f in report.files}
    assert results["encrypted.pdf"].error == "encrypted PDF: it needs a password, which ingest does not have"
    assert results["truncated.pdf"].error.startswith("unreadable PDF (")
    assert results["scanned.pdf"].error == "no text layer (a scanned PDF?); OCR is not available"
    assert results["appendix.pdf"].error.endswith("MB limit (RAG_MAX_FILE_MB)")
    assert results["good.pdf"].status == "added"
    rows = store_rows(ingestor.store)
    assert rows and all(meta[records.DOC_ID] == "reports/good.pdf" for _, _, meta in rows)
    assert {meta[records.PAGE] for _, _, meta in rows} >= {1}
    assert max(meta[records.PAGE_END] for _, _, meta in rows) == 3
    assert all(meta.get(records.SECTION) == "1 Cargo" for _, _, meta in rows)


def test_penalty_compares_the_same_questions_in_every_format():
    from eval.cases import Case

    folder = pdf_eval.FOLDER / "squad"
    drawn = pdf_eval.truth_text(dict(pdf_eval.truth_files(folder))[folder / "Force.pdf"])
    sentence = drawn.split(". ")[1]
    cases = [
        Case(id="a", question="q", gold_doc="Force.txt", gold_quotes=[sentence]),
        Case(id="b", question="q", gold_doc="Force.txt", gold_quotes=["not drawn 乾"]),  # the font lacks it
        Case(id="c", question="q", answerable=False, gold_doc="Force.txt"),
    ]
    by_format = pdf_eval.penalty_cases(cases, folder, (".txt", ".pdf", ".md"))
    assert {s: [(c.id, c.gold_doc) for c in v] for s, v in by_format.items()} == {
        ".txt": [("a", "Force.txt")],
        ".pdf": [("a", "Force.pdf")],
        ".md": [("a", "Force.md")],
    }

    def run(hit: float) -> dict:
        block = {m: hit for m in ("hit@1", "hit@5", "mrr")}
        return {
            "modes": {"hybrid": block | {"ci95": {m: [0, 1] for m in block}, "n": dict.fromkeys(block, 1)}}
        }

    penalty = pdf_eval.penalty({"text": run(0.9), "pdf": run(0.88), "markdown": run(0.91)})
    assert penalty["hit@5"]["drop_points"] == {"pdf": 2.0, "markdown": -1.0}


def test_markdown_copy_of_the_set_keeps_headings_as_sections(tmp_path: Path):
    out = pdf_eval.write_markdown(pdf_eval.FOLDER / "squad", tmp_path / "md")
    loaded = load_file(out / "Force.md", (out / "Force.md").read_bytes())
    assert loaded.title == "Force" and [h.level for h in loaded.headings[:2]] == [1, 2]
