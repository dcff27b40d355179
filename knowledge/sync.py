"""Incremental refresh: brings the index in line with the sources, touching only what changed.

Per file, in order of cost:
- size and mtime as recorded → not read at all (only its permissions and link are re-checked);
- read, same sha256 as recorded → metadata updated only;
- new or changed content → parsed and chunked; a chunk whose exact indexed text is already
  in the index (unchanged paragraph, renamed file, duplicate page) reuses the stored vector,
  only new text is embedded;
- gone from its source → its chunks leave the catalog and the vector store.

A file that cannot be parsed any more (corrupt, encrypted) is reported and its previously
indexed version keeps answering, but under the permissions the file has now: losing a whole
document because someone saved a broken copy would be worse than serving the last good one,
while a narrowing of who may read it (a chmod, an ACL edit) must never wait for a good copy.
A source whose root cannot be listed (unmounted share) is reported and none of its documents
are deleted. A refusal of Lore's account (EACCES/EPERM) on a file, a folder or the root is
the opposite: read access was withdrawn, so what was indexed from there leaves the index;
so does the last good version of a file its author locked with a password.
Files that fail several refreshes in a row are listed in the report (`failing`).

Crash safety: vectors are written to Chroma before the catalog refers to them (their ids
journaled as pending first), the catalog switches a batch of files in one transaction, and
vectors the catalog stopped referring to are deleted afterwards (journaled as garbage in that
transaction). Searches only return chunks live in the catalog, so a refresh killed at any
point leaves the previous answers intact, and the next refresh deletes the leftovers from
the journal and redoes the files that were not committed.

Limits: a file larger than its source's `max_file_bytes` (as listed) is not read, and
`parse` (in a refresh, a ParserProcess with its time and memory bounds) refuses files over
the `ParseLimits`; such a file counts as one that cannot be parsed, above.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from knowledge.chunking import Chunker
from knowledge.embeddings import Embedder
from knowledge.errors import (
    AccessDeniedError,
    ConfigurationError,
    EncryptedDocumentError,
    FileTooLargeError,
    LoaderError,
    SourceError,
    UnsupportedFormatError,
)
from knowledge.index.catalog import Catalog, ChunkRecord, FailureRecord, FileRecord, acl_key
from knowledge.index.vectors import VectorMetadata, VectorStore
from knowledge.loaders import is_supported
from knowledge.sources.base import Source
from knowledge.types import Chunk, LoadedDocument, SourceFile

logger = logging.getLogger(__name__)

PermissionResolver = Callable[[SourceFile], frozenset[str]]
Progress = Callable[[int, int], None]  # (files done, files listed)
Parse = Callable[[Path, bytes], LoadedDocument]  # load_document, or a ParserProcess's parse
NOBODY: frozenset[str] = frozenset()
# A file failing this many refreshes in a row is listed in the report, `lore index` and /healthz.
PERSISTENT_FAILURE_REFRESHES = 3
# The catalog's meta key holding the last refresh's report (JSON), whoever ran it.
LAST_REPORT = "last_refresh_report"


@dataclass(frozen=True)
class FailedFile:
    """A file (or a whole source) the refresh could not index, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class FailingFile:
    """A file (or folder, or source) that failed this many refreshes in a row."""

    path: str
    reason: str
    refreshes: int

    @classmethod
    def of(cls, record: FailureRecord) -> FailingFile:
        return cls(record.path, record.reason, record.refreshes)


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did. `updated` counts files whose content, permissions or link
    changed; a file only touched (same content, same permissions) is `unchanged`.
    `documents` and `readable_by_everyone` count, per source, the indexed documents and
    those anyone may read; `failing` lists what failed PERSISTENT_FAILURE_REFRESHES
    refreshes in a row or more; `warnings` are the permission resolver's (file modes
    deciding on an SMB mount)."""

    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0  # no loader for the file type (images, binaries)
    failed: list[FailedFile] = field(default_factory=list)
    seconds: float = 0.0
    documents: dict[str, int] = field(default_factory=dict)
    readable_by_everyone: dict[str, int] = field(default_factory=dict)
    failing: list[FailingFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data

    def summary(self) -> str:
        return (
            f"refresh: added={self.added} updated={self.updated} deleted={self.deleted} "
            f"unchanged={self.unchanged} skipped={self.skipped} failed={len(self.failed)} "
            f"in {self.seconds:.1f}s"
        )

    def exposure(self) -> str:
        """One line: how many documents each source makes readable by everyone."""
        counts = ", ".join(
            f"{source} {self.readable_by_everyone.get(source, 0)} of {total}"
            for source, total in sorted(self.documents.items())
        )
        return f"readable by everyone: {counts or 'no documents'}"


@dataclass
class _Tally:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: list[FailedFile] = field(default_factory=list)


@dataclass(frozen=True)
class _Parsed:
    """A new or changed file, parsed and chunked, waiting for its batch to be written."""

    file: SourceFile
    sha256: str
    title: str
    acl: str
    principals: frozenset[str]
    chunks: tuple[Chunk, ...]
    previous: FileRecord | None


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def chunk_id(source: str, path: str, ordinal: int, indexed_text_hash: str) -> str:
    """Content-derived id: the same text at the same place keeps its id (and vector)."""
    return hashlib.sha256(f"{source}\0{path}\0{ordinal}\0{indexed_text_hash}".encode()).hexdigest()[:32]


class Synchronizer:
    """Runs refreshes against one catalog and vector store. Not thread-safe by itself:
    the caller holds the refresh lock."""

    def __init__(
        self,
        catalog: Catalog,
        vectors: VectorStore,
        embedder: Embedder,
        chunker: Chunker,
        permissions: PermissionResolver,
        parse: Parse,
        batch_chunks: int = 512,
        permission_warnings: Callable[[], list[str]] | None = None,
    ) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.chunker = chunker
        self.permissions = permissions
        self.parse = parse
        # What the resolver noticed during a refresh (e.g. file modes deciding on an SMB mount).
        self.permission_warnings = permission_warnings or list
        # Chunks parsed before they are embedded and committed together: big enough for
        # efficient embedding batches, small enough that a crash loses little work.
        self.batch_chunks = batch_chunks
        self._principals: dict[str, frozenset[str]] = {}  # acl key -> principals, for the catalog

    def run(
        self,
        sources: Sequence[Source],
        full: bool = False,
        progress: Progress | None = None,
        complete: bool = True,
    ) -> RefreshReport:
        """Refresh the index from `sources`. `complete`: they are the complete set, so files
        of other sources leave the index; otherwise other sources are left as they are.
        `full` re-parses and re-embeds every file."""
        started = time.monotonic()
        self.recover()
        full = self._check_embedding_model() or self._vectors_missing() or full
        tally = _Tally()
        known = self.catalog.files()
        listed: list[tuple[Source, list[SourceFile]]] = []
        unreadable_sources: set[str] = set()
        unreadable_folders: dict[str, list[str]] = {}  # source → folders it could not list
        failed_in: list[tuple[str, FailedFile]] = []  # (source, failure), for the failure counts
        for source in sources:
            start = len(tally.failed)
            try:
                listed.append((source, list(source.list_files())))
            except AccessDeniedError as error:  # withdrawn: its documents leave with the gone ones
                tally.failed.append(FailedFile(source.name, str(error)))
            except SourceError as error:
                unreadable_sources.add(source.name)
                tally.failed.append(FailedFile(source.name, str(error)))
            else:
                for problem in source.problems:
                    if not problem.denied:
                        unreadable_folders.setdefault(source.name, []).append(problem.path)
                    tally.failed.append(FailedFile(f"{source.name}:{problem.path}", problem.reason))
            failed_in.extend((source.name, failure) for failure in tally.failed[start:])
        total = sum(len(files) for _, files in listed)
        done = 0
        seen: set[tuple[str, str]] = set()
        batch: list[_Parsed] = []
        batch_chunks = 0
        touched: list[tuple[FileRecord, FileRecord]] = []  # (as recorded, as listed now)
        for source, files in listed:
            start = len(tally.failed)
            for file in files:
                parsed = self._examine(source, file, known, seen, full, tally, touched)
                if parsed is not None:
                    batch.append(parsed)
                    batch_chunks += len(parsed.chunks)
                    if batch_chunks >= self.batch_chunks:
                        self._write(batch, touched, full, tally)
                        batch, batch_chunks, touched = [], 0, []
                done += 1
                if progress is not None:
                    progress(done, total)
            failed_in.extend((source.name, failure) for failure in tally.failed[start:])
        self._write(batch, touched, full, tally)
        # What could not be listed was not deleted: its files stay indexed until it can be.
        refreshed = {source.name for source in sources}
        gone = [
            key
            for key in known
            if key not in seen
            and (complete or key[0] in refreshed)
            and key[0] not in unreadable_sources
            and not _under_any(key[1], unreadable_folders.get(key[0], ()))
        ]
        self._delete(gone)
        tally.deleted = len(gone)
        if full:
            self._collect_orphans()
        self.catalog.set_meta("last_refresh_at", time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
        self.catalog.record_failures(
            [(name, failure.path, failure.reason) for name, failure in failed_in], None if complete else refreshed
        )
        per_source = self.catalog.documents_per_source()
        report = RefreshReport(
            added=tally.added,
            updated=tally.updated,
            deleted=tally.deleted,
            unchanged=tally.unchanged,
            skipped=tally.skipped,
            failed=tally.failed,
            seconds=time.monotonic() - started,
            documents={name: counts[0] for name, counts in per_source.items()},
            readable_by_everyone={name: counts[1] for name, counts in per_source.items()},
            failing=[FailingFile.of(record) for record in self.catalog.failures(PERSISTENT_FAILURE_REFRESHES)],
            warnings=list(self.permission_warnings()),
        )
        self.catalog.set_meta(LAST_REPORT, json.dumps(report.to_dict()))
        logger.info(report.summary())
        logger.info("refresh: %s", report.exposure())
        for failing in report.failing:
            logger.warning(
                "refresh: %s failed %d refreshes in a row: %s", failing.path, failing.refreshes, failing.reason
            )
        for warning in report.warnings:
            logger.warning("refresh: %s", warning)
        return report

    def recover(self) -> None:
        """Finish what a killed refresh left behind: delete vectors the journal lists that
        the catalog does not refer to."""
        journal = self.catalog.journal()
        if not journal:
            return
        live = self.catalog.live_ids(list(journal))
        dead = [vector_id for vector_id in journal if vector_id not in live]
        self.vectors.delete(dead)
        self.catalog.clear_journal(journal)
        logger.info("refresh: removed %d vectors left by an interrupted refresh", len(dead))

    # -- per file ------------------------------------------------------------------------

    def _examine(
        self,
        source: Source,
        file: SourceFile,
        known: dict[tuple[str, str], FileRecord],
        seen: set[tuple[str, str]],
        full: bool,
        tally: _Tally,
        touched: list[tuple[FileRecord, FileRecord]],
    ) -> _Parsed | None:
        """Classify one listed file; returns it parsed when its content must be (re)indexed."""
        if not is_supported(Path(file.relative_path)):
            tally.skipped += 1
            return None
        key = (file.source, file.relative_path)
        seen.add(key)  # from here on a failure keeps the previous version indexed
        previous = known.get(key)
        principals = self._principals_for(file, tally)
        acl = acl_key(principals)
        if previous is not None and not full and (previous.size, previous.mtime) == (file.size, file.mtime):
            self._touch(previous, file, previous.sha256, acl, principals, tally, touched)
            return None
        try:
            if file.size > source.max_file_bytes:  # as listed: not even opened
                raise FileTooLargeError.of(file.size, source.max_file_bytes)
            data = source.read_bytes(file)
        except AccessDeniedError as error:
            seen.discard(key)  # withdrawn: its indexed version leaves with the deleted files
            tally.failed.append(FailedFile(file.absolute_path, str(error)))
            return None
        except (SourceError, FileTooLargeError) as error:
            tally.failed.append(FailedFile(file.absolute_path, str(error)))
            self._keep_last_good(previous, file, acl, principals, touched)
            return None
        sha256 = hashlib.sha256(data).hexdigest()
        if previous is not None and not full and previous.sha256 == sha256:
            self._touch(previous, file, sha256, acl, principals, tally, touched)
            return None
        try:
            document = self.parse(Path(file.relative_path), data)
        except UnsupportedFormatError:
            seen.discard(key)
            tally.skipped += 1
            return None
        except EncryptedDocumentError as error:
            seen.discard(key)  # locked by its author: withdrawn, whoever the rules let read it
            tally.failed.append(FailedFile(file.absolute_path, f"{error}; withdrawn from the index"))
            return None
        except LoaderError as error:
            tally.failed.append(FailedFile(file.absolute_path, str(error)))
            self._keep_last_good(previous, file, acl, principals, touched)
            return None
        chunks = tuple(self.chunker.chunk(document))
        return _Parsed(file, sha256, document.title, acl, principals, chunks, previous)

    def _principals_for(self, file: SourceFile, tally: _Tally) -> frozenset[str]:
        """Who may read `file` now; nobody when that cannot be decided for this one file (a
        broken ACL file is a ConfigurationError and stops the whole refresh instead)."""
        try:
            return frozenset(self.permissions(file))
        except ConfigurationError:
            raise
        except Exception as error:  # never broaden: an unknown answer is "nobody"
            tally.failed.append(
                FailedFile(file.absolute_path, f"who may read it could not be decided ({error}); readable by nobody")
            )
            return NOBODY

    def _keep_last_good(
        self,
        previous: FileRecord | None,
        file: SourceFile,
        acl: str,
        principals: frozenset[str],
        touched: list[tuple[FileRecord, FileRecord]],
    ) -> None:
        """A changed file that cannot be read or parsed: its last good version keeps answering,
        but only to whoever may read the file now. Size, mtime and hash stay as recorded, so
        the next refresh tries it again (and counts another failure)."""
        if previous is None:
            return
        record = replace(previous, acl=acl, url=file.url, owner=file.owner, mode=file.mode)
        if record != previous:
            touched.append((previous, record))
            self._principals[acl] = principals

    def _touch(
        self,
        previous: FileRecord,
        file: SourceFile,
        sha256: str,
        acl: str,
        principals: frozenset[str],
        tally: _Tally,
        touched: list[tuple[FileRecord, FileRecord]],
    ) -> None:
        """Same content: record new stat data, permissions and link without re-indexing."""
        record = _file_record(file, sha256, previous.title, acl, previous.chunk_count)
        visible = (previous.acl, previous.url) != (record.acl, record.url)
        if visible:
            tally.updated += 1
        else:
            tally.unchanged += 1
        if visible or (previous.size, previous.mtime, previous.owner, previous.mode) != (
            record.size,
            record.mtime,
            record.owner,
            record.mode,
        ):
            touched.append((previous, record))
            self._principals[acl] = principals

    # -- writing a batch -----------------------------------------------------------------

    def _write(
        self, batch: list[_Parsed], touched: list[tuple[FileRecord, FileRecord]], full: bool, tally: _Tally
    ) -> None:
        """Vectors first, then one catalog transaction, then delete what it freed."""
        if not batch and not touched:
            return
        records: list[tuple[FileRecord, list[ChunkRecord]]] = []
        for item in batch:
            file = item.file
            self._principals[item.acl] = item.principals
            chunks = [
                ChunkRecord(
                    chunk_id=chunk_id(file.source, file.relative_path, chunk.ordinal, text_hash(chunk.indexed_text)),
                    source=file.source,
                    path=file.relative_path,
                    ordinal=chunk.ordinal,
                    title=chunk.title,
                    heading=chunk.heading,
                    text=chunk.text,
                    text_hash=text_hash(chunk.indexed_text),
                    acl=item.acl,
                )
                for chunk in item.chunks
            ]
            records.append((_file_record(file, item.sha256, item.title, item.acl, len(chunks)), chunks))
        indexed_texts = {
            record.chunk_id: chunk.indexed_text
            for item, (_, chunk_records) in zip(batch, records, strict=True)
            for chunk, record in zip(item.chunks, chunk_records, strict=True)
        }
        kept = set() if full else self.catalog.live_ids(list(indexed_texts))
        new = [record for _, chunks in records for record in chunks if record.chunk_id not in kept]
        vectors = self._vectors_for(new, indexed_texts, reuse=not full)
        if vectors:
            self.catalog.mark_pending(vectors)
            self.vectors.upsert(
                list(vectors),
                np.stack(list(vectors.values())),
                [VectorMetadata(record.source, record.path, record.acl) for record in new],
            )
        self._retag(records, touched, kept)
        garbage: list[str] = []
        with self.catalog.transaction() as writer:
            for principals in self._principals.values():
                writer.register_acl(principals)
            for file_record, chunks in records:
                garbage.extend(writer.replace_file(file_record, chunks))
            for _, file_record in touched:
                writer.update_file(file_record)
        self.vectors.delete(garbage)
        self.catalog.clear_journal(garbage)
        for item in batch:
            if item.previous is None:
                tally.added += 1
            else:
                tally.updated += 1

    def _vectors_for(self, new: list[ChunkRecord], indexed_texts: dict[str, str], reuse: bool) -> dict[str, np.ndarray]:
        """A vector per new chunk id, in `new` order: copied from a stored chunk with the
        same indexed text when there is one, else embedded (each distinct text once)."""
        hashes = list(dict.fromkeys(record.text_hash for record in new))
        by_hash: dict[str, np.ndarray] = {}
        if reuse and hashes:
            donors = self.catalog.chunk_for_text(hashes)
            stored = self.vectors.embeddings(list(donors.values()))
            by_hash = {h: stored[donor] for h, donor in donors.items() if donor in stored}
        missing: dict[str, str] = {}
        for record in new:
            if record.text_hash not in by_hash:
                missing.setdefault(record.text_hash, indexed_texts[record.chunk_id])
        if missing:
            embedded = self.embedder.embed_documents(list(missing.values()))
            by_hash.update(zip(missing, embedded, strict=True))
        return {record.chunk_id: by_hash[record.text_hash] for record in new}

    def _retag(
        self,
        records: list[tuple[FileRecord, list[ChunkRecord]]],
        touched: list[tuple[FileRecord, FileRecord]],
        kept: set[str],
    ) -> None:
        """Point kept vectors at their file's current acl before the catalog does, so the
        vector store's permission filter is never looser than the catalog's."""
        ids: list[str] = []
        metadata: list[VectorMetadata] = []
        for _, chunks in records:
            for record in chunks:
                if record.chunk_id in kept:
                    ids.append(record.chunk_id)
                    metadata.append(VectorMetadata(record.source, record.path, record.acl))
        for previous, file_record in touched:
            if previous.acl == file_record.acl:
                continue
            for vector_id in self.catalog.file_chunk_ids(file_record.source, file_record.path):
                ids.append(vector_id)
                metadata.append(VectorMetadata(file_record.source, file_record.path, file_record.acl))
        if ids:
            self.vectors.update_metadata(ids, metadata)

    # -- deletions and housekeeping ------------------------------------------------------

    def _delete(self, keys: list[tuple[str, str]]) -> None:
        if not keys:
            return
        garbage: list[str] = []
        with self.catalog.transaction() as writer:
            for source, path in keys:
                garbage.extend(writer.delete_file(source, path))
        self.vectors.delete(garbage)
        self.catalog.clear_journal(garbage)

    def _collect_orphans(self) -> None:
        """After a full rebuild: drop any vector the catalog does not refer to."""
        stored = sorted(self.vectors.all_ids())
        live = self.catalog.live_ids(stored)
        orphans = [vector_id for vector_id in stored if vector_id not in live]
        if orphans:
            self.vectors.delete(orphans)
            logger.info("refresh: removed %d orphan vectors", len(orphans))

    def _vectors_missing(self) -> bool:
        """True when the vector store lost vectors the catalog refers to (a Chroma server
        reset, a deleted folder): only a full rebuild brings them back."""
        stored, live = self.vectors.count(), self.catalog.counts()[1]
        if stored >= live:
            return False
        logger.warning("refresh: the vector store holds %d of %d chunks; rebuilding the index", stored, live)
        return True

    def _check_embedding_model(self) -> bool:
        """True (and an emptied index) when the index was built with another embedding
        model: its vectors cannot be compared with this model's."""
        current = f"{self.embedder.name}:{self.embedder.dimension}"
        recorded = self.catalog.get_meta("embedding_model")
        if recorded == current:
            return False
        if recorded is not None:
            logger.warning("refresh: embedding model changed from %s to %s; rebuilding the index", recorded, current)
            self._delete(list(self.catalog.files()))
            self.vectors.reset()
        self.catalog.set_meta("embedding_model", current)
        return recorded is not None


def _file_record(file: SourceFile, sha256: str, title: str, acl: str, chunk_count: int) -> FileRecord:
    return FileRecord(
        source=file.source,
        path=file.relative_path,
        size=file.size,
        mtime=file.mtime,
        sha256=sha256,
        title=title,
        url=file.url,
        owner=file.owner,
        mode=file.mode,
        acl=acl,
        chunk_count=chunk_count,
    )


def _under_any(path: str, folders: Sequence[str]) -> bool:
    """Whether `path` is one of `folders` or lies inside one (POSIX, relative; "." is the
    source's root)."""
    return any(folder == "." or path == folder or path.startswith(f"{folder}/") for folder in folders)
