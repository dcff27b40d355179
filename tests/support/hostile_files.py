"""Real hostile files for the ingestion-limit tests, each cheap to make (well under a second).

Each is a valid file of its format that costs a parser far more than its size: a zip bomb
inside an Office file, JSON that inflates when pretty-printed or when parsed, a huge sparse
file, a Word document of empty paragraphs that python-docx takes minutes over."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

from tests.support.files import write_document

MiB = 1024 * 1024


def _rewrite_zip(path: Path, change: dict[str, bytes], add: dict[str, bytes]) -> None:
    """Rewrite the Office file at `path` with members replaced (`change`) or added (`add`)."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = change.get(info.filename, source.read(info.filename))
            target.writestr(info, data, zipfile.ZIP_DEFLATED, compresslevel=9)
        for name, data in add.items():
            target.writestr(name, data, zipfile.ZIP_DEFLATED, compresslevel=9)
    path.write_bytes(out.getvalue())


# The part each Office library parses first: the bomb sits where it must be inflated.
_MAIN_PARTS = {".docx": "word/document.xml", ".pptx": "ppt/slides/slide1.xml", ".xlsx": "xl/worksheets/sheet1.xml"}


def write_zip_bomb(path: Path, inflated_mib: int = 100) -> Path:
    """A real DOCX/PPTX/XLSX (by suffix) whose main XML part carries `inflated_mib` MiB of
    whitespace after its first tag (valid XML): ~1000:1, so it weighs about as many KiB.
    On main the library inflates all of it before parsing."""
    write_document(path, "the bomb shelter is on floor minus two")
    part = _MAIN_PARTS[path.suffix.lower()]
    with zipfile.ZipFile(path) as source:
        xml = source.read(part)
    first_tag_end = xml.index(b">") + 1
    padded = xml[:first_tag_end] + b" " * (inflated_mib * MiB) + xml[first_tag_end:]
    _rewrite_zip(path, {part: padded}, {})
    return path


def write_size_forging_zip_bomb(path: Path, inflated_mib: int = 100) -> Path:
    """`write_zip_bomb` with the bomb member's sizes forged in its local header and the
    central directory to 1,000 bytes: its declared ratio looks harmless. zipfile stops at the
    declared size (and fails on the CRC), but only after inflating the whole member at once:
    on main, 100 MiB for a 1,000-byte declaration."""
    write_zip_bomb(path, inflated_mib)
    data = bytearray(path.read_bytes())
    part = _MAIN_PARTS[path.suffix.lower()].encode()
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        name_offset = 30 if signature == b"PK\x03\x04" else 46
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_offset : start + name_offset + len(part)] == part:
                struct.pack_into("<I", data, start + size_offset, 1000)
            start += 4
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(part.decode()).file_size == 1000
    return path


def write_incompressible_office_file(path: Path, inflated_mib: int) -> Path:
    """A real Office file with `inflated_mib` MiB of random bytes inside (ratio ~1:1)."""
    write_document(path, "the random archive is genuine")
    _rewrite_zip(path, {}, {"customXml/random.bin": os.urandom(inflated_mib * MiB)})
    return path


def write_nested_json(path: Path, depth: int = 200, items: int = 50_000) -> Path:
    """~100 KiB of JSON whose pretty-printed text is ~200 times larger (20 million
    characters): `items` numbers nested `depth` lists deep, each printed on its own line
    behind 2 × depth spaces."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[" * depth + ",".join(["1"] * items) + "]" * depth, encoding="utf-8")
    return path


def write_memory_hungry_json(path: Path, objects: int = 2_000_000) -> Path:
    """~6 MB of empty objects: parsed, each is a dict of 64 bytes and more (~25× the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{}] * objects, separators=(",", ":")), encoding="utf-8")
    return path


def write_sparse_file(path: Path, size: int) -> Path:
    """A file of `size` bytes that takes no disk space (a hole): cheap to make, costly to read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def write_empty_paragraphs_docx(path: Path, paragraphs: int = 20_000) -> Path:
    """A ~37 KiB DOCX whose body is `paragraphs` empty paragraphs: python-docx resolves each
    one's style through the styles part, about a millisecond apiece here (measured on main:
    20,000 take ~18 s, the 150,000 of a 45 KiB file about two minutes)."""
    write_document(path, "the paragraph desert")
    with zipfile.ZipFile(path) as source:
        body = source.read("word/document.xml").decode()
    start = body.index("<w:body>") + len("<w:body>")
    _rewrite_zip(path, {"word/document.xml": (body[:start] + "<w:p/>" * paragraphs + body[start:]).encode()}, {})
    return path


def write_csv_with_a_huge_header(path: Path, header_chars: int = 100_000, rows: int = 100_000) -> Path:
    """~300 KB of CSV whose header row (~100,000 characters) heads every block of rows:
    the loader repeats it each ~800 characters of rows, ~125 times the rows' own text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = header_chars // 50
    header = ",".join(f"column {number:04d} " + "x" * 37 for number in range(columns))
    path.write_text(header + "\n" + "1\n" * rows, encoding="utf-8")
    return path
