"""Real, valid files of every supported format (and some broken ones) for tests.

`write_document(path, phrase)` writes one document whose format follows the suffix and
whose text contains `phrase` verbatim under a known heading; `write_every_format(folder)`
writes one of each with the phrases in PHRASES. All of it takes well under a second and
loads no model.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

# One distinctive phrase per format, so a test can tell which file a passage came from.
PHRASES: dict[str, str] = {
    ".md": "the marmalade ledger closes on Thursdays",
    ".txt": "plain notes mention the copper kettle rota",
    ".html": "the harbour office lends umbrellas",
    ".pdf": "the pelican printer needs badge 4417",
    ".docx": "dental cover includes two cleanings a year",
    ".pptx": "the roadmap ships the walrus release in May",
    ".xlsx": "Reykjavik office has 42 desks",
    ".csv": "Ingrid Okafor leads the falcon team",
    ".json": "a quokka is a travel request under 200 euros",
    ".yaml": "a narwhal is a deploy freeze",
}

# Titles the documents carry inside (plain text and CSV have none: theirs come from the
# file name), and the heading path of the section holding the phrase, per format.
TITLES: dict[str, str] = {
    ".md": "Markdown handbook",
    ".html": "Harbour office guide",
    ".pdf": "Printer manual",
    ".docx": "Benefits overview",
    ".pptx": "Quarterly roadmap",
    ".xlsx": "Offices",
    ".json": "JSON glossary",
    ".yaml": "YAML glossary",
}
HEADINGS: dict[str, tuple[str, ...]] = {
    ".md": ("Finance", "Closing the books"),
    ".txt": (),
    ".html": ("Facilities", "Rain"),
    ".pdf": ("Setup", "Badges"),
    ".docx": ("Benefits", "Dental"),
    ".pptx": ("Releases",),
    ".xlsx": ("Locations",),
    ".csv": (),
    ".json": ("glossary",),
    ".yaml": ("glossary",),
}


def write_markdown(path: Path, phrase: str) -> None:
    path.write_text(
        "---\n"
        f"title: {TITLES['.md']}\n"
        "owner: finance@example.com\n"
        "---\n\n"
        f"# {TITLES['.md']}\n\n"
        "How money moves. See [the wiki](https://wiki.example.com/finance) for more.\n\n"
        "## Finance\n\n"
        "Finance owns budgets.\n\n"
        "### Closing the books\n\n"
        f"Every month {phrase}.\n\n"
        "```\n# a comment in code, not a heading\n```\n\n"
        "## Travel\n\n"
        "Book trains when the trip is under four hours.\n",
        encoding="utf-8",
    )


def write_text(path: Path, phrase: str) -> None:
    path.write_text(f"Office notes\n\nThe {phrase}.\nThe kitchen closes at 18:00.\n", encoding="utf-8")


def write_html(path: Path, phrase: str) -> None:
    path.write_text(
        "<!doctype html><html><head>"
        f"<title>{TITLES['.html']}</title><style>body {{ color: red; }}</style></head>"
        "<body><nav>Home | Search | Sign in</nav>"
        f"<h1>{TITLES['.html']}</h1><p>Welcome to the <b>harbour</b> office.</p>"
        "<h2>Facilities</h2><p>Lockers are on floor 2.</p>"
        f"<h3>Rain</h3><p>On wet days {phrase}.</p>"
        "<script>var trackingSecret = 'should-not-be-indexed';</script>"
        "</body></html>",
        encoding="utf-8",
    )


def pdf_bytes(phrase: str, password: str | None = None) -> bytes:
    """A two-page PDF with a title, an outline (Setup > Badges on page 2) and real text."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle(TITLES[".pdf"])
    pdf.bookmarkPage("setup")
    pdf.addOutlineEntry("Setup", "setup", level=0)
    pdf.drawString(72, 760, "Unpack the printer and plug it in.")
    pdf.showPage()
    pdf.bookmarkPage("badges")
    pdf.addOutlineEntry("Badges", "badges", level=1)
    pdf.drawString(72, 760, f"To print, {phrase}.")
    pdf.showPage()
    pdf.save()
    if password is None:
        return buffer.getvalue()
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    return encrypted.getvalue()


def write_pdf(path: Path, phrase: str) -> None:
    path.write_bytes(pdf_bytes(phrase))


def write_docx(path: Path, phrase: str) -> None:
    from docx import Document

    document = Document()
    document.core_properties.title = TITLES[".docx"]
    document.add_paragraph("Intro to benefits.")
    document.add_heading("Benefits", level=1)
    document.add_paragraph("All staff are covered from day one.")
    document.add_heading("Dental", level=2)
    document.add_paragraph(f"Our {phrase}.")
    table = document.add_table(rows=3, cols=2)
    for row, values in zip(table.rows, [("Plan", "Monthly cost"), ("Basic", "12"), ("Plus", "30")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.save(str(path))


def write_pptx(path: Path, phrase: str) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = TITLES[".pptx"]
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = TITLES[".pptx"]
    first.placeholders[1].text = "Planning for next year"
    second = deck.slides.add_slide(deck.slide_layouts[1])
    second.shapes.title.text = "Releases"
    second.placeholders[1].text = f"This year {phrase}."
    second.notes_slide.notes_text_frame.text = "Remind everyone about the beta list."
    table = second.shapes.add_table(2, 2, Inches(1), Inches(5), Inches(4), Inches(1)).table
    for (row, column), value in {(0, 0): "Release", (0, 1): "Month", (1, 0): "Walrus", (1, 1): "May"}.items():
        table.cell(row, column).text = value
    deck.save(str(path))


def write_xlsx(path: Path, phrase: str) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Locations"
    sheet.append(["City", "Desks", "Note"])
    sheet.append(["Lisbon", 30, "near the river"])
    sheet.append(["Reykjavik", 42, phrase])
    sheet.append([None, None, None])
    sheet.append(["Osaka", 12.0, "opened 2024"])
    holidays = workbook.create_sheet("Holidays")
    holidays.append(["Date", "Holiday"])
    holidays.append(["2025-12-25", "Christmas Day"])
    workbook.properties.title = TITLES[".xlsx"]
    workbook.save(str(path))


def write_csv(path: Path, phrase: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Team", "Note"])
        writer.writerow(["Amara Diallo", "Payments", "on call in March"])
        writer.writerow(["Ingrid Okafor", "Falcon", phrase])


def write_json(path: Path, phrase: str) -> None:
    data = {"title": TITLES[".json"], "glossary": {"quokka": phrase}, "version": 3}
    path.write_text(json.dumps(data), encoding="utf-8")


def write_yaml(path: Path, phrase: str) -> None:
    path.write_text(
        f"# Terms people use here\ntitle: {TITLES['.yaml']}\nglossary:\n  narwhal: {phrase}\nversion: 3\n",
        encoding="utf-8",
    )


WRITERS: dict[str, Callable[[Path, str], None]] = {
    ".md": write_markdown,
    ".txt": write_text,
    ".html": write_html,
    ".pdf": write_pdf,
    ".docx": write_docx,
    ".pptx": write_pptx,
    ".xlsx": write_xlsx,
    ".csv": write_csv,
    ".json": write_json,
    ".yaml": write_yaml,
}


def write_document(path: Path, phrase: str | None = None) -> Path:
    """Write a valid document of the format named by `path`'s suffix, containing `phrase`
    (default: PHRASES for that suffix). Parent folders are created."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[suffix](path, PHRASES[suffix] if phrase is None else phrase)
    return path


def write_every_format(folder: Path) -> dict[str, Path]:
    """One valid document per supported format, named `sample<suffix>`, keyed by suffix."""
    return {suffix: write_document(folder / f"sample{suffix}") for suffix in WRITERS}


def write_broken_files(folder: Path) -> dict[str, Path]:
    """Files a sync must skip: keys corrupt_pdf, encrypted_pdf, truncated_docx (reported
    as failures) and image, binary (unsupported, only counted)."""
    folder.mkdir(parents=True, exist_ok=True)
    docx_path = folder / "truncated.docx"
    write_docx(docx_path, "this text is lost to truncation")
    docx_path.write_bytes(docx_path.read_bytes()[:700])
    files = {
        "corrupt_pdf": folder / "corrupt.pdf",
        "encrypted_pdf": folder / "encrypted.pdf",
        "truncated_docx": docx_path,
        "image": folder / "photo.png",
        "binary": folder / "tool.bin",
    }
    files["corrupt_pdf"].write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage without xref\n")
    files["encrypted_pdf"].write_bytes(pdf_bytes("the vault code is 9931", password="hunter2"))
    files["image"].write_bytes(_png())
    files["binary"].write_bytes(bytes(range(256)) * 4)
    return files


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip archive in memory (an Office file is one); for malformed-package tests."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()
