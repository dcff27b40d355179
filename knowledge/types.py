"""Data that flows through the knowledge layer: files found on a share, parsed documents,
chunks, and the passages retrieval returns."""

from __future__ import annotations

from dataclasses import dataclass

EVERYONE = "everyone"


@dataclass(frozen=True)
class SourceFile:
    """A file found on a source, before it is read. Cheap to list: no content is hashed here."""

    source: str  # name of the configured source
    root: str  # absolute root folder of the source
    relative_path: str  # POSIX path relative to root
    url: str  # a link a person can click
    size: int
    mtime: float
    owner: str | None = None
    # st_mode permission bits, for file-system derived permissions; unknown = no read bit
    # for anyone (readable by nobody), never world-readable.
    mode: int = 0
    # Who the source itself shares the file with, already as Lore principals (a cloud drive's
    # sharing, inherited permissions included); None for sources that have no such notion
    # (folders, whose permissions come from the ACL file or the file's mode).
    principals: frozenset[str] | None = None

    @property
    def absolute_path(self) -> str:
        return f"{self.root.rstrip('/')}/{self.relative_path}"


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path. Tables produce one section per row block."""

    heading_path: tuple[str, ...]
    text: str
    # True for table row blocks: the chunker keeps them whole instead of merging neighbours.
    atomic: bool = False


@dataclass(frozen=True)
class LoadedDocument:
    """A parsed file: its title and its text split along its own structure."""

    title: str
    sections: tuple[Section, ...]
    kind: str  # loader name: markdown, text, html, pdf, docx, pptx, table, structured


@dataclass(frozen=True)
class Chunk:
    """A piece of a document sized for the embedding model."""

    title: str
    heading_path: tuple[str, ...]
    text: str
    ordinal: int

    @property
    def heading(self) -> str:
        return " > ".join(self.heading_path)

    @property
    def indexed_text(self) -> str:
        """What is embedded and keyword-indexed: title and heading path give context to short chunks."""
        context = " > ".join(part for part in (self.title, *self.heading_path) if part)
        return f"{context}\n{self.text}" if context else self.text


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with everything needed to cite it."""

    chunk_id: str
    source: str  # source name
    path: str  # path relative to the source root
    title: str
    heading: str
    url: str
    text: str
    score: float
    # Who may read it; unknown = nobody (a passage built without them is shown to no one).
    principals: frozenset[str] = frozenset()
    # Cosine similarity of the query and this passage's vector when dense retrieval found it
    # (None when only keyword search did). `score` is the rank-fused score, which says nothing
    # about how well the passage matches; the agent judges evidence strength from this.
    similarity: float | None = None


@dataclass(frozen=True)
class SearchFilters:
    """Restricts retrieval. Applied inside both indexes, before ranking cuts."""

    sources: tuple[str, ...] = ()  # source names; empty = all
    path_prefix: str = ""  # relative path prefix, e.g. "benefits/"
    # Principals the reader holds; None = no permission filtering (admin tools, tests).
    principals: frozenset[str] | None = None
