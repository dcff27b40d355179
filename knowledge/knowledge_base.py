"""KnowledgeBase: the index of a company's documents, built in one place from settings.

It owns the catalog, the vector store, the embedder and the refresh lock, refreshes the
index from the configured sources and exposes a `Retriever` for searches. With a PostgreSQL
`catalog_url` the catalog and the refresh lock live in that database, shared by every machine
using it (vectors then belong in a Chroma server: `index.chroma_host`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from knowledge.chunking import Chunker
from knowledge.config import IndexSettings, RetrievalSettings, SourceSettings
from knowledge.embeddings import Embedder
from knowledge.index.catalog import FailureRecord, FileRecord
from knowledge.index.factory import open_catalog
from knowledge.index.vectors import VectorStore
from knowledge.loaders.worker import ParserProcess
from knowledge.lock import AdvisoryLock, AdvisoryLockProbe, RefreshLock, held_elsewhere
from knowledge.retrieval import Reranker, Retriever
from knowledge.sources.base import Source
from knowledge.sources.registry import open_source
from knowledge.sync import (
    LAST_REPORT,
    PERSISTENT_FAILURE_REFRESHES,
    PermissionResolver,
    Progress,
    RefreshReport,
    Synchronizer,
)
from knowledge.types import Passage, SourceFile

# MiniLM-style models count [CLS] and [SEP] inside their maximum sequence length.
_SPECIAL_TOKENS = 2


def nobody_may_read(file: SourceFile) -> frozenset[str]:
    """The permission resolver when none is given: a forgotten policy shares nothing."""
    return frozenset()


@dataclass(frozen=True)
class IndexStatus:
    documents: int
    chunks: int
    last_refresh_at: datetime | None
    # Files (folders, sources) that failed PERSISTENT_FAILURE_REFRESHES refreshes in a row or more.
    failing: tuple[FailureRecord, ...] = ()


class KnowledgeBase:
    """The indexed documents of the configured sources.

    Files live under `<home>/index/`: `catalog.sqlite3` (files, chunks, keyword index,
    permissions; unless `catalog_url` names a PostgreSQL database), `chroma/` (vectors; unless
    `index.chroma_host` names a Chroma server), `sources/` (cloud drives' listings and change
    cursors) and `refresh.lock` (with a PostgreSQL catalog: an advisory lock there instead)."""

    def __init__(
        self,
        home: Path,
        sources: Sequence[SourceSettings],
        index: IndexSettings,
        retrieval: RetrievalSettings,
        embedder: Embedder | None = None,
        permissions: PermissionResolver | None = None,
        reranker: Reranker | None = None,
        catalog_url: str | None = None,
    ) -> None:
        self.home = Path(home)
        self.index_dir = self.home / "index"
        self.sources = list(sources)
        self.settings = index
        self.embedder = embedder or Embedder(index.embedding_model, index.embedding_batch_size)
        self.permissions = permissions or nobody_may_read
        self.catalog_url = catalog_url
        self.catalog = open_catalog(self.index_dir, catalog_url)
        self.lock_path = self.index_dir / "refresh.lock"
        # With a PostgreSQL catalog the refresh lock is in the database, wherever its holder runs.
        self._refresh_probe = AdvisoryLockProbe(catalog_url) if catalog_url is not None else None
        try:
            self.vectors = VectorStore(index, self.index_dir / "chroma", self._refreshing_elsewhere)
        except BaseException:
            self.close()
            raise
        self.retriever = Retriever(self.catalog, self.vectors, self.embedder, retrieval, reranker)
        self.source_state_dir = self.index_dir / "sources"

    def open_sources(self, settings: Sequence[SourceSettings] | None = None) -> OpenSources:
        """The configured sources (or `settings`), opened: `with kb.open_sources() as stack`
        and `stack.sources`; they are closed when the block ends."""
        stack = OpenSources()
        try:
            for source_settings in self.sources if settings is None else settings:
                stack.sources.append(stack.enter_context(closing(open_source(source_settings, self.source_state_dir))))
        except BaseException:
            stack.close()
            raise
        return stack

    def refresh(
        self, full: bool = False, show_progress: bool = False, progress: Progress | None = None
    ) -> RefreshReport:
        """Bring the index in line with the sources. Raises IndexBusyError when another
        refresh (in any process) is running. `progress(done, listed)` is called after each
        file (instead of the terminal progress bar `show_progress` draws)."""
        with self.open_sources() as stack:
            return self.refresh_sources(stack.sources, full, show_progress, progress=progress)

    def refresh_sources(
        self,
        sources: Sequence[Source],
        full: bool = False,
        show_progress: bool = False,
        complete: bool = True,
        progress: Progress | None = None,
    ) -> RefreshReport:
        """Refresh from explicit sources. `complete`: they are the complete set, so other
        sources' files leave the index; otherwise the other sources stay as they are."""
        chunker = Chunker(
            self.embedder.count_tokens,
            chunk_tokens=min(self.settings.chunk_tokens, self.embedder.max_tokens - _SPECIAL_TOKENS),
            overlap_tokens=self.settings.chunk_overlap_tokens,
        )
        # One parser process serves the whole refresh, started on the first file to parse.
        with self.refresh_lock(), ParserProcess(self.settings.parse_limits()) as parser:
            synchronizer = Synchronizer(
                self.catalog,
                self.vectors,
                self.embedder,
                chunker,
                self.permissions,
                parser.parse,
                batch_chunks=max(64, self.embedder.batch_size * 16),
                permission_warnings=getattr(self.permissions, "take_warnings", None),
            )
            with _progress(show_progress and progress is None) as bar:
                return synchronizer.run(sources, full=full, progress=progress or bar, complete=complete)

    def _refreshing_elsewhere(self) -> bool:
        """Whether another process is refreshing now (the embedded vector store waits for it
        to finish before re-reading what it wrote; see VectorStore)."""
        if self._refresh_probe is not None:
            return self._refresh_probe.held()
        return held_elsewhere(self.lock_path)

    def refresh_lock(self) -> AbstractContextManager[object]:
        """The lock one refresh holds (IndexBusyError names the holder): an advisory lock in
        the PostgreSQL catalog's database, else a file lock under the index folder."""
        if self.catalog_url is not None:
            return AdvisoryLock(self.catalog_url)
        return RefreshLock(self.lock_path)

    def status(self) -> IndexStatus:
        documents, chunks = self.catalog.counts()
        last = self.catalog.get_meta("last_refresh_at")
        failing = tuple(self.catalog.failures(PERSISTENT_FAILURE_REFRESHES))
        return IndexStatus(documents, chunks, datetime.fromisoformat(last) if last else None, failing)

    def last_report(self) -> dict[str, object] | None:
        """The last refresh's report (`RefreshReport.to_dict()`), whoever ran it: `lore index`,
        the schedule or the console; None before the first."""
        stored = self.catalog.get_meta(LAST_REPORT)
        return json.loads(stored) if stored else None

    def readable_documents(self, principals: frozenset[str]) -> list[FileRecord]:
        """Indexed documents a reader holding `principals` may read; `{"everyone"}` gives
        the documents anyone may see (what a shared adapter may be trained on)."""
        return self.catalog.files_readable_by(principals)

    def documents(self) -> list[FileRecord]:
        """Every indexed document, whoever may read it."""
        return list(self.catalog.files().values())

    def document_passages(self, source: str, path: str) -> list[Passage]:
        """The chunks of one indexed document in reading order, as passages with their readers
        (score 0: nothing was searched); [] for a document not in the index."""
        chunks = self.catalog.chunks(self.catalog.file_chunk_ids(source, path))
        readers = self.catalog.principals_of(chunk.acl for chunk in chunks.values())
        return [
            Passage(
                chunk_id=chunk.chunk_id,
                source=chunk.source,
                path=chunk.path,
                title=chunk.title,
                heading=chunk.heading,
                url=chunk.url,
                text=chunk.text,
                score=0.0,
                principals=readers.get(chunk.acl, frozenset()),
            )
            for chunk in sorted(chunks.values(), key=lambda c: c.ordinal)
        ]

    def close(self) -> None:
        self.catalog.close()
        if self._refresh_probe is not None:
            self._refresh_probe.close()


class OpenSources(ExitStack):
    """Opened sources, closed together."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[Source] = []


@contextmanager
def _progress(show: bool) -> Iterator[Progress | None]:
    """A rich progress bar over files when asked (the CLI), nothing otherwise (the bot)."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    with RichProgress(
        TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task("indexing", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
