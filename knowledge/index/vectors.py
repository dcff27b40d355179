"""Chroma as the store of chunk vectors: embedded (`PersistentClient`) or a server
(`HttpClient`). It holds only ids, embeddings and the metadata filters need (source, path,
acl); texts live in the catalog."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.config import IndexSettings
from knowledge.errors import IndexUnavailableError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VectorMetadata:
    source: str
    path: str
    acl: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "path": self.path, "acl": self.acl}


Where = Mapping[str, Any]


class VectorStore:
    """One Chroma collection with cosine distance and no embedding function of its own
    (Lore embeds; Chroma must never try to download a default model)."""

    def __init__(self, settings: IndexSettings, folder: Path) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        self.location = (
            f"Chroma server {settings.chroma_host}:{settings.chroma_port}"
            if settings.chroma_host
            else f"Chroma at {folder}"
        )
        try:
            if settings.chroma_host:
                self._client = chromadb.HttpClient(
                    host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
                )
            else:
                folder.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(folder), settings=chroma_settings)
            self._collection = self._open(settings.collection)
        except IndexUnavailableError:
            raise
        except Exception as error:  # chromadb raises many kinds for "unreachable"
            raise IndexUnavailableError(
                f"Cannot open {self.location}: {error}. Start the Chroma server or fix "
                "index.chroma_host/chroma_port (unset chroma_host to use the embedded store)."
            ) from error
        self.name = settings.collection
        self._batch = max(1, min(self._client.get_max_batch_size(), 4096))

    def _open(self, name: str) -> Any:
        return self._client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def count(self) -> int:
        return int(self._collection.count())

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, metadata: Sequence[VectorMetadata]) -> None:
        for start in range(0, len(ids), self._batch):
            end = start + self._batch
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=embeddings[start:end],
                metadatas=[m.as_dict() for m in metadata[start:end]],
            )

    def update_metadata(self, ids: Sequence[str], metadata: Sequence[VectorMetadata]) -> None:
        for start in range(0, len(ids), self._batch):
            end = start + self._batch
            self._collection.update(ids=list(ids[start:end]), metadatas=[m.as_dict() for m in metadata[start:end]])

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), self._batch):
            self._collection.delete(ids=list(ids[start : start + self._batch]))

    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id (ids not in the store are absent from the result)."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), self._batch):
            result = self._collection.get(ids=list(ids[start : start + self._batch]), include=["embeddings"])
            for vector_id, vector in zip(result["ids"], result["embeddings"], strict=True):
                found[vector_id] = np.asarray(vector, dtype=np.float32)
        return found

    def all_ids(self) -> set[str]:
        ids: set[str] = set()
        offset = 0
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
        result = self._collection.query(
            query_embeddings=[embedding], n_results=n, where=dict(where) if where else None, include=["distances"]
        )
        return [
            (vector_id, 1.0 - float(distance))
            for vector_id, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def reset(self) -> None:
        """Drop every vector (a full rebuild after the embedding model changed)."""
        self._client.delete_collection(self.name)
        self._collection = self._open(self.name)
