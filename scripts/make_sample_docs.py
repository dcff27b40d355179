"""Write the binary documents of the sample handbook (knowledge/sample_docs/).

The PDF, Word, PowerPoint and Excel files are generated from the text below so that they
can be reviewed as code; their output is committed, so nothing needs to run this script
except to change them. Run from the repository root:

    python scripts/make_sample_docs.py
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

from docx import Document
from openpyxl import Workbook
from openpyxl.styles import Font
from pptx import Presentation
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer
from reportlab.platypus.flowables import Flowable

SAMPLE_DOCS = Path(__file__).resolve().parent.parent / "knowledge" / "sample_docs"
# Fixed dates keep regenerated files identical in their metadata.
CREATED = dt.datetime(2026, 9, 1, 9, 0, 0)
CREATED_W3C = CREATED.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
AUTHOR = "Tidewell People team"

SECURITY_TRAINING = {
    "title": "Annual security training",
    "chapters": [
        (
            "Who and when",
            [
                "Every employee and contractor completes the annual security training. New "
                "joiners complete it within their first 14 days; everybody else by 31 March "
                "each year. The course takes about 45 minutes in the Tidewell Academy.",
                "Daan Bakker, Security Lead, owns the training. Managers see who has not "
                "finished; access to production is suspended for engineers who miss the deadline.",
            ],
        ),
        (
            "Data classification",
            [
                "Tidewell has four classification levels: Public, Internal, Confidential and "
                "Restricted. Customer port layouts and robot telemetry are Confidential. "
                "Security keys, salary data and health data are Restricted.",
                "Restricted data never leaves the systems that hold it: no copies on laptops, "
                "no attachments in email or Slack.",
            ],
        ),
        (
            "Phishing",
            [
                "Most attacks start with an email. Check the sender, hover over links before "
                "clicking, and never approve a YubiKey prompt you did not start.",
                "Forward suspicious emails to security@tidewell.example. The security team "
                "runs a phishing simulation every quarter; people who click get a short refresher.",
            ],
        ),
        (
            "Clean desk and travel",
            [
                "Lock your screen whenever you leave your desk. Leave no Confidential papers "
                "on desks overnight; shred them in the locked bins on each floor.",
                "At customer ports, wear your visitor badge at all times and never photograph "
                "a customer's site without written permission from the port authority.",
            ],
        ),
    ],
}

PERFORMANCE_REVIEWS = {
    "title": "Performance reviews",
    "intro": "At Tidewell performance reviews are called Sprocket reviews. This document "
    "explains the cycle, the ratings and how promotions work.",
    "sections": [
        (1, "The review cycle", []),
        (
            2,
            "When reviews happen",
            [
                "Sprocket reviews happen twice a year, in April and October. Self reviews "
                "open on the first Monday of the month and close two weeks later.",
                "Employees who joined less than 3 months before a cycle skip it.",
            ],
        ),
        (
            2,
            "Peer feedback",
            [
                "Everyone asks for feedback from 3 to 5 peers in Anchor. Peer feedback is shared "
                "with your manager, not with you word for word.",
            ],
        ),
        (1, "Ratings", ["Managers rate performance on a four-point scale:"]),
        (
            1,
            "Promotions",
            [
                "Promotions are decided once a year, in the October cycle, by a calibration "
                "committee of managers from other teams. A promotion comes with a salary "
                "increase of at least 8%.",
            ],
        ),
        (2, "Engineering levels", ["The engineering career ladder has five levels:"]),
    ],
    "ratings": [
        ("Rating", "Meaning"),
        ("Exceptional", "Far beyond the role's expectations"),
        ("Strong", "Consistently meets and often exceeds expectations"),
        ("Solid", "Meets the expectations of the role"),
        ("Developing", "Does not yet meet expectations; comes with a support plan"),
    ],
    "levels": [
        ("Level", "Title", "Typical experience"),
        ("E1", "Engineer", "0-2 years"),
        ("E2", "Engineer II", "2-4 years"),
        ("E3", "Senior Engineer", "4-8 years"),
        ("E4", "Staff Engineer", "8+ years"),
        ("E5", "Principal Engineer", "12+ years"),
    ],
}

ALL_HANDS = {
    "title": "All-hands Q3 2026",
    "slides": [
        (
            "All-hands Q3 2026",
            ["Rotterdam, 8 October 2026"],
            "Welcome everyone, including Porto and Montreal on the stream.",
        ),
        (
            "Results",
            [
                "Revenue grew 31% year over year, to 18.4 million euros in Q3",
                "212 mooring robots now work in 9 ports",
                "Customer uptime was 99.95%",
            ],
            "Thank the field operations team for the Antwerp rollout.",
        ),
        (
            "Albatross launch",
            [
                "Albatross, our second-generation mooring robot, launched on 15 September 2026",
                "First customer: the Port of Rotterdam, 12 robots",
                "Albatross moors a ship 40% faster than the first generation",
            ],
            "Ana Ribeiro to demo the Albatross video.",
        ),
        (
            "New office in Hamburg",
            [
                "Tidewell opens a Hamburg office on 1 March 2027",
                "It will hold 25 desks, mostly field operations and customer success",
                "Office lead: Jeroen Smit",
            ],
            "Hiring for Hamburg opens in November.",
        ),
        (
            "Q4 priorities",
            [
                "Ship Albatross to two more ports",
                "Cut SEV1 incidents in half",
                "Move the Harbour portal to the new Dockyard pipeline",
            ],
            "Questions go to #all-hands.",
        ),
    ],
}

OFFICES = [
    ("City", "Address", "Desks", "Office manager", "Opened"),
    ("Rotterdam (HQ)", "Maashaven Zuidzijde 212, 3081 AE Rotterdam", 140, "Pieter de Wit", dt.date(2019, 5, 1)),
    ("Porto", "Rua do Heroísmo 88, 4300-259 Porto", 45, "Inês Duarte", dt.date(2021, 9, 15)),
    ("Montreal", "1250 Rue Ottawa, Montréal QC H3C 0G9", 38, "Sofia Moreau", dt.date(2023, 2, 1)),
    ("Hamburg", "Am Sandtorkai 41, 20457 Hamburg", 25, "Jeroen Smit", dt.date(2027, 3, 1)),
]

HOLIDAYS = {
    "Holidays Netherlands 2026": [
        (dt.date(2026, 1, 1), "New Year's Day"),
        (dt.date(2026, 4, 3), "Good Friday"),
        (dt.date(2026, 4, 6), "Easter Monday"),
        (dt.date(2026, 4, 27), "King's Day"),
        (dt.date(2026, 5, 5), "Liberation Day"),
        (dt.date(2026, 5, 14), "Ascension Day"),
        (dt.date(2026, 5, 25), "Whit Monday"),
        (dt.date(2026, 12, 25), "Christmas Day"),
        (dt.date(2026, 12, 26), "Boxing Day"),
    ],
    "Holidays Portugal 2026": [
        (dt.date(2026, 1, 1), "New Year's Day"),
        (dt.date(2026, 4, 3), "Good Friday"),
        (dt.date(2026, 4, 25), "Freedom Day"),
        (dt.date(2026, 5, 1), "Labour Day"),
        (dt.date(2026, 6, 4), "Corpus Christi"),
        (dt.date(2026, 6, 10), "Portugal Day"),
        (dt.date(2026, 6, 24), "São João (Porto only)"),
        (dt.date(2026, 8, 15), "Assumption Day"),
        (dt.date(2026, 10, 5), "Republic Day"),
        (dt.date(2026, 11, 1), "All Saints' Day"),
        (dt.date(2026, 12, 1), "Restoration of Independence"),
        (dt.date(2026, 12, 8), "Immaculate Conception"),
        (dt.date(2026, 12, 25), "Christmas Day"),
    ],
    "Holidays Canada 2026": [
        (dt.date(2026, 1, 1), "New Year's Day"),
        (dt.date(2026, 4, 3), "Good Friday"),
        (dt.date(2026, 5, 18), "National Patriots' Day"),
        (dt.date(2026, 6, 24), "Saint-Jean-Baptiste Day"),
        (dt.date(2026, 7, 1), "Canada Day"),
        (dt.date(2026, 9, 7), "Labour Day"),
        (dt.date(2026, 10, 12), "Thanksgiving"),
        (dt.date(2026, 12, 25), "Christmas Day"),
    ],
}


class _Bookmark(Flowable):
    """Zero-size flowable that adds an outline entry (a PDF bookmark) where it lands."""

    def __init__(self, title: str, key: str, level: int = 0) -> None:
        super().__init__()
        self.title, self.key, self.level = title, key, level

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return 0, 0

    def draw(self) -> None:
        self.canv.bookmarkPage(self.key)
        self.canv.addOutlineEntry(self.title, self.key, level=self.level)


def write_pdf(path: Path) -> None:
    styles = getSampleStyleSheet()
    document = SimpleDocTemplate(str(path), pagesize=A4, title=SECURITY_TRAINING["title"], author=AUTHOR, invariant=1)
    story: list[Flowable] = [Paragraph(SECURITY_TRAINING["title"], styles["Title"])]
    for number, (heading, paragraphs) in enumerate(SECURITY_TRAINING["chapters"]):
        story.append(_Bookmark(heading, f"chapter{number}"))
        story.append(Paragraph(heading, styles["Heading1"]))
        story.extend(Paragraph(text, styles["BodyText"]) for text in paragraphs)
        story.append(Spacer(1, 500 if number % 2 == 0 else 12))  # spread chapters over pages
    document.build(story)


def write_docx(path: Path) -> None:
    spec = PERFORMANCE_REVIEWS
    document = Document()
    properties = document.core_properties
    properties.title, properties.author = spec["title"], AUTHOR
    properties.created = properties.modified = CREATED
    document.add_paragraph(spec["title"], style="Title")
    document.add_paragraph(spec["intro"])
    for level, heading, paragraphs in spec["sections"]:
        document.add_heading(heading, level=level)
        for text in paragraphs:
            document.add_paragraph(text)
        if heading in ("Ratings", "Engineering levels"):
            rows = spec["ratings"] if heading == "Ratings" else spec["levels"]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            table.style = "Table Grid"
            for row, values in zip(table.rows, rows, strict=True):
                for cell, value in zip(row.cells, values, strict=True):
                    cell.text = value
    document.save(str(path))


def write_pptx(path: Path) -> None:
    deck = Presentation()
    properties = deck.core_properties
    properties.title, properties.author = ALL_HANDS["title"], AUTHOR
    properties.created = properties.modified = CREATED
    for number, (title, bullets, notes) in enumerate(ALL_HANDS["slides"]):
        slide = deck.slides.add_slide(deck.slide_layouts[0 if number == 0 else 1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for bullet in bullets[1:]:
            body.add_paragraph().text = bullet
        slide.notes_slide.notes_text_frame.text = notes
    deck.save(str(path))


def write_xlsx(path: Path) -> None:
    workbook = Workbook()
    workbook.properties.title = "Offices and public holidays"
    workbook.properties.creator = AUTHOR
    workbook.properties.created = workbook.properties.modified = CREATED
    offices = workbook.active
    offices.title = "Offices"
    for row in OFFICES:
        offices.append(row)
    for name, days in HOLIDAYS.items():
        sheet = workbook.create_sheet(name)
        sheet.append(("Date", "Holiday"))
        for day, holiday in days:
            sheet.append((day, holiday))
    for sheet in workbook.worksheets:
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for column in sheet.columns:
            for cell in column:
                if isinstance(cell.value, dt.date):
                    cell.number_format = "yyyy-mm-dd"
    workbook.save(str(path))


def fix_zip_timestamps(path: Path) -> None:
    """Office files are zip archives stamped with the time of writing (openpyxl also sets
    the modified date on save); fixed stamps make regenerating them produce identical
    bytes, so rerunning the script leaves no spurious diffs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            stamped = zipfile.ZipInfo(entry.filename, date_time=CREATED.timetuple()[:6])
            stamped.compress_type = zipfile.ZIP_DEFLATED
            data = source.read(entry.filename)
            if entry.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + CREATED_W3C, data)
            target.writestr(stamped, data)
    path.write_bytes(buffer.getvalue())


def main() -> None:
    write_pdf(SAMPLE_DOCS / "policies" / "security-training.pdf")
    office_files = {
        SAMPLE_DOCS / "people" / "performance-reviews.docx": write_docx,
        SAMPLE_DOCS / "all-hands-q3-2026.pptx": write_pptx,
        SAMPLE_DOCS / "offices" / "offices-and-holidays.xlsx": write_xlsx,
    }
    for path, write in office_files.items():
        write(path)
        fix_zip_timestamps(path)
    print(f"wrote the binary sample documents under {SAMPLE_DOCS}")


if __name__ == "__main__":
    main()
