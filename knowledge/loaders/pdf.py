"""PDF: text page by page (pypdf); the outline (bookmarks), when there is one, gives headings."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from knowledge.errors import EncryptedDocumentError, LoaderError
from knowledge.loaders.text import clean_heading, title_from_path
from knowledge.types import LoadedDocument, Section

# pypdf logs every recoverable oddity of a malformed file; the loader reports real failures.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_GENERATED_TITLES = ("untitled", "microsoft word - ", "microsoft powerpoint - ")


def _outline_starts(reader: PdfReader) -> list[tuple[int, tuple[str, ...]]]:
    """(first page index, heading path) for each outline entry, in page order."""
    starts: list[tuple[int, tuple[str, ...]]] = []

    def visit(entries: list[Any], parents: tuple[str, ...]) -> None:
        last: tuple[str, ...] = parents
        for entry in entries:
            if isinstance(entry, list):  # children of the entry just before
                visit(entry, last)
                continue
            title = clean_heading(str(entry.title or ""))
            page = reader.get_destination_page_number(entry)
            if not title or page is None or page < 0:
                continue
            last = (*parents, title)
            starts.append((page, last))

    try:
        visit(reader.outline, ())
    except (PdfReadError, KeyError, AttributeError, TypeError, ValueError):
        return []  # a broken outline is no reason to lose the text
    return sorted(starts, key=lambda start: start[0])


def _title(reader: PdfReader, path: Path) -> str:
    metadata = reader.metadata
    title = clean_heading(str(metadata.title or "")) if metadata else ""
    if title and not title.lower().startswith(_GENERATED_TITLES):
        return title
    return title_from_path(path)


def _split_at_headings(
    text: str, current: tuple[str, ...] | None, entries: list[tuple[str, ...]]
) -> list[tuple[tuple[str, ...] | None, str]]:
    """Cut a page's text where the outline entries that start on it appear as a line, so
    text before a heading stays under the previous one. Entries not found in the text
    (titles that differ from the printed heading) start at the top of the page instead."""
    lines = text.split("\n")
    pieces: list[tuple[tuple[str, ...] | None, str]] = []
    start = 0
    for path in entries:
        found = next((index for index in range(start, len(lines)) if clean_heading(lines[index]) == path[-1]), None)
        if found is None:
            if start == 0:
                current = path
            continue
        pieces.append((current, "\n".join(lines[start:found])))
        current, start = path, found + 1
    pieces.append((current, "\n".join(lines[start:])))
    return [(path, piece.strip()) for path, piece in pieces if piece.strip()]


def load_pdf(path: Path, data: bytes) -> LoadedDocument:
    """Page by page. With an outline, text takes the heading path of the outline entry it
    follows (entries are located on their page by their printed title); without one, each
    page is a section headed "Page N"."""
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:  # owner-password-only PDFs open with an empty password
            unlocked = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except (FileNotDecryptedError, NotImplementedError):
            unlocked = False
        if not unlocked:
            raise EncryptedDocumentError("encrypted PDF; remove the password or exclude it")
    title = _title(reader, path)
    starts = _outline_starts(reader)
    sections: list[Section] = []
    current: tuple[str, ...] | None = None
    for index, page in enumerate(reader.pages):
        text = (page.extract_text() or "").strip()
        entries = [heading for first, heading in starts if first == index]
        if not starts:
            if text:
                sections.append(Section((f"Page {index + 1}",), text))
            continue
        for heading, piece in _split_at_headings(text, current, entries):
            if piece != title:  # the title printed on the cover heads every chunk already
                sections.append(Section(heading or (), piece))
        current = entries[-1] if entries else current
    if not sections and len(reader.pages):
        raise LoaderError("PDF has no extractable text (scanned images?); run OCR on it or exclude it")
    return LoadedDocument(title=title, sections=tuple(sections), kind="pdf")
