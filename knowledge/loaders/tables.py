"""Spreadsheets and CSV: rows grouped into blocks, each block repeating the header row.

A block is an atomic Section whose first line is the header; the chunker never merges it
with prose and, when one block exceeds the token budget, splits it by rows and repeats
the header line in every piece."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from openpyxl import load_workbook

from knowledge.loaders.text import decode_text, title_from_path
from knowledge.types import LoadedDocument, Section

# Rows are grouped up to about this many characters (~200 MiniLM tokens), so most blocks
# fit a 256-token chunk whole and the chunker rarely has to cut one.
BLOCK_CHARS = 800
CELL_SEPARATOR = " | "


def format_cell(value: object) -> str:
    """A cell as a person would read it: 3.0 → 3, midnight datetimes as dates."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def format_row(values: Iterable[object]) -> str:
    """Cells joined with " | ", trailing empty cells dropped; "" for an empty row."""
    cells = [format_cell(value) for value in values]
    while cells and not cells[-1]:
        cells.pop()
    return CELL_SEPARATOR.join(cells)


def row_blocks(rows: Iterable[Sequence[object]], heading_path: tuple[str, ...] = ()) -> list[Section]:
    """Group rows into atomic sections: the first non-empty row is the header of them all."""
    header: str | None = None
    blocks: list[Section] = []
    block: list[str] = []
    size = 0
    for values in rows:
        line = format_row(values)
        if not line:
            continue
        if header is None:
            header = line
            continue
        if block and size + len(line) > BLOCK_CHARS:
            blocks.append(Section(heading_path, "\n".join([header, *block]), atomic=True))
            block, size = [], 0
        block.append(line)
        size += len(line) + 1
    if header is not None and (block or not blocks):
        blocks.append(Section(heading_path, "\n".join([header, *block]), atomic=True))
    return blocks


def load_xlsx(path: Path, data: bytes) -> LoadedDocument:
    """One run of row blocks per worksheet; the sheet name is the heading."""
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sections = [
            section
            for sheet in workbook.worksheets
            for section in row_blocks(sheet.iter_rows(values_only=True), (sheet.title,))
        ]
        title = (workbook.properties.title or "").strip() or title_from_path(path)
    finally:
        workbook.close()
    return LoadedDocument(title=title, sections=tuple(sections), kind="table")


def load_csv(path: Path, data: bytes) -> LoadedDocument:
    """CSV or TSV; the delimiter is sniffed (comma, semicolon, tab or pipe)."""
    text = decode_text(data)
    if path.suffix.lower() == ".tsv":
        dialect: type[csv.Dialect] | csv.Dialect = csv.excel_tab
    else:
        try:
            dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
        except csv.Error:  # one column, or too irregular to tell: commas it is
            dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    return LoadedDocument(title=title_from_path(path), sections=tuple(row_blocks(rows)), kind="table")
