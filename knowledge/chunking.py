"""Structure-aware chunking sized in tokens of the embedding model.

A document is split on its own structure first (the loaders' sections: headings, slides,
pages, table row blocks), then by size. Rules:

- A chunk never spans two headings: consecutive sections are merged only when they have
  the same heading path (pages under one PDF bookmark, say). The heading path a chunk
  carries, and a citation shows, is therefore always exactly where its text sits. Small
  sections stay small; they are not starved of context because the title and heading
  path travel with every chunk (`Chunk.indexed_text`).
- A section too big for one chunk is cut with langchain's RecursiveCharacterTextSplitter,
  measured with the embedding model's tokenizer, preferring paragraph, line and sentence
  boundaries.
- Table row blocks (atomic sections, first line = header row) are never merged with
  anything; one too big is cut between rows and every piece repeats the header.
- The budget covers the whole indexed text, title and heading prefix included:
  `count_tokens(chunk.indexed_text) <= chunk_tokens` holds for every chunk, so an
  embedding model that truncates (MiniLM reads 256 tokens) never silently drops text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from knowledge.types import Chunk, LoadedDocument, Section

# Title and headings may take at most this share of a chunk; longer ones are shortened
# (outer headings dropped first) so every chunk keeps room for its own text.
MAX_CONTEXT_SHARE = 0.5
# Cut after sentence ends before falling back to words and characters.
_SENTENCE_END = r"(?<=[.!?]) +"
_CELL_SEPARATORS = [r" \| ", " ", ""]


@dataclass(frozen=True)
class _Block:
    heading_path: tuple[str, ...]
    text: str
    atomic: bool


class Chunker:
    """Splits LoadedDocuments into Chunks whose indexed text fits `chunk_tokens`.

    `count_tokens` must count the tokens the embedding model sees for a text, without
    special tokens (`Embedder.count_tokens`); leave room for those in `chunk_tokens`
    (MiniLM: 256 minus [CLS] and [SEP] = 254). `overlap_tokens` repeats the end of one
    piece of a long section at the start of the next.
    """

    def __init__(self, count_tokens: Callable[[str], int], chunk_tokens: int = 256, overlap_tokens: int = 0) -> None:
        if chunk_tokens < 16:
            raise ValueError(f"chunk_tokens must be at least 16, not {chunk_tokens}")
        if not 0 <= overlap_tokens < chunk_tokens // 4:
            raise ValueError(f"overlap_tokens must be between 0 and a quarter of chunk_tokens, not {overlap_tokens}")
        self.count_tokens = _memoize_short(count_tokens)
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens

    def chunk(self, document: LoadedDocument) -> list[Chunk]:
        """The document's chunks in reading order, numbered from 0; none for empty text."""
        chunks: list[Chunk] = []
        for block in _blocks(document.sections):
            title, heading_path = self._fit_context(document.title, block.heading_path)
            for text in self._pieces(title, heading_path, block):
                chunks.append(Chunk(title=title, heading_path=heading_path, text=text, ordinal=len(chunks)))
        return chunks

    def _pieces(self, title: str, heading_path: tuple[str, ...], block: _Block) -> Iterator[str]:
        def fits(text: str) -> bool:
            return self.count_tokens(Chunk(title, heading_path, text, 0).indexed_text) <= self.chunk_tokens

        if fits(block.text):
            yield block.text
            return
        context_tokens = self.count_tokens(Chunk(title, heading_path, "", 0).indexed_text)
        budget = self.chunk_tokens - context_tokens - 1  # 1: the newline joining context and text
        if block.atomic:
            yield from self._table_pieces(block.text, budget, fits)
        elif self.overlap_tokens:
            yield from self._text_pieces(block.text, budget, fits)
        else:
            yield from _rejoin(self._text_pieces(block.text, budget, fits), fits)

    def _text_pieces(self, text: str, budget: int, fits: Callable[[str], bool]) -> Iterator[str]:
        splitter = _text_splitter(self.count_tokens, budget, min(self.overlap_tokens, budget // 4))
        for piece in splitter.split_text(text):
            if fits(piece):
                yield piece
            else:  # token counts do not always add up across joins: cut this piece finer
                overshoot = self.count_tokens(piece) - budget
                yield from self._text_pieces(piece, budget - max(overshoot, 1), fits)

    def _table_pieces(self, text: str, budget: int, fits: Callable[[str], bool]) -> Iterator[str]:
        header, *rows = text.split("\n")
        if not fits(header):  # a header too wide for a chunk: treat the block as prose
            yield from self._text_pieces(text, budget, fits)
            return
        rows_budget = budget - self.count_tokens(header) - 1
        current: list[str] = []
        for row in rows:
            if fits("\n".join([header, *current, row])):
                current.append(row)
                continue
            if current:
                yield "\n".join([header, *current])
                current = []
            if fits(f"{header}\n{row}"):
                current.append(row)
            else:  # one row wider than a chunk: cut it between cells, header on every piece
                splitter = _splitter(self.count_tokens, max(rows_budget, 1), 0, _CELL_SEPARATORS)
                for part in splitter.split_text(row):
                    yield from self._text_pieces(f"{header}\n{part}", budget, fits)
        if current:
            yield "\n".join([header, *current])

    def _fit_context(self, title: str, heading_path: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        """Shorten a pathologically long title or heading path to leave room for text."""
        limit = int(self.chunk_tokens * MAX_CONTEXT_SHARE)

        def size() -> int:
            return self.count_tokens(Chunk(title, heading_path, "", 0).indexed_text)

        while size() > limit and len(heading_path) > 1:
            heading_path = heading_path[1:]
        while size() > limit and (title or heading_path):
            heading = heading_path[0] if heading_path else ""
            if len(title) >= len(heading):  # shorten the longer of the two first
                title = _shorten(title) if len(title) > 8 else ""
            else:
                heading_path = (_shorten(heading),) if len(heading) > 8 else ()
        return title, heading_path


def _memoize_short(count_tokens: Callable[[str], int]) -> Callable[[str], int]:
    """The splitter measures the same small strings (words, lines, sentences) over and over;
    remember those, but not whole sections, which would pin large texts in memory."""
    cached = functools.lru_cache(maxsize=32768)(count_tokens)

    def count(text: str) -> int:
        return cached(text) if len(text) <= 2048 else count_tokens(text)

    return count


def _rejoin(pieces: Iterator[str], fits: Callable[[str], bool]) -> Iterator[str]:
    """Join neighbouring pieces that fit together: the splitter leaves a short paragraph
    that follows a long one on its own, which makes a needlessly thin chunk."""
    current: str | None = None
    for piece in pieces:
        if current is not None and fits(joined := f"{current}\n\n{piece}"):
            current = joined
            continue
        if current is not None:
            yield current
        current = piece
    if current is not None:
        yield current


def _shorten(text: str) -> str:
    return text[: len(text) * 2 // 3].rstrip() + "…"


def _blocks(sections: tuple[Section, ...]) -> Iterator[_Block]:
    """Drop empty sections; join neighbours that share a heading path (never table blocks)."""
    pending: _Block | None = None
    for section in sections:
        text = section.text.strip()
        if not text:
            continue
        if (
            pending is not None
            and not pending.atomic
            and not section.atomic
            and pending.heading_path == section.heading_path
        ):
            pending = _Block(pending.heading_path, f"{pending.text}\n\n{text}", False)
            continue
        if pending is not None:
            yield pending
        pending = _Block(section.heading_path, text, section.atomic)
    if pending is not None:
        yield pending


def _text_splitter(count_tokens: Callable[[str], int], budget: int, overlap: int) -> RecursiveCharacterTextSplitter:
    separators = RecursiveCharacterTextSplitter.get_separators_for_language(Language.MARKDOWN)
    words = separators.index(" ")
    return _splitter(count_tokens, budget, overlap, [*separators[:words], _SENTENCE_END, *separators[words:]])


def _splitter(
    count_tokens: Callable[[str], int], budget: int, overlap: int, separators: list[str]
) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=separators,
        is_separator_regex=True,
        chunk_size=max(budget, 1),
        chunk_overlap=overlap,
        length_function=count_tokens,
    )
