"""The catalog: the index's source of truth, and what every implementation of it offers.

It records every indexed file (size, mtime, hash, permissions), every live chunk with its
text, and a keyword index over the chunks. The vector store holds embeddings keyed by chunk
id; a vector whose id is not a live chunk here is never returned. A file's rows change in one
transaction, so a refresh killed half way leaves each file either fully old or fully new.

The journal makes vector-store writes recoverable: vector ids are recorded as `pending`
before they are written and as `garbage` when the catalog stops referencing them; the next
refresh deletes whatever the journal says is not live.

Two implementations: a SQLite file under the index folder (FTS5 keyword index; one machine,
the default) and PostgreSQL (full-text search; shared by replicas on several machines)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

SCHEMA_VERSION = 1


def acl_key(principals: Iterable[str]) -> str:
    """A short stable key for a set of principals; chunks with the same readers share it."""
    canonical = "\n".join(sorted(set(principals)))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FileRecord:
    """What the catalog remembers about one indexed file."""

    source: str
    path: str
    size: int
    mtime: float
    sha256: str
    title: str
    url: str
    owner: str | None
    mode: int
    acl: str
    chunk_count: int
    indexed_at: str = ""


@dataclass(frozen=True)
class FailureRecord:
    """A file (or folder, or source) that failed at the last refresh, and for how many
    refreshes in a row. `path` is as the refresh reported it."""

    source: str
    path: str
    reason: str
    refreshes: int


@dataclass(frozen=True)
class ChunkRecord:
    """A live chunk: its vector id, where it sits, and its text."""

    chunk_id: str
    source: str
    path: str
    ordinal: int
    title: str
    heading: str
    text: str
    text_hash: str
    acl: str
    url: str = ""  # the file's link; filled when read back, not stored per chunk


@dataclass(frozen=True)
class ChunkFilter:
    """Catalog-level form of SearchFilters: which chunks a search may consider. Each catalog
    renders it in its own SQL.

    `acls` None means no permission filtering; an empty tuple means nothing is readable."""

    sources: tuple[str, ...] = ()
    path_prefix: str = ""
    acls: tuple[str, ...] | None = None


class CatalogWriter(Protocol):
    """The writes of one catalog transaction (`with catalog.transaction() as writer`)."""

    def replace_file(self, record: FileRecord, chunks: Sequence[ChunkRecord]) -> list[str]:
        """Make `chunks` the file's live chunks. Returns the vector ids no longer referenced,
        which are journaled as garbage in the same transaction."""
        ...

    def update_file(self, record: FileRecord) -> None:
        """Metadata-only change (touched, moved in time, new permissions or link): the
        chunks keep their text and vectors; only their acl follows the file's."""
        ...

    def delete_file(self, source: str, path: str) -> list[str]:
        """Remove a file and its chunks; returns (and journals) the freed vector ids."""
        ...

    def register_acl(self, principals: frozenset[str]) -> str:
        """Record a set of readers; returns its acl key."""
        ...


class Catalog(Protocol):
    """What the refresh, the retriever and the commands ask of a catalog. Implementations are
    safe to use from several threads."""

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[CatalogWriter]:
        """One atomic write: committed on success, rolled back on any error."""
        ...

    # -- meta ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    # -- files and chunks ----------------------------------------------------------------

    def files(self) -> dict[tuple[str, str], FileRecord]: ...

    def file_chunk_ids(self, source: str, path: str) -> list[str]:
        """A file's live chunk ids in reading order."""
        ...

    def counts(self) -> tuple[int, int]:
        """(documents, chunks) in the index."""
        ...

    def live_ids(self, chunk_ids: Sequence[str]) -> set[str]:
        """The subset of `chunk_ids` that are live chunks."""
        ...

    def chunk_for_text(self, text_hashes: Sequence[str]) -> dict[str, str]:
        """For each text hash already indexed somewhere, one live chunk id that has it."""
        ...

    def chunks(self, chunk_ids: Sequence[str], where: ChunkFilter | None = None) -> dict[str, ChunkRecord]:
        """The live chunks among `chunk_ids` that pass `where`, by id."""
        ...

    def keyword_search(
        self, terms: Sequence[str], limit: int, where: ChunkFilter, per_document: int = 0
    ) -> list[tuple[str, float]]:
        """(chunk id, relevance: higher is better) of the chunks matching any of `terms`
        (words, taken literally: never query syntax), best first, at most `per_document`
        chunks per file (0: no cap). Title and heading weigh more than body text."""
        ...

    def matching_paths(self, where: ChunkFilter) -> list[str]:
        """Distinct file paths that pass `where` (used to push a path prefix into Chroma)."""
        ...

    # -- permissions ---------------------------------------------------------------------

    def principals_of(self, acls: Iterable[str]) -> dict[str, frozenset[str]]: ...

    def readable_acls(self, principals: frozenset[str]) -> tuple[str, ...]:
        """Acl keys a reader holding `principals` may read: any principal in common.
        Every reader holds `everyone`."""
        ...

    def acls_in_use(self) -> frozenset[str]:
        """Acl keys some live chunk carries."""
        ...

    def files_readable_by(self, principals: frozenset[str]) -> list[FileRecord]:
        """Indexed files a reader holding `principals` may read (e.g. {"everyone"}: the
        documents anyone may see)."""
        ...

    def documents_per_source(self) -> dict[str, tuple[int, int]]:
        """source → (documents, documents readable by `everyone`)."""
        ...

    # -- failures ------------------------------------------------------------------------

    def record_failures(self, failed: Sequence[tuple[str, str, str]], sources: Iterable[str] | None = None) -> None:
        """After a refresh of `sources` (None: of every source): each (source, path, reason)
        in `failed` counts one more refresh in a row; what no longer fails is forgotten."""
        ...

    def failures(self, min_refreshes: int = 1) -> list[FailureRecord]:
        """What failed at the last refreshes, `min_refreshes` in a row or more, longest first."""
        ...

    # -- vector journal ------------------------------------------------------------------

    def journal(self) -> dict[str, str]: ...

    def mark_pending(self, vector_ids: Iterable[str]) -> None: ...

    def clear_journal(self, vector_ids: Iterable[str]) -> None: ...


def batches(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    """`items` in lists of at most `size` (bound parameters per statement stay small)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
