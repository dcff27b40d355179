"""PowerPoint decks (python-pptx): one section per slide, speaker notes included."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from pptx import Presentation
from pptx.shapes.autoshape import Shape
from pptx.shapes.base import BaseShape
from pptx.shapes.graphfrm import GraphicFrame
from pptx.shapes.group import GroupShape

from knowledge.loaders.tables import format_row
from knowledge.loaders.text import clean_heading, title_from_path
from knowledge.types import LoadedDocument, Section


def _shape_texts(shapes: Iterable[BaseShape], skip: BaseShape | None) -> Iterator[str]:
    for shape in shapes:
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if isinstance(shape, GroupShape):
            yield from _shape_texts(shape.shapes, skip)
        elif isinstance(shape, GraphicFrame) and shape.has_table:
            yield "\n".join(line for row in shape.table.rows if (line := format_row(cell.text for cell in row.cells)))
        elif isinstance(shape, Shape) and shape.has_text_frame:
            text = shape.text_frame.text.strip()
            if text:
                yield text


def load_pptx(path: Path, data: bytes) -> LoadedDocument:
    """The slide title is the heading ("Slide N" when a slide has none); the deck title is
    the document property, else the first slide's title, else the file name."""
    presentation = Presentation(io.BytesIO(data))
    slides = list(presentation.slides)
    slide_titles = [
        clean_heading(slide.shapes.title.text_frame.text) if slide.shapes.title is not None else "" for slide in slides
    ]
    title = (presentation.core_properties.title or "").strip() or next(filter(None, slide_titles), "")
    title = title or title_from_path(path)
    sections: list[Section] = []
    for number, (slide, slide_title) in enumerate(zip(slides, slide_titles, strict=True), start=1):
        title_shape = slide.shapes.title
        parts = list(_shape_texts(slide.shapes, title_shape))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                parts.append(f"Notes: {notes.text.strip()}")
        text = "\n".join(parts).strip()
        # The title slide's heading is the deck title, which heads every chunk already.
        heading = () if slide_title == title else (slide_title or f"Slide {number}",)
        if text:
            sections.append(Section(heading, text))
        elif slide_title and slide_title != title:  # a title-only slide still says something
            sections.append(Section((f"Slide {number}",), slide_title))
    return LoadedDocument(title=title, sections=tuple(sections), kind="pptx")
