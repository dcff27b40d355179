"""JSON and YAML indexed as readable text, one section per top-level key.

A file that does not parse is still indexed as plain text: its words are searchable, and
refusing it would lose content over a stray comma. JSON is pretty-printed (minified JSON
is one long line the splitter cannot cut well), up to a cap on the text: indentation grows
with depth, so deeply nested JSON can print hundreds of times larger than its file. YAML
keeps its source text, comments included, because it is already written for people."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from knowledge.errors import LimitExceededError
from knowledge.limits import ParseLimits
from knowledge.loaders.text import decode_text, title_from_path
from knowledge.types import LoadedDocument, Section

_TOP_LEVEL_KEY = re.compile(r"^(?!---|\.\.\.)([^\s#\-][^:]*?|\"[^\"]*\"|'[^']*'):(?:\s|$)")


def _title(path: Path, data: object) -> str:
    title = data.get("title") if isinstance(data, dict) else None
    return title.strip() if isinstance(title, str) and title.strip() else title_from_path(path)


def _as_text(path: Path, text: str, parsed: object = None) -> LoadedDocument:
    sections = (Section((), text.strip()),) if text.strip() else ()
    return LoadedDocument(title=_title(path, parsed), sections=sections, kind="structured")


class _PrettyPrinter:
    """json.dumps(indent=2), stopping as soon as the text of the whole file passes `max_chars`."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.remaining = max_chars
        self._encoder = json.JSONEncoder(indent=2, ensure_ascii=False)

    def __call__(self, value: object) -> str:
        pieces: list[str] = []
        for piece in self._encoder.iterencode(value):
            self.remaining -= len(piece)
            if self.remaining < 0:
                raise LimitExceededError(
                    f"pretty-printed, this JSON is over {self.max_chars:,} characters of text "
                    "(index.max_text_chars); flatten it or raise the limit"
                )
            pieces.append(piece)
        return "".join(pieces)


def load_json(path: Path, data: bytes, max_chars: int = ParseLimits.max_text_chars) -> LoadedDocument:
    """A top-level object gives one section per key (its `title` key titles the document).

    Raises LimitExceededError when the printed text would pass `max_chars`."""
    text = decode_text(data)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return _as_text(path, text)
    pretty = _PrettyPrinter(max_chars)
    sections: tuple[Section, ...]
    if isinstance(parsed, dict):
        sections = tuple(Section((str(key),), pretty(value)) for key, value in parsed.items() if key != "title")
    else:
        sections = (Section((), pretty(parsed)),)
    return LoadedDocument(title=_title(path, parsed), sections=sections, kind="structured")


def load_yaml(path: Path, data: bytes) -> LoadedDocument:
    """A top-level mapping gives one section per key, cut from the source text."""
    text = decode_text(data)
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return _as_text(path, text)  # not YAML after all: index the text as it is
    if not isinstance(parsed, dict):
        return _as_text(path, text, parsed)
    sections: list[Section] = []
    heading: tuple[str, ...] = ()
    lines: list[str] = []
    for line in [*text.split("\n"), "end:"]:  # the sentinel flushes the last key
        match = _TOP_LEVEL_KEY.match(line)
        if match:
            body = "\n".join(lines).strip()
            if body and heading != ("title",):  # the title heads every chunk already
                sections.append(Section(heading, body))
            heading, lines = (match.group(1).strip("'\""),), []
        lines.append(line)
    return LoadedDocument(title=_title(path, parsed), sections=tuple(sections), kind="structured")
