"""Unit tests for index.loaders: real files of every supported type, written to tmp_path."""

from __future__ import annotations

import random
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from index.loaders import LoadedFile, LoadError, load_file

FRENCH = "\n".join(
    [
        "La région Bourgogne-Franche-Comté a présenté mercredi son nouveau plan de développement économique. "
        "Selon le président du conseil régional, les entreprises locales bénéficieront d'aides "
        "supplémentaires dès l'année prochaine.",
        "Les élus de l'opposition ont critiqué un projet « trop timide » et réclamé des mesures plus "
        "ambitieuses pour l'emploi des jeunes. Ils estiment que la transition énergétique nécessite des "
        "investissements plus élevés.",
        "À Besançon, les commerçants du centre-ville attendent surtout une amélioration de l'accès en "
        "transports en commun. « Nous avons perdu près d'un tiers de notre clientèle depuis la fermeture "
        "du parking », déplore une fleuriste.",
    ]
)

ARTICLE = [
    "After two years of repairs, the old fish market on the harbour front opened its doors again on "
    "Saturday morning, drawing a crowd of several hundred residents.",
    "The building, which dates from 1894, had been closed after storm damage to its roof and to the stone "
    "quay that supports the eastern wall.",
    "Traders said the first day exceeded their expectations, with most stalls selling out of mackerel and "
    "crab well before noon.",
    "The council plans to add a covered seating area next spring, paid for by a grant from the regional "
    "heritage fund.",
]
NAV_LINKS = ["Homepage", "Weather Desk", "Sports Roundup"]
SCRIPT_MARKER = "analyticsTokenXYZ"
FOOTER = "Copyright 2024 Harbour Gazette. All rights reserved."


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def load(path: Path) -> LoadedFile:
    return load_file(path, path.read_bytes())


def binary_bytes() -> bytes:
    """A PNG signature followed by random bytes, NULs included."""
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(0).randbytes(4000)


def html_page() -> str:
    paragraphs = "\n".join(f"<p>{p}</p>" for p in ARTICLE)
    links = "".join(f'<li><a href="/{i}">{text}</a></li>' for i, text in enumerate(NAV_LINKS))
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Fish market reopens after storm repairs</title>
  <script>var token = "{SCRIPT_MARKER}"; console.log("pageview");</script>
</head>
<body>
  <nav><ul>{links}</ul></nav>
  <article>
    <h2>Harbour Town Reopens Its Fish Market</h2>
    {paragraphs}
  </article>
  <footer><p>{FOOTER}</p><a href="/privacy">Privacy Policy</a></footer>
</body>
</html>"""


def write_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    pdf.output(str(path))
    return path


# --- plain text -------------------------------------------------------------------------------


def test_utf8_text_loads_unchanged(tmp_path: Path) -> None:
    text = "Grüße aus Zürich — naïve café, 東京, emoji 🚲.\nSecond line.\n"
    loaded = load(write(tmp_path, "notes.txt", text.encode("utf-8")))
    assert loaded == LoadedFile(pages=[text], title="notes", warnings=[])


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, "bom.txt", b"\xef\xbb\xbfHello, world.\n"))
    assert loaded.text == "Hello, world.\n"
    assert loaded.warnings == []


def test_legacy_encoding_is_detected_with_a_warning(tmp_path: Path) -> None:
    data = FRENCH.encode("cp1252")
    loaded = load(write(tmp_path, "region.txt", data))
    assert loaded.text == FRENCH
    (warning,) = loaded.warnings
    assert warning.startswith("not UTF-8; decoded as ")
    assert data.decode(warning.removeprefix("not UTF-8; decoded as ")) == FRENCH


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html"])
def test_binary_content_is_rejected(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(LoadError, match="binary"):
        load(write(tmp_path, f"image{suffix}", binary_bytes()))


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".pdf", ".docx"])
def test_empty_file_is_rejected(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(LoadError, match=r"^empty file$"):
        load(write(tmp_path, f"empty{suffix}", b""))


def test_whitespace_only_file_has_no_text(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no text could be extracted"):
        load(write(tmp_path, "blank.txt", b"  \n\t\n"))


@pytest.mark.parametrize("name", ["sheet.xlsx", "data.csv", "README"])
def test_unsupported_suffix_is_rejected(tmp_path: Path, name: str) -> None:
    with pytest.raises(LoadError, match="unsupported file type"):
        load(write(tmp_path, name, b"some text"))


@pytest.mark.parametrize(
    ("markdown", "title"),
    [
        ("# Field Notes\n\nWe walked the ridge at dawn.\n", "Field Notes"),
        ("\n\n## Budget, 2024\nThe numbers are in.\n", "Budget, 2024"),
        ("#" + " Very long heading" * 10 + "\nBody.\n", "notes"),  # over 120 characters: the file name
    ],
)
def test_markdown_title_is_first_heading(tmp_path: Path, markdown: str, title: str) -> None:
    loaded = load(write(tmp_path, "notes.md", markdown.encode()))
    assert loaded.title == title
    assert loaded.text == markdown


def test_txt_title_is_file_name_even_with_a_heading(tmp_path: Path) -> None:
    assert load(write(tmp_path, "diary.txt", b"# Not a title\nText.\n")).title == "diary"


# --- HTML -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".html", ".htm"])
def test_html_keeps_the_article_only(tmp_path: Path, suffix: str) -> None:
    loaded = load(write(tmp_path, f"page{suffix}", html_page().encode()))
    for paragraph in ARTICLE:
        assert paragraph in loaded.text
    for junk in [SCRIPT_MARKER, "pageview", FOOTER, *NAV_LINKS]:
        assert junk not in loaded.text
    assert loaded.title == "Fish market reopens after storm repairs"


def test_html_without_main_text_is_rejected(tmp_path: Path) -> None:
    page = f"<html><head><script>var token = '{SCRIPT_MARKER}';</script></head><body> </body></html>"
    with pytest.raises(LoadError, match="no main text"):
        load(write(tmp_path, "empty.html", page.encode()))


# --- PDF --------------------------------------------------------------------------------------

PAGES = [
    "First page: the harvest came early this year and filled every barn in the valley.",
    "Second page: grain prices fell across the region as the surplus reached the markets.",
]


def test_pdf_text_and_title(tmp_path: Path) -> None:
    loaded = load(write_pdf(tmp_path / "report.pdf", PAGES, title="My Report"))
    assert PAGES[0] in loaded.text
    assert PAGES[1] in loaded.text
    assert loaded.text.index(PAGES[0]) < loaded.text.index(PAGES[1])
    assert loaded.title == "My Report"


def test_pdf_without_title_uses_file_name(tmp_path: Path) -> None:
    assert load(write_pdf(tmp_path / "harvest.pdf", PAGES)).title == "harvest"


def test_pdf_without_text_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"^no text layer \(a scanned PDF\?\); OCR is not available$"):
        load(write_pdf(tmp_path / "blank.pdf", [""]))


def test_corrupt_pdf_is_rejected(tmp_path: Path) -> None:
    data = b"%PDF-1.4\n" + random.Random(1).randbytes(2000)
    with pytest.raises(LoadError, match=r"^unreadable PDF"):
        load(write(tmp_path, "broken.pdf", data))


# --- DOCX -------------------------------------------------------------------------------------


def test_docx_text_and_title(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Quarterly Review", level=1)
    document.add_paragraph("Sales grew in every region except the north.")
    document.add_paragraph("Costs were flat, and the new warehouse opened on time.")
    path = tmp_path / "review.docx"
    document.save(str(path))

    loaded = load(path)
    for text in ("Quarterly Review", "Sales grew in every region", "the new warehouse opened on time"):
        assert text in loaded.text
    assert loaded.title == "Quarterly Review"


@pytest.mark.parametrize(
    "data",
    [random.Random(2).randbytes(2000), b"PK\x03\x04" + random.Random(3).randbytes(2000)],
    ids=["random", "zip-signature"],
)
def test_corrupt_docx_is_rejected(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(LoadError, match=r"^unreadable DOCX"):
        load(write(tmp_path, "broken.docx", data))


# --- structure: headings, lists, tables -----------------------------------------------------------


def test_docx_headings_lists_and_tables_keep_their_structure(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Fleet Review", level=0)  # the Title style
    document.add_heading("1 Vessels", level=1)
    document.add_paragraph("Two tugs joined the fleet this spring.")
    document.add_heading("1.1 Tugs", level=2)
    document.add_paragraph("Both tugs run on shore power at night.", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for row, cells in zip(
        table.rows, [("Vessel", "Built"), ("Orca", "2019"), ("Puffin", "2023")], strict=True
    ):
        row.cells[0].text, row.cells[1].text = cells
    path = tmp_path / "fleet.docx"
    document.save(str(path))

    loaded = load(path)
    assert loaded.title == "Fleet Review"
    assert [(h.level, h.text) for h in loaded.headings] == [(1, "1 Vessels"), (2, "1.1 Tugs")]
    assert loaded.text.split("\n\n") == [
        "Fleet Review",
        "1 Vessels",
        "Two tugs joined the fleet this spring.",
        "1.1 Tugs",
        "• Both tugs run on shore power at night.",
        "Vessel: Orca; Built: 2019",
        "Vessel: Puffin; Built: 2023",
    ]


def test_html_headings_lists_and_tables_keep_their_structure(tmp_path: Path) -> None:
    page = (
        "<html><head><title>Refining</title></head><body><article>"
        f"<h1>Refining</h1><p>{ARTICLE[0]}</p><h2>2 Capacity</h2><p>{ARTICLE[1]}</p>"
        "<h3>2.1 By site</h3><ul><li>Site A runs at full load.</li><li>Site B is idle.</li></ul>"
        "<table><tr><th>Site</th><th>Capacity</th></tr><tr><td>A</td><td>100 kb/d</td></tr></table>"
        f"<h4>Notes</h4><p>{ARTICLE[2]}</p></article></body></html>"
    )
    loaded = load(write(tmp_path, "refining.html", page.encode()))
    assert [(h.level, h.text) for h in loaded.headings] == [
        (1, "Refining"),
        (2, "2 Capacity"),
        (3, "2.1 By site"),
    ]
    blocks = loaded.text.split("\n\n")
    for block in (
        "2 Capacity",
        "• Site A runs at full load.",
        "• Site B is idle.",
        "Site: A; Capacity: 100 kb/d",
    ):
        assert block in blocks, block


def test_markdown_headings_are_sections(tmp_path: Path) -> None:
    loaded = load(
        write(tmp_path, "notes.md", b"# Notes\n\nIntro.\n\n## Tides\n\nHigh at six.\n\n#### Deep\n\nx\n")
    )
    assert [(h.level, h.text) for h in loaded.headings] == [(1, "Notes"), (2, "Tides")]
