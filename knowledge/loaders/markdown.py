"""Markdown: front matter stripped (its `title` kept), headings kept as the section structure."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from markdown_it import MarkdownIt

from knowledge.loaders.tables import row_blocks
from knowledge.loaders.text import clean_heading, decode_text, title_from_path
from knowledge.types import LoadedDocument, Section

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_REFERENCE_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S.*$", re.MULTILINE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# Only block structure is needed (where headings are); inline parsing is most of the cost.
_PARSER = MarkdownIt("commonmark").enable("table").disable("inline")
_MARKUP = re.compile(r"\*\*|__|`|(?<!\w)[*_]|[*_](?!\w)")
_DELIMITER_ROW = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def split_front_matter(text: str) -> tuple[dict[str, object], str]:
    """Return (front matter as a dict, the rest). Front matter that is not valid YAML is
    still removed: it is metadata, not prose, and a typo in it must not lose the page."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError:
        meta = None
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


def plain_links(text: str) -> str:
    """Keep link and image text, drop their targets and HTML comments: URLs cost many
    embedding tokens and carry little meaning for retrieval; the document link is cited anyway."""
    text = _COMMENT.sub("", text)
    text = _REFERENCE_DEFINITION.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    return _REFERENCE_LINK.sub(r"\1", text)


def _heading_text(source: str) -> str:
    """Heading text without link targets and emphasis or code markers."""
    return clean_heading(_MARKUP.sub("", plain_links(source)))


def _table_rows(lines: list[str]) -> list[list[str]]:
    """Cells of a pipe table's rows, the |---| delimiter row left out."""
    rows = []
    for line in lines:
        stripped = line.strip()
        if _DELIMITER_ROW.match(stripped):
            continue
        cells = _CELL_SPLIT.split(stripped.removeprefix("|").removesuffix("|"))
        rows.append([plain_links(cell.strip()) for cell in cells])
    return rows


def load_markdown(path: Path, data: bytes) -> LoadedDocument:
    """One section per heading; each carries the path of headings above it. Pipe tables
    become atomic row blocks (header repeated) like spreadsheet rows.

    The title is the front matter's `title`, else the first level-1 heading, else the file
    name. A level-1 heading that is the title is not repeated in the heading paths."""
    meta, body = split_front_matter(decode_text(data))
    lines = body.split("\n")
    tokens = _PARSER.parse(body)
    # (first line, end line, heading level or 0 for a table, heading text)
    blocks = [
        (
            token.map[0],
            token.map[1],
            int(token.tag[1]) if token.type == "heading_open" else 0,
            _heading_text(tokens[index + 1].content) if token.type == "heading_open" else "",
        )
        for index, token in enumerate(tokens)
        if token.type in ("heading_open", "table_open") and token.level == 0 and token.map
    ]
    front_title = meta.get("title")
    first_h1 = next((text for _, _, level, text in blocks if level == 1 and text), None)
    title = str(front_title).strip() if front_title else first_h1 or title_from_path(path)

    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    title_seen = False

    def add(start: int, end: int) -> None:
        text = plain_links("\n".join(lines[start:end])).strip()
        if text:
            sections.append(Section(tuple(heading for _, heading in stack), text))

    position = 0
    for start, end, level, heading in blocks:
        add(position, start)
        position = end
        if level == 0:
            sections.extend(row_blocks(_table_rows(lines[start:end]), tuple(text for _, text in stack)))
            continue
        while stack and stack[-1][0] >= level:
            stack.pop()
        if level == 1 and heading == title and not title_seen:
            title_seen = True  # the page's own title heads every chunk already
            stack.clear()
            continue
        if heading:
            stack.append((level, heading))
    add(position, len(lines))
    return LoadedDocument(title=title, sections=tuple(sections), kind="markdown")
