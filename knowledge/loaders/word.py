"""Word documents (python-docx): Heading styles give the heading path; tables become row blocks."""

from __future__ import annotations

import io
import re
from pathlib import Path

from docx import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from knowledge.loaders.tables import row_blocks
from knowledge.loaders.text import clean_heading, title_from_path
from knowledge.types import LoadedDocument, Section

_HEADING_STYLE = re.compile(r"^heading (\d)$", re.IGNORECASE)


def _table_rows(table: Table) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if not cells or cells[-1] != text:  # merged cells repeat; keep one copy
                cells.append(text)
        rows.append(cells)
    return rows


def load_docx(path: Path, data: bytes) -> LoadedDocument:
    """Title from the document properties, else a Title-styled paragraph, else the file name."""
    document = Document(io.BytesIO(data))
    title = (document.core_properties.title or "").strip()
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    paragraphs: list[str] = []

    def flush() -> None:
        text = "\n".join(paragraphs).strip()
        if text:
            sections.append(Section(tuple(heading for _, heading in stack), text))
        paragraphs.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            flush()
            sections.extend(row_blocks(_table_rows(block), tuple(heading for _, heading in stack)))
            continue
        if not isinstance(block, Paragraph):
            continue
        text = block.text.strip()
        style = block.style.name if block.style is not None else ""
        heading = _HEADING_STYLE.match(style or "")
        if style == "Title" and text and (not title or clean_heading(text) == title):
            title = clean_heading(text)  # the title heads every chunk; a different one stays text
        elif heading and text:
            flush()
            level = int(heading.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, clean_heading(text)))
        elif text:
            paragraphs.append(text)
    flush()
    return LoadedDocument(title=title or title_from_path(path), sections=tuple(sections), kind="docx")
