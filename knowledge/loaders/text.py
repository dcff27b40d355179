"""Plain text files, and the decoding and titling helpers the other text formats share."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from knowledge.errors import LoaderError
from knowledge.types import LoadedDocument, Section

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data: bytes) -> str:
    """Decode a text file: a BOM wins, then UTF-8, then Windows-1252 (what older office
    machines write), then Latin-1, which accepts any bytes. Newlines become "\\n".

    Raises LoaderError for content with NUL bytes and no UTF-16 BOM (a binary file
    wearing a text suffix)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data.decode(encoding, errors="replace")
            break
    else:
        if b"\x00" in data[:8192]:
            raise LoaderError("binary content in a text file; exclude it or fix its suffix")
        for encoding in ("utf-8", "cp1252", "latin-1"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def title_from_path(path: Path) -> str:
    """A readable title from a file name: `parental-leave_policy.md` → `Parental leave policy`."""
    words = re.sub(r"[-_.\s]+", " ", path.stem).strip()
    return words[:1].upper() + words[1:] if words else path.name


def clean_heading(text: str) -> str:
    """Collapse whitespace so a heading fits on one line of a heading path."""
    return " ".join(text.split())


def load_text(path: Path, data: bytes) -> LoadedDocument:
    """A plain text file: one section; the chunker splits it on blank lines."""
    text = decode_text(data).strip()
    sections = (Section((), text),) if text else ()
    return LoadedDocument(title=title_from_path(path), sections=sections, kind="text")
