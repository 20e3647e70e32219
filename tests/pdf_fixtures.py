"""Small PDFs drawn for tests: a report with a running header, page numbers and headings."""

from __future__ import annotations

from fpdf import FPDF

HEADER = "Harbour Authority Annual Report 2024"
PROSE = (
    "The harbour handled more cargo this year than in any year since the new quay opened. "
    "Most of the growth came from container traffic, which rose by a fifth, while bulk grain "
    "fell slightly after a poor harvest inland. "
)


def report_pdf(
    pages: list[list[tuple[str, str]]], labels: str | None = None, header=lambda n: HEADER
) -> bytes:
    """A single-column report: a running header and a page number on every page, then blocks
    of ("heading" | "para" | "bullet", text), set ragged right by fpdf2."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    for number, blocks in enumerate(pages, 1):
        pdf.add_page()
        if labels and number == 1:
            pdf.set_page_label(label_style=labels)
        pdf.set_font("Helvetica", size=8)
        pdf.text(20, 10, header(number))
        pdf.text(105, 290, str(number))
        pdf.set_xy(20, 25)
        for kind, text in blocks:
            if kind == "heading":
                pdf.set_font("Helvetica", style="B", size=14)
                pdf.multi_cell(170, 8, text, new_x="LMARGIN", new_y="NEXT")
            else:
                pdf.set_font("Helvetica", size=11)
                pdf.set_x(20)
                pdf.multi_cell(
                    170, 5.5, ("\x95 " if kind == "bullet" else "") + text, new_x="LMARGIN", new_y="NEXT"
                )
            pdf.ln(3)
    return bytes(pdf.output())


TURBINE_FACT = "The Zorblax turbine at Lake Quimby produces 42 megawatts of tidal power."


def turbine_report() -> bytes:
    """Three pages; the turbine fact is on page 2, in section "2 Turbines"."""
    return report_pdf(
        [
            [("heading", "1 Harbour"), ("para", "Page one: " + PROSE * 4)],
            [("heading", "2 Turbines"), ("para", f"{TURBINE_FACT} " + "Page two: " + PROSE * 3)],
            [("heading", "3 Outlook"), ("para", "Page three: " + PROSE * 4)],
        ]
    )
