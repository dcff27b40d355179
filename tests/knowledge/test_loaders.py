"""Loaders parse real files of every supported format and refuse bad ones with a reason."""

from __future__ import annotations

import codecs
import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook
from pypdf import PdfWriter

from knowledge.errors import LoaderError, UnsupportedFormatError
from knowledge.loaders import LOADERS, is_supported, load_document
from knowledge.types import LoadedDocument, Section
from tests.support.files import (
    HEADINGS,
    PHRASES,
    TITLES,
    WRITERS,
    pdf_bytes,
    write_broken_files,
    write_document,
    zip_bytes,
)

SAMPLE_DOCS = Path(__file__).resolve().parents[2] / "knowledge" / "sample_docs"


def load(path: Path) -> LoadedDocument:
    return load_document(path, path.read_bytes())


def section_with(document: LoadedDocument, text: str) -> Section:
    matches = [section for section in document.sections if text in section.text]
    assert matches, f"{text!r} not in any section of {document.title!r}: {document.sections}"
    return matches[0]


def all_text(document: LoadedDocument) -> str:
    return "\n".join(section.text for section in document.sections)


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_every_format_yields_title_heading_path_and_text(tmp_path: Path, suffix: str) -> None:
    path = write_document(tmp_path / f"team-notes{suffix}")

    document = load(path)

    assert document.title == TITLES.get(suffix, "Team notes")
    assert section_with(document, PHRASES[suffix]).heading_path == HEADINGS[suffix]
    assert all(section.text.strip() for section in document.sections)


def test_every_writer_format_has_a_loader() -> None:
    assert set(WRITERS) <= set(LOADERS)


@pytest.mark.parametrize("name", ["a.md", "b.PDF", "c.Docx", "d.yml", "e.htm", "f.tsv", "g.markdown"])
def test_supported_suffixes_are_case_insensitive(name: str) -> None:
    assert is_supported(Path(name))


@pytest.mark.parametrize("name", ["photo.png", "tool.bin", "Makefile", "archive.zip", "old.doc"])
def test_unsupported_types_raise_unsupported_format(name: str) -> None:
    assert not is_supported(Path(name))
    with pytest.raises(UnsupportedFormatError, match="no loader"):
        load_document(Path(name), b"\x89PNG\r\n")


def test_broken_files_raise_loader_error_with_reason(tmp_path: Path) -> None:
    broken = write_broken_files(tmp_path)

    with pytest.raises(LoaderError, match="encrypted PDF; remove the password or exclude it"):
        load(broken["encrypted_pdf"])
    with pytest.raises(LoaderError, match="cannot parse PDF file: .+") as corrupt:
        load(broken["corrupt_pdf"])
    with pytest.raises(LoaderError, match="damaged or truncated") as truncated:
        load(broken["truncated_docx"])
    for unsupported in ("image", "binary"):
        with pytest.raises(UnsupportedFormatError):
            load(broken[unsupported])
    # Neither is the "unsupported" kind: sync reports them as failures, with the reason.
    assert not isinstance(corrupt.value, UnsupportedFormatError)
    assert not isinstance(truncated.value, UnsupportedFormatError)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("x.docx", zip_bytes({"hello.txt": b"not a word document"})),
        ("x.pptx", zip_bytes({"[Content_Types].xml": b"<broken"})),
        ("x.xlsx", b"PK\x03\x04 definitely not a workbook"),
        ("x.pdf", b"not a pdf at all"),
        ("x.pdf", b""),
    ],
)
def test_library_exceptions_never_escape_the_loader(name: str, data: bytes) -> None:
    with pytest.raises(LoaderError) as raised:
        load_document(Path(name), data)
    assert str(raised.value)
    assert not isinstance(raised.value, UnsupportedFormatError)


def test_pdf_with_owner_password_only_opens() -> None:
    writer = PdfWriter(clone_from=io.BytesIO(pdf_bytes("open to all readers")))
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)

    document = load_document(Path("manual.pdf"), buffer.getvalue())

    assert "open to all readers" in all_text(document)


def test_pdf_without_outline_is_sectioned_by_page() -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for page in ("first page words", "second page words"):
        pdf.drawString(72, 720, page)
        pdf.showPage()
    pdf.save()

    document = load_document(Path("quarterly-report.pdf"), buffer.getvalue())

    assert document.title == "Quarterly report"
    assert [(s.heading_path, s.text) for s in document.sections] == [
        (("Page 1",), "first page words"),
        (("Page 2",), "second page words"),
    ]


def test_pdf_without_text_is_reported_not_silently_empty() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)

    with pytest.raises(LoaderError, match="no extractable text"):
        load_document(Path("scan.pdf"), buffer.getvalue())


def test_pdf_text_before_a_heading_on_the_same_page_stays_under_the_previous_heading(tmp_path: Path) -> None:
    document = load(write_document(tmp_path / "printer.pdf"))

    assert section_with(document, "Unpack the printer").heading_path == ("Setup",)
    assert section_with(document, PHRASES[".pdf"]).heading_path == ("Setup", "Badges")


def test_markdown_front_matter_links_and_code_fences(tmp_path: Path) -> None:
    document = load(write_document(tmp_path / "finance.md"))
    text = all_text(document)

    assert "owner:" not in text and "finance@example.com" not in text  # front matter gone
    assert "See the wiki for more." in text and "wiki.example.com" not in text  # link target dropped
    assert "# a comment in code, not a heading" in text
    assert ("Travel",) in [section.heading_path for section in document.sections]
    # The level-1 heading is the title: it heads every chunk, so paths do not repeat it.
    assert all(TITLES[".md"] not in section.heading_path for section in document.sections)


@pytest.mark.parametrize(
    ("source", "title"),
    [
        ("# Office Moves\n\nWe move in May.\n", "Office Moves"),
        ("Just text, no heading.\n", "Office moves 2026"),
        ("---\ntitle: [not: valid: yaml\n---\nBody text.\n", "Office moves 2026"),
        ("---\ntitle: From front matter\n---\n# Other heading\n\nBody.\n", "From front matter"),
    ],
)
def test_markdown_title_fallbacks(source: str, title: str) -> None:
    document = load_document(Path("office_moves-2026.md"), source.encode())

    assert document.title == title
    assert "---" not in all_text(document)


def test_markdown_nested_headings_build_paths() -> None:
    source = "# Guide\n\nIntro.\n\n## A\n\na text\n\n### A1\n\na1 text\n\n## B\n\nb text\n\n# Appendix\n\nmore\n"

    document = load_document(Path("guide.md"), source.encode())

    assert [(s.heading_path, s.text) for s in document.sections] == [
        ((), "Intro."),
        (("A",), "a text"),
        (("A", "A1"), "a1 text"),
        (("B",), "b text"),
        (("Appendix",), "more"),
    ]


def test_html_drops_scripts_styles_and_navigation(tmp_path: Path) -> None:
    text = all_text(load(write_document(tmp_path / "office.html")))

    assert "Welcome to the harbour office." in text
    for dropped in ("trackingSecret", "should-not-be-indexed", "color: red", "Sign in"):
        assert dropped not in text


def test_docx_tables_become_row_blocks_with_header(tmp_path: Path) -> None:
    document = load(write_document(tmp_path / "benefits.docx"))

    table = section_with(document, "Monthly cost")
    assert table.atomic
    assert table.heading_path == ("Benefits", "Dental")
    assert table.text.split("\n") == ["Plan | Monthly cost", "Basic | 12", "Plus | 30"]


def test_pptx_slides_notes_and_tables(tmp_path: Path) -> None:
    document = load(write_document(tmp_path / "roadmap.pptx"))

    releases = section_with(document, PHRASES[".pptx"])
    assert "Notes: Remind everyone about the beta list." in releases.text
    assert "Walrus | May" in releases.text
    assert section_with(document, "Planning for next year").heading_path == ()  # title slide = deck title


def test_xlsx_sheets_blocks_and_cell_formatting(tmp_path: Path) -> None:
    document = load(write_document(tmp_path / "offices.xlsx"))

    locations = section_with(document, "Reykjavik")
    assert locations.atomic and locations.heading_path == ("Locations",)
    assert locations.text.split("\n") == [
        "City | Desks | Note",
        "Lisbon | 30 | near the river",
        f"Reykjavik | 42 | {PHRASES['.xlsx']}",
        "Osaka | 12 | opened 2024",  # blank row skipped, 12.0 shown as 12
    ]
    assert section_with(document, "Christmas Day").heading_path == ("Holidays",)


def test_large_sheet_is_cut_into_blocks_that_each_repeat_the_header() -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Employee", "Badge number"])
    for number in range(300):
        sheet.append([f"Person {number}", 10_000 + number])
    buffer = io.BytesIO()
    workbook.save(buffer)

    document = load_document(Path("badges.xlsx"), buffer.getvalue())

    assert len(document.sections) > 1
    rows: list[str] = []
    for section in document.sections:
        header, *block = section.text.split("\n")
        assert header == "Employee | Badge number" and section.atomic
        rows.extend(block)
    assert rows == [f"Person {number} | {10_000 + number}" for number in range(300)]


def test_csv_dialect_and_encoding_fallback() -> None:
    data = "Naam;Stad\nRené;Zürich\nAnaïs;Genève\n".encode("cp1252")

    document = load_document(Path("contacts.csv"), data)

    assert document.sections[0].text.split("\n") == ["Naam | Stad", "René | Zürich", "Anaïs | Genève"]


def test_json_is_pretty_printed_and_invalid_json_is_still_indexed() -> None:
    good = load_document(Path("offices.json"), json.dumps({"offices": [{"city": "Porto", "desks": 45}]}).encode())
    bad = load_document(Path("broken.json"), b'{"city": "Porto", "desks": ')

    assert good.sections[0].heading_path == ("offices",)
    assert '"city": "Porto"' in good.sections[0].text and "\n" in good.sections[0].text
    assert bad.sections[0].text == '{"city": "Porto", "desks":'


def test_yaml_keeps_comments_and_invalid_yaml_is_still_indexed() -> None:
    good = load_document(Path("terms.yaml"), b"# Maintained by HR\nterms:\n  PTO: paid time off # per year\n")
    bad = load_document(Path("broken.yml"), b"terms: [unclosed\n  PTO: paid time off\n")

    assert "# per year" in all_text(good)
    assert section_with(good, "PTO: paid time off").heading_path == ("terms",)
    assert "PTO: paid time off" in all_text(bad)


def test_text_encodings_and_binary_content() -> None:
    utf16 = codecs.BOM_UTF16_LE + "Café hours: 8 to 4".encode("utf-16-le")

    assert load_document(Path("cafe.txt"), utf16).sections[0].text == "Café hours: 8 to 4"
    assert load_document(Path("cafe.txt"), "Café\r\nline two".encode()).sections[0].text == "Café\nline two"
    assert load_document(Path("empty.txt"), b"  \n\n").sections == ()
    with pytest.raises(LoaderError, match="binary content"):
        load_document(Path("notes.txt"), b"abc\x00\x01\x02def")


def test_sample_handbook_loads_completely() -> None:
    files = sorted(path for path in SAMPLE_DOCS.rglob("*") if path.is_file())

    assert len(files) >= 12
    assert sum(path.stat().st_size for path in files) < 300_000
    formats = {".md", ".txt", ".html", ".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".yaml"}
    assert {path.suffix for path in files} >= formats
    documents = {path.relative_to(SAMPLE_DOCS).as_posix(): load(path) for path in files}
    assert all(document.sections for document in documents.values())

    leave = section_with(documents["people/benefits.md"], "20 weeks of fully paid parental leave")
    assert leave.heading_path == ("Parental leave", "How much leave")
    assert "Maashaven Zuidzijde 212" in all_text(documents["offices/rotterdam-office-guide.html"])
    assert "Daan Bakker" in all_text(documents["policies/security-training.pdf"])


def test_markdown_pipe_tables_become_row_blocks_and_heading_markup_is_dropped() -> None:
    source = (
        "## The **`lore`** [command](https://example.com/cli)\n\n"
        "Before.\n\n| Office | Desks |\n|:-------|------:|\n| [Porto](https://x) | 45 |\n| Montreal | 38 |\n\nAfter.\n"
    )

    document = load_document(Path("offices.md"), source.encode())

    assert [(s.heading_path, s.text, s.atomic) for s in document.sections] == [
        (("The lore command",), "Before.", False),
        (("The lore command",), "Office | Desks\nPorto | 45\nMontreal | 38", True),
        (("The lore command",), "After.", False),
    ]
