"""Chroma as the store of chunk vectors: embedded (`PersistentClient`) or a server
(`HttpClient`). It holds only ids, embeddings and the metadata filters need (source, path,
acl); texts live in the catalog.

The embedded store re-opens itself when another process wrote to it (`embedded_chroma`): it
looks at most once a second before reading (and re-opens once that process's refresh is
over) and always before writing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.config import IndexSettings
from knowledge.errors import IndexUnavailableError
from knowledge.index.embedded_chroma import (
    StoreStamp,
    changed_since,
    close_private_client,
    open_private_client,
    read_stamp,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VectorMetadata:
    source: str
    path: str
    acl: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "path": self.path, "acl": self.acl}


Where = Mapping[str, Any]

# Seconds between two looks at the embedded store's files before reads.
FRESHNESS_INTERVAL = 1.0


class VectorStore:
    """One Chroma collection with cosine distance and no embedding function of its own
    (Lore embeds; Chroma must never try to download a default model)."""

    def __init__(self, settings: IndexSettings, folder: Path, writer_busy: Callable[[], bool] = lambda: False) -> None:
        """`writer_busy`: whether another process is refreshing the embedded store now; its
        changes are then picked up when it is done (loading the index from disk while another
        process writes it can lose some of that process's vectors on disk)."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self._chroma_settings = ChromaSettings(anonymized_telemetry=False)
        self.location = (
            f"Chroma server {settings.chroma_host}:{settings.chroma_port}"
            if settings.chroma_host
            else f"Chroma at {folder}"
        )
        self.name = settings.collection
        self._folder = folder
        self._writer_busy = writer_busy
        # Embedded store: serializes every use of the client with re-opening it (other threads'
        # queries wait). A server is always fresh: no lock, no looks.
        self._lock: AbstractContextManager[Any] = nullcontext() if settings.chroma_host else threading.RLock()
        # Embedded store only: what its files looked like after this process last saw them.
        self._seen: StoreStamp | None = None
        self._looked_at = time.monotonic()
        try:
            if settings.chroma_host:
                self._client = chromadb.HttpClient(
                    host=settings.chroma_host, port=settings.chroma_port, settings=self._chroma_settings
                )
            else:
                folder.mkdir(parents=True, exist_ok=True)
                self._seen = read_stamp(folder)
                self._client = open_private_client(folder, self._chroma_settings)
            self._collection = self._open(self._client)
        except IndexUnavailableError:
            raise
        except Exception as error:  # chromadb raises many kinds for "unreachable"
            raise IndexUnavailableError(
                f"Cannot open {self.location}: {error}. Start the Chroma server or fix "
                "index.chroma_host/chroma_port (unset chroma_host to use the embedded store)."
            ) from error
        self._batch = max(1, min(self._client.get_max_batch_size(), 4096))

    def _open(self, client: Any) -> Any:
        return client.get_or_create_collection(
            self.name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def _fresh(self, writing: bool) -> None:
        """Re-open the embedded store if another process wrote to it since this one last
        looked (call with the lock held). Reads look at most once per FRESHNESS_INTERVAL;
        writes always look: a write through a stale index would drop the other's vectors."""
        if self._seen is None:
            return
        now = time.monotonic()
        if not writing and now - self._looked_at < FRESHNESS_INTERVAL:
            return
        self._looked_at = now
        changed, seen = changed_since(self._folder, self._seen)
        if not changed:
            self._seen = seen
        elif writing or not self._writer_busy():
            self._reopen()

    def _wrote(self) -> None:
        """Remember the store as this process's own write left it (call with the lock held)."""
        if self._seen is not None:
            self._seen = read_stamp(self._folder)

    def _reopen(self) -> None:
        """Drop the in-memory index and open the embedded store again from disk (call with
        the lock held; on failure the old store stays in use and the next look retries)."""
        # Stamped before opening: a write landing meanwhile is seen on the next look.
        seen = read_stamp(self._folder)
        try:
            client = open_private_client(self._folder, self._chroma_settings)
            try:
                collection = self._open(client)
            except BaseException:
                close_private_client(client)
                raise
        except Exception as error:
            raise IndexUnavailableError(
                f"Cannot re-open {self.location} after another process changed it: {error}. "
                "Check that its folder is readable and not full; the search retries on its next call."
            ) from error
        old, self._client, self._collection, self._seen = self._client, client, collection, seen
        close_private_client(old)
        logger.info("Re-opened %s: another process changed it", self.location)

    def count(self) -> int:
        with self._lock:
            self._fresh(writing=False)
            return int(self._collection.count())

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, metadata: Sequence[VectorMetadata]) -> None:
        with self._lock:
            self._fresh(writing=True)
            for start in range(0, len(ids), self._batch):
                end = start + self._batch
                self._collection.upsert(
                    ids=list(ids[start:end]),
                    embeddings=embeddings[start:end],
                    metadatas=[m.as_dict() for m in metadata[start:end]],
                )
            self._wrote()

    def update_metadata(self, ids: Sequence[str], metadata: Sequence[VectorMetadata]) -> None:
        with self._lock:
            self._fresh(writing=True)
            for start in range(0, len(ids), self._batch):
                end = start + self._batch
                self._collection.update(ids=list(ids[start:end]), metadatas=[m.as_dict() for m in metadata[start:end]])
            self._wrote()

    def delete(self, ids: Sequence[str]) -> None:
        with self._lock:
            self._fresh(writing=True)
            for start in range(0, len(ids), self._batch):
                self._collection.delete(ids=list(ids[start : start + self._batch]))
            self._wrote()

    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id (ids not in the store are absent from the result)."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            self._fresh(writing=False)
            for start in range(0, len(ids), self._batch):
                result = self._collection.get(ids=list(ids[start : start + self._batch]), include=["embeddings"])
                for vector_id, vector in zip(result["ids"], result["embeddings"], strict=True):
                    found[vector_id] = np.asarray(vector, dtype=np.float32)
        return found

    def all_ids(self) -> set[str]:
        ids: set[str] = set()
        offset = 0
        with self._lock:
            self._fresh(writing=False)
            while True:
                page = self._collection.get(include=[], limit=self._batch, offset=offset)["ids"]
                ids.update(page)
                if len(page) < self._batch:
                    return ids
                offset += len(page)

    def query(self, embedding: np.ndarray, n: int, where: Where | None) -> list[tuple[str, float]]:
        """(id, cosine similarity) of the `n` nearest vectors passing `where`, best first."""
        if n <= 0:
            return []
        with self._lock:
            self._fresh(writing=False)
            result = self._collection.query(
                query_embeddings=[embedding], n_results=n, where=dict(where) if where else None, include=["distances"]
            )
        return [
            (vector_id, 1.0 - float(distance))
            for vector_id, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def reset(self) -> None:
        """Drop every vector (a full rebuild after the embedding model changed)."""
        with self._lock:
            self._fresh(writing=True)
            self._client.delete_collection(self.name)
            self._collection = self._open(self._client)
            self._wrote()
