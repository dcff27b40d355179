"""HTML pages: the title, one section per h1–h6 heading, page chrome and scripts dropped."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup, Comment, Tag
from bs4.element import NavigableString

from knowledge.loaders.text import clean_heading, decode_text, title_from_path
from knowledge.types import LoadedDocument, Section

# Page chrome and code. <header> stays: articles often put their headings in it.
_DROPPED = {"script", "style", "nav", "noscript", "template", "svg", "head", "footer", "form", "button"}
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = set(
    "p div section article main aside blockquote pre ul ol li dl dt dd table tr br hr "
    "figure figcaption details summary".split()
)
_CELLS = {"td", "th"}
_WHITESPACE = re.compile(r"\s+")


class _SectionBuilder:
    """Walks the element tree in document order, cutting a new section at each heading."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.stack: list[tuple[int, str]] = []
        self.parts: list[str] = []
        self.sections: list[Section] = []
        self.title_seen = False

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                self.parts.append(_WHITESPACE.sub(" ", child))
            elif isinstance(child, Tag) and child.name not in _DROPPED:
                if child.name in _HEADINGS:
                    self.heading(_HEADINGS[child.name], clean_heading(child.get_text(" ")))
                    continue
                self.walk(child)
                if child.name in _CELLS:
                    self.parts.append(" | ")
                elif child.name in _BLOCKS:
                    self.parts.append("\n")

    def heading(self, level: int, text: str) -> None:
        self.flush()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        if level == 1 and text == self.title and not self.title_seen:
            self.title_seen = True
            self.stack.clear()
        elif text:
            self.stack.append((level, text))

    def flush(self) -> None:
        lines = (" ".join(line.split()).strip(" |") for line in "".join(self.parts).split("\n"))
        text = "\n".join(line for line in lines if line)
        if text:
            self.sections.append(Section(tuple(heading for _, heading in self.stack), text))
        self.parts = []


def load_html(path: Path, data: bytes) -> LoadedDocument:
    """Title from <title>, else the first <h1>, else the file name."""
    soup = BeautifulSoup(decode_text(data), "html.parser")
    title_tag = soup.find("title")
    first_h1 = soup.find("h1")
    title = (
        (clean_heading(title_tag.get_text(" ")) if title_tag and title_tag.get_text(strip=True) else None)
        or (clean_heading(first_h1.get_text(" ")) if first_h1 else None)
        or title_from_path(path)
    )
    builder = _SectionBuilder(title)
    builder.walk(soup.body or soup)
    builder.flush()
    return LoadedDocument(title=title, sections=tuple(builder.sections), kind="html")
